//! Consumer groups of the change streams (`XGROUP`, `XREADGROUP`, `XACK`, `XPENDING`):
//! per stream, named readers that share its entries, each delivered once, with the entries
//! delivered and not yet acknowledged. They change only through logged changes, so they
//! are as durable as writes and come back identical from the log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::GroupStore;
use super::stream::EntryId;
use crate::error::{Error, Result};

/// An entry delivered and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) consumer: String,
    /// When it was last delivered, on the engine's clock (microseconds).
    pub(crate) delivered_at: i64,
    /// How many times it was delivered.
    pub(crate) deliveries: u32,
}

/// One consumer group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConsumerGroup {
    /// The newest entry delivered to it (`>` reads after it).
    pub(crate) last_delivered: EntryId,
    pub(crate) pending: BTreeMap<EntryId, Pending>,
    /// Its consumers, with when each last read (engine clock, microseconds).
    pub(crate) consumers: BTreeMap<String, i64>,
    /// Entries delivered since it was created.
    pub(crate) entries_read: u64,
}

/// The consumer groups of every stream, by the stream's group name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ConsumerGroups {
    pub(crate) streams: BTreeMap<String, BTreeMap<String, ConsumerGroup>>,
}

impl ConsumerGroups {
    pub(crate) fn get(&self, stream: &str, name: &str) -> Result<&ConsumerGroup> {
        self.streams
            .get(stream)
            .and_then(|groups| groups.get(name))
            .ok_or_else(|| no_group(stream, name))
    }

    fn get_mut(&mut self, stream: &str, name: &str) -> Result<&mut ConsumerGroup> {
        self.streams
            .get_mut(stream)
            .and_then(|groups| groups.get_mut(name))
            .ok_or_else(|| no_group(stream, name))
    }

    /// `XGROUP CREATE`: a group that delivers the entries after `start`.
    pub(crate) fn create(&mut self, stream: &str, name: &str, start: EntryId) -> Result<()> {
        let groups = self.streams.entry(stream.to_string()).or_default();
        if groups.contains_key(name) {
            return Err(Error::Stream {
                code: "BUSYGROUP",
                message: format!(
                    "Consumer Group name '{name}' already exists on group:{}",
                    shown(stream)
                ),
            });
        }
        groups.insert(
            name.to_string(),
            ConsumerGroup {
                last_delivered: start,
                ..ConsumerGroup::default()
            },
        );
        Ok(())
    }

    /// Records that `ids` (the entries after the group's last delivered one, through the
    /// last of them) went to `consumer` at `now`.
    pub(crate) fn deliver(
        &mut self,
        stream: &str,
        name: &str,
        consumer: &str,
        ids: &[EntryId],
        now: i64,
    ) -> Result<()> {
        let group = self.get_mut(stream, name)?;
        group.consumers.insert(consumer.to_string(), now);
        for &id in ids {
            group.pending.insert(
                id,
                Pending {
                    consumer: consumer.to_string(),
                    delivered_at: now,
                    deliveries: 1,
                },
            );
            group.last_delivered = group.last_delivered.max(id);
            group.entries_read += 1;
        }
        Ok(())
    }

    /// `XACK`: how many of `ids` were pending.
    pub(crate) fn acknowledge(&mut self, stream: &str, name: &str, ids: &[EntryId]) -> Result<u64> {
        let group = self.get_mut(stream, name)?;
        Ok(ids
            .iter()
            .filter(|id| group.pending.remove(id).is_some())
            .count() as u64)
    }

    /// A stream ended (its group dropped): its consumer groups go with it, and those of
    /// the scoped views of it or through it.
    pub(crate) fn forget_stream(&mut self, stream: &str) {
        self.streams.retain(|key, _| {
            key != stream
                && super::scoped::split_view_key(key)
                    .is_none_or(|(g, s)| g != stream && s != stream)
        });
    }

    /// Entries retention removed are no longer pending.
    pub(crate) fn forget_trimmed(&mut self, groups: &GroupStore) {
        for (stream, consumer_groups) in &mut self.streams {
            // A scoped view's ids are its group's positions: what the group's retention
            // removed is gone from the view too.
            let stream = super::scoped::split_view_key(stream).map_or(stream.as_str(), |v| v.0);
            let Some(group) = groups.get(stream) else {
                continue;
            };
            let trimmed = group.stream.trimmed_through;
            for cg in consumer_groups.values_mut() {
                while let Some(entry) = cg.pending.first_entry() {
                    if *entry.key() > trimmed {
                        break;
                    }
                    entry.remove();
                }
            }
        }
    }
}

/// A stream's name as its readers know it (a scoped view's is its group's).
fn shown(stream: &str) -> &str {
    super::scoped::split_view_key(stream).map_or(stream, |v| v.0)
}

fn no_group(stream: &str, name: &str) -> Error {
    let stream = shown(stream);
    Error::Stream {
        code: "NOGROUP",
        message: format!(
            "No such consumer group '{name}' for group:{stream}; create it with XGROUP CREATE \
             group:{stream} {name} $"
        ),
    }
}
