//! A sequence bound to a state at one *now*: the plan's leaf for `DID a ... THEN [NOT] b`.
//! Its candidates are the members with an event of the first type (and, for `THEN`, of the
//! second) within the plan's universe; their timelines are read (`timeline.rs`) and each
//! is decided by [`SequenceRule::holds`].

use roaring::RoaringBitmap;

use super::timeline::{INDEXED_MEMBERS, KeyOf, Mark, Role, Track, each_member, members_with};
use super::walk::{FIRST, SECOND, SequenceRule};
use crate::column::{Column, ColumnData};
use crate::error::Result;
use crate::events::{BoundFilter, EventPartition};

/// A bound `DID a ... THEN [NOT] b`.
pub(crate) struct BoundSequence<'a> {
    pub(crate) first: &'a EventPartition,
    pub(crate) second: &'a EventPartition,
    /// The tracks read: the first type's (with the second's role too when both are one
    /// type), then the second's.
    pub(crate) tracks: Vec<Track<'a>>,
    pub(crate) rule: SequenceRule,
    pub(crate) keys: MatchKeys<'a>,
}

impl<'a> BoundSequence<'a> {
    /// The sequence of first events in `window` (`[lo, hi)`) passing `first_filter`, then
    /// second events passing `second_filter`, under `rule`.
    pub(crate) fn new(
        (first, first_filter, window): (&'a EventPartition, Option<BoundFilter<'a>>, (i64, i64)),
        (second, second_filter): (&'a EventPartition, Option<BoundFilter<'a>>),
        rule: SequenceRule,
        keys: MatchKeys<'a>,
    ) -> Self {
        let (lo, mut hi) = window;
        if rule.negated {
            // Only first events whose window has closed count.
            let last = match rule.within {
                Some(w) => rule.now.saturating_sub(w),
                None => rule.now,
            };
            hi = hi.min(last.saturating_add(1));
        }
        let second_hi = match (rule.within, rule.negated) {
            (Some(w), _) => hi.saturating_add(w),
            (None, false) => i64::MAX,
            (None, true) => rule.now.saturating_add(1),
        };
        let first_role = Role {
            bit: FIRST,
            filter: first_filter,
            lo,
            hi,
        };
        let second_role = Role {
            bit: SECOND,
            filter: second_filter,
            lo,
            hi: second_hi,
        };
        let tracks = if std::ptr::eq(first, second) {
            vec![Track {
                part: first,
                roles: vec![first_role, second_role],
            }]
        } else {
            vec![
                Track {
                    part: first,
                    roles: vec![first_role],
                },
                Track {
                    part: second,
                    roles: vec![second_role],
                },
            ]
        };
        BoundSequence {
            first,
            second,
            tracks,
            rule,
            keys,
        }
    }

    /// The members of `universe` (every member when `None`) the sequence holds for.
    pub(crate) fn members(&self, universe: Option<&RoaringBitmap>) -> Result<RoaringBitmap> {
        let mut candidates = match universe {
            Some(universe) => universe & &*self.first.any,
            None => (*self.first.any).clone(),
        };
        let mut lone = RoaringBitmap::new();
        if self.rule.negated {
            // Members without any second event hold when some first event's window has
            // closed: one pass over the first events sets their bits, nothing gathered.
            if candidates.len() > INDEXED_MEMBERS {
                lone = &candidates - &*self.second.any;
                candidates &= &*self.second.any;
                lone = members_with(&self.tracks[0], &lone);
            }
        } else {
            candidates &= &*self.second.any;
        }
        let translated = self.keys.translation(candidates.len());
        let read = |track: u8, event: usize| self.keys.key(track, event, translated.as_deref());
        let key: Option<KeyOf<'_>> = match self.keys {
            MatchKeys::Off => None,
            _ => Some(&read),
        };
        let off = matches!(self.keys, MatchKeys::Off);
        let runs = each_member(
            &self.tracks,
            &candidates,
            key,
            crate::plan::default_threads(),
            None,
            || (Vec::new(), Vec::new()),
            |(out, pairs), m, marks| {
                let key = |mark: &Mark| if off { Some(0) } else { mark.key() };
                if self.rule.holds(marks, key, pairs) {
                    out.push(m);
                }
                Ok(())
            },
        )?;
        let held = runs.into_iter().flat_map(|(out, _)| out);
        Ok(RoaringBitmap::from_sorted_iter(held).expect("members ascend") | lone)
    }

    /// What besides the source text decides the answer at one data version: the events
    /// each role takes (a `THEN NOT` window's closing and an `IN LAST` first part are in
    /// which first events count; at the same events the answer is the same whatever the
    /// *now*).
    pub(crate) fn key(&self) -> String {
        let mut out = String::new();
        for track in &self.tracks {
            for role in &track.roles {
                let events = track.part.slice(role.lo, role.hi);
                out.push_str(&format!("{}:{}..{};", role.bit, events.start, events.end));
            }
        }
        out
    }

    /// Whether the sequence holds for member `row`.
    pub(crate) fn holds(&self, row: u32) -> Result<bool> {
        Ok(self
            .members(Some(&RoaringBitmap::from([row])))?
            .contains(row))
    }
}

/// How a `MATCHING` property's values compare across the two event types.
pub(crate) enum MatchKeys<'a> {
    /// No `MATCHING`: every event has the same key.
    Off,
    /// Values that can never be equal (a type lacks the property, or the types differ):
    /// every event's key is NULL.
    Never,
    /// Both the same column type; strings of the second type are translated into the first
    /// type's dictionary codes (`same`: one event type, one column).
    Same {
        first: &'a Column,
        second: &'a Column,
        same: bool,
    },
    /// Numbers of two types, compared as floats.
    Numbers {
        first: &'a Column,
        second: &'a Column,
    },
}

impl<'a> MatchKeys<'a> {
    /// The keys of `MATCHING` over columns `first` and `second` (`None`: the type has no
    /// value of the property).
    pub(crate) fn new(first: Option<&'a Column>, second: Option<&'a Column>) -> Self {
        let (Some(first), Some(second)) = (first, second) else {
            return MatchKeys::Never;
        };
        let number = |c: &Column| {
            matches!(
                c.data,
                ColumnData::Int(_) | ColumnData::Float(_) | ColumnData::Timestamp(_)
            )
        };
        if first.data_type() == second.data_type() {
            MatchKeys::Same {
                first,
                second,
                same: std::ptr::eq(first, second),
            }
        } else if number(first) && number(second) {
            MatchKeys::Numbers { first, second }
        } else {
            MatchKeys::Never
        }
    }

    /// For many candidates, the second type's string codes in the first type's dictionary
    /// (`u64::MAX` for a value it does not have), built once.
    fn translation(&self, candidates: u64) -> Option<Vec<u64>> {
        let MatchKeys::Same {
            first,
            second,
            same: false,
        } = self
        else {
            return None;
        };
        let (Some(a), Some(b)) = (first.dict(), second.dict()) else {
            return None;
        };
        (candidates as usize > b.len() / 64).then(|| {
            b.iter()
                .map(|s| a.lookup(s).map_or(u64::MAX, u64::from))
                .collect()
        })
    }

    /// The key of event `i` of track `track` (`None`: NULL); track 0 is the first type's,
    /// 1 the second's.
    pub(crate) fn key(&self, track: u8, i: usize, translated: Option<&[u64]>) -> Option<u64> {
        let of_second = track == 1;
        match self {
            MatchKeys::Off => Some(0),
            MatchKeys::Never => None,
            MatchKeys::Same {
                first,
                second,
                same,
            } => {
                let c = if of_second { second } else { first };
                if !c.is_valid(i) {
                    return None;
                }
                match (c.code(i), of_second && !same) {
                    (Some(code), true) => Some(match translated {
                        Some(t) => t[code as usize],
                        None => {
                            let a = first.dict().expect("a string column");
                            let b = second.dict().expect("a string column");
                            a.lookup(b.get(code)).map_or(u64::MAX, u64::from)
                        }
                    }),
                    _ => Some(float_normal(c, i).unwrap_or_else(|| c.group_key(i))),
                }
            }
            MatchKeys::Numbers { first, second } => {
                let c = if of_second { second } else { first };
                if !c.is_valid(i) {
                    return None;
                }
                let x = match &c.data {
                    ColumnData::Float(v) => v[i],
                    _ => c.int_key(i)? as f64,
                };
                Some((x + 0.0).to_bits())
            }
        }
    }
}

/// A float's key with `-0.0` as `0.0` (equal values, equal keys).
fn float_normal(c: &Column, i: usize) -> Option<u64> {
    match &c.data {
        ColumnData::Float(v) => Some((v[i] + 0.0).to_bits()),
        _ => None,
    }
}
