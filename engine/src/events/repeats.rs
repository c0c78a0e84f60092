//! How many events of one type each member had on a UTC day, beyond the first: bitmaps for
//! the first few counts (levels), an exact table past them.
//!
//! Level `k` of a day holds the members with at least `k + 2` events that day, for `k`
//! below [`LEVELS`]. With the day bitmap they give each member's count up to `LEVELS + 1`
//! as a sum of bitmaps, which the counting kernels add a chunk at a time (`day_counts.rs`).
//! A member with more events that day is in every level and has its exact count in a table
//! kept per member: few members reach it on ordinary data, and a profile with thousands of
//! events (the merge of two, DESIGN section 11) changes one table entry instead of a
//! bitmap per event. A window's counts past the levels are found from the top levels of
//! its days (a heavy member is in them) or, while the table is small, from the table. The
//! saved format keeps a level per count (a checkpoint writes the table's counts as levels;
//! opening folds them back).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashMap;
use roaring::{MultiOps, RoaringBitmap};

use crate::bitmap::Bitmap;
use crate::members::RowId;

/// Levels kept as bitmaps: counts 2 to `LEVELS + 1`.
pub(crate) const LEVELS: usize = 3;

/// The highest count the levels tell apart.
const CAP: u32 = LEVELS as u32 + 1;

/// Up to this many members in the table, a window's counts past the levels are read from
/// the whole table; past it, from the members of its days' top levels.
const SCAN_TABLE: usize = 4096;

/// A member's days with more than `CAP` events, ascending, with their counts.
type HeavyDays = Vec<(i64, u32)>;

/// See the module documentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Repeats {
    /// Per day: at most [`LEVELS`] bitmaps, each inside the one before, the last not empty.
    levels: BTreeMap<i64, Vec<Bitmap>>,
    /// Per member with more than `CAP` events on some day: those days (never empty; each
    /// shared copy-on-write with snapshots, as the bitmaps are).
    heavy: HashMap<RowId, Arc<HeavyDays>>,
}

/// How a member's events on one day change: `(day, before, after)`.
pub(crate) type DayChange = (i64, u32, u32);

impl Repeats {
    /// The levels of `day` (none for a day without repeats).
    pub(crate) fn levels(&self, day: i64) -> &[Bitmap] {
        self.levels.get(&day).map_or(&[], Vec::as_slice)
    }

    /// Every bitmap of every day's levels.
    pub(crate) fn bitmaps(&self) -> impl Iterator<Item = &Bitmap> {
        self.levels.values().flatten()
    }

    /// What the counts from the day bitmaps and the levels leave out on the days of `days`:
    /// `(member, events past CAP on those days)` for every member past it on one of them.
    pub(crate) fn beyond_levels(&self, days: std::ops::Range<i64>) -> Vec<(RowId, u32)> {
        self.beyond_levels_with(days, SCAN_TABLE)
    }

    fn beyond_levels_with(&self, days: std::ops::Range<i64>, scan: usize) -> Vec<(RowId, u32)> {
        if self.heavy.is_empty() || days.start >= days.end {
            return Vec::new();
        }
        let within = |mine: &HeavyDays| -> u32 {
            let from = mine.partition_point(|e| e.0 < days.start);
            mine[from..]
                .iter()
                .take_while(|e| e.0 < days.end)
                .map(|e| e.1 - CAP)
                .sum()
        };
        let passing = |(m, n): (RowId, u32)| (n > 0).then_some((m, n));
        if self.heavy.len() <= scan {
            return self
                .heavy
                .iter()
                .filter_map(|(&m, mine)| passing((m, within(mine))))
                .collect();
        }
        let tops = self
            .levels
            .range(days.clone())
            .filter_map(|(_, levels)| levels.get(LEVELS - 1))
            .map(|top| top.as_ref());
        tops.union()
            .iter()
            .filter_map(|m| passing((m, within(self.heavy.get(&m)?))))
            .collect()
    }

    /// The member's events on `day` where more than `CAP`.
    fn heavy_count(&self, day: i64, member: RowId) -> Option<u32> {
        let mine = self.heavy.get(&member)?;
        let at = mine.binary_search_by_key(&day, |e| e.0).ok()?;
        Some(mine[at].1)
    }

    fn set_heavy(&mut self, day: i64, member: RowId, events: u32) {
        let mine = Arc::make_mut(self.heavy.entry(member).or_default());
        match mine.binary_search_by_key(&day, |e| e.0) {
            Ok(at) => mine[at].1 = events,
            Err(at) => mine.insert(at, (day, events)),
        }
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
            && let Some(n) = self.heavy_count(day, member)
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
                self.set_heavy(day, member, now);
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

    /// Changes a member's number of events on the days of `changes` (ascending by day).
    pub(crate) fn set(&mut self, member: RowId, changes: &[DayChange]) {
        for &(day, before, after) in changes {
            self.set_levels(day, member, before, after);
        }
        // The member's days past the levels: those it keeps, and the changed ones past them.
        let old = self.heavy.remove(&member);
        let old = old.as_deref().map_or(&[][..], Vec::as_slice);
        let changed = |day: i64| changes.binary_search_by_key(&day, |c| c.0).is_ok();
        let mut mine: HeavyDays = old.iter().filter(|e| !changed(e.0)).copied().collect();
        let kept_some = !mine.is_empty();
        mine.extend(changes.iter().filter(|c| c.2 > CAP).map(|c| (c.0, c.2)));
        if kept_some {
            mine.sort_unstable_by_key(|e| e.0);
        }
        if !mine.is_empty() {
            self.heavy.insert(member, Arc::new(mine));
        }
    }

    /// The levels of a member's count on `day` going from `before` to `after`.
    fn set_levels(&mut self, day: i64, member: RowId, before: u32, after: u32) {
        let (lo, hi) = (before.min(after).min(CAP), before.max(after).min(CAP));
        // The levels of the counts lo + 1 ..= hi (level k: at least k + 2 events).
        if hi < 2 || lo >= hi {
            return;
        }
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

    pub(crate) fn clear(&mut self) {
        self.levels.clear();
        self.heavy.clear();
    }

    /// Every day's levels as the saved format keeps them: level `k` for every count `k + 2`
    /// a member reaches that day (the table's counts written out as levels).
    pub(crate) fn saved_levels(&self) -> Vec<(i64, Vec<Cow<'_, RoaringBitmap>>)> {
        let mut beyond: BTreeMap<i64, Vec<RoaringBitmap>> = BTreeMap::new();
        for (&member, mine) in &self.heavy {
            for &(day, n) in mine.iter() {
                let levels = beyond.entry(day).or_default();
                let needed = (n - CAP) as usize;
                if levels.len() < needed {
                    levels.resize_with(needed, RoaringBitmap::new);
                }
                for level in &mut levels[..needed] {
                    level.insert(member);
                }
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
                self.set_heavy(day, member, k as u32 + 2);
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
        // A table entry (its key, its reference and its control byte) and the member's days.
        self.heavy.capacity() * 13
            + self
                .heavy
                .values()
                .map(|d| d.capacity() * 16 + 16)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Each member's count per day, as the structure tells it.
    fn counts(
        repeats: &Repeats,
        present: &BTreeMap<(i64, RowId), u32>,
    ) -> Vec<((i64, RowId), u32)> {
        present
            .keys()
            .map(|&(day, m)| ((day, m), repeats.count(day, m, true)))
            .collect()
    }

    proptest! {
        /// Counts added in batches and changed member by member equal a plain map of
        /// counts; the counts past the levels over any days are the map's, read from the
        /// table or from the top levels; saving then restoring gives the same structure.
        #[test]
        fn counts_follow_adds_and_sets_and_survive_saving(
            batches in prop::collection::vec(prop::collection::vec((0..3i64, 0..40u32), 0..90), 1..4),
            sets in prop::collection::vec((0..40u32, prop::collection::vec((0..3i64, 0..12u32), 0..4)), 0..12),
        ) {
            let mut repeats = Repeats::default();
            let mut model: BTreeMap<(i64, RowId), u32> = BTreeMap::new();
            for batch in batches {
                for day in 0..3 {
                    let mut rows: Vec<RowId> =
                        batch.iter().filter(|e| e.0 == day).map(|e| e.1).collect();
                    rows.sort_unstable();
                    let present: RoaringBitmap =
                        model.keys().filter(|k| k.0 == day).map(|k| k.1).collect();
                    let batch_members: RoaringBitmap = rows.iter().copied().collect();
                    repeats.add(day, &rows, &(&present & &batch_members));
                    for m in rows {
                        *model.entry((day, m)).or_default() += 1;
                    }
                }
            }
            for (m, mut days) in sets {
                days.sort_unstable();
                days.dedup_by_key(|d| d.0);
                let changes: Vec<DayChange> = days
                    .iter()
                    .map(|&(day, after)| (day, model.get(&(day, m)).copied().unwrap_or(0), after))
                    .collect();
                repeats.set(m, &changes);
                for (day, _, after) in changes {
                    if after == 0 { model.remove(&(day, m)); } else { model.insert((day, m), after); }
                }
            }
            prop_assert_eq!(counts(&repeats, &model), model.clone().into_iter().collect::<Vec<_>>());
            for days in [0..1, 1..3, 0..3, 2..9, 5..9] {
                let mut expected: BTreeMap<RowId, u32> = BTreeMap::new();
                for (&(day, m), &n) in &model {
                    if days.contains(&day) && n > CAP {
                        *expected.entry(m).or_default() += n - CAP;
                    }
                }
                for scan in [0, usize::MAX] {
                    let mut got = repeats.beyond_levels_with(days.clone(), scan);
                    got.sort_unstable();
                    prop_assert_eq!(&got, &expected.clone().into_iter().collect::<Vec<_>>());
                }
            }

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
