//! The events of one type: columns sorted by time, and member bitmaps per day.
//!
//! Sorting by `ts` makes every time window a contiguous slice (two binary searches), so a
//! windowed count or property filter scans only the window's events of that type. The
//! per-day bitmaps answer presence (`DID e IN LAST 30 DAYS`) with a union of day bitmaps
//! plus a scan of the two partial days at the window's edges.

use std::collections::BTreeMap;

use arrow_array::ArrayRef;
use roaring::{MultiOps, RoaringBitmap};
use serde::{Deserialize, Serialize};

use super::repeats::DayChange;
use crate::bitmap::Bitmap;
use crate::column::{Column, MatchKind, Matcher, SavedColumn};
use crate::members::RowId;
use crate::util::chunked::ChunkedVec;
use crate::util::sections::{Section, SectionReader, SectionWriter};
use crate::value::{DAY_MICROS, DataType};

/// Events of one type. Invariant: all vectors have the same length and `ts` ascends.
/// Vectors and bitmaps are shared copy-on-write, so a clone (a checkpoint's snapshot) is
/// cheap and a later append copies only the last chunk and the bitmaps it changes.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventPartition {
    /// Each event's member: the profile it belongs to (DESIGN section 11).
    pub(crate) members: ChunkedVec<RowId>,
    /// Each event's own member id's row, once a merge made any differ from `members`
    /// (`None`: the same as `members`). An unmerge moves events back by it.
    pub(crate) sources: Option<ChunkedVec<RowId>>,
    pub(crate) ts: ChunkedVec<i64>,
    /// Only the properties this type has ever had a value for; the others are all NULL.
    pub(crate) props: BTreeMap<String, Column>,
    /// Members with at least one event of the type.
    pub(crate) any: Bitmap,
    /// Members with an event of the type on each UTC day (days since the epoch).
    pub(crate) days: BTreeMap<i64, Bitmap>,
    /// Members with more than one event of the type on a UTC day, and how many
    /// (`repeats.rs`). With `days` they give every member's number of events per day, so a
    /// windowed count adds a few bitmaps per day instead of scanning the window's events
    /// (see `day_counts.rs`).
    pub(crate) repeats: super::repeats::Repeats,
    /// Per-day orders of numeric properties that range filters asked for (`value_order.rs`).
    pub(super) orders: super::value_order::ValueOrders,
    /// Each member's number of events of the type, once an all-time count asked for it
    /// (`lifetime.rs`).
    pub(super) lifetime: super::lifetime::LifetimeCounts,
    /// Each member's events, once an aggregate over a few members asked for them
    /// (`member_index.rs`).
    pub(crate) by_member: super::member_index::MemberIndex,
    /// The first event of each day with events, `(day, position)` ascending, for a prefix
    /// of the days (made longer when a regroup needs it; cut where a late event moved the
    /// events after it): a regroup tells each event's day from its position.
    day_starts: Vec<(i64, usize)>,
    /// True while appended events wait for [`EventPartition::seal`] to sort them in.
    unsorted: bool,
    /// While `unsorted`: the events before this index are in time order.
    sorted_prefix: usize,
}

/// Where a saved [`EventPartition`]'s columns lie in a column file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SavedPartition {
    len: u64,
    members: Section,
    ts: Section,
    props: Vec<(String, SavedColumn)>,
    /// The events' own member rows, when merges made them differ from `members`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sources: Option<Section>,
}

/// A window of at least one whole UTC day, as a day-wise kernel reads it
/// ([`EventPartition::day_split`]).
#[derive(Clone, Debug)]
pub(crate) struct DaySplit {
    /// The whole days inside the window.
    pub(crate) days: std::ops::Range<i64>,
    /// The window's events on the (at most two) days it cuts.
    pub(crate) edges: [std::ops::Range<usize>; 2],
    /// All the window's events (what a scan reads instead, and what a plan's key names).
    pub(crate) events: std::ops::Range<usize>,
}

/// See [`EventPartition::presence`].
pub(crate) enum Presence<'a> {
    /// The window lies inside one UTC day (or is empty).
    Within,
    /// Whole days and the edge pieces `(day, lo, hi)`.
    Days {
        whole: std::collections::btree_map::Range<'a, i64, Bitmap>,
        edges: [(i64, i64, i64); 2],
    },
}

/// A property filter bound to one partition.
pub(crate) enum BoundFilter<'a> {
    Prop {
        column: Option<&'a Column>,
        matcher: Matcher,
    },
    And(Vec<BoundFilter<'a>>),
    Or(Vec<BoundFilter<'a>>),
    Not(Box<BoundFilter<'a>>),
}

impl BoundFilter<'_> {
    /// `out[k]` = does event `start + k` of the partition pass? A mask at a time, one
    /// tight loop per property test.
    /// `scratch` holds intermediate masks of `AND` / `OR` (one per nesting level).
    pub(crate) fn fill(&self, start: usize, out: &mut [bool], scratch: &mut Vec<Vec<bool>>) {
        match self {
            BoundFilter::Prop {
                column: Some(c),
                matcher,
            } => matcher.fill(c, start, out),
            BoundFilter::Prop {
                column: None,
                matcher,
            } => out.fill(matcher.kind == MatchKind::IsNull),
            BoundFilter::And(all) | BoundFilter::Or(all) => {
                let is_and = matches!(self, BoundFilter::And(_));
                out.fill(is_and);
                let mut tmp = scratch.pop().unwrap_or_default();
                tmp.resize(out.len(), false);
                for child in all {
                    child.fill(start, &mut tmp, scratch);
                    for (o, &t) in out.iter_mut().zip(&tmp) {
                        *o = if is_and { *o & t } else { *o | t };
                    }
                }
                scratch.push(tmp);
            }
            BoundFilter::Not(inner) => {
                inner.fill(start, out, scratch);
                for o in out.iter_mut() {
                    *o = !*o;
                }
            }
        }
    }
}

/// Events filtered per block: small enough for the masks to stay in the L1 cache.
const FILTER_BLOCK: usize = 4096;

impl EventPartition {
    /// The members of the events in `range` that pass `filter`, one per passing event.
    pub(crate) fn filtered_members(
        &self,
        range: std::ops::Range<usize>,
        filter: &BoundFilter<'_>,
    ) -> Vec<RowId> {
        let mut rows = Vec::new();
        let mut mask = vec![false; FILTER_BLOCK];
        let mut scratch = Vec::new();
        let mut start = range.start;
        while start < range.end {
            let end = (start + FILTER_BLOCK).min(range.end);
            let mask = &mut mask[..end - start];
            filter.fill(start, mask, &mut scratch);
            // Branch-free compaction: write every member, advance past the passing ones.
            let mut len = rows.len();
            rows.resize(len + mask.len(), 0);
            let mut mask = mask.iter();
            for members in self.members.slices(start..end) {
                for (&member, &pass) in members.iter().zip(mask.by_ref()) {
                    rows[len] = member;
                    len += usize::from(pass);
                }
            }
            rows.truncate(len);
            start = end;
        }
        rows
    }

    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Appends events: element `indices[k]` of the staged arrays. `ts` and `members` are
    /// indexed like the arrays. Events older than the newest one already stored leave the
    /// partition unsorted until [`EventPartition::seal`]; a load appends all its batches,
    /// then seals once, so a big load sorts once instead of once per batch.
    pub(crate) fn append(
        &mut self,
        members: &[RowId],
        ts: &[i64],
        props: &[(String, DataType, ArrayRef)],
        indices: &mut [u32],
    ) {
        indices.sort_by_key(|&i| ts[i as usize]);
        let old_len = self.len();
        let in_order = match (self.ts.last(), indices.first()) {
            (Some(last), Some(&first)) => ts[first as usize] >= last,
            _ => true,
        };
        self.members
            .extend(indices.iter().map(|&i| members[i as usize]));
        if let Some(sources) = &mut self.sources {
            sources.extend(indices.iter().map(|&i| members[i as usize]));
        }
        self.ts.extend(indices.iter().map(|&i| ts[i as usize]));
        self.append_props(props, Some(indices), old_len, 0);
        if !in_order && !self.unsorted {
            // Everything before this append is in order: seal sorts only from where the
            // new events belong.
            self.sorted_prefix = old_len;
        }
        if in_order && !self.unsorted {
            self.by_member.appended(&self.members, old_len);
        }
        self.unsorted |= !in_order;
        self.index_events(
            indices
                .iter()
                .map(|&i| (ts[i as usize], members[i as usize])),
        );
        self.lifetime
            .add(indices.iter().map(|&i| members[i as usize]));
    }

    /// Appends events already in time order, after the partition's last, without touching
    /// the day bitmaps (a restore reads those back). `props` are arrays of the events.
    /// `final_len` is the partition's length once the restore is done, the capacity every
    /// vector gets at once instead of growing (and copying) as it fills.
    pub(crate) fn append_sorted(
        &mut self,
        members: &[RowId],
        ts: &[i64],
        props: &[(String, DataType, ArrayRef)],
        final_len: usize,
    ) {
        let old_len = self.len();
        let room = final_len.saturating_sub(old_len);
        self.members.reserve(room);
        self.ts.reserve(room);
        self.members.extend_from_slice(members);
        if let Some(sources) = &mut self.sources {
            sources.extend_from_slice(members);
        }
        self.by_member.appended(&self.members, old_len);
        self.lifetime.add(members.iter().copied());
        self.ts.extend_from_slice(ts);
        self.append_props(props, None, old_len, final_len);
    }

    /// Appends element `indices[k]` (or `k`) of each property array to its column, after
    /// the partition's `old_len` events; columns are created (with `capacity`) only for
    /// properties that have a value here, and every column is then padded with NULLs to
    /// the partition's length.
    fn append_props(
        &mut self,
        props: &[(String, DataType, ArrayRef)],
        indices: Option<&[u32]>,
        old_len: usize,
        capacity: usize,
    ) {
        for (name, data_type, array) in props {
            let has_values = match indices {
                Some(ix) => ix.iter().any(|&i| array.is_valid(i as usize)),
                None => array.null_count() < array.len(),
            };
            if !has_values && !self.props.contains_key(name) {
                continue;
            }
            let column = self.props.entry(name.clone()).or_insert_with(|| {
                let mut column = Column::new(*data_type);
                column.reserve(capacity);
                column.extend_nulls(old_len);
                column
            });
            column.append_array(array, indices);
        }
        for column in self.props.values_mut() {
            let missing = self.ts.len() - column.len();
            if missing > 0 {
                column.extend_nulls(missing);
            }
        }
    }

    /// Adds events to the day bitmaps, their repeat levels and `any`.
    fn index_events(&mut self, events: impl Iterator<Item = (i64, RowId)>) {
        let mut per_day: BTreeMap<i64, Vec<RowId>> = BTreeMap::new();
        for (t, m) in events {
            per_day.entry(t.div_euclid(DAY_MICROS)).or_default().push(m);
        }
        let touched: Vec<i64> = per_day.keys().copied().collect();
        self.orders.forget_days(&touched);
        let mut added = Vec::with_capacity(per_day.len());
        for (day, mut rows) in per_day {
            rows.sort_unstable();
            let distinct = rows.chunk_by(|a, b| a == b).map(|run| run[0]);
            let bitmap = RoaringBitmap::from_sorted_iter(distinct).expect("sorted");
            // Members who already had events that day start counting from what they had.
            let before = self
                .days
                .get(&day)
                .map(|d| d.as_ref() & &bitmap)
                .unwrap_or_default();
            self.repeats.add(day, &rows, &before);
            self.days.entry(day).or_default().add_all(&bitmap);
            added.push(bitmap);
        }
        self.any.add_all(&added.into_iter().union());
    }

    /// Rebuilds the repeat levels of every day from the events (a database saved before
    /// they were saved with it).
    pub(crate) fn rebuild_repeats(&mut self) {
        self.repeats.clear();
        let days: Vec<i64> = self.days.keys().copied().collect();
        for day in days {
            let start = day.saturating_mul(DAY_MICROS);
            let range = self.slice(start, start.saturating_add(DAY_MICROS));
            let mut rows: Vec<RowId> = self.members.range(range).collect();
            rows.sort_unstable();
            self.repeats.add(day, &rows, &RoaringBitmap::new());
        }
    }

    /// The partition without the events of the members `rows` (member erasure), or `None`
    /// when none of them has an event here. Built again from the events kept, so the
    /// properties' dictionaries hold only the values of those events.
    pub(crate) fn without_members(&self, rows: &RoaringBitmap) -> Option<EventPartition> {
        let sources_hit = self
            .sources
            .as_ref()
            .is_some_and(|s| s.iter().any(|r| rows.contains(r)));
        if self.any.as_ref().is_disjoint(rows) && !sources_hit {
            return None;
        }
        let sealed;
        let this = if self.unsorted {
            let mut copy = self.clone();
            copy.seal();
            sealed = copy;
            &sealed
        } else {
            self
        };
        let keep: Vec<u32> = (0..this.len() as u32)
            .filter(|&i| {
                !rows.contains(this.members[i as usize])
                    && !this
                        .sources
                        .as_ref()
                        .is_some_and(|s| rows.contains(s[i as usize]))
            })
            .collect();
        let members = this.members.gather(&keep);
        let ts = this.ts.gather(&keep);
        let props: Vec<(String, DataType, ArrayRef)> = (this.props.iter())
            .map(|(name, c)| (name.clone(), c.data_type(), c.to_arrow(Some(&keep))))
            .collect();
        let mut out = EventPartition::default();
        let mut all: Vec<u32> = (0..keep.len() as u32).collect();
        out.append(&members, &ts, &props, &mut all);
        out.seal();
        if let Some(sources) = &this.sources {
            let mut kept = ChunkedVec::default();
            kept.extend_from_slice(&sources.gather(&keep));
            out.sources = Some(kept);
        }
        Some(out)
    }

    /// Whether appended events wait for [`EventPartition::seal`].
    pub(crate) fn is_unsorted(&self) -> bool {
        self.unsorted
    }

    /// Restores time order after appends; queries need it.
    pub(crate) fn seal(&mut self) {
        if self.unsorted {
            self.sort_by_time();
            self.unsorted = false;
        }
    }

    fn sort_by_time(&mut self) {
        // Events before `sorted_prefix` are in order; the appended ones after it go no
        // earlier than the first stored event later than their earliest. Only from there on
        // is anything moved: a single write a little out of order (concurrent writers take
        // their times before they commit) moves a few events, not the whole partition.
        let sorted = self.sorted_prefix.min(self.len());
        let earliest = self.ts.range(sorted..self.len()).min().unwrap_or(i64::MAX);
        let start = self.ts.partition_point_before(sorted, |&t| t <= earliest);
        // A stable sort: runs already in order (the old events, each appended batch) make it
        // close to a merge.
        let mut order: Vec<u32> = (start as u32..self.len() as u32).collect();
        order.sort_by_key(|&i| self.ts[i as usize]);
        let members: Vec<RowId> = order.iter().map(|&i| self.members[i as usize]).collect();
        self.members.copy_from_slice(start, &members);
        if let Some(sources) = &mut self.sources {
            let moved: Vec<RowId> = order.iter().map(|&i| sources[i as usize]).collect();
            sources.copy_from_slice(start, &moved);
        }
        let ts: Vec<i64> = order.iter().map(|&i| self.ts[i as usize]).collect();
        self.ts.copy_from_slice(start, &ts);
        // Days starting before the moved events keep their starts.
        let kept = self.day_starts.partition_point(|e| e.1 < start);
        self.day_starts.truncate(kept);
        for column in self.props.values_mut() {
            column.permute(start, &order);
        }
        self.by_member.reordered(&self.members, start);
    }

    /// The first event of every day with events (see `day_starts`), brought up to date.
    fn day_starts(&mut self) -> &[(i64, usize)] {
        debug_assert!(!self.unsorted, "day starts asked for before seal");
        let next = self.day_starts.last().map_or(i64::MIN, |e| e.0 + 1);
        let new_days: Vec<i64> = self.days.range(next..).map(|(&day, _)| day).collect();
        for day in new_days {
            let start = self
                .ts
                .partition_point(|&t| t < day.saturating_mul(DAY_MICROS));
            self.day_starts.push((day, start));
        }
        &self.day_starts
    }

    /// Moves the events of the members `involved` to the profiles their own member ids now
    /// belong to (`canonical` of each event's source), keeping each event's own member in
    /// `sources`, and brings the day bitmaps, their repeat levels and `any` up to date for
    /// them. `involved` must hold every profile before and after (their events are
    /// recounted from scratch). Returns whether an event moved.
    pub(crate) fn regroup(
        &mut self,
        involved: &RoaringBitmap,
        canonical: &dyn Fn(RowId) -> RowId,
    ) -> bool {
        if self.any.as_ref().is_disjoint(involved) {
            return false;
        }
        let len = self.len();
        // Each event of the members involved with its member now, in position order: the
        // columns are then read going forward, a column at a time, so the reads of
        // scattered events overlap instead of waiting on each other.
        let mut owned: Vec<(u32, RowId)> = Vec::new();
        for m in involved {
            self.by_member
                .each(&self.members, m, 0..len, |p| owned.push((p as u32, m)));
        }
        // Each member's events ascend: a stable sort merges the runs.
        owned.sort();
        let positions: Vec<u32> = owned.iter().map(|e| e.0).collect();
        let sources = match &self.sources {
            Some(sources) => sources.gather(&positions),
            None => owned.iter().map(|e| e.1).collect(),
        };
        // The profile each event's own member id belongs to, looked up once per member id,
        // with its place in `per_member` (each profile's events after, ascending).
        let mut per_member: Vec<(RowId, Vec<u32>)> =
            involved.iter().map(|m| (m, Vec::new())).collect();
        let mut places: hashbrown::HashMap<RowId, usize> =
            involved.iter().enumerate().map(|(k, m)| (m, k)).collect();
        let mut profiles: hashbrown::HashMap<RowId, (RowId, usize)> = hashbrown::HashMap::new();
        // The last few member ids' profiles, by their low bits: a profile's events come from
        // a few member ids, interleaved in time.
        let mut recent = [(RowId::MAX, (0, 0)); 8];
        let targets: Vec<(RowId, usize)> = sources
            .iter()
            .map(|&s| {
                let slot = &mut recent[s as usize % 8];
                if slot.0 == s {
                    return slot.1;
                }
                let target = *profiles.entry(s).or_insert_with(|| {
                    let to = canonical(s);
                    let place = *places.entry(to).or_insert_with(|| {
                        per_member.push((to, Vec::new()));
                        per_member.len() - 1
                    });
                    (to, place)
                });
                *slot = (s, target);
                target
            })
            .collect();
        // The events whose member changes, and their new member.
        let (moved, moved_to): (Vec<u32>, Vec<RowId>) = owned
            .iter()
            .zip(&targets)
            .filter(|(e, t)| e.1 != t.0)
            .map(|(e, t)| (e.0, t.0))
            .unzip();
        if moved.is_empty() {
            return false;
        }
        if self.sources.is_none() {
            self.sources = Some(self.members.clone());
        }
        self.members.scatter(&moved, &moved_to);
        for (&p, &(_, place)) in positions.iter().zip(&targets) {
            per_member[place].1.push(p);
        }
        per_member.sort_unstable_by_key(|e| e.0);
        // Per (day, member): its events that day before and after. Only the difference is
        // written to the day bitmaps and their repeat levels (a member keeping its events
        // is not taken out and put back). The events' days ascend with their positions.
        let starts = self.day_starts();
        let mut at = 0;
        let days: Vec<i64> = positions
            .iter()
            .map(|&p| {
                while at + 1 < starts.len() && starts[at + 1].1 <= p as usize {
                    at += 1;
                }
                starts[at].0
            })
            .collect();
        debug_assert!(
            positions
                .iter()
                .zip(&days)
                .all(|(&p, &d)| self.ts[p as usize].div_euclid(DAY_MICROS) == d),
            "day starts out of date"
        );
        let mut changes: Vec<(RowId, DayChange)> = Vec::new();
        let mut touched: Vec<i64> = Vec::new();
        let mut tally = DayTally::default();
        let mut k = 0;
        while k < days.len() {
            let day = days[k];
            let n = days[k..].iter().take_while(|&&d| d == day).count();
            let count = changes.len();
            tally.count(
                owned[k..k + n].iter().map(|e| e.1),
                targets[k..k + n].iter().map(|t| t.0),
            );
            changes.extend(tally.changes().map(|(m, (b, a))| (m, (day, b, a))));
            if changes.len() > count {
                touched.push(day);
            }
            k += n;
        }
        self.orders.forget_days(&touched);
        // Member by member (its days ascending): a member's counts past the repeat levels
        // are kept per member.
        changes.sort_unstable();
        for mine in changes.chunk_by(|a, b| a.0 == b.0) {
            let m = mine[0].0;
            let days: Vec<DayChange> = mine.iter().map(|c| c.1).collect();
            self.repeats.set(m, &days);
            for &(day, before, after) in &days {
                match (before, after) {
                    (0, _) => {
                        self.days.entry(day).or_default().make_mut().insert(m);
                    }
                    (_, 0) => {
                        if let Some(bitmap) = self.days.get_mut(&day) {
                            bitmap.make_mut().remove(m);
                        }
                    }
                    _ => {}
                }
            }
        }
        // `any`: the members that lost every event leave it, those that got some enter.
        let any = self.any.make_mut();
        for (m, mine) in &per_member {
            if mine.is_empty() {
                any.remove(*m);
            } else {
                any.insert(*m);
            }
        }
        self.lifetime
            .set(per_member.iter().map(|(m, mine)| (*m, mine.len())));
        self.by_member
            .moved(&self.members, per_member.into_iter().collect());
        true
    }

    /// Index range of the events with `lo <= ts < hi`.
    pub(crate) fn slice(&self, lo: i64, hi: i64) -> std::ops::Range<usize> {
        debug_assert!(!self.unsorted, "partition queried before seal");
        let a = self.ts.partition_point(|&t| t < lo);
        let b = self.ts.partition_point(|&t| t < hi).max(a);
        a..b
    }

    /// Members with an event in `[lo, hi)`, composed as a plan composes them (whole days'
    /// bitmaps, edge days' parts, a scan inside one day): the tests hold that composition
    /// to a naive scan.
    #[cfg(test)]
    pub(crate) fn present_between(&self, lo: i64, hi: i64) -> RoaringBitmap {
        match self.presence(lo, hi) {
            Presence::Within => self.scan_members(self.slice(lo, hi)),
            Presence::Days { whole, edges } => {
                let whole = whole.map(|(_, b)| b.as_ref()).union();
                edges.into_iter().fold(whole, |acc, (day, lo, hi)| {
                    acc | self.partial_day(day, lo, hi)
                })
            }
        }
    }

    /// How presence in `[lo, hi)` decomposes: the bitmaps of the whole UTC days inside it,
    /// and the pieces of the (at most two) days it cuts, for [`EventPartition::partial_day`]
    /// (a window inside one day is scanned instead).
    pub(crate) fn presence(&self, lo: i64, hi: i64) -> Presence<'_> {
        let first_day = lo.div_euclid(DAY_MICROS) + i64::from(lo.rem_euclid(DAY_MICROS) != 0);
        let end_day = hi.div_euclid(DAY_MICROS);
        if lo >= hi || first_day >= end_day {
            return Presence::Within;
        }
        Presence::Days {
            whole: self.days.range(first_day..end_day),
            edges: [
                (first_day - 1, lo, first_day.saturating_mul(DAY_MICROS)),
                (end_day, end_day.saturating_mul(DAY_MICROS), hi),
            ],
        }
    }

    /// `[lo, hi)` as the whole UTC days inside it and the events of the (at most two) days
    /// it cuts; `None` for a window inside one day.
    pub(crate) fn day_split(&self, lo: i64, hi: i64) -> Option<DaySplit> {
        let Presence::Days { edges, .. } = self.presence(lo, hi) else {
            return None;
        };
        let [(first, lo0, hi0), (end, lo1, hi1)] = edges;
        Some(DaySplit {
            days: first + 1..end,
            edges: [self.slice(lo0, hi0), self.slice(lo1, hi1)],
            events: self.slice(lo, hi),
        })
    }

    /// Every day of the partition, as one window.
    pub(crate) fn all_days(&self) -> DaySplit {
        DaySplit {
            days: i64::MIN..i64::MAX,
            edges: [0..0, 0..0],
            events: 0..self.len(),
        }
    }

    /// Members with an event in `[lo, hi)`, a part of UTC day `day`.
    ///
    /// Windows relative to a *now* at midnight (`IN LAST 7 DAYS`) start one microsecond into
    /// their first day, so that day is nearly whole. Then the day's bitmap is the answer,
    /// less the few members whose events that day all fall outside the window; only when
    /// many events fall outside are the window's events scanned.
    pub(crate) fn partial_day(&self, day: i64, lo: i64, hi: i64) -> RoaringBitmap {
        let inside = self.slice(lo, hi);
        if inside.is_empty() {
            return RoaringBitmap::new();
        }
        let day_start = day.saturating_mul(DAY_MICROS);
        let whole = self.slice(day_start, day_start.saturating_add(DAY_MICROS));
        let Some(bitmap) = self.days.get(&day) else {
            return self.scan_members(inside);
        };
        let outside = (whole.len() - inside.len()) as u64;
        if outside == 0 {
            return bitmap.as_ref().clone();
        }
        if outside.saturating_mul(16) > inside.len() as u64 {
            return self.scan_members(inside);
        }
        let mut only_outside =
            self.scan_members(whole.start..inside.start) | self.scan_members(inside.end..whole.end);
        for member in self.members.range(inside) {
            if only_outside.remove(member) && only_outside.is_empty() {
                break;
            }
        }
        bitmap.as_ref() - only_outside
    }

    /// The members of `few` (ascending) with an event in `range`: a pass over the range's
    /// members, without sorting them all.
    pub(crate) fn members_among(
        &self,
        range: std::ops::Range<usize>,
        few: &[RowId],
    ) -> RoaringBitmap {
        let rows = self.members.range(range);
        distinct_among(rows, few)
    }

    /// The distinct members of the events in `range`.
    pub(crate) fn scan_members(&self, range: std::ops::Range<usize>) -> RoaringBitmap {
        let mut rows: Vec<RowId> = self.members.range(range).collect();
        rows.sort_unstable();
        rows.dedup();
        RoaringBitmap::from_sorted_iter(rows).expect("sorted")
    }

    /// Writes the events' columns (not the day bitmaps: the events bitmaps file holds
    /// those).
    pub(crate) fn save(&self, out: &mut SectionWriter<'_>) -> std::io::Result<SavedPartition> {
        Ok(SavedPartition {
            len: self.len() as u64,
            members: self.members.save(out)?,
            ts: self.ts.save(out)?,
            props: self
                .props
                .iter()
                .map(|(name, column)| Ok((name.clone(), column.save(out)?)))
                .collect::<std::io::Result<_>>()?,
            sources: self.sources.as_ref().map(|s| s.save(out)).transpose()?,
        })
    }

    /// The events [`EventPartition::save`] wrote, mapped, checked to be in time order, of
    /// members below `member_count` and of the properties `types` names. The day bitmaps
    /// are read separately.
    pub(crate) fn restore(
        file: &SectionReader,
        saved: &SavedPartition,
        member_count: usize,
        types: &BTreeMap<String, DataType>,
    ) -> Result<EventPartition, String> {
        let len = usize::try_from(saved.len).map_err(|_| "too many events")?;
        let members: ChunkedVec<RowId> = ChunkedVec::restore(file, saved.members, len)?;
        let ts: ChunkedVec<i64> = ChunkedVec::restore(file, saved.ts, len)?;
        let sources: Option<ChunkedVec<RowId>> = saved
            .sources
            .map(|at| ChunkedVec::restore(file, at, len))
            .transpose()?;
        let beyond = |rows: &ChunkedVec<RowId>| {
            rows.slices(0..len)
                .any(|s| s.iter().fold(0, |m, &r| m.max(r)) as usize >= member_count)
        };
        if beyond(&members) || sources.as_ref().is_some_and(beyond) {
            return Err("an event's member row is out of range".to_string());
        }
        let mut last = i64::MIN;
        for slice in ts.slices(0..len) {
            if slice.first().is_some_and(|&f| f < last) || !slice.is_sorted() {
                return Err("events are not in time order".to_string());
            }
            last = slice.last().copied().unwrap_or(last);
        }
        let mut props = BTreeMap::new();
        for (name, saved) in &saved.props {
            let data_type = *types
                .get(name)
                .ok_or_else(|| format!("unknown event property '{name}'"))?;
            let column = Column::restore(file, saved, data_type)?;
            if column.len() != len {
                return Err(format!(
                    "property '{name}' has another length than its events"
                ));
            }
            props.insert(name.clone(), column);
        }
        Ok(EventPartition {
            members,
            sources,
            ts,
            props,
            ..EventPartition::default()
        })
    }

    /// Bytes of the events mapped from a file.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.members.mapped_bytes()
            + self.ts.mapped_bytes()
            + self.props.values().map(Column::mapped_bytes).sum::<usize>()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.members.heap_bytes()
            + self.ts.heap_bytes()
            + self.props.values().map(Column::heap_bytes).sum::<usize>()
            + self.any.heap_bytes()
            + self.orders.heap_bytes()
            + self.lifetime.heap_bytes()
            + self.by_member.heap_bytes()
            + self.repeats.heap_bytes()
            + self
                .days
                .values()
                .chain(self.repeats.bitmaps())
                .map(Bitmap::heap_bytes)
                .sum::<usize>()
    }
}

/// The members of `few` (ascending) among `rows`, as a bitmap.
pub(crate) fn distinct_among(rows: impl Iterator<Item = RowId>, few: &[RowId]) -> RoaringBitmap {
    let (Some(&lo), Some(&hi)) = (few.first(), few.last()) else {
        return RoaringBitmap::new();
    };
    let mut seen = vec![false; few.len()];
    for m in rows.filter(|&m| lo <= m && m <= hi) {
        if let Ok(i) = few.binary_search(&m) {
            seen[i] = true;
        }
    }
    few.iter()
        .zip(seen)
        .filter(|(_, s)| *s)
        .map(|(&m, _)| m)
        .collect()
}

/// One day's events of the members a regroup involves: each member's number before and
/// after, `(member, before, after)` ascending. A day's events come from a few members,
/// counted in a short list; past [`DayTally::FEW`] of them, by sorting.
#[derive(Default)]
struct DayTally(Vec<(RowId, u32, u32)>);

impl DayTally {
    const FEW: usize = 16;

    fn count(
        &mut self,
        before: impl Iterator<Item = RowId> + Clone,
        after: impl Iterator<Item = RowId> + Clone,
    ) {
        let few = &mut self.0;
        few.clear();
        for (m, side) in before
            .clone()
            .map(|m| (m, 0))
            .chain(after.clone().map(|m| (m, 1)))
        {
            match few.iter().position(|e| e.0 == m) {
                Some(at) if side == 0 => few[at].1 += 1,
                Some(at) => few[at].2 += 1,
                None if few.len() < Self::FEW => {
                    few.push((m, u32::from(side == 0), u32::from(side == 1)))
                }
                None => {
                    // Many members: count by sorting instead.
                    let mut before: Vec<RowId> = before.collect();
                    let mut after: Vec<RowId> = after.collect();
                    before.sort_unstable();
                    after.sort_unstable();
                    few.clear();
                    few.extend(count_changes(&before, &after).map(|(m, (b, a))| (m, b, a)));
                    return;
                }
            }
        }
        few.sort_unstable();
    }

    /// The members whose number changed, ascending, with the two numbers.
    fn changes(&self) -> impl Iterator<Item = (RowId, (u32, u32))> + '_ {
        self.0
            .iter()
            .filter(|e| e.1 != e.2)
            .map(|&(m, b, a)| (m, (b, a)))
    }
}

/// The members whose number of occurrences differs between `before` and `after` (both
/// ascending), with the two numbers.
fn count_changes<'a>(
    before: &'a [RowId],
    after: &'a [RowId],
) -> impl Iterator<Item = (RowId, (u32, u32))> + 'a {
    let runs = |rows: &'a [RowId]| {
        rows.chunk_by(|a, b| a == b)
            .map(|run| (run[0], run.len() as u32))
            .peekable()
    };
    let (mut before, mut after) = (runs(before), runs(after));
    std::iter::from_fn(move || {
        loop {
            let next = match (before.peek(), after.peek()) {
                (None, None) => return None,
                (Some(&(m, b)), Some(&(n, a))) if m == n => {
                    before.next();
                    after.next();
                    (m, (b, a))
                }
                (Some(&(m, b)), Some(&(n, _))) if m < n => {
                    before.next();
                    (m, (b, 0))
                }
                (Some(&(m, b)), None) => {
                    before.next();
                    (m, (b, 0))
                }
                (_, Some(&(n, a))) => {
                    after.next();
                    (n, (0, a))
                }
            };
            if next.1.0 != next.1.1 {
                return Some(next);
            }
        }
    })
}

/// The members of `few` (ascending) among `rows` with how many times each occurs there.
pub(crate) fn counts_among(rows: impl Iterator<Item = RowId>, few: &[RowId]) -> Vec<u32> {
    let mut counts = vec![0u32; few.len()];
    let (Some(&lo), Some(&hi)) = (few.first(), few.last()) else {
        return counts;
    };
    for m in rows.filter(|&m| lo <= m && m <= hi) {
        if let Ok(i) = few.binary_search(&m) {
            counts[i] += 1;
        }
    }
    counts
}

#[cfg(test)]
impl EventPartition {
    /// A sealed partition of `(member, time)` events without properties, for tests.
    pub(crate) fn of_events(events: &[(RowId, i64)]) -> EventPartition {
        let mut part = EventPartition::default();
        part.append_events(events);
        part
    }

    /// Appends `(member, time)` events without properties and seals, for tests.
    pub(crate) fn append_events(&mut self, events: &[(RowId, i64)]) {
        let members: Vec<RowId> = events.iter().map(|e| e.0).collect();
        let ts: Vec<i64> = events.iter().map(|e| e.1).collect();
        let mut indices: Vec<u32> = (0..events.len() as u32).collect();
        self.append(&members, &ts, &[], &mut indices);
        self.seal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(events: &[(RowId, i64)]) -> EventPartition {
        EventPartition::of_events(events)
    }

    /// Members with an event in `[lo, hi)`, row by row.
    fn naive(events: &[(RowId, i64)], lo: i64, hi: i64) -> RoaringBitmap {
        events
            .iter()
            .filter(|e| lo <= e.1 && e.1 < hi)
            .map(|e| e.0)
            .collect()
    }

    /// Issue 11, finding 8: concurrent EVENT.ADDs arrive a little out of time order, and each
    /// one re-sorted (and reallocated) the whole partition. Appends now sort only the tail
    /// that moves; the result is the stable sort of everything, properties included.
    #[test]
    fn appends_out_of_order_one_by_one_end_like_a_stable_sort() {
        use arrow_array::{ArrayRef, Int64Array};
        let mut part = EventPartition::default();
        let mut all: Vec<(i64, RowId, i64)> = Vec::new();
        let mut x = 7u64;
        for i in 0..2_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // mostly increasing, often a little late, sometimes much earlier, ties too
            let ts = match x >> 61 {
                0 => i64::from(i / 3) - 500,
                1 | 2 => i64::from(i / 3) - (x >> 40 & 7) as i64,
                _ => i64::from(i / 3),
            };
            let prop: ArrayRef = std::sync::Arc::new(Int64Array::from(vec![i64::from(i)]));
            let props = vec![("seq".to_string(), DataType::Int, prop)];
            part.append(&[i % 50], &[ts], &props, &mut [0]);
            if x >> 59 & 1 == 0 {
                part.seal();
            }
            all.push((ts, i % 50, i64::from(i)));
        }
        part.seal();
        all.sort_by_key(|e| e.0);
        assert_eq!(
            part.ts.to_vec(),
            all.iter().map(|e| e.0).collect::<Vec<_>>()
        );
        assert_eq!(
            part.members.to_vec(),
            all.iter().map(|e| e.1).collect::<Vec<_>>()
        );
        let seq = &part.props["seq"];
        for (row, e) in all.iter().enumerate() {
            assert_eq!(
                seq.get(row),
                Some(crate::value::Value::Int(e.2)),
                "row {row}"
            );
        }
    }

    #[test]
    fn nearly_whole_edge_days_drop_members_seen_only_outside() {
        let day = 20_000 * DAY_MICROS;
        let hour = DAY_MICROS / 24;
        // 1: at midnight and at noon; 2: only at midnight; 3..40: in the afternoon;
        // 41: only in the last microsecond of the day before.
        let mut events = vec![(1, day), (1, day + 12 * hour), (2, day), (41, day - 1)];
        events.extend((3..40).map(|m| (m, day + 13 * hour + i64::from(m))));
        let part = partition(&events);
        for (lo, hi) in [
            (day + 1, day + 3 * DAY_MICROS),
            (day + 1, day + DAY_MICROS - 1),
            (day - 1, day + 13 * hour),
            (day + 13 * hour, day + 2 * DAY_MICROS),
        ] {
            assert_eq!(
                part.present_between(lo, hi),
                naive(&events, lo, hi),
                "{lo}..{hi}"
            );
        }
        let got = part.present_between(day + 1, day + DAY_MICROS);
        assert!(got.contains(1) && !got.contains(2) && got.contains(3));
    }

    proptest::proptest! {
        /// A day's tally (a short list for a few members, sorting for many) gives the
        /// changes of counting the sorted lists.
        #[test]
        fn a_day_tally_counts_as_sorting_does(
            before in proptest::collection::vec(0..40u32, 0..80),
            after in proptest::collection::vec(0..40u32, 0..80),
        ) {
            let mut tally = DayTally::default();
            tally.count(before.iter().copied(), after.iter().copied());
            let got: Vec<_> = tally.changes().collect();
            let (mut b, mut a) = (before.clone(), after.clone());
            b.sort_unstable();
            a.sort_unstable();
            proptest::prop_assert_eq!(got, count_changes(&b, &a).collect::<Vec<_>>());
        }

        /// Events of a dozen member ids over a few days (many a day: counts past the
        /// levels), grouped into profiles and regrouped again and again, with events
        /// appended in between (late ones too): each time the day
        /// bitmaps, their counts and `any` equal those of a partition built from the events
        /// under their profiles, and every profile's events are where the index says.
        #[test]
        fn regrouping_equals_building_under_the_profiles(
            mut events in proptest::collection::vec((0..12u32, 0..4 * DAY_MICROS), 1..300),
            steps in proptest::collection::vec(
                (
                    proptest::collection::vec(0..12u32, 12),
                    proptest::collection::vec((0..12u32, 0..6 * DAY_MICROS), 0..20),
                ),
                1..5,
            ),
        ) {
            let mut part = partition(&events);
            let all: RoaringBitmap = (0..12).collect();
            for (profile_of, appended) in steps {
                // Events appended between regroups (some later than all, some among them,
                // on new days too), under their own member ids until the regroup.
                part.append_events(&appended);
                events.extend(appended);
                part.regroup(&all, &|source| profile_of[source as usize]);
                let grouped: Vec<(RowId, i64)> = events
                    .iter()
                    .map(|&(m, t)| (profile_of[m as usize], t))
                    .collect();
                let built = partition(&grouped);
                proptest::prop_assert_eq!(&part.days, &built.days);
                proptest::prop_assert_eq!(&part.repeats, &built.repeats);
                proptest::prop_assert_eq!(&part.any, &built.any);
                for m in 0..12 {
                    let mut mine = Vec::new();
                    part.by_member.each(&part.members, m, 0..part.len(), |p| mine.push(p));
                    let expected: Vec<usize> =
                        (0..part.len()).filter(|&p| part.members[p] == m).collect();
                    proptest::prop_assert_eq!(mine, expected);
                }
            }
        }
    }
}
