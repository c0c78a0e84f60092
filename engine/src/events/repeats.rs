//! How many events of one type each member had on a UTC day, beyond the first: bitmaps for
//! the first few counts (levels), an exact table past them.
//!
//! Level `k` of a day holds the members with at least `k + 2` events that day, for `k`
//! below [`LEVELS`]. With the day bitmap they give each member's count up to `LEVELS + 1`
//! as a sum of bitmaps, which the counting kernels add a chunk at a time (`day_counts.rs`).
//! A member with more events that day is in every level and has its exact count in a table
//! beside them: few members reach it on ordinary data, and a profile with thousands of
//! events (the merge of two, DESIGN section 11) changes one table entry per day instead of
//! a bitmap per event. The saved format keeps a level per count (a checkpoint writes the
//! table's counts as levels; opening folds them back).

use std::borrow::Cow;
use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::bitmap::Bitmap;
use crate::members::RowId;

/// Levels kept as bitmaps: counts 2 to `LEVELS + 1`.
pub(crate) const LEVELS: usize = 3;

/// The highest count the levels tell apart.
const CAP: u32 = LEVELS as u32 + 1;

/// See the module documentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Repeats {
    /// Per day: at most [`LEVELS`] bitmaps, each inside the one before, the last not empty.
    levels: BTreeMap<i64, Vec<Bitmap>>,
    /// `(day, member)` -> the member's events that day, where more than `CAP`.
    heavy: BTreeMap<(i64, RowId), u32>,
}

impl Repeats {
    /// The levels of `day` (none for a day without repeats).
    pub(crate) fn levels(&self, day: i64) -> &[Bitmap] {
        self.levels.get(&day).map_or(&[], Vec::as_slice)
    }

    /// Every bitmap of every day's levels.
    pub(crate) fn bitmaps(&self) -> impl Iterator<Item = &Bitmap> {
        self.levels.values().flatten()
    }

    /// The events beyond `CAP` of every member past it on a day of `days`: what the counts
    /// from the day bitmap and the levels leave out, as `(member, events)`.
    pub(crate) fn beyond_levels(
        &self,
        days: std::ops::Range<i64>,
    ) -> impl Iterator<Item = (RowId, u32)> + '_ {
        let range = (days.start, RowId::MIN)..(days.end, RowId::MIN);
        let range = (range.start <= range.end).then_some(range);
        range
            .into_iter()
            .flat_map(|r| self.heavy.range(r))
            .map(|(&(_, m), &n)| (m, n - CAP))
    }

    /// The member's events on `day`, given whether the day bitmap holds it.
    pub(crate) fn count(&self, day: i64, member: RowId, present: bool) -> u32 {
        if !present {
            return 0;
        }
        let in_levels = self
            .levels(day)
            .iter()
            .take_while(|l| l.contains(member))
            .count();
        if in_levels == LEVELS
            && let Some(&n) = self.heavy.get(&(day, member))
        {
            return n;
        }
        1 + in_levels as u32
    }

    /// Adds events on `day`: `rows` sorted, a member once per event. Members in `before`
    /// had events that day already (as many as [`Repeats::count`] says).
    pub(crate) fn add(&mut self, day: i64, rows: &[RowId], before: &RoaringBitmap) {
        let mut had = before.iter().peekable();
        let mut new_levels: Vec<Vec<RowId>> = Vec::new();
        for run in rows.chunk_by(|a, b| a == b) {
            let member = run[0];
            let prior = if had.next_if_eq(&member).is_some() {
                self.count(day, member, true)
            } else {
                0
            };
            let now = prior + run.len() as u32;
            for count in (prior + 1).max(2)..=now.min(CAP) {
                let k = count as usize - 2;
                if new_levels.len() <= k {
                    new_levels.resize_with(k + 1, Vec::new);
                }
                new_levels[k].push(member);
            }
            if now > CAP {
                self.heavy.insert((day, member), now);
            }
        }
        if !new_levels.is_empty() {
            let levels = self.levels.entry(day).or_default();
            for (k, members) in new_levels.into_iter().enumerate() {
                if levels.len() <= k {
                    levels.resize_with(k + 1, Bitmap::default);
                }
                levels[k].make_mut().extend(members);
            }
        }
    }

    /// Changes a member's number of events on `day` from `before` to `after`.
    pub(crate) fn set(&mut self, day: i64, member: RowId, before: u32, after: u32) {
        let (lo, hi) = (before.min(after).min(CAP), before.max(after).min(CAP));
        // The levels of the counts lo + 1 ..= hi (level k: at least k + 2 events).
        if hi >= 2 && lo < hi {
            let levels = self.levels.entry(day).or_default();
            let (first, end) = (lo.max(1) as usize - 1, hi as usize - 1);
            if levels.len() < end {
                levels.resize_with(end, Bitmap::default);
            }
            for level in &mut levels[first..end] {
                if after > before {
                    level.make_mut().insert(member);
                } else {
                    level.make_mut().remove(member);
                }
            }
            while levels.last().is_some_and(|l| l.is_empty()) {
                levels.pop();
            }
            if levels.is_empty() {
                self.levels.remove(&day);
            }
        }
        if after > CAP {
            self.heavy.insert((day, member), after);
        } else if before > CAP {
            self.heavy.remove(&(day, member));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.levels.clear();
        self.heavy.clear();
    }

    /// Every day's levels as the saved format keeps them: level `k` for every count `k + 2`
    /// a member reaches that day (the table's counts written out as levels).
    pub(crate) fn saved_levels(&self) -> Vec<(i64, Vec<Cow<'_, RoaringBitmap>>)> {
        let mut beyond: BTreeMap<i64, Vec<RoaringBitmap>> = BTreeMap::new();
        for (&(day, member), &n) in &self.heavy {
            let levels = beyond.entry(day).or_default();
            let needed = (n - CAP) as usize;
            if levels.len() < needed {
                levels.resize_with(needed, RoaringBitmap::new);
            }
            for level in &mut levels[..needed] {
                level.insert(member);
            }
        }
        self.levels
            .iter()
            .map(|(&day, levels)| {
                let kept = levels.iter().map(|l| Cow::Borrowed(l.as_ref()));
                let more = beyond.remove(&day).unwrap_or_default();
                (day, kept.chain(more.into_iter().map(Cow::Owned)).collect())
            })
            .collect()
    }

    /// A day's levels as saved (a level per count, in order): those past [`LEVELS`] go
    /// into the table.
    pub(crate) fn restore_day(&mut self, day: i64, mut levels: Vec<Bitmap>) {
        for (k, level) in levels.iter().enumerate().skip(LEVELS) {
            for member in level.iter() {
                // Levels ascend: the last one holding the member names its count.
                self.heavy.insert((day, member), k as u32 + 2);
            }
        }
        levels.truncate(LEVELS);
        while levels.last().is_some_and(|l| l.is_empty()) {
            levels.pop();
        }
        if !levels.is_empty() {
            self.levels.insert(day, levels);
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        // A B-tree entry: its key and value, about half a node's spare room besides.
        self.heavy.len() * 32
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Each member's count on one day, as the structure tells it.
    fn counts(repeats: &Repeats, day: i64, present: &RoaringBitmap) -> Vec<(RowId, u32)> {
        present
            .iter()
            .map(|m| (m, repeats.count(day, m, true)))
            .collect()
    }

    proptest! {
        /// Counts added in batches and changed one by one equal a plain map of counts, and
        /// saving then restoring gives the same structure.
        #[test]
        fn counts_follow_adds_and_sets_and_survive_saving(
            batches in prop::collection::vec(prop::collection::vec(0..40u32, 0..60), 1..4),
            sets in prop::collection::vec((0..40u32, 0..12u32), 0..30),
        ) {
            let day = 7;
            let mut repeats = Repeats::default();
            let mut model: BTreeMap<RowId, u32> = BTreeMap::new();
            for batch in batches {
                let mut rows = batch.clone();
                rows.sort_unstable();
                let present: RoaringBitmap = model.keys().copied().collect();
                let batch_members: RoaringBitmap = rows.iter().copied().collect();
                repeats.add(day, &rows, &(&present & &batch_members));
                for m in rows {
                    *model.entry(m).or_default() += 1;
                }
            }
            for (m, after) in sets {
                let before = model.get(&m).copied().unwrap_or(0);
                repeats.set(day, m, before, after);
                if after == 0 { model.remove(&m); } else { model.insert(m, after); }
            }
            let present: RoaringBitmap = model.keys().copied().collect();
            prop_assert_eq!(counts(&repeats, day, &present), model.clone().into_iter().collect::<Vec<_>>());
            let extra: u32 = repeats.beyond_levels(day..day + 1).map(|(_, n)| n).sum();
            prop_assert_eq!(extra, model.values().map(|&n| n.saturating_sub(CAP)).sum::<u32>());
            prop_assert_eq!(repeats.beyond_levels(day + 1..day + 9).count(), 0);

            let mut restored = Repeats::default();
            for (d, levels) in repeats.saved_levels() {
                let saved: Vec<RoaringBitmap> = levels.into_iter().map(Cow::into_owned).collect();
                // a level per count, each inside the one before
                for pair in saved.windows(2) {
                    prop_assert!(pair[1].is_subset(&pair[0]));
                }
                restored.restore_day(d, saved.into_iter().map(Bitmap::new).collect());
            }
            prop_assert_eq!(restored, repeats);
        }
    }
}
