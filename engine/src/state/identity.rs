//! What identities do to the members' data (DESIGN section 11), through the one apply path:
//! a merged profile is one member (its canonical row shows the union of tags and each
//! attribute by its merge rule, its events are together), absorbed member ids are aliases
//! that are no longer live, and after an unmerge each member id shows its own data again.
//! Writes to a member id of a merged profile land on its own row first and are settled
//! here into its record, so that an unmerge gives them back to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::column::Column;
use crate::error::Result;
use crate::identity::graph::{Ident, TypeId};
use crate::identity::log::ObsKind;
use crate::identity::records::{self, OwnRecord};
use crate::identity::{IdentityStore, Observed};
use crate::members::RowId;
use crate::state::{State, Touched};
use crate::value::{DataType, Value};

impl State {
    /// The identity store, for changing (copied first if a snapshot shares it).
    pub(crate) fn identity_mut(&mut self) -> &mut IdentityStore {
        Arc::make_mut(&mut self.identity)
    }
}

/// The member id of a profile an observation starts: `type:value` of its first
/// identifier, with `#n` when that id is taken.
fn started_member_id(store: &IdentityStore, ids: &[Ident], taken: &dyn Fn(&str) -> bool) -> String {
    let base = match ids.first() {
        Some(&id) => format!("{}:{}", store.type_name(id.0), store.value(id)),
        None => "profile".to_string(),
    };
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}#{n}"))
        .find(|id| !taken(id))
        .expect("some suffix is free")
}

/// The row of a profile an observation starts: a new member named by
/// [`started_member_id`].
fn start_row(store: &IdentityStore, ids: &[Ident], dict: &mut crate::members::MemberDict) -> RowId {
    let id = started_member_id(store, ids, &|id| dict.own_row(id).is_some());
    dict.resolve_or_create(&id)
        .expect("fewer than 4 billion members")
        .0
}

/// Logs and replays one observation and applies what it did to the data.
pub(crate) fn observe(
    state: &mut State,
    kind: ObsKind,
    members: &[RowId],
    ids: &[(TypeId, &str)],
    position: u64,
    touched: &mut Touched,
) -> Result<Observed> {
    let at = state.clock;
    let mut created = None;
    let observed = {
        let State {
            identity,
            members: dict,
            ..
        } = &mut *state;
        let identity = Arc::make_mut(identity);
        identity.observe(kind, at, members, ids, &mut |store, ids| {
            let row = start_row(store, ids, dict);
            created = Some(row);
            row
        })
    };
    if let Some(row) = created {
        touched.members(&[row], true);
        state.attrs.grow(state.members.len());
    }
    if let Some(p) = observed.step.profile {
        touched.members(&[p], false);
        touched.members(&observed.step.absorbed, false);
        touch_identifiers(touched);
    }
    if !observed.rows.is_empty() {
        regroup(
            state,
            &observed.before,
            &observed.rows,
            &BTreeSet::new(),
            position,
            touched,
        );
    }
    Ok(observed)
}

/// Notes that identifiers changed: what `HAS IDENTIFIER` and `COUNT(IDENTIFIER t)` read
/// (groups depend on them as on attributes of their name).
fn touch_identifiers(touched: &mut Touched) {
    touched.identities = true;
}

/// The own data of `row` as its row holds it (a member id alone in its profile).
fn capture(state: &State, row: RowId) -> OwnRecord {
    let mut rec = OwnRecord::default();
    for tag in state.tags.tags_of(row) {
        rec.tags.insert(tag.to_string(), 0);
    }
    for attr in state.attrs.iter() {
        if let Some(v) = attr.column.get(row as usize) {
            rec.attrs.insert(attr.name.clone(), (v, 0));
        }
    }
    rec
}

/// Writes `shown` to `row`: exactly these tags and attribute values (others cleared).
fn show(state: &mut State, row: RowId, shown: &OwnRecord, touched: &mut Touched) {
    let current: Vec<String> = state
        .tags
        .tags_of(row)
        .into_iter()
        .map(String::from)
        .collect();
    for tag in &current {
        if !shown.tags.contains_key(tag) {
            state.tags.remove(tag, row);
            touched.tags.insert(tag.clone());
        }
    }
    for tag in shown.tags.keys() {
        if !current.contains(tag) {
            state.tags.add(tag, row);
            touched.tags.insert(tag.clone());
        }
    }
    let members = state.members.len();
    let names: Vec<String> = state.attrs.names().map(String::from).collect();
    for name in names
        .iter()
        .chain(shown.attrs.keys().filter(|n| !names.contains(n)))
    {
        let existing = state
            .attrs
            .get(name)
            .map(|a| (a.column.data_type(), a.column.get(row as usize)));
        let want = shown.attrs.get(name).map(|(v, _)| v);
        let data_type = match (&existing, want) {
            (Some((t, _)), _) => *t,
            (None, Some(v)) => v.data_type(),
            (None, None) => continue,
        };
        let want = want.and_then(|v| Column::coerce(data_type, v).ok());
        if existing.as_ref().and_then(|(_, v)| v.as_ref()) == want.as_ref() {
            continue;
        }
        if let Ok(pos) = state.attrs.ensure(name, data_type, members) {
            state.attrs.set_value(pos, row, want.as_ref());
            touched.attributes.insert(name.clone());
        }
    }
}

/// Brings the data of `rows` (whose profiles were `before`, canonical rows) to the profiles
/// the graph now gives them: records kept for member ids of merged profiles, the profile's
/// shown data on its canonical row, absorbed rows emptied and no longer live, events moved
/// to their profiles. `retired` rows were started by an observation that no longer starts
/// a profile: they are no longer live.
pub(crate) fn regroup(
    state: &mut State,
    before: &BTreeSet<RowId>,
    rows: &BTreeSet<RowId>,
    retired: &BTreeSet<RowId>,
    _position: u64,
    touched: &mut Touched,
) {
    // Every member id of a profile of several keeps a record of its own data; one alone
    // until now has its data on its row.
    let mut captured = Vec::new();
    for &r in rows {
        if state.identity.records.get(r).is_none() {
            captured.push((r, capture(state, r)));
        }
    }
    let graph_canon = |state: &State, r: RowId| state.identity.graph().canonical(r);
    let after: BTreeSet<RowId> = rows.iter().map(|&r| graph_canon(state, r)).collect();
    {
        let identity = state.identity_mut();
        for (r, rec) in captured {
            identity.records.insert(r, rec);
        }
    }
    // Events move to their profiles.
    let mut involved: RoaringBitmap = before.iter().chain(&after).chain(rows).copied().collect();
    involved.extend(retired.iter().copied());
    {
        let State {
            events, identity, ..
        } = &mut *state;
        let graph = identity.graph();
        for (name, part) in events.types.iter_mut() {
            if part.any.as_ref().intersection_len(&involved) > 0
                && Arc::make_mut(part).regroup(&involved, &|src| graph.canonical(src))
            {
                touched.events.insert(name.clone());
            }
        }
    }
    // Each profile shows the combination of its member ids' records.
    let mut profiles: BTreeMap<RowId, Vec<RowId>> = BTreeMap::new();
    for &r in rows {
        profiles.entry(graph_canon(state, r)).or_default().push(r);
    }
    let exclusive = state.tags.exclusive_groups().to_vec();
    for (canonical, members) in profiles {
        let all: Vec<RowId> = match state.identity.graph().profile(canonical) {
            Some(p) => p.rows.clone(),
            None => members.clone(),
        };
        if all.len() > 1 {
            let shown = {
                let identity = &state.identity;
                let recs: Vec<(RowId, &OwnRecord)> = all
                    .iter()
                    .filter_map(|&r| identity.records.get(r).map(|rec| (r, rec)))
                    .collect();
                records::combine(&recs, &|n| identity.merge_rule(n), &exclusive)
            };
            for &r in &all {
                if r != canonical {
                    show(state, r, &OwnRecord::default(), touched);
                    state.members.set_profile(r, Some(canonical), false);
                }
            }
            show(state, canonical, &shown, touched);
            state.members.set_profile(canonical, None, true);
        } else {
            let own = state
                .identity_mut()
                .records
                .remove(canonical)
                .unwrap_or_default();
            show(state, canonical, &own, touched);
            let live = !retired.contains(&canonical);
            state.members.set_profile(canonical, None, live);
        }
    }
    for &r in retired {
        show(state, r, &OwnRecord::default(), touched);
        state.identity_mut().records.remove(r);
        state.members.set_profile(r, None, false);
    }
    touched
        .members
        .extend(rows.iter().chain(before).chain(&after).copied());
    touched
        .merged
        .extend(rows.iter().chain(before).chain(&after).copied());
}

/// After a change: what it wrote to member ids of merged profiles goes into their records
/// (a tag taken from a profile is taken from every member id of it), and their profiles
/// show the combination again; identifier attributes written become observations.
pub(crate) fn settle(state: &mut State, position: u64, touched: &mut Touched) -> Result<()> {
    if touched.identity_only || (state.identity.is_empty() && state.identity.records.len() == 0) {
        return Ok(());
    }
    if state.identity.records.len() > 0 {
        let written = &touched.members & state.identity.records.rows();
        let mut profiles: BTreeSet<RowId> = BTreeSet::new();
        for r in &written {
            let canonical = state.identity.graph().canonical(r);
            profiles.insert(canonical);
            let row_tags: Vec<String> = state
                .tags
                .tags_of(r)
                .into_iter()
                .map(String::from)
                .collect();
            let row_attrs: Vec<(String, Option<Value>)> = state
                .attrs
                .iter()
                .filter(|a| touched.attributes.contains(&a.name))
                .map(|a| (a.name.clone(), a.column.get(r as usize)))
                .collect();
            let shown_before = shown_of(state, canonical);
            let profile_rows: Vec<RowId> = state
                .identity
                .graph()
                .profile(canonical)
                .map(|p| p.rows.clone())
                .unwrap_or_else(|| vec![r]);
            let identity = state.identity_mut();
            if r == canonical {
                for tag in shown_before.tags.keys() {
                    if !row_tags.contains(tag) {
                        for &m in &profile_rows {
                            if let Some(rec) = identity.records.get_mut(m) {
                                rec.tags.remove(tag);
                            }
                        }
                    }
                }
            }
            let Some(rec) = identity.records.get_mut(r) else {
                continue;
            };
            for tag in &row_tags {
                if !shown_before.tags.contains_key(tag) || r != canonical {
                    rec.tags.insert(tag.clone(), position);
                }
            }
            for (name, value) in row_attrs {
                let before = shown_before.attrs.get(&name).map(|(v, _)| v);
                let written = if r == canonical {
                    before != value.as_ref()
                } else {
                    value.is_some()
                };
                if written {
                    match value {
                        Some(v) => {
                            rec.attrs.insert(name, (v, position));
                        }
                        None => {
                            rec.attrs.remove(&name);
                        }
                    }
                }
            }
        }
        for canonical in profiles {
            let rows: BTreeSet<RowId> = state
                .identity
                .graph()
                .profile(canonical)
                .map(|p| p.rows.iter().copied().collect())
                .unwrap_or_default();
            if !rows.is_empty() {
                regroup(
                    state,
                    &BTreeSet::from([canonical]),
                    &rows,
                    &BTreeSet::new(),
                    position,
                    touched,
                );
            }
        }
    }
    observe_attributes(state, position, touched)
}

/// What the profile of `canonical` shows now (its records combined).
fn shown_of(state: &State, canonical: RowId) -> OwnRecord {
    let identity = &state.identity;
    let Some(profile) = identity.graph().profile(canonical) else {
        return OwnRecord::default();
    };
    let recs: Vec<(RowId, &OwnRecord)> = profile
        .rows
        .iter()
        .filter_map(|&r| identity.records.get(r).map(|rec| (r, rec)))
        .collect();
    records::combine(
        &recs,
        &|n| identity.merge_rule(n),
        state.tags.exclusive_groups(),
    )
}

/// Identifier attributes the change wrote become observations, one per member in row
/// order.
fn observe_attributes(state: &mut State, position: u64, touched: &mut Touched) -> Result<()> {
    let types: Vec<(TypeId, String)> = state
        .identity
        .defs()
        .iter()
        .enumerate()
        .filter(|(_, d)| touched.attributes.contains(&d.name))
        .map(|(t, d)| (t as TypeId, d.name.clone()))
        .collect();
    if types.is_empty() {
        return Ok(());
    }
    let rows = touched.members.clone();
    observe_rows(state, &types, rows.iter(), position, touched)
}

/// Each of `rows`' values of the identifier attributes `types` as one observation.
pub(crate) fn observe_rows(
    state: &mut State,
    types: &[(TypeId, String)],
    rows: impl Iterator<Item = RowId>,
    position: u64,
    touched: &mut Touched,
) -> Result<()> {
    for row in rows {
        let mut ids: Vec<(TypeId, String)> = Vec::new();
        for (t, name) in types {
            let Some(attr) = state.attrs.get(name) else {
                continue;
            };
            let Some(value) = attr.column.get(row as usize) else {
                continue;
            };
            let text = match value {
                Value::Str(s) => s,
                other => other.to_string(),
            };
            let held = state
                .identity
                .lookup(*t, &text)
                .is_some_and(|h| h == state.identity.graph().canonical(row));
            if !held && !state.identity.ignored(*t, &text) {
                ids.push((*t, text));
            }
        }
        if ids.is_empty() {
            continue;
        }
        let ids: Vec<(TypeId, &str)> = ids.iter().map(|(t, v)| (*t, v.as_str())).collect();
        observe(state, ObsKind::Attribute, &[row], &ids, position, touched)?;
    }
    Ok(())
}

/// Applies an identity change (`DEFINE IDENTIFIER`, `ID.LINK`, ...).
pub(crate) fn apply(
    state: &mut State,
    change: &crate::wal::change::Change,
    touched: &mut Touched,
) -> Result<crate::wal::change::Outcome> {
    use crate::error::Error;
    use crate::identity::IdentityReport;
    use crate::wal::change::{Change, Outcome};
    touched.identity_only = true;
    let report = match change {
        Change::DefineIdentifier { def } => {
            let new = state.identity_mut().declare(def.clone())?;
            if new && state.attrs.get(&def.name).is_some() {
                let t = state.identity.require_type(&def.name)?;
                let rows: Vec<RowId> = state.members.live().iter().collect();
                observe_rows(
                    state,
                    &[(t, def.name.clone())],
                    rows.into_iter(),
                    0,
                    touched,
                )?;
            }
            IdentityReport::default()
        }
        Change::SetMergeRule { attribute, rule } => {
            if *rule == crate::identity::MergeRule::Sum
                && let Some(a) = state.attrs.get(attribute)
                && !matches!(a.column.data_type(), DataType::Int | DataType::Float)
            {
                return Err(Error::InvalidSegment(format!(
                    "attribute '{attribute}' is {}: MERGE SUM adds numbers; use LATEST, \
                     EARLIEST, MIN or MAX",
                    a.column.data_type()
                )));
            }
            state.identity_mut().set_merge_rule(attribute, *rule);
            // Every merged profile shows its records combined by the new rule.
            let profiles: Vec<(RowId, BTreeSet<RowId>)> = state
                .identity
                .graph()
                .profiles()
                .filter(|(_, p)| p.rows.len() > 1)
                .map(|(c, p)| (c, p.rows.iter().copied().collect()))
                .collect();
            for (c, rows) in profiles {
                regroup(
                    state,
                    &BTreeSet::from([c]),
                    &rows,
                    &BTreeSet::new(),
                    0,
                    touched,
                );
            }
            IdentityReport::default()
        }
        Change::Link { member_id, ids } => {
            let mut typed = Vec::with_capacity(ids.len());
            for (t, v) in ids {
                typed.push((state.identity.require_type(t)?, v.as_str()));
            }
            let mut report = IdentityReport::default();
            let mut kept = Vec::new();
            for (t, v) in typed {
                if state.identity.ignored(t, v) {
                    let why = if v.trim().is_empty() {
                        "empty"
                    } else {
                        "blocked"
                    };
                    report
                        .ignored
                        .push(format!("{} '{v}': {why}", state.identity.type_name(t)));
                } else {
                    kept.push((t, v));
                }
            }
            let member = match member_id {
                Some(id) => {
                    let (row, new) = match state.members.own_row(id) {
                        Some(row) => (row, false),
                        None => state.members.resolve_or_create(id)?,
                    };
                    if new {
                        touched.members(&[row], true);
                        state.attrs.grow(state.members.len());
                    }
                    Some(row)
                }
                None => None,
            };
            if kept.is_empty() {
                report.member_id = member.map(|r| {
                    let c = state.identity.graph().canonical(r);
                    state.members.member_id(c).to_string()
                });
                return Ok(Outcome::Identity(report));
            }
            let members: Vec<RowId> = member.into_iter().collect();
            let observed = observe(state, ObsKind::Link, &members, &kept, 0, touched)?;
            describe(state, &observed, &mut report);
            report
        }
        Change::Unlink {
            member_id,
            id_type,
            value,
        } => {
            let row = require_member(state, member_id)?;
            let t = state.identity.require_type(id_type)?;
            let at = state.clock;
            let obs = state.identity_mut().unlink(at, row, t, value)?;
            touched.members(&[row], false);
            touch_identifiers(touched);
            IdentityReport {
                member_id: Some(member_id.clone()),
                observation: Some(obs),
                ..IdentityReport::default()
            }
        }
        Change::MergeMembers { a, b } => {
            let ra = require_member(state, a)?;
            let rb = require_member(state, b)?;
            let (ca, cb) = {
                let g = state.identity.graph();
                (g.canonical(ra), g.canonical(rb))
            };
            if ca == cb {
                let what = if a == b {
                    format!("member '{a}' cannot be merged with itself")
                } else {
                    format!("members '{a}' and '{b}' are already one profile")
                };
                return Err(Error::InvalidSegment(format!(
                    "{what}; nothing was changed"
                )));
            }
            if let Some(t) = state.identity.merge_conflict(ra, rb) {
                let def = &state.identity.defs()[t as usize];
                return Err(Error::Conflict(format!(
                    "merging '{a}' and '{b}' would give one profile more than {} {} value{} \
                     (LIMIT {} of identifier '{}'); nothing was changed",
                    def.limit,
                    def.name,
                    if def.limit == 1 { "" } else { "s" },
                    def.limit,
                    def.name
                )));
            }
            let observed = observe(state, ObsKind::Merge, &[ra, rb], &[], 0, touched)?;
            let mut report = IdentityReport::default();
            describe(state, &observed, &mut report);
            report
        }
        Change::Unmerge {
            member_id,
            observation,
        } => {
            let row = require_member(state, member_id)?;
            let undone = state
                .identity
                .log()
                .get(*observation)
                .is_none_or(|o| o.undone);
            if undone || !state.identity.made(row, *observation) {
                return Err(Error::InvalidSegment(format!(
                    "observation {observation} is not one that made member '{member_id}''s \
                     profile (MEMBER.HISTORY {member_id} lists them); nothing was changed"
                )));
            }
            let replayed = {
                let State {
                    identity,
                    members: dict,
                    ..
                } = &mut *state;
                Arc::make_mut(identity)
                    .unmerge(*observation, &mut |store, ids| start_row(store, ids, dict))
            };
            state.attrs.grow(state.members.len());
            touched.created = true;
            touch_identifiers(touched);
            regroup(
                state,
                &replayed.before,
                &replayed.rows,
                &replayed.retired,
                0,
                touched,
            );
            let c = state.identity.graph().canonical(row);
            IdentityReport {
                member_id: Some(state.members.member_id(c).to_string()),
                observation: Some(*observation),
                ..IdentityReport::default()
            }
        }
        _ => return Err(Error::Internal("not an identity change".into())),
    };
    Ok(Outcome::Identity(report))
}

/// The live row `member_id` names (an alias names its profile's), or an error.
fn require_member(state: &State, member_id: &str) -> Result<RowId> {
    state.members.lookup(member_id).ok_or_else(|| {
        crate::error::Error::InvalidSegment(format!(
            "unknown member '{member_id}'; nothing was changed"
        ))
    })
}

/// Fills `report` from what an observation did.
fn describe(state: &State, observed: &Observed, report: &mut crate::identity::IdentityReport) {
    let store = &state.identity;
    report.observation = Some(observed.id);
    report.created = observed.step.created;
    report.member_id = observed
        .step
        .profile
        .map(|p| state.members.member_id(p).to_string());
    report.merged = observed
        .step
        .absorbed
        .iter()
        .map(|&r| state.members.member_id(r).to_string())
        .collect();
    report.dropped = observed
        .step
        .dropped
        .iter()
        .map(|&(id, over)| {
            format!(
                "{} '{}' (LIMIT {} of {})",
                store.type_name(id.0),
                store.value(id),
                store.defs()[over as usize].limit,
                store.type_name(over)
            )
        })
        .collect();
    if let Some(t) = observed.step.refused {
        report.dropped.push(format!(
            "merge not made (LIMIT {} of {})",
            store.defs()[t as usize].limit,
            store.type_name(t)
        ));
    }
}
