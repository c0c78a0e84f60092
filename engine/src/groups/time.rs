//! Time-driven changes: where a group that reads `IN LAST` windows changes without new data,
//! found from the events themselves (each partition is in time order) rather than from a
//! timer per member.
//!
//! An event at `ts` is inside a window of span `w` for every *now* with
//! `ts <= now < ts + w` (`now - w < ts <= now`). So a member's window counts, and with them
//! its membership, can change only at the instants its events enter (`ts`, for a
//! future-dated event) and leave (`ts + w`) its windows. A clock move from `t0` to `t1`
//! looks at the events with such an instant in `(t0, t1]`, and nothing else.

use crate::error::Result;
use crate::members::RowId;
use crate::segment::{Segment, Window, window_span};
use crate::state::State;

/// A window a group reads: the events of one type over a span of microseconds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WindowRead {
    pub(crate) event: String,
    pub(crate) span: i64,
}

/// Every `IN LAST` window `segment` reads, through the groups it refers to.
pub(crate) fn window_reads(state: &State, segment: &Segment) -> Vec<WindowRead> {
    let mut out = Vec::new();
    collect(state, segment, &mut out, 0);
    out.sort();
    out.dedup();
    out
}

fn collect(state: &State, segment: &Segment, out: &mut Vec<WindowRead>, depth: usize) {
    match segment {
        Segment::Did(did) => {
            if let Some(Window::Last { amount, unit }) = &did.window {
                let span = window_span(*amount, *unit).unwrap_or(i64::MAX);
                out.push(WindowRead {
                    event: did.event.clone(),
                    span,
                });
            }
        }
        Segment::Value { value, .. } => {
            for a in value.aggregates() {
                if let Some(Window::Last { amount, unit }) = &a.window {
                    let span = window_span(*amount, *unit).unwrap_or(i64::MAX);
                    out.push(WindowRead {
                        event: a.event.clone(),
                        span,
                    });
                }
            }
        }
        Segment::InGroup(name) => {
            // Definitions only refer to earlier groups: no cycle, and the depth is bounded
            // by the number of groups.
            if let Some(group) = state.groups.get(name)
                && group.time_dependent
                && depth <= state.groups.groups.len()
            {
                collect(state, &group.definition, out, depth + 1);
            }
        }
        Segment::And(children) | Segment::Or(children) => {
            children.iter().for_each(|c| collect(state, c, out, depth))
        }
        Segment::Not(inner) => collect(state, inner, out, depth),
        Segment::All | Segment::Tag(_) | Segment::Attr { .. } => {}
    }
}

/// How a group's membership can move while its windows only lose events (the clock moving
/// with no future-dated event entering a window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Monotony {
    /// It can only lose members: every window is read as "at least n" outside any `NOT`.
    Falls,
    /// It can only gain members: every window is read as "at least n" under a `NOT`.
    Rises,
    /// Either (an `AT MOST` or `EXACTLY` window, or windows on both sides of a `NOT`).
    Either,
}

/// How `segment`'s membership moves when its windows only lose events (through the groups
/// it refers to too). A member whose membership is the same at both ends of such a move
/// then never changed in between.
pub(crate) fn monotony(state: &State, segment: &Segment) -> Monotony {
    let mut sides = (false, false, false);
    polarity(state, segment, true, &mut sides, 0);
    match sides {
        (_, _, true) | (true, true, _) => Monotony::Either,
        (false, true, _) => Monotony::Rises,
        _ => Monotony::Falls,
    }
}

/// Notes the sides windows are read on: `(outside NOT, under NOT, not "at least")`.
fn polarity(
    state: &State,
    segment: &Segment,
    positive: bool,
    sides: &mut (bool, bool, bool),
    depth: usize,
) {
    match segment {
        Segment::Did(did) => {
            if matches!(did.window, Some(Window::Last { .. })) {
                match did.frequency {
                    None | Some(crate::segment::Frequency::AtLeast(_)) => {
                        if positive {
                            sides.0 = true;
                        } else {
                            sides.1 = true;
                        }
                    }
                    Some(_) => sides.2 = true,
                }
            }
        }
        // A value over a window can move either way as events leave it.
        Segment::Value { value, .. } => {
            if value.uses_relative_time() {
                sides.2 = true;
            }
        }
        Segment::InGroup(name) => {
            if let Some(group) = state.groups.get(name)
                && group.time_dependent
                && depth <= state.groups.groups.len()
            {
                polarity(state, &group.definition, positive, sides, depth + 1);
            }
        }
        Segment::And(children) | Segment::Or(children) => children
            .iter()
            .for_each(|c| polarity(state, c, positive, sides, depth)),
        Segment::Not(inner) => polarity(state, inner, !positive, sides, depth),
        Segment::All | Segment::Tag(_) | Segment::Attr { .. } => {}
    }
}

/// The first instant after `clock` at which a member's membership in a group reading
/// `reads` can change without new data (`i64::MAX`: never).
pub(crate) fn next_boundary(state: &State, reads: &[WindowRead], clock: i64) -> i64 {
    let mut next = i64::MAX;
    for read in reads {
        let Some(partition) = state.events.types.get(&read.event) else {
            continue;
        };
        let ts = &partition.ts;
        // The first event still inside the window leaves it at ts + span.
        let lo = clock.saturating_sub(read.span).saturating_add(1);
        let i = ts.partition_point(|&t| t < lo);
        if i < ts.len() {
            next = next.min(ts[i].saturating_add(read.span));
        }
        // The first event after the clock enters the window at its own time.
        let j = ts.partition_point(|&t| t <= clock);
        if j < ts.len() {
            next = next.min(ts[j]);
        }
    }
    next
}

/// The instants in a clock move at which members' windows change.
pub(crate) struct Boundaries {
    /// `(row, instant)`, sorted and distinct.
    pub(crate) pairs: Vec<(RowId, i64)>,
    /// Per member, in row order: its row and the range of its pairs.
    pub(crate) members: Vec<(RowId, std::ops::Range<usize>)>,
    /// Some event enters a window in the move (a future-dated event), rather than only
    /// leaving one.
    pub(crate) entering: bool,
}

impl Boundaries {
    /// The instants of member `k` (an index into `members`).
    pub(crate) fn instants(&self, k: usize) -> impl Iterator<Item = i64> + '_ {
        self.pairs[self.members[k].1.clone()].iter().map(|p| p.1)
    }
}

/// Each member whose windows in `reads` change in `(t0, t1]`, with the instants they
/// change at.
pub(crate) fn boundaries(
    state: &State,
    reads: &[WindowRead],
    t0: i64,
    t1: i64,
) -> Result<Boundaries> {
    let mut pairs: Vec<(RowId, i64)> = Vec::new();
    let mut entering_any = false;
    for read in reads {
        let Some(partition) = state.events.types.get(&read.event) else {
            continue;
        };
        // Leaving: t0 < ts + span <= t1.
        let leaving = partition.slice(
            t0.saturating_sub(read.span).saturating_add(1),
            t1.saturating_sub(read.span).saturating_add(1),
        );
        // Entering (future-dated events): t0 < ts <= t1.
        let entering = partition.slice(t0.saturating_add(1), t1.saturating_add(1));
        entering_any |= !entering.is_empty();
        for (range, shift) in [(leaving, read.span), (entering, 0)] {
            let rows = partition.members.range(range.clone());
            let times = partition.ts.range(range);
            pairs.extend(rows.zip(times).map(|(r, t)| (r, t.saturating_add(shift))));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut members: Vec<(RowId, std::ops::Range<usize>)> = Vec::new();
    for (i, &(row, _)) in pairs.iter().enumerate() {
        match members.last_mut() {
            Some((r, range)) if *r == row => range.end = i + 1,
            _ => members.push((row, i..i + 1)),
        }
    }
    Ok(Boundaries {
        pairs,
        members,
        entering: entering_any,
    })
}
