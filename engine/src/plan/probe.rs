//! Execution of a plan over a universe of a few members (the members one write touched, a
//! clock move's few candidates): each member is tested against the plan's operators in
//! turn instead of walking chunks. A stored bitmap is one `contains`; an `AND` stops at its
//! first failing operand and an `OR` at its first holding one, cheap operands (stored
//! bitmaps) first; a computed leaf is computed, for the whole universe, only when a member
//! reaches it. The answer is the chunk walk's (`exec.rs`) on the same plan, without its
//! fixed costs (chunk forms of every leaf, a walker, a bitmap built through chunks).

use roaring::RoaringBitmap;

use super::{Node, Op, Plan};
use crate::bitmap::Chunks;
use crate::error::Result;

/// At most this many members in a universe are probed one by one; more are walked.
pub(crate) const PROBE_MEMBERS: u64 = 64;

/// The members of `plan`'s segment among `rows` (live members).
pub(crate) fn select(plan: &Plan<'_>, within: &Chunks, rows: &[u32]) -> Result<RoaringBitmap> {
    let mut probe = Probe {
        within: Within::Chunks(within),
        computed: (0..plan.leaves).map(|_| None).collect(),
    };
    let mut out = RoaringBitmap::new();
    for &row in rows {
        if probe.holds(&plan.root, row)? {
            out.insert(row);
        }
    }
    Ok(out)
}

/// Whether live member `row` is in `plan`'s segment (a trait's `CASE` kept current for
/// the member of a write): a value leaf tests that member's value alone; any other
/// computed leaf is computed over a universe of that member.
pub(crate) fn holds(plan: &Plan<'_>, row: u32) -> Result<bool> {
    let mut probe = Probe {
        within: Within::One(row, None),
        computed: (0..plan.leaves).map(|_| None).collect(),
    };
    probe.holds(&plan.root, row)
}

/// The universe of a probe.
enum Within<'c> {
    Chunks(&'c Chunks),
    /// One member; its chunks made when a leaf needs them.
    One(u32, Option<Chunks>),
}

impl Within<'_> {
    fn chunks(&mut self) -> &Chunks {
        match self {
            Within::Chunks(c) => c,
            Within::One(row, chunks) => {
                chunks.get_or_insert_with(|| Chunks::from_roaring(&RoaringBitmap::from([*row])))
            }
        }
    }
}

struct Probe<'c> {
    within: Within<'c>,
    /// The computed leaves, each computed the first time a member reaches it.
    computed: Vec<Option<RoaringBitmap>>,
}

impl Probe<'_> {
    fn holds(&mut self, node: &Node<'_>, row: u32) -> Result<bool> {
        Ok(match &node.op {
            Op::Universe => true,
            Op::Nothing => false,
            Op::Stored(bitmap) => bitmap.contains(row),
            Op::Computed { slot, leaf } => {
                if let Within::One(..) = self.within
                    && let Some(holds) = leaf.holds(row)
                {
                    return holds;
                }
                if self.computed[*slot].is_none() {
                    self.computed[*slot] = Some(leaf.compute(Some(self.within.chunks()))?);
                }
                self.computed[*slot]
                    .as_ref()
                    .is_some_and(|members| members.contains(row))
            }
            Op::And { pos, neg } => {
                // Cheap operands first: a member outside a tag never computes a window.
                for cheap in [true, false] {
                    for p in pos.iter().filter(|n| is_cheap(n) == cheap) {
                        if !self.holds(p, row)? {
                            return Ok(false);
                        }
                    }
                    for n in neg.iter().filter(|n| is_cheap(n) == cheap) {
                        if self.holds(n, row)? {
                            return Ok(false);
                        }
                    }
                }
                true
            }
            Op::Or(parts) => {
                for cheap in [true, false] {
                    for p in parts.iter().filter(|n| is_cheap(n) == cheap) {
                        if self.holds(p, row)? {
                            return Ok(true);
                        }
                    }
                }
                false
            }
        })
    }
}

/// A node answered without computing anything (a stored bitmap, the universe, nothing).
fn is_cheap(node: &Node<'_>) -> bool {
    matches!(node.op, Op::Stored(_) | Op::Universe | Op::Nothing)
}
