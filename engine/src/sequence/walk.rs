//! The rules of DESIGN section 10 for one member, over its timeline (`timeline.rs`): whether
//! a sequence holds, and how far a funnel gets. Equal times never chain: every next event
//! is strictly later than the one before it.

use super::timeline::Mark;

/// A sequence's first part's role bit.
pub(crate) const FIRST: u32 = 1;
/// A sequence's second part's role bit.
pub(crate) const SECOND: u32 = 2;

/// A sequence's rule, bound at one *now*.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SequenceRule {
    pub(crate) negated: bool,
    /// `WITHIN`, in microseconds.
    pub(crate) within: Option<i64>,
    pub(crate) now: i64,
}

impl SequenceRule {
    /// The last instant a second event may have to follow a first event at `ts`.
    fn end(&self, ts: i64) -> i64 {
        match (self.within, self.negated) {
            (Some(w), _) => ts.saturating_add(w),
            (None, false) => i64::MAX,
            (None, true) => self.now,
        }
    }

    /// Whether a first event at `ts` may count for `THEN NOT`: its window has closed
    /// (without `WITHIN`, the event is not after *now*).
    fn closed(&self, ts: i64) -> bool {
        ts <= self.now && self.end(ts) <= self.now
    }

    /// Whether the sequence holds for a member with `marks` (in time order); `key` gives
    /// an event's `MATCHING` value (`None`: NULL; without `MATCHING`, every event `Some(0)`).
    /// `pairs` is scratch space.
    pub(crate) fn holds(
        &self,
        marks: &[Mark],
        key: impl Fn(&Mark) -> Option<u64>,
        pairs: &mut Vec<(u64, i64)>,
    ) -> bool {
        // The second events by (value, time).
        pairs.clear();
        pairs.extend(
            marks
                .iter()
                .filter(|m| m.roles & SECOND != 0)
                .filter_map(|m| Some((key(m)?, m.ts))),
        );
        pairs.sort_unstable();
        for a in marks.iter().filter(|m| m.roles & FIRST != 0) {
            if self.negated && !self.closed(a.ts) {
                continue;
            }
            let followed = key(a).is_some_and(|k| {
                // the first second event of the same value after a
                let i = pairs.partition_point(|&(pk, pt)| (pk, pt) <= (k, a.ts));
                pairs
                    .get(i)
                    .is_some_and(|&(pk, pt)| pk == k && pt <= self.end(a.ts))
            });
            if followed != self.negated {
                return true;
            }
        }
        false
    }
}

/// How far a member got through a funnel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    /// The furthest step reached over all entries (1-based; 0: no entry).
    pub(crate) furthest: usize,
    /// The times of the steps of the earliest entry reaching `furthest`, each step's
    /// earliest qualifying event.
    pub(crate) times: Vec<i64>,
    /// The member's earliest and latest entry events (indexes into its marks).
    pub(crate) first_entry: usize,
    pub(crate) last_entry: usize,
    /// Scratch: the chain of the entry being followed.
    chain: Vec<i64>,
}

/// The funnel of `steps` steps (step `k` is role bit `k`; the first step's role holds only
/// entries in the range) with each next step at most `within` after the entry, over one
/// member's `marks` (in time order). From each entry, each next step takes the earliest
/// event of its role strictly later than the step before; the member's reach is the
/// furthest over its entries.
pub(crate) fn funnel_reach(marks: &[Mark], steps: usize, within: i64, out: &mut Reach) {
    out.furthest = 0;
    out.times.clear();
    let mut chain = std::mem::take(&mut out.chain);
    let mut previous_entry: Option<i64> = None;
    for (e, entry) in marks.iter().enumerate() {
        if entry.roles & 1 == 0 {
            continue;
        }
        if out.furthest == 0 {
            out.first_entry = e;
        }
        out.last_entry = e;
        // An entry at the time of the one before it makes the same chain.
        if out.furthest == steps || previous_entry == Some(entry.ts) {
            continue;
        }
        previous_entry = Some(entry.ts);
        let deadline = entry.ts.saturating_add(within);
        chain.clear();
        chain.push(entry.ts);
        let mut j = e + 1;
        while chain.len() < steps {
            let bit = 1u32 << chain.len();
            let at = *chain.last().expect("the entry");
            let next = marks[j.min(marks.len())..]
                .iter()
                .take_while(|m| m.ts <= deadline)
                .position(|m| m.ts > at && m.roles & bit != 0);
            match next {
                Some(k) => {
                    j += k;
                    chain.push(marks[j].ts);
                    j += 1;
                }
                None => break,
            }
        }
        if chain.len() > out.furthest {
            out.furthest = chain.len();
            out.times.clone_from(&chain);
        }
    }
    out.chain = chain;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(ts: i64, roles: u32) -> Mark {
        let mut mark = Mark::default();
        mark.ts = ts;
        mark.roles = roles;
        mark
    }

    #[test]
    fn equal_times_never_chain_and_the_furthest_entry_counts() {
        let mut reach = Reach::default();
        // entry at 10, step 2 at 10 (same time: no), 12; step 3 at 30 (past 10 + 15)
        let marks = [mark(10, 1), mark(10, 2), mark(12, 2), mark(30, 4)];
        funnel_reach(&marks, 3, 15, &mut reach);
        assert_eq!((reach.furthest, reach.times.clone()), (2, vec![10, 12]));
        // a later entry at 20 reaches step 3 at 30: its chain is kept
        let marks = [
            mark(10, 1),
            mark(12, 2),
            mark(20, 1),
            mark(22, 2),
            mark(30, 4),
        ];
        funnel_reach(&marks, 3, 15, &mut reach);
        assert_eq!(reach.furthest, 3);
        assert_eq!(reach.times, vec![20, 22, 30]);
        assert_eq!((reach.first_entry, reach.last_entry), (0, 2));
    }

    #[test]
    fn then_not_needs_a_closed_window() {
        let rule = SequenceRule {
            negated: true,
            within: Some(5),
            now: 20,
        };
        let key = |_: &Mark| Some(0);
        let mut pairs = Vec::new();
        // claimed at 10, window (10, 15] closed at 20, nothing in it
        assert!(rule.holds(&[mark(10, FIRST)], key, &mut pairs));
        // redeemed at 15: inside (the end is included)
        assert!(!rule.holds(&[mark(10, FIRST), mark(15, SECOND)], key, &mut pairs));
        // redeemed at 16: outside
        assert!(rule.holds(&[mark(10, FIRST), mark(16, SECOND)], key, &mut pairs));
        // claimed at 16: its window closes at 21, after now
        assert!(!rule.holds(&[mark(16, FIRST)], key, &mut pairs));
    }
}
