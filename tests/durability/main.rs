//! Durability tests: crashes at every write and fsync through the storage seam, injected I/O
//! errors, kill -9 of a writer process, the format-version-1 fixture, check / repair, the
//! lock file.

mod check_repair;
mod crash_points;
mod fixture;
mod kill9;
mod load_commands;
mod online_checkpoint;
mod snapshots;
mod stored_definitions;
mod support;
