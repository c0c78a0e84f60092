//! A statement's parsed segment expression turned into a [`Segment`] with the spans of its
//! nodes; binding it to the catalog (names, literal types, windows) is `crate::plan::bind`'s.

use memberdb_query::ast::{self, Expr, LiteralKind, PropExpr, Span, Test};

use crate::computed::{AggFunc, Aggregate, ValueExpr};
use crate::error::{Error, Result};
use crate::plan::NodeSpans;
use crate::segment::{CmpOp, Did, Frequency, Predicate, PropFilter, Segment, TimeUnit, Window};
use crate::value::{Timestamp, Value};

pub(crate) fn value(lit: &ast::Literal) -> Value {
    match &lit.kind {
        LiteralKind::Str(s) => Value::Str(s.clone()),
        LiteralKind::Int(i) => Value::Int(*i),
        LiteralKind::Float(x) => Value::Float(*x),
        LiteralKind::Bool(b) => Value::Bool(*b),
    }
}

fn cmp_op(op: ast::CmpOp) -> CmpOp {
    match op {
        ast::CmpOp::Eq => CmpOp::Eq,
        ast::CmpOp::Ne => CmpOp::Ne,
        ast::CmpOp::Lt => CmpOp::Lt,
        ast::CmpOp::Le => CmpOp::Le,
        ast::CmpOp::Gt => CmpOp::Gt,
        ast::CmpOp::Ge => CmpOp::Ge,
    }
}

fn predicate(test: &Test) -> Predicate {
    match test {
        Test::Cmp(op, lit) => Predicate::Cmp(cmp_op(*op), value(lit)),
        Test::In(lits) => Predicate::In(lits.iter().map(value).collect()),
        Test::Between(lo, hi) => Predicate::Between(value(lo), value(hi)),
        Test::Null { negated: false } => Predicate::IsNull,
        Test::Null { negated: true } => Predicate::IsNotNull,
    }
}

/// A time literal (`AS OF`, `SINCE`, `BEFORE`), checked.
pub(crate) fn instant(lit: &ast::Literal, clause: &str) -> Result<Timestamp> {
    let text = match &lit.kind {
        LiteralKind::Str(s) => s.as_str(),
        _ => "",
    };
    Timestamp::parse(text).ok_or_else(|| {
        Error::InvalidSegment(format!(
            "{clause} needs a date or timestamp such as '2026-11-01' or '2026-11-01T08:00:00Z'"
        ))
        .at(lit.span)
    })
}

/// A statement's segment expression as a [`Segment`], with the spans of its nodes in the
/// order binding visits them ([`NodeSpans`]), so that binding it to the catalog
/// (`crate::plan::bind`) points each error at its part of the text.
pub(crate) fn segment(expr: &Expr) -> Result<(Segment, Vec<NodeSpans>)> {
    let mut spans = Vec::new();
    let segment = convert(expr, &mut spans)?;
    Ok((segment, spans))
}

/// A stored definition's expression as a segment.
pub(crate) fn stored_segment(expr: &Expr) -> Result<Segment> {
    convert(expr, &mut Vec::new())
}

fn spans(whole: Span, name: Span) -> NodeSpans {
    NodeSpans {
        whole,
        name,
        window: whole,
    }
}

/// The conversion of an expression into a [`Segment`], pushing each node's spans in
/// pre-order (a `DID`'s filter after the `DID`). Only what needs no catalog is checked here.
fn convert(expr: &Expr, out: &mut Vec<NodeSpans>) -> Result<Segment> {
    Ok(match expr {
        Expr::All(span) => {
            out.push(spans(*span, *span));
            Segment::All
        }
        Expr::Tag(name, span) => {
            out.push(spans(*span, *span));
            Segment::Tag(name.clone())
        }
        Expr::InGroup(name, span) => {
            out.push(spans(*span, name.span));
            Segment::InGroup(name.text.clone())
        }
        Expr::Cmp(c) => {
            out.push(spans(c.span, c.name.span));
            Segment::Attr {
                name: c.name.text.clone(),
                predicate: predicate(&c.test),
            }
        }
        Expr::Identifiers {
            id_type,
            op,
            count,
            span,
        } => {
            out.push(spans(*span, id_type.span));
            Segment::Identifiers {
                id_type: id_type.text.clone(),
                op: cmp_op(*op),
                count: *count,
            }
        }
        Expr::Value(v) => {
            out.push(spans(v.span, v.span));
            Segment::Value {
                value: value_expr(&v.value, out)?,
                predicate: predicate(&v.test),
            }
        }
        Expr::Did(d, span) => {
            let mut node = spans(*span, d.event.span);
            if let Some(ast::WindowExpr::Last { span, .. } | ast::WindowExpr::Range { span, .. }) =
                &d.window
            {
                node.window = *span;
            }
            out.push(node);
            if let Some(then) = &d.then {
                return sequence(d, then, out);
            }
            let filter = d.filter.as_ref().map(|f| prop_filter(f, out)).transpose()?;
            let frequency = d.count.map(|(kind, n, _)| match kind {
                ast::CountKind::AtLeast => Frequency::AtLeast(n),
                ast::CountKind::AtMost => Frequency::AtMost(n),
                ast::CountKind::Exactly => Frequency::Exactly(n),
            });
            let window = d.window.as_ref().map(window).transpose()?;
            Segment::Did(Did {
                event: d.event.text.clone(),
                filter,
                frequency,
                window,
            })
        }
        Expr::And(parts, span) => {
            out.push(spans(*span, *span));
            Segment::And(each(parts, out, convert)?)
        }
        Expr::Or(parts, span) => {
            out.push(spans(*span, *span));
            Segment::Or(each(parts, out, convert)?)
        }
        Expr::Not(inner, span) => {
            out.push(spans(*span, *span));
            Segment::Not(Box::new(convert(inner, out)?))
        }
    })
}

/// `DID a ... THEN [NOT] b ...` (the DID's node already pushed): the second part's spans
/// (the THEN part, b's name, the MATCHING property), then the first part's filter nodes,
/// then the second's, as the binder takes them.
fn sequence(d: &ast::DidExpr, then: &ast::ThenExpr, out: &mut Vec<NodeSpans>) -> Result<Segment> {
    if let Some((_, _, span)) = d.count {
        return Err(Error::InvalidSegment(
            "the first part of DID ... THEN takes no count clause (AT LEAST, AT MOST, \
             EXACTLY): a sequence asks for one event followed by another; count the first \
             events in a separate DID"
                .into(),
        )
        .at(span));
    }
    if let Some((amount, u, span)) = then.within {
        crate::segment::within(amount, unit(u), crate::segment::Within::Event)
            .map_err(|e| e.at(span))?;
    }
    out.push(NodeSpans {
        whole: then.span,
        name: then.event.span,
        window: then.matching.as_ref().map_or(then.span, |m| m.span),
    });
    let filter = d.filter.as_ref().map(|f| prop_filter(f, out)).transpose()?;
    let then_filter = then
        .filter
        .as_ref()
        .map(|f| prop_filter(f, out))
        .transpose()?;
    Ok(Segment::Sequence(Box::new(crate::sequence::Sequence {
        first: Did {
            event: d.event.text.clone(),
            filter,
            frequency: None,
            window: d.window.as_ref().map(window).transpose()?,
        },
        negated: then.negated,
        then: then.event.text.clone(),
        then_filter,
        within: then.within.map(|(n, u, _)| (n, unit(u))),
        matching: then.matching.as_ref().map(|m| m.text.clone()),
    })))
}

/// Where a funnel statement's parts are, for its errors.
#[derive(Clone, Debug, Default)]
pub(crate) struct FunnelSpans {
    /// The whole funnel.
    pub(crate) whole: Span,
    /// The entry segment's nodes (`Funnel::entry_segment`): the `AND` with the `FOR`
    /// segment if any, the first step as a `DID` (its window the range), its filter's
    /// nodes, the `FOR` segment's nodes.
    pub(crate) entry: Vec<NodeSpans>,
    /// Per step: its node (the step, its event's name), then its filter's nodes; last,
    /// the `BY` clause (the funnel when there is none).
    pub(crate) steps: Vec<NodeSpans>,
    /// `AT STEP k` of `FIND FUNNEL`.
    pub(crate) step: Span,
}

/// A funnel statement's funnel and the spans of its parts. The step counts and `WITHIN 0`
/// are checked here; names when it is bound.
pub(crate) fn funnel(f: &ast::FunnelExpr) -> Result<(crate::sequence::Funnel, FunnelSpans)> {
    use crate::sequence::{Funnel, FunnelBy, FunnelStep, MAX_FUNNEL_STEPS};
    let n = f.steps.len();
    if !(2..=MAX_FUNNEL_STEPS).contains(&n) {
        return Err(Error::InvalidSegment(format!(
            "a funnel has 2 to {MAX_FUNNEL_STEPS} steps, not {n}: name each step's event, \
             separated by commas"
        ))
        .at(f.span));
    }
    let (amount, unit_of, within_span) = f.within;
    crate::segment::within(amount, unit(unit_of), crate::segment::Within::Step)
        .map_err(|e| e.at(within_span))?;
    let mut spans = FunnelSpans {
        whole: f.span,
        ..FunnelSpans::default()
    };
    let mut steps = Vec::with_capacity(n);
    let mut first_filter_spans = Vec::new();
    for (k, step) in f.steps.iter().enumerate() {
        spans.steps.push(NodeSpans {
            whole: step.span,
            name: step.event.span,
            window: step.span,
        });
        let start = spans.steps.len();
        let filter = step
            .filter
            .as_ref()
            .map(|p| prop_filter(p, &mut spans.steps))
            .transpose()?;
        if k == 0 {
            first_filter_spans = spans.steps[start..].to_vec();
        }
        steps.push(FunnelStep {
            event: step.event.text.clone(),
            filter,
        });
    }
    let by_span = match &f.by {
        Some(ast::FunnelBy::Value(v)) => v.span(),
        Some(ast::FunnelBy::Touch { span, .. }) => *span,
        None => f.span,
    };
    spans.steps.push(spans_of(by_span));
    let range = f.range.as_ref().map(window).transpose()?;
    let range_span = match &f.range {
        Some(ast::WindowExpr::Last { span, .. } | ast::WindowExpr::Range { span, .. }) => *span,
        None => f.steps[0].span,
    };
    // The entry segment: [AND], the first step's DID, its filter, the FOR segment.
    let members = match &f.segment {
        Some(e) => {
            spans.entry.push(spans_of(f.span));
            Some(e)
        }
        None => None,
    };
    spans.entry.push(NodeSpans {
        whole: f.steps[0].span,
        name: f.steps[0].event.span,
        window: range_span,
    });
    spans.entry.extend(first_filter_spans);
    let members = members.map(|e| convert(e, &mut spans.entry)).transpose()?;
    let by = match &f.by {
        None => None,
        Some(ast::FunnelBy::Value(v)) => Some(FunnelBy::Value(value_expr(v, &mut Vec::new())?)),
        Some(ast::FunnelBy::Touch { prop, first, .. }) => Some(if *first {
            FunnelBy::FirstTouch(prop.text.clone())
        } else {
            FunnelBy::LastTouch(prop.text.clone())
        }),
    };
    Ok((
        Funnel {
            steps,
            within: (amount, unit(unit_of)),
            range,
            members,
            by,
        },
        spans,
    ))
}

fn spans_of(whole: Span) -> NodeSpans {
    spans(whole, whole)
}

fn unit(unit: ast::Unit) -> TimeUnit {
    match unit {
        ast::Unit::Hours => TimeUnit::Hours,
        ast::Unit::Days => TimeUnit::Days,
        ast::Unit::Weeks => TimeUnit::Weeks,
    }
}

/// A window clause, its times checked.
fn window(w: &ast::WindowExpr) -> Result<Window> {
    Ok(match w {
        ast::WindowExpr::Last {
            amount, unit: u, ..
        } => Window::Last {
            amount: *amount,
            unit: unit(*u),
        },
        ast::WindowExpr::Range { since, before, .. } => {
            let since = since.as_ref().map(|l| instant(l, "SINCE")).transpose()?;
            let before = before.as_ref().map(|l| instant(l, "BEFORE")).transpose()?;
            Window::Range {
                since: since.map(Value::from),
                before: before.map(Value::from),
            }
        }
    })
}

/// A column of `BREAKDOWN ... BY` with several columns or a computed one, as a value: an
/// attribute, or a value expression (a property OF an event is broken down alone).
pub(crate) fn by_value(column: &ast::ByColumn) -> Result<ValueExpr> {
    match column {
        ast::ByColumn::Name { name, of: None } => Ok(ValueExpr::Attr(name.text.clone())),
        ast::ByColumn::Name {
            name,
            of: Some(event),
        } => Err(Error::InvalidSegment(format!(
            "BREAKDOWN by {} OF {} counts a member under each value its events have, so it \
             is broken down alone; beside other columns, write a value such as \
             LAST({} OF {})",
            name.text, event.text, name.text, event.text
        ))
        .at(Span::new(name.span.start, event.span.end))),
        ast::ByColumn::Value(v) => value_expr(v, &mut Vec::new()),
    }
}

/// A value expression; the spans of its aggregate's `WHERE` filter pushed like
/// [`convert`]'s.
fn value_expr(v: &ast::ValueExpr, out: &mut Vec<NodeSpans>) -> Result<ValueExpr> {
    Ok(match v {
        ast::ValueExpr::Name(n) => ValueExpr::Attr(n.text.clone()),
        ast::ValueExpr::DaysSince(inner, _) => {
            ValueExpr::DaysSince(Box::new(value_expr(inner, out)?))
        }
        ast::ValueExpr::Bucket { value, cuts, .. } => ValueExpr::Bucket {
            value: Box::new(value_expr(value, out)?),
            cuts: cuts.iter().map(self::value).collect(),
        },
        ast::ValueExpr::Aggregate(a) => {
            let prop = || a.prop.as_ref().map(|p| p.text.clone());
            let needs = |what: &str| -> Result<String> {
                prop().ok_or_else(|| {
                    Error::InvalidSegment(format!("{what} needs a property: {what}(p OF event)"))
                        .at(a.span)
                })
            };
            let func = match a.func {
                ast::AggFunc::Count => AggFunc::Count,
                ast::AggFunc::CountDistinctDays => AggFunc::CountDistinctDays,
                ast::AggFunc::CountDistinct => AggFunc::CountDistinct(needs("COUNT(DISTINCT")?),
                ast::AggFunc::Sum => AggFunc::Sum(needs("SUM")?),
                ast::AggFunc::Avg => AggFunc::Avg(needs("AVG")?),
                ast::AggFunc::Min => AggFunc::Min(needs("MIN")?),
                ast::AggFunc::Max => AggFunc::Max(needs("MAX")?),
                ast::AggFunc::First => AggFunc::First(prop()),
                ast::AggFunc::Last => AggFunc::Last(prop()),
            };
            let filter = a.filter.as_ref().map(|f| prop_filter(f, out)).transpose()?;
            let (window, within_any) = match &a.window {
                None => (None, None),
                Some(ast::AggWindow::Window(w)) => (Some(window(w)?), None),
                Some(ast::AggWindow::WithinAny {
                    amount, unit: u, ..
                }) => (None, Some((*amount, unit(*u)))),
            };
            ValueExpr::Aggregate(Box::new(Aggregate {
                func,
                event: a.event.text.clone(),
                filter,
                window,
                within_any,
            }))
        }
    })
}

/// `convert` (or `prop_filter`) of every part of an `AND` / `OR`, in order.
fn each<E, T>(
    parts: &[E],
    out: &mut Vec<NodeSpans>,
    one: fn(&E, &mut Vec<NodeSpans>) -> Result<T>,
) -> Result<Vec<T>> {
    parts.iter().map(|p| one(p, out)).collect()
}

/// A `WHERE` filter, its nodes' spans pushed like [`convert`]'s.
fn prop_filter(f: &PropExpr, out: &mut Vec<NodeSpans>) -> Result<PropFilter> {
    Ok(match f {
        PropExpr::Cmp(c) => {
            out.push(spans(c.span, c.name.span));
            PropFilter::Prop {
                name: c.name.text.clone(),
                predicate: predicate(&c.test),
            }
        }
        PropExpr::And(parts, span) => {
            out.push(spans(*span, *span));
            PropFilter::And(each(parts, out, prop_filter)?)
        }
        PropExpr::Or(parts, span) => {
            out.push(spans(*span, *span));
            PropFilter::Or(each(parts, out, prop_filter)?)
        }
        PropExpr::Not(inner, span) => {
            out.push(spans(*span, *span));
            PropFilter::Not(Box::new(prop_filter(inner, out)?))
        }
    })
}

/// A trait's definition from its text, without the catalog; the segments of `OVER` and the
/// `WHEN`s are checked against the catalog when the trait is defined
/// ([`trait_parts`] gives them with their spans).
pub(crate) fn trait_def(body: &ast::TraitBody) -> Result<crate::traits::TraitDef> {
    use crate::traits::{MAX_QUANTILES, TraitDef};
    Ok(match body {
        ast::TraitBody::Value(v) => TraitDef::Value(value_expr(v, &mut Vec::new())?),
        ast::TraitBody::Quantile {
            buckets,
            value,
            descending,
            over,
            span,
        } => TraitDef::Quantile {
            buckets: u32::try_from(*buckets)
                .ok()
                .filter(|k| (1..=MAX_QUANTILES).contains(k))
                .ok_or_else(|| {
                    Error::InvalidSegment(format!(
                        "QUANTILE({buckets}, ...) gives scores 1 to k: k goes from 1 to \
                         {MAX_QUANTILES}"
                    ))
                    .at(*span)
                })?,
            value: value_expr(value, &mut Vec::new())?,
            descending: *descending,
            over: stored_segment(over)?,
        },
        ast::TraitBody::Case {
            whens, otherwise, ..
        } => TraitDef::Case {
            whens: whens
                .iter()
                .map(|(when, then)| Ok((stored_segment(when)?, self::value(then))))
                .collect::<Result<_>>()?,
            otherwise: otherwise.as_ref().map(self::value),
        },
    })
}

/// The segments of a trait's text (`OVER`, each `WHEN`) with their nodes' spans, so a
/// definition's errors point at their part of the statement.
pub(crate) fn trait_parts(body: &ast::TraitBody) -> Result<Vec<(Segment, Vec<NodeSpans>)>> {
    match body {
        ast::TraitBody::Value(_) => Ok(Vec::new()),
        ast::TraitBody::Quantile { over, .. } => Ok(vec![segment(over)?]),
        ast::TraitBody::Case { whens, .. } => whens.iter().map(|(w, _)| segment(w)).collect(),
    }
}
