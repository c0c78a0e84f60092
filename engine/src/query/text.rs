//! Segments back to the segment language, through the language's own canonical printer.

use memberdb_query::ast::{self, Expr, LiteralKind, Name, PropExpr, Span, Test};

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

fn comparison(subject: &str, p: &Predicate) -> ast::Comparison {
    let test = match p {
        Predicate::Cmp(op, v) => {
            let op = match op {
                CmpOp::Eq => ast::CmpOp::Eq,
                CmpOp::Ne => ast::CmpOp::Ne,
                CmpOp::Lt => ast::CmpOp::Lt,
                CmpOp::Le => ast::CmpOp::Le,
                CmpOp::Gt => ast::CmpOp::Gt,
                CmpOp::Ge => ast::CmpOp::Ge,
            };
            Test::Cmp(op, literal(v))
        }
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

fn prop(f: &PropFilter) -> PropExpr {
    match f {
        PropFilter::Prop { name, predicate } => PropExpr::Cmp(comparison(name, predicate)),
        PropFilter::And(v) => PropExpr::And(v.iter().map(prop).collect(), Span::default()),
        PropFilter::Or(v) => PropExpr::Or(v.iter().map(prop).collect(), Span::default()),
        PropFilter::Not(inner) => PropExpr::Not(Box::new(prop(inner)), Span::default()),
    }
}

/// The segment as an AST (without spans).
pub(crate) fn to_ast(s: &Segment) -> Expr {
    let none = Span::default();
    match s {
        Segment::All => Expr::All(none),
        Segment::Tag(t) => Expr::Tag(t.clone(), none),
        Segment::InGroup(g) => Expr::InGroup(name(g), none),
        Segment::Attr { name: n, predicate } => Expr::Cmp(comparison(n, predicate)),
        Segment::Did(d) => Expr::Did(
            ast::DidExpr {
                event: name(&d.event),
                filter: d.filter.as_ref().map(prop),
                count: d.frequency.map(|f| match f {
                    Frequency::AtLeast(n) => (ast::CountKind::AtLeast, n, none),
                    Frequency::AtMost(n) => (ast::CountKind::AtMost, n, none),
                    Frequency::Exactly(n) => (ast::CountKind::Exactly, n, none),
                }),
                window: d.window.as_ref().map(|w| match w {
                    Window::Last { amount, unit } => ast::WindowExpr::Last {
                        amount: *amount,
                        unit: match unit {
                            TimeUnit::Hours => ast::Unit::Hours,
                            TimeUnit::Days => ast::Unit::Days,
                            TimeUnit::Weeks => ast::Unit::Weeks,
                        },
                        span: none,
                    },
                    Window::Range { since, before } => ast::WindowExpr::Range {
                        since: since.as_ref().map(literal),
                        before: before.as_ref().map(literal),
                        span: none,
                    },
                }),
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
