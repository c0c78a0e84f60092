//! Predicates compiled against one column: literals coerced to the column's domain once, so
//! that testing a row is a code lookup or an integer / float range check.

use super::{Column, ColumnData};
use crate::error::{Error, Result};
use crate::segment::{CmpOp, Predicate};
use crate::util::chunked::{ChunkedVec, Plain};
use crate::value::{DAY_MICROS, DataType, Value, parse_date, parse_timestamp};

/// An inclusive range of floats with open or closed ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FloatRange {
    pub(crate) lo: f64,
    pub(crate) lo_inclusive: bool,
    pub(crate) hi: f64,
    pub(crate) hi_inclusive: bool,
}

impl FloatRange {
    #[inline]
    pub(crate) fn contains(&self, x: f64) -> bool {
        (if self.lo_inclusive {
            x >= self.lo
        } else {
            x > self.lo
        }) && (if self.hi_inclusive {
            x <= self.hi
        } else {
            x < self.hi
        })
    }
}

/// What a compiled predicate tests, before negation and NULL handling.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MatchKind {
    /// `IS NULL` (the only kind that matches NULL).
    IsNull,
    /// Every non-NULL value.
    Any,
    /// String codes: `set[code]`; codes past the end (added later) do not match.
    Codes(Vec<bool>),
    /// Inclusive `i64` ranges over the column's integer key (int, days, microseconds).
    Ints(Vec<(i64, i64)>),
    /// Float ranges.
    Floats(Vec<FloatRange>),
    /// `[matches false, matches true]`.
    Bools([bool; 2]),
}

/// A predicate ready to test rows of one column.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Matcher {
    pub(crate) kind: MatchKind,
    /// `!=`: a non-NULL value matches when the kind does not.
    pub(crate) negate: bool,
}

impl Matcher {
    /// Does `row` of `column` pass? The row-at-a-time reference of [`Matcher::fill`],
    /// which the tests hold `fill` to; also the test of an index's pending rows.
    pub(crate) fn matches(&self, column: &Column, row: usize) -> bool {
        let valid = column.is_valid(row);
        if self.kind == MatchKind::IsNull {
            return !valid;
        }
        valid && (self.matches_value(column, row) != self.negate)
    }

    fn matches_value(&self, column: &Column, row: usize) -> bool {
        match (&self.kind, &column.data) {
            (MatchKind::Any, _) => true,
            (MatchKind::Codes(set), ColumnData::Str { codes, .. }) => {
                set.get(codes[row] as usize).copied().unwrap_or(false)
            }
            (MatchKind::Ints(ranges), _) => match column.int_key(row) {
                Some(k) => ranges.iter().any(|&(lo, hi)| lo <= k && k <= hi),
                None => false,
            },
            (MatchKind::Floats(ranges), ColumnData::Float(v)) => {
                ranges.iter().any(|r| r.contains(v[row]))
            }
            (MatchKind::Bools(which), ColumnData::Bool(v)) => which[usize::from(v[row])],
            _ => false,
        }
    }

    /// Vectorised [`Matcher::matches`]: `out[k]` = does row `start + k` pass, for
    /// `out.len()` rows. One tight loop per kind and type, then the validity mask.
    pub(crate) fn fill(&self, column: &Column, start: usize, out: &mut [bool]) {
        let end = start + out.len();
        if self.kind == MatchKind::IsNull {
            for (k, o) in out.iter_mut().enumerate() {
                *o = !column.is_valid(start + k);
            }
            return;
        }
        match (&self.kind, &column.data) {
            (MatchKind::Any, _) => out.fill(true),
            (MatchKind::Codes(set), ColumnData::Str { codes, .. }) => {
                by_slices(codes, start, out, |out, codes| {
                    for (o, &c) in out.iter_mut().zip(codes) {
                        *o = set.get(c as usize).copied().unwrap_or(false);
                    }
                });
            }
            (MatchKind::Ints(ranges), ColumnData::Int(v) | ColumnData::Timestamp(v)) => {
                by_slices(v, start, out, |out, v| fill_ranges(out, v, ranges, |x| x));
            }
            (MatchKind::Ints(ranges), ColumnData::Date(v)) => {
                by_slices(v, start, out, |out, v| {
                    fill_ranges(out, v, ranges, i64::from)
                });
            }
            (MatchKind::Floats(ranges), ColumnData::Float(v)) => match ranges.as_slice() {
                [r] => by_slices(v, start, out, |out, v| fill_float_range(out, v, *r)),
                _ => by_slices(v, start, out, |out, v| {
                    for (o, &x) in out.iter_mut().zip(v) {
                        *o = ranges.iter().any(|r| r.contains(x));
                    }
                }),
            },
            (MatchKind::Bools(which), ColumnData::Bool(v)) => {
                by_slices(v, start, out, |out, v| {
                    for (o, &b) in out.iter_mut().zip(v) {
                        *o = which[usize::from(b)];
                    }
                });
            }
            _ => out.fill(false),
        }
        if column.valid.all_set(start..end) {
            if self.negate {
                out.iter_mut().for_each(|o| *o = !*o);
            }
        } else {
            for (k, o) in out.iter_mut().enumerate() {
                *o = column.is_valid(start + k) && (*o != self.negate);
            }
        }
    }

    /// Does one value pass, as it would in a column of `data_type` (a value of another
    /// type, or a NaN, is NULL there)? `None` for a string: codes name a column's
    /// dictionary, so a string is tested in a column.
    pub(crate) fn passes(&self, data_type: DataType, value: Option<&Value>) -> Option<bool> {
        let value = value
            .filter(|v| v.data_type() == data_type && !matches!(v, Value::Float(x) if x.is_nan()));
        let Some(value) = value else {
            return Some(self.kind == MatchKind::IsNull);
        };
        let in_ranges =
            |ranges: &[(i64, i64)], k: i64| ranges.iter().any(|&(lo, hi)| lo <= k && k <= hi);
        let hit = match (&self.kind, value) {
            (MatchKind::IsNull, _) => return Some(false),
            (_, Value::Str(_)) => return None,
            (MatchKind::Any, _) => true,
            (MatchKind::Ints(r), Value::Int(k) | Value::Timestamp(k)) => in_ranges(r, *k),
            (MatchKind::Ints(r), Value::Date(d)) => in_ranges(r, i64::from(*d)),
            (MatchKind::Floats(r), Value::Float(x)) => r.iter().any(|r| r.contains(*x)),
            (MatchKind::Bools(which), Value::Bool(b)) => which[usize::from(*b)],
            _ => false,
        };
        Some(hit != self.negate)
    }

    /// True when no row can match (an empty `IN`, `= 2.5` on integers, ...).
    pub(crate) fn is_never(&self) -> bool {
        !self.negate
            && match &self.kind {
                MatchKind::Codes(set) => !set.iter().any(|&b| b),
                MatchKind::Ints(r) => r.is_empty(),
                MatchKind::Floats(r) => r.is_empty(),
                MatchKind::Bools(b) => !b[0] && !b[1],
                MatchKind::IsNull | MatchKind::Any => false,
            }
    }
}

/// Runs `fill` over rows `start..start + out.len()` of `values` one chunk's slice at a time,
/// with the matching part of `out`: the loops inside stay over plain slices.
#[inline]
fn by_slices<T: Plain>(
    values: &ChunkedVec<T>,
    start: usize,
    out: &mut [bool],
    mut fill: impl FnMut(&mut [bool], &[T]),
) {
    let mut done = 0;
    for slice in values.slices(start..start + out.len()) {
        fill(&mut out[done..done + slice.len()], slice);
        done += slice.len();
    }
}

/// One loop per kind of end, so the compiler sees two plain comparisons (and vectorises).
fn fill_float_range(out: &mut [bool], values: &[f64], r: FloatRange) {
    let (lo, hi) = (r.lo, r.hi);
    match (r.lo_inclusive, r.hi_inclusive) {
        (true, true) => fill_with(out, values, |x| (x >= lo) & (x <= hi)),
        (true, false) => fill_with(out, values, |x| (x >= lo) & (x < hi)),
        (false, true) => fill_with(out, values, |x| (x > lo) & (x <= hi)),
        (false, false) => fill_with(out, values, |x| (x > lo) & (x < hi)),
    }
}

#[inline]
fn fill_with<T: Copy>(out: &mut [bool], values: &[T], test: impl Fn(T) -> bool) {
    for (o, &x) in out.iter_mut().zip(values) {
        *o = test(x);
    }
}

fn fill_ranges<T: Copy>(
    out: &mut [bool],
    values: &[T],
    ranges: &[(i64, i64)],
    key: impl Fn(T) -> i64,
) {
    match ranges {
        [(lo, hi)] => {
            for (o, &x) in out.iter_mut().zip(values) {
                let k = key(x);
                *o = (*lo <= k) & (k <= *hi);
            }
        }
        _ => {
            for (o, &x) in out.iter_mut().zip(values) {
                let k = key(x);
                *o = ranges.iter().any(|&(lo, hi)| lo <= k && k <= hi);
            }
        }
    }
}

/// A literal placed in an integer domain: `floor <= literal <= ceil`, equal when exact.
#[derive(Clone, Copy)]
pub(crate) struct IntLit {
    pub(crate) floor: i64,
    pub(crate) ceil: i64,
}

impl IntLit {
    pub(crate) fn exact(v: i64) -> Self {
        IntLit { floor: v, ceil: v }
    }
}

fn int_range(op: CmpOp, lit: IntLit) -> Vec<(i64, i64)> {
    let range = match op {
        CmpOp::Eq | CmpOp::Ne if lit.floor == lit.ceil => (lit.floor, lit.floor),
        CmpOp::Eq | CmpOp::Ne => return Vec::new(),
        CmpOp::Lt => (i64::MIN, lit.ceil.saturating_sub(1)),
        CmpOp::Le => (i64::MIN, lit.floor),
        CmpOp::Gt => (lit.floor.saturating_add(1), i64::MAX),
        CmpOp::Ge => (lit.ceil, i64::MAX),
    };
    if range.0 > range.1 || (op == CmpOp::Lt && lit.ceil == i64::MIN) {
        Vec::new()
    } else {
        vec![range]
    }
}

fn float_range(op: CmpOp, x: f64) -> FloatRange {
    let (ninf, inf) = (f64::NEG_INFINITY, f64::INFINITY);
    let r = |lo, lo_inclusive, hi, hi_inclusive| FloatRange {
        lo,
        lo_inclusive,
        hi,
        hi_inclusive,
    };
    match op {
        CmpOp::Eq | CmpOp::Ne => r(x, true, x, true),
        CmpOp::Lt => r(ninf, true, x, false),
        CmpOp::Le => r(ninf, true, x, true),
        CmpOp::Gt => r(x, false, inf, true),
        CmpOp::Ge => r(x, true, inf, true),
    }
}

/// Compiles `predicate` for `column` (named `name` in errors).
pub(crate) fn compile(predicate: &Predicate, column: &Column, name: &str) -> Result<Matcher> {
    let data_type = column.data_type();
    let plain = |kind| {
        Ok(Matcher {
            kind,
            negate: false,
        })
    };
    match predicate {
        Predicate::IsNull => plain(MatchKind::IsNull),
        Predicate::IsNotNull => plain(MatchKind::Any),
        Predicate::Cmp(op, v) => {
            let kind = compile_cmp(*op, v, column, name)?;
            Ok(Matcher {
                kind,
                negate: *op == CmpOp::Ne,
            })
        }
        Predicate::In(values) => {
            let mut kinds = Vec::with_capacity(values.len());
            for v in values {
                kinds.push(compile_cmp(CmpOp::Eq, v, column, name)?);
            }
            plain(union_kinds(data_type, column, kinds))
        }
        Predicate::Between(lo, hi) => {
            let low = compile_cmp(CmpOp::Ge, lo, column, name)?;
            let high = compile_cmp(CmpOp::Le, hi, column, name)?;
            plain(intersect_kinds(low, high))
        }
    }
}

fn type_error(name: &str, data_type: DataType, v: &Value) -> Error {
    let example = match data_type {
        DataType::String => "a quoted string such as 'Shanghai'",
        DataType::Int => "a whole number such as 1000",
        DataType::Float => "a number such as 99.5",
        DataType::Bool => "TRUE or FALSE",
        DataType::Date => "a date string such as '2026-11-01'",
        DataType::Timestamp => "a timestamp string such as '2026-11-01T08:00:00Z'",
    };
    let shown = match v {
        Value::Str(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    Error::InvalidSegment(format!(
        "'{name}' is of type {data_type} and cannot be compared with {shown}; use {example}"
    ))
}

fn compile_cmp(op: CmpOp, v: &Value, column: &Column, name: &str) -> Result<MatchKind> {
    let data_type = column.data_type();
    let err = || type_error(name, data_type, v);
    Ok(match (&column.data, v) {
        (ColumnData::Str { dict, .. }, Value::Str(s)) => {
            let mut set = vec![false; dict.len()];
            match op {
                CmpOp::Eq | CmpOp::Ne => {
                    if let Some(code) = dict.lookup(s) {
                        set[code as usize] = true;
                    }
                }
                _ => {
                    for (code, value) in dict.iter().enumerate() {
                        let ord = value.cmp(s.as_str());
                        set[code] = match op {
                            CmpOp::Lt => ord.is_lt(),
                            CmpOp::Le => ord.is_le(),
                            CmpOp::Gt => ord.is_gt(),
                            _ => ord.is_ge(),
                        };
                    }
                }
            }
            MatchKind::Codes(set)
        }
        (ColumnData::Str { .. }, _) => return Err(err()),
        (ColumnData::Bool(_), Value::Bool(b)) => match op {
            CmpOp::Eq | CmpOp::Ne => {
                let mut which = [false; 2];
                which[usize::from(*b)] = true;
                MatchKind::Bools(which)
            }
            _ => {
                return Err(Error::InvalidSegment(format!(
                    "'{name}' is of type bool; compare it with = or != TRUE / FALSE"
                )));
            }
        },
        (ColumnData::Bool(_), _) => return Err(err()),
        (ColumnData::Float(_), Value::Int(i)) => {
            MatchKind::Floats(vec![float_range(op, *i as f64)])
        }
        (ColumnData::Float(_), Value::Float(x)) if !x.is_nan() => {
            MatchKind::Floats(vec![float_range(op, *x)])
        }
        (ColumnData::Float(_), _) => return Err(err()),
        (ColumnData::Int(_), Value::Int(i)) => MatchKind::Ints(int_range(op, IntLit::exact(*i))),
        (ColumnData::Int(_), Value::Float(x)) if x.is_finite() => {
            let lit = IntLit {
                floor: x.floor() as i64,
                ceil: x.ceil() as i64,
            };
            MatchKind::Ints(int_range(op, lit))
        }
        (ColumnData::Int(_), _) => return Err(err()),
        (ColumnData::Date(_), _) => {
            let lit = match v {
                Value::Date(d) => IntLit::exact(i64::from(*d)),
                Value::Timestamp(t) => micros_to_days(*t),
                Value::Str(s) => match parse_date(s) {
                    Some(d) => IntLit::exact(i64::from(d)),
                    None => micros_to_days(parse_timestamp(s).ok_or_else(err)?),
                },
                _ => return Err(err()),
            };
            MatchKind::Ints(int_range(op, lit))
        }
        (ColumnData::Timestamp(_), _) => {
            let micros = match v {
                Value::Timestamp(t) => *t,
                Value::Date(d) => i64::from(*d) * DAY_MICROS,
                Value::Str(s) => parse_timestamp(s).ok_or_else(err)?,
                _ => return Err(err()),
            };
            MatchKind::Ints(int_range(op, IntLit::exact(micros)))
        }
    })
}

/// A timestamp in the days domain: a date means midnight UTC of that day.
pub(crate) fn micros_to_days(t: i64) -> IntLit {
    let floor = t.div_euclid(DAY_MICROS);
    let ceil = if t.rem_euclid(DAY_MICROS) == 0 {
        floor
    } else {
        floor + 1
    };
    IntLit { floor, ceil }
}

fn union_kinds(data_type: DataType, column: &Column, kinds: Vec<MatchKind>) -> MatchKind {
    let mut out = match data_type {
        DataType::String => MatchKind::Codes(vec![false; column.dict().map_or(0, |d| d.len())]),
        DataType::Float => MatchKind::Floats(Vec::new()),
        DataType::Bool => MatchKind::Bools([false; 2]),
        _ => MatchKind::Ints(Vec::new()),
    };
    for kind in kinds {
        match (&mut out, kind) {
            (MatchKind::Codes(a), MatchKind::Codes(b)) => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x |= y);
            }
            (MatchKind::Floats(a), MatchKind::Floats(b)) => a.extend(b),
            (MatchKind::Ints(a), MatchKind::Ints(b)) => a.extend(b),
            (MatchKind::Bools(a), MatchKind::Bools(b)) => {
                a[0] |= b[0];
                a[1] |= b[1];
            }
            _ => {}
        }
    }
    out
}

fn intersect_kinds(a: MatchKind, b: MatchKind) -> MatchKind {
    match (a, b) {
        (MatchKind::Codes(x), MatchKind::Codes(y)) => {
            MatchKind::Codes(x.into_iter().zip(y).map(|(p, q)| p && q).collect())
        }
        (MatchKind::Ints(x), MatchKind::Ints(y)) => MatchKind::Ints(match (x.first(), y.first()) {
            (Some(&(lo1, hi1)), Some(&(lo2, hi2))) if lo1.max(lo2) <= hi1.min(hi2) => {
                vec![(lo1.max(lo2), hi1.min(hi2))]
            }
            _ => Vec::new(),
        }),
        (MatchKind::Floats(x), MatchKind::Floats(y)) => {
            MatchKind::Floats(match (x.first(), y.first()) {
                (Some(p), Some(q)) => {
                    let r = FloatRange {
                        lo: p.lo.max(q.lo),
                        lo_inclusive: if p.lo > q.lo {
                            p.lo_inclusive
                        } else {
                            q.lo_inclusive
                        },
                        hi: p.hi.min(q.hi),
                        hi_inclusive: if p.hi < q.hi {
                            p.hi_inclusive
                        } else {
                            q.hi_inclusive
                        },
                    };
                    if r.lo <= r.hi { vec![r] } else { Vec::new() }
                }
                _ => Vec::new(),
            })
        }
        _ => MatchKind::Ints(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(data_type: DataType, values: &[Option<Value>]) -> Column {
        let mut c = Column::new(data_type);
        for v in values {
            c.push(v.as_ref());
        }
        c
    }

    /// The passing rows, by `matches` row by row; `fill` (from every start) must agree.
    fn rows(m: &Matcher, c: &Column) -> Vec<usize> {
        let passing: Vec<usize> = (0..c.len()).filter(|&r| m.matches(c, r)).collect();
        for r in 0..c.len() {
            if let Some(pass) = m.passes(c.data_type(), c.get(r).as_ref()) {
                assert_eq!(pass, m.matches(c, r), "one value of row {r}");
            }
        }
        for start in 0..c.len() {
            let mut mask = vec![false; c.len() - start];
            m.fill(c, start, &mut mask);
            let filled: Vec<usize> = (start..c.len()).filter(|&r| mask[r - start]).collect();
            let expected: Vec<usize> = passing.iter().copied().filter(|&r| r >= start).collect();
            assert_eq!(filled, expected, "fill from row {start}");
        }
        passing
    }

    #[test]
    fn not_equal_never_matches_null() {
        let c = column(
            DataType::String,
            &[Some("a".into()), None, Some("b".into())],
        );
        let m = compile(&Predicate::Cmp(CmpOp::Ne, "a".into()), &c, "x").unwrap();
        assert_eq!(rows(&m, &c), vec![2]);
        let m = compile(&Predicate::IsNull, &c, "x").unwrap();
        assert_eq!(rows(&m, &c), vec![1]);
    }

    #[test]
    fn float_literal_on_integers_rounds_the_right_way() {
        let c = column(DataType::Int, &[Some(Value::Int(2)), Some(Value::Int(3))]);
        let ge = compile(&Predicate::Cmp(CmpOp::Ge, Value::Float(2.5)), &c, "x").unwrap();
        assert_eq!(rows(&ge, &c), vec![1]);
        let eq = compile(&Predicate::Cmp(CmpOp::Eq, Value::Float(2.5)), &c, "x").unwrap();
        assert!(rows(&eq, &c).is_empty());
        let lt = compile(&Predicate::Cmp(CmpOp::Lt, Value::Float(2.5)), &c, "x").unwrap();
        assert_eq!(rows(&lt, &c), vec![0]);
    }

    #[test]
    fn date_against_timestamp_means_midnight() {
        let d = parse_date("2026-01-02").unwrap();
        let c = column(DataType::Date, &[Some(Value::Date(d))]);
        let ts = |s: &str| Value::from(s);
        let gt = compile(
            &Predicate::Cmp(CmpOp::Gt, ts("2026-01-01T23:00:00Z")),
            &c,
            "x",
        )
        .unwrap();
        assert_eq!(rows(&gt, &c), vec![0]);
        let ge = compile(
            &Predicate::Cmp(CmpOp::Ge, ts("2026-01-02T00:00:01Z")),
            &c,
            "x",
        )
        .unwrap();
        assert!(rows(&ge, &c).is_empty());
        let eq = compile(
            &Predicate::Cmp(CmpOp::Eq, ts("2026-01-02T00:00:00Z")),
            &c,
            "x",
        )
        .unwrap();
        assert_eq!(rows(&eq, &c), vec![0]);
    }

    #[test]
    fn type_mismatch_says_what_to_write() {
        let c = column(DataType::Int, &[]);
        let e = compile(&Predicate::Cmp(CmpOp::Eq, "abc".into()), &c, "points").unwrap_err();
        assert!(e.to_string().contains("'points' is of type integer"), "{e}");
    }

    #[test]
    fn between_and_in() {
        let c = column(
            DataType::Float,
            &[Some(Value::Float(1.0)), Some(Value::Float(5.0))],
        );
        let b = compile(&Predicate::Between(Value::Int(1), Value::Int(4)), &c, "x").unwrap();
        assert_eq!(rows(&b, &c), vec![0]);
        let i = compile(&Predicate::In(vec![Value::Int(5), Value::Int(7)]), &c, "x").unwrap();
        assert_eq!(rows(&i, &c), vec![1]);
    }
}
