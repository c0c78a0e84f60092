//! The whole in-memory state of a database: members, attributes, tags, events and groups;
//! the one place it changes (`apply.rs`), what changes touched (`touched.rs`), and the
//! groups brought up to date from that.

pub(crate) mod apply;
mod touched;

pub(crate) use touched::Touched;

use crate::attributes::AttributeStore;
use crate::bitmap::Bitmap;
use crate::error::Result;
use crate::events::EventStore;
use crate::groups::GroupStore;
use crate::members::MemberDict;
use crate::plan::{self, Universe};
use crate::value::Timestamp;

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
}

impl State {
    /// Brings the materialised bitmap of every group that does not move with time up to
    /// date after changes that touched `touched`, in definition order (a group only refers
    /// to earlier ones, so a group whose members change is seen by the groups after it).
    ///
    /// A group whose reads were not touched keeps its bitmap. One whose reads were is
    /// evaluated over the touched members only, through the same plan as a query over a
    /// universe of those members, and its bitmap changes for them alone; a group just
    /// defined, or every group after a change that may have touched anything, is
    /// evaluated over every member, as is a group when the touched members are more than
    /// [`WHOLE_REFRESH`] of them (a bulk load: one walk over everyone is then cheaper).
    pub(crate) fn refresh_groups(&mut self, touched: &Touched) -> Result<()> {
        if touched.is_empty() || self.groups.groups.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now().micros();
        let live = self.members.live().len();
        let whole =
            touched.everything || touched.members.len() as f64 > live as f64 * WHOLE_REFRESH;
        // Groups whose members changed, for the groups after them.
        let mut touched = touched.clone();
        let members = (!whole).then(|| crate::bitmap::Chunks::from_roaring(&touched.members));
        for i in 0..self.groups.groups.len() {
            let group = &self.groups.groups[i];
            if group.time_dependent {
                continue;
            }
            let defined = touched.defined.contains(&group.name);
            if !defined && !touched.affects(&group.definition) {
                continue;
            }
            let plan = plan::bind(self, &group.definition, now, None)?;
            match &members {
                Some(members) if !defined => {
                    let inside = plan.bitmap(Universe::of(members), None)?;
                    if (&*group.bitmap & &touched.members) == inside {
                        continue;
                    }
                    // In place: only the touched members' bits change (the bitmap is copied
                    // first only if a snapshot shares it).
                    let bits = self.groups.groups[i].bitmap.make_mut();
                    *bits -= &touched.members;
                    *bits |= inside;
                }
                _ => {
                    let bitmap = plan.bitmap(Universe::live(self), None)?;
                    self.groups.groups[i].bitmap = Bitmap::new(bitmap);
                }
            }
            touched.groups.insert(self.groups.groups[i].name.clone());
        }
        Ok(())
    }
}

/// Above this share of the live members touched, groups are evaluated over everyone.
const WHOLE_REFRESH: f64 = 1.0 / 16.0;
