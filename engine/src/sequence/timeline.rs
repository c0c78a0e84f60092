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

/// One event of a member's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Its time.
    pub(crate) ts: i64,
    /// The roles it plays: bit `k` for role `k` (its filter passes and its time is in the
    /// role's range).
    pub(crate) roles: u32,
    /// The track (event type) it comes from.
    pub(crate) track: u32,
    /// Its index in the track's partition.
    pub(crate) event: u32,
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
const INDEXED_MEMBERS: u64 = 256;

/// Members per chunk of the gathering pass: a chunk's counts stay in cache.
const CHUNK_BITS: u32 = 16;

/// Events filtered per block.
const BLOCK: usize = 4096;

/// Calls `f(member, timeline)` for each member of `candidates` (ascending) with at least
/// one event playing a role, its events in time order (events of equal time in track
/// order). `check` is called between chunks of members (a deadline).
pub(crate) fn each_member(
    tracks: &[Track<'_>],
    candidates: &RoaringBitmap,
    mut check: impl FnMut() -> Result<()>,
    mut f: impl FnMut(RowId, &[Mark]) -> Result<()>,
) -> Result<()> {
    if candidates.is_empty() {
        return Ok(());
    }
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
                        marks.push(Mark {
                            ts: part.ts[i],
                            roles,
                            track: k as u32,
                            event: i as u32,
                        });
                    }
                });
            }
            if !marks.is_empty() {
                if tracks.len() > 1 {
                    marks.sort_by_key(|m| m.ts);
                }
                f(m, &marks)?;
            }
        }
        return Ok(());
    }
    let last = candidates.max().unwrap_or(0);
    let chunks = (last >> CHUNK_BITS) as usize + 1;
    let mut wanted = vec![0u64; (last as usize / 64) + 1];
    for m in candidates {
        wanted[m as usize / 64] |= 1 << (m % 64);
    }
    // (low bits of the member, mark) per chunk of members.
    let mut buckets: Vec<Vec<(u16, Mark)>> = (0..chunks).map(|_| Vec::new()).collect();
    let mut scratch = Vec::new();
    for (k, track) in tracks.iter().enumerate() {
        gather(track, k as u32, &wanted, &mut buckets, &mut scratch);
        check()?;
    }
    let mut counts = vec![0u32; 1 << CHUNK_BITS];
    let mut sorted: Vec<Mark> = Vec::new();
    for (c, bucket) in buckets.into_iter().enumerate() {
        if bucket.is_empty() {
            continue;
        }
        check()?;
        // A counting sort by member, stable: each track's marks stay in time order.
        counts.fill(0);
        for (low, _) in &bucket {
            counts[*low as usize] += 1;
        }
        let mut at = 0u32;
        for n in counts.iter_mut() {
            let here = *n;
            *n = at;
            at += here;
        }
        sorted.clear();
        sorted.resize(
            bucket.len(),
            Mark {
                ts: 0,
                roles: 0,
                track: 0,
                event: 0,
            },
        );
        for (low, mark) in &bucket {
            let slot = &mut counts[*low as usize];
            sorted[*slot as usize] = *mark;
            *slot += 1;
        }
        drop(bucket);
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
            f(((c as u32) << CHUNK_BITS) | low as u32, marks)?;
            start = end;
        }
    }
    Ok(())
}

/// One pass over `track`'s events: those of wanted members playing a role, into the bucket
/// of their chunk.
fn gather(
    track: &Track<'_>,
    k: u32,
    wanted: &[u64],
    buckets: &mut [Vec<(u16, Mark)>],
    scratch: &mut Vec<Vec<bool>>,
) {
    let part = track.part;
    let range = track.range();
    let mut passes: Vec<Vec<bool>> = track.roles.iter().map(|_| vec![true; BLOCK]).collect();
    let mut start = range.start;
    while start < range.end {
        let end = (start + BLOCK).min(range.end);
        let n = end - start;
        for (role, pass) in track.roles.iter().zip(&mut passes) {
            match &role.filter {
                Some(filter) => filter.fill(start, &mut pass[..n], scratch),
                None => pass[..n].fill(true),
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
                        buckets[(m >> CHUNK_BITS) as usize].push((
                            m as u16,
                            Mark {
                                ts,
                                roles,
                                track: k,
                                event: i as u32,
                            },
                        ));
                    }
                }
                i += 1;
            }
        }
        start = end;
    }
}
