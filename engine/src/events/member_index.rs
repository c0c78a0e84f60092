//! Each member's events of one type, in time order: the events an aggregate over a few
//! members reads (a trait or a group kept current after an `EVENT.ADD`) without walking the
//! whole window of the type.
//!
//! Built from the events the first time it is asked for: a compressed table of each
//! member's event indexes (`base`, shared by snapshots), then kept by appends in time order
//! in a small map beside it (`tail`), folded into a new table when the map grows past a
//! share of the events. A late event that sorts in before the table's end forgets it (the
//! next ask builds it again); one that sorts in among the map's events renumbers only them.

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
#[derive(Clone, Debug, Default)]
struct Built {
    base: Arc<Table>,
    /// Events appended after the table, per member, ascending.
    tail: HashMap<RowId, Vec<u32>>,
    tail_events: usize,
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

impl MemberIndex {
    fn built(&self, members: &ChunkedVec<RowId>) -> &Built {
        self.0.get_or_init(|| Built {
            base: Arc::new(table(members, members.len())),
            tail: HashMap::new(),
            tail_events: 0,
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
        let base = &built.base;
        let m = member as usize;
        if m + 1 < base.offsets.len() && range.start < base.len {
            let mine = &base.positions[base.offsets[m] as usize..base.offsets[m + 1] as usize];
            let from = mine.partition_point(|&p| (p as usize) < range.start);
            for &p in &mine[from..] {
                if p as usize >= range.end {
                    return;
                }
                f(p as usize);
            }
        }
        if let Some(tail) = built.tail.get(&member) {
            let from = tail.partition_point(|&p| (p as usize) < range.start);
            for &p in &tail[from..] {
                if p as usize >= range.end {
                    return;
                }
                f(p as usize);
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
        if built.tail_events + (len - from) > (built.base.len / TAIL_SHARE).max(MIN_TAIL) {
            *built = Built {
                base: Arc::new(table(members, len)),
                tail: HashMap::new(),
                tail_events: 0,
            };
            return;
        }
        for (k, m) in members.range(from..len).enumerate() {
            built.tail.entry(m).or_default().push((from + k) as u32);
        }
        built.tail_events += len - from;
    }

    /// Notes that the events from `start` on were put in another order (a late event
    /// sorted in).
    pub(crate) fn reordered(&mut self, members: &ChunkedVec<RowId>, start: usize) {
        let Some(built) = self.0.get_mut() else {
            return;
        };
        if start < built.base.len {
            self.0 = OnceLock::new();
            return;
        }
        let base_len = built.base.len;
        built.tail.clear();
        built.tail_events = 0;
        self.appended(members, base_len);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.get().map_or(0, |b| {
            (b.base.offsets.len() + b.base.positions.len()) * 4 + b.tail_events * 8
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
        // a reorder inside the table forgets it; it is built again when asked
        members.copy_from_slice(0, &[1, 3]);
        index.reordered(&members, 0);
        assert_eq!(events_of(&index, &members, 1), [0, 4]);
        assert_eq!(events_of(&index, &members, 3), [1, 2, 5]);
    }
}
