//! Subcommands of the `memberdb` binary.

pub(crate) mod generate;
pub(crate) mod load;
mod progress;
