//! [`Session`]: statements and member reads run as one user, through its [`Access`]: the
//! command classes it may run, its scope as the universe, its masks at output.

use std::sync::Arc;

use memberdb_query::ast::{ByColumn, Statement, StatementKind};

use super::{Access, Command};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::query::{Output, RunOptions, bind};
use crate::results::MemberRecord;
use crate::sequence::FunnelBy;
use crate::value::Timestamp;

/// A database used as one user: every statement, member read and write check goes through
/// the user's [`Access`].
///
/// ```
/// use std::sync::Arc;
/// use memberdb::{Access, Database, Role, RoleScope, Value};
///
/// let db = Database::in_memory();
/// db.upsert_member("M1", &[("home_store", Some(Value::from("S012"))), ("phone", Some(Value::from("13812341234")))])?;
/// db.upsert_member("M2", &[("home_store", Some(Value::from("S013"))), ("phone", Some(Value::from("13900001111")))])?;
/// let mut store = Role::builtin("read").unwrap();
/// store.name = "store_s012".into();
/// store.scope = RoleScope::parse("home_store = 'S012'")?;
/// store.masks.insert("phone".into(), "partial(3,4)".parse()?);
/// let session = db.session(Arc::new(Access::new("lin", &[store], Arc::from(&b"key"[..]))));
///
/// // NOT is the complement within the scope: M2 is not there to be counted.
/// let outputs = session.execute("COUNT NOT home_store = 'S099'", None)?;
/// assert_eq!(outputs[0], memberdb::query::Output::Count(1));
/// // a masked field is shown masked, and cannot be compared
/// let m1 = session.member("M1").unwrap();
/// assert!(m1.attributes.contains(&("phone".to_string(), Value::from("138****1234"))));
/// assert!(session.execute("COUNT phone = '13812341234'", None).is_err());
/// // a member outside the scope does not exist for the session
/// assert!(session.member("M2").is_none());
/// # Ok::<(), memberdb::Error>(())
/// ```
#[derive(Clone)]
pub struct Session<'db> {
    db: &'db Database,
    access: Arc<Access>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.access.user())
            .field("roles", &self.access.roles())
            .finish()
    }
}

impl Database {
    /// This database used as the user `access` describes (DESIGN section 12).
    pub fn session(&self, access: Arc<Access>) -> Session<'_> {
        Session { db: self, access }
    }
}

impl<'db> Session<'db> {
    /// The user's access.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The database.
    pub fn database(&self) -> &'db Database {
        self.db
    }

    /// Parses and runs `;`-separated statements as the user, stopping at the first error.
    pub fn execute(&self, text: &str, now: Option<Timestamp>) -> Result<Vec<Output>> {
        let statements = crate::query::parse_script(text).map_err(Error::Syntax)?;
        statements
            .iter()
            .map(|s| {
                self.run_with(
                    s,
                    &RunOptions {
                        now,
                        ..RunOptions::default()
                    },
                )
            })
            .collect()
    }

    /// Runs one statement as the user: refused with [`Error::NoPermission`] when its
    /// command class is not the user's or it tests a masked field; otherwise run over the
    /// user's scope, its output masked.
    pub fn run_with(&self, statement: &Statement, options: &RunOptions) -> Result<Output> {
        self.check(statement)?;
        // the scope and the masks are applied as the statement runs
        self.db.run_as(statement, options, Some(&self.access))
    }

    /// One member's record as the user sees it: `None` for a member outside the scope (as
    /// for one that does not exist), masked fields masked, hidden ones left out.
    pub fn member(&self, member_id: &str) -> Option<MemberRecord> {
        let record = self.db.member_within(member_id, self.access.scope())?;
        if !self.access.masks_anything() {
            return Some(record);
        }
        let access = &self.access;
        let shown = |fields: Vec<(String, crate::value::Value)>| {
            fields
                .into_iter()
                .filter_map(|(name, value)| {
                    let value = access.show(&name, value)?;
                    Some((name, value))
                })
                .collect()
        };
        Some(MemberRecord {
            attributes: shown(record.attributes),
            traits: shown(record.traits),
            identifiers: record
                .identifiers
                .into_iter()
                .filter_map(|(kind, value)| {
                    let value = access.show_text(&kind, value)?;
                    Some((kind, value))
                })
                .collect(),
            ..record
        })
    }

    /// `Ok` if the user may write member `member_id`: it needs `write`, and a scoped user
    /// may write only existing members inside its scope (a write that would create a
    /// member is refused). A member outside the scope gets the error an unknown one gets.
    pub fn may_write(&self, member_id: &str, what: &str) -> Result<()> {
        self.access.require(Command::Write, what)?;
        if let Some(scope) = self.access.scope()
            && self.db.row_within(member_id, Some(scope)).is_none()
        {
            return Err(Error::NoPermission(format!(
                "no member '{member_id}' to write: user '{}' writes only existing members \
                 of its scope",
                self.access.user()
            )));
        }
        Ok(())
    }

    /// Whether member `member_id` exists and lies inside the user's scope.
    pub fn sees(&self, member_id: &str) -> bool {
        self.db.row_within(member_id, self.access.scope()).is_some()
    }

    /// A group `segment` names, directly or through other groups, whose definition reads a
    /// field masked for the user.
    pub(super) fn masked_group(&self, segment: &crate::segment::Segment) -> Option<String> {
        let mut names = Vec::new();
        segment.referenced_groups(&mut names);
        let mut pending: Vec<String> = names.into_iter().map(str::to_string).collect();
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(definition) = self.db.group_definition(&name) else {
                continue;
            };
            if self.access.reads_masked(&definition) {
                return Some(name);
            }
            let mut inner = Vec::new();
            definition.referenced_groups(&mut inner);
            pending.extend(inner.into_iter().map(str::to_string));
        }
        None
    }

    /// Refuses a statement the user may not run, or one that tests a masked field.
    fn check(&self, statement: &Statement) -> Result<()> {
        let (class, what) = statement_class(&statement.kind);
        self.access.require(class, what)?;
        let access = &*self.access;
        if !access.masks_anything() {
            return Ok(());
        }
        let segment = |e: &memberdb_query::ast::Expr| -> Result<()> {
            access.check_segment(&bind::segment(e)?.0)
        };
        let funnel = |f: &memberdb_query::ast::FunnelExpr| -> Result<()> {
            let (funnel, _) = bind::funnel(f)?;
            for step in &funnel.steps {
                access.check_filter(step.filter.as_ref())?;
            }
            if let Some(members) = &funnel.members {
                access.check_segment(members)?;
            }
            match &funnel.by {
                None => Ok(()),
                Some(FunnelBy::Value(v)) => access.check_value(v, "FUNNEL BY"),
                Some(FunnelBy::FirstTouch(p) | FunnelBy::LastTouch(p)) => match access.mask_of(p) {
                    Some(_) => Err(access.refused(p, "FUNNEL BY")),
                    None => Ok(()),
                },
            }
        };
        match &statement.kind {
            StatementKind::Explain(e) => {
                let (seg, _) = bind::segment(e)?;
                access.check_segment(&seg)?;
                // EXPLAIN prints the parts of a group evaluated from its definition (one
                // that moves with time): their values would show a masked field's
                match self.masked_group(&seg) {
                    Some(group) => Err(Error::NoPermission(format!(
                        "EXPLAIN of a segment naming group '{group}' is not allowed for user \
                         '{}': the group's definition reads a field masked for its roles",
                        access.user()
                    ))),
                    None => Ok(()),
                }
            }
            StatementKind::Count(e)
            | StatementKind::Find { segment: e, .. }
            | StatementKind::Export { segment: e, .. }
            | StatementKind::DefineGroup { segment: e, .. } => segment(e),
            StatementKind::Breakdown { segment: e, by, .. } => {
                segment(e)?;
                for column in by {
                    match column {
                        ByColumn::Name { name, .. } if access.mask_of(&name.text).is_some() => {
                            return Err(access.refused(&name.text, "BREAKDOWN BY"));
                        }
                        ByColumn::Name { .. } => {}
                        other => access.check_value(&bind::by_value(other)?, "BREAKDOWN BY")?,
                    }
                }
                Ok(())
            }
            StatementKind::Funnel(f) | StatementKind::FindFunnel { funnel: f, .. } => funnel(f),
            StatementKind::ShowAttribute(name) if access.mask_of(&name.text).is_some() => {
                Err(access.refused(&name.text, "SHOW ATTRIBUTE"))
            }
            StatementKind::ExplainMember { group, .. } => {
                // its facts are the member's values of what the definition reads
                let definition = self.db.group_definition(&group.text);
                match definition {
                    Some(d) if access.reads_masked(&d) => Err(Error::NoPermission(format!(
                        "EXPLAIN MEMBER of group '{}' is not allowed for user '{}': its \
                         definition reads a field masked for its roles",
                        group.text,
                        access.user()
                    ))),
                    _ => Ok(()),
                }
            }
            StatementKind::DefineTrait { body, .. } => {
                for (s, _) in bind::trait_parts(body)? {
                    access.check_segment(&s)?;
                }
                let definition = bind::trait_def(body)?;
                match definition.value() {
                    Some(v) => access.check_value(v, "a trait definition"),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// The command class a statement needs, and its name in an error.
pub fn statement_class(kind: &StatementKind) -> (Command, &'static str) {
    match kind {
        StatementKind::Export { .. } => (Command::Export, "EXPORT"),
        StatementKind::DefineGroup { .. } | StatementKind::DropGroup(_) => {
            (Command::Admin, "DEFINE / DROP GROUP")
        }
        StatementKind::DefineTrait { .. } | StatementKind::DropTrait(_) => {
            (Command::Admin, "DEFINE / DROP TRAIT")
        }
        StatementKind::AlterAttribute { .. } | StatementKind::DropAttribute(_) => {
            (Command::Admin, "ALTER / DROP ATTRIBUTE")
        }
        StatementKind::DefineIdentifier { .. } | StatementKind::DefineMerge { .. } => {
            (Command::Admin, "DEFINE IDENTIFIER / ATTRIBUTE ... MERGE")
        }
        _ => (Command::Read, "a read statement"),
    }
}
