//! The replay rules of DESIGN section 11: observations in order give profiles. An
//! observation matching no profile starts one, one profile joins it, several merge into the
//! one created first; limits are strict (the observation's identifier of the lowest priority
//! is dropped and matching retried); a value is held by at most one profile.
//!
//! The graph knows rows and identifier codes only: values are interned per type by the
//! [`super::IdentityStore`], and new rows come from the caller, so that the same rules run
//! at commit, at open and when an unmerge replays the profiles it touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::members::RowId;

/// An identifier type's index in the store's declarations.
pub(crate) type TypeId = u16;

/// One identifier: its type and its value's code in that type's dictionary.
pub(crate) type Ident = (TypeId, u32);

/// What the rules need of a type's declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) limit: u32,
    pub(crate) priority: u32,
}

/// A profile: the rows that are one person, the identifiers it holds and the observations
/// that made it. `rows[0]` is its canonical row (created first: the lowest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Profile {
    pub(crate) rows: Vec<RowId>,
    pub(crate) values: Vec<Ident>,
    pub(crate) observations: Vec<u32>,
}

/// What one observation did to the graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Step {
    /// The profile it ended in (canonical row), if it was applied.
    pub(crate) profile: Option<RowId>,
    /// The canonical rows of the profiles merged into `profile`.
    pub(crate) absorbed: Vec<RowId>,
    /// `profile` was started by this observation, on a new row.
    pub(crate) created: bool,
    /// Identifiers dropped by a limit, with the type whose limit applied.
    pub(crate) dropped: Vec<(Ident, TypeId)>,
    /// A merge of explicit members refused because it would break the limit of this type.
    pub(crate) refused: Option<TypeId>,
}

/// Rows, profiles and holders of values. Rows never seen by an observation are profiles of
/// their own with no identifiers and are not stored.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    /// Profiles with an identifier or more than one row, by canonical row.
    profiles: HashMap<RowId, Profile>,
    /// Rows merged into another profile: their canonical row.
    canon: HashMap<RowId, RowId>,
    /// Per type, the canonical row holding each value code (`NONE`: no one).
    holders: Vec<Vec<RowId>>,
}

const NONE: RowId = RowId::MAX;

impl Graph {
    /// The canonical row of `row`'s profile.
    pub(crate) fn canonical(&self, row: RowId) -> RowId {
        self.canon.get(&row).copied().unwrap_or(row)
    }

    /// The rows merged into other profiles, with their canonical rows.
    pub(crate) fn absorbed(&self) -> impl Iterator<Item = (RowId, RowId)> + '_ {
        self.canon.iter().map(|(&r, &c)| (r, c))
    }

    /// The profile whose canonical row is `row` (`None`: no identifiers, one row).
    pub(crate) fn profile(&self, row: RowId) -> Option<&Profile> {
        self.profiles.get(&row)
    }

    /// Every stored profile, by canonical row.
    pub(crate) fn profiles(&self) -> impl Iterator<Item = (RowId, &Profile)> {
        self.profiles.iter().map(|(&r, p)| (r, p))
    }

    /// The canonical row of the profile holding `id`.
    pub(crate) fn holder(&self, id: Ident) -> Option<RowId> {
        let h = *self.holders.get(id.0 as usize)?.get(id.1 as usize)?;
        (h != NONE).then_some(h)
    }

    fn set_holder(&mut self, id: Ident, row: RowId) {
        if self.holders.len() <= id.0 as usize {
            self.holders.resize(id.0 as usize + 1, Vec::new());
        }
        let slot = &mut self.holders[id.0 as usize];
        if slot.len() <= id.1 as usize {
            slot.resize(id.1 as usize + 1, NONE);
        }
        slot[id.1 as usize] = row;
    }

    fn values_of(&self, canonical: RowId) -> &[Ident] {
        self.profiles
            .get(&canonical)
            .map_or(&[][..], |p| &p.values[..])
    }

    /// The type whose limit the union of these profiles' values and `extra` would break.
    fn overflow(
        &self,
        rules: &[Rule],
        profiles: &BTreeSet<RowId>,
        extra: &[Ident],
    ) -> Option<TypeId> {
        let mut counts: BTreeMap<TypeId, BTreeSet<u32>> = BTreeMap::new();
        for &p in profiles {
            for &(t, v) in self.values_of(p) {
                counts.entry(t).or_default().insert(v);
            }
        }
        for &(t, v) in extra {
            counts.entry(t).or_default().insert(v);
        }
        counts
            .into_iter()
            .find(|(t, values)| values.len() as u64 > u64::from(rules[*t as usize].limit))
            .map(|(t, _)| t)
    }

    /// The type whose limit merging the profiles of `a` and `b` would break.
    pub(crate) fn merge_conflict(&self, rules: &[Rule], a: RowId, b: RowId) -> Option<TypeId> {
        let set = BTreeSet::from([self.canonical(a), self.canonical(b)]);
        self.overflow(rules, &set, &[])
    }

    /// Replays observation `obs`: the explicit `members` (never dropped) and identifiers
    /// `ids` (blocked and repeated ones already taken out), in order. `new_row` gives the
    /// row of a profile this observation starts, from the identifiers it keeps.
    pub(crate) fn observe(
        &mut self,
        rules: &[Rule],
        obs: u32,
        members: &[RowId],
        ids: &[Ident],
        new_row: &mut dyn FnMut(&[Ident]) -> RowId,
    ) -> Step {
        let mut step = Step::default();
        let mut kept: Vec<Ident> = ids.to_vec();
        let explicit: BTreeSet<RowId> = members.iter().map(|&m| self.canonical(m)).collect();
        let matched = loop {
            let mut matched = explicit.clone();
            matched.extend(kept.iter().filter_map(|&id| self.holder(id)));
            let Some(over) = self.overflow(rules, &matched, &kept) else {
                break matched;
            };
            // Drop the observation's identifier of the lowest priority (the last of equals).
            let victim = kept
                .iter()
                .enumerate()
                .max_by_key(|(i, (t, _))| (rules[*t as usize].priority, *i))
                .map(|(i, _)| i);
            match victim {
                Some(i) => step.dropped.push((kept.remove(i), over)),
                None => {
                    // Only explicit members are left, and together they break a limit.
                    step.refused = Some(over);
                    return step;
                }
            }
        };
        let target = match matched.first() {
            Some(&first) => first,
            None => {
                if kept.is_empty() {
                    return step;
                }
                step.created = true;
                new_row(&kept)
            }
        };
        for &other in matched.iter().skip(1) {
            let absorbed = self.profiles.remove(&other).unwrap_or(Profile {
                rows: vec![other],
                ..Profile::default()
            });
            for &(t, v) in &absorbed.values {
                self.set_holder((t, v), target);
            }
            for &row in &absorbed.rows {
                self.canon.insert(row, target);
            }
            let profile = self.profile_entry(target);
            profile.rows.extend(absorbed.rows);
            profile.values.extend(absorbed.values);
            profile.observations.extend(absorbed.observations);
            step.absorbed.push(other);
        }
        for &id in &kept {
            if self.holder(id) != Some(target) {
                self.set_holder(id, target);
                self.profile_entry(target).values.push(id);
            }
        }
        let profile = self.profile_entry(target);
        profile.rows.sort_unstable();
        profile.observations.sort_unstable();
        profile.observations.push(obs);
        step.profile = Some(target);
        step
    }

    fn profile_entry(&mut self, canonical: RowId) -> &mut Profile {
        self.profiles.entry(canonical).or_insert_with(|| Profile {
            rows: vec![canonical],
            ..Profile::default()
        })
    }

    /// Takes `id` from the profile of `row`. Returns whether it held it.
    pub(crate) fn unlink(&mut self, obs: u32, row: RowId, id: Ident) -> bool {
        let canonical = self.canonical(row);
        if self.holder(id) != Some(canonical) {
            return false;
        }
        self.set_holder(id, NONE);
        let profile = self.profile_entry(canonical);
        profile.values.retain(|&v| v != id);
        profile.observations.push(obs);
        true
    }

    /// Forgets the profiles of `rows` (every row alone again, holding nothing) and the
    /// holders of `values`, so that their observations can be replayed.
    pub(crate) fn reset(&mut self, rows: &BTreeSet<RowId>, values: &BTreeSet<Ident>) {
        for &row in rows {
            self.canon.remove(&row);
            self.profiles.remove(&row);
        }
        for &id in values {
            if self.holder(id).is_some() {
                self.set_holder(id, NONE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: [Rule; 3] = [
        Rule {
            limit: 1,
            priority: 1,
        }, // unionid
        Rule {
            limit: 1,
            priority: 2,
        }, // phone
        Rule {
            limit: 20,
            priority: 4,
        }, // openid
    ];

    fn observe(
        g: &mut Graph,
        next: &mut RowId,
        obs: u32,
        members: &[RowId],
        ids: &[Ident],
    ) -> Step {
        g.observe(&RULES, obs, members, ids, &mut |_| {
            *next += 1;
            *next - 1
        })
    }

    #[test]
    fn start_join_merge_and_limits() {
        let mut g = Graph::default();
        let mut next = 10;
        // openid A starts a profile; openid B with the same unionid joins... separately.
        let s1 = observe(&mut g, &mut next, 1, &[], &[(2, 0), (0, 0)]);
        assert_eq!((s1.profile, s1.created), (Some(10), true));
        let s2 = observe(&mut g, &mut next, 2, &[], &[(2, 1)]);
        assert_eq!(s2.profile, Some(11));
        // openid B seen with unionid 0: joins profile 10 and merges 11 into it.
        let s3 = observe(&mut g, &mut next, 3, &[], &[(2, 1), (0, 0)]);
        assert_eq!((s3.profile, s3.absorbed.clone()), (Some(10), vec![11]));
        assert_eq!(g.canonical(11), 10);
        assert_eq!(g.profile(10).unwrap().rows, vec![10, 11]);
        // A second unionid with openid A: the limit of unionid drops it (priority 1 is the
        // highest, but it is the only identifier that overflows... the lowest priority of
        // the observation is openid, dropping it leaves unionid 1 alone: a new profile).
        let s4 = observe(&mut g, &mut next, 4, &[], &[(2, 0), (0, 1)]);
        assert_eq!(s4.dropped, vec![((2, 0), 0)]);
        assert_eq!((s4.profile, s4.created), (Some(12), true));
        // Merging 10 and 12 breaks unionid's limit.
        assert_eq!(g.merge_conflict(&RULES, 10, 12), Some(0));
        let s5 = observe(&mut g, &mut next, 5, &[10, 12], &[]);
        assert_eq!(s5.refused, Some(0));
        assert!(g.unlink(6, 12, (0, 1)));
        assert_eq!(g.holder((0, 1)), None);
    }
}
