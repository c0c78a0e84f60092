//! Each member id's own data inside a merged profile: its tags and attribute values as they
//! were written to it, with the write that set each (so `LATEST` and `EARLIEST` follow write
//! order), and what the profile shows, combined by the merge rules. The state's rows hold
//! what profiles show; a record is kept only for member ids of profiles of several, so that
//! an unmerge gives each its own data back.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::MergeRule;
use crate::members::RowId;
use crate::value::Value;

/// One member id's own data. `stamp` is the log position of the write (0: written before
/// its profile merged, ordered by row: a member created later counts as written later).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct OwnRecord {
    pub(crate) tags: BTreeMap<String, u64>,
    pub(crate) attrs: BTreeMap<String, (Value, u64)>,
}

/// The records of member ids in merged profiles.
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnRecords {
    map: HashMap<RowId, OwnRecord>,
    /// The rows with a record.
    rows: RoaringBitmap,
}

impl OwnRecords {
    pub(crate) fn rows(&self) -> &RoaringBitmap {
        &self.rows
    }

    pub(crate) fn get(&self, row: RowId) -> Option<&OwnRecord> {
        self.map.get(&row)
    }

    pub(crate) fn insert(&mut self, row: RowId, record: OwnRecord) {
        self.rows.insert(row);
        self.map.insert(row, record);
    }

    pub(crate) fn get_mut(&mut self, row: RowId) -> Option<&mut OwnRecord> {
        self.map.get_mut(&row)
    }

    pub(crate) fn remove(&mut self, row: RowId) -> Option<OwnRecord> {
        self.rows.remove(row);
        self.map.remove(&row)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (RowId, &OwnRecord)> {
        self.map.iter().map(|(&r, rec)| (r, rec))
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// What a profile of `rows` (with their records) shows: tags (of an exclusive group, the
/// one written last) and each attribute by its merge rule (NULL never overwrites a value).
pub(crate) fn combine(
    records: &[(RowId, &OwnRecord)],
    rule: &dyn Fn(&str) -> MergeRule,
    exclusive: &[(String, Vec<String>)],
) -> OwnRecord {
    let mut out = OwnRecord::default();
    for (row, rec) in records {
        for (tag, &stamp) in &rec.tags {
            let key = (stamp, *row);
            let e = out.tags.entry(tag.clone()).or_insert(stamp);
            *e = (*e).max(key.0);
        }
    }
    // Of an exclusive group, the tag written last (ties: the member created last).
    for (_, group) in exclusive {
        let present: Vec<(u64, RowId, &String)> = records
            .iter()
            .flat_map(|(row, rec)| {
                group
                    .iter()
                    .filter_map(move |t| rec.tags.get(t).map(|&s| (s, *row, t)))
            })
            .collect();
        if let Some(&(_, _, keep)) = present.iter().max() {
            for t in group {
                if t != keep {
                    out.tags.remove(t);
                }
            }
        }
    }
    let mut names: Vec<&String> = records.iter().flat_map(|(_, r)| r.attrs.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let candidates: Vec<(u64, RowId, &Value)> = records
            .iter()
            .filter_map(|(row, rec)| rec.attrs.get(name).map(|(v, s)| (*s, *row, v)))
            .collect();
        let stamp = candidates.iter().map(|c| c.0).max().unwrap_or(0);
        let value = match rule(name) {
            MergeRule::Latest => candidates
                .iter()
                .max_by_key(|c| (c.0, c.1))
                .map(|c| c.2.clone()),
            MergeRule::Earliest => candidates
                .iter()
                .min_by_key(|c| (c.0, c.1))
                .map(|c| c.2.clone()),
            MergeRule::Min => candidates
                .iter()
                .min_by(|a, b| a.2.order(b.2).unwrap_or(std::cmp::Ordering::Equal))
                .map(|c| c.2.clone()),
            MergeRule::Max => candidates
                .iter()
                .max_by(|a, b| a.2.order(b.2).unwrap_or(std::cmp::Ordering::Equal))
                .map(|c| c.2.clone()),
            MergeRule::Sum => sum(candidates.iter().map(|c| c.2)),
        };
        if let Some(v) = value {
            out.attrs.insert(name.clone(), (v, stamp));
        }
    }
    out
}

/// The sum of numbers (integers stay integers); `None` for other types.
fn sum<'a>(values: impl Iterator<Item = &'a Value>) -> Option<Value> {
    let mut int: Option<i64> = None;
    let mut float: Option<f64> = None;
    for v in values {
        match v {
            Value::Int(i) => int = Some(int.unwrap_or(0).saturating_add(*i)),
            Value::Float(f) => float = Some(float.unwrap_or(0.0) + f),
            _ => return None,
        }
    }
    match (int, float) {
        (Some(i), None) => Some(Value::Int(i)),
        (i, Some(f)) => Some(Value::Float(f + i.unwrap_or(0) as f64)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(tags: &[(&str, u64)], attrs: &[(&str, Value, u64)]) -> OwnRecord {
        OwnRecord {
            tags: tags.iter().map(|(t, s)| (t.to_string(), *s)).collect(),
            attrs: attrs
                .iter()
                .map(|(n, v, s)| (n.to_string(), (v.clone(), *s)))
                .collect(),
        }
    }

    #[test]
    fn rules_and_exclusive_tags() {
        let a = rec(
            &[("vip", 0), ("gold", 3)],
            &[
                ("city", Value::from("Shanghai"), 5),
                ("points", Value::Int(10), 0),
            ],
        );
        let b = rec(
            &[("silver", 7)],
            &[
                ("city", Value::from("Beijing"), 2),
                ("points", Value::Int(5), 9),
            ],
        );
        let exclusive = vec![("level".to_string(), vec!["gold".into(), "silver".into()])];
        let sum_points = |n: &str| {
            if n == "points" {
                MergeRule::Sum
            } else {
                MergeRule::Latest
            }
        };
        let out = combine(&[(1, &a), (2, &b)], &sum_points, &exclusive);
        assert_eq!(out.attrs["city"].0, Value::from("Shanghai"));
        assert_eq!(out.attrs["points"].0, Value::Int(15));
        let tags: Vec<&str> = out.tags.keys().map(String::as_str).collect();
        assert_eq!(tags, ["silver", "vip"]);
        let earliest = combine(&[(1, &a), (2, &b)], &|_| MergeRule::Earliest, &[]);
        assert_eq!(earliest.attrs["city"].0, Value::from("Beijing"));
        assert_eq!(earliest.attrs["points"].0, Value::Int(10));
    }
}
