//! Integration tests of memberdb: one binary, one module per area.

mod api;
mod ingest;
mod persistence;
mod segments_vs_naive;
mod support;
