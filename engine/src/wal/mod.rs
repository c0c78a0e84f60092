//! The write-ahead log: the changes it records ([`change`]), the byte layout of a log file
//! and its reading with torn-tail detection ([`record`]), and the files that hold the rows
//! of bulk loads ([`load_file`]).

pub(crate) mod change;
pub(crate) mod load_file;
pub(crate) mod record;

pub use record::TornTail;
