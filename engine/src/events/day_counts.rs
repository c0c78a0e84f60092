//! Each member's number of events of one type over whole UTC days, counted from the day
//! bitmaps and their repeat levels one 65,536-member chunk at a time (so the counters stay
//! in cache), plus what they leave out member by member: the events of the window's edge
//! days that it cuts, and the counts past the levels (`repeats.rs`).

use roaring::RoaringBitmap;

use super::lifetime::LifetimeCounts;
use super::{DaySplit, EventPartition};
use crate::bitmap::{Bitmap, CHUNK_BITS, Chunk, ChunkRef, Chunks, WORDS, Words};
use crate::members::RowId;
use crate::segment::Frequency;

impl EventPartition {
    /// The members whose number of events in the window `split` passes `frequency`, or
    /// `None` when a count past 254 would be needed (the counters saturate there; the
    /// caller scans instead).
    pub(crate) fn members_by_day_counts(
        &self,
        split: &DaySplit,
        frequency: Frequency,
        within: Option<&Chunks>,
    ) -> Option<RoaringBitmap> {
        let band = frequency.counter_band()?;
        if band.is_empty() {
            return Some(RoaringBitmap::new());
        }
        let (lo, span) = (*band.start(), band.end() - band.start());
        // A few members over all time (the group refresh after a write): each member's
        // count of the type, one lookup.
        let all_time = split.days.start == i64::MIN && split.edges.iter().all(|e| e.is_empty());
        if let Some(few) = within.filter(|w| all_time && w.len() <= FEW_MEMBERS) {
            let counts = self.lifetime.get(&self.members);
            let passing = few
                .to_roaring()
                .into_iter()
                .filter(|&m| LifetimeCounts::of(counts, m).wrapping_sub(lo) <= span);
            return Some(RoaringBitmap::from_sorted_iter(passing).expect("ascending"));
        }
        let window: Vec<(i64, &Bitmap)> = self
            .days
            .range(split.days.clone())
            .map(|(&day, members)| (day, members))
            .collect();
        // A universe of a few members (incremental group maintenance after a write, the
        // pieces of a clock move): each one's count from lookups in the day bitmaps and
        // levels, without their chunk forms (the day a write appended to has just lost
        // its), and its events on the edge days counted in one pass over them.
        if let Some(few) = within.filter(|w| w.len() <= FEW_MEMBERS) {
            let few = few.rows();
            let edges = split
                .edges
                .iter()
                .flat_map(|r| self.members.range(r.clone()));
            let at_edges = super::partition::counts_among(edges, &few);
            let passing = few.iter().zip(at_edges).filter(|&(&m, at_edges)| {
                let on_days: u32 = window
                    .iter()
                    .map(|&(day, members)| self.repeats.count(day, m, members.contains(m)))
                    .sum();
                let n = (on_days + at_edges).min(255) as u8;
                n.wrapping_sub(lo) <= span
            });
            return Some(passing.map(|(&m, _)| m).collect());
        }
        // Each day adds its bitmap and its levels; what they leave out is added member by
        // member: the events of the edge days the window cuts (one each) and the counts
        // past the levels, as `(member, events)` ascending.
        let days: Vec<&Bitmap> = window
            .iter()
            .flat_map(|&(day, members)| std::iter::once(members).chain(self.repeats.levels(day)))
            .collect();
        let mut extra: Vec<(RowId, u32)> = split
            .edges
            .iter()
            .flat_map(|r| self.members.range(r.clone()))
            .map(|m| (m, 1))
            .chain(self.repeats.beyond_levels(split.days.clone()))
            .collect();
        extra.sort_unstable();
        let inputs: Vec<&Chunks> = days.iter().map(|b| b.chunks()).collect();
        let chunks = inputs
            .iter()
            .map(|c| c.count())
            .chain(extra.last().map(|&(m, _)| (m / CHUNK_BITS) as usize + 1))
            .max()
            .unwrap_or(0);
        let mut counts = vec![0u8; CHUNK_BITS as usize];
        let mut words: Box<Words> = Box::new([0; WORDS]);
        let mut out = Vec::with_capacity(chunks);
        let mut extra = extra.as_slice();
        for k in 0..chunks {
            let universe = within.map(|w| w.get(k));
            if universe.is_some_and(|u| u.len() == 0) {
                let here = extra.partition_point(|&(m, _)| (m / CHUNK_BITS) as usize <= k);
                extra = &extra[here..];
                out.push(Chunk::Empty);
                continue;
            }
            // A chunk with few members of the universe (the candidates of a clock move,
            // spread over every chunk): each one's count from lookups in the day chunks,
            // not a pass over the chunk's 65,536 counters.
            let day_chunks: Vec<ChunkRef<'_>> = match universe {
                Some(u) if u.len() <= FEW_PER_CHUNK => inputs
                    .iter()
                    .map(|c| c.get(k))
                    .filter(|c| !matches!(c, ChunkRef::Empty))
                    .collect(),
                _ => Vec::new(),
            };
            // Lookups cost about a binary search per member and day; counting, a pass over
            // the day chunks and the chunk's counters.
            let lookups = |u: &ChunkRef<'_>| u64::from(u.len()) * day_chunks.len() as u64 * 8;
            let counting = day_chunks.iter().map(|c| u64::from(c.len())).sum::<u64>() + 16_384;
            if let Some(universe) =
                universe.filter(|u| u.len() <= FEW_PER_CHUNK && lookups(u) < counting)
            {
                let here = extra.partition_point(|&(m, _)| (m / CHUNK_BITS) as usize <= k);
                let (extra_here, rest) = extra.split_at(here);
                extra = rest;
                let base = k as u32 * CHUNK_BITS;
                let passing: Vec<u16> = universe
                    .members()
                    .into_iter()
                    .filter(|&low| {
                        let m = base + u32::from(low);
                        let on_days = day_chunks.iter().filter(|c| c.contains(low)).count();
                        let at = extra_here.partition_point(|&(r, _)| r < m);
                        let at_edges: u32 = extra_here[at..]
                            .iter()
                            .take_while(|&&(r, _)| r == m)
                            .map(|&(_, n)| n)
                            .sum();
                        let n = (on_days as u32 + at_edges).min(255) as u8;
                        n.wrapping_sub(lo) <= span
                    })
                    .collect();
                out.push(Chunk::from_sorted(&passing));
                continue;
            }
            let mut touched = false;
            for input in &inputs {
                let chunk = input.get(k);
                touched |= add_chunk(&mut counts, chunk);
            }
            let here = extra.partition_point(|&(m, _)| (m / CHUNK_BITS) as usize <= k);
            for &(m, events) in &extra[..here] {
                let n = &mut counts[(m % CHUNK_BITS) as usize];
                *n = n.saturating_add(events.min(255) as u8);
            }
            touched |= here > 0;
            extra = &extra[here..];
            if !touched {
                out.push(Chunk::Empty);
                continue;
            }
            // Counters become 0 / 1 bytes in place (one vectorised pass), then each eight
            // bytes become a byte of bits by a multiplication that moves byte i's low bit to
            // bit 56 + i.
            for n in counts.iter_mut() {
                *n = u8::from(n.wrapping_sub(lo) <= span);
            }
            let mut len = 0;
            for (w, sixty_four) in words.iter_mut().zip(counts.chunks_exact(64)) {
                let mut bits = 0u64;
                for (j, eight) in sixty_four.chunks_exact(8).enumerate() {
                    let x = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
                    bits |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * j);
                }
                *w = bits;
                len += bits.count_ones();
            }
            out.push(Chunk::from_words(&words, len));
            counts.fill(0);
        }
        Some(Chunks::from_vec(out).to_roaring())
    }
}

/// A universe of at most this many members is counted member by member.
pub(crate) const FEW_MEMBERS: u64 = 256;
/// A chunk with at most this many members of the universe is counted member by member.
const FEW_PER_CHUNK: u32 = 1024;

/// Adds one to the counter of every member of `chunk`; false if it has none.
fn add_chunk(counts: &mut [u8], chunk: ChunkRef<'_>) -> bool {
    match chunk {
        ChunkRef::Empty => return false,
        ChunkRef::Array(members) => {
            for &m in members {
                let n = &mut counts[usize::from(m)];
                *n = n.saturating_add(1);
            }
        }
        ChunkRef::Bits(words, _) => {
            for (&w, sixty_four) in words.iter().zip(counts.chunks_exact_mut(64)) {
                if w != 0 {
                    for (j, n) in sixty_four.iter_mut().enumerate() {
                        *n = n.saturating_add((w >> j & 1) as u8);
                    }
                }
            }
        }
        ChunkRef::Full => {
            for n in counts.iter_mut() {
                *n = n.saturating_add(1);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::value::DAY_MICROS;

    /// Members whose number of events in `[lo, hi)` passes `frequency`, event by event.
    fn naive(events: &[(RowId, i64)], lo: i64, hi: i64, frequency: Frequency) -> RoaringBitmap {
        let mut counts = std::collections::BTreeMap::new();
        for &(m, _) in events.iter().filter(|e| lo <= e.1 && e.1 < hi) {
            *counts.entry(m).or_insert(0u64) += 1;
        }
        counts
            .into_iter()
            .filter(|&(_, c)| frequency.accepts(c))
            .map(|(m, _)| m)
            .collect()
    }

    /// The window split as the plan splits it: whole days and the events of the cut edges.
    fn by_days(part: &EventPartition, lo: i64, hi: i64, frequency: Frequency) -> RoaringBitmap {
        let Some(split) = part.day_split(lo, hi) else {
            return RoaringBitmap::new();
        };
        part.members_by_day_counts(&split, frequency, None)
            .expect("a small threshold")
    }

    fn frequency() -> impl Strategy<Value = Frequency> {
        (0..3u8, 0..6u64).prop_map(|(kind, n)| match kind {
            0 => Frequency::AtLeast(n),
            1 => Frequency::AtMost(n),
            _ => Frequency::Exactly(n),
        })
    }

    proptest! {
        /// Events over a few days, members in three chunks (some dense, so bitset chunks
        /// too; or a few members with many events a day, past the levels), appended in
        /// batches that revisit days; every window and frequency counted
        /// from the day bitmaps equals counting the events; the repeat levels kept by the
        /// appends equal those rebuilt from the events.
        #[test]
        fn day_counts_equal_counting_events(
            batches in prop::collection::vec(
                prop::collection::vec((0..3u32, 0..6_000u32, 0..5 * DAY_MICROS), 1..400), 1..5),
            dense in prop::bool::ANY,
            spread in prop_oneof![Just(3_000u32), Just(25)],
            windows in prop::collection::vec((0..6 * DAY_MICROS, 0..6 * DAY_MICROS, frequency()), 1..8),
        ) {
            let mut part = EventPartition::default();
            let mut all = Vec::new();
            for (b, batch) in batches.iter().enumerate() {
                let mut events: Vec<(RowId, i64)> = batch
                    .iter()
                    .map(|&(chunk, low, t)| (chunk * CHUNK_BITS + low % spread, t))
                    .collect();
                if dense && b == 0 {
                    // a bitset chunk: 5,000 members of chunk 1 on day 2, some of them twice
                    events.extend((0..5_000).map(|m| (CHUNK_BITS + m, 2 * DAY_MICROS + 7)));
                    events.extend((0..300).map(|m| (CHUNK_BITS + m * 3, 2 * DAY_MICROS + 9)));
                }
                part.append_events(&events);
                all.extend(events);
            }
            for (a, b, frequency) in windows {
                let (lo, hi) = (a.min(b), a.max(b));
                if part.day_split(lo, hi).is_none() {
                    continue;
                }
                prop_assert_eq!(by_days(&part, lo, hi, frequency), naive(&all, lo, hi, frequency));
            }
            let kept = part.repeats.clone();
            part.rebuild_repeats();
            prop_assert_eq!(kept, part.repeats.clone());
        }
    }

    #[test]
    fn thresholds_past_the_counters_are_left_to_a_scan() {
        let part = EventPartition::default();
        assert!(
            part.members_by_day_counts(&part.all_days(), Frequency::AtLeast(255), None)
                .is_none()
        );
        assert!(
            part.members_by_day_counts(&part.all_days(), Frequency::AtLeast(254), None)
                .is_some()
        );
    }
}
