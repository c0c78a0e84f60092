//! Evaluation of a segment to a roaring bitmap of members.
//!
//! Leaves borrow the stored bitmaps where they can (`Cow`), `AND` intersects smallest first
//! and turns `AND NOT x` into a difference instead of a complement, and `count` does the last
//! operation with the `*_len` functions so it never builds a result bitmap it does not need.

use std::borrow::Cow;

use roaring::{MultiOps, RoaringBitmap};

use super::{Did, Frequency, Segment, window};
use crate::error::{Error, Result};
use crate::state::State;

/// Evaluates segments against one state at one *now* (microseconds).
pub(crate) struct Evaluator<'a> {
    state: &'a State,
    now: i64,
    /// Past this instant every step fails with [`Error::DeadlineExceeded`].
    deadline: Option<std::time::Instant>,
}

type Bits<'a> = Cow<'a, RoaringBitmap>;

/// [`Error::DeadlineExceeded`] once `deadline` (if any) has passed.
pub(crate) fn check_deadline(deadline: Option<std::time::Instant>) -> Result<()> {
    match deadline {
        Some(d) if std::time::Instant::now() >= d => Err(Error::DeadlineExceeded),
        _ => Ok(()),
    }
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(state: &'a State, now: i64) -> Self {
        Evaluator {
            state,
            now,
            deadline: None,
        }
    }

    /// Stops evaluation with [`Error::DeadlineExceeded`] once `deadline` has passed: checked
    /// before every node, so a statement overruns by at most one leaf's work.
    pub(crate) fn with_deadline(mut self, deadline: Option<std::time::Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    fn check_deadline(&self) -> Result<()> {
        check_deadline(self.deadline)
    }

    fn live(&self) -> &'a RoaringBitmap {
        self.state.members.live()
    }

    /// The members of `segment`.
    pub(crate) fn eval(&self, segment: &Segment) -> Result<Bits<'a>> {
        self.check_deadline()?;
        Ok(match segment {
            Segment::All => Cow::Borrowed(self.live()),
            Segment::Tag(name) => Cow::Borrowed(
                self.state
                    .tags
                    .get(name)
                    .ok_or_else(|| Error::unknown("tag", name, self.state.tags.names()))?,
            ),
            Segment::InGroup(name) => {
                let group = self.state.groups.require(name)?;
                if group.time_dependent {
                    // evaluated at this query's now, each time
                    self.eval(&group.definition)?
                } else {
                    Cow::Borrowed(group.bitmap.as_ref())
                }
            }
            Segment::Attr { name, predicate } => self
                .state
                .attrs
                .require(name)?
                .select(predicate, self.live())?,
            Segment::Did(did) => self.eval_did(did)?,
            Segment::And(children) => {
                let (positives, negatives) = self.operands(children)?;
                let mut acc = if positives.is_empty() {
                    self.live().clone()
                } else {
                    intersect_all(positives).into_owned()
                };
                for n in &negatives {
                    acc -= n.as_ref();
                }
                Cow::Owned(acc)
            }
            Segment::Or(children) => {
                let parts: Vec<Bits<'a>> = children
                    .iter()
                    .map(|c| self.eval(c))
                    .collect::<Result<_>>()?;
                Cow::Owned(parts.iter().map(AsRef::as_ref).union())
            }
            Segment::Not(inner) => Cow::Owned(self.live() - self.eval(inner)?.as_ref()),
        })
    }

    /// The number of members of `segment`.
    pub(crate) fn count(&self, segment: &Segment) -> Result<u64> {
        self.check_deadline()?;
        match segment {
            Segment::Not(inner) => Ok(self.live().len() - self.count(inner)?),
            Segment::And(children) => {
                let (mut positives, mut negatives) = self.operands(children)?;
                if positives.is_empty() {
                    positives.push(Cow::Borrowed(self.live()));
                }
                // The last operation is done by a *_len function, without a result bitmap.
                if let Some(last_negative) = negatives.pop() {
                    let mut acc = intersect_all(positives);
                    for n in &negatives {
                        acc = Cow::Owned(acc.as_ref() - n.as_ref());
                    }
                    return Ok(acc.difference_len(&last_negative));
                }
                let last = positives.pop().expect("at least one operand");
                if positives.is_empty() {
                    return Ok(last.len());
                }
                Ok(intersect_all(positives).intersection_len(&last))
            }
            other => Ok(self.eval(other)?.len()),
        }
    }

    /// Splits the children of an `AND` into positive and negated operands, each evaluated;
    /// positives come sorted by size (smallest first) so intersections shrink early.
    fn operands(&self, children: &[Segment]) -> Result<(Vec<Bits<'a>>, Vec<Bits<'a>>)> {
        let mut positives = Vec::new();
        let mut negatives = Vec::new();
        for child in children {
            match child {
                Segment::Not(inner) => negatives.push(self.eval(inner)?),
                other => positives.push(self.eval(other)?),
            }
        }
        positives.sort_by_key(|b| b.len());
        Ok((positives, negatives))
    }

    fn eval_did(&self, did: &Did) -> Result<Bits<'a>> {
        let events = &self.state.events;
        let part = events.require(&did.event)?;
        let range = did
            .window
            .as_ref()
            .map(|w| window::resolve(w, self.now))
            .transpose()?;
        let filter = did
            .filter
            .as_ref()
            .map(|f| part.bind(f, &events.props))
            .transpose()?;
        if filter.is_none() && did.frequency.is_none() {
            return Ok(match range {
                None => Cow::Borrowed(&part.any),
                Some((lo, hi)) => Cow::Owned(part.present_between(lo, hi)),
            });
        }
        let slice = match range {
            Some((lo, hi)) => part.slice(lo, hi),
            None => 0..part.len(),
        };
        let rows: Vec<u32> = match &filter {
            Some(f) => part.filtered_members(slice, f),
            None => part.members.range(slice).collect(),
        };
        let universe = self.state.members.len();
        Ok(Cow::Owned(match did.frequency {
            None => distinct_members(rows, universe),
            Some(frequency) => members_by_count(rows, universe, frequency),
        }))
    }
}

/// Many rows for few members: counting in a dense array beats sorting the rows.
fn dense(rows: usize, universe: usize) -> bool {
    rows.saturating_mul(16) > universe
}

/// The distinct members among `rows` (row ids below `universe`).
fn distinct_members(mut rows: Vec<u32>, universe: usize) -> RoaringBitmap {
    if dense(rows.len(), universe) {
        let mut bits = vec![0u8; universe.div_ceil(8)];
        for &r in &rows {
            bits[r as usize / 8] |= 1 << (r % 8);
        }
        return RoaringBitmap::from_lsb0_bytes(0, &bits);
    }
    rows.sort_unstable();
    rows.dedup();
    RoaringBitmap::from_sorted_iter(rows).expect("sorted")
}

/// The members whose number of occurrences in `rows` passes `frequency`.
fn members_by_count(mut rows: Vec<u32>, universe: usize, frequency: Frequency) -> RoaringBitmap {
    let threshold = match frequency {
        Frequency::AtLeast(n) | Frequency::AtMost(n) | Frequency::Exactly(n) => n,
    };
    if dense(rows.len(), universe) && threshold < u64::from(u8::MAX) {
        return count_dense(&rows, universe, frequency);
    }
    rows.sort_unstable();
    let mut kept = Vec::new();
    for run in rows.chunk_by(|a, b| a == b) {
        if frequency.accepts(run.len() as u64) {
            kept.push(run[0]);
        }
    }
    RoaringBitmap::from_sorted_iter(kept).expect("sorted")
}

fn clamp_u8(n: u64) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// Dense counting for many rows: one saturating `u8` counter per member (any count >= 255
/// compares like 255 against a threshold below 255), incremented in one pass, then turned
/// into bits eight counters at a time without branches. (Partitioning the rows by chunk of
/// members first, to keep the counters cache-resident, measured slower at 1M members and no
/// better than run-to-run drift at 10M: the extra passes cost about what the misses do.)
fn count_dense(rows: &[u32], universe: usize, frequency: Frequency) -> RoaringBitmap {
    // Accepted counts are lo..=lo+span (lo >= 1; a count of 0 wraps far above the span).
    let (lo, hi): (u8, u8) = match frequency {
        Frequency::AtLeast(n) => (clamp_u8(n).max(1), u8::MAX),
        Frequency::AtMost(n) => (1, clamp_u8(n)),
        Frequency::Exactly(n) => (clamp_u8(n), clamp_u8(n)),
    };
    if lo == 0 || hi < lo {
        return RoaringBitmap::new();
    }
    let span = hi - lo;
    let mut counts = vec![0u8; universe.next_multiple_of(8)];
    for &r in rows {
        let n = &mut counts[r as usize];
        *n = n.saturating_add(1);
    }
    // Each counter becomes a 0 / 1 byte in place, then eight such bytes are packed into one
    // byte of bits by a multiplication that moves byte i's low bit to bit 56 + i.
    for n in &mut counts {
        *n = u8::from(n.wrapping_sub(lo) <= span);
    }
    let bits: Vec<u8> = counts
        .chunks_exact(8)
        .map(|eight| {
            let x = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
            (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
        })
        .collect();
    RoaringBitmap::from_lsb0_bytes(0, &bits)
}

fn intersect_all(mut bitmaps: Vec<Bits<'_>>) -> Bits<'_> {
    if bitmaps.len() == 1 {
        return bitmaps.pop().expect("one operand");
    }
    let mut acc = bitmaps[0].as_ref() & bitmaps[1].as_ref();
    for b in &bitmaps[2..] {
        acc &= b.as_ref();
    }
    Cow::Owned(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(rows: &[u32], keep: impl Fn(u64) -> bool) -> RoaringBitmap {
        let mut counts = std::collections::BTreeMap::new();
        for &r in rows {
            *counts.entry(r).or_insert(0u64) += 1;
        }
        counts
            .into_iter()
            .filter(|&(_, c)| keep(c))
            .map(|(r, _)| r)
            .collect()
    }

    #[test]
    fn dense_and_sparse_paths_agree() {
        // 300 events of member 7 (past the u8 counter), a few others
        let mut rows: Vec<u32> = vec![7; 300];
        rows.extend([1, 1, 2, 900, 900, 900]);
        for universe in [1000, 1_000_000] {
            assert_eq!(
                distinct_members(rows.clone(), universe),
                naive(&rows, |_| true)
            );
            for f in [
                Frequency::AtLeast(3),
                Frequency::AtMost(2),
                Frequency::Exactly(3),
                Frequency::AtLeast(300),
                Frequency::AtMost(299),
            ] {
                assert_eq!(
                    members_by_count(rows.clone(), universe, f),
                    naive(&rows, |c| f.accepts(c)),
                    "{f:?} universe {universe}"
                );
            }
        }
    }
}
