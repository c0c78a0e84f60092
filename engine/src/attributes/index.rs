//! Bitmap indexes over one attribute column.
//!
//! * Low-cardinality strings and bools: one bitmap per value, so `city = 'Shanghai'` is a
//!   borrowed bitmap and `level IN (...)` a union.
//! * Numbers, dates and timestamps: a *binned* bitmap index (equi-depth bins, each a bitmap
//!   with the min / max key it holds). A range predicate is the OR of the bins it covers
//!   entirely (stored operands of the plan, walked chunk by chunk like any stored bitmap)
//!   and of the rows that pass in the (at most two per range) bins it cuts. We chose this over
//!   a plain column scan because its cost follows the bins the range touches instead of the
//!   member count (about 2/512 of the rows are checked instead of all of them), and over a
//!   bit-sliced index because it stays exact and cheap under single-row updates (a row moves
//!   from one bin to another) and answers `COUNT` of wide ranges with unions of a few large
//!   bitmaps. (Measuring it against a plain scan at 10M members is part of the benchmark
//!   issue; until then this choice rests on the cost model above.)
//! * High-cardinality strings (phone, e-mail): no per-value bitmaps, only the non-NULL
//!   bitmap; their predicates scan the dictionary codes.

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::bitmap::Bitmap;
use crate::column::{Column, ColumnData, Matcher};
use crate::column::{MatchKind, predicate::FloatRange};
use crate::members::RowId;
use crate::util::sections::{Section, SectionReader, SectionWriter};
use crate::value::Value;

/// Strings with more distinct values than this get no per-value bitmaps. 16,384 so that a
/// brand's stores (9,000 at the seeds' largest) keep one bitmap each: a store manager's
/// scope (`home_store = 'S012'`) is then a kept bitmap, used as the universe as it is.
/// Phones, e-mails and ids (about one value per member) stay far above it.
pub(crate) const LOW_CARDINALITY_LIMIT: usize = 16_384;
/// Number of bins of the range index. 512 rather than 128: the rows of the two bins a range
/// cuts are gathered from the column at random, and at 1M members `points BETWEEN 1000
/// AND 5000` took 390 µs with 128 bins and 244 µs with 512; wide ranges read the bins
/// outside them, so more bins cost little there (`points > 100`: 290 -> 251 µs).
const BINS: usize = 512;

/// Order-preserving `i64` key of a float (`-0.0` and `0.0` are the same key).
#[inline]
pub(crate) fn float_key(x: f64) -> i64 {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits() as i64;
    if bits < 0 { bits ^ i64::MAX } else { bits }
}

fn float_range_keys(r: &FloatRange) -> (i64, i64) {
    let lo = float_key(r.lo);
    let hi = float_key(r.hi);
    (
        if r.lo_inclusive {
            lo
        } else {
            lo.saturating_add(1)
        },
        if r.hi_inclusive {
            hi
        } else {
            hi.saturating_sub(1)
        },
    )
}

#[inline]
fn key_of(column: &Column, row: usize) -> Option<i64> {
    match &column.data {
        ColumnData::Float(v) => Some(float_key(v[row])),
        _ => column.int_key(row),
    }
}

/// The rows of a bin a range cuts whose key is inside (outside, when `negate`) the ranges.
/// Keys are gathered first, in a loop without branches, so the loads of these scattered rows
/// overlap instead of waiting one after another. Every row of a bin is non-NULL.
fn cut_bin_rows(
    column: &Column,
    bin: &RoaringBitmap,
    ranges: &[(i64, i64)],
    negate: bool,
    out: &mut Vec<u32>,
) {
    let rows: Vec<u32> = bin.iter().collect();
    let keys: Vec<i64> = match &column.data {
        ColumnData::Float(v) => rows.iter().map(|&r| float_key(v[r as usize])).collect(),
        ColumnData::Int(v) | ColumnData::Timestamp(v) => {
            rows.iter().map(|&r| v[r as usize]).collect()
        }
        ColumnData::Date(v) => rows.iter().map(|&r| i64::from(v[r as usize])).collect(),
        _ => return,
    };
    for (&row, key) in rows.iter().zip(keys) {
        let inside = ranges.iter().any(|&(lo, hi)| lo <= key && key <= hi);
        if inside != negate {
            out.push(row);
        }
    }
}

#[derive(Clone, Debug)]
struct Bin {
    min: i64,
    max: i64,
    rows: Bitmap,
}

/// Equi-depth bins of an ordered column.
#[derive(Clone, Debug, Default)]
pub(crate) struct BinnedIndex {
    /// `upper[i]` is the largest key assigned to bin `i` by `locate` (the last is `i64::MAX`).
    upper: Vec<i64>,
    bins: Vec<Bin>,
}

impl BinnedIndex {
    fn build(column: &Column) -> Self {
        let rows: Vec<usize> = (0..column.len()).filter(|&r| column.is_valid(r)).collect();
        let step = (rows.len() / (BINS * 64)).max(1);
        let mut sample: Vec<i64> = rows
            .iter()
            .step_by(step)
            .filter_map(|&r| key_of(column, r))
            .collect();
        sample.sort_unstable();
        let mut upper: Vec<i64> = (1..BINS)
            .filter_map(|i| sample.get(i * sample.len() / BINS).copied())
            .collect();
        upper.dedup();
        upper.push(i64::MAX);
        let mut index = BinnedIndex {
            bins: vec![
                Bin {
                    min: i64::MAX,
                    max: i64::MIN,
                    rows: Bitmap::default()
                };
                upper.len()
            ],
            upper,
        };
        let mut per_bin: Vec<Vec<u32>> = vec![Vec::new(); index.bins.len()];
        for &row in &rows {
            if let Some(key) = key_of(column, row) {
                let b = index.locate(key);
                per_bin[b].push(row as u32);
                index.bins[b].min = index.bins[b].min.min(key);
                index.bins[b].max = index.bins[b].max.max(key);
            }
        }
        for (bin, rows) in index.bins.iter_mut().zip(per_bin) {
            bin.rows = Bitmap::new(sorted_bitmap(rows));
        }
        index
    }

    #[inline]
    fn locate(&self, key: i64) -> usize {
        self.upper
            .partition_point(|&u| u < key)
            .min(self.bins.len() - 1)
    }

    fn insert(&mut self, row: RowId, key: i64) {
        let b = self.locate(key);
        let bin = &mut self.bins[b];
        bin.rows.make_mut().insert(row);
        bin.min = bin.min.min(key);
        bin.max = bin.max.max(key);
    }

    fn remove(&mut self, row: RowId, key: i64) {
        // min / max stay as they are: wider than needed is still correct.
        let b = self.locate(key);
        self.bins[b].rows.make_mut().remove(row);
    }

    /// The key ranges of a range `matcher` (kind `Ints` or `Floats`).
    fn key_ranges(matcher: &Matcher) -> Vec<(i64, i64)> {
        match &matcher.kind {
            MatchKind::Ints(r) => r.clone(),
            MatchKind::Floats(r) => r.iter().map(float_range_keys).collect(),
            _ => Vec::new(),
        }
    }

    /// The bins `matcher` selects whole (`true`) or cuts (`false`); the others it misses.
    fn classify<'b>(&'b self, matcher: &Matcher) -> impl Iterator<Item = (&'b Bin, bool)> {
        let ranges = Self::key_ranges(matcher);
        let negate = matcher.negate;
        self.bins
            .iter()
            .filter(|b| !b.rows.is_empty())
            .filter_map(move |bin| {
                let covers = ranges
                    .iter()
                    .any(|&(lo, hi)| lo <= bin.min && bin.max <= hi);
                let touches = ranges
                    .iter()
                    .any(|&(lo, hi)| lo <= bin.max && bin.min <= hi);
                let (all, none) = if negate {
                    (!touches, covers)
                } else {
                    (covers, !touches)
                };
                (!none).then_some((bin, all))
            })
    }

    /// The bins wholly inside `matcher`.
    fn whole_bins(&self, matcher: &Matcher) -> Vec<&Bitmap> {
        self.classify(matcher)
            .filter(|&(_, whole)| whole)
            .map(|(bin, _)| &bin.rows)
            .collect()
    }

    /// The rows passing `matcher` of the bins it cuts.
    fn cut_rows(&self, column: &Column, matcher: &Matcher) -> RoaringBitmap {
        let ranges = Self::key_ranges(matcher);
        let mut passing = RoaringBitmap::new();
        let mut rows = Vec::new();
        for (bin, _) in self.classify(matcher).filter(|&(_, whole)| !whole) {
            // a bin's rows ascend, so each bin's passing rows are appended in order
            rows.clear();
            cut_bin_rows(column, &bin.rows, &ranges, matcher.negate, &mut rows);
            passing |= RoaringBitmap::from_sorted_iter(rows.iter().copied()).expect("sorted");
        }
        passing
    }
}

/// The range matcher that selects exactly the other non-NULL values.
pub(crate) fn complement(matcher: &Matcher) -> Matcher {
    Matcher {
        kind: matcher.kind.clone(),
        negate: !matcher.negate,
    }
}

/// How an attribute's index answers a compiled predicate.
pub(crate) enum Access<'a> {
    /// `IS NULL`: the universe less these non-NULL members.
    Null(&'a Bitmap),
    /// The union of `any_of` (value bitmaps); when negated (`!=`, `NOT IN`), `within` (the
    /// non-NULL members) less that union.
    Values {
        /// Each with its value's slot (a string code, or 0 / 1 for bools); `None` for the
        /// non-NULL members.
        any_of: Vec<(Option<usize>, &'a Bitmap)>,
        negated_within: Option<&'a Bitmap>,
    },
    /// The range bins: those wholly inside, and the passing rows of the (at most two per
    /// range) that it cuts ([`AttrIndex::cut_ranges`]). With `within` (the non-NULL
    /// members), the bins and cut rows are those of the [`complement`] of the range, and
    /// the answer is `within` less them: a wide range reads the fewer bins outside it.
    Ranges {
        whole: Vec<&'a Bitmap>,
        within: Option<&'a Bitmap>,
    },
    /// No index fits: the column is scanned.
    Scan,
}

/// Where one row's value is in an [`AttrIndex`]: non-NULL, its value bitmap, its key in
/// the bins.
#[derive(Clone, Debug, Default, PartialEq)]
struct Entry {
    valid: bool,
    slot: Option<usize>,
    key: Option<i64>,
}

/// The value bitmap `row` of `column` belongs in (a bool's 0 / 1, a string's code), if
/// it has a value.
pub(crate) fn slot_of(column: &Column, row: usize) -> Option<usize> {
    if !column.is_valid(row) {
        return None;
    }
    Some(match &column.data {
        ColumnData::Bool(v) => usize::from(v[row]),
        _ => column.code(row).unwrap_or(0) as usize,
    })
}

/// A row's move from one entry to another.
struct IndexChange {
    row: RowId,
    old: Entry,
    new: Entry,
}

/// From this many rows set by [`AttrIndex::set_later`], an index wants its entries moved
/// together ([`AttrIndex::fold`]; a write folds at most one trait's index, the fullest, so
/// the traits one write changes together do not fold on the same write). Each waiting row
/// costs a reader one column value tested (tens of µs at most per predicate on a pending
/// attribute, its rows' values read at random); a member written again before the fold
/// moves once.
pub(crate) const PENDING_ROWS: usize = 256;

/// At this many waiting rows an index folds at once, whatever else folds on the write.
const PENDING_LIMIT: usize = 4 * PENDING_ROWS;

/// Rows whose values were set in the column while their index entries wait.
#[derive(Clone, Debug, Default)]
struct Pending {
    /// The waiting rows, a stored bitmap of the plan ([`AttrIndex::pending`]).
    rows: Bitmap,
    /// Each waiting row, the entry the bitmaps hold for it (of its value before its first
    /// change) and the entry of its value now (taken while the row is in cache).
    waiting: Vec<(RowId, Entry, Entry)>,
}

/// All indexes of one attribute. Every bitmap is shared copy-on-write: a snapshot shares
/// them, a later change copies the bitmaps it changes.
///
/// Rows set by [`set_later`](Self::set_later) (a write's trait values) may be missing from
/// the bitmaps or held under their old value until [`PENDING_ROWS`] of them are folded in
/// together: whoever reads the bitmaps takes the [`pending`](Self::pending) rows out of
/// what they say and tests those rows' column values instead (the plan's binder, a
/// breakdown). The column is always current.
#[derive(Clone, Debug, Default)]
pub(crate) struct AttrIndex {
    pub(crate) not_null: Bitmap,
    /// Per string code, or `[false, true]` for bools; `None` for high-cardinality strings
    /// and ordered types.
    pub(crate) values: Option<Vec<Bitmap>>,
    ranges: Option<BinnedIndex>,
    pending: Pending,
}

impl AttrIndex {
    pub(crate) fn build(column: &Column) -> Self {
        let mut index = AttrIndex::default();
        let mut not_null = Vec::new();
        match &column.data {
            ColumnData::Str { codes, dict } if dict.len() <= LOW_CARDINALITY_LIMIT => {
                let mut per_value: Vec<Vec<u32>> = vec![Vec::new(); dict.len()];
                for (row, code) in codes.iter().enumerate() {
                    if column.is_valid(row) {
                        per_value[code as usize].push(row as u32);
                        not_null.push(row as u32);
                    }
                }
                index.values = Some(
                    per_value
                        .into_iter()
                        .map(|rows| Bitmap::new(sorted_bitmap(rows)))
                        .collect(),
                );
            }
            ColumnData::Bool(v) => {
                let mut per_value = [Vec::new(), Vec::new()];
                for (row, b) in v.iter().enumerate() {
                    if column.is_valid(row) {
                        per_value[usize::from(b)].push(row as u32);
                        not_null.push(row as u32);
                    }
                }
                index.values = Some(
                    per_value
                        .into_iter()
                        .map(|rows| Bitmap::new(sorted_bitmap(rows)))
                        .collect(),
                );
            }
            ColumnData::Str { .. } => {
                not_null = (0..column.len())
                    .filter(|&r| column.is_valid(r))
                    .map(|r| r as u32)
                    .collect();
            }
            _ => {
                not_null = (0..column.len())
                    .filter(|&r| column.is_valid(r))
                    .map(|r| r as u32)
                    .collect();
                index.ranges = Some(BinnedIndex::build(column));
            }
        }
        index.not_null = Bitmap::new(sorted_bitmap(not_null));
        index
    }

    /// Where `row`'s value is in the indexes.
    fn entry(&self, column: &Column, r: usize) -> Entry {
        if !column.is_valid(r) {
            return Entry::default();
        }
        Entry {
            valid: true,
            slot: self.values.as_ref().and(slot_of(column, r)),
            key: self.ranges.as_ref().and_then(|_| key_of(column, r)),
        }
    }

    /// Sets `row` of `column` to `value` (of the column's type), changing only the index
    /// entries that differ: a sum that grows within its bin touches no bitmap.
    pub(crate) fn set(&mut self, column: &mut Column, row: RowId, value: Option<&Value>) {
        if self.pending.rows.contains(row) {
            // Its entries move at the fold, from those the bitmaps hold.
            return self.set_later(column, row, value);
        }
        let old = self.entry(column, row as usize);
        column.set(row as usize, value);
        let new = self.entry(column, row as usize);
        self.apply(column, IndexChange { row, old, new });
    }

    /// Sets `row` of `column` to `value`, its index entries moved later with other rows'
    /// ([`PENDING_ROWS`]): a write changing several traits of one member otherwise pays a
    /// chain of cache misses per bitmap it changes (the bitmap, roaring's container list,
    /// the container), 10-14 µs of a write with ten traits at 1M members.
    pub(crate) fn set_later(&mut self, column: &mut Column, row: RowId, value: Option<&Value>) {
        if self.pending.rows.contains(row) {
            column.set(row as usize, value);
            let now = self.entry(column, row as usize);
            if let Some(waiting) = self.pending.waiting.iter_mut().rev().find(|w| w.0 == row) {
                waiting.2 = now;
            }
            return;
        }
        let held = self.entry(column, row as usize);
        column.set(row as usize, value);
        let now = self.entry(column, row as usize);
        self.pending.waiting.push((row, held, now));
        self.pending.rows.make_mut().insert(row);
        if self.pending.waiting.len() >= PENDING_LIMIT {
            self.fold(column);
        }
    }

    /// How many rows wait when a fold is due ([`PENDING_ROWS`] or more), else 0.
    pub(crate) fn fold_due(&self) -> usize {
        let waiting = self.pending.waiting.len();
        if waiting >= PENDING_ROWS { waiting } else { 0 }
    }

    /// Moves the entries of every pending row to those of its value now.
    pub(crate) fn fold(&mut self, column: &Column) {
        let waiting = std::mem::take(&mut self.pending.waiting);
        self.pending.rows = Bitmap::default();
        // In the rows' order of arrival: sorting the moves by bitmap and row cost more
        // instructions (a fifth of a fold) than it saved, the containers being apart anyway.
        for (row, old, new) in waiting {
            if old != new {
                self.apply(column, IndexChange { row, old, new });
            }
        }
    }

    /// The rows whose index entries wait ([`set_later`](Self::set_later)), if any: what
    /// the bitmaps say of them may be stale, their column values are current.
    pub(crate) fn pending(&self) -> Option<&Bitmap> {
        (!self.pending.waiting.is_empty()).then_some(&self.pending.rows)
    }

    /// How many pending rows each bitmap holds, by the bitmap's address: the bitmaps hold
    /// each pending row under the entry of its value before its first pending change (a
    /// count of an index's answer less its pending rows reads this instead of intersecting
    /// every part with them).
    pub(crate) fn pending_held(&self) -> hashbrown::HashMap<usize, u64> {
        let mut held = hashbrown::HashMap::new();
        let address = |b: &Bitmap| std::ptr::from_ref(b) as usize;
        for (_, entry, _) in &self.pending.waiting {
            let slot = entry.slot.and_then(|s| self.values.as_ref()?.get(s));
            let bin = entry.key.and_then(|k| {
                let ranges = self.ranges.as_ref()?;
                Some(&ranges.bins[ranges.locate(k)].rows)
            });
            let not_null = entry.valid.then_some(&self.not_null);
            for bitmap in [not_null, slot, bin].into_iter().flatten() {
                *held.entry(address(bitmap)).or_insert(0) += 1;
            }
        }
        held
    }

    /// The number of non-NULL rows of `column`, its pending rows counted by their values.
    pub(crate) fn non_null(&self, column: &Column) -> u64 {
        let Some(pending) = self.pending() else {
            return self.not_null.len();
        };
        let valid = pending
            .iter()
            .filter(|&r| column.is_valid(r as usize))
            .count() as u64;
        self.not_null.len() - self.not_null.intersection_len(pending) + valid
    }

    /// Moves `change`'s row from its old entries to its new ones.
    fn apply(&mut self, column: &Column, change: IndexChange) {
        let IndexChange { row, old, new } = change;
        if old.valid != new.valid {
            let not_null = self.not_null.make_mut();
            if new.valid {
                not_null.insert(row);
            } else {
                not_null.remove(row);
            }
        }
        if old.slot != new.slot || old.valid != new.valid {
            if let (Some(values), Some(slot)) = (&mut self.values, old.slot)
                && let Some(bitmap) = values.get_mut(slot)
            {
                bitmap.make_mut().remove(row);
            }
            if let (Some(values), Some(slot)) = (&mut self.values, new.slot) {
                match &column.data {
                    ColumnData::Str { dict, .. } if dict.len() > LOW_CARDINALITY_LIMIT => {
                        self.values = None;
                    }
                    _ => {
                        if values.len() <= slot {
                            values.resize(slot + 1, Bitmap::default());
                        }
                        values[slot].make_mut().insert(row);
                    }
                }
            }
        }
        if let Some(ranges) = &mut self.ranges {
            let old_bin = old.key.map(|a| (a, ranges.locate(a)));
            let new_bin = new.key.map(|b| (b, ranges.locate(b)));
            match (old_bin, new_bin) {
                (Some((_, x)), Some((b, y))) if x == y => {
                    let bin = &mut ranges.bins[y];
                    bin.min = bin.min.min(b);
                    bin.max = bin.max.max(b);
                }
                (a, b) => {
                    if let Some((a, _)) = a {
                        ranges.remove(row, a);
                    }
                    if let Some((b, _)) = b {
                        ranges.insert(row, b);
                    }
                }
            }
        }
    }

    /// How the index answers `matcher` (see [`Access`]).
    pub(crate) fn access(&self, matcher: &Matcher) -> Access<'_> {
        fn chosen<'v>(set: &[bool], values: &'v [Bitmap]) -> Vec<(Option<usize>, &'v Bitmap)> {
            values
                .iter()
                .zip(set.iter())
                .enumerate()
                .filter(|(_, (_, on))| **on)
                .map(|(slot, (b, _))| (Some(slot), b))
                .collect()
        }
        let any_of = match (&matcher.kind, &self.values) {
            (MatchKind::IsNull, _) => return Access::Null(&self.not_null),
            (MatchKind::Any, _) => vec![(None, &self.not_null)],
            (MatchKind::Codes(set), Some(values)) => chosen(set, values),
            (MatchKind::Bools(set), Some(values)) => chosen(set, values),
            (MatchKind::Ints(_) | MatchKind::Floats(_), _) if self.ranges.is_some() => {
                let Some(ranges) = self.ranges.as_ref() else {
                    return Access::Scan;
                };
                // A wide range reads fewer bins as what is left of the non-NULL members
                // once the bins wholly outside it (and the cut bins' failing rows) are gone.
                let whole = ranges.whole_bins(matcher);
                let outside = ranges.whole_bins(&complement(matcher));
                let members = |bins: &[&Bitmap]| bins.iter().map(|b| b.len()).sum::<u64>();
                return if members(&outside) < members(&whole) {
                    Access::Ranges {
                        whole: outside,
                        within: Some(&self.not_null),
                    }
                } else {
                    Access::Ranges {
                        whole,
                        within: None,
                    }
                };
            }
            _ => return Access::Scan,
        };
        Access::Values {
            any_of,
            negated_within: matcher.negate.then_some(&self.not_null),
        }
    }

    /// Rows of the range bins that `matcher` cuts which pass it (the bins wholly inside are
    /// in [`Access::Ranges`]); empty without range bins.
    pub(crate) fn cut_ranges(&self, column: &Column, matcher: &Matcher) -> RoaringBitmap {
        self.ranges
            .as_ref()
            .map(|r| r.cut_rows(column, matcher))
            .unwrap_or_default()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.not_null.heap_bytes()
            + self
                .values
                .iter()
                .flatten()
                .map(Bitmap::heap_bytes)
                .sum::<usize>()
            + self
                .ranges
                .iter()
                .flat_map(|r| &r.bins)
                .map(|b| b.rows.heap_bytes())
                .sum::<usize>()
            + self.pending.rows.heap_bytes()
            + self.pending.waiting.capacity() * std::mem::size_of::<(RowId, Entry, Entry)>()
    }
}

/// Where a saved [`AttrIndex`] lies in a column file: bitmaps as sections, bin bounds
/// inline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SavedIndex {
    not_null: Section,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Section>>,
    /// Per bin: its upper key, min, max and rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bins: Option<Vec<(i64, i64, i64, Section)>>,
}

impl AttrIndex {
    /// Writes the index of `column` (its pending rows folded in) to `out`.
    pub(crate) fn save(
        &self,
        column: &Column,
        out: &mut SectionWriter<'_>,
    ) -> std::io::Result<SavedIndex> {
        if self.pending().is_some() {
            let mut folded = self.clone();
            folded.fold(column);
            return folded.save(column, out);
        }
        let values = match &self.values {
            Some(values) => Some(
                values
                    .iter()
                    .map(|b| b.save(out))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        let bins = match &self.ranges {
            Some(r) => Some(
                r.upper
                    .iter()
                    .zip(&r.bins)
                    .map(|(&upper, bin)| Ok((upper, bin.min, bin.max, bin.rows.save(out)?)))
                    .collect::<std::io::Result<_>>()?,
            ),
            None => None,
        };
        Ok(SavedIndex {
            not_null: self.not_null.save(out)?,
            values,
            bins,
        })
    }

    /// The index [`AttrIndex::save`] wrote for `column`, checked to have the shape
    /// [`AttrIndex::build`] gives it and no rows past its end.
    pub(crate) fn restore(
        file: &SectionReader,
        saved: &SavedIndex,
        column: &Column,
    ) -> Result<AttrIndex, String> {
        let rows = column.len();
        let (values_expected, bins_expected) = match &column.data {
            ColumnData::Str { dict, .. } if dict.len() <= LOW_CARDINALITY_LIMIT => {
                (Some(dict.len()), false)
            }
            ColumnData::Bool(_) => (Some(2), false),
            ColumnData::Str { .. } => (None, false),
            _ => (None, true),
        };
        // Written when strings past 4,096 distinct values had no value bitmaps: built now.
        if saved.values.is_none()
            && values_expected.is_some()
            && matches!(column.data, ColumnData::Str { .. })
        {
            return Ok(AttrIndex::build(column));
        }
        if saved.values.as_ref().map(Vec::len) != values_expected
            || saved.bins.is_some() != bins_expected
        {
            return Err("an index does not fit its column".to_string());
        }
        let not_null = Bitmap::restore(file, saved.not_null)?;
        let values = match &saved.values {
            Some(v) => Some(
                v.iter()
                    .map(|&at| Bitmap::restore(file, at))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let ranges = match &saved.bins {
            Some(bins) => {
                let ascending = bins.windows(2).all(|w| w[0].0 < w[1].0);
                if bins.last().is_none_or(|b| b.0 != i64::MAX) || !ascending {
                    return Err("range bins out of order".to_string());
                }
                Some(BinnedIndex {
                    upper: bins.iter().map(|b| b.0).collect(),
                    bins: bins
                        .iter()
                        .map(|&(_, min, max, at)| {
                            Ok(Bin {
                                min,
                                max,
                                rows: Bitmap::restore(file, at)?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                })
            }
            None => None,
        };
        let beyond = |b: &Bitmap| b.max().is_some_and(|m| m as usize >= rows);
        let all = std::iter::once(&not_null)
            .chain(values.iter().flatten())
            .chain(ranges.iter().flat_map(|r| r.bins.iter().map(|b| &b.rows)));
        if all.into_iter().any(beyond) {
            return Err("an index holds rows past the column's end".to_string());
        }
        Ok(AttrIndex {
            not_null,
            values,
            ranges,
            pending: Pending::default(),
        })
    }
}

fn sorted_bitmap(rows: Vec<u32>) -> RoaringBitmap {
    RoaringBitmap::from_sorted_iter(rows).expect("rows ascend")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::compile;
    use crate::segment::{CmpOp, Predicate};
    use crate::value::{DataType, Value};

    #[test]
    fn binned_index_matches_a_scan() {
        let mut col = Column::new(DataType::Int);
        for i in 0..20_000i64 {
            col.push(
                if i % 7 == 0 {
                    None
                } else {
                    Some(Value::Int((i * 7919) % 5000))
                }
                .as_ref(),
            );
        }
        let index = AttrIndex::build(&col);
        for pred in [
            Predicate::Between(Value::Int(1000), Value::Int(1200)),
            Predicate::Cmp(CmpOp::Ge, Value::Int(4990)),
            Predicate::Cmp(CmpOp::Ne, Value::Int(17)),
            // wide: answered as the non-NULL members less the bins outside
            Predicate::Cmp(CmpOp::Gt, Value::Int(100)),
            Predicate::Between(Value::Int(500), Value::Int(4500)),
            Predicate::Cmp(CmpOp::Lt, Value::Float(0.5)),
            Predicate::In(vec![Value::Int(3), Value::Int(4999), Value::Int(-1)]),
        ] {
            let m = compile(&pred, &col, "x").unwrap();
            let scanned: RoaringBitmap = (0..col.len())
                .filter(|&r| m.matches(&col, r))
                .map(|r| r as u32)
                .collect();
            let Access::Ranges { whole, within } = index.access(&m) else {
                panic!("{pred:?} is not answered by range bins");
            };
            let cut = match within {
                Some(_) => index.cut_ranges(&col, &complement(&m)),
                None => index.cut_ranges(&col, &m),
            };
            let bins = whole.into_iter().fold(cut, |acc, b| acc | b.as_ref());
            let indexed = match within {
                Some(not_null) => not_null.as_ref() - bins,
                None => bins,
            };
            assert_eq!(indexed, scanned, "{pred:?}");
        }
    }

    /// What the index answers for `m`, its pending rows tested by value as the plan does.
    fn answer(index: &AttrIndex, col: &Column, m: &Matcher) -> RoaringBitmap {
        let all: RoaringBitmap = (0..col.len() as u32).collect();
        let union = |bitmaps: Vec<&Bitmap>| {
            bitmaps
                .into_iter()
                .fold(RoaringBitmap::new(), |acc, b| acc | b.as_ref())
        };
        let indexed = match index.access(m) {
            Access::Null(not_null) => &all - not_null.as_ref(),
            Access::Values {
                any_of,
                negated_within,
            } => {
                let union = union(any_of.into_iter().map(|(_, b)| b).collect());
                match negated_within {
                    Some(within) => within.as_ref() - union,
                    None => union,
                }
            }
            Access::Ranges { whole, within } => match within {
                Some(not_null) => {
                    not_null.as_ref() - (union(whole) | index.cut_ranges(col, &complement(m)))
                }
                None => union(whole) | index.cut_ranges(col, m),
            },
            Access::Scan => (0..col.len())
                .filter(|&r| m.matches(col, r))
                .map(|r| r as u32)
                .collect(),
        };
        match index.pending() {
            None => indexed,
            Some(rows) => {
                let passing: RoaringBitmap = rows
                    .iter()
                    .filter(|&r| m.matches(col, r as usize))
                    .collect();
                (indexed - rows.as_ref()) | passing
            }
        }
    }

    fn value_of(data_type: DataType, v: Option<i64>) -> Option<Value> {
        v.map(|v| match data_type {
            DataType::String => Value::Str(format!("v{v}")),
            DataType::Float => Value::Float(v as f64 / 4.0),
            DataType::Bool => Value::Bool(v % 2 == 0),
            _ => Value::Int(v),
        })
    }

    proptest::proptest! {
        /// Rows set now and rows set later (folded in batches of `PENDING_ROWS`, or at
        /// the end) give the answers of a scan, before and after the last fold.
        #[test]
        fn pending_rows_answer_like_a_scan(
            kind in 0usize..4,
            start in proptest::collection::vec(proptest::option::of(0i64..40), 1..400),
            writes in proptest::collection::vec(
                (0usize..400, proptest::option::of(0i64..60), proptest::bool::weighted(0.8)),
                0..900,
            ),
        ) {
            let data_type = [DataType::Int, DataType::String, DataType::Float, DataType::Bool][kind];
            let mut col = Column::new(data_type);
            for v in &start {
                col.push(value_of(data_type, *v).as_ref());
            }
            let mut index = AttrIndex::build(&col);
            for (row, v, later) in writes {
                let row = (row % start.len()) as RowId;
                let value = value_of(data_type, v);
                if later {
                    index.set_later(&mut col, row, value.as_ref());
                } else {
                    index.set(&mut col, row, value.as_ref());
                }
                proptest::prop_assert!(index.pending.waiting.len() < PENDING_LIMIT);
                if index.fold_due() > 0 && row.is_multiple_of(3) {
                    index.fold(&col);
                }
            }
            let mut folded = index.clone();
            folded.fold(&col);
            proptest::prop_assert!(folded.pending().is_none());
            let non_null = (0..col.len()).filter(|&r| col.is_valid(r)).count() as u64;
            proptest::prop_assert_eq!(index.non_null(&col), non_null);
            proptest::prop_assert_eq!(folded.not_null.len(), non_null);
            let predicates = [
                Predicate::IsNull,
                Predicate::IsNotNull,
                Predicate::Cmp(CmpOp::Eq, value_of(data_type, Some(8)).unwrap()),
                Predicate::Cmp(CmpOp::Ne, value_of(data_type, Some(9)).unwrap()),
                Predicate::In(vec![
                    value_of(data_type, Some(3)).unwrap(),
                    value_of(data_type, Some(50)).unwrap(),
                ]),
            ];
            let ranges = [
                Predicate::Between(Value::Int(5), Value::Int(30)),
                Predicate::Cmp(CmpOp::Gt, Value::Int(2)),
                Predicate::Cmp(CmpOp::Lt, Value::Int(45)),
            ];
            let ordered = matches!(data_type, DataType::Int | DataType::Float);
            for pred in predicates.iter().chain(ranges.iter().filter(|_| ordered)) {
                let m = compile(pred, &col, "x").unwrap();
                let scanned: RoaringBitmap = (0..col.len())
                    .filter(|&r| m.matches(&col, r))
                    .map(|r| r as u32)
                    .collect();
                proptest::prop_assert_eq!(&answer(&index, &col, &m), &scanned, "{:?}", pred);
                proptest::prop_assert_eq!(&answer(&folded, &col, &m), &scanned, "{:?}", pred);
            }
        }
    }

    #[test]
    fn an_index_saved_without_value_bitmaps_under_the_old_limit_opens_with_them() {
        use crate::util::sections::{SectionReader, SectionWriter};
        let mut col = Column::new(DataType::String);
        for i in 0..6_000 {
            col.push(Some(&Value::Str(format!("S{}", i % 5_000))));
        }
        let index = AttrIndex::build(&col);
        assert!(index.values.is_some(), "5,000 stores keep a bitmap each");
        // as the limit of 4,096 wrote it: no value bitmaps
        let old = AttrIndex {
            values: None,
            ..index.clone()
        };
        let mut buf = Vec::new();
        let saved = old
            .save(&col, &mut SectionWriter::new(&mut buf, 0))
            .unwrap();
        let file = SectionReader::new(bytes::Bytes::from(buf));
        let opened = AttrIndex::restore(&file, &saved, &col).unwrap();
        let values = opened.values.as_ref().expect("built at open");
        assert_eq!(values.len(), 5_000);
        assert_eq!(values[7].len(), 2, "S7 at rows 7 and 5007");
    }

    #[test]
    fn float_keys_keep_order() {
        let xs = [
            f64::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(float_key(w[0]) <= float_key(w[1]));
        }
        assert_eq!(float_key(-0.0), float_key(0.0));
    }
}
