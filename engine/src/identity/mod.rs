//! One customer, many identities (DESIGN section 11): declared identifier types, the
//! observation log, the profiles replaying it gives (`graph.rs`), each member id's own data
//! inside a merged profile (`records.rs`), and undo by replaying only the profiles an
//! observation touched.
//!
//! The store knows rows and strings; what a merge does to the members' data (one member
//! for segments, events together, absorbed members leaving groups) is the state's
//! (`state/identity.rs`), applied through the one apply path.

pub(crate) mod graph;
pub(crate) mod log;
pub(crate) mod records;
pub(crate) mod saved;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::members::RowId;
use crate::util::dict::StrDict;
use graph::{Graph, Ident, Rule, Step, TypeId};
use log::{Item, ObsKind, ObservationLog};

/// Identifier types a database holds at most.
pub const MAX_IDENTIFIER_TYPES: usize = 64;
/// A `LIMIT` is at most this (Adobe's graphs hold 50 identities, Mixpanel's 500).
pub const MAX_LIMIT: u32 = 1000;

/// `DEFINE IDENTIFIER name LIMIT n PRIORITY p BLOCK 'v', ...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierDef {
    /// The type's name (`phone`, `unionid`, ...).
    pub name: String,
    /// The most values of the type one profile holds.
    pub limit: u32,
    /// 1 is the highest: identifiers of the largest number are dropped first.
    pub priority: u32,
    /// Values ignored wherever they are seen (shared devices, test numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<String>,
}

/// How an attribute's values combine when profiles merge (`DEFINE ATTRIBUTE a MERGE r`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeRule {
    /// The value written last (the default).
    #[default]
    Latest,
    /// The value written first.
    Earliest,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// The sum of the member ids' values (numbers only).
    Sum,
}

impl MergeRule {
    /// The rule named in the language (`LATEST`, ...), any case.
    pub fn parse(text: &str) -> Option<MergeRule> {
        Some(match text.to_ascii_lowercase().as_str() {
            "latest" => MergeRule::Latest,
            "earliest" => MergeRule::Earliest,
            "min" => MergeRule::Min,
            "max" => MergeRule::Max,
            "sum" => MergeRule::Sum,
            _ => return None,
        })
    }

    /// The rule as the language writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeRule::Latest => "LATEST",
            MergeRule::Earliest => "EARLIEST",
            MergeRule::Min => "MIN",
            MergeRule::Max => "MAX",
            MergeRule::Sum => "SUM",
        }
    }
}

/// What an observation did, for `MEMBER.HISTORY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    /// The profile of this canonical row was merged in.
    Merged(RowId),
    /// An identifier was dropped because the limit of a type would have been broken.
    Dropped(Ident, TypeId),
    /// A merge of explicit members was not made: it would break this type's limit.
    Refused(TypeId),
    /// The observation started a profile on this row.
    Created(RowId),
}

/// The result of one observation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    pub(crate) id: u32,
    pub(crate) step: Step,
    /// Rows whose profile changed (every row of the profile it ended in, when it merged).
    pub(crate) rows: BTreeSet<RowId>,
    /// The canonical rows those rows had before.
    pub(crate) before: BTreeSet<RowId>,
}

/// The result of an unmerge: the rows replayed, their canonical rows before, and the rows
/// started by an observation that no longer starts a profile.
#[derive(Clone, Debug, Default)]
pub(crate) struct Replayed {
    pub(crate) rows: BTreeSet<RowId>,
    pub(crate) before: BTreeSet<RowId>,
    pub(crate) retired: BTreeSet<RowId>,
}

/// What an identity change did, for its writer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityReport {
    /// The member id of the profile the observation ended in (its canonical id).
    pub member_id: Option<String>,
    /// The observation's id (`MEMBER.HISTORY`, `MEMBER.UNMERGE`).
    pub observation: Option<u32>,
    /// A profile was started.
    pub created: bool,
    /// Member ids of the profiles merged in.
    pub merged: Vec<String>,
    /// Identifiers dropped by a limit (`type value (LIMIT n of type)`).
    pub dropped: Vec<String>,
    /// Values ignored: empty or blocked (`type value: blocked`).
    pub ignored: Vec<String>,
}

/// Declarations, values, the observation log and the profiles it gives.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdentityStore {
    defs: Vec<IdentifierDef>,
    merge_rules: BTreeMap<String, MergeRule>,
    /// Per type, its values (code = index).
    values: Vec<StrDict>,
    log: ObservationLog,
    graph: Graph,
    /// The row each observation started a profile on (kept when an unmerge replays it).
    created: HashMap<u32, RowId>,
    /// Rows started by an observation that no longer starts a profile.
    retired: BTreeSet<RowId>,
    /// What observations did beyond joining, by observation.
    notes: HashMap<u32, Vec<Note>>,
    /// The own data of each member id of a merged profile.
    pub(crate) records: records::OwnRecords,
    /// Per type, the canonical rows by how many values of it their profile holds:
    /// `levels[t][k]` holds those with more than `k` (`HAS IDENTIFIER`, `COUNT(IDENTIFIER
    /// t)`).
    levels: Vec<Vec<crate::bitmap::Bitmap>>,
}

impl IdentityStore {
    /// Whether any identifier type is declared.
    pub(crate) fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    pub(crate) fn defs(&self) -> &[IdentifierDef] {
        &self.defs
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    pub(crate) fn log(&self) -> &ObservationLog {
        &self.log
    }

    pub(crate) fn merge_rule(&self, attribute: &str) -> MergeRule {
        self.merge_rules.get(attribute).copied().unwrap_or_default()
    }

    pub(crate) fn set_merge_rule(&mut self, attribute: &str, rule: MergeRule) {
        if rule == MergeRule::Latest {
            self.merge_rules.remove(attribute);
        } else {
            self.merge_rules.insert(attribute.to_string(), rule);
        }
    }

    /// The type whose limit merging the profiles of rows `a` and `b` would break.
    pub(crate) fn merge_conflict(&self, a: RowId, b: RowId) -> Option<TypeId> {
        self.graph.merge_conflict(&self.rules(), a, b)
    }

    fn rules(&self) -> Vec<Rule> {
        self.defs
            .iter()
            .map(|d| Rule {
                limit: d.limit,
                priority: d.priority,
            })
            .collect()
    }

    /// The type named `name`.
    pub(crate) fn type_id(&self, name: &str) -> Option<TypeId> {
        self.defs
            .iter()
            .position(|d| d.name == name)
            .map(|i| i as TypeId)
    }

    /// The type named `name`, or an error naming the closest declared one.
    pub(crate) fn require_type(&self, name: &str) -> Result<TypeId> {
        self.type_id(name).ok_or_else(|| {
            Error::unknown(
                "identifier type",
                name,
                self.defs.iter().map(|d| d.name.as_str()),
            )
        })
    }

    pub(crate) fn type_name(&self, t: TypeId) -> &str {
        &self.defs[t as usize].name
    }

    /// The values of identifier type `t`, by code.
    pub(crate) fn values_of(&self, t: TypeId) -> &StrDict {
        &self.values[t as usize]
    }

    /// The value of identifier `id`.
    pub(crate) fn value(&self, id: Ident) -> &str {
        self.values[id.0 as usize].get(id.1)
    }

    /// Checks a declaration against the others (before it is logged).
    pub(crate) fn check_declaration(&self, def: &IdentifierDef) -> Result<()> {
        if def.name.is_empty() {
            return Err(Error::InvalidSegment(
                "an identifier type needs a name".into(),
            ));
        }
        if def.limit == 0 || def.limit > MAX_LIMIT {
            return Err(Error::InvalidSegment(format!(
                "identifier '{}': LIMIT must be between 1 and {MAX_LIMIT} (got {}): a profile \
                 holds at least one value of a type",
                def.name, def.limit
            )));
        }
        if def.priority == 0 {
            return Err(Error::InvalidSegment(format!(
                "identifier '{}': PRIORITY starts at 1 (the highest)",
                def.name
            )));
        }
        if let Some(other) = self
            .defs
            .iter()
            .find(|d| d.priority == def.priority && d.name != def.name)
        {
            return Err(Error::Conflict(format!(
                "identifier '{}': PRIORITY {} is already identifier '{}''s; each type needs a \
                 priority of its own (the order in which limits drop identifiers)",
                def.name, def.priority, other.name
            )));
        }
        if let Some(existing) = self.defs.iter().find(|d| d.name == def.name) {
            if existing != def {
                return Err(Error::Conflict(format!(
                    "identifier '{}' is already declared ({}); making its rules different \
                     after profiles exist would change them, so it is refused",
                    def.name,
                    describe(existing)
                )));
            }
            return Ok(());
        }
        if self.defs.len() >= MAX_IDENTIFIER_TYPES {
            return Err(Error::LimitExceeded(format!(
                "a database declares at most {MAX_IDENTIFIER_TYPES} identifier types"
            )));
        }
        Ok(())
    }

    /// Declares a type (checked by [`check_declaration`](Self::check_declaration)); false
    /// when it was already declared the same.
    pub(crate) fn declare(&mut self, def: IdentifierDef) -> Result<bool> {
        self.check_declaration(&def)?;
        if self.type_id(&def.name).is_some() {
            return Ok(false);
        }
        self.defs.push(def);
        self.values.push(StrDict::default());
        Ok(true)
    }

    /// The canonical rows whose profile holds more than `k` values of type `t` (`None`:
    /// none does).
    pub(crate) fn more_than(&self, t: TypeId, k: u64) -> Option<&crate::bitmap::Bitmap> {
        self.levels
            .get(t as usize)?
            .get(usize::try_from(k).ok()?)
            .filter(|b| !b.is_empty())
    }

    /// Brings the levels up to date for `rows` (each as the graph has it now).
    fn reindex(&mut self, rows: impl IntoIterator<Item = RowId>) {
        self.levels.resize_with(self.defs.len(), Vec::new);
        for row in rows {
            for levels in &mut self.levels {
                for level in levels.iter_mut() {
                    if !level.contains(row) {
                        break;
                    }
                    level.make_mut().remove(row);
                }
            }
            if self.graph.canonical(row) != row {
                continue;
            }
            let Some(profile) = self.graph.profile(row) else {
                continue;
            };
            let mut counts = vec![0usize; self.defs.len()];
            for &(t, _) in &profile.values {
                counts[t as usize] += 1;
            }
            for (t, n) in counts.into_iter().enumerate() {
                let levels = &mut self.levels[t];
                if levels.len() < n {
                    levels.resize_with(n, Default::default);
                }
                for level in &mut levels[..n] {
                    level.make_mut().insert(row);
                }
            }
        }
    }

    /// Whether `value` of type `t` is ignored (empty or blocked).
    pub(crate) fn ignored(&self, t: TypeId, value: &str) -> bool {
        value.trim().is_empty() || self.defs[t as usize].blocked.iter().any(|b| b == value)
    }

    /// The canonical row of the profile holding `value` of type `t`.
    pub(crate) fn lookup(&self, t: TypeId, value: &str) -> Option<RowId> {
        let code = self.values.get(t as usize)?.lookup(value)?;
        self.graph.holder((t, code))
    }

    /// The identifiers of the profile whose canonical row is `row`, by type, in the order
    /// they were seen.
    pub(crate) fn identifiers_of(&self, row: RowId) -> Vec<(String, String)> {
        let Some(profile) = self.graph.profile(row) else {
            return Vec::new();
        };
        let mut out: Vec<(TypeId, &str)> = profile
            .values
            .iter()
            .map(|&id| (id.0, self.value(id)))
            .collect();
        out.sort_by_key(|&(t, _)| t);
        out.into_iter()
            .map(|(t, v)| (self.type_name(t).to_string(), v.to_string()))
            .collect()
    }

    /// How many values of type `t` each profile holds, by canonical row.
    pub(crate) fn counts_of_type(&self, t: TypeId) -> impl Iterator<Item = (RowId, u32)> + '_ {
        self.graph.profiles().filter_map(move |(row, p)| {
            let n = p.values.iter().filter(|v| v.0 == t).count() as u32;
            (n > 0).then_some((row, n))
        })
    }

    /// The member rows merged into the profile of canonical row `row` (its aliases).
    pub(crate) fn aliases_of(&self, row: RowId) -> Vec<RowId> {
        self.graph
            .profile(row)
            .map(|p| p.rows.iter().copied().filter(|&r| r != row).collect())
            .unwrap_or_default()
    }

    /// Logs and replays one observation. `ids` are (type, value) in the order seen; empty
    /// and blocked values must be taken out by the caller (they are reported, not logged).
    pub(crate) fn observe(
        &mut self,
        kind: ObsKind,
        at: i64,
        members: &[RowId],
        ids: &[(TypeId, &str)],
        new_row: &mut dyn FnMut(&IdentityStore, &[Ident]) -> RowId,
    ) -> Observed {
        let mut items: Vec<Item> = members.iter().map(|&m| Item::Member(m)).collect();
        for &(t, v) in ids {
            let code = self.values[t as usize].intern(v).0;
            if !items.contains(&Item::Id((t, code))) {
                items.push(Item::Id((t, code)));
            }
        }
        let id = self.log.push(kind, at, &items);
        self.replay_one(id, new_row)
    }

    /// Replays observation `id` (logged) on the graph as it is.
    fn replay_one(
        &mut self,
        id: u32,
        new_row: &mut dyn FnMut(&IdentityStore, &[Ident]) -> RowId,
    ) -> Observed {
        let obs = self.log.get(id).expect("a logged observation");
        if obs.undone {
            return Observed {
                id,
                ..Observed::default()
            };
        }
        let kind = obs.kind;
        let members: Vec<RowId> = obs.members().collect();
        let ids: Vec<Ident> = obs.ids().collect();
        let mut out = Observed {
            id,
            ..Observed::default()
        };
        if kind == ObsKind::Unlink {
            if let (Some(&m), Some(&v)) = (members.first(), ids.first()) {
                self.graph.unlink(id, m, v);
                let canonical = self.graph.canonical(m);
                self.reindex([canonical]);
            }
            return out;
        }
        let rules = self.rules();
        let created = self.created.get(&id).copied();
        // The graph is taken out while it replays, so that a new row can be named from the
        // store's values.
        let mut graph = std::mem::take(&mut self.graph);
        let step = {
            let this: &IdentityStore = self;
            let mut make = |kept: &[Ident]| created.unwrap_or_else(|| new_row(this, kept));
            graph.observe(&rules, id, &members, &ids, &mut make)
        };
        self.graph = graph;
        let mut notes = Vec::new();
        if let Some(p) = step.profile {
            if step.created {
                self.created.insert(id, p);
                self.retired.remove(&p);
                notes.push(Note::Created(p));
            }
            let profile = self.graph.profile(p);
            if !step.absorbed.is_empty() {
                out.rows = profile
                    .map(|p| p.rows.iter().copied().collect())
                    .unwrap_or_default();
                out.before = step.absorbed.iter().copied().collect();
                out.before.insert(p);
            }
        }
        let touched: Vec<RowId> = step
            .profile
            .into_iter()
            .chain(step.absorbed.iter().copied())
            .collect();
        self.reindex(touched);
        notes.extend(step.absorbed.iter().map(|&a| Note::Merged(a)));
        notes.extend(step.dropped.iter().map(|&(d, t)| Note::Dropped(d, t)));
        notes.extend(step.refused.map(Note::Refused));
        if notes.is_empty() {
            self.notes.remove(&id);
        } else {
            self.notes.insert(id, notes);
        }
        out.step = step;
        out
    }

    /// Logs `ID.UNLINK`: `id` taken from the profile of `row` (which must hold it).
    pub(crate) fn unlink(&mut self, at: i64, row: RowId, t: TypeId, value: &str) -> Result<u32> {
        let canonical = self.graph.canonical(row);
        let code = self.values[t as usize].lookup(value);
        let held = code.is_some_and(|c| self.graph.holder((t, c)) == Some(canonical));
        let Some(code) = code.filter(|_| held) else {
            return Err(Error::InvalidSegment(format!(
                "the profile does not hold {} '{value}'; nothing was changed",
                self.type_name(t)
            )));
        };
        let id = self.log.push(
            ObsKind::Unlink,
            at,
            &[Item::Member(row), Item::Id((t, code))],
        );
        self.graph.unlink(id, row, (t, code));
        Ok(id)
    }

    /// Whether observation `obs` is one of the observations that made the profile of
    /// `row`.
    pub(crate) fn made(&self, row: RowId, obs: u32) -> bool {
        let canonical = self.graph.canonical(row);
        self.graph
            .profile(canonical)
            .is_some_and(|p| p.observations.binary_search(&obs).is_ok())
    }

    /// `MEMBER.UNMERGE`: marks observation `obs` undone and replays the profiles it
    /// touched (found by following shared rows and values through the log until nothing
    /// new is found), as if it had never been made.
    pub(crate) fn unmerge(
        &mut self,
        obs: u32,
        new_row: &mut dyn FnMut(&IdentityStore, &[Ident]) -> RowId,
    ) -> Replayed {
        let (rows, values, observations) = self.closure(obs);
        let before: BTreeSet<RowId> = rows.iter().map(|&r| self.graph.canonical(r)).collect();
        self.log.undo(obs);
        self.graph.reset(&rows, &values);
        let mut rows_after = rows.clone();
        let mut retired = BTreeSet::new();
        for &o in &observations {
            let had = self.created.get(&o).copied();
            let done = self.replay_one(o, new_row);
            match (had, done.step.created) {
                (Some(r), false) => {
                    self.created.remove(&o);
                    retired.insert(r);
                }
                (_, true) => {
                    if let Some(p) = done.step.profile {
                        rows_after.insert(p);
                        retired.remove(&p);
                    }
                }
                _ => {}
            }
        }
        self.retired.extend(retired.iter().copied());
        self.reindex(
            rows_after
                .iter()
                .chain(&before)
                .copied()
                .collect::<Vec<_>>(),
        );
        Replayed {
            rows: rows_after,
            before,
            retired,
        }
    }

    /// The rows, values and observations an unmerge of `obs` replays: its profile, every
    /// profile holding a value or row one of those observations names, and every
    /// observation naming one of their rows or values, until nothing new is found.
    fn closure(&self, obs: u32) -> (BTreeSet<RowId>, BTreeSet<Ident>, BTreeSet<u32>) {
        let mut rows = BTreeSet::new();
        let mut values = BTreeSet::new();
        let mut observations = BTreeSet::new();
        let mut expanded = BTreeSet::new();
        let mut pending_obs = vec![obs];
        let mut pending_profiles: Vec<RowId> = Vec::new();
        loop {
            while !pending_obs.is_empty() || !pending_profiles.is_empty() {
                while let Some(o) = pending_obs.pop() {
                    if !observations.insert(o) {
                        continue;
                    }
                    let Some(o) = self.log.get(o) else { continue };
                    for m in o.members() {
                        rows.insert(m);
                        pending_profiles.push(self.graph.canonical(m));
                    }
                    for v in o.ids() {
                        values.insert(v);
                        pending_profiles.extend(self.graph.holder(v));
                    }
                }
                while let Some(p) = pending_profiles.pop() {
                    if !expanded.insert(p) {
                        continue;
                    }
                    rows.insert(p);
                    if let Some(profile) = self.graph.profile(p) {
                        rows.extend(profile.rows.iter().copied());
                        values.extend(profile.values.iter().copied());
                        pending_obs.extend(profile.observations.iter().copied());
                    }
                }
            }
            // Observations naming a row or value of the closure that their profile does
            // not hold now (a value dropped by a limit, or unlinked since).
            for o in self.log.iter() {
                if observations.contains(&o.id) {
                    continue;
                }
                if o.members().any(|m| rows.contains(&m)) || o.ids().any(|v| values.contains(&v)) {
                    pending_obs.push(o.id);
                }
            }
            if pending_obs.is_empty() {
                return (rows, values, observations);
            }
        }
    }

    /// Erases the profile made of `rows` (a canonical row and its aliases): every
    /// observation that names one of them or one of the profile's identifiers is emptied,
    /// identifier values no other observation names are erased from the dictionaries
    /// (`StrDict::blank`), the rows' own records go, and the profiles are replayed from
    /// what is left. An observation that named the member together with another (a merge
    /// that was refused) goes whole.
    pub(crate) fn erase(&mut self, rows: &BTreeSet<RowId>) -> Result<()> {
        let mut idents: BTreeSet<Ident> = BTreeSet::new();
        for &row in rows {
            if let Some(p) = self.graph.profile(self.graph.canonical(row)) {
                idents.extend(p.values.iter().copied());
            }
        }
        let mut erased = BTreeSet::new();
        for obs in self.log.iter() {
            let named =
                obs.members().any(|r| rows.contains(&r)) || obs.ids().any(|i| idents.contains(&i));
            if named {
                erased.insert(obs.id);
                idents.extend(obs.ids());
            }
        }
        if erased.is_empty() && rows.iter().all(|r| self.records.get(*r).is_none()) {
            return Ok(());
        }
        self.log.erase(&erased);
        let still: BTreeSet<Ident> = (self.log.iter())
            .flat_map(|o| o.ids().collect::<Vec<_>>())
            .collect();
        for &(t, code) in idents.difference(&still) {
            if let Some(values) = self.values.get_mut(t as usize) {
                values.blank(code);
            }
        }
        self.created.retain(|obs, _| !erased.contains(obs));
        self.notes.retain(|obs, _| !erased.contains(obs));
        for &row in rows {
            self.retired.remove(&row);
            self.records.remove(row);
        }
        self.replay_all()
    }

    /// Replays the whole log on an empty graph (open): the same profiles, deterministically.
    pub(crate) fn replay_all(&mut self) -> Result<()> {
        self.graph = Graph::default();
        self.notes.clear();
        self.levels.clear();
        let mut missing = None;
        for id in 1..=self.log.len() as u32 {
            let mut make = |_: &IdentityStore, _: &[Ident]| -> RowId {
                missing = Some(id);
                RowId::MAX
            };
            self.replay_one(id, &mut make);
            if let Some(id) = missing {
                return Err(Error::Internal(format!(
                    "identities: observation {id} starts a profile but the saved state has no \
                     row for it"
                )));
            }
        }
        Ok(())
    }

    /// `MEMBER.HISTORY`: the observations that made the profile of `row`, each with what
    /// it did, oldest first.
    pub(crate) fn history(
        &self,
        row: RowId,
        member_id: &dyn Fn(RowId) -> String,
    ) -> Vec<HistoryLine> {
        let canonical = self.graph.canonical(row);
        let Some(profile) = self.graph.profile(canonical) else {
            return Vec::new();
        };
        profile
            .observations
            .iter()
            .filter_map(|&o| self.log.get(o))
            .map(|o| {
                let items: Vec<String> = o
                    .items
                    .iter()
                    .map(|i| match *i {
                        Item::Member(r) => format!("member {}", member_id(r)),
                        Item::Id(id) => format!("{} {}", self.type_name(id.0), self.value(id)),
                    })
                    .collect();
                let notes = self.notes.get(&o.id).map(Vec::as_slice).unwrap_or(&[]);
                let outcome: Vec<String> = notes
                    .iter()
                    .map(|n| match *n {
                        Note::Merged(r) => format!("merged {}", member_id(r)),
                        Note::Created(r) => format!("created {}", member_id(r)),
                        Note::Dropped(id, over) => format!(
                            "dropped {} {} (LIMIT {} of {})",
                            self.type_name(id.0),
                            self.value(id),
                            self.defs[over as usize].limit,
                            self.type_name(over)
                        ),
                        Note::Refused(over) => format!(
                            "not merged (LIMIT {} of {})",
                            self.defs[over as usize].limit,
                            self.type_name(over)
                        ),
                    })
                    .collect();
                HistoryLine {
                    observation: o.id,
                    kind: o.kind,
                    at: o.at,
                    items,
                    outcome,
                }
            })
            .collect()
    }
}

/// One line of `MEMBER.HISTORY`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryLine {
    /// The observation's id (what `MEMBER.UNMERGE` takes).
    pub observation: u32,
    /// Where it came from.
    #[serde(skip)]
    pub(crate) kind: ObsKind,
    /// When it was logged (microseconds since the epoch).
    pub at: i64,
    /// What was seen together: `member M1`, `phone 138...`.
    pub items: Vec<String>,
    /// What it did beyond joining: merges, identifiers dropped and the limit that applied.
    pub outcome: Vec<String>,
}

impl HistoryLine {
    /// `link`, `attribute`, `merge` or `unlink`.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            ObsKind::Link => "link",
            ObsKind::Attribute => "attribute",
            ObsKind::Merge => "merge",
            ObsKind::Unlink => "unlink",
        }
    }
}

fn describe(def: &IdentifierDef) -> String {
    let mut s = format!("LIMIT {} PRIORITY {}", def.limit, def.priority);
    if !def.blocked.is_empty() {
        let quoted: Vec<String> = def.blocked.iter().map(|b| format!("'{b}'")).collect();
        s.push_str(&format!(" BLOCK {}", quoted.join(", ")));
    }
    s
}
#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn store() -> IdentityStore {
        let mut s = IdentityStore::default();
        for (name, limit, priority) in [("unionid", 1, 1), ("phone", 1, 2), ("openid", 3, 4)] {
            s.declare(IdentifierDef {
                name: name.into(),
                limit,
                priority,
                blocked: vec![],
            })
            .unwrap();
        }
        s
    }

    /// Profiles as (rows, values as text), sorted: what two replays must agree on.
    /// Rows an observation started are named by it (an unmerge's replay starts them on
    /// rows of its own).
    type Shape = Vec<(Vec<String>, Vec<(String, String)>)>;

    fn shape(s: &IdentityStore) -> Shape {
        let by_obs: HashMap<RowId, u32> = s.created.iter().map(|(o, r)| (*r, *o)).collect();
        let name = |r: RowId| match by_obs.get(&r) {
            Some(o) => format!("started by {o}"),
            None => format!("row {r}"),
        };
        let mut out: Vec<_> = s
            .graph
            .profiles()
            .filter(|(_, p)| p.rows.len() > 1 || !p.values.is_empty())
            .map(|(row, p)| {
                let mut values = s.identifiers_of(row);
                values.sort();
                let mut rows: Vec<String> = p.rows.iter().map(|&r| name(r)).collect();
                rows.sort();
                (rows, values)
            })
            .collect();
        out.sort();
        out
    }

    type Obs = (Vec<RowId>, Vec<(TypeId, String)>);

    fn random_stream(rng: &mut impl RngExt, n: usize) -> Vec<Obs> {
        (0..n)
            .map(|_| {
                let members = if rng.random_bool(0.3) {
                    vec![rng.random_range(0..6)]
                } else {
                    vec![]
                };
                let k = rng.random_range(1..4);
                let ids = (0..k)
                    .map(|_| {
                        let t = rng.random_range(0..3u16);
                        (t, format!("v{}", rng.random_range(0..6)))
                    })
                    .collect();
                (members, ids)
            })
            .collect()
    }

    fn run(stream: &[Obs], skip: Option<usize>) -> (IdentityStore, Vec<Observed>) {
        let mut s = store();
        let mut next = 100;
        let mut out = Vec::new();
        for (i, (members, ids)) in stream.iter().enumerate() {
            if Some(i) == skip {
                // Logged (ids stay the same) but never made.
                let id = s.log.push(ObsKind::Link, 0, &[]);
                s.log.undo(id);
                out.push(Observed::default());
                continue;
            }
            let ids: Vec<(TypeId, &str)> = ids.iter().map(|(t, v)| (*t, v.as_str())).collect();
            let o = s.observe(ObsKind::Link, 0, members, &ids, &mut |_, _| {
                next += 1;
                next
            });
            out.push(o);
        }
        (s, out)
    }

    #[test]
    fn unmerge_equals_the_replay_without_the_observation() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let n = rng.random_range(1..14);
            let stream = random_stream(&mut rng, n);
            let (mut s, observed) = run(&stream, None);
            // Every value is held by at most one profile, within limits.
            let mut seen = std::collections::HashSet::new();
            for (_, p) in s.graph.profiles() {
                for v in &p.values {
                    assert!(seen.insert(*v));
                }
            }
            let k = rng.random_range(0..stream.len());
            let member = observed[k]
                .step
                .profile
                .or_else(|| stream[k].0.first().copied());
            let Some(member) = member else { continue };
            if !s.made(member, observed[k].id) {
                continue;
            }
            let mut fresh = 10_000;
            s.unmerge(observed[k].id, &mut |_, _| {
                fresh += 1;
                fresh
            });
            // The rows an observation started are kept by the replay without it.
            let (expected, _) = run(&stream, Some(k));
            let mut live_shape = shape(&s);
            live_shape.retain(|(rows, values)| rows.len() > 1 || !values.is_empty());
            assert_eq!(live_shape, shape(&expected), "stream {stream:?}, undo {k}");
        }
    }
}
