//! Time-driven changes: where a group that reads `IN LAST` windows changes without new data,
//! found from the events themselves (each partition is in time order) rather than from a
//! timer per member.
//!
//! An event at `ts` is inside a window of span `w` for every *now* with
//! `ts <= now < ts + w` (`now - w < ts <= now`). So a member's window counts, and with them
//! its membership, can change only at the instants its events enter (`ts`, for a
//! future-dated event) and leave (`ts + w`) its windows. A clock move from `t0` to `t1`
//! looks at the events with such an instant in `(t0, t1]`, and nothing else.
//!
//! `DAYS SINCE x` changes at whole days from `x`, the time of one of the member's events
//! (`FIRST` / `LAST(e)`) or a date or time attribute. Compared with a number, or bucketed,
//! it matters only at the days the test changes at (`> 180`: day 181), which are windows of
//! those spans over the events; asked for itself (a trait of it), every day matters.

use crate::computed::{AggFunc, ValueExpr};
use crate::error::{Error, Result};
use crate::members::RowId;
use crate::segment::{CmpOp, Predicate, Segment, Window, window_span};
use crate::state::State;
use crate::traits::TraitDef;
use crate::value::{DAY_MICROS, Value};

/// What a group or trait reads that moves with *now*, and so where its members change
/// without new data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum WindowRead {
    /// Events of a type inside a window of `span` microseconds: a member changes at `ts`
    /// and `ts + span` of its events. `DAYS SINCE FIRST / LAST(e)` reaching `k` days is
    /// such a read with a span of `k` days.
    Events { event: String, span: i64 },
    /// `DAYS SINCE FIRST / LAST(e)` itself, every day: instants a whole number of days
    /// from one of the member's events.
    EventDays { event: String },
    /// `DAYS SINCE` a date or time attribute: at `k` days from its value (`Some(k)`), or at
    /// every whole day from it (`None`).
    Attribute { name: String, days: Option<i64> },
}

impl WindowRead {
    /// The event type the read follows, if any.
    pub(crate) fn event(&self) -> Option<&str> {
        match self {
            WindowRead::Events { event, .. } | WindowRead::EventDays { event } => Some(event),
            WindowRead::Attribute { .. } => None,
        }
    }
}

/// Every window and `DAYS SINCE` boundary `segment` reads, through the groups and traits it
/// refers to. A `DAYS SINCE` whose instants cannot be followed (of an event property's
/// time) is an error: such a definition cannot be kept current.
pub(crate) fn window_reads(state: &State, segment: &Segment) -> Result<Vec<WindowRead>> {
    let mut out = Vec::new();
    collect(state, segment, &mut out, 0)?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every read of a trait's definition (as [`window_reads`]).
pub(crate) fn trait_reads(state: &State, definition: &TraitDef) -> Result<Vec<WindowRead>> {
    let mut out = Vec::new();
    if let Some(value) = definition.value() {
        value_reads(state, value, None, &mut out)?;
    }
    for s in definition.segments() {
        collect(state, s, &mut out, 0)?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn collect(
    state: &State,
    segment: &Segment,
    out: &mut Vec<WindowRead>,
    depth: usize,
) -> Result<()> {
    match segment {
        Segment::Did(did) => {
            if let Some(Window::Last { amount, unit }) = &did.window {
                let span = window_span(*amount, *unit).unwrap_or(i64::MAX);
                out.push(WindowRead::Events {
                    event: did.event.clone(),
                    span,
                });
            }
        }
        // A sequence changes without new data where its first part's window moves, where
        // a THEN NOT window closes (A.ts + n), and without WITHIN where a first event or a
        // future-dated second one reaches *now*.
        Segment::Sequence(seq) => {
            let mut read = |event: &str, span: i64| {
                out.push(WindowRead::Events {
                    event: event.to_string(),
                    span,
                })
            };
            if let Some(Window::Last { amount, unit }) = &seq.first.window {
                read(
                    &seq.first.event,
                    window_span(*amount, *unit).unwrap_or(i64::MAX),
                );
            }
            if seq.negated {
                match seq.within {
                    Some((amount, unit)) => read(
                        &seq.first.event,
                        window_span(amount, unit).unwrap_or(i64::MAX),
                    ),
                    None => {
                        read(&seq.first.event, i64::MAX);
                        read(&seq.then, i64::MAX);
                    }
                }
            }
        }
        Segment::Value { value, predicate } => {
            value_reads(state, value, significant_days(predicate), out)?
        }
        Segment::Attr { name, .. } => {
            if let Some(t) = state.traits.get(name) {
                out.extend(t.windows.iter().cloned());
            }
        }
        Segment::InGroup(name) => {
            // Definitions only refer to earlier groups: no cycle, and the depth is bounded
            // by the number of groups.
            if let Some(group) = state.groups.get(name)
                && group.time_dependent
                && depth <= state.groups.groups.len()
            {
                out.extend(group.windows.iter().cloned());
            }
        }
        Segment::And(children) | Segment::Or(children) => {
            for c in children {
                collect(state, c, out, depth)?;
            }
        }
        Segment::Not(inner) => collect(state, inner, out, depth)?,
        Segment::All | Segment::Tag(_) | Segment::Identifiers { .. } => {}
    }
    Ok(())
}

/// The reads of a value; `days`: the numbers of days at which a `DAYS SINCE` at its top
/// matters (`None`: every day).
fn value_reads(
    state: &State,
    value: &ValueExpr,
    days: Option<Vec<i64>>,
    out: &mut Vec<WindowRead>,
) -> Result<()> {
    match value {
        ValueExpr::Attr(name) => {
            if let Some(t) = state.traits.get(name) {
                out.extend(t.windows.iter().cloned());
            }
        }
        ValueExpr::Aggregate(a) => {
            if let Some(Window::Last { amount, unit }) = &a.window {
                let span = window_span(*amount, *unit).unwrap_or(i64::MAX);
                out.push(WindowRead::Events {
                    event: a.event.clone(),
                    span,
                });
            }
        }
        ValueExpr::Bucket { value, cuts } => {
            let cut_days = cuts
                .iter()
                .filter_map(|c| match c {
                    Value::Int(i) => Some(*i),
                    Value::Float(x) if x.is_finite() => Some(x.ceil() as i64),
                    _ => None,
                })
                .collect();
            value_reads(state, value, Some(cut_days), out)?
        }
        ValueExpr::DaysSince(inner) => {
            value_reads(state, inner, None, out)?;
            days_since_reads(state, inner, &days, out, 0)?;
        }
    }
    Ok(())
}

/// Where `DAYS SINCE x` changes: `x` is the time of one of the member's events (`FIRST` /
/// `LAST` of an event type) or a date or time attribute.
fn days_since_reads(
    state: &State,
    x: &ValueExpr,
    days: &Option<Vec<i64>>,
    out: &mut Vec<WindowRead>,
    depth: usize,
) -> Result<()> {
    match x {
        ValueExpr::Aggregate(a) if matches!(a.func, AggFunc::First(None) | AggFunc::Last(None)) => {
            match days {
                Some(days) => out.extend(days.iter().map(|&k| WindowRead::Events {
                    event: a.event.clone(),
                    span: k.saturating_mul(DAY_MICROS),
                })),
                None => out.push(WindowRead::EventDays {
                    event: a.event.clone(),
                }),
            }
            Ok(())
        }
        ValueExpr::Attr(name) if state.attrs.get(name).is_some() => {
            match days {
                Some(days) => out.extend(days.iter().map(|&k| WindowRead::Attribute {
                    name: name.clone(),
                    days: Some(k),
                })),
                None => out.push(WindowRead::Attribute {
                    name: name.clone(),
                    days: None,
                }),
            }
            Ok(())
        }
        ValueExpr::Attr(name) => match state.traits.get(name).map(|t| &t.definition) {
            Some(TraitDef::Value(inner)) if depth <= state.traits.traits.len() => {
                days_since_reads(state, inner, days, out, depth + 1)
            }
            _ => Err(not_followed(x)),
        },
        _ => Err(not_followed(x)),
    }
}

fn not_followed(x: &ValueExpr) -> Error {
    Error::InvalidSegment(format!(
        "DAYS SINCE {} cannot be kept current: a group or trait follows DAYS SINCE of \
         FIRST(e), LAST(e) or a date or time attribute; ask it in a statement instead",
        crate::query::value_text(x)
    ))
}

/// The numbers of days at which a test of a whole number of days changes (`d - 1` and `d`
/// tested differently); `None` when it cannot be told (every day).
fn significant_days(predicate: &Predicate) -> Option<Vec<i64>> {
    let num = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) if x.is_finite() => Some(*x),
        _ => None,
    };
    // The first whole day above / at or above x.
    let above = |x: f64| x.floor() as i64 + 1;
    let at_or_above = |x: f64| x.ceil() as i64;
    Some(match predicate {
        Predicate::Cmp(op, v) => {
            let x = num(v)?;
            match op {
                CmpOp::Gt | CmpOp::Le => vec![above(x)],
                CmpOp::Ge | CmpOp::Lt => vec![at_or_above(x)],
                CmpOp::Eq | CmpOp::Ne => vec![at_or_above(x), above(x)],
            }
        }
        Predicate::In(vs) => {
            let mut out = Vec::new();
            for v in vs {
                let x = num(v)?;
                out.extend([at_or_above(x), above(x)]);
            }
            out
        }
        Predicate::Between(a, b) => vec![at_or_above(num(a)?), above(num(b)?)],
        Predicate::IsNull | Predicate::IsNotNull => Vec::new(),
    })
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
        // A sequence moving with time can gain members (a THEN NOT window closes) and lose
        // them (its first part's window moves on).
        Segment::Sequence(seq) => {
            if seq.uses_relative_time() {
                sides.2 = true;
            }
        }
        // A value over a window can move either way as events leave it; so can a trait
        // that moves with time.
        Segment::Value { value, .. } => {
            let traits_move = value
                .attributes()
                .iter()
                .any(|n| state.traits.get(n).is_some_and(|t| t.time_dependent));
            if value.uses_relative_time() || traits_move {
                sides.2 = true;
            }
        }
        Segment::Attr { name, .. } => {
            if state.traits.get(name).is_some_and(|t| t.time_dependent) {
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
        Segment::All | Segment::Tag(_) | Segment::Identifiers { .. } => {}
    }
}

/// The first instant after `clock` at which a member's membership in a group reading
/// `reads` can change without new data (`i64::MAX`: never).
pub(crate) fn next_boundary(state: &State, reads: &[WindowRead], clock: i64) -> i64 {
    let mut next = i64::MAX;
    for read in reads {
        match read {
            WindowRead::Events { event, span } => {
                let Some(partition) = state.events.types.get(event) else {
                    continue;
                };
                let ts = &partition.ts;
                // The first event still inside the window leaves it at ts + span.
                let lo = clock.saturating_sub(*span).saturating_add(1);
                let i = ts.partition_point(|&t| t < lo);
                if i < ts.len() {
                    next = next.min(ts[i].saturating_add(*span));
                }
                // The first event after the clock enters the window at its own time.
                let j = ts.partition_point(|&t| t <= clock);
                if j < ts.len() {
                    next = next.min(ts[j]);
                }
            }
            WindowRead::EventDays { event } => {
                if let Some(partition) = state.events.types.get(event) {
                    for t in partition.ts.range(0..partition.len()) {
                        next = next.min(next_day_from(t, clock));
                    }
                }
            }
            WindowRead::Attribute { name, days } => {
                for (_, v) in attribute_instants(state, name) {
                    let at = match days {
                        Some(k) => v.saturating_add(k.saturating_mul(DAY_MICROS)),
                        None => next_day_from(v, clock),
                    };
                    if at > clock {
                        next = next.min(at);
                    }
                }
            }
        }
    }
    next
}

/// The first instant after `clock` at which an event at `ts` changes what `read` reads
/// (`i64::MAX`: none).
pub(crate) fn next_instant(read: &WindowRead, ts: i64, clock: i64) -> i64 {
    match read {
        WindowRead::Events { span, .. } => [ts, ts.saturating_add(*span)]
            .into_iter()
            .filter(|&at| at > clock)
            .min()
            .unwrap_or(i64::MAX),
        WindowRead::EventDays { .. } => next_day_from(ts, clock),
        WindowRead::Attribute { .. } => i64::MAX,
    }
}

/// The first instant after `clock` a whole number of days (of any sign) from `t`.
fn next_day_from(t: i64, clock: i64) -> i64 {
    clock
        .saturating_add(1)
        .saturating_add((t.wrapping_sub(clock).wrapping_sub(1)).rem_euclid(DAY_MICROS))
}

/// Each member with a value of a date or time attribute, with the value's instant.
fn attribute_instants<'s>(state: &'s State, name: &str) -> impl Iterator<Item = (RowId, i64)> + 's {
    let column = state.attrs.get(name).map(|a| &a.column);
    let rows = column.map_or(0, |c| c.len());
    (0..rows).filter_map(move |row| {
        let value = column?.get(row)?;
        let at = match value {
            Value::Timestamp(t) => t,
            Value::Date(d) => i64::from(d) * DAY_MICROS,
            _ => return None,
        };
        Some((row as RowId, at))
    })
}

/// Whole days from `t` that fall in `(t0, t1]`, at most [`MAX_DAYS_PER_MOVE`] of them.
fn days_in(t: i64, t0: i64, t1: i64, out: &mut Vec<i64>) {
    let mut at = next_day_from(t, t0);
    let mut n = 0;
    while at <= t1 && n < MAX_DAYS_PER_MOVE {
        out.push(at);
        at = at.saturating_add(DAY_MICROS);
        n += 1;
    }
}

/// The most day crossings of one member looked at in one clock move (ten years).
const MAX_DAYS_PER_MOVE: usize = 3660;

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
    /// Adds the instant `at` for each member of `rows`.
    pub(crate) fn add(&mut self, rows: &roaring::RoaringBitmap, at: i64) {
        self.pairs.extend(rows.iter().map(|r| (r, at)));
        self.index();
    }

    /// Sorts the pairs and groups them by member.
    fn index(&mut self) {
        self.pairs.sort_unstable();
        self.pairs.dedup();
        self.members.clear();
        for (i, &(row, _)) in self.pairs.iter().enumerate() {
            match self.members.last_mut() {
                Some((r, range)) if *r == row => range.end = i + 1,
                _ => self.members.push((row, i..i + 1)),
            }
        }
    }

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
    let mut instants = Vec::new();
    for read in reads {
        match read {
            WindowRead::Events { event, span } => {
                let Some(partition) = state.events.types.get(event) else {
                    continue;
                };
                let span = *span;
                // Leaving: t0 < ts + span <= t1.
                let leaving = partition.slice(
                    t0.saturating_sub(span).saturating_add(1),
                    t1.saturating_sub(span).saturating_add(1),
                );
                // Entering (future-dated events): t0 < ts <= t1.
                let entering = partition.slice(t0.saturating_add(1), t1.saturating_add(1));
                entering_any |= !entering.is_empty();
                for (range, shift) in [(leaving, span), (entering, 0)] {
                    let rows = partition.members.range(range.clone());
                    let times = partition.ts.range(range);
                    pairs.extend(rows.zip(times).map(|(r, t)| (r, t.saturating_add(shift))));
                }
            }
            WindowRead::EventDays { event } => {
                let Some(partition) = state.events.types.get(event) else {
                    continue;
                };
                // A day crossing can turn a value either way: as if entering.
                entering_any = true;
                let all = 0..partition.len();
                for (row, t) in partition
                    .members
                    .range(all.clone())
                    .zip(partition.ts.range(all))
                {
                    instants.clear();
                    days_in(t, t0, t1, &mut instants);
                    pairs.extend(instants.iter().map(|&at| (row, at)));
                }
            }
            WindowRead::Attribute { name, days } => {
                entering_any = true;
                for (row, v) in attribute_instants(state, name) {
                    match days {
                        Some(k) => {
                            let at = v.saturating_add(k.saturating_mul(DAY_MICROS));
                            if t0 < at && at <= t1 {
                                pairs.push((row, at));
                            }
                        }
                        None => {
                            instants.clear();
                            days_in(v, t0, t1, &mut instants);
                            pairs.extend(instants.iter().map(|&at| (row, at)));
                        }
                    }
                }
            }
        }
    }
    let mut out = Boundaries {
        pairs,
        members: Vec::new(),
        entering: entering_any,
    };
    out.index();
    Ok(out)
}
