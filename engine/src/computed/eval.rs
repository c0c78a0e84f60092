//! Computing values per member: a value expression bound to one state at one *now*
//! ([`BoundValue`]) evaluated over the members of a universe into [`MemberValues`]. An
//! aggregate reads its window's events once, in time order (events of equal time in the
//! order they were written), folding each passing event into its member's slot: a dense
//! slot per member for a large universe, a slot per member of a few.

use crate::attributes::Attribute;
use crate::column::Column;
use crate::error::{Error, Result};
use crate::events::{BoundFilter, EventPartition};
use crate::members::RowId;
use crate::value::{DAY_MICROS, DataType, Value};

/// A value expression bound to a state.
pub(crate) enum BoundValue<'a> {
    /// An attribute's values.
    Attr(&'a Attribute),
    /// An aggregate of events.
    Aggregate(BoundAggregate<'a>),
    /// Whole days from the inner time to `now`.
    DaysSince {
        inner: Box<BoundValue<'a>>,
        now: i64,
    },
    /// 1 + the number of `cuts` (ascending) at or below the inner number.
    Bucket {
        inner: Box<BoundValue<'a>>,
        cuts: Vec<f64>,
    },
    /// A trait's `CASE`.
    Case(crate::traits::eval::BoundCase<'a>),
    /// A trait's `QUANTILE`.
    Quantile(crate::traits::eval::BoundQuantile<'a>),
}

/// An aggregate bound to its event type's partition.
pub(crate) struct BoundAggregate<'a> {
    pub(crate) part: &'a EventPartition,
    /// The window `[lo, hi)` (`None`: all time).
    pub(crate) window: Option<(i64, i64)>,
    /// The window's events (indexes into the partition), searched for when first wanted:
    /// one member's events are read by their times instead ([`BoundAggregate::each_event`]),
    /// without the two searches over every event of the type.
    pub(crate) events: std::sync::OnceLock<std::ops::Range<usize>>,
    pub(crate) filter: Option<BoundFilter<'a>>,
    pub(crate) func: BoundFunc<'a>,
    /// `WITHIN ANY`: the interval's length in microseconds (counts are the largest over
    /// any interval `[t, t + span)`).
    pub(crate) within_any: Option<i64>,
    /// An integer `SUM` that overflows is NULL for that member (with a warning) rather
    /// than an error: the aggregate is a maintained trait's.
    pub(crate) overflow_null: bool,
}

/// An aggregate function with its property's column (`None`: the event type has no value
/// of the property, every event's is NULL) and type.
pub(crate) enum BoundFunc<'a> {
    Count,
    CountDistinct(Option<&'a Column>),
    CountDistinctDays,
    Sum(Option<&'a Column>, DataType),
    Avg(Option<&'a Column>),
    Min(Option<&'a Column>, DataType),
    Max(Option<&'a Column>, DataType),
    /// The first event's value of the property (`Some`), or its time (`None`).
    First(Option<(Option<&'a Column>, DataType)>),
    Last(Option<(Option<&'a Column>, DataType)>),
}

/// The values of the members of a universe: `column` row `i` is member `rows[i]`; every
/// other member of the universe has `empty` (0 for counts and sums, else NULL).
pub(crate) struct MemberValues {
    pub(crate) rows: Vec<RowId>,
    pub(crate) column: Column,
    pub(crate) empty: Option<Value>,
}

impl BoundValue<'_> {
    /// The type of the values.
    pub(crate) fn data_type(&self) -> DataType {
        match self {
            BoundValue::Attr(a) => a.column.data_type(),
            BoundValue::Aggregate(a) => a.data_type(),
            BoundValue::DaysSince { .. } | BoundValue::Bucket { .. } | BoundValue::Quantile(_) => {
                DataType::Int
            }
            BoundValue::Case(c) => c.data_type,
        }
    }

    /// What besides the source text decides the values: the events each aggregate reads,
    /// the *now* of `DAYS SINCE`.
    pub(crate) fn key(&self) -> String {
        match self {
            BoundValue::Attr(_) => String::new(),
            BoundValue::Aggregate(a) => {
                let events = a.events();
                format!("{}..{}", events.start, events.end)
            }
            BoundValue::DaysSince { inner, now } => format!("{}@{now}", inner.key()),
            BoundValue::Bucket { inner, .. } => inner.key(),
            BoundValue::Case(c) => c.key(),
            BoundValue::Quantile(q) => q.key(),
        }
    }

    /// The value of a member of the universe without any of the events read (or without a
    /// value of the attribute).
    pub(crate) fn empty(&self) -> Option<Value> {
        match self {
            BoundValue::Attr(_) => None,
            BoundValue::Aggregate(a) => a.empty(),
            BoundValue::DaysSince { inner, now } => {
                inner.empty().and_then(|v| days_since(&v, *now))
            }
            BoundValue::Bucket { inner, cuts } => inner.empty().and_then(|v| bucket(&v, cuts)),
            // Every member of the universe gets its value (NULL ones are left out).
            BoundValue::Case(_) | BoundValue::Quantile(_) => None,
        }
    }

    /// The values of the members `few` (ascending), or of every member below `members`.
    pub(crate) fn values(&self, few: Option<&[RowId]>, members: usize) -> Result<MemberValues> {
        match self {
            BoundValue::Attr(attr) => {
                let column = &attr.column;
                let rows: Vec<RowId> = match few {
                    Some(few) => few.to_vec(),
                    None => (0..members.min(column.len()) as RowId).collect(),
                };
                let mut out = Column::new(column.data_type());
                let mut kept = Vec::with_capacity(rows.len());
                for row in rows {
                    let value = column.get(row as usize);
                    if value.is_some() {
                        out.push(value.as_ref());
                        kept.push(row);
                    }
                }
                Ok(MemberValues {
                    rows: kept,
                    column: out,
                    empty: None,
                })
            }
            BoundValue::Aggregate(a) => a.values(few, members),
            BoundValue::DaysSince { inner, now } => {
                let now = *now;
                map(inner.values(few, members)?, |v| days_since(v, now))
            }
            BoundValue::Bucket { inner, cuts } => {
                map(inner.values(few, members)?, |v| bucket(v, cuts))
            }
            BoundValue::Case(c) => c.values(few),
            BoundValue::Quantile(q) => q.values(few, members),
        }
    }

    /// The value of member `row` alone, its empty value included (what
    /// [`values`](Self::values) gives it): a trait kept current after a write to one
    /// member, without the columns a set of members needs.
    pub(crate) fn value_of(&self, row: RowId, members: usize) -> Result<Option<Value>> {
        Ok(match self {
            BoundValue::Attr(attr) => attr.column.get(row as usize),
            BoundValue::Aggregate(a) if a.within_any.is_none() => a.value_of(row)?,
            BoundValue::DaysSince { inner, now } => inner
                .value_of(row, members)?
                .and_then(|v| days_since(&v, *now)),
            BoundValue::Bucket { inner, cuts } => {
                inner.value_of(row, members)?.and_then(|v| bucket(&v, cuts))
            }
            BoundValue::Case(c) => c.value_of(row)?,
            _ => self.value_in_set(row, members)?,
        })
    }

    /// The value of member `row` through [`values`](Self::values) over a set of that one
    /// member (what [`value_of`](Self::value_of) must equal).
    pub(crate) fn value_in_set(&self, row: RowId, members: usize) -> Result<Option<Value>> {
        let values = self.values(Some(&[row]), members)?;
        Ok(match values.rows.first() {
            Some(&r) if r == row => values.column.get(0),
            _ => self.empty(),
        })
    }
}

/// Each value (and the empty one) through `f`, as integers.
fn map(values: MemberValues, f: impl Fn(&Value) -> Option<Value>) -> Result<MemberValues> {
    let mut column = Column::new(DataType::Int);
    let mut rows = Vec::with_capacity(values.rows.len());
    for (i, &row) in values.rows.iter().enumerate() {
        let v = values.column.get(i).and_then(|v| f(&v));
        column.push(v.as_ref());
        rows.push(row);
    }
    Ok(MemberValues {
        rows,
        column,
        empty: values.empty.and_then(|v| f(&v)),
    })
}

/// `floor((now - t) / 24 h)` of a time or date.
pub(crate) fn days_since(v: &Value, now: i64) -> Option<Value> {
    let t = match v {
        Value::Timestamp(t) => *t,
        Value::Date(d) => i64::from(*d) * DAY_MICROS,
        _ => return None,
    };
    Some(Value::Int(now.saturating_sub(t).div_euclid(DAY_MICROS)))
}

/// A number as a float.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

/// 1 + the number of cut points at or below a number.
pub(crate) fn bucket(v: &Value, cuts: &[f64]) -> Option<Value> {
    let x = number(v).filter(|x| !x.is_nan())?;
    Some(Value::Int(
        1 + cuts.iter().filter(|&&c| c <= x).count() as i64,
    ))
}

/// Where a member's state is kept: its row less `base` (dense), or its place among a few.
struct Slots<'f> {
    few: Option<&'f [RowId]>,
    len: usize,
    base: RowId,
    /// The events to fold, already given their slots and keys (one chunk of members; see
    /// [`Entry`]); `None`: the window's events are scanned.
    list: Option<&'f [Entry]>,
}

impl Slots<'_> {
    #[inline]
    fn of(&self, m: RowId) -> Option<usize> {
        match self.few {
            None => Some(m as usize).filter(|&s| s < self.len),
            Some(few) => few.binary_search(&m).ok(),
        }
    }
    fn member(&self, slot: usize) -> RowId {
        match self.few {
            None => self.base + slot as RowId,
            Some(few) => few[slot],
        }
    }
}

/// An event bucketed for the dense fold: `(event << 17 | has key << 16 | slot, key)`, the
/// key read with the event ([`BoundAggregate::key`]) so the fold does not go back to the
/// property column.
type Entry = (u64, u64);

/// Members per chunk of the dense fold: the slots of one chunk stay in the L2 cache.
const CHUNK: usize = 1 << 16;

/// Events filtered per block (as `EventPartition::filtered_members`).
const BLOCK: usize = 4096;

/// Up to this many members, or one per [`INDEXED_SHARE`] events of the window if more, an
/// aggregate reads each one's events through the partition's index of them rather than
/// walking the window (a trait kept current after a write, a clock move's candidates).
const INDEXED_MEMBERS: usize = 64;
const INDEXED_SHARE: usize = 16;

impl BoundAggregate<'_> {
    /// The window's events (indexes into the partition).
    pub(crate) fn events(&self) -> std::ops::Range<usize> {
        self.events
            .get_or_init(|| match self.window {
                Some((lo, hi)) => self.part.slice(lo, hi),
                None => 0..self.part.len(),
            })
            .clone()
    }

    /// Calls `f(slot, event)` for every passing event of a member with a slot, in order.
    fn each_event(
        &self,
        slots: &Slots<'_>,
        mut f: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<()> {
        if let Some(list) = slots.list {
            for &(entry, _) in list {
                f((entry & 0xFFFF) as usize, (entry >> 17) as usize)?;
            }
            return Ok(());
        }
        // A few members: each one's events, from the partition's index of them, in the
        // window by their times (or their indexes, once searched for).
        let indexed = |n: usize| n <= INDEXED_MEMBERS || n <= self.events().len() / INDEXED_SHARE;
        if let Some(few) = slots.few.filter(|few| indexed(few.len())) {
            let mut scratch = Vec::new();
            let mut result: Result<()> = Ok(());
            let part = self.part;
            let (range, times) = match (self.events.get(), self.window) {
                (Some(range), _) => (range.clone(), None),
                (None, window) => (0..part.len(), window),
            };
            for (slot, &m) in few.iter().enumerate() {
                part.by_member.each(&part.members, m, range.clone(), |i| {
                    if result.is_err()
                        || times.is_some_and(|(lo, hi)| !(lo..hi).contains(&part.ts[i]))
                    {
                        return;
                    }
                    let mut pass = [true];
                    if let Some(filter) = &self.filter {
                        filter.fill(i, &mut pass, &mut scratch);
                    }
                    if pass[0] {
                        result = f(slot, i);
                    }
                });
                result?;
                result = Ok(());
            }
            return Ok(());
        }
        let (lo, hi) = match slots.few {
            Some(few) => (
                few.first().copied().unwrap_or(RowId::MAX),
                few.last().copied().unwrap_or(0),
            ),
            None => (0, RowId::MAX),
        };
        let mut mask = vec![true; BLOCK];
        let mut scratch = Vec::new();
        let events = self.events();
        let mut start = events.start;
        while start < events.end {
            let end = (start + BLOCK).min(events.end);
            let mask = &mut mask[..end - start];
            match &self.filter {
                Some(filter) => filter.fill(start, mask, &mut scratch),
                None => mask.fill(true),
            }
            let mut i = start;
            for members in self.part.members.slices(start..end) {
                for &m in members {
                    if mask[i - start]
                        && (lo..=hi).contains(&m)
                        && let Some(slot) = slots.of(m)
                    {
                        f(slot, i)?;
                    }
                    i += 1;
                }
            }
            start = end;
        }
        Ok(())
    }

    /// The value of a member without any of the events read.
    fn empty(&self) -> Option<Value> {
        match &self.func {
            BoundFunc::Count | BoundFunc::CountDistinct(_) | BoundFunc::CountDistinctDays => {
                Some(Value::Int(0))
            }
            BoundFunc::Sum(_, DataType::Float) => Some(Value::Float(0.0)),
            BoundFunc::Sum(..) => Some(Value::Int(0)),
            _ => None,
        }
    }

    /// The type of the values.
    fn data_type(&self) -> DataType {
        match &self.func {
            BoundFunc::Count | BoundFunc::CountDistinct(_) | BoundFunc::CountDistinctDays => {
                DataType::Int
            }
            BoundFunc::Avg(_) => DataType::Float,
            BoundFunc::Sum(_, t) | BoundFunc::Min(_, t) | BoundFunc::Max(_, t) => *t,
            BoundFunc::First(p) | BoundFunc::Last(p) => p.map_or(DataType::Timestamp, |(_, t)| t),
        }
    }

    /// The values of the members `few`, or of every member below `members`. Over many
    /// members the passing events are first bucketed by chunk of 65,536 members (one
    /// sequential pass), then folded chunk by chunk: the per-member state of a chunk stays
    /// in cache, where one array over every member would miss it on nearly every event.
    /// What the fold of a count, distinct count or sum needs of event `i`: its day, its
    /// value's group key, its number (float bits or integer); `None` for a NULL value.
    #[inline]
    fn key(&self, i: usize) -> Option<u64> {
        use crate::column::ColumnData;
        let number = |c: &Column| match &c.data {
            ColumnData::Float(v) => Some(v[i]),
            ColumnData::Int(v) => Some(v[i] as f64),
            _ => None,
        };
        match &self.func {
            BoundFunc::CountDistinctDays => Some(self.part.ts[i].div_euclid(DAY_MICROS) as u64),
            BoundFunc::CountDistinct(Some(c)) if c.is_valid(i) => Some(c.group_key(i)),
            BoundFunc::Sum(Some(c), DataType::Float) | BoundFunc::Avg(Some(c)) if c.is_valid(i) => {
                number(c).map(f64::to_bits)
            }
            BoundFunc::Sum(Some(c), _) if c.is_valid(i) => c.int_key(i).map(|x| x as u64),
            _ => None,
        }
    }

    /// `SUM` or `AVG` of a float property without a filter, over every member: the
    /// window's non-NULL values bucketed by chunk of members as (slot, value) only, then
    /// summed chunk by chunk. A member whose events have no value is left out: its sum (0)
    /// and average (NULL) are the empty value's.
    fn dense_float_sums(&self, members: usize) -> Option<Result<MemberValues>> {
        use crate::column::ColumnData;
        let (BoundFunc::Sum(Some(c), DataType::Float) | BoundFunc::Avg(Some(c))) = &self.func
        else {
            return None;
        };
        let ColumnData::Float(v) = &c.data else {
            return None;
        };
        if self.filter.is_some() {
            return None;
        }
        // Chunks of 32,768 members: a chunk's sums (256 KiB) stay in the L2 cache.
        const SUM_CHUNK: usize = 1 << 15;
        let chunks = members.div_ceil(SUM_CHUNK).max(1);
        let events = self.events();
        let share = events.len() / chunks + events.len() / (8 * chunks) + 64;
        let mut slots: Vec<Vec<u16>> = (0..chunks).map(|_| Vec::with_capacity(share)).collect();
        let mut values: Vec<Vec<f64>> = (0..chunks).map(|_| Vec::with_capacity(share)).collect();
        // Members and values in step, a slice at a time (both chunked alike).
        let mut i = events.start;
        for (ms, xs) in self
            .part
            .members
            .slices(events.clone())
            .zip(v.slices(events))
        {
            for (&m, &x) in ms.iter().zip(xs) {
                let m = m as usize;
                if c.valid.get(i) && m / SUM_CHUNK < chunks {
                    slots[m / SUM_CHUNK].push((m % SUM_CHUNK) as u16);
                    values[m / SUM_CHUNK].push(x);
                }
                i += 1;
            }
        }
        let avg = matches!(self.func, BoundFunc::Avg(_));
        let mut out = MemberValues {
            rows: Vec::new(),
            column: Column::new(DataType::Float),
            empty: self.empty(),
        };
        let mut sums = vec![0f64; SUM_CHUNK];
        let mut counts = vec![0u32; if avg { SUM_CHUNK } else { 0 }];
        let mut seen = vec![0u64; SUM_CHUNK / 64];
        let mut results = Vec::new();
        for (k, (slots, values)) in slots.iter().zip(&values).enumerate() {
            if slots.is_empty() {
                continue;
            }
            for (&s, &x) in slots.iter().zip(values) {
                let s = s as usize;
                sums[s] += x;
                seen[s / 64] |= 1 << (s % 64);
                if avg {
                    counts[s] += 1;
                }
            }
            results.clear();
            for (w, word) in seen.iter_mut().enumerate() {
                let mut bits = std::mem::take(word);
                while bits != 0 {
                    let s = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    out.rows.push((k * SUM_CHUNK + s) as RowId);
                    results.push(if avg {
                        sums[s] / f64::from(std::mem::take(&mut counts[s]))
                    } else {
                        sums[s]
                    });
                    sums[s] = 0.0;
                }
            }
            out.column.extend_floats(&results);
        }
        Some(Ok(out))
    }

    /// Buckets the window's events by chunk of members in one tight loop when no filter
    /// applies and the key is a plain read (counts, sums and averages of a number, days);
    /// false when it does not apply (the caller buckets through `each_event`).
    fn bucket_unfiltered(&self, buckets: &mut [Vec<Entry>]) -> bool {
        use crate::column::ColumnData;
        if self.filter.is_some() {
            return false;
        }
        match &self.func {
            BoundFunc::Count => self.bucket_with(buckets, |_| None),
            BoundFunc::CountDistinctDays => {
                let ts = &self.part.ts;
                self.bucket_with(buckets, |i| Some(ts[i].div_euclid(DAY_MICROS) as u64))
            }
            BoundFunc::Sum(Some(c), DataType::Float) | BoundFunc::Avg(Some(c)) => match &c.data {
                ColumnData::Float(v) => {
                    self.bucket_with(buckets, |i| c.valid.get(i).then(|| v[i].to_bits()))
                }
                ColumnData::Int(v) => {
                    self.bucket_with(buckets, |i| c.valid.get(i).then(|| (v[i] as f64).to_bits()))
                }
                _ => return false,
            },
            BoundFunc::Sum(Some(c), _) => match &c.data {
                ColumnData::Int(v) => {
                    self.bucket_with(buckets, |i| c.valid.get(i).then(|| v[i] as u64))
                }
                _ => return false,
            },
            _ => return false,
        }
        true
    }

    /// The bucketing loop of [`BoundAggregate::bucket_unfiltered`] for one way of reading
    /// an event's key.
    #[inline]
    fn bucket_with(&self, buckets: &mut [Vec<Entry>], key: impl Fn(usize) -> Option<u64>) {
        let events = self.events();
        let mut i = events.start;
        for slice in self.part.members.slices(events) {
            for &m in slice {
                let m = m as usize;
                if let Some(bucket) = buckets.get_mut(m / CHUNK) {
                    let k = key(i);
                    let entry =
                        (i as u64) << 17 | u64::from(k.is_some()) << 16 | (m % CHUNK) as u64;
                    bucket.push((entry, k.unwrap_or(0)));
                }
                i += 1;
            }
        }
    }

    /// [`BoundAggregate::each_event`] with each event's [`BoundAggregate::key`].
    fn each_keyed(
        &self,
        slots: &Slots<'_>,
        mut f: impl FnMut(usize, Option<u64>) -> Result<()>,
    ) -> Result<()> {
        if let Some(list) = slots.list {
            for &(entry, key) in list {
                f(
                    (entry & 0xFFFF) as usize,
                    (entry >> 16 & 1 == 1).then_some(key),
                )?;
            }
            return Ok(());
        }
        self.each_event(slots, |s, i| f(s, self.key(i)))
    }

    fn values(&self, few: Option<&[RowId]>, members: usize) -> Result<MemberValues> {
        let whole = Slots {
            few,
            len: few.map_or(members, <[RowId]>::len),
            base: 0,
            list: None,
        };
        if let Some(span) = self.within_any {
            return self.sliding(&whole, span);
        }
        let mut out = MemberValues {
            rows: Vec::new(),
            column: Column::new(self.data_type()),
            empty: None,
        };
        if few.is_some() || members <= CHUNK {
            out.empty = self.fold(&whole, &mut out.rows, &mut out.column)?;
            return Ok(out);
        }
        if let Some(sums) = self.dense_float_sums(members) {
            return sums;
        }
        let chunks = members.div_ceil(CHUNK);
        // Room for an even share of the window's events (and some), so the buckets rarely
        // grow (and copy) as they fill.
        let events = self.events().len();
        let share = events / chunks + events / (8 * chunks) + 64;
        let mut buckets: Vec<Vec<Entry>> = (0..chunks).map(|_| Vec::with_capacity(share)).collect();
        if !self.bucket_unfiltered(&mut buckets) {
            self.each_event(&whole, |m, i| {
                let key = self.key(i);
                let entry = (i as u64) << 17 | u64::from(key.is_some()) << 16 | (m % CHUNK) as u64;
                buckets[m / CHUNK].push((entry, key.unwrap_or(0)));
                Ok(())
            })?;
        }
        out.empty = self.empty();
        for (k, bucket) in buckets.iter().enumerate() {
            if bucket.is_empty() {
                continue;
            }
            let slots = Slots {
                few: None,
                len: CHUNK,
                base: (k * CHUNK) as RowId,
                list: Some(bucket),
            };
            self.fold(&slots, &mut out.rows, &mut out.column)?;
        }
        Ok(out)
    }

    /// Folds the events `slots` gives into per-slot state, then appends the slots with
    /// events (ascending) to `rows` and their values to `column`; returns the value of a
    /// member without events.
    fn fold(
        &self,
        slots: &Slots<'_>,
        rows: &mut Vec<RowId>,
        column: &mut Column,
    ) -> Result<Option<Value>> {
        let n = slots.len;
        let mut seen = vec![false; n];
        let ts = &self.part.ts;
        let valid = |c: Option<&Column>, i: usize| c.is_some_and(|c| c.is_valid(i));
        let empty = match &self.func {
            BoundFunc::Count => {
                let mut counts = vec![0i64; n];
                self.each_event(slots, |s, _| {
                    counts[s] += 1;
                    seen[s] = true;
                    Ok(())
                })?;
                ints(&seen, &counts, column);
                Some(Value::Int(0))
            }
            BoundFunc::CountDistinct(_) | BoundFunc::CountDistinctDays => {
                let mut pairs: Vec<(u32, u64)> = Vec::new();
                self.each_keyed(slots, |s, key| {
                    seen[s] = true;
                    if let Some(key) = key {
                        pairs.push((s as u32, key));
                    }
                    Ok(())
                })?;
                pairs.sort_unstable();
                pairs.dedup();
                let mut counts = vec![0i64; n];
                for (s, _) in pairs {
                    counts[s as usize] += 1;
                }
                ints(&seen, &counts, column);
                Some(Value::Int(0))
            }
            BoundFunc::Sum(_, DataType::Float) | BoundFunc::Avg(_) => {
                let mut sums = vec![0f64; n];
                let mut counts = vec![0u32; n];
                self.each_keyed(slots, |s, key| {
                    seen[s] = true;
                    if let Some(bits) = key {
                        sums[s] += f64::from_bits(bits);
                        counts[s] += 1;
                    }
                    Ok(())
                })?;
                let avg = matches!(self.func, BoundFunc::Avg(_));
                for s in 0..n {
                    if seen[s] {
                        let v = if avg {
                            (counts[s] > 0).then(|| Value::Float(sums[s] / f64::from(counts[s])))
                        } else {
                            Some(Value::Float(sums[s]))
                        };
                        column.push(v.as_ref());
                    }
                }
                (!avg).then_some(Value::Float(0.0))
            }
            BoundFunc::Sum(..) => {
                let mut sums = vec![0i64; n];
                let mut overflowed: Vec<usize> = Vec::new();
                self.each_keyed(slots, |s, key| {
                    seen[s] = true;
                    if let Some(x) = key.map(|k| k as i64) {
                        match sums[s].checked_add(x) {
                            Some(sum) => sums[s] = sum,
                            None if self.overflow_null => overflowed.push(s),
                            None => {
                                return Err(Error::InvalidSegment(format!(
                                    "SUM overflows a 64-bit integer for member row {}",
                                    slots.member(s)
                                )));
                            }
                        }
                    }
                    Ok(())
                })?;
                if overflowed.is_empty() {
                    ints(&seen, &sums, column);
                } else {
                    overflowed.sort_unstable();
                    overflowed.dedup();
                    eprintln!(
                        "memberdb: warning: a trait's SUM overflows a 64-bit integer for {} \
                         member(s) (row {} first): their value is NULL",
                        overflowed.len(),
                        slots.member(overflowed[0])
                    );
                    for (s, &v) in sums.iter().enumerate() {
                        if seen[s] {
                            let v = overflowed
                                .binary_search(&s)
                                .is_err()
                                .then_some(Value::Int(v));
                            column.push(v.as_ref());
                        }
                    }
                }
                Some(Value::Int(0))
            }
            BoundFunc::Min(c, _) | BoundFunc::Max(c, _) => {
                let max = matches!(self.func, BoundFunc::Max(..));
                let mut best: Vec<Option<Value>> = vec![None; n];
                self.each_event(slots, |s, i| {
                    seen[s] = true;
                    let Some(v) = c.filter(|_| valid(*c, i)).and_then(|c| c.get(i)) else {
                        return Ok(());
                    };
                    let better = match &best[s] {
                        None => true,
                        Some(b) => {
                            let ord = v.order(b);
                            if max {
                                ord == Some(std::cmp::Ordering::Greater)
                            } else {
                                ord == Some(std::cmp::Ordering::Less)
                            }
                        }
                    };
                    if better {
                        best[s] = Some(v);
                    }
                    Ok(())
                })?;
                values_column(&seen, best, column);
                None
            }
            BoundFunc::First(p) | BoundFunc::Last(p) => {
                let first = matches!(self.func, BoundFunc::First(_));
                let mut at: Vec<Option<usize>> = vec![None; n];
                self.each_event(slots, |s, i| {
                    seen[s] = true;
                    if let Some((c, _)) = p
                        && !valid(*c, i)
                    {
                        return Ok(());
                    }
                    if !first || at[s].is_none() {
                        at[s] = Some(i);
                    }
                    Ok(())
                })?;
                let source = p.and_then(|(c, _)| c);
                let best = at
                    .into_iter()
                    .map(|i| {
                        let i = i?;
                        match p {
                            Some(_) => source.and_then(|c| c.get(i)),
                            None => Some(Value::Timestamp(ts[i])),
                        }
                    })
                    .collect();
                values_column(&seen, best, column);
                None
            }
        };
        rows.extend((0..n).filter(|&s| seen[s]).map(|s| slots.member(s)));
        Ok(empty)
    }
}

impl BoundAggregate<'_> {
    /// The value of member `row` alone (not `WITHIN ANY`): [`fold`](Self::fold) over one
    /// member's events, the same events in the same order, into one accumulator.
    fn value_of(&self, row: RowId) -> Result<Option<Value>> {
        let one = [row];
        let slots = Slots {
            few: Some(&one),
            len: 1,
            base: 0,
            list: None,
        };
        let valid = |c: Option<&Column>, i: usize| c.is_some_and(|c| c.is_valid(i));
        Ok(match &self.func {
            BoundFunc::Count => {
                let mut n = 0i64;
                self.each_event(&slots, |_, _| {
                    n += 1;
                    Ok(())
                })?;
                Some(Value::Int(n))
            }
            BoundFunc::CountDistinct(_) | BoundFunc::CountDistinctDays => {
                let mut keys: Vec<u64> = Vec::new();
                self.each_keyed(&slots, |_, key| {
                    keys.extend(key);
                    Ok(())
                })?;
                keys.sort_unstable();
                keys.dedup();
                Some(Value::Int(keys.len() as i64))
            }
            BoundFunc::Sum(_, DataType::Float) | BoundFunc::Avg(_) => {
                let (mut sum, mut count) = (0f64, 0u32);
                self.each_keyed(&slots, |_, key| {
                    if let Some(bits) = key {
                        sum += f64::from_bits(bits);
                        count += 1;
                    }
                    Ok(())
                })?;
                match self.func {
                    BoundFunc::Avg(_) => (count > 0).then(|| Value::Float(sum / f64::from(count))),
                    _ => Some(Value::Float(sum)),
                }
            }
            BoundFunc::Sum(..) => {
                let mut sum = Some(0i64);
                self.each_keyed(&slots, |_, key| {
                    if let (Some(s), Some(x)) = (sum, key) {
                        sum = s.checked_add(x as i64);
                        if sum.is_none() && !self.overflow_null {
                            return Err(Error::InvalidSegment(format!(
                                "SUM overflows a 64-bit integer for member row {row}"
                            )));
                        }
                    }
                    Ok(())
                })?;
                if sum.is_none() {
                    eprintln!(
                        "memberdb: warning: a trait's SUM overflows a 64-bit integer for \
                         member row {row}: its value is NULL"
                    );
                }
                sum.map(Value::Int)
            }
            BoundFunc::Min(c, _) | BoundFunc::Max(c, _) => {
                let max = matches!(self.func, BoundFunc::Max(..));
                let mut best: Option<Value> = None;
                self.each_event(&slots, |_, i| {
                    let Some(v) = c.filter(|_| valid(*c, i)).and_then(|c| c.get(i)) else {
                        return Ok(());
                    };
                    let better = best.as_ref().is_none_or(|b| {
                        let ord = v.order(b);
                        ord == Some(if max {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Less
                        })
                    });
                    if better {
                        best = Some(v);
                    }
                    Ok(())
                })?;
                best
            }
            BoundFunc::First(p) | BoundFunc::Last(p) => {
                let first = matches!(self.func, BoundFunc::First(_));
                let mut at: Option<usize> = None;
                self.each_event(&slots, |_, i| {
                    if let Some((c, _)) = p
                        && !valid(*c, i)
                    {
                        return Ok(());
                    }
                    if !first || at.is_none() {
                        at = Some(i);
                    }
                    Ok(())
                })?;
                at.and_then(|i| match p {
                    Some((c, _)) => c.and_then(|c| c.get(i)),
                    None => Some(Value::Timestamp(self.part.ts[i])),
                })
            }
        })
    }

    /// `WITHIN ANY`: per member, the largest number of events (or of distinct values, or
    /// days) in any interval `[t, t + span)`. It is enough to try intervals starting at an
    /// event: each member's events in time order, two pointers, and for distinct counts
    /// the keys inside the interval counted.
    fn sliding(&self, slots: &Slots<'_>, span: i64) -> Result<MemberValues> {
        let ts = &self.part.ts;
        let key = |i: usize| match &self.func {
            BoundFunc::Count => Some(0),
            BoundFunc::CountDistinctDays => Some(ts[i].div_euclid(DAY_MICROS) as u64),
            BoundFunc::CountDistinct(Some(c)) if c.is_valid(i) => Some(c.group_key(i)),
            _ => None,
        };
        let distinct = !matches!(self.func, BoundFunc::Count);
        let mut widest = Widest::new(span, distinct);
        // (slot, time, key), gathered in time order into buckets of CHUNK members (so a
        // stable sort of a bucket by slot keeps each member's events in time order, and
        // stays in cache where one sort of the whole window would not).
        let mut buckets: Vec<Vec<(u32, i64, Option<u64>)>> = (0..slots.len.div_ceil(CHUNK).max(1))
            .map(|_| Vec::new())
            .collect();
        self.each_event(slots, |s, i| {
            buckets[s / CHUNK].push((s as u32, ts[i], key(i)));
            Ok(())
        })?;
        // Each bucket put in member order by a counting sort (stable, one pass).
        let (mut starts, mut next) = (Vec::new(), Vec::new());
        let mut sorted: Vec<(i64, Option<u64>)> = Vec::new();
        for (k, events) in buckets.iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let base = k * CHUNK;
            // the bucket's slots: a whole chunk, or the few members asked for
            let width = CHUNK.min(slots.len - base);
            starts.clear();
            starts.resize(width + 1, 0u32);
            for e in events {
                starts[e.0 as usize - base + 1] += 1;
            }
            for s in 1..=width {
                starts[s] += starts[s - 1];
            }
            sorted.clear();
            sorted.resize(events.len(), (0, None));
            next.clone_from(&starts);
            for e in events {
                let at = &mut next[e.0 as usize - base];
                sorted[*at as usize] = (e.1, e.2);
                *at += 1;
            }
            for s in 0..width {
                let (a, b) = (starts[s] as usize, starts[s + 1] as usize);
                if a < b {
                    widest.push(slots.member(base + s), &sorted[a..b]);
                }
            }
        }
        Ok(MemberValues {
            rows: widest.rows,
            column: widest.column,
            empty: Some(Value::Int(0)),
        })
    }
}

/// The widest count of `WITHIN ANY` for member after member.
struct Widest {
    span: i64,
    distinct: bool,
    inside: hashbrown::HashMap<u64, u32>,
    listed: Vec<(u64, u32)>,
    rows: Vec<RowId>,
    column: Column,
}

impl Widest {
    fn new(span: i64, distinct: bool) -> Self {
        Widest {
            span,
            distinct,
            inside: hashbrown::HashMap::new(),
            listed: Vec::new(),
            rows: Vec::new(),
            column: Column::new(DataType::Int),
        }
    }

    /// Member `row`'s value from its events `(time, key)` in time order (a `None` key
    /// counts for nothing).
    fn push(&mut self, row: RowId, run: &[(i64, Option<u64>)]) {
        let mut best = 0i64;
        let mut start = 0;
        let mut held = 0i64;
        // The keys inside the interval with their counts: a list while the member has a
        // few events, a hash map past that.
        let few = run.len() <= 16;
        self.inside.clear();
        self.listed.clear();
        for end in 0..run.len() {
            // Take event `end` in, then drop those `span` or more before it.
            if let Some(key) = run[end].1 {
                let n = if few {
                    match self.listed.iter().position(|e| e.0 == key) {
                        Some(at) => &mut self.listed[at].1,
                        None => {
                            self.listed.push((key, 0));
                            &mut self.listed.last_mut().expect("pushed").1
                        }
                    }
                } else {
                    self.inside.entry(key).or_insert(0)
                };
                *n += 1;
                if !self.distinct || *n == 1 {
                    held += 1;
                }
            }
            while run[end].0.saturating_sub(run[start].0) >= self.span {
                if let Some(key) = run[start].1 {
                    let n = if few {
                        self.listed
                            .iter_mut()
                            .find(|e| e.0 == key)
                            .map(|e| &mut e.1)
                    } else {
                        self.inside.get_mut(&key)
                    };
                    if let Some(n) = n {
                        *n -= 1;
                        if !self.distinct || *n == 0 {
                            held -= 1;
                        }
                    }
                }
                start += 1;
            }
            best = best.max(held);
        }
        self.rows.push(row);
        self.column.push(Some(&Value::Int(best)));
    }
}

/// Appends the seen slots' values to an integer column.
fn ints(seen: &[bool], values: &[i64], column: &mut Column) {
    for (s, &v) in values.iter().enumerate() {
        if seen[s] {
            column.push(Some(&Value::Int(v)));
        }
    }
}

/// Appends the seen slots' values to `column`.
fn values_column(seen: &[bool], values: Vec<Option<Value>>, column: &mut Column) {
    for (s, v) in values.into_iter().enumerate() {
        if seen[s] {
            column.push(v.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest count of `WITHIN ANY`, tried interval by interval from each event.
    fn brute_force(run: &[(i64, Option<u64>)], span: i64, distinct: bool) -> i64 {
        let mut best = 0;
        for &(t, _) in run {
            let inside = run.iter().filter(|e| t <= e.0 && e.0 - t < span);
            let mut keys: Vec<u64> = inside.filter_map(|e| e.1).collect();
            if distinct {
                keys.sort_unstable();
                keys.dedup();
            }
            best = best.max(keys.len() as i64);
        }
        best
    }

    /// Short runs (the list of keys) and long ones (the hash map) give the brute force's
    /// widest count, distinct or not, with NULL keys and equal times.
    #[test]
    fn widest_count_equals_the_brute_force_over_short_and_long_runs() {
        let mut x = 7u64;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for case in 0..400 {
            let len = 1 + next(40) as usize;
            let mut t = 0i64;
            let mut run = Vec::with_capacity(len);
            for _ in 0..len {
                t += next(4) as i64;
                let key = (next(5) > 0).then(|| next(6));
                run.push((t, key));
            }
            let span = 1 + next(8) as i64;
            for distinct in [false, true] {
                let mut widest = Widest::new(span, distinct);
                widest.push(0, &run);
                assert_eq!(
                    widest.column.get(0),
                    Some(Value::Int(brute_force(&run, span, distinct))),
                    "case {case}: {run:?} span {span} distinct {distinct}"
                );
            }
        }
    }
}
