//! A storage that crashes or fails at a chosen write or fsync.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use memberdb::storage::{MemStorage, Storage};

/// What happens at the chosen mutating operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The process "dies": this operation and every later one fail without effect.
    Crash,
    /// This operation fails with an I/O error; later ones work.
    Error,
}

/// Wraps a [`MemStorage`]; counts mutating operations (write, append, fsync, truncate,
/// remove) and applies `fault` at number `at`.
#[derive(Debug)]
pub struct FaultyStorage {
    pub inner: Arc<MemStorage>,
    ops: AtomicU64,
    at: u64,
    fault: Fault,
}

impl FaultyStorage {
    pub fn new(inner: Arc<MemStorage>, at: u64, fault: Fault) -> Self {
        FaultyStorage {
            inner,
            ops: AtomicU64::new(0),
            at,
            fault,
        }
    }

    /// Mutating operations seen so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    fn step(&self, what: &str, name: &str) -> std::io::Result<()> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let failing = match self.fault {
            Fault::Crash => n >= self.at,
            Fault::Error => n == self.at,
        };
        if failing {
            return Err(std::io::Error::other(format!(
                "injected {:?} at operation {n} ({what} {name})",
                self.fault
            )));
        }
        Ok(())
    }
}

impl Storage for FaultyStorage {
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        self.inner.read(name)
    }
    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.step("write", name)?;
        self.inner.write_atomic(name, data)
    }
    fn append(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.step("append", name)?;
        self.inner.append(name, data)
    }
    fn sync(&self, name: &str) -> std::io::Result<()> {
        self.step("fsync", name)?;
        self.inner.sync(name)
    }
    fn truncate(&self, name: &str, len: u64) -> std::io::Result<()> {
        self.step("truncate", name)?;
        self.inner.truncate(name, len)
    }
    fn exists(&self, name: &str) -> bool {
        self.inner.exists(name)
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.step("remove", name)?;
        self.inner.remove(name)
    }
    fn list(&self) -> std::io::Result<Vec<String>> {
        self.inner.list()
    }
    fn location(&self) -> PathBuf {
        self.inner.location()
    }
}
