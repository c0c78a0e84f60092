//! Roles of the config file (`[roles.<name>]`: commands, scope, masks, restrictive) and the
//! [`Access`] of each user built from them, checked before the server starts: a scope
//! that does not parse or bind, a mask of an unknown kind or on an unknown field, a user
//! naming an undefined role all refuse the start, naming the role, the field and the
//! position.
//!
//! ```toml
//! [roles.store_s012]
//! scope = "home_store = 'S012'"          # a segment, or "ALL"; none: the role sees nobody
//! mask = { phone = "partial(3,4)", email = "email", id_no = "hide", openid = "hash" }
//! commands = ["read"]                     # read | write | admin | export
//! restrictive = false                     # true: ANDed with the user's other scopes
//!
//! [mask]
//! secret_file = "/etc/memberdb/mask.key"  # the key of the `hash` mask (the file's bytes)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use memberdb::{Access, Command, Database, Mask, Role, RoleScope};
use serde::Deserialize;

use super::config::{Config, User};

/// One `[roles.<name>]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleConfig {
    /// A segment, or `ALL`; left out, the role sees nobody.
    pub(crate) scope: Option<String>,
    /// Masked fields: field name to mask.
    #[serde(default)]
    pub(crate) mask: BTreeMap<String, String>,
    /// Command classes.
    #[serde(default)]
    pub(crate) commands: Vec<String>,
    /// ANDed with the user's other scopes instead of ORed.
    #[serde(default)]
    pub(crate) restrictive: bool,
}

/// The `[mask]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MaskConfig {
    /// The key of the `hash` mask: this file's bytes.
    pub(crate) secret_file: Option<PathBuf>,
}

impl RoleConfig {
    /// The role `name`, parsed: errors name the role, the field and the position.
    fn role(&self, name: &str) -> Result<Role> {
        if Role::builtin(name).is_some() {
            bail!("role '{name}': the built-in roles read, write and admin cannot be redefined");
        }
        let mut commands = Vec::new();
        for (i, c) in self.commands.iter().enumerate() {
            commands.push(Command::parse(c).with_context(|| {
                format!(
                    "role '{name}': commands[{i}] = \"{c}\" is not a command class; the classes \
                     are {}",
                    Command::NAMES
                )
            })?);
        }
        let scope = match &self.scope {
            None => RoleScope::Nothing,
            Some(text) => RoleScope::parse(text)
                .map_err(|e| anyhow::anyhow!("role '{name}': scope \"{text}\": {e}"))?,
        };
        let mut masks = BTreeMap::new();
        for (field, text) in &self.mask {
            let mask: Mask = text
                .parse()
                .map_err(|e| anyhow::anyhow!("role '{name}': mask on field '{field}': {e}"))?;
            masks.insert(field.clone(), mask);
        }
        Ok(Role {
            name: name.to_string(),
            commands,
            scope,
            restrictive: self.restrictive,
            masks,
        })
    }
}

impl User {
    /// The user's role names: `roles`, or the older single `role`.
    pub(crate) fn role_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.roles.iter().map(String::as_str).collect();
        names.extend(self.role.as_deref());
        names
    }
}

/// Every role of `config` parsed, by name (the built-in ones included).
pub(crate) fn roles(config: &Config) -> Result<HashMap<String, Role>> {
    let mut roles: HashMap<String, Role> = ["read", "write", "admin"]
        .into_iter()
        .filter_map(|n| Role::builtin(n).map(|r| (n.to_string(), r)))
        .collect();
    for (name, role) in &config.roles {
        roles.insert(name.clone(), role.role(name)?);
    }
    let hashes = roles
        .values()
        .flat_map(|r| r.masks.iter().map(move |(f, m)| (r, f, m)))
        .find(|(_, _, m)| **m == Mask::Hash);
    if let Some((role, field, _)) = hashes
        && config.mask.secret_file.is_none()
    {
        bail!(
            "role '{}': mask on field '{field}' is 'hash', which needs a key: set [mask] \
             secret_file to a file of random bytes (e.g. head -c 32 /dev/urandom > mask.key)",
            role.name
        );
    }
    for user in &config.users {
        let names = user.role_names();
        if names.is_empty() {
            bail!(
                "user '{}' has no role; give it roles = [\"read\"] or others",
                user.name
            );
        }
        for (i, role) in names.iter().enumerate() {
            if !roles.contains_key(*role) {
                let mut known: Vec<&str> = roles.keys().map(String::as_str).collect();
                known.sort_unstable();
                bail!(
                    "user '{}': roles[{i}] = \"{role}\" is not a defined role; the roles are {}",
                    user.name,
                    known.join(", ")
                );
            }
        }
    }
    Ok(roles)
}

/// The access of every user of `config`, checked against `db`'s catalog: a mask must name
/// a field the database has (an attribute, trait, identifier type or event property) and a
/// scope must bind (its names exist, its values fit their types).
pub(crate) fn accesses(config: &Config, db: &Database) -> Result<HashMap<String, Arc<Access>>> {
    let roles = roles(config)?;
    let secret: Arc<[u8]> = match &config.mask.secret_file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read [mask] secret_file {}", path.display()))?;
            if bytes.len() < 16 {
                bail!(
                    "[mask] secret_file {} holds {} bytes; a key needs at least 16 random bytes",
                    path.display(),
                    bytes.len()
                );
            }
            Arc::from(bytes)
        }
        None => Arc::from(&[][..]),
    };
    let mut fields: Vec<String> = db.attributes().into_iter().map(|a| a.name).collect();
    fields.extend(db.traits().into_iter().map(|t| t.name));
    fields.extend(db.identifiers().into_iter().map(|i| i.def.name));
    fields.extend(db.event_properties().into_iter().map(|(p, _)| p));
    let mut names: Vec<&String> = config.roles.keys().collect();
    names.sort();
    for name in names {
        let role = &roles[name];
        for field in role.masks.keys() {
            if !fields.contains(field) {
                bail!(
                    "role '{name}': mask on field '{field}': the database has no attribute, \
                     trait, identifier type or event property '{field}'"
                );
            }
        }
        if let RoleScope::Segment { text, segment } = &role.scope {
            db.check_segment(segment)
                .map_err(|e| anyhow::anyhow!("role '{name}': scope \"{text}\": {e}"))?;
        }
    }
    for (i, field) in config.audit.fields.iter().enumerate() {
        if !fields.contains(field) {
            bail!(
                "[audit] fields[{i}] = \"{field}\": the database has no attribute, trait, \
                 identifier type or event property '{field}'"
            );
        }
    }
    let mut accesses = HashMap::new();
    for user in &config.users {
        let user_roles: Vec<Role> = user
            .role_names()
            .into_iter()
            .map(|r| roles[r].clone())
            .collect();
        accesses.insert(
            user.name.clone(),
            Arc::new(Access::new(&user.name, &user_roles, secret.clone())),
        );
    }
    Ok(accesses)
}
