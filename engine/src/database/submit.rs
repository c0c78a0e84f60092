//! Writes submitted without waiting: [`Database::submit`] and the [`Write`] it takes.

use super::Database;
use crate::error::Result;
use crate::value::{Timestamp, Value};
use crate::wal::change::Change;

/// A single-member write, as [`Database::submit`] takes it: the same four writes as
/// [`Database::upsert_member`], [`Database::add_tags`], [`Database::remove_tags`] and
/// [`Database::add_event`], with owned values.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Sets attributes of a member (creating it); see [`Database::upsert_member`].
    UpsertMember {
        /// The member.
        member_id: String,
        /// Attribute names and values (`None`: NULL).
        fields: Vec<(String, Option<Value>)>,
    },
    /// Adds tags to a member (creating it).
    AddTags {
        /// The member.
        member_id: String,
        /// The tags.
        tags: Vec<String>,
    },
    /// Removes tags from a member.
    RemoveTags {
        /// The member.
        member_id: String,
        /// The tags.
        tags: Vec<String>,
    },
    /// Appends an event (creating the member).
    AddEvent {
        /// The member.
        member_id: String,
        /// The event type.
        event: String,
        /// When it happened.
        ts: Timestamp,
        /// Property names and values (`None`: NULL).
        props: Vec<(String, Option<Value>)>,
    },
}

impl From<Write> for Change {
    fn from(write: Write) -> Change {
        match write {
            Write::UpsertMember { member_id, fields } => Change::UpsertMember { member_id, fields },
            Write::AddTags { member_id, tags } => Change::AddTags { member_id, tags },
            Write::RemoveTags { member_id, tags } => Change::RemoveTags { member_id, tags },
            Write::AddEvent {
                member_id,
                event,
                ts,
                props,
            } => Change::AddEvent {
                member_id,
                event,
                ts: ts.micros(),
                props,
            },
        }
    }
}

impl Database {
    /// Logs `write` and returns at once; `done` is called with its result once it is durable
    /// (under the [`crate::SyncPolicy`]) and applied, on the database's commit thread, so it
    /// must be quick (hand the answer on, do not write again from it). Changes submitted
    /// while a batch is being committed share the next batch's fsync, however many there
    /// are, and the state is changed by the commit thread alone: a server with many writing
    /// clients needs no thread per client. A refused write (read-only database, bad value)
    /// calls `done` before `submit` returns.
    pub fn submit(&self, write: Write, done: impl FnOnce(Result<()>) + Send + 'static) {
        self.core
            .submit(write.into(), Box::new(move |result| done(result.map(drop))));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::Segment;

    #[test]
    fn submitted_writes_are_all_answered_and_applied() {
        let db = Database::in_memory();
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            db.submit(
                Write::AddTags {
                    member_id: format!("M{}", i % 10),
                    tags: vec![format!("t{}", i % 3)],
                },
                move |result| tx.send((i, result.is_ok())).unwrap(),
            );
        }
        let mut answers: Vec<(i32, bool)> = (0..100).map(|_| rx.recv().unwrap()).collect();
        answers.sort_unstable();
        assert!(
            answers
                .iter()
                .enumerate()
                .all(|(k, a)| *a == (k as i32, true))
        );
        assert_eq!(db.count(&Segment::tag("t0")).unwrap(), 10);
        assert_eq!(db.member_count(), 10);
    }

    #[test]
    fn a_refused_write_is_answered_at_once() {
        let db = Database::in_memory();
        let (tx, rx) = mpsc::channel();
        db.submit(
            Write::UpsertMember {
                member_id: "M1".into(),
                fields: vec![("points".into(), Some(Value::Float(f64::NAN)))],
            },
            move |result| tx.send(result.is_err()).unwrap(),
        );
        assert_eq!(rx.try_recv(), Ok(true));
    }
}
