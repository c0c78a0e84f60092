//! `EXPLAIN MEMBER 'M1' IN GROUP g`: why one member is in a group or not. Each part of the
//! definition is evaluated for that member alone, through the same plan as any query over a
//! universe of one member, with the facts behind it (its tags, its attribute's value, its
//! matching events in the window and the latest of them) and the next instant its truth
//! changes without new data.

use roaring::RoaringBitmap;

use super::time;
use crate::bitmap::Chunks;
use crate::database::View;
use crate::error::{Error, Result};
use crate::events::EventPartition;
use crate::members::RowId;
use crate::plan::{self, Universe};
use crate::segment::{Segment, resolve_window};
use crate::state::State;
use crate::value::format_timestamp;

/// Instants tried, per part, when looking for its next change.
const MAX_TRIES: usize = 256;

impl View<'_> {
    /// One row per part of group `group`'s definition, in pre-order: the part (indented),
    /// whether it holds for the member now, its facts, and when it next changes.
    pub fn explain_member(&self, member_id: &str, group: &str) -> Result<Vec<Vec<String>>> {
        let state = self.state();
        let g = state.groups.require(group)?;
        let row = state
            .members
            .lookup(member_id)
            .filter(|&r| self.in_scope(r))
            .ok_or_else(|| Error::InvalidSegment(format!("no member '{member_id}'")))?;
        let now = self.now().micros();
        let member: RoaringBitmap = std::iter::once(row).collect();
        let chunks = Chunks::from_roaring(&member);
        let holds = |segment: &Segment, at: i64| -> Result<bool> {
            let plan = plan::bind(state, segment, at, None)?;
            Ok(!plan.bitmap(Universe::of(&chunks), None)?.is_empty())
        };
        let mut rows = Vec::new();
        let whole = Segment::in_group(group);
        let mut parts = vec![(0usize, &whole)];
        let mut stack = vec![(1usize, &g.definition)];
        while let Some((depth, part)) = stack.pop() {
            parts.push((depth, part));
            if let Segment::And(children) | Segment::Or(children) = part {
                stack.extend(children.iter().rev().map(|c| (depth + 1, c)));
            } else if let Segment::Not(inner) = part {
                stack.push((depth + 1, inner));
            }
        }
        for (depth, part) in parts {
            let truth = holds(part, now)?;
            let label = match part {
                Segment::And(_) => "AND".to_string(),
                Segment::Or(_) => "OR".to_string(),
                Segment::Not(_) => "NOT".to_string(),
                other => other.to_string(),
            };
            let windows = time::window_reads(state, part)?;
            let changes = if windows.is_empty() {
                "only with new data".to_string()
            } else {
                let instants = member_boundaries(state, &windows, row, now);
                let mut found = None;
                for &at in instants.iter().take(MAX_TRIES) {
                    if holds(part, at)? != truth {
                        found = Some(at);
                        break;
                    }
                }
                match found {
                    Some(at) => format_timestamp(at),
                    None if instants.len() > MAX_TRIES => {
                        format!("not before {}", format_timestamp(instants[MAX_TRIES]))
                    }
                    None => "never without new data".to_string(),
                }
            };
            rows.push(vec![
                format!("{}{label}", "  ".repeat(depth)),
                truth.to_string(),
                facts(state, part, row, now)?,
                changes,
            ]);
        }
        Ok(rows)
    }
}

/// What the member's data says about one part.
fn facts(state: &State, part: &Segment, row: RowId, now: i64) -> Result<String> {
    Ok(match part {
        Segment::Identifiers { id_type, .. } => {
            let held = state
                .identity
                .identifiers_of(state.identity.graph().canonical(row));
            let n = held.iter().filter(|(t, _)| t == id_type).count();
            format!(
                "holds {n} {id_type} identifier{}",
                if n == 1 { "" } else { "s" }
            )
        }
        Segment::Tag(tag) => match state.tags.get(tag) {
            Some(b) if b.contains(row) => format!("has tag '{tag}'"),
            _ => format!("no tag '{tag}'"),
        },
        // An attribute's value, or a trait's at this instant.
        Segment::Attr { name, .. } => {
            let value = crate::computed::ValueExpr::attr(name.as_str());
            match plan::member_value(state, &value, now, row)? {
                Some(v) => format!("{name} = {v}"),
                None => format!("{name} is NULL"),
            }
        }
        Segment::Value { value, .. } => {
            let text = crate::query::value_text(value);
            match plan::member_value(state, value, now, row)? {
                Some(v) => format!("{text} = {v}"),
                None => format!("{text} is NULL"),
            }
        }
        Segment::InGroup(name) => {
            let g = state.groups.require(name)?;
            if g.holds_at(now) {
                let inside = g.bitmap.contains(row);
                format!("{} group '{name}'", if inside { "in" } else { "not in" })
            } else {
                format!("group '{name}' evaluated at this instant")
            }
        }
        Segment::Did(did) => {
            let part = state.events.require(&did.event)?;
            let mut times = member_events(part, row);
            if let Some(filter) = &did.filter {
                let bound = plan::event_filter(state, part, filter)?;
                let mut scratch = Vec::new();
                times.retain(|&(i, _)| {
                    let mut pass = [false];
                    bound.fill(i, &mut pass, &mut scratch);
                    pass[0]
                });
            }
            let all = times.len();
            let (lo, hi) = match &did.window {
                Some(w) => resolve_window(w, now)?,
                None => (i64::MIN, i64::MAX),
            };
            let inside: Vec<i64> = times
                .iter()
                .map(|&(_, t)| t)
                .filter(|t| (lo..hi).contains(t))
                .collect();
            let latest = inside.last().map_or(String::new(), |t| {
                format!(", the latest at {}", format_timestamp(*t))
            });
            let what = if did.filter.is_some() {
                "matching events"
            } else {
                "events"
            };
            if did.window.is_some() {
                format!(
                    "{} {what} in the window{latest}; {all} in all",
                    inside.len()
                )
            } else {
                format!("{} {what}{latest}", inside.len())
            }
        }
        Segment::Sequence(seq) => {
            let mut said = Vec::new();
            for event in [&seq.first.event, &seq.then] {
                let n = state
                    .events
                    .types
                    .get(event)
                    .map_or(0, |p| member_events(p, row).len());
                let text = format!("{n} {event} events");
                if !said.contains(&text) {
                    said.push(text);
                }
            }
            said.join(", ")
        }
        Segment::All => "a live member".to_string(),
        Segment::And(_) | Segment::Or(_) | Segment::Not(_) => String::new(),
    })
}

/// The member's events of a partition, as (index, time), in time order: found through the
/// day bitmaps, then the events of those days.
fn member_events(part: &EventPartition, row: RowId) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    for (day, bitmap) in &part.days {
        if !bitmap.contains(row) {
            continue;
        }
        let start = day.saturating_mul(crate::value::DAY_MICROS);
        let range = part.slice(start, start.saturating_add(crate::value::DAY_MICROS));
        for i in range {
            if part.members[i] == row {
                out.push((i, part.ts[i]));
            }
        }
    }
    out
}

/// The instants after `now` at which the member's windows change, sorted and distinct.
fn member_boundaries(
    state: &State,
    windows: &[time::WindowRead],
    row: RowId,
    now: i64,
) -> Vec<i64> {
    let mut out = Vec::new();
    for w in windows {
        let Some(part) = w.event().and_then(|e| state.events.types.get(e)) else {
            continue;
        };
        for (_, ts) in member_events(part, row) {
            let span = match w {
                time::WindowRead::Events { span, .. } => *span,
                // The next whole day from the event.
                _ => {
                    crate::value::DAY_MICROS
                        * (1 + now.saturating_sub(ts).max(0) / crate::value::DAY_MICROS)
                }
            };
            for at in [ts.saturating_add(span), ts] {
                if at > now {
                    out.push(at);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
