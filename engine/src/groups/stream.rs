//! A group's change stream: every enter and exit, in position order, kept for the group's
//! retention (DESIGN section 8).
//!
//! Entries are stored in runs: the members one position let in (or out) for the same cause
//! at the same instant are one roaring bitmap, so a bulk load that moves five million
//! members costs a bitmap, not five million records; entries caused by the clock, each with
//! its own instant, are a list. An entry's id is `<position>-<n>`, `n` counting from 0
//! within the position: first the clock's entries in `at` order, then the write's exits,
//! then its enters, each set in member row order.
//!
//! Runs live in chunks shared copy-on-write, so a snapshot of the state (a checkpoint, a
//! reader) costs one pointer per chunk, and trimming drops whole chunks.

use std::sync::Arc;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::members::RowId;

/// The id of an entry: `<position>-<n>`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct EntryId {
    /// The position (log sequence number) of the commit or clock move that made the entry.
    pub position: u64,
    /// Its number within the position, from 0.
    pub n: u32,
}

impl EntryId {
    /// `0-0`: before every entry.
    pub const ZERO: EntryId = EntryId { position: 0, n: 0 };

    /// An id from its parts.
    pub fn new(position: u64, n: u32) -> Self {
        EntryId { position, n }
    }

    /// Reads `<position>-<n>`, or `<position>` alone (as Redis does: `-0` for a start,
    /// the position's last entry for an end is the caller's choice).
    pub fn parse(text: &str) -> Option<EntryId> {
        let (position, n) = match text.split_once('-') {
            Some((p, n)) => (p, Some(n)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(position) || n.is_some_and(|n| !digits(n)) {
            return None;
        }
        Some(EntryId {
            position: position.parse().ok()?,
            n: match n {
                Some(n) => n.parse().ok()?,
                None => 0,
            },
        })
    }

    /// The id right before this one (`None` for `0-0`).
    pub fn previous(self) -> Option<EntryId> {
        match (self.n.checked_sub(1), self.position.checked_sub(1)) {
            (Some(n), _) => Some(EntryId { n, ..self }),
            (None, Some(position)) => Some(EntryId {
                position,
                n: u32::MAX,
            }),
            (None, None) => None,
        }
    }

    /// The id right after this one.
    pub fn next(self) -> EntryId {
        match self.n.checked_add(1) {
            Some(n) => EntryId { n, ..self },
            None => EntryId {
                position: self.position.saturating_add(1),
                n: 0,
            },
        }
    }
}

impl From<EntryId> for String {
    fn from(id: EntryId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for EntryId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        EntryId::parse(&text).ok_or_else(|| format!("'{text}' is not an entry id"))
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.position, self.n)
    }
}

/// Whether a member entered or left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// The member joined the group.
    Enter,
    /// The member left the group.
    Exit,
}

impl ChangeOp {
    /// `enter` or `exit`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Enter => "enter",
            ChangeOp::Exit => "exit",
        }
    }
}

/// What made a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    /// A write: the member's data changed.
    Write,
    /// The clock: a window moved past one of the member's events.
    Time,
    /// Identities: the member's profile merged with another (an absorbed member id
    /// leaves every group) or was split by an unmerge.
    Merge,
    /// The member was erased (`MEMBER.ERASE`): it leaves every group.
    Erase,
    /// The member left or entered a reader's scope (DESIGN section 12): only that
    /// reader's view of the stream has these.
    Scope,
}

impl ChangeCause {
    /// `write`, `time`, `merge`, `erase` or `scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCause::Write => "write",
            ChangeCause::Time => "time",
            ChangeCause::Merge => "merge",
            ChangeCause::Erase => "erase",
            ChangeCause::Scope => "scope",
        }
    }
}

/// One entry of a change stream, as readers get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Its id.
    pub id: EntryId,
    /// The member's external id.
    pub member_id: String,
    /// Enter or exit.
    pub op: ChangeOp,
    /// Why.
    pub cause: ChangeCause,
    /// The instant the membership changed, in microseconds since the epoch.
    pub at: crate::Timestamp,
}

/// An entry of a run of the clock's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Timed {
    pub(crate) at: i64,
    pub(crate) row: RowId,
    pub(crate) op: ChangeOp,
}

/// The entries of a run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RunBody {
    /// Members that changed the same way at the same instant, in row order.
    Same {
        op: ChangeOp,
        at: i64,
        rows: RoaringBitmap,
    },
    /// Entries each with its instant, in `at` order.
    Timed(Vec<Timed>),
}

/// Consecutive entries of one position with one cause.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Run {
    pub(crate) position: u64,
    pub(crate) first_n: u32,
    pub(crate) cause: ChangeCause,
    pub(crate) body: RunBody,
}

impl Run {
    pub(crate) fn len(&self) -> u64 {
        match &self.body {
            RunBody::Same { rows, .. } => rows.len(),
            RunBody::Timed(entries) => entries.len() as u64,
        }
    }

    fn first(&self) -> EntryId {
        EntryId::new(self.position, self.first_n)
    }

    fn last(&self) -> EntryId {
        EntryId::new(
            self.position,
            self.first_n + (self.len() as u32).saturating_sub(1),
        )
    }

    /// The newest instant of its entries.
    pub(crate) fn newest_at(&self) -> i64 {
        match &self.body {
            RunBody::Same { at, .. } => *at,
            RunBody::Timed(entries) => entries.last().map_or(i64::MIN, |e| e.at),
        }
    }

    /// The run's entries in order: (row, op, at).
    fn entries(&self) -> Box<dyn Iterator<Item = (RowId, ChangeOp, i64)> + '_> {
        match &self.body {
            RunBody::Same { op, at, rows } => Box::new(rows.iter().map(|r| (r, *op, *at))),
            RunBody::Timed(entries) => Box::new(entries.iter().map(|e| (e.row, e.op, e.at))),
        }
    }
}

/// Runs per chunk.
const CHUNK_RUNS: usize = 512;

/// One group's change stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stream {
    chunks: Vec<Arc<Vec<Run>>>,
    /// Runs of the first chunk already trimmed.
    skip: usize,
    /// The newest entry ever added (`0-0` if none).
    pub(crate) last_id: EntryId,
    /// The newest entry removed by retention (`0-0` if none): reading after an id before it
    /// would miss entries.
    pub(crate) trimmed_through: EntryId,
    /// Entries kept.
    pub(crate) len: u64,
}

/// A read that would skip removed entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trimmed {
    /// The oldest entry still kept (or the next id, when none is).
    pub(crate) oldest: EntryId,
}

impl Stream {
    /// Appends the entries of position `position` for `cause`: numbering continues after
    /// the entries the position already has in this stream.
    pub(crate) fn push(&mut self, position: u64, cause: ChangeCause, body: RunBody) {
        let run_len = match &body {
            RunBody::Same { rows, .. } => rows.len(),
            RunBody::Timed(entries) => entries.len() as u64,
        };
        if run_len == 0 {
            return;
        }
        let first_n = if self.last_id.position == position && self.len_ever() > 0 {
            self.last_id.n + 1
        } else {
            0
        };
        debug_assert!(position >= self.last_id.position, "positions only grow");
        let run = Run {
            position,
            first_n,
            cause,
            body,
        };
        self.last_id = run.last();
        self.len += run_len;
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK_RUNS => Arc::make_mut(chunk).push(run),
            _ => self.chunks.push(Arc::new(vec![run])),
        }
    }

    /// Whether any entry was ever added.
    fn len_ever(&self) -> u64 {
        u64::from(self.last_id != EntryId::ZERO)
    }

    /// Removes runs whose every entry is older than `cutoff` (at < cutoff).
    pub(crate) fn trim_before(&mut self, cutoff: i64) {
        while let Some(chunk) = self.chunks.first() {
            let runs = &chunk[self.skip..];
            let old = runs.iter().take_while(|r| r.newest_at() < cutoff).count();
            if old == 0 {
                return;
            }
            let removed = &runs[..old];
            self.trimmed_through = removed.last().expect("one at least").last();
            self.len -= removed.iter().map(Run::len).sum::<u64>();
            if old == runs.len() {
                self.chunks.remove(0);
                self.skip = 0;
            } else {
                self.skip += old;
                return;
            }
        }
    }

    fn runs(&self) -> impl DoubleEndedIterator<Item = &Run> {
        self.chunks
            .iter()
            .enumerate()
            .flat_map(move |(i, c)| c[if i == 0 { self.skip } else { 0 }..].iter())
    }

    /// The oldest entry kept.
    pub(crate) fn first_id(&self) -> Option<EntryId> {
        self.runs().next().map(Run::first)
    }

    /// Checks that reading after `after` misses nothing retention removed.
    pub(crate) fn check_after(&self, after: EntryId) -> Result<(), Trimmed> {
        if after < self.trimmed_through {
            return Err(Trimmed {
                oldest: self.first_id().unwrap_or(self.last_id.next()),
            });
        }
        Ok(())
    }

    /// Entries with ids in `[from, to]`, oldest first, at most `limit`.
    pub(crate) fn range(
        &self,
        from: EntryId,
        to: EntryId,
        limit: usize,
    ) -> Vec<(EntryId, RowId, ChangeOp, ChangeCause, i64)> {
        let mut out = Vec::new();
        for run in self.runs() {
            if out.len() >= limit || run.first() > to {
                break;
            }
            if run.last() < from {
                continue;
            }
            let start = if run.position == from.position && from.n > run.first_n {
                u64::from(from.n - run.first_n)
            } else {
                0
            };
            for (k, (row, op, at)) in run.entries().enumerate().skip(start as usize) {
                let id = EntryId::new(run.position, run.first_n + k as u32);
                if id > to || out.len() >= limit {
                    break;
                }
                out.push((id, row, op, run.cause, at));
            }
        }
        out
    }

    /// Entries with ids in `[from, to]`, newest first, at most `limit`.
    pub(crate) fn range_rev(
        &self,
        from: EntryId,
        to: EntryId,
        limit: usize,
    ) -> Vec<(EntryId, RowId, ChangeOp, ChangeCause, i64)> {
        let mut out = Vec::new();
        for run in self.runs().rev() {
            if out.len() >= limit || run.last() < from {
                break;
            }
            if run.first() > to {
                continue;
            }
            let all: Vec<_> = run.entries().collect();
            for (k, (row, op, at)) in all.into_iter().enumerate().rev() {
                let id = EntryId::new(run.position, run.first_n + k as u32);
                if id > to {
                    continue;
                }
                if id < from || out.len() >= limit {
                    break;
                }
                out.push((id, row, op, run.cause, at));
            }
        }
        out
    }

    /// The runs kept, oldest first (for saving).
    pub(crate) fn saved_runs(&self) -> Vec<&Run> {
        self.runs().collect()
    }

    /// A stream from saved runs.
    pub(crate) fn restored(runs: Vec<Run>, last_id: EntryId, trimmed_through: EntryId) -> Self {
        let len = runs.iter().map(Run::len).sum();
        let chunks = runs
            .chunks(CHUNK_RUNS)
            .map(|c| Arc::new(c.to_vec()))
            .collect();
        Stream {
            chunks,
            skip: 0,
            last_id,
            trimmed_through,
            len,
        }
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.runs()
            .map(|r| {
                std::mem::size_of::<Run>()
                    + match &r.body {
                        RunBody::Same { rows, .. } => rows.serialized_size(),
                        RunBody::Timed(e) => e.len() * std::mem::size_of::<Timed>(),
                    }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(op: ChangeOp, at: i64, rows: &[u32]) -> RunBody {
        RunBody::Same {
            op,
            at,
            rows: rows.iter().copied().collect(),
        }
    }

    #[test]
    fn ids_number_within_a_position_and_ranges_read_them() {
        let mut s = Stream::default();
        s.push(5, ChangeCause::Write, same(ChangeOp::Enter, 10, &[1, 2, 3]));
        s.push(
            7,
            ChangeCause::Time,
            RunBody::Timed(vec![
                Timed {
                    at: 11,
                    row: 2,
                    op: ChangeOp::Exit,
                },
                Timed {
                    at: 12,
                    row: 1,
                    op: ChangeOp::Exit,
                },
            ]),
        );
        s.push(7, ChangeCause::Write, same(ChangeOp::Enter, 13, &[9]));
        assert_eq!(s.last_id, EntryId::new(7, 2));
        assert_eq!(s.len, 6);
        let ids: Vec<String> = s
            .range(EntryId::new(5, 1), EntryId::new(u64::MAX, u32::MAX), 100)
            .iter()
            .map(|e| e.0.to_string())
            .collect();
        assert_eq!(ids, ["5-1", "5-2", "7-0", "7-1", "7-2"]);
        let rev: Vec<String> = s
            .range_rev(EntryId::ZERO, EntryId::new(7, 1), 3)
            .iter()
            .map(|e| e.0.to_string())
            .collect();
        assert_eq!(rev, ["7-1", "7-0", "5-2"]);
        assert_eq!(s.range(EntryId::new(7, 2), EntryId::new(7, 2), 9)[0].1, 9);
    }

    #[test]
    fn trimming_reports_what_a_reader_would_miss() {
        let mut s = Stream::default();
        for p in 1..=2000u64 {
            s.push(
                p,
                ChangeCause::Write,
                same(ChangeOp::Enter, p as i64, &[p as u32]),
            );
        }
        s.trim_before(1500);
        assert_eq!(s.len, 501);
        assert_eq!(s.first_id(), Some(EntryId::new(1500, 0)));
        assert_eq!(s.trimmed_through, EntryId::new(1499, 0));
        assert!(s.check_after(EntryId::new(1499, 0)).is_ok());
        assert_eq!(
            s.check_after(EntryId::new(10, 0)),
            Err(Trimmed {
                oldest: EntryId::new(1500, 0)
            })
        );
        let big: Vec<u32> = (0..5000).collect();
        s.push(3000, ChangeCause::Write, same(ChangeOp::Exit, 3000, &big));
        let got = s.range(EntryId::new(3000, 1020), EntryId::new(3000, 1030), 100);
        assert_eq!(got.len(), 11);
        assert_eq!(got[0].1, 1020);
        assert_eq!(got[10].0, EntryId::new(3000, 1030));
    }

    #[test]
    fn ids_parse_as_redis_writes_them() {
        assert_eq!(EntryId::parse("12-3"), Some(EntryId::new(12, 3)));
        assert_eq!(EntryId::parse("12"), Some(EntryId::new(12, 0)));
        for bad in ["", "-", "1-", "a-1", "1-b", "1-2-3", "+1"] {
            assert_eq!(EntryId::parse(bad), None, "{bad}");
        }
    }
}
