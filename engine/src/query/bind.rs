//! Binding: a parsed segment expression checked against the catalog and turned into a
//! [`Segment`]. Every error carries the span of the part at fault.

use memberdb_query::ast::{self, Expr, LiteralKind, PropExpr, Test};

use crate::column::{Column, compile};
use crate::error::{Error, Result};
use crate::segment::{CmpOp, Did, Frequency, Predicate, PropFilter, Segment, TimeUnit, Window};
use crate::state::State;
use crate::value::{Timestamp, Value};

pub(crate) fn value(lit: &ast::Literal) -> Value {
    match &lit.kind {
        LiteralKind::Str(s) => Value::Str(s.clone()),
        LiteralKind::Int(i) => Value::Int(*i),
        LiteralKind::Float(x) => Value::Float(*x),
        LiteralKind::Bool(b) => Value::Bool(*b),
    }
}

fn predicate(test: &Test) -> Predicate {
    match test {
        Test::Cmp(op, lit) => {
            let op = match op {
                ast::CmpOp::Eq => CmpOp::Eq,
                ast::CmpOp::Ne => CmpOp::Ne,
                ast::CmpOp::Lt => CmpOp::Lt,
                ast::CmpOp::Le => CmpOp::Le,
                ast::CmpOp::Gt => CmpOp::Gt,
                ast::CmpOp::Ge => CmpOp::Ge,
            };
            Predicate::Cmp(op, value(lit))
        }
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

/// Binds a segment expression to the catalog of `state`: every name resolved, every literal
/// checked against its column, each error carrying its span.
pub(crate) fn segment(state: &State, expr: &Expr) -> Result<Segment> {
    convert(Some(state), expr)
}

/// A stored definition's expression as a segment, without the catalog: its names were
/// checked when it was defined, and the state it is read into may not hold them all yet.
pub(crate) fn stored_segment(expr: &Expr) -> Result<Segment> {
    convert(None, expr)
}

/// The one conversion of an expression into a [`Segment`]; with a state, checked against it.
fn convert(state: Option<&State>, expr: &Expr) -> Result<Segment> {
    Ok(match expr {
        Expr::All(_) => Segment::All,
        Expr::Tag(name, span) => {
            if let Some(state) = state
                && state.tags.get(name).is_none()
            {
                return Err(Error::unknown("tag", name, state.tags.names()).at(*span));
            }
            Segment::Tag(name.clone())
        }
        Expr::InGroup(name, _) => {
            if let Some(state) = state {
                state
                    .groups
                    .require(&name.text)
                    .map_err(|e| e.at(name.span))?;
            }
            Segment::InGroup(name.text.clone())
        }
        Expr::Cmp(c) => {
            let predicate = predicate(&c.test);
            if let Some(state) = state {
                let attr = state
                    .attrs
                    .require(&c.name.text)
                    .map_err(|e| e.at(c.name.span))?;
                compile(&predicate, &attr.column, &c.name.text).map_err(|e| e.at(c.span))?;
            }
            Segment::Attr {
                name: c.name.text.clone(),
                predicate,
            }
        }
        Expr::Did(d, _) => {
            let part = match state {
                Some(state) => Some((
                    state,
                    state
                        .events
                        .require(&d.event.text)
                        .map_err(|e| e.at(d.event.span))?,
                )),
                None => None,
            };
            let filter = d
                .filter
                .as_ref()
                .map(|f| prop_filter(part, f))
                .transpose()?;
            let frequency = d.count.map(|(kind, n, _)| match kind {
                ast::CountKind::AtLeast => Frequency::AtLeast(n),
                ast::CountKind::AtMost => Frequency::AtMost(n),
                ast::CountKind::Exactly => Frequency::Exactly(n),
            });
            let window = match &d.window {
                None => None,
                Some(ast::WindowExpr::Last { amount, unit, span }) => {
                    let unit = match unit {
                        ast::Unit::Hours => TimeUnit::Hours,
                        ast::Unit::Days => TimeUnit::Days,
                        ast::Unit::Weeks => TimeUnit::Weeks,
                    };
                    let window = Window::Last {
                        amount: *amount,
                        unit,
                    };
                    crate::segment::resolve_window(&window, 0).map_err(|e| e.at(*span))?;
                    Some(window)
                }
                Some(ast::WindowExpr::Range { since, before, .. }) => {
                    let since = since.as_ref().map(|l| instant(l, "SINCE")).transpose()?;
                    let before = before.as_ref().map(|l| instant(l, "BEFORE")).transpose()?;
                    Some(Window::Range {
                        since: since.map(Value::from),
                        before: before.map(Value::from),
                    })
                }
            };
            Segment::Did(Did {
                event: d.event.text.clone(),
                filter,
                frequency,
                window,
            })
        }
        Expr::And(parts, _) => Segment::And(
            parts
                .iter()
                .map(|p| convert(state, p))
                .collect::<Result<_>>()?,
        ),
        Expr::Or(parts, _) => Segment::Or(
            parts
                .iter()
                .map(|p| convert(state, p))
                .collect::<Result<_>>()?,
        ),
        Expr::Not(inner, _) => Segment::Not(Box::new(convert(state, inner)?)),
    })
}

/// A `WHERE` filter; with the state and the event's partition, checked against them.
fn prop_filter(
    part: Option<(&State, &crate::events::EventPartition)>,
    f: &PropExpr,
) -> Result<PropFilter> {
    Ok(match f {
        PropExpr::Cmp(c) => {
            let name = &c.name.text;
            let predicate = predicate(&c.test);
            if let Some((state, part)) = part {
                let Some(&data_type) = state.events.props.get(name) else {
                    let known = state.events.props.keys().map(String::as_str);
                    return Err(Error::unknown("event property", name, known).at(c.name.span));
                };
                match part.props.get(name) {
                    Some(column) => compile(&predicate, column, name),
                    None => compile(&predicate, &Column::new(data_type), name),
                }
                .map_err(|e| e.at(c.span))?;
            }
            PropFilter::Prop {
                name: name.clone(),
                predicate,
            }
        }
        PropExpr::And(parts, _) => PropFilter::And(
            parts
                .iter()
                .map(|p| prop_filter(part, p))
                .collect::<Result<_>>()?,
        ),
        PropExpr::Or(parts, _) => PropFilter::Or(
            parts
                .iter()
                .map(|p| prop_filter(part, p))
                .collect::<Result<_>>()?,
        ),
        PropExpr::Not(inner, _) => PropFilter::Not(Box::new(prop_filter(part, inner)?)),
    })
}
