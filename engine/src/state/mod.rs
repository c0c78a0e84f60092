//! The whole in-memory state of a database: members, attributes, tags, events and groups;
//! the one place it changes (`apply.rs`), what changes touched (`touched.rs`), and the
//! groups brought up to date from that, as writes arrive (`refresh_groups`) and as the clock
//! moves (`clock.rs`), each change published on the group's stream.

pub(crate) mod apply;
mod clock;
mod touched;

pub(crate) use touched::Touched;

use roaring::RoaringBitmap;

use crate::attributes::AttributeStore;
use crate::bitmap::{Bitmap, Chunks};
use crate::error::Result;
use crate::events::EventStore;
use crate::groups::GroupStore;
use crate::groups::stream::{ChangeCause, ChangeOp, RunBody};
use crate::members::MemberDict;
use crate::plan::{self, Universe};
use crate::value::DAY_MICROS;

/// Everything a query reads. Invariant: every bitmap holds only live members, and every
/// attribute column has one row per assigned member id.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    pub(crate) members: MemberDict,
    pub(crate) attrs: AttributeStore,
    pub(crate) tags: crate::tags::TagStore,
    pub(crate) events: EventStore,
    pub(crate) groups: GroupStore,
    /// Every load applied, oldest first (`SHOW LOADS`); shared between snapshots.
    pub(crate) loads: std::sync::Arc<Vec<crate::ingest::LoadInfo>>,
    /// The engine's clock, in microseconds since the epoch: the instant the groups are
    /// current at, and the *now* of the last change applied. It only moves forward.
    pub(crate) clock: i64,
    /// The consumer groups of the change streams.
    pub(crate) consumers: crate::groups::consumers::ConsumerGroups,
}

impl State {
    /// Brings the materialised bitmap of every group up to date after changes that touched
    /// `touched`, at the state's clock, in definition order (a group only refers to earlier
    /// ones, so a group whose members change is seen by the groups after it). Each change
    /// of membership goes to the group's stream at `position`, cause `write`; a group just
    /// defined starts without history.
    ///
    /// A group whose reads were not touched keeps its bitmap. One whose reads were is
    /// evaluated over the touched members only, through the same plan as a query over a
    /// universe of those members, and its bitmap changes for them alone; a group just
    /// defined, or every group after a change that may have touched anything, is
    /// evaluated over every member, as is a group when the touched members are more than
    /// [`WHOLE_REFRESH`] of them (a bulk load: one walk over everyone is then cheaper).
    pub(crate) fn refresh_groups(&mut self, touched: &Touched, position: u64) -> Result<()> {
        if touched.is_empty() || self.groups.groups.is_empty() {
            return Ok(());
        }
        let now = self.clock;
        let live = self.members.live().len();
        let whole =
            touched.everything || touched.members.len() as f64 > live as f64 * WHOLE_REFRESH;
        let members = (!whole).then(|| Chunks::from_roaring(&touched.members));
        // The groups whose reads were touched, from the dependency index; groups that move
        // with time whose windows' events were touched (their next change may be sooner).
        let count = self.groups.groups.len();
        let everyone = touched.everything || touched.created;
        let mut affected = vec![everyone; count];
        let mut windows_touched = vec![touched.everything; count];
        let deps = &self.groups.dependents;
        if !everyone {
            for (names, users) in [
                (&touched.tags, &deps.tags),
                (&touched.attributes, &deps.attributes),
                (&touched.events, &deps.events),
                (&touched.groups, &deps.groups),
            ] {
                for i in names.iter().filter_map(|n| users.get(n)).flatten() {
                    affected[*i] = true;
                }
            }
        }
        for i in touched
            .events
            .iter()
            .filter_map(|n| deps.window_events.get(n))
            .flatten()
        {
            windows_touched[*i] = true;
        }
        for i in 0..count {
            let group = &mut self.groups.groups[i];
            // A write can change what the definition selects at earlier instants: the
            // bitmap holds from now on.
            if group.time_dependent {
                group.valid_from = now;
            }
            let defined = touched.defined.contains(&group.name);
            if !affected[i] && !defined {
                if windows_touched[i] {
                    self.note_next_change(i);
                }
                continue;
            }
            let group = &self.groups.groups[i];
            let plan = plan::bind(self, &group.definition, now, None)?;
            let (enters, exits) = match &members {
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
                        if windows_touched[i] {
                            self.note_next_change(i);
                        }
                        continue;
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
            let group = &mut self.groups.groups[i];
            for (op, rows) in [(ChangeOp::Exit, exits), (ChangeOp::Enter, enters)] {
                group.stream.push(
                    position,
                    ChangeCause::Write,
                    RunBody::Same { op, at: now, rows },
                );
            }
            if group.time_dependent {
                self.note_next_change(i);
            }
            // Its members changed: the groups reading it may change too (they come later).
            let name = &self.groups.groups[i].name;
            for &j in self
                .groups
                .dependents
                .groups
                .get(name)
                .into_iter()
                .flatten()
            {
                affected[j] = true;
            }
        }
        Ok(())
    }

    /// Recomputes when group `i`, which moves with time, next changes without new data.
    fn note_next_change(&mut self, i: usize) {
        let group = &self.groups.groups[i];
        let next = crate::groups::time::next_boundary(self, &group.windows, self.clock);
        self.groups.groups[i].next_change = next;
    }

    /// Evaluates group `i` at `now` over `members`.
    fn evaluate_group(&self, i: usize, now: i64, members: &RoaringBitmap) -> Result<RoaringBitmap> {
        if members.is_empty() {
            return Ok(RoaringBitmap::new());
        }
        let plan = plan::bind(self, &self.groups.groups[i].definition, now, None)?;
        let chunks = Chunks::from_roaring(members);
        plan.bitmap(Universe::of(&chunks), None)
    }

    /// Drops the entries each group keeps no longer (older than its retention at the
    /// clock).
    pub(crate) fn trim_streams(&mut self) {
        let clock = self.clock;
        for group in &mut self.groups.groups {
            let keep = i64::from(group.keep_days).saturating_mul(DAY_MICROS);
            group.stream.trim_before(clock.saturating_sub(keep));
        }
        self.consumers.forget_trimmed(&self.groups);
    }
}

/// Above this share of the live members touched, groups are evaluated over everyone.
const WHOLE_REFRESH: f64 = 1.0 / 16.0;
