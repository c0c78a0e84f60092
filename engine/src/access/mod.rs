//! Governed access (DESIGN section 12): roles, and what one user may run (`commands`), which
//! members it sees (`scope`) and which fields it sees masked (`mask.rs`); a
//! [`Session`](session::Session) runs statements under them.
//!
//! The scope is the universe of every plan the session runs, so `NOT`, `ALL`, counts,
//! breakdowns and funnels stay inside it; masks apply at output, and a predicate on a
//! masked field is refused before anything is bound (a masked value cannot be probed).

mod identities;
pub(crate) mod mask;
pub(crate) mod session;
mod streams;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::computed::ValueExpr;
use crate::error::{Error, Result};
use crate::segment::{Predicate, PropFilter, Segment};
pub use mask::Mask;

/// A class of commands a role may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    /// Read statements (COUNT, FIND, BREAKDOWN, FUNNEL, EXPLAIN, SHOW), MEMBER.GET,
    /// ID.LOOKUP, reading group streams.
    Read,
    /// Writes of member data (MEMBER.SET, TAG.ADD/DEL, EVENT.ADD, identities) and stream
    /// consumer groups; includes `read`.
    Write,
    /// EXPORT; included in `admin`.
    Export,
    /// Definitions (groups, traits, attributes, identifiers), the clock, erasure and the
    /// audit stream; includes every other class.
    Admin,
}

impl Command {
    /// The names as a config writes them.
    pub const NAMES: &'static str = "read, write, admin, export";

    /// The class named `name` (`read`, `write`, `admin`, `export`).
    pub fn parse(name: &str) -> Option<Command> {
        Some(match name {
            "read" => Command::Read,
            "write" => Command::Write,
            "export" => Command::Export,
            "admin" => Command::Admin,
            _ => return None,
        })
    }

    /// The classes this one includes, itself among them.
    fn implied(self) -> &'static [Command] {
        match self {
            Command::Read => &[Command::Read],
            Command::Write => &[Command::Read, Command::Write],
            Command::Export => &[Command::Export],
            Command::Admin => &[
                Command::Read,
                Command::Write,
                Command::Export,
                Command::Admin,
            ],
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Read => "read",
            Command::Write => "write",
            Command::Export => "export",
            Command::Admin => "admin",
        })
    }
}

/// The members a role sees.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleScope {
    /// Every member (`scope = "ALL"`, and the built-in roles).
    All,
    /// No member (a defined role that gives no scope).
    Nothing,
    /// The members of a segment, kept with its text.
    Segment {
        /// As the config writes it.
        text: String,
        /// Parsed.
        segment: Segment,
    },
}

impl RoleScope {
    /// A scope as a config writes it: `ALL`, or a segment of the language. A segment that
    /// does not parse is an error with the position in `text` (names are not checked
    /// here: a scope naming an attribute that does not exist selects nobody until it
    /// exists).
    pub fn parse(text: &str) -> Result<RoleScope> {
        if text.trim().eq_ignore_ascii_case("ALL") {
            return Ok(RoleScope::All);
        }
        const PREFIX: &str = "COUNT ";
        let statement = crate::query::parse_statement(&format!("{PREFIX}{text}")).map_err(|e| {
            Error::InvalidSegment(format!(
                "{} (at character {} of the scope)",
                e.message,
                e.span.start.saturating_sub(PREFIX.len()) + 1
            ))
        })?;
        let memberdb_query::ast::StatementKind::Count(expr) = &statement.kind else {
            return Err(Error::InvalidSegment(
                "a scope is a segment, not a statement".to_string(),
            ));
        };
        if statement.as_of.is_some() {
            return Err(Error::InvalidSegment(
                "a scope is a segment; AS OF has no place in it".to_string(),
            ));
        }
        let (segment, _) = crate::query::bind::segment(expr).map_err(|e| {
            let at = match &e {
                Error::At { span, .. } => {
                    format!(
                        " (at character {} of the scope)",
                        span.0.saturating_sub(PREFIX.len()) + 1
                    )
                }
                _ => String::new(),
            };
            Error::InvalidSegment(format!("{e}{at}"))
        })?;
        Ok(RoleScope::Segment {
            text: text.to_string(),
            segment,
        })
    }
}

/// A role: the commands it may run, the members it sees, the fields it sees masked.
#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// The command classes it may run.
    pub commands: Vec<Command>,
    /// The members it sees.
    pub scope: RoleScope,
    /// A restrictive role's scope is intersected with the user's other scopes instead of
    /// added to them.
    pub restrictive: bool,
    /// Masked fields (attributes, traits, identifier types, event properties) by name.
    pub masks: BTreeMap<String, Mask>,
}

impl Role {
    /// The built-in roles `read`, `write` and `admin`: unscoped, unmasked.
    pub fn builtin(name: &str) -> Option<Role> {
        let command = match name {
            "read" => Command::Read,
            "write" => Command::Write,
            "admin" => Command::Admin,
            _ => return None,
        };
        Some(Role {
            name: name.to_string(),
            commands: vec![command],
            scope: RoleScope::All,
            restrictive: false,
            masks: BTreeMap::new(),
        })
    }
}

/// What one user may do: its roles combined. Commands are the union of its roles'; the
/// scope is the union of its permissive roles' scopes intersected with every restrictive
/// one (a user with restrictive roles only sees nobody, as in PostgreSQL); a field is masked
/// if any role masks it (the first role's mask, in the user's order).
#[derive(Clone, Debug)]
pub struct Access {
    user: String,
    roles: Vec<String>,
    commands: Vec<Command>,
    /// `None`: every member.
    scope: Option<Segment>,
    pub(crate) masks: BTreeMap<String, Mask>,
    /// The key of the `hash` mask.
    pub(crate) secret: Arc<[u8]>,
}

impl Access {
    /// `user` with `roles`; `secret` keys the `hash` mask.
    pub fn new(user: &str, roles: &[Role], secret: Arc<[u8]>) -> Access {
        let mut commands: Vec<Command> = roles
            .iter()
            .flat_map(|r| r.commands.iter().flat_map(|c| c.implied()))
            .copied()
            .collect();
        commands.sort_unstable();
        commands.dedup();
        let mut permissive: Vec<Segment> = Vec::new();
        let mut everyone = false;
        let mut restrictive: Vec<Segment> = Vec::new();
        for role in roles {
            let segment = match &role.scope {
                RoleScope::All => None,
                RoleScope::Nothing => Some(Segment::Not(Box::new(Segment::All))),
                RoleScope::Segment { segment, .. } => Some(segment.clone()),
            };
            match (role.restrictive, segment) {
                (false, None) => everyone = true,
                (false, Some(s)) => permissive.push(s),
                (true, None) => {}
                (true, Some(s)) => restrictive.push(s),
            }
        }
        let base = match (everyone, permissive.len()) {
            (true, _) => None,
            (false, 0) => Some(Segment::Not(Box::new(Segment::All))),
            (false, 1) => permissive.pop(),
            (false, _) => Some(Segment::Or(permissive)),
        };
        let scope = match (base, restrictive.is_empty()) {
            (base, true) => base,
            (None, false) if restrictive.len() == 1 => restrictive.pop(),
            (None, false) => Some(Segment::And(restrictive)),
            (Some(b), false) => {
                let mut parts = vec![b];
                parts.extend(restrictive);
                Some(Segment::And(parts))
            }
        };
        let mut masks = BTreeMap::new();
        for role in roles {
            for (field, mask) in &role.masks {
                masks.entry(field.clone()).or_insert(*mask);
            }
        }
        Access {
            user: user.to_string(),
            roles: roles.iter().map(|r| r.name.clone()).collect(),
            commands,
            scope,
            masks,
            secret,
        }
    }

    /// Everything, everyone, nothing masked (an embedder's own process, an open server).
    pub fn admin() -> Access {
        let admin = Role::builtin("admin").unwrap_or_else(|| unreachable!());
        Access::new("admin", &[admin], Arc::from(&[][..]))
    }

    /// The user's name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's roles, as given.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Whether the user may run commands of `class`.
    pub fn allows(&self, class: Command) -> bool {
        self.commands.contains(&class)
    }

    /// `Ok` if the user may run `what`, a command of `class`; else [`Error::NoPermission`].
    pub fn require(&self, class: Command, what: &str) -> Result<()> {
        if self.allows(class) {
            return Ok(());
        }
        Err(Error::NoPermission(format!(
            "user '{}' (roles {}) may not run {what}: it needs a role with '{class}' in its \
             commands",
            self.user,
            self.roles.join(", ")
        )))
    }

    /// The segment of the members the user sees; `None` for every member.
    pub fn scope(&self) -> Option<&Segment> {
        self.scope.as_ref()
    }

    /// Whether the user sees only some members.
    pub fn is_scoped(&self) -> bool {
        self.scope.is_some()
    }

    /// The mask of `field` for this user, if any.
    pub fn mask_of(&self, field: &str) -> Option<Mask> {
        self.masks.get(field).copied()
    }

    /// Whether any field is masked for this user.
    pub fn masks_anything(&self) -> bool {
        !self.masks.is_empty()
    }

    /// `value` of `field` as the user sees it (`None`: hidden).
    pub(crate) fn show(
        &self,
        field: &str,
        value: crate::value::Value,
    ) -> Option<crate::value::Value> {
        match self.mask_of(field) {
            None => Some(value),
            Some(mask) => mask.apply(&value, &self.secret),
        }
    }

    /// Text `value` of identifier type `field` as the user sees it (`None`: hidden).
    pub(crate) fn show_text(&self, field: &str, value: String) -> Option<String> {
        match self.mask_of(field) {
            None => Some(value),
            Some(mask) => mask.apply_text(&value, &self.secret),
        }
    }

    /// [`Error::NoPermission`] for a use of masked `field` (`how`: "a comparison",
    /// "BREAKDOWN BY", ...). Never names a value.
    pub(crate) fn refused(&self, field: &str, how: &str) -> Error {
        Error::NoPermission(format!(
            "{how} on '{field}' is not allowed for user '{}': the field is masked for its \
             roles ({}); only IS NULL / IS NOT NULL may test it",
            self.user,
            self.roles.join(", ")
        ))
    }

    /// `Ok` unless `segment` tests a masked field other than by `IS NULL` / `IS NOT NULL`.
    pub(crate) fn check_segment(&self, segment: &Segment) -> Result<()> {
        if self.masks.is_empty() {
            return Ok(());
        }
        match segment {
            Segment::All | Segment::Tag(_) | Segment::InGroup(_) | Segment::Identifiers { .. } => {
                Ok(())
            }
            Segment::Attr { name, predicate } => {
                if self.masks.contains_key(name) && !is_null_test(predicate) {
                    return Err(self.refused(name, "a comparison"));
                }
                Ok(())
            }
            Segment::Did(did) => self.check_filter(did.filter.as_ref()),
            Segment::Sequence(s) => {
                self.check_filter(s.first.filter.as_ref())?;
                self.check_filter(s.then_filter.as_ref())?;
                match &s.matching {
                    Some(p) if self.masks.contains_key(p) => Err(self.refused(p, "MATCHING")),
                    _ => Ok(()),
                }
            }
            // a bare field's NULL test is allowed; anything computed from a masked field is not
            Segment::Value { value, predicate } => match value {
                ValueExpr::Attr(_) if is_null_test(predicate) => Ok(()),
                value => self.check_value(value, "a comparison"),
            },
            Segment::And(parts) | Segment::Or(parts) => {
                parts.iter().try_for_each(|p| self.check_segment(p))
            }
            Segment::Not(inner) => self.check_segment(inner),
        }
    }

    /// `Ok` unless `value` reads a masked field (`how` says what uses it).
    pub(crate) fn check_value(&self, value: &ValueExpr, how: &str) -> Result<()> {
        if self.masks.is_empty() {
            return Ok(());
        }
        if let Some(field) = value
            .attributes()
            .into_iter()
            .find(|a| self.masks.contains_key(*a))
        {
            return Err(self.refused(field, how));
        }
        for aggregate in value.aggregates() {
            if let Some(p) = aggregate.func.property()
                && self.masks.contains_key(p)
            {
                return Err(self.refused(p, how));
            }
            self.check_filter(aggregate.filter.as_ref())?;
        }
        Ok(())
    }

    /// `Ok` unless `filter` tests a masked event property other than by a NULL test.
    pub(crate) fn check_filter(&self, filter: Option<&PropFilter>) -> Result<()> {
        match filter {
            None => Ok(()),
            Some(PropFilter::Prop { name, predicate }) => {
                if self.masks.contains_key(name) && !is_null_test(predicate) {
                    return Err(self.refused(name, "a comparison"));
                }
                Ok(())
            }
            Some(PropFilter::And(parts) | PropFilter::Or(parts)) => {
                parts.iter().try_for_each(|p| self.check_filter(Some(p)))
            }
            Some(PropFilter::Not(inner)) => self.check_filter(Some(inner)),
        }
    }

    /// Whether `segment` reads a masked field at all (a group's or trait's definition shown
    /// to this user would reveal it).
    pub(crate) fn reads_masked(&self, segment: &Segment) -> bool {
        let mut fields = Vec::new();
        segment.read_fields(&mut fields);
        fields.iter().any(|f| self.masks.contains_key(*f))
    }
}

fn is_null_test(predicate: &Predicate) -> bool {
    matches!(predicate, Predicate::IsNull | Predicate::IsNotNull)
}

#[cfg(test)]
mod tests;
