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

/// Strings with more distinct values than this get no per-value bitmaps.
pub(crate) const LOW_CARDINALITY_LIMIT: usize = 4096;
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
#[derive(Default, PartialEq)]
pub(crate) struct Entry {
    valid: bool,
    slot: Option<usize>,
    key: Option<i64>,
}

/// A row's value set in its column, its index entries not yet moved
/// ([`AttrIndex::set_column`]).
pub(crate) struct IndexChange {
    row: RowId,
    old: Entry,
    new: Entry,
}

/// All indexes of one attribute. Every bitmap is shared copy-on-write: a snapshot shares
/// them, a later change copies the bitmaps it changes.
#[derive(Clone, Debug, Default)]
pub(crate) struct AttrIndex {
    pub(crate) not_null: Bitmap,
    /// Per string code, or `[false, true]` for bools; `None` for high-cardinality strings
    /// and ordered types.
    pub(crate) values: Option<Vec<Bitmap>>,
    ranges: Option<BinnedIndex>,
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
            slot: self.values.as_ref().map(|_| match &column.data {
                ColumnData::Bool(v) => usize::from(v[r]),
                _ => column.code(r).unwrap_or(0) as usize,
            }),
            key: self.ranges.as_ref().and_then(|_| key_of(column, r)),
        }
    }

    /// Sets `row` of `column` to `value` (of the column's type), changing only the index
    /// entries that differ: a sum that grows within its bin touches no bitmap.
    pub(crate) fn set(&mut self, column: &mut Column, row: RowId, value: Option<&Value>) {
        let change = self.set_column(column, row, value);
        self.apply(column, change);
    }

    /// Sets `row` of `column` to `value` and returns the index change still to make
    /// ([`apply`](Self::apply)): a write's traits set their columns first, then read the
    /// index entries of all their changes together ([`touch`](Self::touch)), so that the
    /// cache misses of the bitmaps' chains of loads overlap, then apply them.
    pub(crate) fn set_column(
        &self,
        column: &mut Column,
        row: RowId,
        value: Option<&Value>,
    ) -> IndexChange {
        let old = self.entry(column, row as usize);
        column.set(row as usize, value);
        let new = self.entry(column, row as usize);
        IndexChange { row, old, new }
    }

    /// The bitmaps `change` moves its row out of and into.
    fn bitmaps_of(&self, change: &IndexChange) -> [Option<&Bitmap>; 5] {
        let (old, new) = (&change.old, &change.new);
        let valid = (old.valid != new.valid).then_some(&self.not_null);
        let slot = |e: &Entry| {
            let values = self.values.as_ref()?;
            values.get(e.slot?)
        };
        let (old_value, new_value) = if old.slot != new.slot || old.valid != new.valid {
            (slot(old), slot(new))
        } else {
            (None, None)
        };
        let bin = |e: &Entry| self.ranges.as_ref().zip(e.key).map(|(r, k)| r.locate(k));
        let (old_bin, new_bin) = match (bin(old), bin(new)) {
            (a, b) if a == b => (None, None),
            other => other,
        };
        let ranges = |b: Option<usize>| Some(&self.ranges.as_ref()?.bins[b?].rows);
        [
            valid,
            old_value,
            new_value,
            ranges(old_bin),
            ranges(new_bin),
        ]
    }

    /// Reads, one level of the chain at a time, what `changes` will write: each change's
    /// bitmaps, their roaring headers, then their containers. The loads of one level are
    /// independent of each other, so their misses overlap instead of coming one after
    /// another as they do when each change is made in turn.
    pub(crate) fn touch(changes: &[(&AttrIndex, &IndexChange)]) {
        use std::hint::black_box;
        let mut bitmaps: Vec<(&Bitmap, RowId)> = Vec::with_capacity(changes.len() * 3);
        for (index, change) in changes {
            for bitmap in index.bitmaps_of(change).into_iter().flatten() {
                bitmaps.push((bitmap, change.row));
            }
        }
        for (bitmap, _) in &bitmaps {
            black_box(std::ptr::from_ref::<RoaringBitmap>(bitmap));
        }
        for (bitmap, _) in &bitmaps {
            black_box(bitmap.is_empty());
        }
        for (bitmap, row) in &bitmaps {
            black_box(bitmap.contains(*row));
        }
    }

    /// Makes the index change of [`set_column`](Self::set_column).
    pub(crate) fn apply(&mut self, column: &Column, change: IndexChange) {
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
    pub(crate) fn save(&self, out: &mut SectionWriter<'_>) -> std::io::Result<SavedIndex> {
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
