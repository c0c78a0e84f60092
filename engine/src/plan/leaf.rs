//! Leaves computed when a plan runs: attribute range bins and column scans, and event
//! windows (presence from the day bitmaps, or the window's events filtered and counted per
//! member).

use roaring::RoaringBitmap;

use crate::attributes::Attribute;
use crate::bitmap::Chunks;
use crate::column::{Column, Matcher, compile};
use crate::error::Result;
use crate::events::{BoundFilter, DaySplit, EventPartition, FEW_MEMBERS, counts_among};
use crate::segment::Frequency;

/// A leaf whose members are computed at run time.
pub(crate) enum Leaf<'a> {
    /// The passing rows of the range bins of an ordered attribute that a range cuts (the
    /// bins wholly inside are stored operands beside it).
    Range {
        attr: &'a Attribute,
        matcher: Matcher,
    },
    /// The rows `rows` of an attribute whose index entries wait
    /// ([`AttrIndex::pending`](crate::attributes::AttrIndex::pending)) and whose column
    /// values pass `matcher` (the plan takes `rows` out of the index's answer).
    Pending {
        attr: &'a Attribute,
        rows: &'a crate::bitmap::Bitmap,
        matcher: Matcher,
    },
    /// A high-cardinality attribute, its codes scanned.
    Scan {
        attr: &'a Attribute,
        matcher: Matcher,
    },
    /// Members with an event among the partition's events `events` (a window inside one
    /// UTC day).
    Present {
        part: &'a EventPartition,
        events: std::ops::Range<usize>,
    },
    /// Members with an event of the type in `[lo, hi)`, a part of UTC day `day` (the
    /// partition's events `events`).
    PartialDay {
        part: &'a EventPartition,
        day: i64,
        lo: i64,
        hi: i64,
        events: std::ops::Range<usize>,
    },
    /// Members whose number of events of the type in the window `split` passes
    /// `frequency`: the whole days' bitmaps and their repeat levels counted chunk by chunk,
    /// the cut days' events added.
    DayCounts {
        part: &'a EventPartition,
        split: DaySplit,
        frequency: Frequency,
        members: usize,
    },
    /// Members with an event of the type in the window `split` whose value of `prop`
    /// passes `matcher`: per-day orders of the property's values once it is wanted
    /// (`events/value_order.rs`), a scan of the window's events the first time.
    ValueDays {
        part: &'a EventPartition,
        prop: &'a str,
        column: &'a Column,
        matcher: Matcher,
        split: DaySplit,
        members: usize,
    },
    /// Members of the universe with a computed value (an aggregate of their events, `DAYS
    /// SINCE`, `BUCKET`) that passes `predicate` (with `failing`: that does not pass; the
    /// plan takes those from the universe when members without a value pass).
    Value {
        value: crate::computed::eval::BoundValue<'a>,
        predicate: &'a crate::segment::Predicate,
        /// The predicate compiled for the value's type, which tests one value
        /// ([`value_passes`]).
        matcher: crate::column::Matcher,
        failing: bool,
        /// Row ids ever assigned: the size of dense slots.
        members: usize,
    },
    /// Members for whom a sequence (`DID a ... THEN [NOT] b`) holds: the candidates'
    /// events of both types read in time order.
    Sequence(Box<crate::sequence::leaf::BoundSequence<'a>>),
    /// Members whose events in `range` (indexes into the partition) pass `filter` often
    /// enough.
    Events {
        part: &'a EventPartition,
        range: std::ops::Range<usize>,
        filter: Option<BoundFilter<'a>>,
        frequency: Option<Frequency>,
        /// Row ids ever assigned: the size of dense counters.
        members: usize,
    },
}

/// Whether each value of `column` puts its member in a value leaf: the value passes
/// `predicate` (fails it, with `failing`).
fn in_value_leaf(
    predicate: &crate::segment::Predicate,
    failing: bool,
    column: &Column,
) -> Result<Vec<bool>> {
    let matcher = compile(predicate, column, "the value")?;
    let mut pass = vec![false; column.len()];
    matcher.fill(column, 0, &mut pass);
    Ok(pass.into_iter().map(|p| p != failing).collect())
}

/// Whether one value of type `data_type` passes `predicate`: by `matcher` (the predicate
/// compiled for the type) where it can tell, else in a one-row column (a string: its codes
/// name that column's dictionary). The binder tests a value leaf's empty value with it, a
/// probe one member's value.
pub(crate) fn value_passes(
    predicate: &crate::segment::Predicate,
    matcher: &crate::column::Matcher,
    data_type: crate::value::DataType,
    value: Option<&crate::value::Value>,
) -> Result<bool> {
    if let Some(pass) = matcher.passes(data_type, value) {
        return Ok(pass);
    }
    let mut column = Column::new(data_type);
    column.push(value);
    Ok(in_value_leaf(predicate, false, &column)?[0])
}

/// A computed value's leaf is computed for the members of its universe alone up to this
/// share of every member (else for everyone, in one pass over the window).
const VALUE_SHARE: u64 = 16;

impl Leaf<'_> {
    /// The members of the leaf; with `within`, at least those inside its chunks (the
    /// plan intersects with its universe): the leaves whose work goes by chunk of members
    /// (attribute scans, day counts) skip the chunks without members of `within`.
    pub(crate) fn compute(&self, within: Option<&Chunks>) -> Result<RoaringBitmap> {
        // A universe of a few members (a write's, a piece of a clock move): the window's
        // events are passed over for those members only, nothing sorted. A value is
        // computed for them alone while they are a small share of everyone (a clock
        // move's candidates), each one's events from the partition's index of them.
        let limit = match self {
            Leaf::Value { members, .. } => (*members as u64 / VALUE_SHARE).max(FEW_MEMBERS),
            _ => FEW_MEMBERS,
        };
        let few = within.filter(|w| w.len() <= limit).map(Chunks::rows);
        Ok(match self {
            Leaf::Range { attr, matcher } => attr.cut_ranges(matcher),
            Leaf::Pending {
                attr,
                rows,
                matcher,
            } => rows
                .iter()
                .filter(|&r| matcher.matches(&attr.column, r as usize))
                .collect(),
            Leaf::Scan { attr, matcher } => attr.scan(matcher, within),
            Leaf::Present { part, events } => match &few {
                Some(few) => part.members_among(events.clone(), few),
                None => part.scan_members(events.clone()),
            },
            Leaf::PartialDay {
                part,
                day,
                lo,
                hi,
                events,
            } => match &few {
                Some(few) => part.members_among(events.clone(), few),
                None => part.partial_day(*day, *lo, *hi),
            },
            Leaf::DayCounts {
                part,
                split,
                frequency,
                members,
            } => part
                .members_by_day_counts(split, *frequency, within)
                .unwrap_or_else(|| {
                    let rows = part.members.range(split.events.clone()).collect();
                    members_by_count(rows, *members, *frequency)
                }),
            Leaf::ValueDays {
                part,
                prop,
                column,
                matcher,
                split,
                members,
            } => part
                .members_by_value(prop, column, matcher, split, *members)
                .unwrap_or_else(|| {
                    let filter = BoundFilter::Prop {
                        column: Some(column),
                        matcher: matcher.clone(),
                    };
                    distinct_members(
                        part.filtered_members(split.events.clone(), &filter),
                        *members,
                    )
                }),
            Leaf::Events {
                part,
                range,
                filter,
                frequency,
                members,
            } => {
                if let Some(few) = &few {
                    let counts = match filter {
                        Some(f) => {
                            counts_among(part.filtered_members(range.clone(), f).into_iter(), few)
                        }
                        None => counts_among(part.members.range(range.clone()), few),
                    };
                    let accepts = |n: u32| match frequency {
                        None => n > 0,
                        Some(frequency) => n > 0 && frequency.accepts(u64::from(n)),
                    };
                    return Ok(few
                        .iter()
                        .zip(counts)
                        .filter(|&(_, n)| accepts(n))
                        .map(|(&m, _)| m)
                        .collect());
                }
                let rows: Vec<u32> = match filter {
                    Some(f) => part.filtered_members(range.clone(), f),
                    None => part.members.range(range.clone()).collect(),
                };
                match frequency {
                    None => distinct_members(rows, *members),
                    Some(frequency) => members_by_count(rows, *members, *frequency),
                }
            }
            Leaf::Sequence(seq) => seq.members(within.map(Chunks::to_roaring).as_ref())?,
            Leaf::Value {
                value,
                predicate,
                failing,
                members,
                ..
            } => {
                let values = value.values(few.as_deref(), *members)?;
                let rows = values
                    .rows
                    .iter()
                    .zip(in_value_leaf(predicate, *failing, &values.column)?)
                    .filter(|&(_, inside)| inside)
                    .map(|(&row, _)| row);
                RoaringBitmap::from_sorted_iter(rows).expect("rows ascend")
            }
        })
    }

    /// Whether member `row` is in the leaf, for a leaf that tells one member's answer
    /// without computing a set (a value leaf: that member's value tested); `None` for
    /// the others.
    pub(crate) fn holds(&self, row: u32) -> Option<Result<bool>> {
        if let Leaf::Sequence(seq) = self {
            return Some(seq.holds(row));
        }
        if let Leaf::Pending {
            attr,
            rows,
            matcher,
        } = self
        {
            return Some(Ok(
                rows.contains(row) && matcher.matches(&attr.column, row as usize)
            ));
        }
        let Leaf::Value {
            value,
            predicate,
            matcher,
            failing,
            members,
        } = self
        else {
            return None;
        };
        // The member's value, its empty value included: a member without one is in
        // neither set (the value passing, and the value failing when the empty one
        // passes), and the test of the empty value gives just that.
        Some(value.value_of(row, *members).and_then(|v| {
            Ok(value_passes(predicate, matcher, value.data_type(), v.as_ref())? != *failing)
        }))
    }

    /// How the leaf is computed, for EXPLAIN.
    pub(crate) fn kernel(&self) -> String {
        match self {
            Leaf::Range { .. } => "the rows of the range bins it cuts, tested".into(),
            Leaf::Pending { rows, .. } => format!(
                "{} rows set since the index last moved its entries, their values tested",
                rows.len()
            ),
            Leaf::Scan { .. } => "column scan (no value bitmaps at this cardinality)".into(),
            Leaf::Present { .. } => "the window's events scanned (inside one day)".into(),
            Leaf::PartialDay { .. } => {
                "the day's bitmap less members seen only outside the window (or a scan)".into()
            }
            Leaf::DayCounts { part, split, .. } => format!(
                "{} days' member bitmaps and repeat levels counted per chunk, the edge days' \
                 events added ({} events in the window)",
                part.days.range(split.days.clone()).count(),
                split.events.len()
            ),
            Leaf::ValueDays {
                part, prop, split, ..
            } => format!(
                "{} days' events in order of {prop} (built once wanted; a scan before), the \
                 edge days' events filtered ({} events in the window)",
                part.days.range(split.days.clone()).count(),
                split.events.len()
            ),
            Leaf::Sequence(_) => "the candidates' events of both types read in time order, \
                                  each member's sequence tested"
                .into(),
            Leaf::Value { failing, .. } => format!(
                "the window's events read once, a value per member{}",
                if *failing {
                    " (those failing the test, taken from the universe)"
                } else {
                    ""
                }
            ),
            Leaf::Events {
                range,
                filter,
                frequency,
                ..
            } => format!(
                "{} events in the window scanned{}{}",
                range.len(),
                if filter.is_some() { ", filtered" } else { "" },
                if frequency.is_some() {
                    ", counted per member"
                } else {
                    ""
                }
            ),
        }
    }

    /// What besides the source text decides the answer: the events a window selects (at
    /// one data version, the same events give the same members whatever the *now*).
    pub(crate) fn key(&self) -> String {
        match self {
            Leaf::Range { .. } | Leaf::Scan { .. } | Leaf::Pending { .. } => String::new(),
            Leaf::DayCounts { split, .. } | Leaf::ValueDays { split, .. } => {
                format!("{}..{}", split.events.start, split.events.end)
            }
            Leaf::Value { value, .. } => value.key(),
            Leaf::Sequence(seq) => seq.key(),
            Leaf::Present { events: range, .. }
            | Leaf::PartialDay { events: range, .. }
            | Leaf::Events { range, .. } => {
                format!("{}..{}", range.start, range.end)
            }
        }
    }
}

/// Many rows for few members: counting in a dense array beats sorting the rows.
fn dense(rows: usize, universe: usize) -> bool {
    rows.saturating_mul(16) > universe
}

/// The distinct members among `rows` (row ids below `universe`).
fn distinct_members(mut rows: Vec<u32>, universe: usize) -> RoaringBitmap {
    if dense(rows.len(), universe) {
        let mut bits = vec![0u8; universe.div_ceil(8)];
        for &r in &rows {
            bits[r as usize / 8] |= 1 << (r % 8);
        }
        return RoaringBitmap::from_lsb0_bytes(0, &bits);
    }
    rows.sort_unstable();
    rows.dedup();
    RoaringBitmap::from_sorted_iter(rows).expect("sorted")
}

/// The members whose number of occurrences in `rows` passes `frequency`.
fn members_by_count(mut rows: Vec<u32>, universe: usize, frequency: Frequency) -> RoaringBitmap {
    if dense(rows.len(), universe)
        && let Some(band) = frequency.counter_band()
    {
        return count_dense(&rows, universe, band);
    }
    rows.sort_unstable();
    let mut kept = Vec::new();
    for run in rows.chunk_by(|a, b| a == b) {
        if frequency.accepts(run.len() as u64) {
            kept.push(run[0]);
        }
    }
    RoaringBitmap::from_sorted_iter(kept).expect("sorted")
}

/// Dense counting for many rows: one saturating `u8` counter per member, incremented in
/// one pass, then turned into bits eight counters at a time without branches; `band` is the
/// accepted counts ([`Frequency::counter_band`]). (Partitioning the rows by chunk of
/// members first, to keep the counters cache-resident, measured slower at 1M members and no
/// better than run-to-run drift at 10M: the extra passes cost about what the misses do.
/// Without a filter, a count over whole days reads the day bitmaps chunk by chunk instead.)
fn count_dense(rows: &[u32], universe: usize, band: std::ops::RangeInclusive<u8>) -> RoaringBitmap {
    if band.is_empty() {
        return RoaringBitmap::new();
    }
    // Accepted counts are lo..=lo+span (lo >= 1; a count of 0 wraps far above the span).
    let (lo, span) = (*band.start(), band.end() - band.start());
    let mut counts = vec![0u8; universe.next_multiple_of(8)];
    for &r in rows {
        let n = &mut counts[r as usize];
        *n = n.saturating_add(1);
    }
    // Each counter becomes a 0 / 1 byte in place, then eight such bytes are packed into one
    // byte of bits by a multiplication that moves byte i's low bit to bit 56 + i.
    for n in &mut counts {
        *n = u8::from(n.wrapping_sub(lo) <= span);
    }
    let bits: Vec<u8> = counts
        .chunks_exact(8)
        .map(|eight| {
            let x = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
            (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
        })
        .collect();
    RoaringBitmap::from_lsb0_bytes(0, &bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(rows: &[u32], keep: impl Fn(u64) -> bool) -> RoaringBitmap {
        let mut counts = std::collections::BTreeMap::new();
        for &r in rows {
            *counts.entry(r).or_insert(0u64) += 1;
        }
        counts
            .into_iter()
            .filter(|&(_, c)| keep(c))
            .map(|(r, _)| r)
            .collect()
    }

    #[test]
    fn dense_and_sparse_paths_agree() {
        // 300 events of member 7 (past the u8 counter), a few others
        let mut rows: Vec<u32> = vec![7; 300];
        rows.extend([1, 1, 2, 900, 900, 900]);
        for universe in [1000, 1_000_000] {
            assert_eq!(
                distinct_members(rows.clone(), universe),
                naive(&rows, |_| true)
            );
            for f in [
                Frequency::AtLeast(3),
                Frequency::AtMost(2),
                Frequency::Exactly(3),
                Frequency::AtLeast(300),
                Frequency::AtMost(299),
            ] {
                assert_eq!(
                    members_by_count(rows.clone(), universe, f),
                    naive(&rows, |c| f.accepts(c)),
                    "{f:?} universe {universe}"
                );
            }
        }
    }
}
