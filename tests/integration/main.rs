//! Integration tests of memberdb: one binary, one module per area.

mod api;
mod compile;
mod erasure;
mod funnels;
mod groups;
mod identities;
mod ingest;
mod persistence;
mod segments_vs_naive;
mod streams;
mod support;
mod traits;
