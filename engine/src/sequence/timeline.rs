//! Each candidate member's events of the types a sequence or funnel reads, in time order,
//! marked with the roles (a sequence's two parts, a funnel's steps) each event plays.
//!
//! Many candidates: one pass per event type over the events of its time range, keeping
//! those of candidates (a dense bit per member) and bucketing them by chunk of 65,536
//! members; then per chunk a counting sort by member puts each member's events together
//! (each type's in time order; several types are merged by time per member). A few
//! candidates (a write's member, a clock move's, a probe's): each one's events from the
//! partition's index of them.

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::events::{BoundFilter, EventPartition};
use crate::members::RowId;

/// One event of a member's timeline (24 bytes: many are moved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Its time.
    pub(crate) ts: i64,
    /// With keys read ([`KeyOf`]): its key (a sequence's `MATCHING` value), meaningful when
    /// `keyed`; else its index in its track's partition.
    value: u64,
    /// The roles it plays: bit `k` for role `k` (its filter passes and its time is in the
    /// role's range).
    pub(crate) roles: u32,
    /// Its member's low bits while gathered (its place in its chunk of members).
    low: u16,
    /// The track (event type) it comes from.
    pub(crate) track: u8,
    /// It has a key (not NULL).
    keyed: bool,
}

/// Reads an event's key while the events are gathered: `(track, event)` to the key, `None`
/// for NULL.
pub(crate) type KeyOf<'k> = &'k (dyn Fn(u8, usize) -> Option<u64> + Sync);

impl Mark {
    fn new(ts: i64, roles: u32, track: usize, event: usize, key: Option<KeyOf<'_>>) -> Mark {
        let track = track as u8;
        let (value, keyed) = match key {
            Some(k) => k(track, event).map_or((0, false), |v| (v, true)),
            None => (event as u64, false),
        };
        Mark {
            ts,
            value,
            roles,
            low: 0,
            track,
            keyed,
        }
    }

    /// The key, `None` for NULL (read when gathered with keys).
    pub(crate) fn key(&self) -> Option<u64> {
        self.keyed.then_some(self.value)
    }

    /// The event's index in its track's partition (gathered without keys).
    pub(crate) fn event(&self) -> usize {
        self.value as usize
    }
}

/// A role an event of a track can play: events passing `filter` in `[lo, hi)`.
pub(crate) struct Role<'a> {
    /// The role's bit in [`Mark::roles`].
    pub(crate) bit: u32,
    pub(crate) filter: Option<BoundFilter<'a>>,
    pub(crate) lo: i64,
    pub(crate) hi: i64,
}

/// An event type read for some roles.
pub(crate) struct Track<'a> {
    pub(crate) part: &'a EventPartition,
    pub(crate) roles: Vec<Role<'a>>,
}

impl Track<'_> {
    /// The partition's events any role may take.
    fn range(&self) -> std::ops::Range<usize> {
        let lo = self.roles.iter().map(|r| r.lo).min().unwrap_or(0);
        let hi = self.roles.iter().map(|r| r.hi).max().unwrap_or(0);
        if lo >= hi {
            return 0..0;
        }
        self.part.slice(lo, hi)
    }

    /// The roles event `i` plays, one event tested.
    fn roles_of(&self, i: usize, scratch: &mut Vec<Vec<bool>>) -> u32 {
        let ts = self.part.ts[i];
        let mut roles = 0;
        for role in &self.roles {
            if !(role.lo..role.hi).contains(&ts) {
                continue;
            }
            let mut pass = [true];
            if let Some(filter) = &role.filter {
                filter.fill(i, &mut pass, scratch);
            }
            if pass[0] {
                roles |= role.bit;
            }
        }
        roles
    }
}

/// Up to this many candidates, each one's events are read from the partitions' indexes of
/// them; more are gathered by passes over the events.
pub(crate) const INDEXED_MEMBERS: u64 = 256;

/// Members per chunk of the gathering pass (16,384): a chunk's counts and its sorted
/// events stay in the L2 cache.
const CHUNK_BITS: u32 = 14;

/// Events filtered per block.
const BLOCK: usize = 4096;

/// Below this many events to read, a gathering pass stays on one thread.
const PARALLEL_EVENTS: usize = 1 << 18;

/// Calls `f(state, member, timeline)` for each member of `candidates` (ascending) with at
/// least one event playing a role, its events in time order (events of equal time of one
/// type in the order written), each with its key if `key` is given. Over many events the
/// work is split across up to `threads` threads, each with a state of its own from `init`;
/// the states come back in member order (each holds a run of members). The deadline is
/// checked between chunks of members.
#[allow(clippy::too_many_arguments)]
pub(crate) fn each_member<S: Send>(
    tracks: &[Track<'_>],
    candidates: &RoaringBitmap,
    key: Option<KeyOf<'_>>,
    threads: usize,
    deadline: Option<std::time::Instant>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, RowId, &[Mark]) -> Result<()> + Sync,
) -> Result<Vec<S>> {
    let mut state = init();
    if candidates.len() <= INDEXED_MEMBERS {
        let mut marks = Vec::new();
        let mut scratch = Vec::new();
        for m in candidates {
            marks.clear();
            for (k, track) in tracks.iter().enumerate() {
                let part = track.part;
                part.by_member.each(&part.members, m, track.range(), |i| {
                    let roles = track.roles_of(i, &mut scratch);
                    if roles != 0 {
                        marks.push(Mark::new(part.ts[i], roles, k, i, key));
                    }
                });
            }
            if !marks.is_empty() {
                if tracks.len() > 1 {
                    marks.sort_by_key(|m| m.ts);
                }
                f(&mut state, m, &marks)?;
            }
        }
        return Ok(vec![state]);
    }
    let last = candidates.max().unwrap_or(0);
    let chunks = (last >> CHUNK_BITS) as usize + 1;
    let wanted = bits(candidates);
    let events: usize = tracks.iter().map(|t| t.range().len()).sum();
    let parts = if events < PARALLEL_EVENTS {
        1
    } else {
        threads.clamp(1, chunks)
    };
    // Part p gathers the p-th share of each track's events into buckets of its own, one
    // per chunk of members, with room for a share of the events read (only what is
    // written is touched).
    let room = events / parts / chunks + events / (4 * parts * chunks) + 64;
    let gather_part = |p: usize| -> Result<Vec<Vec<Mark>>> {
        let mut buckets: Vec<Vec<Mark>> = (0..chunks).map(|_| Vec::with_capacity(room)).collect();
        for (k, track) in tracks.iter().enumerate() {
            let range = track.range();
            let share = range.len().div_ceil(parts);
            let from = (range.start + p * share).min(range.end);
            let to = (from + share).min(range.end);
            gather(track, k, from..to, key, &wanted, &mut buckets);
            crate::plan::check_deadline(deadline)?;
        }
        Ok(buckets)
    };
    let gathered: Vec<Vec<Vec<Mark>>> = split(parts, gather_part)?;
    // Then part p sorts and walks a run of chunks, reading every part's bucket of each.
    let per = chunks.div_ceil(parts);
    let walk_part = |p: usize| -> Result<S> {
        let mut state = init();
        let mut counts = vec![0u32; 1 << CHUNK_BITS];
        let mut sorted: Vec<Mark> = Vec::new();
        for c in (p * per)..((p + 1) * per).min(chunks) {
            let total: usize = gathered.iter().map(|g| g[c].len()).sum();
            if total == 0 {
                continue;
            }
            crate::plan::check_deadline(deadline)?;
            // A counting sort by member, stable: each track's marks stay in time order.
            counts.fill(0);
            for mark in gathered.iter().flat_map(|g| &g[c]) {
                counts[mark.low as usize] += 1;
            }
            let mut at = 0u32;
            for n in counts.iter_mut() {
                let here = *n;
                *n = at;
                at += here;
            }
            sorted.clear();
            sorted.resize(total, Mark::default());
            for mark in gathered.iter().flat_map(|g| &g[c]) {
                let slot = &mut counts[mark.low as usize];
                sorted[*slot as usize] = *mark;
                *slot += 1;
            }
            // `counts[low]` is now the end of member `low`'s marks.
            let mut start = 0usize;
            for (low, &end) in counts.iter().enumerate() {
                let end = end as usize;
                if end == start {
                    continue;
                }
                let marks = &mut sorted[start..end];
                if tracks.len() > 1 {
                    marks.sort_by_key(|m| m.ts);
                }
                f(&mut state, ((c as u32) << CHUNK_BITS) | low as u32, marks)?;
                start = end;
            }
        }
        Ok(state)
    };
    split(parts, walk_part)
}

/// `work(p)` for each part `p` of `parts`, part 0 on this thread and the others on their
/// own; the results in part order.
fn split<T: Send>(parts: usize, work: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    if parts <= 1 {
        return Ok(vec![work(0)?]);
    }
    std::thread::scope(|scope| {
        let work = &work;
        let others: Vec<_> = (1..parts).map(|p| scope.spawn(move || work(p))).collect();
        let mut out = vec![work(0)?];
        for other in others {
            out.push(other.join().map_err(|_| {
                crate::error::Error::Internal("a gathering thread panicked".into())
            })??);
        }
        Ok(out)
    })
}

/// A dense bit per member of `members`.
fn bits(members: &RoaringBitmap) -> Vec<u64> {
    let words = members.max().map_or(0, |m| m as usize / 64 + 1);
    let mut out = vec![0u64; words];
    for m in members {
        out[m as usize / 64] |= 1 << (m % 64);
    }
    out
}

/// The members of `wanted` with an event of `track` playing a role: one pass over the
/// track's events, a bit per member (no event kept).
pub(crate) fn members_with(track: &Track<'_>, wanted: &RoaringBitmap) -> RoaringBitmap {
    let want = bits(wanted);
    let mut found = vec![0u64; want.len()];
    each_event(track, track.range(), &want, |m, _, _, _| {
        found[m as usize / 64] |= 1 << (m % 64)
    });
    let bytes: Vec<u8> = found.iter().flat_map(|w| w.to_le_bytes()).collect();
    RoaringBitmap::from_lsb0_bytes(0, &bytes)
}

/// One pass over `track`'s events `range`: those of wanted members playing a role, into
/// the bucket of their chunk.
fn gather(
    track: &Track<'_>,
    k: usize,
    range: std::ops::Range<usize>,
    key: Option<KeyOf<'_>>,
    wanted: &[u64],
    buckets: &mut [Vec<Mark>],
) {
    each_event(track, range, wanted, |m, ts, i, roles| {
        let mut mark = Mark::new(ts, roles, k, i, key);
        mark.low = (m & ((1 << CHUNK_BITS) - 1)) as u16;
        buckets[(m >> CHUNK_BITS) as usize].push(mark)
    });
}

/// Calls `f(member, ts, event, roles)` for each event of `track` among its events `range`
/// whose member has its bit in `wanted` and which plays a role: the roles' filters a block
/// at a time.
fn each_event(
    track: &Track<'_>,
    range: std::ops::Range<usize>,
    wanted: &[u64],
    mut f: impl FnMut(RowId, i64, usize, u32),
) {
    let part = track.part;
    let mut scratch = Vec::new();
    let mut passes: Vec<Vec<bool>> = track.roles.iter().map(|_| vec![true; BLOCK]).collect();
    let mut start = range.start;
    while start < range.end {
        let end = (start + BLOCK).min(range.end);
        let n = end - start;
        for (role, pass) in track.roles.iter().zip(&mut passes) {
            if let Some(filter) = &role.filter {
                filter.fill(start, &mut pass[..n], &mut scratch);
            }
        }
        let mut i = start;
        for (members, times) in part
            .members
            .slices(start..end)
            .zip(part.ts.slices(start..end))
        {
            for (&m, &ts) in members.iter().zip(times) {
                let wanted = wanted
                    .get(m as usize / 64)
                    .is_some_and(|w| w & (1 << (m % 64)) != 0);
                if wanted {
                    let mut roles = 0;
                    for (role, pass) in track.roles.iter().zip(&passes) {
                        if pass[i - start] && role.lo <= ts && ts < role.hi {
                            roles |= role.bit;
                        }
                    }
                    if roles != 0 {
                        f(m, ts, i, roles);
                    }
                }
                i += 1;
            }
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type Seen = Vec<(RowId, Vec<(i64, u32, u8, usize)>)>;

    fn walk(tracks: &[Track<'_>], candidates: &RoaringBitmap, threads: usize) -> Seen {
        let runs = each_member(
            tracks,
            candidates,
            None,
            threads,
            None,
            Vec::new,
            |seen: &mut Seen, m, marks| {
                seen.push((
                    m,
                    marks
                        .iter()
                        .map(|k| (k.ts, k.roles, k.track, k.event()))
                        .collect(),
                ));
                Ok(())
            },
        )
        .unwrap();
        runs.into_iter().flatten().collect()
    }

    /// The gathering pass split across threads, on one thread, and member by member
    /// through the partitions' indexes give every member the same timeline (equal times
    /// included).
    #[test]
    fn every_way_of_reading_gives_the_same_timelines() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut events = |n: usize| -> Vec<(RowId, i64)> {
            (0..n)
                .map(|_| (rng.random_range(0..40_000), rng.random_range(0..5_000)))
                .collect()
        };
        let a = EventPartition::of_events(&events(200_000));
        let b = EventPartition::of_events(&events(150_000));
        let role = |bit, lo, hi| Role {
            bit,
            filter: None,
            lo,
            hi,
        };
        let tracks = [
            Track {
                part: &a,
                roles: vec![role(1, 100, 4_000), role(4, 0, 5_000)],
            },
            Track {
                part: &b,
                roles: vec![role(2, 50, 4_500)],
            },
        ];
        let everyone: RoaringBitmap = (0..40_000).collect();
        let one = walk(&tracks, &everyone, 1);
        assert!(one.len() > 30_000);
        assert_eq!(walk(&tracks, &everyone, 2), one);
        assert_eq!(walk(&tracks, &everyone, 3), one);
        let few: RoaringBitmap = (0..40_000).step_by(400).collect();
        let expected: Seen = one.into_iter().filter(|(m, _)| few.contains(*m)).collect();
        assert_eq!(walk(&tracks, &few, 2), expected);
    }
}
