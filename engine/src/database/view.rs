//! [`View`]: the read side of a database at one *now*, over a consistent snapshot.

use std::collections::HashMap;
use std::sync::RwLockReadGuard;
use std::time::Instant;

use roaring::RoaringBitmap;

use memberdb_query::MAX_STORED_NESTING;

use crate::column::ColumnData;
use crate::error::{Error, Result};
use crate::results::{BreakdownRow, FindOptions, FindResult, FoundMember};
use crate::segment::{Evaluator, Segment, check_deadline};
use crate::state::State;
use crate::value::Value;

/// The read side of a database at one *now*: COUNT, FIND, BREAKDOWN.
///
/// A view reads a consistent snapshot: every write acknowledged before it was taken and
/// none that is half applied. Views run in parallel; a writer applies its changes once the
/// views of the moment are dropped, so keep a view only as long as its reads.
#[derive(Debug)]
pub struct View<'db> {
    state: RwLockReadGuard<'db, State>,
    now: i64,
    deadline: Option<Instant>,
}

impl<'db> View<'db> {
    pub(crate) fn new(state: RwLockReadGuard<'db, State>, now: i64) -> Self {
        View {
            state,
            now,
            deadline: None,
        }
    }

    /// Reads of this view stop with [`Error::DeadlineExceeded`] once `deadline` has passed
    /// (checked before every step of an evaluation and every 65,536 members of a
    /// breakdown), so a server can bound the time one statement takes.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// The *now* of this view, microseconds since the epoch.
    pub fn now(&self) -> crate::value::Timestamp {
        crate::value::Timestamp(self.now)
    }

    /// An evaluator for `segment`, once its depth is known to be safe to recurse on: the
    /// language refuses deeper text, but a tree built through the API can be any depth.
    pub(crate) fn evaluator(&self, segment: &Segment) -> Result<Evaluator<'_>> {
        let depth = segment.nesting();
        if depth > MAX_STORED_NESTING {
            return Err(Error::InvalidSegment(format!(
                "the segment nests {depth} levels deep (each NOT, AND and OR is a level), more \
                 than {MAX_STORED_NESTING}"
            )));
        }
        Ok(Evaluator::new(&self.state, self.now).with_deadline(self.deadline))
    }

    /// Members in `segment`.
    pub fn count(&self, segment: &Segment) -> Result<u64> {
        self.evaluator(segment)?.count(segment)
    }

    /// The members of `segment` as a bitmap of row ids (for embedders that combine results).
    pub fn members(&self, segment: &Segment) -> Result<RoaringBitmap> {
        Ok(self.evaluator(segment)?.eval(segment)?.into_owned())
    }

    /// Members of `segment` with the requested attributes, in row-id order (the order the
    /// members were first seen), paged by `offset` / `limit`.
    pub fn find(&self, segment: &Segment, options: &FindOptions) -> Result<FindResult> {
        let attrs: Vec<_> = options
            .columns
            .iter()
            .map(|c| self.state.attrs.require(c))
            .collect::<Result<_>>()?;
        let bitmap = self.evaluator(segment)?.eval(segment)?;
        let limit = options.limit.unwrap_or(usize::MAX);
        let rows = bitmap
            .iter()
            .skip(options.offset)
            .take(limit)
            .map(|row| FoundMember {
                member_id: self.state.members.member_id(row).to_string(),
                values: attrs.iter().map(|a| a.column.get(row as usize)).collect(),
            })
            .collect();
        let mut columns = vec!["member_id".to_string()];
        columns.extend(options.columns.iter().cloned());
        Ok(FindResult {
            columns,
            types: attrs.iter().map(|a| a.column.data_type()).collect(),
            rows,
            total: bitmap.len(),
        })
    }

    /// Counts of `segment` per value of `attribute`, NULL included, largest first (ties by
    /// value). With `top`, only the first `top` lines.
    pub fn breakdown(
        &self,
        segment: &Segment,
        attribute: &str,
        top: Option<usize>,
    ) -> Result<Vec<BreakdownRow>> {
        self.breakdown_counted(segment, attribute, top)
            .map(|(lines, _)| lines)
    }

    /// [`View::breakdown`] and the size of the segment.
    pub(crate) fn breakdown_counted(
        &self,
        segment: &Segment,
        attribute: &str,
        top: Option<usize>,
    ) -> Result<(Vec<BreakdownRow>, u64)> {
        let attr = self.state.attrs.require(attribute)?;
        let bitmap = self.evaluator(segment)?.eval(segment)?;
        let column = &attr.column;
        let mut lines: Vec<BreakdownRow> = Vec::new();
        if let Some(values) = &attr.index.values {
            for (slot, members) in values.iter().enumerate() {
                let count = bitmap.intersection_len(members);
                if count == 0 {
                    continue;
                }
                let value = match &column.data {
                    ColumnData::Bool(_) => Value::Bool(slot == 1),
                    ColumnData::Str { dict, .. } => Value::Str(dict.get(slot as u32).to_string()),
                    _ => {
                        return Err(Error::Internal(
                            "value bitmaps on an ordered column".to_string(),
                        ));
                    }
                };
                lines.push(BreakdownRow {
                    value: Some(value),
                    count,
                });
            }
        } else {
            let mut counts: HashMap<u64, (u32, u64)> = HashMap::new();
            for (i, row) in bitmap.iter().enumerate() {
                if i % 65_536 == 65_535 {
                    check_deadline(self.deadline)?;
                }
                let r = row as usize;
                if !column.is_valid(r) {
                    continue;
                }
                counts.entry(column.group_key(r)).or_insert((row, 0)).1 += 1;
            }
            lines = counts
                .into_values()
                .map(|(row, count)| BreakdownRow {
                    value: column.get(row as usize),
                    count,
                })
                .collect();
        }
        let with_value: u64 = lines.iter().map(|l| l.count).sum();
        if bitmap.len() > with_value {
            lines.push(BreakdownRow {
                value: None,
                count: bitmap.len() - with_value,
            });
        }
        Ok((ordered(lines, top), bitmap.len()))
    }
}

/// Breakdown lines by count, largest first, ties by value with NULL last; the first `top`.
pub(super) fn ordered(mut lines: Vec<BreakdownRow>, top: Option<usize>) -> Vec<BreakdownRow> {
    lines.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| cmp_values(&a.value, &b.value))
    });
    if let Some(top) = top {
        lines.truncate(top);
    }
    lines
}

/// Order of values in ties: by value, NULL last.
fn cmp_values(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Greater,
        (_, None) => Ordering::Less,
        (Some(Value::Str(x)), Some(Value::Str(y))) => x.cmp(y),
        (Some(Value::Int(x)), Some(Value::Int(y))) => x.cmp(y),
        (Some(Value::Float(x)), Some(Value::Float(y))) => x.total_cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Date(x)), Some(Value::Date(y))) => x.cmp(y),
        (Some(Value::Timestamp(x)), Some(Value::Timestamp(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}
