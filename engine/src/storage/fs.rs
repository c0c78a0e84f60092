//! [`FsStorage`]: a database directory on the local file system.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{FillFn, Storage};

/// The name of the lock file in a database directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A directory on the local file system.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
    /// Files open for appending, with whether their directory entry still needs an fsync.
    /// Shared so that an fsync runs without this lock: appends to the same file go on
    /// meanwhile (a checkpoint syncs the log while writers append to it).
    appending: Mutex<HashMap<String, (Arc<File>, bool)>>,
    /// The lock file, once locked; the lock lasts as long as the handle.
    lock: Mutex<Option<File>>,
    /// Permissions of the files this storage creates.
    file_mode: u32,
}

/// Permissions of a database's files unless the caller says otherwise: the owner only, since
/// they hold members' phone numbers and addresses in clear.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// The mode of a directory holding files of `file_mode`: searchable wherever readable.
pub fn dir_mode(file_mode: u32) -> u32 {
    file_mode | ((file_mode & 0o444) >> 2)
}

impl FsStorage {
    /// Uses `dir`, creating it (owner only) if needed.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        FsStorage::with_mode(dir, DEFAULT_FILE_MODE)
    }

    /// Uses `dir`; files it creates get `file_mode`, directories it creates
    /// [`dir_mode`]`(file_mode)`. An existing directory keeps its permissions.
    pub fn with_mode(dir: impl Into<PathBuf>, file_mode: u32) -> std::io::Result<Self> {
        let dir = dir.into();
        create_dir(&dir, dir_mode(file_mode))?;
        Ok(FsStorage {
            dir,
            appending: Mutex::new(HashMap::new()),
            lock: Mutex::new(None),
            file_mode,
        })
    }

    /// Options that create a file with this storage's mode.
    fn create_options(&self) -> OpenOptions {
        let mut options = OpenOptions::new();
        options.create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, self.file_mode);
        options
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn appending(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<File>, bool)>> {
        // Holding the lock cannot leave the map half-updated.
        self.appending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn create_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode);
    #[cfg(not(unix))]
    let _ = mode;
    builder.create(dir)
}

/// Bytes a streamed file may hold unsynced before [`SyncingWriter`] syncs them.
const SYNC_EVERY: u64 = 32 << 20;

/// A file written in one stream, synced every [`SYNC_EVERY`] bytes. Gigabytes left dirty in
/// the page cache would be written back all at once, and the kernel then throttles every
/// writer of the machine, the log's appends included; syncing as it goes keeps a
/// checkpoint's writes from stalling the writers of the database (RocksDB's
/// `bytes_per_sync` does the same).
struct SyncingWriter {
    file: File,
    unsynced: u64,
}

impl Write for SyncingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FsStorage {
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(name))
    }

    #[allow(unsafe_code)]
    fn map(&self, name: &str) -> std::io::Result<Bytes> {
        let file = File::open(self.path(name))?;
        if file.metadata()?.len() == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: the files memberdb maps (data files of a generation) are written once by
        // `write_atomic` (a new file renamed into place) and never modified afterwards; a
        // generation's files are removed only after the manifest no longer names them, and
        // the lock file keeps other memberdb processes from writing to the directory. A
        // mapping therefore never sees its file change underneath it.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Bytes::from_owner(map))
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.write_atomic_with(name, &mut |out| out.write_all(data))
    }

    fn write_atomic_with(&self, name: &str, fill: &mut FillFn<'_>) -> std::io::Result<()> {
        // write to a temporary name, fsync, rename over the target, fsync the directory
        let tmp = self.path(&format!("{name}.tmp"));
        let file = self
            .create_options()
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        let mut out =
            std::io::BufWriter::with_capacity(1 << 20, SyncingWriter { file, unsynced: 0 });
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?.file;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, self.path(name))?;
        sync_dir(&self.dir)
    }

    fn append(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let mut files = self.appending();
        if !files.contains_key(name) {
            let path = self.path(name);
            let new = !path.exists();
            let file = self.create_options().append(true).open(path)?;
            files.insert(name.to_string(), (Arc::new(file), new));
        }
        let (file, _) = files.get(name).expect("inserted above");
        (&**file).write_all(data)
    }

    fn sync(&self, name: &str) -> std::io::Result<()> {
        let (file, new) = match self.appending().get(name) {
            Some((file, new)) => (file.clone(), *new),
            None => return File::open(self.path(name))?.sync_all(),
        };
        // Without the lock: appends wait for neither the disk nor each other's fsyncs.
        file.sync_data()?;
        if new {
            sync_dir(&self.dir)?;
            if let Some((_, new)) = self.appending().get_mut(name) {
                *new = false;
            }
        }
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> std::io::Result<()> {
        self.appending().remove(name);
        let file = OpenOptions::new().write(true).open(self.path(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.appending().remove(name);
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        sync_dir(&self.dir)
    }

    fn list(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn lock(&self) -> Result<(), String> {
        let mut held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let path = self.path(LOCK_FILE);
        let mut file = self
            .create_options()
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                let by = if owner.is_empty() {
                    "another process".to_string()
                } else if owner == std::process::id().to_string() {
                    format!("another handle in this process ({owner})")
                } else {
                    format!("process {owner}")
                };
                return Err(format!(
                    "the database at {} is in use by {by} (lock file {}); stop that process \
                     or open the database read-only",
                    self.dir.display(),
                    path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        // Record who holds it, for the message another process prints.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        *held = Some(file);
        Ok(())
    }

    fn location(&self) -> PathBuf {
        self.dir.clone()
    }
}
