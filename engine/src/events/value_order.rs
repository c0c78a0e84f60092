//! Per-day orders of a numeric event property: a day's events with a value, sorted by it,
//! so a range filter over whole days (`WHERE amount >= 500 IN LAST 365 DAYS`) reads only
//! the members of the events that pass, found by two binary searches per day, instead of
//! scanning every event's value.
//!
//! Orders are a cache, built on demand: the first filter on a property over whole days
//! scans (as without them) and marks the property wanted; later ones build each day's order
//! once (a sort of the day's events) and keep it until an append touches that day. Each
//! costs 12 bytes per event with a value (the value and the member), only for the
//! properties and days that range filters ask for.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use roaring::RoaringBitmap;

use super::{DaySplit, EventPartition};
use crate::bitmap::{Chunk, Chunks, WORDS, Words};
use crate::column::{Column, ColumnData, MatchKind, Matcher};
use crate::members::RowId;
use crate::value::DAY_MICROS;

/// One day's events with a value of one property, in ascending order of the value.
#[derive(Debug)]
struct DayOrder {
    keys: Keys,
    members: Vec<RowId>,
}

#[derive(Debug)]
enum Keys {
    /// Integer, date and timestamp values as the column's integer key.
    Int(Vec<i64>),
    /// Float values, NaN left out (no range holds it).
    Float(Vec<f64>),
}

/// Per property: its days' orders (a property is wanted once it has an entry).
type Cache = HashMap<String, BTreeMap<i64, Arc<DayOrder>>>;

/// The orders built so far for one partition. A clone (a snapshot, or the copy an append
/// makes) starts from the same orders and then goes its own way.
#[derive(Default)]
pub(crate) struct ValueOrders {
    cache: Mutex<Cache>,
}

impl Clone for ValueOrders {
    fn clone(&self) -> Self {
        ValueOrders {
            cache: Mutex::new(self.lock().clone()),
        }
    }
}

impl std::fmt::Debug for ValueOrders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days: usize = self.lock().values().map(BTreeMap::len).sum();
        write!(f, "ValueOrders({days} days)")
    }
}

impl ValueOrders {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // a panic while holding the lock leaves a usable cache: it only ever gains orders
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the orders of days that changed.
    pub(crate) fn forget_days(&mut self, days: &[i64]) {
        let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        for orders in cache.values_mut() {
            for day in days {
                orders.remove(day);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.lock()
            .values()
            .flat_map(BTreeMap::values)
            .map(|o| {
                o.members.capacity() * 4
                    + match &o.keys {
                        Keys::Int(k) => k.capacity() * 8,
                        Keys::Float(k) => k.capacity() * 8,
                    }
            })
            .sum()
    }
}

impl EventPartition {
    /// The members with an event in the window `split` whose value of `prop` (the
    /// partition's `column`) passes `matcher`; `universe` is
    /// the number of row ids ever assigned. `None` when the matcher is not ranges of
    /// values (or the property is not yet wanted): the caller scans.
    pub(crate) fn members_by_value(
        &self,
        prop: &str,
        column: &Column,
        matcher: &Matcher,
        split: &DaySplit,
        universe: usize,
    ) -> Option<RoaringBitmap> {
        let orderable = !matcher.negate
            && matches!(
                (&matcher.kind, &column.data),
                (
                    MatchKind::Ints(_),
                    ColumnData::Int(_) | ColumnData::Date(_) | ColumnData::Timestamp(_)
                ) | (MatchKind::Floats(_), ColumnData::Float(_))
            );
        if !orderable {
            return None;
        }
        let orders = self.day_orders(prop, column, split.days.clone())?;
        let mut bits = vec![0u64; universe.div_ceil(64).next_multiple_of(WORDS)];
        let mut set = |m: RowId| bits[m as usize / 64] |= 1 << (m % 64);
        for order in &orders {
            for range in order.passing(&matcher.kind) {
                order.members[range].iter().for_each(|&m| set(m));
            }
        }
        let filter = super::BoundFilter::Prop {
            column: Some(column),
            matcher: matcher.clone(),
        };
        for range in &split.edges {
            self.filtered_members(range.clone(), &filter)
                .into_iter()
                .for_each(&mut set);
        }
        let chunks = bits
            .chunks_exact(WORDS)
            .map(|words| {
                let words: &Words = words.try_into().expect("a chunk's words");
                Chunk::from_words(words, words.iter().map(|w| w.count_ones()).sum())
            })
            .collect();
        Some(Chunks::from_vec(chunks).to_roaring())
    }

    /// The orders of `prop` on the days of `days` that have events, built where missing;
    /// `None` the first time the property is asked for (it becomes wanted).
    fn day_orders(
        &self,
        prop: &str,
        column: &Column,
        days: Range<i64>,
    ) -> Option<Vec<Arc<DayOrder>>> {
        let mut found: Vec<(i64, Option<Arc<DayOrder>>)> = {
            let mut cache = self.orders.lock();
            let Some(built) = cache.get(prop) else {
                cache.insert(prop.to_string(), BTreeMap::new());
                return None;
            };
            self.days
                .range(days)
                .map(|(&day, _)| (day, built.get(&day).cloned()))
                .collect()
        };
        let mut new = Vec::new();
        for (day, order) in &mut found {
            if order.is_none() {
                let start = day.saturating_mul(DAY_MICROS);
                let built = Arc::new(
                    self.build_order(column, self.slice(start, start.saturating_add(DAY_MICROS))),
                );
                new.push((*day, built.clone()));
                *order = Some(built);
            }
        }
        if !new.is_empty() {
            self.orders
                .lock()
                .entry(prop.to_string())
                .or_default()
                .extend(new);
        }
        Some(found.into_iter().filter_map(|(_, o)| o).collect())
    }

    fn build_order(&self, column: &Column, range: Range<usize>) -> DayOrder {
        let valid = range.clone().filter(|&i| column.is_valid(i));
        let (keys, members) = match &column.data {
            ColumnData::Float(values) => {
                let mut pairs: Vec<(f64, RowId)> = valid
                    .map(|i| (values[i], self.members[i]))
                    .filter(|p| !p.0.is_nan())
                    .collect();
                pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
                let (keys, members) = pairs.into_iter().unzip();
                (Keys::Float(keys), members)
            }
            _ => {
                let mut pairs: Vec<(i64, RowId)> = valid
                    .filter_map(|i| Some((column.int_key(i)?, self.members[i])))
                    .collect();
                pairs.sort_unstable();
                let (keys, members) = pairs.into_iter().unzip();
                (Keys::Int(keys), members)
            }
        };
        DayOrder { keys, members }
    }
}

impl DayOrder {
    /// Index ranges of the events whose value passes `kind` (ranges of the same type).
    fn passing(&self, kind: &MatchKind) -> Vec<Range<usize>> {
        match (kind, &self.keys) {
            (MatchKind::Ints(ranges), Keys::Int(keys)) => ranges
                .iter()
                .map(|&(lo, hi)| {
                    let a = keys.partition_point(|&k| k < lo);
                    a..keys.partition_point(|&k| k <= hi).max(a)
                })
                .collect(),
            (MatchKind::Floats(ranges), Keys::Float(keys)) => ranges
                .iter()
                .map(|r| {
                    let a = keys.partition_point(
                        |&k| {
                            if r.lo_inclusive { k < r.lo } else { k <= r.lo }
                        },
                    );
                    let b = keys.partition_point(
                        |&k| {
                            if r.hi_inclusive { k <= r.hi } else { k < r.hi }
                        },
                    );
                    a..b.max(a)
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc as StdArc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array};
    use proptest::prelude::*;

    use super::*;
    use crate::column::predicate::FloatRange;
    use crate::value::DataType;

    type Event = (RowId, i64, Option<f64>, Option<i64>);

    fn append(part: &mut EventPartition, events: &[Event]) {
        let members: Vec<RowId> = events.iter().map(|e| e.0).collect();
        let ts: Vec<i64> = events.iter().map(|e| e.1).collect();
        let amount: ArrayRef = StdArc::new(Float64Array::from(
            events.iter().map(|e| e.2).collect::<Vec<_>>(),
        ));
        let qty: ArrayRef = StdArc::new(Int64Array::from(
            events.iter().map(|e| e.3).collect::<Vec<_>>(),
        ));
        let props = vec![
            ("amount".to_string(), DataType::Float, amount),
            ("qty".to_string(), DataType::Int, qty),
        ];
        let mut indices: Vec<u32> = (0..events.len() as u32).collect();
        part.append(&members, &ts, &props, &mut indices);
        part.seal();
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            0..200_000u32,
            0..4 * DAY_MICROS,
            prop_oneof![
                Just(None),
                Just(Some(f64::NAN)),
                Just(Some(-0.0)),
                (-5..5i32).prop_map(|x| Some(f64::from(x) * 0.5)),
            ],
            prop::option::of(-5..5i64),
        )
    }

    proptest! {
        /// A range filter over whole days answered from the per-day orders (built on the
        /// second ask, dropped for the days a later append touches) equals testing every
        /// event, for float ranges with open and closed ends (NaN, -0.0 and NULLs among
        /// the values) and integer ranges.
        #[test]
        fn orders_answer_like_testing_every_event(
            first in prop::collection::vec(event(), 1..300),
            later in prop::collection::vec(event(), 0..100),
            lo in -6..6i32, hi in -6..6i32, lo_in in any::<bool>(), hi_in in any::<bool>(),
            window in (0..4 * DAY_MICROS, 0..4 * DAY_MICROS),
        ) {
            let (lo_t, hi_t) = (window.0.min(window.1), window.0.max(window.1));
            let range = FloatRange {
                lo: f64::from(lo) * 0.5, lo_inclusive: lo_in,
                hi: f64::from(hi) * 0.5, hi_inclusive: hi_in,
            };
            let floats = Matcher { kind: MatchKind::Floats(vec![range]), negate: false };
            let ints = Matcher {
                kind: MatchKind::Ints(vec![(i64::from(lo), i64::from(hi)), (4, 4)]),
                negate: false,
            };
            let mut part = EventPartition::default();
            let mut all = first.clone();
            append(&mut part, &first);
            for round in 0..2 {
                if round == 1 {
                    append(&mut part, &later);
                    all.extend(later.iter().cloned());
                }
                let Some(split) = part.day_split(lo_t, hi_t) else { continue };
                let inside = |e: &&Event| lo_t <= e.1 && e.1 < hi_t;
                for (prop, matcher) in [("amount", &floats), ("qty", &ints)] {
                    let expected: RoaringBitmap = all
                        .iter()
                        .filter(inside)
                        .filter(|e| match (prop, e.2, e.3) {
                            ("amount", Some(x), _) => range.contains(x),
                            ("qty", _, Some(q)) => {
                                (i64::from(lo)..=i64::from(hi)).contains(&q) || q == 4
                            }
                            _ => false,
                        })
                        .map(|e| e.0)
                        .collect();
                    // a property without a value yet has no column (the plan scans nothing)
                    let Some(column) = part.props.get(prop) else { continue };
                    // the first ask of a property scans; later ones read the orders
                    let mut got = part.members_by_value(
                        prop, column, matcher, &split, 200_000);
                    if got.is_none() {
                        got = part.members_by_value(
                            prop, column, matcher, &split, 200_000);
                    }
                    prop_assert_eq!(got, Some(expected), "{} round {}", prop, round);
                }
            }
        }
    }
}
