//! The server's configuration file (TOML): address, users and roles, limits, fsync policy.
//!
//! ```toml
//! bind = "127.0.0.1:7379"
//! sync = "always"                # always | interval:<ms> | off
//! answer_cache = 10000           # repeated COUNT / BREAKDOWN answers kept until a write
//! export_dir = "/srv/memberdb/exports"  # where EXPORT ... TO 'name.csv' writes (admin only)
//!
//! [limits]
//! request_bytes = 1048576        # see Limits for every limit and its default
//!
//! [[users]]
//! name = "journeys"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."   # memberdb hash-password
//! roles = ["write"]              # built-in: read | write | admin; or roles of [roles]
//! ```
//!
//! Roles with scopes and masks: see `roles.rs`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::resp::FrameLimits;

/// Limits, with defaults safe for a server on a shared network.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Limits {
    /// Bytes of one request (all its arguments).
    pub(crate) request_bytes: usize,
    /// Bytes of one argument.
    pub(crate) bulk_bytes: usize,
    /// Arguments of one request.
    pub(crate) args: usize,
    /// Bytes of one statement of QUERY.
    pub(crate) statement_bytes: usize,
    /// Nesting of a segment: each NOT and each parenthesis is a level (at most 64, the
    /// language's own limit).
    pub(crate) nesting: usize,
    /// Milliseconds a read statement (COUNT, FIND, BREAKDOWN, EXPLAIN, SHOW) may run before
    /// it is stopped with an error (0: no limit). DEFINE / DROP GROUP are not bound by it.
    pub(crate) statement_ms: u64,
    /// Lines one BREAKDOWN returns at most (after TOP); more is refused, naming TOP.
    pub(crate) breakdown_rows: usize,
    /// Members one FIND returns at most (a larger LIMIT is refused).
    pub(crate) find_rows: u64,
    /// Connections at once; more are refused with an error.
    pub(crate) clients: usize,
    /// Seconds a connection may stay silent (or stall in the middle of a request).
    pub(crate) idle_seconds: u64,
    /// Seconds a write of replies may block on a client that does not read them; then the
    /// client is disconnected (its unsent replies dropped) and the reason logged.
    pub(crate) write_timeout_seconds: u64,
    /// Bytes of replies a connection holds before it writes them out: pipelined replies
    /// are sent in batches of this size, so a client that sends many requests and reads
    /// nothing holds at most this plus one reply in the server.
    pub(crate) reply_buffer_bytes: usize,
    /// Seconds a connection has to authenticate (when users are configured), counted from
    /// connect: no reply restarts this clock.
    pub(crate) auth_seconds: u64,
    /// Connections at once that have not authenticated yet (when users are configured),
    /// out of `clients`: the rest of the slots stay for clients that authenticate.
    pub(crate) unauthenticated_clients: usize,
    /// Password verifications (argon2, 19 MiB and tens of milliseconds each) at once.
    pub(crate) auth_concurrency: usize,
    /// Seconds after SIGTERM / SIGINT before connections still busy are cut, so shutdown
    /// ends in bounded time whatever the clients do.
    pub(crate) shutdown_seconds: u64,
    /// Threads that run QUERY statements (0: one per core); more queries wait their turn.
    pub(crate) query_threads: usize,
    /// Bytes of a request before AUTH, when users are configured.
    pub(crate) unauthenticated_request_bytes: usize,
    /// Arguments of a request before AUTH, when users are configured.
    pub(crate) unauthenticated_args: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_bytes: 1 << 20,
            bulk_bytes: 512 << 10,
            args: 1024,
            statement_bytes: 16 << 10,
            nesting: 64,
            statement_ms: 2000,
            breakdown_rows: 10_000,
            find_rows: 10_000,
            clients: 1000,
            idle_seconds: 300,
            write_timeout_seconds: 10,
            reply_buffer_bytes: 64 << 10,
            auth_seconds: 10,
            unauthenticated_clients: 64,
            auth_concurrency: 2,
            shutdown_seconds: 10,
            query_threads: 0,
            unauthenticated_request_bytes: 4096,
            unauthenticated_args: 8,
        }
    }
}

impl Limits {
    pub(crate) fn frames(&self, authenticated: bool) -> FrameLimits {
        if authenticated {
            FrameLimits {
                request_bytes: self.request_bytes,
                bulk_bytes: self.bulk_bytes,
                args: self.args,
            }
        } else {
            FrameLimits {
                request_bytes: self.unauthenticated_request_bytes.min(self.request_bytes),
                bulk_bytes: self.unauthenticated_request_bytes.min(self.bulk_bytes),
                args: self.unauthenticated_args.min(self.args),
            }
        }
    }
}

/// One user of the server.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct User {
    pub(crate) name: String,
    /// A PHC string (argon2), as `memberdb hash-password` prints it; never the password.
    pub(crate) password_hash: String,
    /// The user's roles (built-in or defined under `[roles]`).
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    /// One role: the older spelling of `roles = ["..."]`.
    pub(crate) role: Option<String>,
}

/// The `[audit]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuditConfig {
    /// Fields whose unmasked reads are recorded (with the members read).
    pub(crate) fields: Vec<String>,
    /// Days records are kept (0: forever).
    pub(crate) retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            fields: Vec::new(),
            retention_days: 365,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) bind: String,
    pub(crate) sync: String,
    /// Answers of repeated COUNT / BREAKDOWN statements kept until the next write (0: off).
    pub(crate) answer_cache: usize,
    /// Bytes the kept answers may take at most (as they are sent, RESP2).
    pub(crate) answer_cache_bytes: usize,
    /// Permissions of the files the database creates, as octal text; directories get the
    /// same with the execute bit wherever a read bit is set ("0600" -> 0700).
    pub(crate) file_mode: String,
    pub(crate) limits: Limits,
    pub(crate) users: Vec<User>,
    /// Roles with commands, scopes and masks, by name (`roles.rs`).
    pub(crate) roles: std::collections::BTreeMap<String, super::roles::RoleConfig>,
    /// The key of the `hash` mask.
    pub(crate) mask: super::roles::MaskConfig,
    /// What the audit log records, and for how long.
    pub(crate) audit: AuditConfig,
    /// Clean-room counts (`OVERLAP`).
    pub(crate) share: super::share::ShareConfig,
    /// SHA-256 of the config file's bytes (recorded at each start: roles change only by
    /// restart).
    #[serde(skip)]
    pub(crate) source_hash: String,
    /// The directory EXPORT over the wire writes into (a file name only; never a path the
    /// client gives). Without it, EXPORT over the wire is refused.
    pub(crate) export_dir: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:7379".to_string(),
            sync: "always".to_string(),
            answer_cache: 10_000,
            answer_cache_bytes: 64 << 20,
            file_mode: "0600".to_string(),
            limits: Limits::default(),
            users: Vec::new(),
            roles: std::collections::BTreeMap::new(),
            mask: super::roles::MaskConfig::default(),
            audit: AuditConfig::default(),
            share: super::share::ShareConfig::default(),
            source_hash: String::new(),
            export_dir: None,
        }
    }
}

impl Config {
    pub(crate) fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))?;
        config.source_hash = memberdb::audit::sha256_hex(text.as_bytes());
        config.check()?;
        if !config.users.is_empty() {
            check_private(path)?;
        }
        Ok(config)
    }

    /// The file mode of the database's files, parsed.
    pub(crate) fn file_mode(&self) -> Result<u32> {
        u32::from_str_radix(self.file_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777 && m & 0o600 == 0o600)
            .with_context(|| {
                format!(
                    "file_mode = \"{}\" is not an octal mode that lets the server read and \
                     write its own files (e.g. \"0600\" or \"0640\")",
                    self.file_mode
                )
            })
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.limits.nesting > 64 {
            bail!("limits.nesting is at most 64 (the language's own limit)");
        }
        let l = &self.limits;
        for (value, name) in [
            (l.clients, "clients"),
            (l.unauthenticated_clients, "unauthenticated_clients"),
            (l.auth_concurrency, "auth_concurrency"),
            (l.reply_buffer_bytes, "reply_buffer_bytes"),
            (l.write_timeout_seconds as usize, "write_timeout_seconds"),
            (l.auth_seconds as usize, "auth_seconds"),
        ] {
            if value == 0 {
                bail!("limits.{name} must be at least 1");
            }
        }
        self.file_mode()?;
        if let Some(dir) = &self.export_dir
            && !dir.is_dir()
        {
            bail!(
                "export_dir = \"{}\" is not a directory; create it (writable by the server) or \
                 leave export_dir out",
                dir.display()
            );
        }
        for user in &self.users {
            if user.name.is_empty() {
                bail!("a user has an empty name");
            }
            if !user.password_hash.starts_with("$argon2") {
                bail!(
                    "user '{}': password_hash must be an argon2 hash from `memberdb hash-password`, \
                     never the password itself",
                    user.name
                );
            }
        }
        let mut names: Vec<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!("user '{}' is configured twice", w[0]);
        }
        super::roles::roles(self)?;
        self.sync
            .parse::<memberdb::SyncPolicy>()
            .map_err(|e| anyhow::anyhow!("sync: {e}"))?;
        Ok(())
    }
}

/// A config holding password hashes must not be readable by others (as OpenSSH refuses a
/// private key that others can read): the hashes could be attacked offline.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "the config file {} holds password hashes and is readable by others (mode {:04o}); \
             run chmod 600 {} and start again",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_defaults_fill_the_rest() {
        let config: Config = toml::from_str(
            r#"
            bind = "0.0.0.0:7000"
            [limits]
            clients = 10
            [[users]]
            name = "ops"
            password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
            role = "admin"
            "#,
        )
        .unwrap();
        config.check().unwrap();
        assert_eq!(config.limits.clients, 10);
        assert_eq!(config.limits.args, Limits::default().args);
        assert_eq!(config.users[0].role_names(), ["admin"]);
    }

    #[test]
    fn plain_passwords_unknown_keys_and_bad_values_are_refused() {
        let plain: Config =
            toml::from_str("[[users]]\nname = \"a\"\npassword_hash = \"secret\"\nrole = \"read\"")
                .unwrap();
        assert!(plain.check().unwrap_err().to_string().contains("argon2"));
        assert!(toml::from_str::<Config>("bindd = \"x\"").is_err());
        let root: Config =
            toml::from_str("[[users]]\nname=\"a\"\npassword_hash=\"$argon2\"\nrole=\"root\"")
                .unwrap();
        let e = root.check().unwrap_err().to_string();
        assert!(
            e.contains("user 'a'") && e.contains("\"root\" is not a defined role"),
            "{e}"
        );
        let sync = Config {
            sync: "sometimes".into(),
            ..Config::default()
        };
        assert!(sync.check().is_err());
    }
}
