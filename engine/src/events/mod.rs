//! The behaviour log: append-only events, partitioned by type (see `partition`).

mod day_counts;
mod lifetime;
mod member_index;
pub(crate) mod partition;
mod repeats;
mod value_order;

pub(crate) use day_counts::FEW_MEMBERS;
pub(crate) use partition::{BoundFilter, DaySplit, EventPartition, Presence, counts_among};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::value::DataType;

/// All events, by type, and the schema of event properties (shared by all types). Each
/// type's partition is shared copy-on-write on its own: a snapshot costs one reference per
/// type, and an append copies only its partition's references (see [`EventStore::partition_mut`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct EventStore {
    pub(crate) types: BTreeMap<String, Arc<EventPartition>>,
    pub(crate) props: BTreeMap<String, DataType>,
}

impl EventStore {
    /// The events of type `name`, or an error naming the closest event types.
    pub(crate) fn require(&self, name: &str) -> Result<&EventPartition> {
        self.types
            .get(name)
            .map(Arc::as_ref)
            .ok_or_else(|| Error::unknown("event", name, self.types.keys().map(String::as_str)))
    }

    /// The partition of `event`, created empty if the type is new, for changing.
    pub(crate) fn partition_mut(&mut self, event: &str) -> &mut EventPartition {
        if !self.types.contains_key(event) {
            self.types.insert(event.to_string(), Arc::default());
        }
        Arc::make_mut(self.types.get_mut(event).expect("inserted above"))
    }

    /// Sorts in the events appended out of time order, in every partition that has some
    /// (only those are copied, if a snapshot shares them).
    pub(crate) fn seal(&mut self) {
        for partition in self.types.values_mut() {
            if partition.is_unsorted() {
                Arc::make_mut(partition).seal();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.types.values().map(|p| p.len()).sum()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.types.values().map(|p| p.heap_bytes()).sum()
    }
}
