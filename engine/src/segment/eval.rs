//! Evaluation of a segment to a roaring bitmap of members.
//!
//! Leaves borrow the stored bitmaps where they can (`Cow`), `AND` intersects smallest first
//! and turns `AND NOT x` into a difference instead of a complement, and `count` does the last
//! operation with the `*_len` functions so it never builds a result bitmap it does not need.

use std::borrow::Cow;

use roaring::{MultiOps, RoaringBitmap};

use super::{Did, Segment, window};
use crate::error::{Error, Result};
use crate::state::State;

/// Evaluates segments against one state at one *now* (microseconds).
pub(crate) struct Evaluator<'a> {
    state: &'a State,
    now: i64,
}

type Bits<'a> = Cow<'a, RoaringBitmap>;

impl<'a> Evaluator<'a> {
    pub(crate) fn new(state: &'a State, now: i64) -> Self {
        Evaluator { state, now }
    }

    fn live(&self) -> &'a RoaringBitmap {
        self.state.members.live()
    }

    /// The members of `segment`.
    pub(crate) fn eval(&self, segment: &Segment) -> Result<Bits<'a>> {
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
                    Cow::Owned(self.eval(&group.definition)?.into_owned())
                } else {
                    Cow::Borrowed(&group.bitmap)
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
        let mut rows: Vec<u32> = match &filter {
            Some(f) => slice
                .filter(|&i| f.matches(i))
                .map(|i| part.members[i])
                .collect(),
            None => part.members[slice].to_vec(),
        };
        rows.sort_unstable();
        let Some(frequency) = did.frequency else {
            rows.dedup();
            return Ok(Cow::Owned(
                RoaringBitmap::from_sorted_iter(rows).expect("sorted"),
            ));
        };
        let mut kept = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            let member = rows[i];
            let run = rows[i..].iter().take_while(|&&m| m == member).count();
            if frequency.accepts(run as u64) {
                kept.push(member);
            }
            i += run;
        }
        Ok(Cow::Owned(
            RoaringBitmap::from_sorted_iter(kept).expect("sorted"),
        ))
    }
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
