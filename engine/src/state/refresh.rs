//! Groups and traits brought up to date after changes, in the one definition order they
//! share (each reads only what was defined before it), from what the changes touched.
//!
//! A group or trait whose reads were not touched keeps its bitmap or values. One whose
//! reads were is evaluated over the touched members only, through the same plan as a query
//! over a universe of those members, and changes for them alone; one just defined, every one
//! after a change that may have touched anything, and every one when the touched members are
//! more than [`WHOLE_REFRESH`] of them (a bulk load: one walk over everyone is then cheaper)
//! is evaluated over every member. A `QUANTILE` trait moves the keys of the touched members
//! in its ranks (`traits::ranks`) and scores again those whose score moved; it ranks
//! everyone again when too many keys move.
//!
//! A trait whose values change adds its name to the touched attributes and the members
//! whose value changed to the touched members (a rank can move members no write touched),
//! so the groups and traits after it that read it follow; a group whose members change does
//! the same for those reading the group.

use roaring::RoaringBitmap;

use super::{State, Touched};
use crate::attributes::{AttrIndex, Attribute};
use crate::bitmap::{Bitmap, Chunks};
use crate::column::Column;
use crate::computed::eval::BoundValue;
use crate::error::Result;
use crate::groups::stream::{ChangeCause, ChangeOp, RunBody};
use crate::members::RowId;
use crate::plan::{self, Universe};
use crate::traits::ranks::{Ranks, score};
use crate::traits::{Derived, TraitDef};
use crate::value::{DataType, Value};

/// Above this share of the live members touched, groups and traits are evaluated over
/// everyone.
const WHOLE_REFRESH: f64 = 1.0 / 16.0;

/// Up to this many members whose keys can have moved, or [`MOVED_SHARE`] of the ranked
/// members if more, a `QUANTILE` moves their keys; above, it ranks everyone again.
const MOVED_KEYS: u64 = 256;
const MOVED_SHARE: u64 = 64;

/// Whether a `QUANTILE` with `ranked` members moves `moving` keys rather than ranking
/// everyone again (a key moves in `O(sqrt n)`; ranking everyone sorts them all).
pub(super) fn moves_keys(trait_: &crate::traits::Trait, moving: u64) -> bool {
    trait_
        .ranks
        .as_ref()
        .is_some_and(|r| moving <= MOVED_KEYS.max(r.members.len() / MOVED_SHARE))
}

/// The members whose values of a trait changed.
enum Changed {
    Nobody,
    /// Only members the changes touched (a write's member).
    AmongTouched,
    /// These (a rank can move members nobody touched).
    Rows(RoaringBitmap),
}

/// Which groups and traits to look at, growing as the ones before them change.
struct Marks {
    groups: Vec<bool>,
    traits: Vec<bool>,
    group_windows: Vec<bool>,
    trait_windows: Vec<bool>,
}

impl Marks {
    /// Marks what reads `touched`'s names.
    fn of(state: &State, touched: &Touched) -> Marks {
        // Members created, merged or split change who is live: every group and trait ranges
        // over the live members (an absorbed member id leaves even `ALL`).
        let everyone = touched.everything
            || touched.created
            || !touched.merged.is_empty()
            || !touched.erased.is_empty();
        let mut marks = Marks {
            groups: vec![everyone; state.groups.groups.len()],
            traits: vec![everyone; state.traits.traits.len()],
            group_windows: vec![touched.everything; state.groups.groups.len()],
            trait_windows: vec![touched.everything; state.traits.traits.len()],
        };
        if !everyone {
            let (g, t) = (&state.groups.dependents, &state.traits.dependents);
            for (names, group_users, trait_users) in [
                (&touched.tags, &g.tags, &t.tags),
                (&touched.attributes, &g.attributes, &t.attributes),
                (&touched.events, &g.events, &t.events),
                (&touched.groups, &g.groups, &t.groups),
            ] {
                for name in names {
                    mark(&mut marks.groups, group_users, name);
                    mark(&mut marks.traits, trait_users, name);
                }
            }
            // Identifier types are read like attributes of their name.
            if touched.identities {
                for def in state.identity.defs() {
                    mark(&mut marks.groups, &g.attributes, &def.name);
                    mark(&mut marks.traits, &t.attributes, &def.name);
                }
            }
        }
        for name in &touched.events {
            mark(
                &mut marks.group_windows,
                &state.groups.dependents.window_events,
                name,
            );
            mark(
                &mut marks.trait_windows,
                &state.traits.dependents.window_events,
                name,
            );
        }
        for name in &touched.attributes {
            let (g, t) = (&state.groups.dependents, &state.traits.dependents);
            mark(&mut marks.group_windows, &g.window_attributes, name);
            mark(&mut marks.trait_windows, &t.window_attributes, name);
        }
        marks
    }
}

fn mark(marks: &mut [bool], users: &hashbrown::HashMap<String, Vec<usize>>, name: &str) {
    for &i in users.get(name).into_iter().flatten() {
        marks[i] = true;
    }
}

impl State {
    /// Brings every group and trait up to date after changes that touched `touched`, at the
    /// state's clock. Each change of a group's members goes to its stream at `position`,
    /// cause `write`; a group just defined starts without history.
    pub(crate) fn refresh_derived(&mut self, touched: Touched, position: u64) -> Result<()> {
        if touched.is_empty() || (self.groups.groups.is_empty() && self.traits.traits.is_empty()) {
            return Ok(());
        }
        self.grow_traits();
        let marks = Marks::of(self, &touched);
        if touched.members.len() == 1
            && let Some(row) = touched.members.min()
        {
            // One member's write: the old values of the traits to look at are read first,
            // together (their misses overlap), then one trait after another.
            for (t, _) in self
                .traits
                .traits
                .iter()
                .zip(&marks.traits)
                .filter(|m| *m.1)
            {
                t.values.column.touch(row as usize);
            }
        }
        let refreshed = self.refresh_in_order(touched, marks, position);
        self.fold_one_index();
        refreshed
    }

    /// Folds the pending rows of the trait index that has the most, if one is due
    /// ([`AttrIndex::fold_due`]): one per write, so that traits changed together by every
    /// write do not all fold on one.
    fn fold_one_index(&mut self) {
        let fullest = (self.traits.traits.iter().enumerate())
            .map(|(i, t)| (t.values.index.fold_due(), i))
            .max();
        if let Some((due, i)) = fullest
            && due > 0
        {
            let Attribute { column, index, .. } =
                std::sync::Arc::make_mut(&mut self.traits.traits[i].values);
            index.fold(column);
        }
    }

    /// Each group and trait in definition order brought up to date (see
    /// [`refresh_derived`](Self::refresh_derived)).
    fn refresh_in_order(
        &mut self,
        mut touched: Touched,
        mut marks: Marks,
        position: u64,
    ) -> Result<()> {
        // The touched members as chunks, for the groups' plans (kept while they stay the
        // same: a trait's changed members are among them unless a rank moved others).
        let mut members: Option<(u64, Chunks)> = None;
        for derived in self.derived_order() {
            let live = self.members.live().len();
            let whole =
                touched.everything || touched.members.len() as f64 > live as f64 * WHOLE_REFRESH;
            match derived {
                Derived::Group(i) => {
                    let chunks = if whole {
                        None
                    } else {
                        if members
                            .as_ref()
                            .is_none_or(|(n, _)| *n != touched.members.len())
                        {
                            // Members no longer live (an absorbed member id, an erased
                            // member) are not evaluated: they leave.
                            let chunks = if self.members.has_dead_rows() {
                                Chunks::from_roaring(
                                    &(&touched.members & self.members.live().as_ref()),
                                )
                            } else {
                                Chunks::from_roaring(&touched.members)
                            };
                            members = Some((touched.members.len(), chunks));
                        }
                        members.as_ref().map(|(_, c)| c)
                    };
                    let changed = self.refresh_group(i, &touched, chunks, &marks, position)?;
                    if changed {
                        let name = self.groups.groups[i].name.clone();
                        mark(&mut marks.groups, &self.groups.dependents.groups, &name);
                        mark(&mut marks.traits, &self.traits.dependents.groups, &name);
                        touched.groups.insert(name);
                    }
                }
                Derived::Trait(i) => {
                    let changed = match self.refresh_trait(i, &touched, whole, &marks)? {
                        Changed::Nobody => false,
                        Changed::AmongTouched => true,
                        Changed::Rows(rows) if rows.is_empty() => false,
                        Changed::Rows(rows) => {
                            // Usually the touched members themselves (a rank can move
                            // others).
                            if !rows.is_subset(&touched.members) {
                                touched.members |= rows;
                            }
                            true
                        }
                    };
                    if changed {
                        let name = &self.traits.traits[i].name;
                        mark(&mut marks.groups, &self.groups.dependents.attributes, name);
                        mark(&mut marks.traits, &self.traits.dependents.attributes, name);
                        if !touched.attributes.contains(name) {
                            touched.attributes.insert(name.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Every trait's values cover every member row (new members NULL until refreshed).
    fn grow_traits(&mut self) {
        let members = self.members.len();
        for t in &mut self.traits.traits {
            let missing = members.saturating_sub(t.values.column.len());
            if missing > 0 {
                std::sync::Arc::make_mut(&mut t.values)
                    .column
                    .extend_nulls(missing);
            }
        }
    }

    /// Group `i` brought up to date; true when its members changed.
    fn refresh_group(
        &mut self,
        i: usize,
        touched: &Touched,
        members: Option<&Chunks>,
        marks: &Marks,
        position: u64,
    ) -> Result<bool> {
        let now = self.clock;
        let group = &mut self.groups.groups[i];
        // A write can change what the definition selects at earlier instants: the bitmap
        // holds from now on.
        if group.time_dependent {
            group.valid_from = now;
        }
        let defined = touched.defined.contains(&group.name);
        if defined {
            group.defined_at = position;
        }
        if !marks.groups[i] && !defined {
            if marks.group_windows[i] {
                self.note_next_change(i, Some(touched));
            }
            return Ok(false);
        }
        let group = &self.groups.groups[i];
        let plan = plan::bind(self, &group.definition, now, None)?;
        let (enters, exits) = match members {
            Some(members) if !defined => {
                let inside = plan.bitmap(Universe::of(members), None)?;
                let before = if touched.members.len() <= 64 {
                    // A few members: looked up, not intersected.
                    let bitmap = group.bitmap.as_ref();
                    touched
                        .members
                        .iter()
                        .filter(|&m| bitmap.contains(m))
                        .collect()
                } else {
                    &*group.bitmap & &touched.members
                };
                if before == inside {
                    if marks.group_windows[i] {
                        self.note_next_change(i, Some(touched));
                    }
                    return Ok(false);
                }
                let (enters, exits) = (&inside - &before, &before - &inside);
                // In place: only the touched members' bits change (the bitmap is copied
                // first only if a snapshot shares it).
                let bits = &mut self.groups.groups[i].bitmap;
                bits.remove_all(&exits);
                bits.add_all(&enters);
                (enters, exits)
            }
            _ => {
                let bitmap = plan.bitmap(Universe::live(self), None)?;
                let old = &self.groups.groups[i].bitmap;
                let changes = if defined {
                    // DEFINE emits no history: readers start from a snapshot.
                    (RoaringBitmap::new(), RoaringBitmap::new())
                } else {
                    (&bitmap - old.as_ref(), old.as_ref() - &bitmap)
                };
                self.groups.groups[i].bitmap = Bitmap::new(bitmap);
                changes
            }
        };
        let changed = !enters.is_empty() || !exits.is_empty();
        let group = &mut self.groups.groups[i];
        for (op, rows) in [(ChangeOp::Exit, exits), (ChangeOp::Enter, enters)] {
            // Members of profiles that merged or split, and erased members, change for
            // that cause.
            let (erased, rows) = if touched.erased.is_empty() {
                (RoaringBitmap::new(), rows)
            } else {
                (&rows & &touched.erased, rows - &touched.erased)
            };
            let (merged, written) = if touched.merged.is_empty() {
                (RoaringBitmap::new(), rows)
            } else {
                (&rows & &touched.merged, rows - &touched.merged)
            };
            for (cause, rows) in [
                (ChangeCause::Erase, erased),
                (ChangeCause::Merge, merged),
                (ChangeCause::Write, written),
            ] {
                if !rows.is_empty() {
                    group
                        .stream
                        .push(position, cause, RunBody::Same { op, at: now, rows });
                }
            }
        }
        if group.time_dependent {
            self.note_next_change(i, Some(touched));
        }
        Ok(changed)
    }

    /// Trait `i` brought up to date; the members whose value changed.
    fn refresh_trait(
        &mut self,
        i: usize,
        touched: &Touched,
        whole: bool,
        marks: &Marks,
    ) -> Result<Changed> {
        let now = self.clock;
        let t = &mut self.traits.traits[i];
        if t.time_dependent {
            t.valid_from = now;
        }
        let defined = touched.defined.contains(&t.name);
        if !marks.traits[i] && !defined {
            if marks.trait_windows[i] {
                self.note_trait_change(i, Some(touched));
            }
            return Ok(Changed::Nobody);
        }
        let t = &self.traits.traits[i];
        if !whole
            && !defined
            && !t.definition.ranks()
            && touched.members.len() == 1
            && let Some(row) = touched.members.min()
        {
            // One member's write: nothing allocated for it.
            let changed = self.set_trait_value_of(i, now, row)?;
            if self.traits.traits[i].time_dependent {
                self.note_trait_change(i, Some(touched));
            }
            return Ok(if changed {
                Changed::AmongTouched
            } else {
                Changed::Nobody
            });
        }
        let few: Option<Vec<RowId>> =
            (!whole && !defined).then(|| touched.members.iter().collect());
        let changed = match few {
            Some(rows) if !t.definition.ranks() => self.set_trait_values(i, now, &rows)?,
            // A QUANTILE moves the touched members' keys (or ranks everyone again when it
            // cannot).
            Some(rows) if moves_keys(t, rows.len() as u64) => self.move_ranks(i, now, &rows)?,
            _ => self.compute_trait(i, now)?,
        };
        if self.traits.traits[i].time_dependent {
            self.note_trait_change(i, Some(touched));
        }
        Ok(Changed::Rows(changed))
    }

    /// Trait `i`'s value of member `row` computed at `now` and stored, its index entries
    /// moved later with other members' ([`AttrIndex::set_later`]); whether it changed.
    fn set_trait_value_of(&mut self, i: usize, now: i64, row: RowId) -> Result<bool> {
        let t = &self.traits.traits[i];
        let bound = plan::bind_trait(self, t, now)?;
        // Its value alone, no columns.
        let new = if self.members.live().contains(row) {
            bound.value_of(row, self.members.len())?
        } else {
            None
        };
        // The one-member path gives what the columns' path gives (every debug test
        // writing to a trait checks it).
        #[cfg(debug_assertions)]
        if self.members.live().contains(row) {
            let expected = bound.value_in_set(row, self.members.len())?;
            assert_eq!(new, expected, "trait {} of row {row}", t.name);
        }
        if t.values.column.get(row as usize) == new {
            return Ok(false);
        }
        drop(bound);
        let Attribute { column, index, .. } =
            std::sync::Arc::make_mut(&mut self.traits.traits[i].values);
        index.set_later(column, row, new.as_ref());
        Ok(true)
    }

    /// Trait `i`'s values of the members `rows` computed at `now` and stored; the rows
    /// whose value changed.
    pub(super) fn set_trait_values(
        &mut self,
        i: usize,
        now: i64,
        rows: &[RowId],
    ) -> Result<RoaringBitmap> {
        if let [row] = *rows {
            let changed = self.set_trait_value_of(i, now, row)?;
            return Ok(if changed {
                RoaringBitmap::from([row])
            } else {
                RoaringBitmap::new()
            });
        }
        let t = &self.traits.traits[i];
        let bound = plan::bind_trait(self, t, now)?;
        let live = self.members.live().as_ref();
        let values = bound.values(Some(rows), self.members.len())?;
        let empty = bound.empty();
        let mut updates = Vec::new();
        let mut at = 0;
        for &row in rows {
            while at < values.rows.len() && values.rows[at] < row {
                at += 1;
            }
            let new = if at < values.rows.len() && values.rows[at] == row {
                values.column.get(at)
            } else if live.contains(row) {
                empty.clone()
            } else {
                None
            };
            if t.values.column.get(row as usize) != new {
                updates.push((row, new));
            }
        }
        drop(bound);
        Ok(self.store_trait_values(i, updates))
    }

    /// Stores new values of trait `i` (its index kept current); the rows changed.
    fn store_trait_values(
        &mut self,
        i: usize,
        updates: Vec<(RowId, Option<Value>)>,
    ) -> RoaringBitmap {
        let mut changed = RoaringBitmap::new();
        if updates.is_empty() {
            return changed;
        }
        let attr = std::sync::Arc::make_mut(&mut self.traits.traits[i].values);
        for (row, value) in updates {
            attr.index.set(&mut attr.column, row, value.as_ref());
            changed.insert(row);
        }
        changed
    }

    /// Trait `i`'s values of every member computed at `now` and stored; the rows whose
    /// value changed.
    pub(super) fn compute_trait(&mut self, i: usize, now: i64) -> Result<RoaringBitmap> {
        let t = &self.traits.traits[i];
        let (column, ranks) = match plan::bind_trait(self, t, now)? {
            BoundValue::Quantile(q) => {
                // Ranked once over everyone; writes then move a few keys (`ranks.rs`).
                let n = self.members.len();
                let ranks = Ranks::new(&q.ranked(None, n)?, n);
                let boundaries = ranks.sorted.boundaries(q.buckets);
                let mut column = Column::nulls(DataType::Int, n);
                for row in &ranks.members {
                    let key = ranks.keys[row as usize];
                    column.set(row as usize, Some(&Value::Int(score(key, &boundaries))));
                }
                (column, Some(std::sync::Arc::new(ranks)))
            }
            _ => (self.trait_column(t, now)?, None),
        };
        self.traits.traits[i].ranks = ranks;
        let t = &self.traits.traits[i];
        let old = &t.values.column;
        let changed: RoaringBitmap = (0..column.len())
            .filter(|&row| old.get(row) != column.get(row))
            .map(|row| row as RowId)
            .collect();
        if !changed.is_empty() {
            let index = AttrIndex::build(&column);
            let name = self.traits.traits[i].name.clone();
            self.traits.traits[i].values = std::sync::Arc::new(Attribute {
                name,
                column,
                index,
            });
        }
        Ok(changed)
    }

    /// Trait `t`'s values of every member at `now`: one row per member, the members
    /// without a value of the definition given its empty value (0 for counts and sums),
    /// retired members NULL.
    pub(crate) fn trait_column(&self, t: &crate::traits::Trait, now: i64) -> Result<Column> {
        let n = self.members.len();
        let bound = plan::bind_trait(self, t, now)?;
        let values = bound.values(None, n)?;
        let empty = bound.empty();
        let live = self.members.live().as_ref();
        let mut column = Column::new(t.data_type());
        column.reserve(n);
        let mut at = 0;
        for row in 0..n as RowId {
            while at < values.rows.len() && values.rows[at] < row {
                at += 1;
            }
            let new = if at < values.rows.len() && values.rows[at] == row {
                values.column.get(at)
            } else if live.contains(row) {
                empty.clone()
            } else {
                None
            };
            column.push(new.as_ref());
        }
        Ok(column)
    }

    /// The values of attribute or trait `name` at `now`: an attribute's column, a trait's
    /// values when they hold at `now`, else its definition computed at `now`.
    pub(crate) fn column_at(
        &self,
        name: &str,
        now: i64,
    ) -> Result<std::borrow::Cow<'_, Attribute>> {
        use std::borrow::Cow;
        Ok(match self.require_named(name)? {
            super::Named::Attribute(a) => Cow::Borrowed(a),
            super::Named::Trait(t) if t.holds_at(now) => Cow::Borrowed(&*t.values),
            super::Named::Trait(t) => {
                let column = self.trait_column(t, now)?;
                let index = AttrIndex::build(&column);
                Cow::Owned(Attribute {
                    name: name.to_string(),
                    column,
                    index,
                })
            }
        })
    }

    /// QUANTILE trait `i` after a change that can have moved the keys of `rows` only (a
    /// write's touched members, a clock move's members with an instant in it): their keys
    /// move, and the members whose score changes (theirs, or a key between an old and a
    /// new boundary, found in key order) are scored again; the rows whose value changed.
    pub(super) fn move_ranks(
        &mut self,
        i: usize,
        now: i64,
        rows: &[RowId],
    ) -> Result<RoaringBitmap> {
        let t = &self.traits.traits[i];
        let TraitDef::Quantile { buckets, .. } = t.definition else {
            return self.compute_trait(i, now);
        };
        let BoundValue::Quantile(q) = plan::bind_trait(self, t, now)? else {
            return self.compute_trait(i, now);
        };
        // The rows' keys now: in OVER and with a value.
        let keyed = q.ranked(Some(rows), self.members.len())?;
        drop(q);
        let ranks = std::sync::Arc::make_mut(self.traits.traits[i].ranks.get_or_insert_default());
        let before = ranks.sorted.boundaries(buckets);
        let mut at = 0;
        for &row in rows {
            while at < keyed.len() && keyed[at].0 < row {
                at += 1;
            }
            let key = keyed.get(at).filter(|p| p.0 == row).map(|p| p.1);
            ranks.set(row, key);
        }
        let after = ranks.sorted.boundaries(buckets);
        if before.len() != after.len() {
            // Nobody was ranked, or nobody is: everyone is scored again.
            return self.compute_trait(i, now);
        }
        // The rows, and members whose key lies between an old and a new boundary.
        let mut candidates: RoaringBitmap = rows.iter().copied().collect();
        for (&b0, &b1) in before.iter().zip(&after) {
            if b0 != b1 {
                candidates.extend(ranks.sorted.rows_between(b0.min(b1), b0.max(b1)));
            }
        }
        let ranks = self.traits.traits[i].ranks.clone().expect("ranks");
        let column = &self.traits.traits[i].values.column;
        let updates: Vec<(RowId, Option<Value>)> = candidates
            .iter()
            .filter_map(|m| {
                let new = ranks.key(m).map(|k| Value::Int(score(k, &after)));
                (column.get(m as usize) != new).then_some((m, new))
            })
            .collect();
        Ok(self.store_trait_values(i, updates))
    }

    /// Recomputes when trait `i`, which moves with time, next changes without new data.
    pub(super) fn note_trait_change(&mut self, i: usize, touched: Option<&Touched>) {
        let t = &self.traits.traits[i];
        let next = self.next_change_of(&t.windows, t.next_change, touched);
        self.traits.traits[i].next_change = next;
    }
}
