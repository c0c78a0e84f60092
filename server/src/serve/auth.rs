//! Users, roles and passwords: argon2 hashes in the configuration, checked in constant time.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Deserialize;

use super::config::User;

/// What a user may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// QUERY of read statements, MEMBER.GET, INFO.
    Read,
    /// + MEMBER.SET, TAG.ADD, TAG.DEL, EVENT.ADD.
    Write,
    /// + DEFINE GROUP, DROP GROUP.
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// The argon2id hash of `password`, as a PHC string for the configuration file.
pub(crate) fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// The role of `user` if `password` is theirs. The comparison of hashes is constant time
/// (argon2's verifier); an unknown user costs the same hash computation as a known one, so
/// the answer's timing does not tell whether a user exists.
pub(crate) fn authenticate(users: &[User], user: &str, password: &str) -> Option<Role> {
    // A hash to verify against when the user is unknown, made once.
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let found = users.iter().find(|u| u.name == user);
    let hash = match found {
        Some(u) => u.password_hash.as_str(),
        None => DECOY.get_or_init(|| hash_password("memberdb decoy").unwrap_or_default()),
    };
    let ok = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    match found {
        Some(u) if ok => Some(u.role),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_authenticates_and_nothing_else_does() {
        let users = vec![User {
            name: "ops".into(),
            password_hash: hash_password("s3cret").unwrap(),
            role: Role::Write,
        }];
        assert!(users[0].password_hash.starts_with("$argon2id$"));
        assert_eq!(authenticate(&users, "ops", "s3cret"), Some(Role::Write));
        assert_eq!(authenticate(&users, "ops", "s3cret "), None);
        assert_eq!(authenticate(&users, "nobody", "s3cret"), None);
        assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
    }
}
