//! The server's configuration file (TOML): address, users and roles, limits, fsync policy.
//!
//! ```toml
//! bind = "127.0.0.1:7379"
//! sync = "always"                # always | interval:<ms> | off
//! answer_cache = 10000           # repeated COUNT / BREAKDOWN answers kept until a write
//!
//! [limits]
//! request_bytes = 1048576        # see Limits for every limit and its default
//!
//! [[users]]
//! name = "journeys"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."   # memberdb hash-password
//! role = "write"                 # read | write | admin
//! ```

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::auth::Role;
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
    /// Parenthesis / NOT nesting of a segment (at most 64, the language's own limit).
    pub(crate) nesting: usize,
    /// Members one FIND returns at most (a larger LIMIT is refused).
    pub(crate) find_rows: u64,
    /// Connections at once; more are refused with an error.
    pub(crate) clients: usize,
    /// Seconds a connection may stay silent (or stall in the middle of a request).
    pub(crate) idle_seconds: u64,
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
            find_rows: 10_000,
            clients: 1000,
            idle_seconds: 300,
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
    pub(crate) role: Role,
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) bind: String,
    pub(crate) sync: String,
    /// Answers of repeated COUNT / BREAKDOWN statements kept until the next write (0: off).
    pub(crate) answer_cache: usize,
    pub(crate) limits: Limits,
    pub(crate) users: Vec<User>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:7379".to_string(),
            sync: "always".to_string(),
            answer_cache: 10_000,
            limits: Limits::default(),
            users: Vec::new(),
        }
    }
}

impl Config {
    pub(crate) fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))?;
        config.check()?;
        Ok(config)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.limits.nesting > 64 {
            bail!("limits.nesting is at most 64 (the language's own limit)");
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
        self.sync
            .parse::<memberdb::SyncPolicy>()
            .map_err(|e| anyhow::anyhow!("sync: {e}"))?;
        Ok(())
    }
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
        assert_eq!(config.users[0].role, Role::Admin);
    }

    #[test]
    fn plain_passwords_unknown_keys_and_bad_values_are_refused() {
        let plain: Config =
            toml::from_str("[[users]]\nname = \"a\"\npassword_hash = \"secret\"\nrole = \"read\"")
                .unwrap();
        assert!(plain.check().unwrap_err().to_string().contains("argon2"));
        assert!(toml::from_str::<Config>("bindd = \"x\"").is_err());
        assert!(
            toml::from_str::<Config>(
                "[[users]]\nname=\"a\"\npassword_hash=\"$argon2\"\nrole=\"root\""
            )
            .is_err()
        );
        let sync = Config {
            sync: "sometimes".into(),
            ..Config::default()
        };
        assert!(sync.check().is_err());
    }
}
