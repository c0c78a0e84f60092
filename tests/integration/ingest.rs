//! Ingest from each file format, and refusal of bad files with nothing applied.
