//! The whole in-memory state of a database: members, attributes, tags, events and groups.

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
    /// Recomputes the materialised bitmap of every group that does not move with time, in
    /// definition order (a group only refers to earlier ones).
    pub(crate) fn refresh_groups(&mut self) -> Result<()> {
        let now = Timestamp::now().micros();
        for i in 0..self.groups.groups.len() {
            if self.groups.groups[i].time_dependent {
                continue;
            }
            let definition = &self.groups.groups[i].definition;
            let bitmap =
                plan::bind(self, definition, now, None)?.bitmap(Universe::live(self), None)?;
            self.groups.groups[i].bitmap = Bitmap::new(bitmap);
        }
        Ok(())
    }
}
