//! Values per member as SQL (DESIGN section 9): an attribute, and `DAYS SINCE` or `BUCKET`
//! of one, is an expression over the members file; an aggregate is a column of the pass
//! over the events it reads, grouped by member row (aggregates of the same events share
//! one pass), every other member holding the value of an empty set; a trait is written by
//! its definition (a `CASE` as the bitmaps of its `WHEN`s, a `QUANTILE` ranked by window
//! functions over its `OVER` members). A comparison
//! of a value is a part of the segment like any leaf; `BREAKDOWN BY` and `FIND SHOW` read
//! the values themselves.

use super::literal::{ident, test, value as literal};
use super::segment::{Kind, Parts, SEGMENT, UNIVERSE, fold};
use crate::computed::eval::{bucket, days_since};
use crate::computed::{AggFunc, Aggregate, ValueExpr};
use crate::error::{Error, Result};
use crate::segment::Predicate;
use crate::state::Named;
use crate::traits::{Trait, TraitDef};
use crate::value::{DAY_MICROS, DataType, Value};

/// A value per member, as SQL.
pub(super) enum ValueSql {
    /// An expression over the columns of the members file.
    Row(String),
    /// `expr` over the columns of `relation`, which holds the members with events read;
    /// every other member has `empty`.
    Events {
        relation: Relation,
        expr: String,
        empty: Option<Value>,
    },
    /// A `CASE`: the first part (a bitmap's name) holding the member gives its value,
    /// else `otherwise`.
    Case {
        whens: Vec<(String, Option<Value>)>,
        otherwise: Option<Value>,
    },
}

/// Where a value of members with events is read.
pub(super) enum Relation {
    /// The columns of a per-member pass over the events (see [`Parts::pass_column`]).
    Pass(usize),
    /// A relation of its own, with columns `member_row` and `v`.
    Sql(String),
}

/// A value as an expression of the column holding its aggregate.
type ValueOf = Box<dyn Fn(&str) -> String>;

/// A value's SQL and type.
pub(super) type Typed = (ValueSql, DataType);

impl Parts<'_> {
    /// The members whose `value` passes `predicate`: a part over the members file, over
    /// the value's relation (its members without events added when the empty value
    /// passes, as the binder does), or over a `CASE`'s parts.
    pub(super) fn value_leaf(
        &mut self,
        value: &ValueExpr,
        predicate: &Predicate,
        comment: String,
    ) -> Result<String> {
        let (sql, data_type) = self.value(value, false)?;
        let passes =
            |v: Option<&Value>| crate::plan::value_passes(predicate, data_type, v, &comment);
        match sql {
            ValueSql::Row(expr) => {
                let condition = test(&format!("({expr})"), data_type, predicate, &comment)?;
                self.add(Kind::Members, "value", comment, condition)
            }
            ValueSql::Events {
                relation,
                expr,
                empty,
            } => {
                let condition = test(&format!("({expr})"), data_type, predicate, &comment)?;
                if !passes(empty.as_ref())? {
                    return self.over(&relation, "value", comment, condition);
                }
                // the members without events pass: the universe less those whose value fails
                let failing = self.over(
                    &relation,
                    "fails",
                    format!("{comment} (members whose value fails)"),
                    format!("NOT ifNull({condition}, 0)"),
                )?;
                let expr = format!("bitmapAndnot({UNIVERSE}, {failing})");
                self.add(Kind::Combination, "value", comment, expr)
            }
            ValueSql::Case { whens, otherwise } => {
                // a member has the i-th value when in the i-th part and in none before it
                let mut passing = Vec::new();
                let mut before: Vec<String> = Vec::new();
                for (part, v) in whens {
                    if passes(v.as_ref())? {
                        passing.push(match before.is_empty() {
                            true => part.clone(),
                            false => format!("bitmapAndnot({part}, {})", fold("bitmapOr", &before)),
                        });
                    }
                    before.push(part);
                }
                if passes(otherwise.as_ref())? {
                    passing.push(format!(
                        "bitmapAndnot({UNIVERSE}, {})",
                        fold("bitmapOr", &before)
                    ));
                }
                let expr = match passing.is_empty() {
                    true => "bitmapBuild(emptyArrayUInt32())".to_string(),
                    false => fold("bitmapOr", &passing),
                };
                self.add(Kind::Combination, "value", comment, expr)
            }
        }
    }

    /// The part of the members of `relation` passing `condition` (on its columns).
    fn over(
        &mut self,
        relation: &Relation,
        prefix: &str,
        comment: String,
        condition: String,
    ) -> Result<String> {
        match relation {
            Relation::Pass(pass) => {
                self.add_over(Kind::Pass(*pass), prefix, comment, condition, String::new())
            }
            Relation::Sql(sql) => {
                let agg = format!("groupBitmapStateIf(member_row, {condition})");
                self.add_over(Kind::Relation, prefix, comment, sql.clone(), agg)
            }
        }
    }

    /// `relation` as SQL (for a join by member row).
    fn relation_sql(&self, relation: &Relation) -> String {
        match relation {
            Relation::Pass(pass) => self.pass_relation(*pass),
            Relation::Sql(sql) => sql.clone(),
        }
    }

    /// `value` as SQL, with its type. `in_trait`: inside a trait's definition, where an
    /// integer `SUM` that overflows is NULL rather than an error.
    pub(super) fn value(&mut self, value: &ValueExpr, in_trait: bool) -> Result<Typed> {
        match value {
            ValueExpr::Attr(name) => match self.state.require_named(name)? {
                Named::Attribute(a) => Ok((ValueSql::Row(ident(name)), a.column.data_type())),
                Named::Trait(t) => self.trait_value(t),
            },
            ValueExpr::Aggregate(a) => self.aggregate(a, in_trait),
            ValueExpr::DaysSince(inner) => {
                let (sql, data_type) = self.value(inner, in_trait)?;
                let now = self.now;
                let sql = self.map(sql, &|x| days_since_sql(x, data_type, now), &|v| {
                    days_since(v, now)
                });
                Ok((sql, DataType::Int))
            }
            ValueExpr::Bucket { value, cuts } => {
                let (sql, data_type) = self.value(value, in_trait)?;
                let cuts: Vec<f64> = cuts
                    .iter()
                    .filter_map(|c| match c {
                        Value::Int(i) => Some(*i as f64),
                        Value::Float(x) => Some(*x),
                        _ => None,
                    })
                    .collect();
                let float = data_type == DataType::Float;
                let sql = self.map(sql, &|x| bucket_sql(x, &cuts, float), &|v| bucket(v, &cuts));
                Ok((sql, DataType::Int))
            }
        }
    }

    /// A trait, written by its definition.
    fn trait_value(&mut self, t: &Trait) -> Result<Typed> {
        if self.inlining.iter().any(|n| n == &t.name) {
            return Err(Error::Internal(format!("trait '{}' reads itself", t.name)));
        }
        self.inlining.push(t.name.clone());
        let out = self.definition(t);
        self.inlining.pop();
        out
    }

    fn definition(&mut self, t: &Trait) -> Result<Typed> {
        let (state, now) = (self.state, self.now);
        match &t.definition {
            TraitDef::Value(v) => self.value(v, true),
            TraitDef::Case { whens, otherwise } => {
                let data_type = crate::traits::case_type(whens, otherwise.as_ref())?;
                let mut parts = Vec::new();
                for (segment, v) in whens {
                    let plan = crate::plan::bind(state, segment, now, None)?;
                    parts.push((self.node(&plan.root)?, Some(v.clone())));
                }
                let sql = ValueSql::Case {
                    whens: parts,
                    otherwise: otherwise.clone(),
                };
                Ok((sql, data_type))
            }
            TraitDef::Quantile {
                buckets,
                value,
                descending,
                over,
            } => {
                // the ranking is a query of its own: the OVER members (a segment), the
                // ranked value read for them as FIND reads a shown value
                let mut inner = Parts::new(state, self.tables, now);
                inner.inlining = self.inlining.clone();
                let x = inner.value(value, true)?;
                let plan = crate::plan::bind(state, over, now, None)?;
                let root = inner.root(&plan)?;
                let (shown, joins) = inner.output(vec![x])?;
                let x = shown.concat();
                let with = inner.with_clause(&plan.root.source_text(), &root);
                let ranked = format!(
                    "{with}\nSELECT member_row, {x} AS x\nFROM (SELECT * FROM {} WHERE \
                     bitmapContains((SELECT b FROM {SEGMENT}), member_row)) AS m{joins}",
                    self.tables.members
                );
                let order = if *descending { "DESC" } else { "ASC" };
                let relation = format!(
                    "SELECT member_row, toInt64(1 + intDiv({buckets} * (rank() OVER (ORDER BY x \
                     {order}) - 1), count() OVER ())) AS v\nFROM (\n{ranked}\n) WHERE x IS NOT NULL"
                );
                let sql = ValueSql::Events {
                    relation: Relation::Sql(relation),
                    expr: "v".into(),
                    empty: None,
                };
                Ok((sql, DataType::Int))
            }
        }
    }

    /// An aggregate: a relation of the members with events read, grouped by member row.
    fn aggregate(&mut self, a: &Aggregate, in_trait: bool) -> Result<Typed> {
        let value = ValueExpr::Aggregate(Box::new(a.clone()));
        let bound = crate::plan::bind_value(self.state, &value, self.now)?;
        let (data_type, empty) = (bound.data_type(), bound.empty());
        drop(bound);
        let conditions = self.event_conditions(&a.event, a.window.as_ref(), a.filter.as_ref())?;
        let seq = self.tables.seq;
        let prop = a.func.property().map(ident);
        let p = prop.as_deref().unwrap_or("NULL");
        // the aggregate (a column of the pass over the events), and the value from it
        let (agg, value): (String, ValueOf) = if let Some((amount, unit)) = a.within_any {
            // the largest count over any [t, t + span): some event's time starts one
            // (each event's interval counted over the member's events)
            let span = crate::segment::window_span(amount, unit).unwrap_or(i64::MAX);
            let span = span.min(super::sequence::UNBOUNDED);
            let key = match &a.func {
                AggFunc::Count => "0".to_string(),
                AggFunc::CountDistinct(_) => p.to_string(),
                AggFunc::CountDistinctDays => "toDate32(ts)".to_string(),
                _ => return Err(Error::Internal("WITHIN ANY of a non-count".into())),
            };
            let inside = format!("e.1 >= s AND e.1 < s + {span}");
            let distinct = !matches!(a.func, AggFunc::Count);
            (
                format!("groupArray((toUnixTimestamp64Micro(ts), {key}))"),
                Box::new(move |v: &str| {
                    let counted = match distinct {
                        false => format!("arrayCount(e -> {inside}, {v})"),
                        true => format!(
                            "length(arrayDistinct(arrayMap(e -> e.2, arrayFilter(e -> {inside} \
                             AND e.2 IS NOT NULL, {v}))))"
                        ),
                    };
                    format!("arrayMax(arrayMap(s -> {counted}, arrayMap(e -> e.1, {v})))")
                }),
            )
        } else {
            // float sums add in time order (equal times as written), as the engine does
            // (sorted by one Int128 key of time and file order: cheaper than tuples)
            let in_order = format!(
                "arraySort((x, k) -> k, groupArrayIf(toFloat64(assumeNotNull({p})), {p} IS NOT \
                 NULL), groupArrayIf(bitShiftLeft(toInt128(toUnixTimestamp64Micro(ts)), 64) + \
                 {seq}, {p} IS NOT NULL))"
            );
            let fold = |v: &str| format!("arrayFold((acc, x) -> acc + x, {v}, toFloat64(0))");
            const RANGE: &str = "BETWEEN -9223372036854775808 AND 9223372036854775807";
            let same = || -> ValueOf { Box::new(|v: &str| v.to_string()) };
            match &a.func {
                AggFunc::Count => ("count()".to_string(), same()),
                AggFunc::CountDistinct(_) => (format!("uniqExact({p})"), same()),
                AggFunc::CountDistinctDays => ("uniqExact(toDate32(ts))".into(), same()),
                AggFunc::Sum(_) if data_type == DataType::Float => (in_order, Box::new(fold)),
                AggFunc::Sum(_) if in_trait => (
                    format!("ifNull(sum(toInt128({p})), 0)"),
                    Box::new(|v: &str| format!("if({v} {RANGE}, toInt64({v}), NULL)")),
                ),
                AggFunc::Sum(_) => (
                    format!("ifNull(sum(toInt128({p})), 0)"),
                    Box::new(|v: &str| {
                        format!(
                            "toInt64({v} + throwIf({v} NOT {RANGE}, 'SUM overflows a 64-bit \
                             integer'))"
                        )
                    }),
                ),
                AggFunc::Avg(_) => (
                    in_order,
                    Box::new(move |v: &str| {
                        format!("if(empty({v}), NULL, {} / length({v}))", fold(v))
                    }),
                ),
                AggFunc::Min(_) => (format!("min({p})"), same()),
                AggFunc::Max(_) => (format!("max({p})"), same()),
                AggFunc::First(Some(_)) => (
                    format!("argMinIf({p}, (ts, {seq}), {p} IS NOT NULL)"),
                    same(),
                ),
                AggFunc::Last(Some(_)) => (
                    format!("argMaxIf({p}, (ts, {seq}), {p} IS NOT NULL)"),
                    same(),
                ),
                AggFunc::First(None) => ("min(ts)".into(), same()),
                AggFunc::Last(None) => ("max(ts)".into(), same()),
            }
        };
        let (pass, column) = self.pass_column(&conditions, agg);
        // the value as a column of its own (read by the parts and the output)
        let column = match value(&column) {
            expr if expr == column => column,
            expr => self.column_of(pass, expr),
        };
        let sql = ValueSql::Events {
            relation: Relation::Pass(pass),
            expr: column,
            empty,
        };
        Ok((sql, data_type))
    }

    /// `f` applied to a value: to the expression (a column of its own in a pass), to the
    /// empty value, to a `CASE`'s results.
    fn map(
        &mut self,
        sql: ValueSql,
        f: &dyn Fn(&str) -> String,
        on: &dyn Fn(&Value) -> Option<Value>,
    ) -> ValueSql {
        match sql {
            ValueSql::Row(expr) => ValueSql::Row(f(&expr)),
            ValueSql::Events {
                relation,
                expr,
                empty,
            } => {
                let (relation, expr) = match relation {
                    Relation::Pass(pass) => {
                        let column = self.column_of(pass, f(&expr));
                        (Relation::Pass(pass), column)
                    }
                    // the relation's values mapped once, so `f` reads a column
                    Relation::Sql(sql) => (
                        Relation::Sql(format!("SELECT member_row, {expr} AS v FROM ({sql})")),
                        f("v"),
                    ),
                };
                ValueSql::Events {
                    relation,
                    expr,
                    empty: empty.as_ref().and_then(on),
                }
            }
            ValueSql::Case { whens, otherwise } => ValueSql::Case {
                whens: whens
                    .into_iter()
                    .map(|(part, v)| (part, v.as_ref().and_then(on)))
                    .collect(),
                otherwise: otherwise.as_ref().and_then(on),
            },
        }
    }

    /// Each value of `values` as an expression over the members file's rows and the
    /// joins it needs: the output columns of `BREAKDOWN BY` and `FIND SHOW`.
    pub(super) fn output(&mut self, values: Vec<Typed>) -> Result<(Vec<String>, String)> {
        let mut exprs = Vec::new();
        let mut joins = String::new();
        for (i, (sql, _)) in values.into_iter().enumerate() {
            exprs.push(match sql {
                ValueSql::Row(expr) => expr,
                ValueSql::Events {
                    relation,
                    expr,
                    empty,
                } => {
                    joins.push_str(&format!(
                        "\nLEFT JOIN (SELECT member_row, 1 AS __hit{i}, {expr} AS __v{i} FROM (\n    \
                         {}\n)) AS __r{i} USING member_row",
                        self.relation_sql(&relation).replace('\n', "\n    ")
                    ));
                    format!(
                        "if(__hit{i} = 1, __v{i}, {})",
                        literal_or_null(empty.as_ref())?
                    )
                }
                ValueSql::Case { whens, otherwise } => {
                    let mut args = Vec::new();
                    for (part, v) in whens {
                        if !self.exports.contains(&part) {
                            self.exports.push(part.clone());
                        }
                        args.push(format!(
                            "bitmapContains((SELECT {part} FROM {SEGMENT}), member_row)"
                        ));
                        args.push(literal_or_null(v.as_ref())?);
                    }
                    args.push(literal_or_null(otherwise.as_ref())?);
                    format!("multiIf({})", args.join(", "))
                }
            });
        }
        Ok((exprs, joins))
    }
}

/// `DAYS SINCE x`: whole days from `x` (a time, or a date's midnight) to *now*, rounded
/// down (integer arithmetic: `intDiv` rounds toward zero).
fn days_since_sql(x: &str, data_type: DataType, now: i64) -> String {
    let micros = match data_type {
        DataType::Date => format!("toInt64({x}) * {DAY_MICROS}"),
        _ => format!("toUnixTimestamp64Micro({x})"),
    };
    let d = format!("({now} - {micros})");
    format!("(intDiv({d}, {DAY_MICROS}) - (modulo({d}, {DAY_MICROS}) < 0))")
}

/// `BUCKET(x, c1, ...)`: 1 + the number of cut points at or below `x` (NaN is NULL).
fn bucket_sql(x: &str, cuts: &[f64], float: bool) -> String {
    let counted: String = cuts
        .iter()
        .map(|c| format!(" + (toFloat64({x}) >= {c:?})"))
        .collect();
    let sum = format!("toInt64(1{counted})");
    match float {
        true => format!("if(isNaN({x}), NULL, {sum})"),
        false => sum,
    }
}

/// A value as a literal, NULL for `None`.
fn literal_or_null(v: Option<&Value>) -> Result<String> {
    match v {
        None => Ok("NULL".into()),
        Some(v) => literal(v).ok_or_else(|| {
            Error::InvalidSegment(format!(
                "does not compile to ClickHouse SQL: {v}: outside the years ClickHouse's dates \
                 and times hold (1900 to 2299)"
            ))
        }),
    }
}
