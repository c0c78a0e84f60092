//! Where a database lives: a storage seam over named files, and the on-disk format.
//!
//! The engine reads and writes whole named files through [`Storage`], so tests can run in
//! memory ([`MemStorage`]) and later fault-injection tests can fail or tear any write. The
//! layout of a database directory is documented in `docs/format.md`.

mod bitmaps;
mod format;

pub(crate) use format::{load, save};

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Named files of one database.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The whole content of `name`.
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>>;
    /// Replaces `name` with `data` atomically: after a crash, readers see the old or the
    /// new content, never a mix, and once this returns the new content is durable.
    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()>;
    /// Does `name` exist?
    fn exists(&self, name: &str) -> bool;
    /// Removes `name` if it exists.
    fn remove(&self, name: &str) -> std::io::Result<()>;
    /// Every file name.
    fn list(&self) -> std::io::Result<Vec<String>>;
    /// Where the files are, for messages.
    fn location(&self) -> PathBuf;
}

/// A directory on the local file system.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// Uses `dir`, creating it if needed.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FsStorage { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Storage for FsStorage {
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(name))
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        // write to a temporary name, fsync, rename over the target, fsync the directory
        let tmp = self.path(&format!("{name}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, self.path(name))?;
        sync_dir(&self.dir)
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn list(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn location(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// Files in memory: for tests and throw-away databases.
#[derive(Debug, Default)]
pub struct MemStorage {
    files: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemStorage {
    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-written map entry.
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Storage for MemStorage {
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        self.files()
            .get(name)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, name.to_string()))
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.files().insert(name.to_string(), data.to_vec());
        Ok(())
    }

    fn exists(&self, name: &str) -> bool {
        self.files().contains_key(name)
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.files().remove(name);
        Ok(())
    }

    fn list(&self) -> std::io::Result<Vec<String>> {
        let mut names: Vec<String> = self.files().keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    fn location(&self) -> PathBuf {
        PathBuf::from("<memory>")
    }
}
