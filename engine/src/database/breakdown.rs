//! BREAKDOWN by several columns or by computed values: each column's values coded to small
//! numbers per member (equal values share a code, NULL has one), the codes of a member's
//! columns combined into one number, and the members counted per number: no value is
//! built or hashed per member. RFM by three traits at 1M members is a few walks over
//! integer columns.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::View;
use super::view::ordered;
use crate::column::Column;
use crate::computed::eval::BoundValue;
use crate::error::Result;
use crate::members::RowId;
use crate::plan::{self, check_deadline};
use crate::results::BreakdownRow;
use crate::value::Value;

/// One column coded: each member's code (in the order of the members) and each code's
/// value.
struct Coded {
    codes: Vec<u32>,
    values: Vec<Option<Value>>,
}

/// Gives codes to keys in the order they are first seen; `None` is NULL.
#[derive(Default)]
struct Coder {
    known: HashMap<Option<u64>, u32>,
    values: Vec<Option<Value>>,
}

impl Coder {
    /// The code of `key`; `value` gives the value the first time the key is seen.
    #[inline]
    fn code(&mut self, key: Option<u64>, value: impl FnOnce() -> Option<Value>) -> u32 {
        if let Some(&c) = self.known.get(&key) {
            return c;
        }
        let c = self.values.len() as u32;
        self.known.insert(key, c);
        self.values.push(value());
        c
    }
}

/// The key of row `i` of `column`: NULL, or its group key (equal values, equal keys).
#[inline]
fn key(column: &Column, i: usize) -> Option<u64> {
    column.is_valid(i).then(|| column.group_key(i))
}

/// Codes an attribute's (or a kept trait's) column for `rows`, reading it in place. Keys
/// in a small range (levels, scores, a dictionary of a few strings) are coded through a
/// table, without hashing.
fn code_column(column: &Column, rows: &[RowId]) -> Coded {
    let len = column.len();
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for &r in rows {
        if (r as usize) < len && column.is_valid(r as usize) {
            let k = column.group_key(r as usize);
            lo = lo.min(k);
            hi = hi.max(k);
        }
    }
    let mut coder = Coder::default();
    if lo <= hi && hi - lo < 1 << 16 {
        let mut table = vec![u32::MAX; (hi - lo + 1) as usize];
        let codes = rows
            .iter()
            .map(|&r| {
                let r = r as usize;
                if r >= len || !column.is_valid(r) {
                    return coder.code(None, || None);
                }
                let slot = &mut table[(column.group_key(r) - lo) as usize];
                if *slot == u32::MAX {
                    *slot = coder.code(Some(column.group_key(r)), || column.get(r));
                }
                *slot
            })
            .collect();
        return Coded {
            codes,
            values: coder.values,
        };
    }
    let codes = rows
        .iter()
        .map(|&r| {
            let r = r as usize;
            if r >= len {
                return coder.code(None, || None);
            }
            coder.code(key(column, r), || column.get(r))
        })
        .collect();
    Coded {
        codes,
        values: coder.values,
    }
}

/// Codes a computed value for `rows`: each member's value, or the value of members without
/// the events it reads (the same code as an equal computed value).
fn code_values(bound: &BoundValue<'_>, rows: &[RowId], members: usize) -> Result<Coded> {
    let few = (rows.len() as u64 <= crate::events::FEW_MEMBERS).then_some(rows);
    let computed = bound.values(few, members)?;
    let empty = bound.empty();
    // The empty value's key in the same terms (numbers: their bits; strings have none).
    let empty_key = empty.as_ref().and_then(|v| {
        let mut c = Column::new(computed.column.data_type());
        c.push(Some(v));
        (c.dict().is_none()).then(|| c.group_key(0))
    });
    let mut coder = Coder::default();
    let mut codes = Vec::with_capacity(rows.len());
    let mut i = 0;
    // Both ascend: one walk gives each member its value, or the empty one.
    for &row in rows {
        while computed.rows.get(i).is_some_and(|&r| r < row) {
            i += 1;
        }
        let code = if computed.rows.get(i) == Some(&row) {
            let column = &computed.column;
            coder.code(key(column, i), || column.get(i))
        } else {
            match (&empty, empty_key) {
                (None, _) => coder.code(None, || None),
                (Some(v), Some(k)) => coder.code(Some(k), || Some(v.clone())),
                // a string empty value (none today): a code of its own
                (Some(v), None) => coder.code(Some(u64::MAX), || Some(v.clone())),
            }
        };
        codes.push(code);
    }
    Ok(Coded {
        codes,
        values: coder.values,
    })
}

impl View<'_> {
    /// BREAKDOWN by several columns, or by a computed value: a line per combination of the
    /// segment's members' values (NULL included), largest first.
    pub(crate) fn breakdown_values(
        &self,
        members: &RoaringBitmap,
        values: &[crate::computed::ValueExpr],
        top: Option<usize>,
    ) -> Result<Vec<BreakdownRow>> {
        let rows: Vec<RowId> = members.iter().collect();
        let mut columns: Vec<Coded> = Vec::with_capacity(values.len());
        for value in values {
            check_deadline(self.deadline)?;
            let bound = plan::bind_value(self.state(), value, self.now().micros())?;
            columns.push(match &bound {
                BoundValue::Attr(attr) => code_column(&attr.column, &rows),
                _ => code_values(&bound, &rows, self.state().members.len())?,
            });
        }
        let lines = count_combinations(&columns, rows.len())
            .into_iter()
            .map(|(codes, count)| {
                let mut line = columns
                    .iter()
                    .zip(codes)
                    .map(|(c, code)| c.values[code as usize].clone());
                BreakdownRow {
                    value: line.next().flatten(),
                    count,
                    more: line.collect(),
                }
            })
            .collect();
        Ok(ordered(lines, top))
    }
}

/// How many members have each combination of the columns' codes (a combination per line,
/// codes in column order). The codes are one number in mixed radix while the product of the
/// columns' numbers of values fits in a `u128` (a dense table when small); past it (many
/// columns of many values each) each combination is its own key.
fn count_combinations(columns: &[Coded], members: usize) -> Vec<(Vec<u32>, u64)> {
    let radix: Vec<u128> = columns.iter().map(|c| c.values.len() as u128).collect();
    let Some(combined) = radix.iter().try_fold(1u128, |a, r| a.checked_mul(*r)) else {
        let mut counts: HashMap<Vec<u32>, u64> = HashMap::new();
        for k in 0..members {
            *counts
                .entry(columns.iter().map(|c| c.codes[k]).collect())
                .or_default() += 1;
        }
        return counts.into_iter().collect();
    };
    let mut counts: HashMap<u128, u64> = HashMap::new();
    let mut dense = (combined <= 1 << 16).then(|| vec![0u64; combined as usize]);
    for k in 0..members {
        let mut n: u128 = 0;
        for (c, r) in columns.iter().zip(&radix) {
            n = n * r + u128::from(c.codes[k]);
        }
        match &mut dense {
            Some(d) => d[n as usize] += 1,
            None => *counts.entry(n).or_default() += 1,
        }
    }
    if let Some(d) = dense {
        counts = d
            .into_iter()
            .enumerate()
            .filter(|(_, c)| *c > 0)
            .map(|(n, c)| (n as u128, c))
            .collect();
    }
    counts
        .into_iter()
        .map(|(mut n, count)| {
            let mut codes = vec![0u32; radix.len()];
            for (j, r) in radix.iter().enumerate().rev() {
                codes[j] = (n % r) as u32;
                n /= r;
            }
            (codes, count)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(codes: Vec<u32>, values: usize) -> Coded {
        Coded {
            codes,
            values: vec![None; values],
        }
    }

    #[test]
    fn combinations_are_counted_when_the_radix_product_overflows() {
        // Nine columns of 2^15 values each: the product is 2^135, past u128.
        let wide = |codes: Vec<u32>| column(codes, 1 << 15);
        let columns: Vec<Coded> = (0..9).map(|j| wide(vec![j, j, 7])).collect();
        let mut counts = count_combinations(&columns, 3);
        counts.sort();
        assert_eq!(
            counts,
            vec![((0..9).collect(), 2), (vec![7; 9], 1)],
            "two members share a combination, one has its own"
        );
    }

    #[test]
    fn combinations_decode_in_column_order() {
        let columns = vec![column(vec![0, 1, 1, 2], 3), column(vec![4, 0, 0, 4], 5)];
        let mut counts = count_combinations(&columns, 4);
        counts.sort();
        assert_eq!(
            counts,
            vec![(vec![0, 4], 1), (vec![1, 0], 2), (vec![2, 4], 1)]
        );
    }
}
