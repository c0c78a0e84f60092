//! Clean-room counts over the wire (DESIGN section 12): the `[share]` table, the pool files
//! a statement may name (only in `[share] directory`), and each user's daily budget of
//! OVERLAP statements against differencing attacks (two overlaps that differ by one member
//! tell whether that member is in the other party's pool).
//!
//!     [share]
//!     secret_file = "/etc/memberdb/share.key"   # the secret shared with the other party
//!     directory = "/srv/memberdb/pools"          # where pools are put to be counted
//!     min_group_size = 50                        # smaller counts are "suppressed"
//!     daily_budget = 100                         # OVERLAP statements per user per UTC day

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::resp::Reply;

/// The `[share]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ShareConfig {
    /// The secret the pools are keyed with (the file's bytes). Without it, OVERLAP is
    /// refused.
    pub(crate) secret_file: Option<PathBuf>,
    /// The directory pool files are read from: a statement names a file in it, never a
    /// path.
    pub(crate) directory: Option<PathBuf>,
    /// Counts under this are reported as `suppressed`.
    pub(crate) min_group_size: u64,
    /// OVERLAP statements one user may run per UTC day.
    pub(crate) daily_budget: u32,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            secret_file: None,
            directory: None,
            min_group_size: memberdb::share::DEFAULT_MIN_GROUP_SIZE,
            daily_budget: 100,
        }
    }
}

/// What the server keeps for OVERLAP: its options, and what each user spent today.
pub(crate) struct Share {
    options: Option<memberdb::share::ShareOptions>,
    directory: Option<PathBuf>,
    daily_budget: u32,
    /// Per user: the UTC day (days since the epoch) and the statements run that day.
    spent: Mutex<HashMap<String, (i64, u32)>>,
}

impl Share {
    /// The share state of `config`; an error (refusing the start) when its secret cannot be
    /// read or the table does not hold together.
    pub(crate) fn new(config: &ShareConfig) -> Result<Share> {
        if config.min_group_size == 0 {
            anyhow::bail!("[share] min_group_size must be at least 1 (the default is 50)");
        }
        let options = match &config.secret_file {
            Some(path) => Some(memberdb::share::ShareOptions {
                secret: memberdb::share::read_secret(path)
                    .with_context(|| format!("[share] secret_file {}", path.display()))?,
                min_group_size: config.min_group_size,
            }),
            None => None,
        };
        if options.is_some() && config.directory.is_none() {
            anyhow::bail!(
                "[share] secret_file is set but not [share] directory: set the directory pool \
                 files are read from"
            );
        }
        Ok(Share {
            options,
            directory: config.directory.clone(),
            daily_budget: config.daily_budget,
            spent: Mutex::new(HashMap::new()),
        })
    }

    /// The options an OVERLAP runs with, its pool file put in the directory, and one
    /// statement taken from `user`'s budget; the error reply otherwise.
    pub(crate) fn admit(
        &self,
        user: &str,
        pool: &mut memberdb_query::ast::Literal,
    ) -> Result<memberdb::share::ShareOptions, Reply> {
        let (Some(options), Some(dir)) = (&self.options, &self.directory) else {
            return Err(Reply::error(
                "ERR",
                "OVERLAP needs [share] secret_file and directory in the server's config",
            ));
        };
        super::commands::name_in_dir(
            dir,
            pool,
            "OVERLAP",
            "pools are read from [share] directory",
        )
        .map_err(|message| Reply::error("ERR", message))?;
        let today = memberdb::Timestamp::now()
            .micros()
            .div_euclid(86_400_000_000);
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        let used = spent.entry(user.to_string()).or_insert((today, 0));
        if used.0 != today {
            *used = (today, 0);
        }
        if used.1 >= self.daily_budget {
            return Err(Reply::error(
                "ERR",
                format!(
                    "user '{user}' has run its {} OVERLAP statements of today (share.daily_budget); \
                     the budget renews at 00:00 UTC",
                    self.daily_budget
                ),
            ));
        }
        used.1 += 1;
        Ok(options.clone())
    }
}
