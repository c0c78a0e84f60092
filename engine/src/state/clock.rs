//! The clock moving forward: every group that moves with time brought to the new instant,
//! each change of membership on its stream with the exact instant it happened at.
//!
//! For a move from `t0` to `t1`, the members whose membership can change are those with an
//! event entering or leaving a window the group reads in `(t0, t1]` (`groups::time`). Their
//! membership at `t0` is the group's bitmap; at `t1` one evaluation over all of them gives
//! it. A member with a single such instant changed there if the two differ. Members with
//! several are evaluated again halfway, and each half looked at the same way, until every
//! member has at most one instant in its piece: exact, and a few evaluations over many
//! members rather than one per member and instant.
//!
//! Traits that move with time are brought to the new instant in the same definition order,
//! before the groups that read them; a group evaluated at an instant inside the move binds
//! such a trait's definition at that instant. A `QUANTILE` trait moves the keys of the
//! members with an instant in the move (or ranks everyone again when they are many); as a
//! rank can move with others' values, a group reading one is not bisected: each change is
//! put at the member's own instant when it has one in the move, else at the move's end
//! (where members whose score moved only because others' values did are looked at too).

use roaring::RoaringBitmap;

use super::{State, refresh};
use crate::error::Result;
use crate::groups::stream::{ChangeCause, ChangeOp, RunBody, Timed};
use crate::groups::time;
use crate::members::RowId;
use crate::traits::Derived;

/// A piece `(a, b]` of a clock move, the members with two or more instants in it (indexes
/// into the candidates), and who of them is in the group at `a` and at `b`.
struct Piece {
    a: i64,
    b: i64,
    members: Vec<usize>,
    at_a: RoaringBitmap,
    at_b: RoaringBitmap,
}

impl State {
    /// Moves the clock forward to `t1`, applying every time-driven change up to it with
    /// the instant it happened at; the entries go to the groups' streams at `position`,
    /// cause `time`. Moving to the clock's instant or before does nothing.
    pub(crate) fn advance_clock(&mut self, t1: i64, position: u64) -> Result<()> {
        let t0 = self.clock;
        if t1 <= t0 {
            return Ok(());
        }
        // Members whose rank-based trait values moved: candidates of the groups after.
        let mut moved = RoaringBitmap::new();
        for derived in self.derived_order() {
            let i = match derived {
                Derived::Group(i) => i,
                Derived::Trait(i) => {
                    self.advance_trait(i, t0, t1, &mut moved)?;
                    continue;
                }
            };
            let group = &self.groups.groups[i];
            if !group.time_dependent {
                continue;
            }
            if group.next_change > t1 {
                self.groups.groups[i].valid_from = t1;
                continue;
            }
            let entries = self.transitions(i, t0, t1, &moved)?;
            let group = &mut self.groups.groups[i];
            if !entries.is_empty() {
                let bits = group.bitmap.make_mut();
                for e in &entries {
                    match e.op {
                        ChangeOp::Enter => bits.insert(e.row),
                        ChangeOp::Exit => bits.remove(e.row),
                    };
                }
                group
                    .stream
                    .push(position, ChangeCause::Time, RunBody::Timed(entries));
            }
            group.valid_from = t1;
            let next = time::next_boundary(self, &self.groups.groups[i].windows, t1);
            self.groups.groups[i].next_change = next;
        }
        self.clock = t1;
        self.trim_streams();
        Ok(())
    }

    /// Trait `i` brought to `t1` if it moves with time; the members whose value changed
    /// by others' data (a rank) are added to `moved`.
    fn advance_trait(
        &mut self,
        i: usize,
        t0: i64,
        t1: i64,
        moved: &mut RoaringBitmap,
    ) -> Result<()> {
        let t = &self.traits.traits[i];
        if !t.time_dependent {
            return Ok(());
        }
        if t.next_change > t1 {
            self.traits.traits[i].valid_from = t1;
            return Ok(());
        }
        // The members with an instant in the move, and, for a trait reading a rank, the
        // members that moved with it: nobody else's value can change.
        let candidates = time::boundaries(self, &t.windows, t0, t1)?;
        let mut rows: RoaringBitmap = candidates.members.iter().map(|(row, _)| *row).collect();
        if t.ranked {
            rows |= &*moved;
        }
        let rows: Vec<RowId> = rows.iter().collect();
        if !t.definition.ranks() {
            self.set_trait_values(i, t1, &rows)?;
        } else if refresh::moves_keys(t, rows.len() as u64) {
            // A QUANTILE moves those keys (members between moved boundaries follow).
            *moved |= self.move_ranks(i, t1, &rows)?;
        } else {
            *moved |= self.compute_trait(i, t1)?;
        }
        self.traits.traits[i].valid_from = t1;
        self.clock_for_trait(i, t1);
        Ok(())
    }

    /// Trait `i`'s next change computed from `at`.
    fn clock_for_trait(&mut self, i: usize, at: i64) {
        let next = time::next_boundary(self, &self.traits.traits[i].windows, at);
        self.traits.traits[i].next_change = next;
    }

    /// The changes of group `i`'s membership in `(t0, t1]`, in instant order (members in
    /// row order at the same instant); every group and trait before `i` is already at
    /// `t1`. Members of `moved` (their rank-based trait values moved at `t1`) are looked
    /// at too, at `t1`.
    fn transitions(&self, i: usize, t0: i64, t1: i64, moved: &RoaringBitmap) -> Result<Vec<Timed>> {
        let group = &self.groups.groups[i];
        let mut candidates = time::boundaries(self, &group.windows, t0, t1)?;
        // Only a group reading a QUANTILE can move with others' ranks.
        if group.ranked && !moved.is_empty() {
            candidates.add(moved, t1);
        }
        // Windows only losing events and a definition that only falls (or only rises) with
        // them: a member in the group at both ends (or at neither) never left in between,
        // so only members that changed are looked at closer.
        let monotone = !candidates.entering && group.monotony != time::Monotony::Either;
        if candidates.members.is_empty() {
            return Ok(Vec::new());
        }
        let all = RoaringBitmap::from_sorted_iter(candidates.members.iter().map(|(row, _)| *row))
            .expect("rows ascend");
        let at_t0 = &all & self.groups.groups[i].bitmap.as_ref();
        let at_t1 = self.evaluate_group(i, t1, &all)?;
        let mut out = Vec::new();
        if self.groups.groups[i].ranked {
            // Reading a QUANTILE, an evaluation at an instant inside the move ranks everyone
            // again: each change is put at the member's own instant when it has one in the
            // move, else at the move's end.
            for (k, (row, _)) in candidates.members.iter().enumerate() {
                if let Some(op) = change(*row, &at_t0, &at_t1) {
                    let mut instants = candidates.instants(k);
                    let at = match (instants.next(), instants.next()) {
                        (Some(only), None) => only,
                        _ => t1,
                    };
                    out.push(Timed { at, row: *row, op });
                }
            }
            out.sort_unstable_by_key(|e| (e.at, e.row));
            return Ok(out);
        }
        let mut pieces = vec![Piece {
            a: t0,
            b: t1,
            members: (0..candidates.members.len()).collect(),
            at_a: at_t0,
            at_b: at_t1,
        }];
        while let Some(piece) = pieces.pop() {
            let mut several = Vec::new();
            for &k in &piece.members {
                let row = &candidates.members[k].0;
                let mut inside = candidates
                    .instants(k)
                    .filter(|&t| piece.a < t && t <= piece.b);
                let first = inside.next();
                let more = inside.next().is_some();
                match (first, more) {
                    (None, _) => {}
                    (Some(at), false) => {
                        if let Some(op) = change(*row, &piece.at_a, &piece.at_b) {
                            out.push(Timed { at, row: *row, op });
                        }
                    }
                    _ if monotone && piece.at_a.contains(*row) == piece.at_b.contains(*row) => {}
                    _ => several.push(k),
                }
            }
            if several.is_empty() {
                continue;
            }
            // Two distinct instants in (a, b] leave room for a midpoint strictly inside.
            let mid = piece.a + ((piece.b - piece.a) / 2);
            let rows: RoaringBitmap = several.iter().map(|&k| candidates.members[k].0).collect();
            let at_mid = self.evaluate_group(i, mid, &rows)?;
            pieces.push(Piece {
                a: mid,
                b: piece.b,
                members: several.clone(),
                at_a: at_mid.clone(),
                at_b: piece.at_b,
            });
            pieces.push(Piece {
                a: piece.a,
                b: mid,
                members: several,
                at_a: piece.at_a,
                at_b: at_mid,
            });
        }
        out.sort_unstable_by_key(|e| (e.at, e.row));
        Ok(out)
    }
}

/// How `row` changed between two memberships, if it did.
fn change(row: RowId, before: &RoaringBitmap, after: &RoaringBitmap) -> Option<ChangeOp> {
    match (before.contains(row), after.contains(row)) {
        (false, true) => Some(ChangeOp::Enter),
        (true, false) => Some(ChangeOp::Exit),
        _ => None,
    }
}
