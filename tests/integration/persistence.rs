//! Save and open.
