//! Where a database lives: a storage seam over named files, and the on-disk format.
//!
//! The engine reads and writes named files only through [`Storage`], so tests can run in
//! memory ([`MemStorage`]), simulate a crash at any write or fsync ([`MemStorage::crash_image`])
//! and inject I/O errors. The layout of a database directory is documented in `docs/format.md`.

mod bitmaps;
mod changes;
mod columns;
mod format;
mod fs;
mod memory;

pub(crate) use format::{
    Manifest, ParquetFiles, SaveError, load, log_file_name, log_generation, read_manifest,
    remove_superseded, remove_unreferenced_loads, save, start_log, switch_manifest,
    upgrade_manifest, verify_generation, write_generation,
};
pub use fs::{DEFAULT_FILE_MODE, FsStorage, dir_mode};
pub use memory::MemStorage;

use bytes::Bytes;

/// What [`Storage::write_atomic_with`] calls to write a file's content.
pub type FillFn<'a> = dyn FnMut(&mut (dyn std::io::Write + Send)) -> std::io::Result<()> + 'a;

/// Named files of one database.
///
/// Two ways of writing: whole files replaced atomically ([`Storage::write_atomic`], for data
/// files and the manifest) and appends made durable by [`Storage::sync`] (for the log).
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The whole content of `name`.
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>>;
    /// The whole content of `name`, memory-mapped where the storage can (files of a database
    /// are never modified in place, only replaced or appended to, so a mapping stays valid).
    fn map(&self, name: &str) -> std::io::Result<Bytes> {
        self.read(name).map(Bytes::from)
    }
    /// Replaces `name` with `data` atomically: after a crash, readers see the old or the
    /// new content, never a mix, and once this returns the new content is durable.
    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()>;
    /// Replaces `name` with what `fill` writes, atomically and durably like
    /// [`Storage::write_atomic`]. A storage that can stream (a file system) does not hold the
    /// content in memory: a checkpoint writes gigabytes this way in a few megabytes. The
    /// default collects the content and calls [`Storage::write_atomic`].
    fn write_atomic_with(&self, name: &str, fill: &mut FillFn<'_>) -> std::io::Result<()> {
        let mut data = Vec::new();
        fill(&mut data)?;
        self.write_atomic(name, &data)
    }
    /// Appends `data` to `name`, creating it. Not durable until [`Storage::sync`].
    fn append(&self, name: &str, data: &[u8]) -> std::io::Result<()>;
    /// Makes everything appended to `name` durable (fsync of the file and, for a new file, of
    /// its directory entry).
    fn sync(&self, name: &str) -> std::io::Result<()>;
    /// Cuts `name` to its first `len` bytes, durably.
    fn truncate(&self, name: &str, len: u64) -> std::io::Result<()>;
    /// Does `name` exist?
    fn exists(&self, name: &str) -> bool;
    /// Removes `name` if it exists.
    fn remove(&self, name: &str) -> std::io::Result<()>;
    /// Every file name.
    fn list(&self) -> std::io::Result<Vec<String>>;
    /// Makes the removals and creations of files durable (an fsync of a directory). A
    /// storage without a directory has nothing to do.
    fn sync_directory(&self) -> std::io::Result<()> {
        Ok(())
    }
    /// Takes the exclusive lock that keeps a second writer process out. The lock is held as
    /// long as the storage lives. A storage without other processes has nothing to lock.
    fn lock(&self) -> Result<(), String> {
        Ok(())
    }
    /// Where the files are, for messages.
    fn location(&self) -> std::path::PathBuf;
}
