//! The memberdb segment language: text to AST with spans, and a canonical printer.
//!
//! This crate knows nothing of the engine. The grammar arrives with its own issue; for now the
//! crate only reserves its place in the workspace so the dependency direction is fixed.
