//! The behaviour log: append-only events, partitioned by type (see `partition`).

mod partition;

pub(crate) use partition::EventPartition;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::value::DataType;

/// All events, by type, and the schema of event properties (shared by all types).
#[derive(Clone, Debug, Default)]
pub(crate) struct EventStore {
    pub(crate) types: BTreeMap<String, EventPartition>,
    pub(crate) props: BTreeMap<String, DataType>,
}

impl EventStore {
    /// The events of type `name`, or an error naming the closest event types.
    pub(crate) fn require(&self, name: &str) -> Result<&EventPartition> {
        self.types
            .get(name)
            .ok_or_else(|| Error::unknown("event", name, self.types.keys().map(String::as_str)))
    }

    pub(crate) fn len(&self) -> usize {
        self.types.values().map(EventPartition::len).sum()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.types.values().map(EventPartition::heap_bytes).sum()
    }
}
