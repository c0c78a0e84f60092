//! A funnel run: its entered members' timelines walked (`walk::funnel_reach`), each member
//! counted once at its furthest step, in its bucket, with the times between its steps.

use roaring::RoaringBitmap;

use super::timeline::{Mark, Track, each_member};
use super::walk::{Reach, funnel_reach};
use super::{FunnelReport, FunnelRow};
use crate::column::Column;
use crate::computed::eval::BoundValue;
use crate::error::Result;
use crate::members::RowId;
use crate::value::Value;

/// A funnel bound to a state at one *now*.
pub(crate) struct BoundFunnel<'a> {
    /// One track per event type the steps name; step `k` is role bit `k`.
    pub(crate) tracks: Vec<Track<'a>>,
    /// Each step's event type.
    pub(crate) steps: Vec<&'a str>,
    /// Microseconds from an entry to its last step, at most.
    pub(crate) within: i64,
    pub(crate) by: Option<BoundBy<'a>>,
    /// Row ids ever assigned (a value's dense slots).
    pub(crate) members: usize,
}

/// The buckets of a bound funnel.
pub(crate) enum BoundBy<'a> {
    /// A value per member.
    Value(BoundValue<'a>),
    /// The property (its column in the first step's events) of the earliest (`first`) or
    /// latest entry event.
    Touch { column: &'a Column, first: bool },
}

/// One bucket's members per step and times between steps.
struct Bucket {
    value: Option<Value>,
    /// Members whose furthest step is `k + 1`.
    furthest: Vec<u64>,
    /// Per step `k >= 1`, microseconds from step `k - 1` of each member reaching it.
    gaps: Vec<Vec<i64>>,
}

impl Bucket {
    fn new(value: Option<Value>, steps: usize) -> Self {
        Bucket {
            value,
            furthest: vec![0; steps],
            gaps: vec![Vec::new(); steps],
        }
    }

    fn add(&mut self, reach: &Reach) {
        self.furthest[reach.furthest - 1] += 1;
        for k in 1..reach.furthest {
            self.gaps[k].push(reach.times[k] - reach.times[k - 1]);
        }
    }
}

/// What a bucket is found by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// NULL.
    Null,
    /// A value's group key in its column.
    Column(u64),
    /// The value of members without events read (a count's 0), found once.
    Empty,
}

impl Key {
    fn of(column: &Column, row: usize) -> Key {
        if column.is_valid(row) {
            Key::Column(column.group_key(row))
        } else {
            Key::Null
        }
    }
}

#[derive(Default)]
struct Buckets {
    all: Vec<Bucket>,
    by_key: hashbrown::HashMap<Key, usize>,
    /// The bucket found last (one bucket, or runs of one value, skip the map).
    last: Option<(Key, usize)>,
}

impl Buckets {
    fn of(&mut self, key: Key, value: impl FnOnce() -> Option<Value>, steps: usize) -> &mut Bucket {
        let k = match self.last {
            Some((last, k)) if last == key => k,
            _ => {
                let all = &mut self.all;
                let k = *self.by_key.entry(key).or_insert_with(|| {
                    all.push(Bucket::new(value(), steps));
                    all.len() - 1
                });
                self.last = Some((key, k));
                k
            }
        };
        &mut self.all[k]
    }
}

impl Buckets {
    /// Adds `other`'s members (a run of members walked on another thread).
    fn merge(&mut self, other: Buckets) {
        let mut by_index: Vec<(Key, usize)> = other.by_key.into_iter().collect();
        by_index.sort_by_key(|&(_, k)| k);
        let mut others: Vec<Option<Bucket>> = other.all.into_iter().map(Some).collect();
        for (key, k) in by_index {
            let Some(bucket) = others[k].take() else {
                continue;
            };
            match self.by_key.get(&key) {
                Some(&mine) => {
                    let into = &mut self.all[mine];
                    for (n, m) in into.furthest.iter_mut().zip(bucket.furthest) {
                        *n += m;
                    }
                    for (gaps, more) in into.gaps.iter_mut().zip(bucket.gaps) {
                        gaps.extend(more);
                    }
                }
                None => {
                    self.by_key.insert(key, self.all.len());
                    self.all.push(bucket);
                }
            }
        }
    }
}

/// How a funnel walk runs: on how many threads, until when.
#[derive(Clone, Copy)]
pub(crate) struct Pace {
    pub(crate) threads: usize,
    pub(crate) deadline: Option<std::time::Instant>,
}

impl BoundFunnel<'_> {
    /// Walks the timelines of `entered` (the members with an entry, within the funnel's
    /// members), calling `f(state, member, reach, marks)` for each, a state per run of
    /// members (see [`each_member`]).
    fn walk<S: Send>(
        &self,
        entered: &RoaringBitmap,
        pace: Pace,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, RowId, &Reach, &[Mark]) -> Result<()> + Sync,
    ) -> Result<Vec<S>> {
        each_member(
            &self.tracks,
            entered,
            None,
            pace.threads,
            pace.deadline,
            || (init(), Reach::default()),
            |(state, reach), m, marks| {
                funnel_reach(marks, self.steps.len(), self.within, reach);
                if reach.furthest > 0 {
                    f(state, m, reach, marks)?;
                }
                Ok(())
            },
        )
        .map(|states| states.into_iter().map(|(s, _)| s).collect())
    }

    /// The members of `entered` whose furthest step is `step` (1-based).
    pub(crate) fn at_step(
        &self,
        entered: &RoaringBitmap,
        step: usize,
        pace: Pace,
    ) -> Result<RoaringBitmap> {
        let runs = self.walk(entered, pace, Vec::new, |out, m, reach, _| {
            if reach.furthest == step {
                out.push(m);
            }
            Ok(())
        })?;
        Ok(RoaringBitmap::from_sorted_iter(runs.into_iter().flatten()).expect("members ascend"))
    }

    /// The report over `entered`; `by` is the `BY` text.
    pub(crate) fn report(
        &self,
        entered: &RoaringBitmap,
        by: Option<String>,
        pace: Pace,
    ) -> Result<FunnelReport> {
        let steps = self.steps.len();
        let runs = match &self.by {
            None => self.walk(entered, pace, Buckets::default, |buckets, _, reach, _| {
                buckets.of(Key::Null, || None, steps).add(reach);
                Ok(())
            })?,
            Some(BoundBy::Touch { column, first }) => self.walk(
                entered,
                pace,
                Buckets::default,
                |buckets, _, reach, marks| {
                    let entry = if *first {
                        reach.first_entry
                    } else {
                        reach.last_entry
                    };
                    let entry = marks[entry].event();
                    buckets
                        .of(Key::of(column, entry), || column.get(entry), steps)
                        .add(reach);
                    Ok(())
                },
            )?,
            Some(BoundBy::Value(value)) => {
                let rows: Vec<RowId> = entered.iter().collect();
                let values = value.values(Some(&rows), self.members)?;
                self.walk(entered, pace, Buckets::default, |buckets, m, reach, _| {
                    let bucket = match values.rows.binary_search(&m) {
                        Ok(at) => {
                            let c = &values.column;
                            buckets.of(Key::of(c, at), || c.get(at), steps)
                        }
                        // The value of a member without events read (0 of a count).
                        Err(_) if values.empty.is_some() => {
                            buckets.of(Key::Empty, || values.empty.clone(), steps)
                        }
                        Err(_) => buckets.of(Key::Null, || None, steps),
                    };
                    bucket.add(reach);
                    Ok(())
                })?
            }
        };
        let mut buckets = Buckets::default();
        for run in runs {
            buckets.merge(run);
        }
        if self.by.is_none() {
            // the steps are there even when nobody entered
            buckets.of(Key::Null, || None, steps);
        }
        // A value equal to the empty one (a count of 0 among members with values) shares
        // its bucket.
        merge_empty(&mut buckets);
        let mut all = buckets.all;
        if self.by.is_some() {
            all.sort_by(|a, b| {
                let entered = |x: &Bucket| x.furthest.iter().sum::<u64>();
                entered(b)
                    .cmp(&entered(a))
                    .then_with(|| crate::database::cmp_values(&a.value, &b.value))
            });
        }
        let mut rows = Vec::new();
        for bucket in all {
            let mut reached = vec![0u64; steps];
            let mut beyond = 0;
            for k in (0..steps).rev() {
                beyond += bucket.furthest[k];
                reached[k] = beyond;
            }
            for (k, mut gaps) in bucket.gaps.into_iter().enumerate() {
                let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
                rows.push(FunnelRow {
                    bucket: bucket.value.clone(),
                    step: k + 1,
                    event: self.steps[k].to_string(),
                    members: reached[k],
                    share_of_first: share(reached[k], reached[0]),
                    share_of_previous: share(reached[k], reached[k.saturating_sub(1)]),
                    median_seconds: median(&mut gaps).map(|us| us / 1e6),
                });
            }
        }
        Ok(FunnelReport { by, rows })
    }
}

/// Folds the bucket of the empty value into the bucket of an equal value, if any.
fn merge_empty(buckets: &mut Buckets) {
    let Some(&e) = buckets.by_key.get(&Key::Empty) else {
        return;
    };
    let empty = buckets.all[e].value.clone();
    let twin = buckets
        .all
        .iter()
        .enumerate()
        .position(|(k, b)| k != e && b.value.is_some() && b.value == empty);
    if let Some(t) = twin {
        let gone = buckets.all.remove(e);
        let t = if t > e { t - 1 } else { t };
        let into = &mut buckets.all[t];
        for (k, n) in gone.furthest.into_iter().enumerate() {
            into.furthest[k] += n;
        }
        for (k, gaps) in gone.gaps.into_iter().enumerate() {
            into.gaps[k].extend(gaps);
        }
    }
}

/// The median of `values` (of an even count, the mean of the two middle ones).
fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mid = values.len() / 2;
    let (_, &mut upper, _) = values.select_nth_unstable(mid);
    if values.len() % 2 == 1 {
        return Some(upper as f64);
    }
    let lower = *values[..mid].iter().max().expect("a lower half");
    Some((lower as f64 + upper as f64) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_even_counts_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5]), Some(5.0));
        assert_eq!(median(&mut [9, 1, 4, 3]), Some(3.5));
        assert_eq!(median(&mut [3, 1, 2]), Some(2.0));
    }
}
