//! Evaluating what only traits compute, `CASE` and `QUANTILE`, as values of the one
//! evaluator ([`BoundValue`]): their segments are plans bound by the one binder, run over
//! the universe asked for.

use roaring::RoaringBitmap;

use crate::attributes::index::float_key;
use crate::bitmap::Chunks;
use crate::column::{Column, ColumnData};
use crate::computed::eval::{BoundValue, MemberValues};
use crate::error::Result;
use crate::members::RowId;
use crate::plan::{Plan, Universe};
use crate::state::State;
use crate::value::{DataType, Value};

use super::ranks::{boundary_ranks, score};

/// `CASE WHEN seg THEN v ... [ELSE v] END` bound.
pub(crate) struct BoundCase<'a> {
    pub(crate) state: &'a State,
    pub(crate) whens: Vec<(Plan<'a>, &'a Value)>,
    pub(crate) otherwise: Option<&'a Value>,
    pub(crate) data_type: DataType,
}

/// `QUANTILE(k, x [DESC]) OVER seg` bound.
pub(crate) struct BoundQuantile<'a> {
    pub(crate) state: &'a State,
    pub(crate) value: Box<BoundValue<'a>>,
    pub(crate) over: Box<Plan<'a>>,
    pub(crate) buckets: u32,
    pub(crate) descending: bool,
}

/// The members asked for: `few`, or every live member.
fn universe(state: &State, few: Option<&[RowId]>) -> RoaringBitmap {
    match few {
        Some(rows) => rows.iter().copied().collect(),
        None => state.members.live().as_ref().clone(),
    }
}

/// Values given to sets of members, as [`MemberValues`] in row order.
fn member_values(data_type: DataType, mut pairs: Vec<(RowId, Value)>) -> MemberValues {
    pairs.sort_unstable_by_key(|p| p.0);
    let mut column = Column::new(data_type);
    let mut rows = Vec::with_capacity(pairs.len());
    for (row, v) in pairs {
        rows.push(row);
        column.push(Some(&v));
    }
    MemberValues {
        rows,
        column,
        empty: None,
    }
}

impl BoundCase<'_> {
    pub(crate) fn key(&self) -> String {
        let whens: Vec<String> = self
            .whens
            .iter()
            .map(|(plan, v)| format!("{} => {v}", plan.key()))
            .collect();
        format!("CASE[{}; {:?}]", whens.join("; "), self.otherwise)
    }

    /// The first `WHEN` holding each member gives its value.
    pub(crate) fn values(&self, few: Option<&[RowId]>) -> Result<MemberValues> {
        let mut remaining = universe(self.state, few);
        let mut pairs: Vec<(RowId, Value)> = Vec::new();
        for (plan, value) in &self.whens {
            if remaining.is_empty() {
                break;
            }
            let chunks = Chunks::from_roaring(&remaining);
            let hits = plan.bitmap(Universe::of(&chunks), None)?;
            pairs.extend(hits.iter().map(|row| (row, (*value).clone())));
            remaining -= &hits;
        }
        if let Some(value) = self.otherwise {
            pairs.extend(remaining.iter().map(|row| (row, value.clone())));
        }
        Ok(member_values(self.data_type, pairs))
    }

    /// The value of live member `row` alone: the first `WHEN` holding for it.
    pub(crate) fn value_of(&self, row: RowId) -> Result<Option<Value>> {
        for (plan, value) in &self.whens {
            if plan.holds(row)? {
                return Ok(Some((*value).clone()));
            }
        }
        Ok(self.otherwise.cloned())
    }
}

/// An order-preserving key of a ranked value (numbers, dates, times, booleans).
pub(crate) fn rank_key(column: &Column, i: usize) -> Option<i64> {
    if !column.is_valid(i) {
        return None;
    }
    match &column.data {
        ColumnData::Float(v) => (!v[i].is_nan()).then(|| float_key(v[i])),
        ColumnData::Bool(_) => column.get(i).map(|v| i64::from(v == Value::Bool(true))),
        _ => column.int_key(i),
    }
}

impl BoundQuantile<'_> {
    pub(crate) fn key(&self) -> String {
        format!(
            "QUANTILE[{}, {}{}, {}]",
            self.buckets,
            self.value.key(),
            if self.descending { " DESC" } else { "" },
            self.over.key()
        )
    }

    /// The ranked members (in `OVER`, with a value) among `few` (or everyone) and their
    /// keys (`DESC`: negated, so that keys always ascend with rank), in row order.
    pub(crate) fn ranked(
        &self,
        few: Option<&[RowId]>,
        members: usize,
    ) -> Result<Vec<(RowId, i64)>> {
        let over = match few {
            Some(rows) => {
                let chunks = Chunks::from_roaring(&universe(self.state, Some(rows)));
                self.over.bitmap(Universe::of(&chunks), None)?
            }
            None => self.over.bitmap(Universe::live(self.state), None)?,
        };
        let all = self.value.values(few, members)?;
        let empty_key = self.value.empty().map(|v| {
            let mut c = Column::new(self.value.data_type());
            c.push(Some(&v));
            rank_key(&c, 0)
        });
        // Each ranked member's key: its value, or the value of members without events.
        let mut keyed: Vec<(RowId, i64)> = Vec::with_capacity(over.len() as usize);
        let mut at = 0;
        for row in over.iter() {
            while at < all.rows.len() && all.rows[at] < row {
                at += 1;
            }
            let key = if at < all.rows.len() && all.rows[at] == row {
                rank_key(&all.column, at)
            } else {
                empty_key.flatten()
            };
            if let Some(k) = key {
                keyed.push((row, if self.descending { !k } else { k }));
            }
        }
        Ok(keyed)
    }

    /// Each ranked member's score: `1 + floor(k * (rank - 1) / n)`, rank = 1 + the number
    /// of ranked members with a strictly smaller value (larger with `DESC`).
    pub(crate) fn values(&self, few: Option<&[RowId]>, members: usize) -> Result<MemberValues> {
        let keyed = self.ranked(None, members)?;
        let mut sorted: Vec<i64> = keyed.iter().map(|p| p.1).collect();
        sorted.sort_unstable();
        let boundaries: Vec<i64> = boundary_ranks(sorted.len(), self.buckets)
            .map(|c| sorted[c])
            .collect();
        let score_of = |&(row, key): &(RowId, i64)| (row, Value::Int(score(key, &boundaries)));
        let pairs: Vec<(RowId, Value)> = match few {
            None => keyed.iter().map(score_of).collect(),
            Some(rows) => rows
                .iter()
                .filter_map(|row| keyed.binary_search_by_key(row, |p| p.0).ok())
                .map(|at| score_of(&keyed[at]))
                .collect(),
        };
        Ok(member_values(DataType::Int, pairs))
    }
}
