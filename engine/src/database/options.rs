//! How a database is opened: its fsync policy, when it checkpoints, read-only.

use std::str::FromStr;
use std::time::Duration;

/// When the log is fsynced, and so what a crash can lose.
///
/// | policy | process crash (kill -9) | power loss or kernel crash |
/// |---|---|---|
/// | `Always` | nothing | nothing acknowledged |
/// | `Interval(d)` | nothing | at most the last `d` of acknowledged writes |
/// | `Off` | nothing | everything since the last checkpoint |
///
/// Every policy writes each change to the log (the operating system's page cache) before
/// acknowledging it, which is why a process crash never loses an acknowledged write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before acknowledging; concurrent writers share one fsync (group commit).
    #[default]
    Always,
    /// fsync in the background at this interval.
    Interval(Duration),
    /// Never fsync the log (checkpoints still fsync their files).
    Off,
}

impl FromStr for SyncPolicy {
    type Err = String;

    /// `always`, `off`, `interval` (100 ms) or `interval:<ms>`.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "always" => Ok(SyncPolicy::Always),
            "off" => Ok(SyncPolicy::Off),
            "interval" => Ok(SyncPolicy::Interval(Duration::from_millis(100))),
            _ => match text.strip_prefix("interval:") {
                Some(ms) => match ms.trim_end_matches("ms").parse::<u64>() {
                    Ok(ms) if ms > 0 => Ok(SyncPolicy::Interval(Duration::from_millis(ms))),
                    _ => Err(format!(
                        "'{text}': the interval is a positive number of milliseconds, e.g. interval:100"
                    )),
                },
                None => Err(format!(
                    "unknown fsync policy '{text}'; use always, interval, interval:<ms> or off"
                )),
            },
        }
    }
}

impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncPolicy::Always => write!(f, "always"),
            SyncPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
            SyncPolicy::Off => write!(f, "off"),
        }
    }
}

/// Where the engine's *now* comes from (DESIGN section 8, "The clock").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock: groups that move with time are brought up to date at least every
    /// second.
    #[default]
    Wall,
    /// Pinned, for tests and replays: it starts at this instant (or at the database's
    /// stored clock, if that is later) and moves only with [`crate::Database::set_clock`].
    Manual(crate::Timestamp),
}

/// Options for [`crate::Database::open_with`].
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// When the log is fsynced (default [`SyncPolicy::Always`]).
    pub sync: SyncPolicy,
    /// Checkpoint automatically once the log holds this many bytes (default 256 MiB).
    pub checkpoint_log_bytes: u64,
    /// Write automatic checkpoints on a background thread (default true). Other writers wait
    /// for a checkpoint only while its snapshot is taken either way; without the thread, the
    /// writer whose batch crossed `checkpoint_log_bytes` writes the checkpoint before its
    /// call returns: deterministic, for tests that crash at every I/O operation.
    pub background_checkpoints: bool,
    /// Open without the lock and refuse writes; a torn log tail is reported, not cut.
    pub read_only: bool,
    /// With `read_only`: why, as the error refusing a write says it (default: that the
    /// database was opened read-only). The CLI's sample database says how to get one's own.
    pub read_only_reason: Option<String>,
    /// Start an empty database where there is none (default true). False: opening a
    /// directory (or storage) without a database is an error, as for `read_only`; tools
    /// that only read or query use it, so a mistyped path does not answer 0 from a new,
    /// empty database.
    pub create_if_missing: bool,
    /// Permissions of the files the database creates (default 0600, the owner only:
    /// they hold personal data in clear); directories it creates get the matching mode
    /// (0700). Files that exist keep theirs.
    pub file_mode: u32,
    /// Called on the checkpointer thread after each checkpoint it writes (default none). A
    /// checkpoint allocates and frees hundreds of megabytes on that thread, which then
    /// sleeps: a process whose allocator keeps per-thread free memory (mimalloc) hands it to
    /// the OS here, e.g. with `mi_collect`. The `memberdb` server does.
    pub after_checkpoint: Option<fn()>,
    /// Check the checksum of every data file at open (default false): open then also
    /// reads the Parquet files that the column file stands for, which it otherwise leaves
    /// unread. `memberdb check` does.
    pub verify_all_files: bool,
    /// Where *now* comes from (default the wall clock).
    pub clock: Clock,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            sync: SyncPolicy::Always,
            checkpoint_log_bytes: 256 << 20,
            background_checkpoints: true,
            read_only: false,
            read_only_reason: None,
            create_if_missing: true,
            file_mode: crate::storage::DEFAULT_FILE_MODE,
            after_checkpoint: None,
            verify_all_files: false,
            clock: Clock::Wall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print_back() {
        for text in ["always", "off", "interval:250"] {
            let p: SyncPolicy = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(
            "interval".parse::<SyncPolicy>().unwrap(),
            SyncPolicy::Interval(Duration::from_millis(100))
        );
        assert!("sometimes".parse::<SyncPolicy>().is_err());
        assert!("interval:0".parse::<SyncPolicy>().is_err());
    }
}
