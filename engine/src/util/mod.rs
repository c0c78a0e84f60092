//! Small building blocks shared by the storage structures.

pub(crate) mod bitvec;
pub(crate) mod chunked;
pub(crate) mod dict;
pub(crate) mod json;
pub(crate) mod priority;
pub(crate) mod sections;
pub(crate) mod suggest;
