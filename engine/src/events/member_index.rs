//! Each member's events of one type, in time order: the events an aggregate over a few
//! members reads (a trait or a group kept current after an `EVENT.ADD`) without walking the
//! whole window of the type.
//!
//! Built from the events the first time it is asked for: a compressed table of each
//! member's event indexes (`base`, shared by snapshots), then kept by appends in time order
//! in a small map beside it (`tail`). When the map grows past a share of the events, a new
//! table of every event so far is built on another thread while appends go on into a
//! second map (`newer`); the append that finds it done swaps it in, keeping the second
//! map, so no write pays for a pass over every event of the type. A late event that sorts
//! in before the table's end cuts the table there (its entries from that event on are no
//! longer read) and puts the events after the cut in the maps, which a new table built
//! aside absorbs as before; one that sorts in among the maps' events renumbers only them.

use hashbrown::HashMap;
use std::sync::{Arc, OnceLock};

use crate::members::RowId;
use crate::util::chunked::ChunkedVec;

/// Events per member for events `0..len` of a partition.
#[derive(Debug, Default)]
struct Table {
    /// Member `m`'s events are `positions[offsets[m]..offsets[m + 1]]`.
    offsets: Vec<u32>,
    positions: Vec<u32>,
    /// The events the table holds: `0..len`.
    len: usize,
}

/// The index, once built.
#[derive(Debug, Default)]
struct Built {
    base: Arc<Table>,
    /// The events of `base` read: `0..base_len` (a late event cuts the table short of its
    /// end; the events after the cut are in the maps).
    base_len: usize,
    /// Events appended after the table, per member, ascending (up to `next`'s end while
    /// a table is being built).
    tail: HashMap<RowId, Vec<u32>>,
    tail_events: usize,
    /// While a new table is built: the events appended after its end, per member.
    newer: HashMap<RowId, Vec<u32>>,
    /// The table of every event up to `tail`'s end, being built on another thread.
    next: Option<std::thread::JoinHandle<Table>>,
    /// While a new table is built: the first event moved by a late event since it began
    /// (the new table is read up to there, and the maps made again from there).
    next_cut: Option<usize>,
    /// Members whose events moved between members (a merge or unmerge of profiles,
    /// DESIGN section 11): every event of theirs, ascending; the table and the maps are
    /// not read for them.
    moved: HashMap<RowId, Vec<u32>>,
}

/// A snapshot shares the table and copies the maps; a table being built stays with the
/// original (the snapshot's maps cover its events all the same).
impl Clone for Built {
    fn clone(&self) -> Self {
        let mut tail = self.tail.clone();
        for (m, events) in &self.newer {
            tail.entry(*m).or_default().extend_from_slice(events);
        }
        Built {
            base: self.base.clone(),
            base_len: self.base_len,
            tail,
            tail_events: self.tail_events + self.newer.values().map(Vec::len).sum::<usize>(),
            newer: HashMap::new(),
            next: None,
            next_cut: None,
            moved: self.moved.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemberIndex(OnceLock<Built>);

/// The tail is folded into a new table past this share of the table's events (and at least
/// [`MIN_TAIL`] events): rebuilding costs one pass over the events, paid once per that
/// many appends.
const TAIL_SHARE: usize = 32;
const MIN_TAIL: usize = 4096;

fn table(members: &ChunkedVec<RowId>, len: usize) -> Table {
    let mut counts: Vec<u32> = Vec::new();
    for slice in members.slices(0..len) {
        for &m in slice {
            let m = m as usize;
            if m >= counts.len() {
                counts.resize(m + 1, 0);
            }
            counts[m] += 1;
        }
    }
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    let mut total = 0u32;
    offsets.push(0);
    for c in &counts {
        total += c;
        offsets.push(total);
    }
    let mut next: Vec<u32> = offsets[..counts.len()].to_vec();
    let mut positions = vec![0u32; len];
    let mut i = 0u32;
    for slice in members.slices(0..len) {
        for &m in slice {
            let at = &mut next[m as usize];
            positions[*at as usize] = i;
            *at += 1;
            i += 1;
        }
    }
    Table {
        offsets,
        positions,
        len,
    }
}

/// Adds events `from..members.len()` to `map`, each under its member (after the events
/// the map holds).
fn note(map: &mut HashMap<RowId, Vec<u32>>, members: &ChunkedVec<RowId>, from: usize) {
    for (k, m) in members.range(from..members.len()).enumerate() {
        map.entry(m).or_default().push((from + k) as u32);
    }
}

impl Built {
    /// Makes the maps again: every event from `from` on in `tail`, `newer` empty.
    fn refill(&mut self, members: &ChunkedVec<RowId>, from: usize) {
        self.tail.clear();
        self.newer.clear();
        note(&mut self.tail, members, from);
        self.tail_events = members.len() - from;
    }
}

/// Appends `newer`'s events (all after `tail`'s) to `tail`.
fn fold_into(tail: &mut HashMap<RowId, Vec<u32>>, newer: HashMap<RowId, Vec<u32>>) {
    for (m, events) in newer {
        tail.entry(m).or_default().extend(events);
    }
}

impl MemberIndex {
    fn built(&self, members: &ChunkedVec<RowId>) -> &Built {
        self.0.get_or_init(|| Built {
            base: Arc::new(table(members, members.len())),
            base_len: members.len(),
            ..Built::default()
        })
    }

    /// Calls `f` with each event index of `member` in `range`, ascending.
    pub(crate) fn each(
        &self,
        members: &ChunkedVec<RowId>,
        member: RowId,
        range: std::ops::Range<usize>,
        mut f: impl FnMut(usize),
    ) {
        let built = self.built(members);
        if let Some(mine) = built.moved.get(&member) {
            let from = mine.partition_point(|&p| (p as usize) < range.start);
            for &p in &mine[from..] {
                if p as usize >= range.end {
                    break;
                }
                f(p as usize);
            }
            return;
        }
        let base = &built.base;
        let m = member as usize;
        if m + 1 < base.offsets.len() && range.start < built.base_len {
            let mine = &base.positions[base.offsets[m] as usize..base.offsets[m + 1] as usize];
            let from = mine.partition_point(|&p| (p as usize) < range.start);
            let end = range.end.min(built.base_len);
            for &p in &mine[from..] {
                if p as usize >= end {
                    break;
                }
                f(p as usize);
            }
            if range.end <= built.base_len {
                return;
            }
        }
        for tail in [&built.tail, &built.newer] {
            if let Some(tail) = tail.get(&member) {
                let from = tail.partition_point(|&p| (p as usize) < range.start);
                for &p in &tail[from..] {
                    if p as usize >= range.end {
                        return;
                    }
                    f(p as usize);
                }
            }
        }
    }

    /// Notes events `from..members.len()`, just appended in time order after every event
    /// before them.
    pub(crate) fn appended(&mut self, members: &ChunkedVec<RowId>, from: usize) {
        let Some(built) = self.0.get_mut() else {
            return;
        };
        let len = members.len();
        if !built.moved.is_empty() {
            for (k, m) in members.range(from..len).enumerate() {
                if let Some(mine) = built.moved.get_mut(&m) {
                    mine.push((from + k) as u32);
                }
            }
        }
        if built.next.is_some() {
            note(&mut built.newer, members, from);
            if built.next.as_ref().is_some_and(|b| b.is_finished()) {
                let build = built.next.take().expect("checked above");
                match build.join() {
                    Ok(table) if built.next_cut.is_some() => {
                        // Late events moved some of the events it numbers: it is read up to
                        // the first of them, and the maps hold every event after that.
                        let cut = built.next_cut.take().unwrap_or(0).min(table.len);
                        built.base_len = cut;
                        built.base = Arc::new(table);
                        built.refill(members, cut);
                    }
                    Ok(table) => {
                        built.base_len = table.len;
                        built.base = Arc::new(table);
                        built.tail_events = built.newer.values().map(Vec::len).sum();
                        let old =
                            std::mem::replace(&mut built.tail, std::mem::take(&mut built.newer));
                        // Freeing the old map's vectors is left to another thread too.
                        std::thread::spawn(move || drop(old));
                    }
                    // The build cannot fail short of a bug; the maps still cover the
                    // events, so the index stays right, only larger.
                    Err(_) => {
                        built.next_cut = None;
                        let newer = std::mem::take(&mut built.newer);
                        built.tail_events += newer.values().map(Vec::len).sum::<usize>();
                        fold_into(&mut built.tail, newer);
                    }
                }
            }
            return;
        }
        note(&mut built.tail, members, from);
        built.tail_events += len - from;
        if built.tail_events > (built.base_len / TAIL_SHARE).max(MIN_TAIL) {
            // The members so far, shared with the builder (an append then copies only the
            // last chunk).
            let snapshot = members.clone();
            built.next = Some(std::thread::spawn(move || table(&snapshot, len)));
            // The next map will hold about as many members as this one: room for them
            // now, so it is not rehashed while it grows (a rehash of a few hundred thousand
            // members is milliseconds on one write).
            built.newer = HashMap::with_capacity(built.tail.len());
        }
    }

    /// Notes that the events from `start` on were put in another order (a late event
    /// sorted in).
    pub(crate) fn reordered(&mut self, members: &ChunkedVec<RowId>, start: usize) {
        let Some(built) = self.0.get_mut() else {
            return;
        };
        // The table is read up to the first moved event and the maps are made again from
        // there, without starting a table (a late write would otherwise start one each
        // time). A table being built goes on; it will be read up to the first event moved
        // since it began.
        built.base_len = built.base_len.min(start);
        let base_len = built.base_len;
        if !built.moved.is_empty() {
            // Their events from `start` on moved: found again from the events.
            for mine in built.moved.values_mut() {
                mine.truncate(mine.partition_point(|&p| (p as usize) < start));
            }
            for (k, m) in members.range(start..members.len()).enumerate() {
                if let Some(mine) = built.moved.get_mut(&m) {
                    mine.push((start + k) as u32);
                }
            }
        }
        if built.next.is_some() {
            built.next_cut = Some(built.next_cut.map_or(start, |c| c.min(start)));
        }
        built.refill(members, base_len);
    }

    /// Notes that the events of the members in `events` now belong to them, each member's
    /// complete and ascending (a regroup of profiles moved them between members); members
    /// that lost every event are given with none.
    pub(crate) fn moved(&mut self, members: &ChunkedVec<RowId>, events: Vec<(RowId, Vec<u32>)>) {
        self.built(members);
        let built = self.0.get_mut().expect("built above");
        for (m, mine) in events {
            built.moved.insert(m, mine);
        }
    }

    /// Builds the index now, if it is not built yet.
    pub(crate) fn build(&self, members: &ChunkedVec<RowId>) {
        self.built(members);
    }

    /// Whether a new table is being built.
    #[cfg(test)]
    fn building(&self) -> bool {
        self.0.get().is_some_and(|b| b.next.is_some())
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.get().map_or(0, |b| {
            let newer: usize = b.newer.values().map(Vec::len).sum();
            let moved: usize = b.moved.values().map(|v| v.len() * 4 + 32).sum();
            (b.base.offsets.len() + b.base.positions.len()) * 4
                + (b.tail_events + newer) * 8
                + moved
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(index: &MemberIndex, members: &ChunkedVec<RowId>, m: RowId) -> Vec<usize> {
        let mut out = Vec::new();
        index.each(members, m, 0..members.len(), |i| out.push(i));
        out
    }

    /// Each of `which`'s events through the index equal those of the plain list `model`.
    fn check(index: &MemberIndex, members: &ChunkedVec<RowId>, model: &[RowId], which: &[RowId]) {
        for &m in which {
            let expected: Vec<usize> = (0..model.len()).filter(|&i| model[i] == m).collect();
            assert_eq!(events_of(index, members, m), expected, "member {m}");
        }
    }

    /// Appends `new` to the events and the list; whether a table built aside was swapped
    /// in.
    fn append(
        index: &mut MemberIndex,
        members: &mut ChunkedVec<RowId>,
        model: &mut Vec<RowId>,
        new: impl IntoIterator<Item = RowId>,
    ) -> bool {
        let from = members.len();
        for m in new {
            members.push(m);
            model.push(m);
        }
        let building = index.building();
        index.appended(members, from);
        building && !index.building()
    }

    /// Appends and folds past several tables: every member's events stay those of a
    /// plain list, while a table is being built and after it is swapped in, and in a
    /// snapshot taken while one is being built.
    #[test]
    fn events_stay_right_while_tables_are_built_aside() {
        let mut members: ChunkedVec<RowId> = ChunkedVec::default();
        let mut model: Vec<RowId> = Vec::new();
        let mut index = MemberIndex::default();
        let member_of = |i: usize| ((i * 7919) % 613) as RowId;
        let which = [0, 1, 17, 612, 700];
        let mut swaps = 0;
        let mut snapshot_checked = false;
        for batch in 0..400 {
            let from = members.len();
            let new = (0..(1 + batch % 97)).map(|k| member_of(from + k));
            swaps += usize::from(append(&mut index, &mut members, &mut model, new));
            if index.building() && !snapshot_checked {
                let snapshot = index.clone();
                check(&snapshot, &members, &model, &which);
                snapshot_checked = true;
            }
            check(&index, &members, &model, &which);
            if index.building() {
                // give the builder time, so that later appends find it done
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert!(swaps >= 1 && snapshot_checked, "swaps {swaps}");
    }

    /// Late events sorting in before the table's end, at random, between appends that
    /// build tables aside: every member's events stay those of a plain list, and the
    /// table is cut, not built again on the write.
    #[test]
    fn late_events_cut_the_table_instead_of_forgetting_it() {
        let mut members: ChunkedVec<RowId> = ChunkedVec::default();
        let mut model: Vec<RowId> = Vec::new();
        let mut index = MemberIndex::default();
        let mut seed = 11u64;
        let mut next = |below: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 33) as usize) % below
        };
        let which = [0, 1, 17, 300, 612];
        let (mut cuts_while_building, mut swaps) = (0, 0);
        for batch in 0..600 {
            let new: Vec<RowId> = (0..(1 + batch % 53)).map(|_| next(613) as RowId).collect();
            swaps += usize::from(append(&mut index, &mut members, &mut model, new));
            if batch % 3 == 0 && !model.is_empty() {
                // a late event: one event sorts in at `at`, the ones after it move on
                let at = model.len() - 1 - next(model.len().min(5000));
                let m = next(613) as RowId;
                model.insert(at, m);
                members.push(0);
                members.copy_from_slice(at, &model[at..]);
                cuts_while_building += usize::from(index.building());
                index.reordered(&members, at);
            }
            check(&index, &members, &model, &which);
            if index.building() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let base = index.0.get().map(|b| b.base.len).unwrap_or(0);
        assert!(
            base > 0 && swaps >= 1,
            "swaps {swaps}, table of {base} events"
        );
        assert!(
            cuts_while_building >= 1,
            "no late event came while a table was built"
        );
    }

    #[test]
    fn each_member_gets_its_events_in_order_through_appends_and_reorders() {
        let mut members: ChunkedVec<RowId> = ChunkedVec::default();
        members.extend_from_slice(&[3, 1, 3, 0, 1]);
        let mut index = MemberIndex::default();
        assert_eq!(events_of(&index, &members, 3), [0, 2]);
        assert_eq!(events_of(&index, &members, 7), Vec::<usize>::new());
        members.extend_from_slice(&[7, 3]);
        index.appended(&members, 5);
        assert_eq!(events_of(&index, &members, 3), [0, 2, 6]);
        assert_eq!(events_of(&index, &members, 7), [5]);
        let mut in_range = Vec::new();
        index.each(&members, 3, 1..6, |i| in_range.push(i));
        assert_eq!(in_range, [2]);
        // events 5 and 6 swap places: only the tail is renumbered
        members.copy_from_slice(5, &[3, 7]);
        index.reordered(&members, 5);
        assert_eq!(events_of(&index, &members, 3), [0, 2, 5]);
        assert_eq!(events_of(&index, &members, 7), [6]);
        // a reorder inside the table cuts it there: the events after the cut are read
        // from the maps
        members.copy_from_slice(0, &[1, 3]);
        index.reordered(&members, 0);
        assert_eq!(events_of(&index, &members, 1), [0, 4]);
        assert_eq!(events_of(&index, &members, 3), [1, 2, 5]);
    }
}
