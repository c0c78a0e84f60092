//! The one place the state changes: a logged change applied, on the writer's thread and
//! again when the log is replayed at open, reporting what it touched ([`Touched`]) so that
//! the groups reading it are brought up to date for those members only.
//!
//! Applying is deterministic: the same change on the same state gives the same state and the
//! same answer. A change the state refuses (a value of the wrong type, a group that exists)
//! is refused the same way on replay, so a refused change in the log does no harm.

use crate::column::Column;
use crate::error::{Error, Result};
use crate::ingest::IngestReport;
use crate::ingest::command::{self, StagedCommand};
use crate::state::{State, Touched};
use crate::traits::TraitDef;
use crate::value::{DataType, Value};
use crate::wal::change::{Change, LoadRows, Outcome, ReadLoadFile, load_inputs};

/// Applies the change logged at `position` with the engine's clock at `at`: first the clock
/// moves to `at` (time-driven changes, cause `time`), then `apply_change` changes the state,
/// then the groups reading what it touched are brought up to date (cause `write`). Commit
/// and replay both come through here, so the streams they produce are the same.
pub(crate) fn logged(
    state: &mut State,
    position: u64,
    at: i64,
    apply_change: impl FnOnce(&mut State, &mut Touched) -> Result<Outcome>,
) -> Result<Outcome> {
    state.advance_clock(at, position)?;
    let mut touched = Touched::default();
    let outcome = apply_change(state, &mut touched);
    // What it wrote to member ids of merged profiles goes to their records, and the
    // identifiers it wrote are observed (DESIGN section 11).
    crate::state::identity::settle(state, position, &mut touched)?;
    let erased = (!touched.erased.is_empty()).then(|| touched.erased.clone());
    // A refused change changed nothing it reported; what it did change, it reported.
    state.refresh_derived(touched, position)?;
    if let Some(erased) = erased {
        // Traits were refreshed for the erased rows; their values go too.
        crate::state::erase::erase_trait_values(state, &erased);
    }
    outcome
}

/// Applies `change`, adding what it touched to `touched`. A load's rows come from `rows`
/// (the batches the writer staged) or, on replay, from `read_rows`. Dynamic groups are not
/// refreshed here; the caller refreshes them once after a batch of changes
/// ([`State::refresh_derived`]).
pub(crate) fn apply(
    state: &mut State,
    change: &Change,
    rows: Option<LoadRows>,
    read_rows: &ReadLoadFile<'_>,
    touched: &mut Touched,
) -> Result<Outcome> {
    match change {
        Change::UpsertMember { member_id, fields } => {
            upsert_member(state, member_id, fields, touched)
        }
        Change::AddTags { member_id, tags } => {
            let (row, new) = state.members.resolve_or_create(member_id)?;
            state.attrs.grow(state.members.len());
            touched.members(&[row], new);
            for tag in tags {
                touched_tag(state, tag, touched);
                state.tags.add(tag, row);
            }
            Ok(Outcome::Done)
        }
        Change::RemoveTags { member_id, tags } => {
            if let Some(row) = state.members.lookup(member_id) {
                touched.members(&[row], false);
                for tag in tags {
                    touched.tags.insert(tag.clone());
                    state.tags.remove(tag, row);
                }
            }
            Ok(Outcome::Done)
        }
        Change::AddEvent {
            member_id,
            event,
            ts,
            props,
        } => add_event(state, member_id, event, *ts, props, touched),
        Change::DeclareExclusiveTags { group, tags } => {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            state.tags.declare_exclusive(group, &tags)?;
            touched.everything = true;
            Ok(Outcome::Done)
        }
        Change::DefineGroup {
            name,
            definition,
            keep_days,
        } => {
            // The definition must bind against the state before it is stored.
            crate::plan::bind(state, definition, state.clock, None)?;
            if state.traits.get(name).is_some() {
                return Err(Error::Conflict(format!(
                    "'{name}' is a trait; a group needs a name of its own"
                )));
            }
            let windows = crate::groups::time::window_reads(state, definition)?;
            let monotony = crate::groups::time::monotony(state, definition);
            let keep_days = keep_days.unwrap_or(crate::groups::DEFAULT_KEEP_DAYS);
            let seq = state.next_seq();
            let i =
                state
                    .groups
                    .define(name, definition.clone(), windows, monotony, keep_days, seq)?;
            state.groups.groups[i].ranked = group_reads_ranks(state, definition);
            touched.defined.insert(name.clone());
            Ok(Outcome::Done)
        }
        Change::DefineTrait { name, definition } => {
            define_trait(state, name, definition)?;
            touched.defined.insert(name.clone());
            Ok(Outcome::Done)
        }
        Change::DropTrait { name } => {
            state
                .traits
                .get(name)
                .ok_or_else(|| Error::unknown("trait", name, state.traits.names()))?;
            refuse_if_used(state, name, false)?;
            state.traits.remove(name)?;
            Ok(Outcome::Done)
        }
        Change::DropGroup { name } => {
            state.groups.require(name)?;
            refuse_if_used(state, name, true)?;
            state.groups.drop_group(name)?;
            state.consumers.forget_stream(name);
            Ok(Outcome::Done)
        }
        // The clock moved before the change was applied (`logged`).
        Change::Clock { .. } => Ok(Outcome::Done),
        Change::CreateConsumerGroup {
            stream,
            name,
            start,
        } => {
            let start = match start {
                Some(start) => {
                    state.last_id_of(stream)?;
                    *start
                }
                None => state.last_id_of(stream)?,
            };
            state.consumers.create(stream, name, start)?;
            Ok(Outcome::Done)
        }
        Change::Deliver {
            stream,
            group,
            consumer,
            through,
        } => {
            let after = state.consumers.get(stream, group)?.last_delivered;
            let ids: Vec<_> = match crate::groups::scoped::split_view_key(stream) {
                // A scoped view's entries (a scoped user's consumer group).
                Some((g, scope)) => state
                    .view_of(g, scope)?
                    .after(after, usize::MAX)
                    .map_err(|t| crate::database::trimmed_view(g, after, t.oldest))?
                    .into_iter()
                    .map(|e| e.0)
                    .filter(|id| id <= through)
                    .collect(),
                None => state
                    .groups
                    .require(stream)?
                    .stream
                    .range(after.next(), *through, usize::MAX)
                    .into_iter()
                    .map(|e| e.0)
                    .collect(),
            };
            let now = state.clock;
            state
                .consumers
                .deliver(stream, group, consumer, &ids, now)?;
            Ok(Outcome::Count(ids.len() as u64))
        }
        Change::Acknowledge { stream, group, ids } => Ok(Outcome::Count(
            state.consumers.acknowledge(stream, group, ids)?,
        )),
        Change::AlterAttribute { name, data_type } => {
            let attr = state.attrs.require(name)?;
            if attr.column.data_type() == *data_type {
                return Ok(Outcome::Done);
            }
            let column = attr.column.retyped(*data_type, 5).map_err(|(rows, n)| {
                let shown: Vec<String> = rows
                    .iter()
                    .map(|(row, v)| {
                        let member = state.members.member_id(*row as u32);
                        format!("'{v}' (member {member})")
                    })
                    .collect();
                let more = n.saturating_sub(shown.len());
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                Error::InvalidSegment(format!(
                    "attribute '{name}' cannot become {data_type}: {n} values do not convert: \
                     {}{more}; nothing was changed",
                    shown.join(", ")
                ))
            })?;
            let what = format!("changing the type of attribute '{name}'");
            touched.everything = true;
            keeping_groups(state, &what, |state| {
                state.attrs.replace_column(name, column)
            })
        }
        Change::DropAttribute { name } => {
            let what = format!("dropping attribute '{name}'");
            touched.everything = true;
            keeping_groups(state, &what, |state| state.attrs.remove(name))
        }
        Change::DefineIdentifier { .. }
        | Change::SetMergeRule { .. }
        | Change::Link { .. }
        | Change::Unlink { .. }
        | Change::MergeMembers { .. }
        | Change::Unmerge { .. } => crate::state::identity::apply(state, change, touched),
        Change::EraseMember { row } => crate::state::erase::erase(state, *row, touched),
        Change::LoadCommand { inputs, rules, at } => {
            let inputs = load_inputs(inputs, rows, read_rows)?;
            let staged = command::stage(state, inputs, rules, *at)?;
            Ok(Outcome::Ingest(apply_staged(state, staged, touched)?))
        }
        Change::Load { .. } => {
            let (inputs, rules, at) = change.as_command().expect("a load");
            let inputs = load_inputs(&inputs, rows, read_rows)?;
            let staged = command::stage(state, inputs, &rules, at)?;
            Ok(Outcome::Ingest(apply_staged(state, staged, touched)?))
        }
    }
}

/// Applies a staged load (staged here, or by the writer under the read lock).
pub(crate) fn apply_staged(
    state: &mut State,
    staged: StagedCommand,
    touched: &mut Touched,
) -> Result<IngestReport> {
    staged.apply(state, touched)
}

/// Notes `tag` touched, with the tags of its exclusive group (adding it takes them away).
fn touched_tag(state: &State, tag: &str, touched: &mut Touched) {
    touched.tags.insert(tag.to_string());
    if let Some(siblings) = state.tags.siblings(tag) {
        touched.tags.extend(siblings);
    }
}

/// Refuses an attribute named like a trait (a trait's name is its own).
pub(crate) fn not_a_trait(state: &State, name: &str) -> Result<()> {
    if state.traits.get(name).is_some() {
        return Err(Error::Conflict(format!(
            "'{name}' is a trait, computed by memberdb; an attribute cannot have its name \
             (DROP TRAIT {name} first, or name the attribute otherwise)"
        )));
    }
    Ok(())
}

/// Refuses to drop group (`group`) or trait `name` while a group or trait names it, so
/// definitions never refer to what is gone.
fn refuse_if_used(state: &State, name: &str, group: bool) -> Result<()> {
    let users = users_of(state, name, group);
    if users.is_empty() {
        return Ok(());
    }
    let kind = if group { "group" } else { "trait" };
    Err(Error::Conflict(format!(
        "{kind} '{name}' is used by {}; drop those first",
        users.join(", ")
    )))
}

/// The groups and traits whose definitions name `name`: a group (`IN GROUP`) when
/// `group`, else a trait (compared like an attribute).
fn users_of(state: &State, name: &str, group: bool) -> Vec<String> {
    let mut users = Vec::new();
    for g in &state.groups.groups {
        let mut names = Vec::new();
        if group {
            g.definition.referenced_groups(&mut names);
        } else {
            g.definition.attribute_names(&mut names);
        }
        if names.contains(&name) {
            users.push(format!("group '{}'", g.name));
        }
    }
    for t in &state.traits.traits {
        let names = if group {
            t.definition.groups()
        } else {
            t.definition.names()
        };
        if names.contains(&name) {
            users.push(format!("trait '{}'", t.name));
        }
    }
    users
}

/// Checks and adds a trait (empty; the refresh computes it).
pub(crate) fn define_trait(state: &mut State, name: &str, definition: &TraitDef) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidSegment("a trait needs a name".into()));
    }
    if state.attrs.get(name).is_some() {
        return Err(Error::Conflict(format!(
            "'{name}' is an attribute; a trait needs a name of its own"
        )));
    }
    if state.groups.get(name).is_some() {
        return Err(Error::Conflict(format!(
            "'{name}' is a group; a trait needs a name of its own"
        )));
    }
    if state.traits.get(name).is_some() {
        return Err(Error::Conflict(format!(
            "trait '{name}' already exists; drop it first to redefine it"
        )));
    }
    if definition.names().contains(&name) {
        return Err(Error::InvalidSegment(format!(
            "trait '{name}' cannot refer to itself"
        )));
    }
    let data_type = crate::plan::trait_type(state, definition, state.clock)?;
    let windows = crate::groups::time::trait_reads(state, definition)?;
    let refers_moving = definition
        .names()
        .iter()
        .any(|n| state.traits.get(n).is_some_and(|t| t.time_dependent))
        || definition
            .groups()
            .iter()
            .any(|g| state.groups.get(g).is_some_and(|g| g.time_dependent));
    let time_dependent = definition.uses_relative_time() || refers_moving || !windows.is_empty();
    let seq = state.next_seq();
    let members = state.members.len();
    let ranked = definition.ranks()
        || crate::traits::reads_ranks(state, &definition.names(), &definition.groups());
    state.traits.push(
        name,
        definition.clone(),
        seq,
        data_type,
        members,
        time_dependent,
        windows,
    );
    if let Some(t) = state.traits.traits.last_mut() {
        t.ranked = ranked;
    }
    build_member_indexes(state);
    Ok(())
}

/// Builds the member index of every event type that traits read, so that the first write
/// after a definition does not pay for a pass over every event of the type: a write's
/// refresh reads the written member's events through it.
fn build_member_indexes(state: &State) {
    for event in state.traits.dependents.events.keys() {
        if let Some(part) = state.events.types.get(event) {
            part.by_member.build(&part.members);
        }
    }
}

/// Whether a group's definition reads a `QUANTILE` trait.
pub(crate) fn group_reads_ranks(state: &State, definition: &crate::segment::Segment) -> bool {
    let (mut names, mut groups) = (Vec::new(), Vec::new());
    definition.attribute_names(&mut names);
    definition.referenced_groups(&mut groups);
    crate::traits::reads_ranks(state, &names, &groups)
}

/// Makes `change` to the state unless a group's definition no longer binds after it (it
/// uses the attribute): then the state is left as it was and the error names the group.
fn keeping_groups(
    state: &mut State,
    what: &str,
    change: impl FnOnce(&mut State) -> Result<()>,
) -> Result<Outcome> {
    let before = state.clone();
    change(state)?;
    let now = state.clock;
    let broken = state.groups.groups.iter().find_map(|group| {
        let e = crate::plan::bind(state, &group.definition, now, None).err()?;
        Some((
            format!("group '{}'", group.name),
            format!("DROP GROUP {}", group.name),
            e,
        ))
    });
    let broken = broken.or_else(|| {
        state.traits.traits.iter().find_map(|t| {
            let e = crate::plan::trait_type(state, &t.definition, now).err()?;
            Some((
                format!("trait '{}'", t.name),
                format!("DROP TRAIT {}", t.name),
                e,
            ))
        })
    });
    if let Some((name, drop, e)) = broken {
        *state = before;
        return Err(Error::Conflict(format!(
            "{what} would break {name} ({e}); nothing was changed. Drop it first ({drop}) \
             and define it again after"
        )));
    }
    Ok(Outcome::Done)
}

fn upsert_member(
    state: &mut State,
    member_id: &str,
    fields: &[(String, Option<Value>)],
    touched: &mut Touched,
) -> Result<Outcome> {
    let mut coerced = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        not_a_trait(state, name)?;
        let value = match (state.attrs.get(name), value) {
            (_, None) => None,
            (Some(attr), Some(v)) => Some(
                Column::coerce(attr.column.data_type(), v)
                    .map_err(|m| Error::InvalidSegment(format!("attribute '{name}': {m}")))?,
            ),
            (None, Some(v)) => Some(v.clone()),
        };
        coerced.push((name, value));
    }
    let (row, new) = state.members.resolve_or_create(member_id)?;
    touched.members(&[row], new);
    let members = state.members.len();
    state.attrs.grow(members);
    for (name, value) in coerced {
        touched.attributes.insert(name.clone());
        let existing = state.attrs.get(name).map(|a| a.column.data_type());
        let data_type = match (existing, &value) {
            (Some(t), _) => t,
            (None, Some(v)) => v.data_type(),
            (None, None) => continue,
        };
        let pos = state.attrs.ensure(name, data_type, members)?;
        state.attrs.set_value(pos, row, value.as_ref());
    }
    Ok(Outcome::Done)
}

fn add_event(
    state: &mut State,
    member_id: &str,
    event: &str,
    ts: i64,
    props: &[(String, Option<Value>)],
    touched: &mut Touched,
) -> Result<Outcome> {
    let mut staged_props = Vec::with_capacity(props.len());
    for (name, value) in props {
        let known = state.events.props.get(name).copied();
        let data_type = known
            .or(value.as_ref().map(Value::data_type))
            .unwrap_or(DataType::String);
        let value = value
            .as_ref()
            .map(|v| Column::coerce(data_type, v))
            .transpose()
            .map_err(|m| Error::InvalidSegment(format!("event property '{name}': {m}")))?;
        let mut column = Column::new(data_type);
        column.push(value.as_ref());
        staged_props.push((name.clone(), data_type, column.to_arrow(None)));
    }
    let (row, new) = state.members.resolve_or_create(member_id)?;
    touched.members(&[row], new);
    touched.events.insert(event.to_string());
    touched
        .event_times
        .get_or_insert_with(Vec::new)
        .push((event.to_string(), ts));
    state.attrs.grow(state.members.len());
    for (name, data_type, _) in &staged_props {
        state.events.props.entry(name.clone()).or_insert(*data_type);
    }
    let partition = state.events.partition_mut(event);
    partition.append(&[row], &[ts], &staged_props, &mut [0]);
    partition.seal();
    Ok(Outcome::Done)
}
