//! Segments back to the segment language, through the language's own canonical printer.

use memberdb_query::ast::{self, Expr, LiteralKind, Name, PropExpr, Span, Test};

use crate::computed::{AggFunc, ValueExpr};
use crate::segment::{CmpOp, Frequency, Predicate, PropFilter, Segment, TimeUnit, Window};
use crate::value::Value;

fn name(text: &str) -> Name {
    Name {
        text: text.to_string(),
        span: Span::default(),
    }
}

fn literal(v: &Value) -> ast::Literal {
    let kind = match v {
        Value::Str(s) => LiteralKind::Str(s.clone()),
        Value::Int(i) => LiteralKind::Int(*i),
        Value::Float(x) => LiteralKind::Float(*x),
        Value::Bool(b) => LiteralKind::Bool(*b),
        Value::Date(_) | Value::Timestamp(_) => LiteralKind::Str(v.to_string()),
    };
    ast::Literal {
        kind,
        span: Span::default(),
    }
}

fn cmp_op(op: CmpOp) -> ast::CmpOp {
    match op {
        CmpOp::Eq => ast::CmpOp::Eq,
        CmpOp::Ne => ast::CmpOp::Ne,
        CmpOp::Lt => ast::CmpOp::Lt,
        CmpOp::Le => ast::CmpOp::Le,
        CmpOp::Gt => ast::CmpOp::Gt,
        CmpOp::Ge => ast::CmpOp::Ge,
    }
}

fn comparison(subject: &str, p: &Predicate) -> ast::Comparison {
    let test = match p {
        Predicate::Cmp(op, v) => Test::Cmp(cmp_op(*op), literal(v)),
        Predicate::In(vs) => Test::In(vs.iter().map(literal).collect()),
        Predicate::Between(a, b) => Test::Between(literal(a), literal(b)),
        Predicate::IsNull => Test::Null { negated: false },
        Predicate::IsNotNull => Test::Null { negated: true },
    };
    ast::Comparison {
        name: name(subject),
        test,
        span: Span::default(),
    }
}

fn prop_expr(f: &PropFilter) -> PropExpr {
    match f {
        PropFilter::Prop { name, predicate } => PropExpr::Cmp(comparison(name, predicate)),
        PropFilter::And(v) => PropExpr::And(v.iter().map(prop_expr).collect(), Span::default()),
        PropFilter::Or(v) => PropExpr::Or(v.iter().map(prop_expr).collect(), Span::default()),
        PropFilter::Not(inner) => PropExpr::Not(Box::new(prop_expr(inner)), Span::default()),
    }
}

fn unit(unit: TimeUnit) -> ast::Unit {
    match unit {
        TimeUnit::Hours => ast::Unit::Hours,
        TimeUnit::Days => ast::Unit::Days,
        TimeUnit::Weeks => ast::Unit::Weeks,
    }
}

fn window(w: &Window) -> ast::WindowExpr {
    let none = Span::default();
    match w {
        Window::Last { amount, unit: u } => ast::WindowExpr::Last {
            amount: *amount,
            unit: unit(*u),
            span: none,
        },
        Window::Range { since, before } => ast::WindowExpr::Range {
            since: since.as_ref().map(literal),
            before: before.as_ref().map(literal),
            span: none,
        },
    }
}

/// A value expression as an AST (without spans).
pub(crate) fn value_ast(v: &ValueExpr) -> ast::ValueExpr {
    let none = Span::default();
    match v {
        ValueExpr::Attr(n) => ast::ValueExpr::Name(name(n)),
        ValueExpr::DaysSince(inner) => ast::ValueExpr::DaysSince(Box::new(value_ast(inner)), none),
        ValueExpr::Bucket { value, cuts } => ast::ValueExpr::Bucket {
            value: Box::new(value_ast(value)),
            cuts: cuts.iter().map(literal).collect(),
            span: none,
        },
        ValueExpr::Aggregate(a) => {
            let (func, prop) = match &a.func {
                AggFunc::Count => (ast::AggFunc::Count, None),
                AggFunc::CountDistinctDays => (ast::AggFunc::CountDistinctDays, None),
                AggFunc::CountDistinct(p) => (ast::AggFunc::CountDistinct, Some(p)),
                AggFunc::Sum(p) => (ast::AggFunc::Sum, Some(p)),
                AggFunc::Avg(p) => (ast::AggFunc::Avg, Some(p)),
                AggFunc::Min(p) => (ast::AggFunc::Min, Some(p)),
                AggFunc::Max(p) => (ast::AggFunc::Max, Some(p)),
                AggFunc::First(p) => (ast::AggFunc::First, p.as_ref()),
                AggFunc::Last(p) => (ast::AggFunc::Last, p.as_ref()),
            };
            let window = match (&a.window, a.within_any) {
                (_, Some((amount, u))) => Some(ast::AggWindow::WithinAny {
                    amount,
                    unit: unit(u),
                    span: none,
                }),
                (Some(w), None) => Some(ast::AggWindow::Window(window(w))),
                (None, None) => None,
            };
            ast::ValueExpr::Aggregate(Box::new(ast::Aggregate {
                func,
                prop: prop.map(|p| name(p)),
                event: name(&a.event),
                filter: a.filter.as_ref().map(prop_expr),
                window,
                span: none,
            }))
        }
    }
}

/// The segment as an AST (without spans).
pub(crate) fn to_ast(s: &Segment) -> Expr {
    let none = Span::default();
    match s {
        Segment::All => Expr::All(none),
        Segment::Tag(t) => Expr::Tag(t.clone(), none),
        Segment::InGroup(g) => Expr::InGroup(name(g), none),
        Segment::Identifiers { id_type, op, count } => Expr::Identifiers {
            id_type: name(id_type),
            op: cmp_op(*op),
            count: *count,
            span: none,
        },
        Segment::Attr { name: n, predicate } => Expr::Cmp(comparison(n, predicate)),
        Segment::Value { value, predicate } => {
            let c = comparison("", predicate);
            Expr::Value(ast::ValueComparison {
                value: value_ast(value),
                test: c.test,
                span: none,
            })
        }
        Segment::Did(d) => Expr::Did(
            ast::DidExpr {
                event: name(&d.event),
                filter: d.filter.as_ref().map(prop_expr),
                count: d.frequency.map(|f| match f {
                    Frequency::AtLeast(n) => (ast::CountKind::AtLeast, n, none),
                    Frequency::AtMost(n) => (ast::CountKind::AtMost, n, none),
                    Frequency::Exactly(n) => (ast::CountKind::Exactly, n, none),
                }),
                window: d.window.as_ref().map(window),
                then: None,
            },
            none,
        ),
        Segment::Sequence(seq) => Expr::Did(
            ast::DidExpr {
                event: name(&seq.first.event),
                filter: seq.first.filter.as_ref().map(prop_expr),
                count: None,
                window: seq.first.window.as_ref().map(window),
                then: Some(Box::new(ast::ThenExpr {
                    negated: seq.negated,
                    event: name(&seq.then),
                    filter: seq.then_filter.as_ref().map(prop_expr),
                    within: seq.within.map(|(n, u)| (n, unit(u), none)),
                    matching: seq.matching.as_deref().map(name),
                    span: none,
                })),
            },
            none,
        ),
        Segment::And(v) => Expr::And(v.iter().map(to_ast).collect(), none),
        Segment::Or(v) => Expr::Or(v.iter().map(to_ast).collect(), none),
        Segment::Not(inner) => Expr::Not(Box::new(to_ast(inner)), none),
    }
}

impl std::fmt::Display for Segment {
    /// The segment in the segment language (canonical form).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", to_ast(self))
    }
}

/// A value expression in the segment language.
pub(crate) fn value_text(value: &ValueExpr) -> String {
    value_ast(value).to_string()
}

/// A trait's definition as an AST (without spans).
pub(crate) fn trait_ast(def: &crate::traits::TraitDef) -> ast::TraitBody {
    use crate::traits::TraitDef;
    let none = Span::default();
    match def {
        TraitDef::Value(v) => ast::TraitBody::Value(value_ast(v)),
        TraitDef::Quantile {
            buckets,
            value,
            descending,
            over,
        } => ast::TraitBody::Quantile {
            buckets: u64::from(*buckets),
            value: value_ast(value),
            descending: *descending,
            over: Box::new(to_ast(over)),
            span: none,
        },
        TraitDef::Case { whens, otherwise } => ast::TraitBody::Case {
            whens: whens.iter().map(|(s, v)| (to_ast(s), literal(v))).collect(),
            otherwise: otherwise.as_ref().map(literal),
            span: none,
        },
    }
}

impl std::fmt::Display for crate::traits::TraitDef {
    /// The definition in the segment language (canonical form).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", trait_ast(self))
    }
}

/// A funnel's `BY` as written in the language (`qr_code FIRST TOUCH`, `city`).
pub(crate) fn funnel_by_text(by: &crate::sequence::FunnelBy) -> String {
    use crate::sequence::FunnelBy;
    match by {
        FunnelBy::Value(v) => value_text(v),
        FunnelBy::FirstTouch(p) => format!("{} FIRST TOUCH", name(p)),
        FunnelBy::LastTouch(p) => format!("{} LAST TOUCH", name(p)),
    }
}

/// A funnel statement's `BY` as its canonical text.
pub(crate) fn funnel_by_ast_text(by: &ast::FunnelBy) -> String {
    match by {
        ast::FunnelBy::Value(v) => v.to_string(),
        ast::FunnelBy::Touch { prop, first, .. } => {
            format!("{prop} {} TOUCH", if *first { "FIRST" } else { "LAST" })
        }
    }
}
