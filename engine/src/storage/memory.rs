//! [`MemStorage`]: files in memory, with a model of what a crash keeps.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::Storage;

/// One file: its content and how much of it is durable.
#[derive(Clone, Debug, Default)]
struct MemFile {
    data: Vec<u8>,
    /// Bytes a crash keeps for sure (appends after them are lost or torn).
    durable: usize,
}

/// Files in memory: for tests and throw-away databases.
///
/// It models durability like a file system does: [`Storage::write_atomic`] is durable when
/// it returns, appended bytes only after [`Storage::sync`]. [`MemStorage::crash_image`] gives
/// what a power loss would leave.
#[derive(Debug, Default)]
pub struct MemStorage {
    files: Mutex<HashMap<String, MemFile>>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        MemStorage::default()
    }

    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemFile>> {
        // A panic while holding the lock cannot leave a half-written map entry.
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What a power loss now would leave: every file with its durable bytes, plus the first
    /// `torn(name, unsynced)` bytes of what was appended but not synced (a torn write).
    pub fn crash_image(&self, torn: &mut dyn FnMut(&str, usize) -> usize) -> MemStorage {
        let files = self
            .files()
            .iter()
            .map(|(name, f)| {
                let unsynced = f.data.len() - f.durable;
                let keep = f.durable + torn(name, unsynced).min(unsynced);
                let data = f.data[..keep].to_vec();
                let durable = data.len();
                (name.clone(), MemFile { data, durable })
            })
            .collect();
        MemStorage {
            files: Mutex::new(files),
        }
    }

    /// Overwrites byte `offset` of `name` (for tests of damaged files).
    pub fn corrupt(&self, name: &str, offset: usize, byte: u8) -> bool {
        match self.files().get_mut(name) {
            Some(f) if offset < f.data.len() => {
                f.data[offset] = byte;
                true
            }
            _ => false,
        }
    }
}

fn not_found(name: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, name.to_string())
}

impl Storage for MemStorage {
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        self.files()
            .get(name)
            .map(|f| f.data.clone())
            .ok_or_else(|| not_found(name))
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let file = MemFile {
            data: data.to_vec(),
            durable: data.len(),
        };
        self.files().insert(name.to_string(), file);
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.files()
            .entry(name.to_string())
            .or_default()
            .data
            .extend_from_slice(data);
        Ok(())
    }

    fn sync(&self, name: &str) -> std::io::Result<()> {
        let mut files = self.files();
        let file = files.get_mut(name).ok_or_else(|| not_found(name))?;
        file.durable = file.data.len();
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> std::io::Result<()> {
        let mut files = self.files();
        let file = files.get_mut(name).ok_or_else(|| not_found(name))?;
        let len = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(file.data.len());
        file.data.truncate(len);
        file.durable = file.durable.min(len);
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
