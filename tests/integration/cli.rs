//! The `memberdb` binary: gen and load, end to end.
