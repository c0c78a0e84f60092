//! The canonical printer: every AST prints as text that parses back to the same tree.
//! Keywords are upper case, names are bare unless they need quotes, nested AND / OR / NOT are
//! parenthesised.

use std::fmt::{self, Display, Formatter};

use crate::ast::*;

fn is_keyword(word: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "count",
        "find",
        "show",
        "limit",
        "offset",
        "breakdown",
        "by",
        "top",
        "define",
        "group",
        "groups",
        "as",
        "drop",
        "explain",
        "attributes",
        "tags",
        "events",
        "of",
        "or",
        "and",
        "not",
        "all",
        "tag",
        "in",
        "did",
        "where",
        "exactly",
        "at",
        "least",
        "most",
        "times",
        "last",
        "since",
        "before",
        "hours",
        "hour",
        "days",
        "day",
        "weeks",
        "week",
        "between",
        "is",
        "null",
        "true",
        "false",
        // Keywords only where the grammar expects them (names elsewhere), quoted in print
        // all the same (DESIGN section 3).
        "loads",
        "alter",
        "attribute",
        "type",
        "export",
        "to",
        "event",
    ];
    KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
}

/// Writes a name bare when the grammar reads it back as the same bare name, quoted otherwise.
pub fn write_name(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    let mut chars = name.chars();
    let bare = match chars.next() {
        Some(c) => {
            (unicode_ident::is_xid_start(c) || c == '_')
                && chars.all(unicode_ident::is_xid_continue)
                && !is_keyword(name)
        }
        None => false,
    };
    if bare {
        f.write_str(name)
    } else {
        write!(f, "\"{}\"", name.replace('"', "\"\""))
    }
}

fn write_show(f: &mut Formatter<'_>, show: &[Name], all: bool) -> fmt::Result {
    if all {
        return f.write_str(" SHOW *");
    }
    for (i, n) in show.iter().enumerate() {
        f.write_str(if i == 0 { " SHOW " } else { ", " })?;
        write!(f, "{n}")?;
    }
    Ok(())
}

fn write_string(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "'{}'", s.replace('\'', "''"))
}

impl Display for Name {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_name(f, &self.text)
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            LiteralKind::Str(s) => write_string(f, s),
            LiteralKind::Int(i) => write!(f, "{i}"),
            // Display never uses an exponent and prints the shortest text that reads back to
            // the same float; a whole number gets ".0" so it reads back as a float.
            LiteralKind::Float(x) if x.fract() == 0.0 && x.is_finite() => write!(f, "{x:.1}"),
            LiteralKind::Float(x) => write!(f, "{x}"),
            LiteralKind::Bool(true) => f.write_str("TRUE"),
            LiteralKind::Bool(false) => f.write_str("FALSE"),
        }
    }
}

impl Display for CmpOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

impl Display for Test {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Test::Cmp(op, v) => write!(f, "{op} {v}"),
            Test::In(vs) => {
                f.write_str("IN (")?;
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Test::Between(lo, hi) => write!(f, "BETWEEN {lo} AND {hi}"),
            Test::Null { negated: false } => f.write_str("IS NULL"),
            Test::Null { negated: true } => f.write_str("IS NOT NULL"),
        }
    }
}

impl Display for Comparison {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.test)
    }
}

impl Display for ValueComparison {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.test)
    }
}

impl Display for Unit {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Hours => "HOURS",
            Unit::Days => "DAYS",
            Unit::Weeks => "WEEKS",
        })
    }
}

impl Display for WindowExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            WindowExpr::Last { amount, unit, .. } => write!(f, "IN LAST {amount} {unit}"),
            WindowExpr::Range { since, before, .. } => {
                if let Some(s) = since {
                    write!(f, "SINCE {s}")?;
                }
                if let Some(b) = before {
                    let gap = if since.is_some() { " " } else { "" };
                    write!(f, "{gap}BEFORE {b}")?;
                }
                Ok(())
            }
        }
    }
}

/// ` WHERE filter`, parenthesised unless it is one (negated) comparison.
fn write_where(f: &mut Formatter<'_>, filter: &Option<PropExpr>) -> fmt::Result {
    match filter {
        Some(c @ PropExpr::Cmp(_)) => write!(f, " WHERE {c}"),
        Some(n @ PropExpr::Not(inner, _)) if matches!(inner.as_ref(), PropExpr::Cmp(_)) => {
            write!(f, " WHERE {n}")
        }
        Some(other) => write!(f, " WHERE ({other})"),
        None => Ok(()),
    }
}

impl Display for Aggregate {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let func = match self.func {
            AggFunc::Count | AggFunc::CountDistinct | AggFunc::CountDistinctDays => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Avg => "AVG",
            AggFunc::Min => "MIN",
            AggFunc::Max => "MAX",
            AggFunc::First => "FIRST",
            AggFunc::Last => "LAST",
        };
        write!(f, "{func}(")?;
        match (self.func, &self.prop) {
            (AggFunc::CountDistinctDays, _) => f.write_str("DISTINCT DAYS OF ")?,
            (AggFunc::CountDistinct, Some(p)) => write!(f, "DISTINCT {p} OF ")?,
            (_, Some(p)) => write!(f, "{p} OF ")?,
            (_, None) => {}
        }
        write!(f, "{}", self.event)?;
        write_where(f, &self.filter)?;
        match &self.window {
            Some(AggWindow::Window(w)) => write!(f, " {w}")?,
            Some(AggWindow::WithinAny { amount, unit, .. }) => {
                write!(f, " WITHIN ANY {amount} {unit}")?
            }
            None => {}
        }
        f.write_str(")")
    }
}

impl Display for ValueExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ValueExpr::Name(n) => write!(f, "{n}"),
            ValueExpr::Aggregate(a) => write!(f, "{a}"),
            ValueExpr::DaysSince(inner, _) => write!(f, "DAYS SINCE {inner}"),
            ValueExpr::Bucket { value, cuts, .. } => {
                write!(f, "BUCKET({value}")?;
                for c in cuts {
                    write!(f, ", {c}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl Display for ByColumn {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ByColumn::Name { name, of: None } => write!(f, "{name}"),
            ByColumn::Name { name, of: Some(e) } => write!(f, "{name} OF {e}"),
            ByColumn::Value(v) => write!(f, "{v}"),
        }
    }
}

impl Display for PropExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let joined = |f: &mut Formatter<'_>, parts: &[PropExpr], sep: &str| {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                match p {
                    PropExpr::Cmp(_) | PropExpr::Not(..) => write!(f, "{p}")?,
                    _ => write!(f, "({p})")?,
                }
            }
            Ok(())
        };
        match self {
            PropExpr::Cmp(c) => write!(f, "{c}"),
            PropExpr::And(parts, _) => joined(f, parts, " AND "),
            PropExpr::Or(parts, _) => joined(f, parts, " OR "),
            PropExpr::Not(inner, _) => match inner.as_ref() {
                PropExpr::Cmp(_) | PropExpr::Not(..) => write!(f, "NOT {inner}"),
                _ => write!(f, "NOT ({inner})"),
            },
        }
    }
}

impl Display for DidExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "DID {}", self.event)?;
        write_where(f, &self.filter)?;
        if let Some((kind, n, _)) = self.count {
            let word = match kind {
                CountKind::AtLeast => "AT LEAST",
                CountKind::AtMost => "AT MOST",
                CountKind::Exactly => "EXACTLY",
            };
            write!(f, " {word} {n} TIMES")?;
        }
        if let Some(w) = &self.window {
            write!(f, " {w}")?;
        }
        if let Some(then) = &self.then {
            write!(f, " {then}")?;
        }
        Ok(())
    }
}

impl Display for ThenExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let not = if self.negated { "NOT " } else { "" };
        write!(f, "THEN {not}{}", self.event)?;
        write_where(f, &self.filter)?;
        if let Some((n, unit, _)) = self.within {
            write!(f, " WITHIN {n} {unit}")?;
        }
        if let Some(p) = &self.matching {
            write!(f, " MATCHING {p}")?;
        }
        Ok(())
    }
}

impl Display for FunnelExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", step.event)?;
            write_where(f, &step.filter)?;
        }
        let (n, unit, _) = self.within;
        write!(f, " WITHIN {n} {unit}")?;
        if let Some(w) = &self.range {
            write!(f, " {w}")?;
        }
        if let Some(s) = &self.segment {
            write!(f, " FOR {s}")?;
        }
        match &self.by {
            Some(FunnelBy::Value(v)) => write!(f, " BY {v}"),
            Some(FunnelBy::Touch { prop, first, .. }) => {
                let which = if *first { "FIRST" } else { "LAST" };
                write!(f, " BY {prop} {which} TOUCH")
            }
            None => Ok(()),
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let joined = |f: &mut Formatter<'_>, parts: &[Expr], sep: &str| {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                match p {
                    Expr::And(..) | Expr::Or(..) => write!(f, "({p})")?,
                    _ => write!(f, "{p}")?,
                }
            }
            Ok(())
        };
        match self {
            Expr::All(_) => f.write_str("ALL"),
            Expr::Tag(t, _) => {
                f.write_str("TAG ")?;
                write_string(f, t)
            }
            Expr::InGroup(n, _) => write!(f, "IN GROUP {n}"),
            Expr::Cmp(c) => write!(f, "{c}"),
            Expr::Value(v) => write!(f, "{v}"),
            Expr::Did(d, _) => write!(f, "{d}"),
            Expr::Identifiers {
                id_type,
                op: CmpOp::Ge,
                count: 1,
                ..
            } => write!(f, "HAS IDENTIFIER {id_type}"),
            Expr::Identifiers {
                id_type, op, count, ..
            } => write!(f, "COUNT(IDENTIFIER {id_type}) {op} {count}"),
            Expr::And(parts, _) => joined(f, parts, " AND "),
            Expr::Or(parts, _) => joined(f, parts, " OR "),
            Expr::Not(inner, _) => match inner.as_ref() {
                Expr::And(..) | Expr::Or(..) => write!(f, "NOT ({inner})"),
                _ => write!(f, "NOT {inner}"),
            },
        }
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let overlap = match &self.overlap {
            Some(pool) => format!(" OVERLAP {pool}"),
            None => String::new(),
        };
        match &self.kind {
            StatementKind::Count(e) => write!(f, "COUNT {e}{overlap}")?,
            StatementKind::Find {
                segment,
                show,
                show_all,
                limit,
                offset,
            } => {
                write!(f, "FIND {segment}{overlap}")?;
                write_show(f, show, *show_all)?;
                if let Some(l) = limit {
                    write!(f, " LIMIT {l}")?;
                }
                if let Some(o) = offset {
                    write!(f, " OFFSET {o}")?;
                }
            }
            StatementKind::Breakdown { segment, by, top } => {
                write!(f, "BREAKDOWN {segment}{overlap} BY ")?;
                for (i, column) in by.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{column}")?;
                }
                if let Some(t) = top {
                    write!(f, " TOP {t}")?;
                }
            }
            StatementKind::DefineGroup {
                name,
                segment,
                keep_days,
            } => {
                write!(f, "DEFINE GROUP {name} AS {segment}")?;
                if let Some(days) = keep_days {
                    write!(f, " KEEP CHANGES {days} DAYS")?;
                }
            }
            StatementKind::DropGroup(name) => write!(f, "DROP GROUP {name}")?,
            StatementKind::DefineIdentifier {
                name,
                limit,
                priority,
                block,
            } => {
                write!(f, "DEFINE IDENTIFIER {name}")?;
                if let Some(n) = limit {
                    write!(f, " LIMIT {n}")?;
                }
                if let Some(p) = priority {
                    write!(f, " PRIORITY {p}")?;
                }
                for (i, value) in block.iter().enumerate() {
                    f.write_str(if i == 0 { " BLOCK " } else { ", " })?;
                    write!(f, "{value}")?;
                }
            }
            StatementKind::DefineMerge { attribute, rule } => {
                write!(f, "DEFINE ATTRIBUTE {attribute} MERGE {}", rule.as_str())?
            }
            StatementKind::DefineTrait { name, body } => {
                write!(f, "DEFINE TRAIT {name} AS {body}")?
            }
            StatementKind::DropTrait(name) => write!(f, "DROP TRAIT {name}")?,
            StatementKind::AlterAttribute { name, type_name } => {
                write!(f, "ALTER ATTRIBUTE {name} TYPE {type_name}")?
            }
            StatementKind::DropAttribute(name) => write!(f, "DROP ATTRIBUTE {name}")?,
            StatementKind::Export {
                segment,
                show,
                show_all,
                path,
            } => {
                write!(f, "EXPORT {segment}{overlap}")?;
                write_show(f, show, *show_all)?;
                write!(f, " TO {path}")?;
            }
            StatementKind::Explain(e) => write!(f, "EXPLAIN {e}")?,
            StatementKind::ExplainSql(inner) => {
                let inner = Statement {
                    kind: (**inner).clone(),
                    as_of: None,
                    overlap: self.overlap.clone(),
                    span: self.span,
                };
                write!(f, "EXPLAIN SQL {inner}")?
            }
            StatementKind::ExplainMember { member, group } => {
                write!(f, "EXPLAIN MEMBER {member} IN GROUP {group}")?
            }
            StatementKind::ShowGroup(name) => write!(f, "SHOW GROUP {name}")?,
            StatementKind::Show(what) => f.write_str(match what {
                ShowWhat::Attributes => "SHOW ATTRIBUTES",
                ShowWhat::Tags => "SHOW TAGS",
                ShowWhat::Events => "SHOW EVENTS",
                ShowWhat::Groups => "SHOW GROUPS",
                ShowWhat::Loads => "SHOW LOADS",
                ShowWhat::Traits => "SHOW TRAITS",
                ShowWhat::Identifiers => "SHOW IDENTIFIERS",
            })?,
            StatementKind::ShowEvent(name) => write!(f, "SHOW EVENT {name}")?,
            StatementKind::ShowAttribute(name) => write!(f, "SHOW ATTRIBUTE {name}")?,
            StatementKind::Funnel(funnel) => write!(f, "FUNNEL {funnel}")?,
            StatementKind::FindFunnel {
                funnel,
                step,
                show,
                show_all,
                limit,
                offset,
            } => {
                write!(f, "FIND FUNNEL {funnel} AT STEP {}", step.0)?;
                write_show(f, show, *show_all)?;
                if let Some(l) = limit {
                    write!(f, " LIMIT {l}")?;
                }
                if let Some(o) = offset {
                    write!(f, " OFFSET {o}")?;
                }
            }
        }
        if let Some(t) = &self.as_of {
            write!(f, " AS OF {t}")?;
        }
        Ok(())
    }
}

impl fmt::Display for TraitBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraitBody::Value(v) => write!(f, "{v}"),
            TraitBody::Quantile {
                buckets,
                value,
                descending,
                over,
                ..
            } => {
                let desc = if *descending { " DESC" } else { "" };
                write!(f, "QUANTILE({buckets}, {value}{desc}) OVER {over}")
            }
            TraitBody::Case {
                whens, otherwise, ..
            } => {
                f.write_str("CASE")?;
                for (when, then) in whens {
                    write!(f, " WHEN {when} THEN {then}")?;
                }
                if let Some(e) = otherwise {
                    write!(f, " ELSE {e}")?;
                }
                f.write_str(" END")
            }
        }
    }
}
