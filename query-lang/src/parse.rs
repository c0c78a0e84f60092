//! Text to AST: the pest parser, its tree turned into [`crate::ast`] nodes, and pest errors
//! turned into [`ParseError`]s that say what was expected in words.

use pest::Parser;
use pest::iterators::Pair;

use crate::ast::*;
use crate::error::ParseError;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// Deepest nesting accepted in a statement. Each parenthesis and each `NOT` is a level; a
/// flat `a OR b OR ...` of any length is one. Measured before anything recurses on the tree,
/// so hostile input cannot exhaust the stack of the parser or of anything that walks it.
pub const MAX_NESTING: usize = 64;

/// Deepest nesting accepted when a stored definition (a group's, in the log or the manifest)
/// is read back. Larger than [`MAX_NESTING`] so that definitions written before NOTs counted
/// as levels (64 parentheses, each with a `NOT`) still open; every walker of the tree stays
/// within a small stack at this depth.
pub const MAX_STORED_NESTING: usize = 4 * MAX_NESTING;

/// Parses `;`-separated statements.
pub fn parse_script(text: &str) -> Result<Vec<Statement>, ParseError> {
    check_parentheses(text, MAX_NESTING)?;
    let mut pairs =
        Grammar::parse(Rule::script, text).map_err(|e| ParseError::from_pest(text, e))?;
    let script = pairs.next().expect("script rule");
    check_tree_nesting(text, script.clone(), MAX_NESTING)?;
    Ok(script
        .into_inner()
        .filter(|p| p.as_rule() == Rule::statement)
        .map(statement)
        .collect())
}

/// Parses exactly one statement (a trailing `;` is allowed).
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    parse_statement_nested(text, MAX_NESTING)
}

/// Parses exactly one statement nested at most `max_nesting` levels deep (each parenthesis
/// and each `NOT` is a level). A server passes its configured limit; stored definitions are
/// read back with [`MAX_STORED_NESTING`]. Limits above that are lowered to it.
pub fn parse_statement_nested(text: &str, max_nesting: usize) -> Result<Statement, ParseError> {
    let max_nesting = max_nesting.min(MAX_STORED_NESTING);
    check_parentheses(text, max_nesting)?;
    let mut pairs =
        Grammar::parse(Rule::single, text).map_err(|e| ParseError::from_pest(text, e))?;
    let single = pairs.next().expect("single rule");
    check_tree_nesting(text, single.clone(), max_nesting)?;
    let stmt = single
        .into_inner()
        .find(|p| p.as_rule() == Rule::statement)
        .expect("statement");
    Ok(statement(stmt))
}

fn too_deep(text: &str, span: Span, max: usize) -> ParseError {
    ParseError::too_deep(
        text,
        span,
        format!(
            "nesting deeper than {max} levels (each NOT and each parenthesis is a level); \
             write long lists flat (a OR b OR c) or with IN (...)"
        ),
    )
}

/// Refuses parentheses nested deeper than `max` before pest sees the text: pest's parser
/// recurses once per parenthesis, and only there.
fn check_parentheses(text: &str, max: usize) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '-') if chars.peek().map(|p| p.1) == Some('-') => {
                while chars.peek().is_some_and(|p| p.1 != '\n') {
                    chars.next();
                }
            }
            (None, '(') => {
                depth += 1;
                if depth > max {
                    return Err(too_deep(text, Span::new(i, i + 1), max));
                }
            }
            (None, ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a parse tree nested deeper than `max` levels, counting each parenthesised group
/// and each `NOT` (of segments and of `WHERE` filters). Walks pest's flat pair queue in
/// order with a stack of the ends of the open levels, so it never recurses: a chain of
/// thousands of `NOT`s is measured and refused before any AST is built.
fn check_tree_nesting(text: &str, root: Pair<'_, Rule>, max: usize) -> Result<(), ParseError> {
    // Ends (byte offsets) of the levels enclosing the current pair, innermost last.
    let mut open: Vec<usize> = Vec::new();
    // The end of the innermost NOT-carrying expression seen: a NOT's level lasts to there.
    let mut not_scope_end = 0usize;
    for pair in root.into_inner().flatten() {
        let s = pair.as_span();
        while open.last().is_some_and(|&end| end <= s.start()) {
            open.pop();
        }
        let level_end = match pair.as_rule() {
            Rule::not_expr | Rule::prop_not => {
                not_scope_end = s.end();
                None
            }
            Rule::not_op => Some(not_scope_end),
            Rule::paren => Some(s.end()),
            Rule::prop_primary if s.as_str().starts_with('(') => Some(s.end()),
            _ => None,
        };
        if let Some(end) = level_end {
            open.push(end);
            if open.len() > max {
                return Err(too_deep(text, Span::new(s.start(), s.end()), max));
            }
        }
    }
    Ok(())
}

fn span(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

fn statement(pair: Pair<'_, Rule>) -> Statement {
    let whole = span(&pair);
    let mut inner = pair.into_inner();
    let body = inner.next().expect("statement body");
    let as_of = inner
        .next()
        .map(|a| string_literal(a.into_inner().last().expect("as of string")));
    // EXPLAIN SQL's statement carries the OVERLAP clause one level down
    let holder = match body.as_rule() {
        Rule::explain_stmt => body
            .clone()
            .into_inner()
            .find(|p| p.as_rule() == Rule::explain_sql)
            .and_then(|p| p.into_inner().find(|p| p.as_rule() != Rule::kw_sql))
            .unwrap_or_else(|| body.clone()),
        _ => body.clone(),
    };
    let overlap = holder
        .into_inner()
        .find(|p| p.as_rule() == Rule::overlap_clause)
        .map(|p| string_literal(nth(p, Rule::string)));
    Statement {
        kind: statement_kind(body),
        as_of,
        overlap,
        span: whole,
    }
}

/// What a statement's body says.
fn statement_kind(body: Pair<'_, Rule>) -> StatementKind {
    match body.as_rule() {
        Rule::segment => StatementKind::Count(segment(body)),
        Rule::count_stmt => StatementKind::Count(segment(nth(body, Rule::segment))),
        Rule::find_stmt => {
            let mut find = StatementKind::Find {
                segment: Expr::All(Span::default()),
                show: Vec::new(),
                show_all: false,
                limit: None,
                offset: None,
            };
            if let StatementKind::Find {
                segment: seg,
                show,
                show_all,
                limit,
                offset,
            } = &mut find
            {
                for part in body.into_inner() {
                    match part.as_rule() {
                        Rule::segment => *seg = segment(part),
                        Rule::show_clause => (*show, *show_all) = show_clause(part),
                        Rule::limit_clause => *limit = Some(integer(nth(part, Rule::integer))),
                        Rule::offset_clause => *offset = Some(integer(nth(part, Rule::integer))),
                        _ => {}
                    }
                }
            }
            find
        }
        Rule::breakdown_stmt => {
            let mut seg = None;
            let mut by = Vec::new();
            let mut top = None;
            for part in body.into_inner() {
                match part.as_rule() {
                    Rule::segment => seg = Some(segment(part)),
                    Rule::by_column => by.push(by_column(part)),
                    Rule::top_clause => top = Some(integer(nth(part, Rule::integer))),
                    _ => {}
                }
            }
            StatementKind::Breakdown {
                segment: seg.expect("segment"),
                by,
                top,
            }
        }
        Rule::define_stmt => StatementKind::DefineGroup {
            name: name(nth(body.clone(), Rule::name)),
            segment: segment(nth(body.clone(), Rule::segment)),
            keep_days: body
                .into_inner()
                .find(|p| p.as_rule() == Rule::keep_clause)
                .map(|k| integer(nth(k, Rule::integer))),
        },
        Rule::drop_stmt => StatementKind::DropGroup(name(nth(body, Rule::name))),
        Rule::define_identifier => {
            let (mut limit, mut priority, mut block) = (None, None, Vec::new());
            for part in body.clone().into_inner() {
                match part.as_rule() {
                    Rule::id_limit => limit = Some(integer(nth(part, Rule::integer))),
                    Rule::id_priority => priority = Some(integer(nth(part, Rule::integer))),
                    Rule::id_block => {
                        block = part
                            .into_inner()
                            .filter(|p| p.as_rule() == Rule::string)
                            .map(string_literal)
                            .collect()
                    }
                    _ => {}
                }
            }
            StatementKind::DefineIdentifier {
                name: name(nth(body, Rule::name)),
                limit,
                priority,
                block,
            }
        }
        Rule::define_merge => {
            let rule = nth(body.clone(), Rule::merge_rule)
                .into_inner()
                .next()
                .expect("a rule");
            StatementKind::DefineMerge {
                attribute: name(nth(body, Rule::name)),
                rule: match rule.as_rule() {
                    Rule::kw_earliest => MergeRuleName::Earliest,
                    Rule::kw_min => MergeRuleName::Min,
                    Rule::kw_max => MergeRuleName::Max,
                    Rule::kw_sum => MergeRuleName::Sum,
                    _ => MergeRuleName::Latest,
                },
            }
        }
        Rule::define_trait => StatementKind::DefineTrait {
            name: name(nth(body.clone(), Rule::name)),
            body: trait_body(nth(body, Rule::trait_body)),
        },
        Rule::drop_trait => StatementKind::DropTrait(name(nth(body, Rule::name))),
        Rule::export_stmt => {
            let mut seg = Expr::All(Span::default());
            let (mut show, mut show_all) = (Vec::new(), false);
            let mut path = None;
            for part in body.into_inner() {
                match part.as_rule() {
                    Rule::segment => seg = segment(part),
                    Rule::show_clause => (show, show_all) = show_clause(part),
                    Rule::string => path = Some(string_literal(part)),
                    _ => {}
                }
            }
            StatementKind::Export {
                segment: seg,
                show,
                show_all,
                path: path.expect("export path"),
            }
        }
        Rule::drop_attr_stmt => StatementKind::DropAttribute(name(nth(body, Rule::name))),
        Rule::alter_stmt => {
            let mut names = body.into_inner().filter(|p| p.as_rule() == Rule::name);
            StatementKind::AlterAttribute {
                name: name(names.next().expect("attribute name")),
                type_name: name(names.next().expect("type name")),
            }
        }
        Rule::explain_stmt => {
            let part = body
                .clone()
                .into_inner()
                .find(|p| matches!(p.as_rule(), Rule::explain_member | Rule::explain_sql));
            match part {
                Some(member) if member.as_rule() == Rule::explain_member => {
                    StatementKind::ExplainMember {
                        member: string_literal(nth(member.clone(), Rule::string)),
                        group: name(nth(member, Rule::name)),
                    }
                }
                Some(sql) => {
                    let inner = sql
                        .into_inner()
                        .find(|p| p.as_rule() != Rule::kw_sql)
                        .expect("a statement after EXPLAIN SQL");
                    StatementKind::ExplainSql(Box::new(statement_kind(inner)))
                }
                None => StatementKind::Explain(segment(nth(body, Rule::segment))),
            }
        }
        Rule::show_stmt
            if body
                .clone()
                .into_inner()
                .any(|p| p.as_rule() == Rule::show_one) =>
        {
            let one = nth(body, Rule::show_one);
            let kind = one
                .clone()
                .into_inner()
                .next()
                .map(|p| p.as_rule())
                .expect("a keyword");
            let named = name(nth(one, Rule::name));
            match kind {
                Rule::kw_event => StatementKind::ShowEvent(named),
                Rule::kw_group => StatementKind::ShowGroup(named),
                _ => StatementKind::ShowAttribute(named),
            }
        }
        Rule::show_stmt => {
            let what = nth(body, Rule::show_what)
                .into_inner()
                .next()
                .expect("show what");
            StatementKind::Show(match what.as_rule() {
                Rule::kw_attributes => ShowWhat::Attributes,
                Rule::kw_tags => ShowWhat::Tags,
                Rule::kw_events => ShowWhat::Events,
                Rule::kw_loads => ShowWhat::Loads,
                Rule::kw_traits => ShowWhat::Traits,
                Rule::kw_identifiers => ShowWhat::Identifiers,
                _ => ShowWhat::Groups,
            })
        }
        Rule::funnel_stmt => StatementKind::Funnel(funnel(nth(body, Rule::funnel_body))),
        Rule::find_funnel => {
            let mut found = None;
            let mut step = (0, Span::default());
            let (mut show, mut show_all) = (Vec::new(), false);
            let (mut limit, mut offset) = (None, None);
            for part in body.into_inner() {
                match part.as_rule() {
                    Rule::funnel_body => found = Some(funnel(part)),
                    Rule::at_step => {
                        step = (integer(nth(part.clone(), Rule::integer)), span(&part))
                    }
                    Rule::show_clause => (show, show_all) = show_clause(part),
                    Rule::limit_clause => limit = Some(integer(nth(part, Rule::integer))),
                    Rule::offset_clause => offset = Some(integer(nth(part, Rule::integer))),
                    _ => {}
                }
            }
            StatementKind::FindFunnel {
                funnel: found.expect("funnel body"),
                step,
                show,
                show_all,
                limit,
                offset,
            }
        }
        other => unreachable!("statement body {other:?}"),
    }
}

/// The first child of `pair` with rule `rule`.
fn nth(pair: Pair<'_, Rule>, rule: Rule) -> Pair<'_, Rule> {
    pair.into_inner()
        .find(|p| p.as_rule() == rule)
        .expect("child rule present")
}

fn segment(pair: Pair<'_, Rule>) -> Expr {
    or_expr(pair.into_inner().next().expect("or_expr"))
}

fn or_expr(pair: Pair<'_, Rule>) -> Expr {
    let whole = span(&pair);
    let mut parts: Vec<Expr> = pair
        .into_inner()
        .filter(|p| p.as_rule() == Rule::and_expr)
        .map(and_expr)
        .collect();
    if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        Expr::Or(parts, whole)
    }
}

fn and_expr(pair: Pair<'_, Rule>) -> Expr {
    let whole = span(&pair);
    let mut parts: Vec<Expr> = pair
        .into_inner()
        .filter(|p| p.as_rule() == Rule::not_expr)
        .map(not_expr)
        .collect();
    if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        Expr::And(parts, whole)
    }
}

fn not_expr(pair: Pair<'_, Rule>) -> Expr {
    let mut nots = Vec::new();
    let mut expr = None;
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::not_op => nots.push(span(&part).start),
            _ => expr = Some(primary(part)),
        }
    }
    let mut expr = expr.expect("primary");
    for start in nots.into_iter().rev() {
        let end = expr.span().end;
        expr = Expr::Not(Box::new(expr), Span::new(start, end));
    }
    expr
}

fn primary(pair: Pair<'_, Rule>) -> Expr {
    let inner = pair.into_inner().next().expect("primary body");
    let whole = span(&inner);
    match inner.as_rule() {
        Rule::paren => segment(nth(inner, Rule::segment)),
        Rule::all => Expr::All(whole),
        Rule::tag_pred => match string_literal(nth(inner, Rule::string)).kind {
            LiteralKind::Str(s) => Expr::Tag(s, whole),
            _ => unreachable!("string literal"),
        },
        Rule::group_pred => Expr::InGroup(name(nth(inner, Rule::name)), whole),
        Rule::did_pred => Expr::Did(did(inner), whole),
        Rule::has_identifier => Expr::Identifiers {
            id_type: name(nth(inner, Rule::name)),
            op: CmpOp::Ge,
            count: 1,
            span: whole,
        },
        Rule::identifier_count => Expr::Identifiers {
            id_type: name(nth(inner.clone(), Rule::name)),
            op: cmp_op(nth(inner.clone(), Rule::cmp_op).as_str()),
            count: integer(nth(inner, Rule::integer)),
            span: whole,
        },
        Rule::comparison => Expr::Cmp(comparison(inner)),
        Rule::value_cmp => {
            let mut parts = inner.into_inner();
            let value = computed(parts.next().expect("computed value"));
            let test = test(parts.next().expect("test"));
            Expr::Value(ValueComparison {
                value,
                test,
                span: whole,
            })
        }
        other => unreachable!("primary {other:?}"),
    }
}

fn did(pair: Pair<'_, Rule>) -> DidExpr {
    let mut out = DidExpr {
        event: Name {
            text: String::new(),
            span: Span::default(),
        },
        filter: None,
        count: None,
        window: None,
        then: None,
    };
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::name => out.event = name(part),
            Rule::where_clause => out.filter = Some(prop_not(nth(part, Rule::prop_not))),
            Rule::count_clause => {
                let whole = span(&part);
                let mut inner = part.into_inner();
                let kind = match inner
                    .next()
                    .expect("count kind")
                    .into_inner()
                    .next()
                    .expect("kind")
                    .as_rule()
                {
                    Rule::at_least => CountKind::AtLeast,
                    Rule::at_most => CountKind::AtMost,
                    _ => CountKind::Exactly,
                };
                let n = integer(inner.next().expect("count"));
                out.count = Some((kind, n, whole));
            }
            Rule::window => {
                out.window = Some(window_expr(part.into_inner().next().expect("window body")))
            }
            Rule::then_clause => out.then = Some(Box::new(then_clause(part))),
            _ => {}
        }
    }
    out
}

fn then_clause(pair: Pair<'_, Rule>) -> ThenExpr {
    let mut out = ThenExpr {
        negated: false,
        event: Name {
            text: String::new(),
            span: Span::default(),
        },
        filter: None,
        within: None,
        matching: None,
        span: span(&pair),
    };
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::then_not => out.negated = true,
            Rule::name => out.event = name(part),
            Rule::where_clause => out.filter = Some(prop_not(nth(part, Rule::prop_not))),
            Rule::within_clause => out.within = Some(within_clause(part)),
            Rule::matching_clause => out.matching = Some(name(nth(part, Rule::name))),
            _ => {}
        }
    }
    out
}

/// `WITHIN n unit`, with its span.
fn within_clause(pair: Pair<'_, Rule>) -> (u64, Unit, Span) {
    let whole = span(&pair);
    let (amount, unit) = amount_unit(pair);
    (amount, unit, whole)
}

fn funnel(pair: Pair<'_, Rule>) -> FunnelExpr {
    let mut out = FunnelExpr {
        steps: Vec::new(),
        within: (0, Unit::Days, Span::default()),
        range: None,
        segment: None,
        by: None,
        span: span(&pair),
    };
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::funnel_step => {
                let whole = span(&part);
                let mut step = FunnelStep {
                    event: name(nth(part.clone(), Rule::name)),
                    filter: None,
                    span: whole,
                };
                if let Some(w) = part
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::where_clause)
                {
                    step.filter = Some(prop_not(nth(w, Rule::prop_not)));
                }
                out.steps.push(step);
            }
            Rule::within_clause => out.within = within_clause(part),
            Rule::window => {
                out.range = Some(window_expr(part.into_inner().next().expect("window body")))
            }
            Rule::for_clause => out.segment = Some(segment(nth(part, Rule::segment))),
            Rule::funnel_by => {
                let by = part.into_inner().nth(1).expect("BY's body");
                out.by = Some(match by.as_rule() {
                    Rule::touch_by => {
                        let whole = span(&by);
                        let first = nth(by.clone(), Rule::touch_kind)
                            .into_inner()
                            .next()
                            .is_some_and(|k| k.as_rule() == Rule::kw_first);
                        FunnelBy::Touch {
                            prop: name(nth(by, Rule::name)),
                            first,
                            span: whole,
                        }
                    }
                    _ => FunnelBy::Value(value_expr(by)),
                });
            }
            _ => {}
        }
    }
    out
}

fn time_unit(pair: Pair<'_, Rule>) -> Unit {
    match pair.into_inner().next().expect("unit").as_rule() {
        Rule::kw_hours | Rule::kw_hour => Unit::Hours,
        Rule::kw_weeks | Rule::kw_week => Unit::Weeks,
        _ => Unit::Days,
    }
}

/// The `n unit` of `IN LAST n unit` and `WITHIN ANY n unit`.
fn amount_unit(pair: Pair<'_, Rule>) -> (u64, Unit) {
    let mut amount = 0;
    let mut unit = Unit::Days;
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::integer => amount = integer(part),
            Rule::time_unit => unit = time_unit(part),
            _ => {}
        }
    }
    (amount, unit)
}

fn window_expr(pair: Pair<'_, Rule>) -> WindowExpr {
    let whole = span(&pair);
    match pair.as_rule() {
        Rule::last_window => {
            let (amount, unit) = amount_unit(pair);
            WindowExpr::Last {
                amount,
                unit,
                span: whole,
            }
        }
        _ => {
            let mut since = None;
            let mut before = None;
            for part in pair.into_inner() {
                let value = string_literal(nth(part.clone(), Rule::string));
                match part.as_rule() {
                    Rule::since => since = Some(value),
                    _ => before = Some(value),
                }
            }
            WindowExpr::Range {
                since,
                before,
                span: whole,
            }
        }
    }
}

fn prop_or(pair: Pair<'_, Rule>) -> PropExpr {
    let whole = span(&pair);
    let mut parts: Vec<PropExpr> = pair
        .into_inner()
        .filter(|p| p.as_rule() == Rule::prop_and)
        .map(prop_and)
        .collect();
    if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        PropExpr::Or(parts, whole)
    }
}

fn prop_and(pair: Pair<'_, Rule>) -> PropExpr {
    let whole = span(&pair);
    let mut parts: Vec<PropExpr> = pair
        .into_inner()
        .filter(|p| p.as_rule() == Rule::prop_not)
        .map(prop_not)
        .collect();
    if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        PropExpr::And(parts, whole)
    }
}

fn prop_not(pair: Pair<'_, Rule>) -> PropExpr {
    let mut nots = Vec::new();
    let mut expr = None;
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::not_op => nots.push(span(&part).start),
            _ => {
                let inner = part.into_inner().next().expect("prop primary body");
                expr = Some(match inner.as_rule() {
                    Rule::prop_or => prop_or(inner),
                    _ => PropExpr::Cmp(comparison(inner)),
                });
            }
        }
    }
    let mut expr = expr.expect("prop primary");
    for start in nots.into_iter().rev() {
        let end = prop_span(&expr).end;
        expr = PropExpr::Not(Box::new(expr), Span::new(start, end));
    }
    expr
}

pub(crate) fn prop_span(e: &PropExpr) -> Span {
    match e {
        PropExpr::Cmp(c) => c.span,
        PropExpr::And(_, s) | PropExpr::Or(_, s) | PropExpr::Not(_, s) => *s,
    }
}

fn comparison(pair: Pair<'_, Rule>) -> Comparison {
    let whole = span(&pair);
    let mut inner = pair.into_inner();
    let subject = name(inner.next().expect("name"));
    let test = test(inner.next().expect("comparison tail"));
    Comparison {
        name: subject,
        test,
        span: whole,
    }
}

fn cmp_op(text: &str) -> CmpOp {
    match text {
        "=" => CmpOp::Eq,
        "!=" | "<>" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        _ => CmpOp::Ge,
    }
}

/// The test of a comparison: its tail after the name or value.
fn test(tail: Pair<'_, Rule>) -> Test {
    match tail.as_rule() {
        Rule::cmp_tail => {
            let mut parts = tail.into_inner();
            let op = cmp_op(parts.next().expect("op").as_str());
            Test::Cmp(op, literal(parts.next().expect("literal")))
        }
        Rule::in_tail => Test::In(
            tail.into_inner()
                .filter(|p| p.as_rule() == Rule::literal)
                .map(literal)
                .collect(),
        ),
        Rule::between_tail => {
            let mut lits = tail
                .into_inner()
                .filter(|p| p.as_rule() == Rule::literal)
                .map(literal);
            let lo = lits.next().expect("lo");
            let hi = lits.next().expect("hi");
            Test::Between(lo, hi)
        }
        _ => Test::Null {
            negated: tail.into_inner().any(|p| p.as_rule() == Rule::is_not),
        },
    }
}

fn by_column(pair: Pair<'_, Rule>) -> ByColumn {
    let mut parts = pair.into_inner();
    let first = parts.next().expect("column");
    match first.as_rule() {
        Rule::computed => ByColumn::Value(computed(first)),
        _ => ByColumn::Name {
            name: name(first),
            of: parts.next().map(|of| name(nth(of, Rule::name))),
        },
    }
}

fn trait_body(pair: Pair<'_, Rule>) -> TraitBody {
    let inner = pair.into_inner().next().expect("trait body");
    let whole = span(&inner);
    match inner.as_rule() {
        Rule::quantile => {
            let mut buckets = 0;
            let mut value = None;
            let mut descending = false;
            let mut over = None;
            for part in inner.into_inner() {
                match part.as_rule() {
                    Rule::integer => buckets = integer(part),
                    Rule::value_expr => value = Some(value_expr(part)),
                    Rule::desc => descending = true,
                    Rule::segment => over = Some(segment(part)),
                    _ => {}
                }
            }
            TraitBody::Quantile {
                buckets,
                value: value.expect("ranked value"),
                descending,
                over: Box::new(over.expect("OVER segment")),
                span: whole,
            }
        }
        Rule::case_expr => {
            let mut whens = Vec::new();
            let mut otherwise = None;
            for part in inner.into_inner() {
                match part.as_rule() {
                    Rule::case_when => {
                        let seg = segment(nth(part.clone(), Rule::segment));
                        whens.push((seg, literal(nth(part, Rule::literal))));
                    }
                    Rule::case_else => otherwise = Some(literal(nth(part, Rule::literal))),
                    _ => {}
                }
            }
            TraitBody::Case {
                whens,
                otherwise,
                span: whole,
            }
        }
        _ => TraitBody::Value(value_expr(inner)),
    }
}

fn value_expr(pair: Pair<'_, Rule>) -> ValueExpr {
    let inner = pair.into_inner().next().expect("value");
    match inner.as_rule() {
        Rule::computed => computed(inner),
        _ => ValueExpr::Name(name(inner)),
    }
}

fn computed(pair: Pair<'_, Rule>) -> ValueExpr {
    let inner = pair.into_inner().next().expect("computed value");
    let whole = span(&inner);
    match inner.as_rule() {
        Rule::days_since => {
            let of = inner.into_inner().nth(2).expect("a time");
            let of = match of.as_rule() {
                Rule::aggregate => ValueExpr::Aggregate(Box::new(aggregate(
                    of.into_inner().next().expect("aggregate"),
                ))),
                _ => ValueExpr::Name(name(of)),
            };
            ValueExpr::DaysSince(Box::new(of), whole)
        }
        Rule::bucket => {
            let mut value = None;
            let mut cuts = Vec::new();
            for part in inner.into_inner() {
                match part.as_rule() {
                    Rule::value_expr => value = Some(value_expr(part)),
                    Rule::number => cuts.push(number_literal(part)),
                    _ => {}
                }
            }
            ValueExpr::Bucket {
                value: Box::new(value.expect("bucketed value")),
                cuts,
                span: whole,
            }
        }
        _ => ValueExpr::Aggregate(Box::new(aggregate(
            inner.into_inner().next().expect("aggregate"),
        ))),
    }
}

fn aggregate(pair: Pair<'_, Rule>) -> Aggregate {
    let whole = span(&pair);
    let form = pair.as_rule();
    let mut func = AggFunc::Count;
    let mut prop = None;
    let mut names = Vec::new();
    let mut filter = None;
    let mut window = None;
    for part in pair.into_inner() {
        match part.as_rule() {
            Rule::distinct_days => {
                func = AggFunc::CountDistinctDays;
                names.push(name(nth(part, Rule::name)));
            }
            Rule::distinct_prop => {
                func = AggFunc::CountDistinct;
                let mut n = part.into_inner().filter(|p| p.as_rule() == Rule::name);
                prop = Some(name(n.next().expect("property")));
                names.push(name(n.next().expect("event")));
            }
            Rule::agg_prop_fn | Rule::agg_edge_fn => {
                func = match part.into_inner().next().expect("function").as_rule() {
                    Rule::kw_sum => AggFunc::Sum,
                    Rule::kw_avg => AggFunc::Avg,
                    Rule::kw_min => AggFunc::Min,
                    Rule::kw_max => AggFunc::Max,
                    Rule::kw_first => AggFunc::First,
                    _ => AggFunc::Last,
                }
            }
            Rule::prop_of => prop = Some(name(nth(part, Rule::name))),
            Rule::name => names.push(name(part)),
            Rule::agg_tail => {
                for clause in part.into_inner() {
                    match clause.as_rule() {
                        Rule::where_clause => filter = Some(prop_not(nth(clause, Rule::prop_not))),
                        Rule::within_any => {
                            let clause_span = span(&clause);
                            let (amount, unit) = amount_unit(clause);
                            window = Some(AggWindow::WithinAny {
                                amount,
                                unit,
                                span: clause_span,
                            });
                        }
                        Rule::window => {
                            window = Some(AggWindow::Window(window_expr(
                                clause.into_inner().next().expect("window body"),
                            )))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // `SUM(p OF e)`: the property, then the event.
    if form == Rule::agg_prop {
        let mut n = names.into_iter();
        prop = n.next();
        names = n.collect();
    }
    Aggregate {
        func,
        prop,
        event: names.pop().expect("event"),
        filter,
        window,
        span: whole,
    }
}

fn number_literal(pair: Pair<'_, Rule>) -> Literal {
    let whole = span(&pair);
    let text = pair.as_str();
    let kind = match text.parse::<i64>() {
        Ok(i) => LiteralKind::Int(i),
        Err(_) => LiteralKind::Float(text.parse().unwrap_or(f64::INFINITY)),
    };
    Literal { kind, span: whole }
}

fn literal(pair: Pair<'_, Rule>) -> Literal {
    let inner = pair.into_inner().next().expect("literal body");
    let whole = span(&inner);
    let kind = match inner.as_rule() {
        Rule::string => return string_literal(inner),
        Rule::bool_true => LiteralKind::Bool(true),
        Rule::bool_false => LiteralKind::Bool(false),
        // Out of i64 range or with a fraction: a float.
        _ => return number_literal(inner),
    };
    Literal { kind, span: whole }
}

/// The names of a `SHOW` clause, and whether it is `SHOW *`.
fn show_clause(pair: Pair<'_, Rule>) -> (Vec<Name>, bool) {
    let mut all = false;
    let mut names = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::show_star => all = true,
            Rule::name => names.push(name(p)),
            _ => {}
        }
    }
    (names, all)
}

fn string_literal(pair: Pair<'_, Rule>) -> Literal {
    let whole = span(&pair);
    let inner = pair.into_inner().next().map_or("", |p| p.as_str());
    Literal {
        kind: LiteralKind::Str(inner.replace("''", "'")),
        span: whole,
    }
}

fn name(pair: Pair<'_, Rule>) -> Name {
    let whole = span(&pair);
    let inner = pair.into_inner().next().expect("name body");
    let text = match inner.as_rule() {
        Rule::quoted_name => inner
            .into_inner()
            .next()
            .map_or("", |p| p.as_str())
            .replace("\"\"", "\""),
        _ => inner.as_str().to_string(),
    };
    Name { text, span: whole }
}

fn integer(pair: Pair<'_, Rule>) -> u64 {
    // The grammar admits digits only; absurd lengths saturate and are refused by binding.
    pair.as_str().parse().unwrap_or(u64::MAX)
}

pub(crate) fn rule_words(rule: &Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::statement
        | Rule::count_stmt
        | Rule::find_stmt
        | Rule::breakdown_stmt
        | Rule::define_stmt
        | Rule::define_trait
        | Rule::define_identifier
        | Rule::define_merge
        | Rule::drop_stmt
        | Rule::drop_trait
        | Rule::drop_attr_stmt
        | Rule::alter_stmt
        | Rule::export_stmt
        | Rule::explain_stmt
        | Rule::show_stmt
        | Rule::funnel_stmt
        | Rule::find_funnel => "a statement",
        Rule::then_clause => "THEN",
        Rule::then_not => "NOT",
        Rule::within_clause => "WITHIN n DAYS",
        Rule::matching_clause | Rule::kw_matching => "MATCHING",
        Rule::funnel_body | Rule::funnel_step => "a funnel step (an event, WHERE ...)",
        Rule::at_step => "AT STEP k",
        Rule::for_clause | Rule::kw_for => "FOR",
        Rule::funnel_by => "BY",
        Rule::touch_by | Rule::touch_kind => "FIRST TOUCH or LAST TOUCH",
        Rule::kw_touch => "TOUCH",
        Rule::kw_step => "STEP",
        Rule::kw_funnel => "FUNNEL",
        Rule::segment | Rule::or_expr | Rule::and_expr | Rule::not_expr | Rule::primary => {
            "a segment"
        }
        Rule::comparison => "a comparison",
        Rule::value_cmp | Rule::computed | Rule::value_expr => "a value",
        Rule::aggregate | Rule::agg_count | Rule::agg_prop | Rule::agg_edge => {
            "an aggregate (COUNT, SUM, AVG, MIN, MAX, FIRST, LAST)"
        }
        Rule::days_since => "DAYS SINCE",
        Rule::trait_body => "a value, QUANTILE(k, value) OVER a segment, or CASE",
        Rule::quantile => "QUANTILE",
        Rule::case_expr => "CASE",
        Rule::case_when => "WHEN segment THEN value",
        Rule::case_else => "ELSE",
        Rule::desc | Rule::kw_desc => "DESC",
        Rule::kw_trait => "TRAIT",
        Rule::kw_traits => "TRAITS",
        Rule::kw_quantile => "QUANTILE",
        Rule::kw_over => "OVER",
        Rule::kw_case => "CASE",
        Rule::kw_when => "WHEN",
        Rule::kw_then => "THEN",
        Rule::kw_else => "ELSE",
        Rule::kw_end => "END",
        Rule::bucket => "BUCKET",
        Rule::by_column => "a column (an attribute, a property OF an event, or a value)",
        Rule::agg_tail => "WHERE, a window or WITHIN ANY",
        Rule::within_any => "WITHIN ANY",
        Rule::kw_distinct => "DISTINCT",
        Rule::kw_within => "WITHIN",
        Rule::kw_any => "ANY",
        Rule::prop_not | Rule::prop_or | Rule::prop_and | Rule::prop_primary => {
            "a property comparison"
        }
        Rule::cmp_tail | Rule::in_tail | Rule::between_tail | Rule::null_tail | Rule::cmp_op => {
            "a comparison (=, !=, <, <=, >, >=, IN, BETWEEN, IS NULL)"
        }
        Rule::literal => "a value ('text', a number, TRUE or FALSE)",
        Rule::string => "a quoted string",
        Rule::integer => "a whole number",
        Rule::number => "a number",
        Rule::name | Rule::bare_name | Rule::quoted_name => "a name",
        Rule::show_what | Rule::show_one => {
            "ATTRIBUTES, TAGS, EVENTS, GROUPS, TRAITS, LOADS, IDENTIFIERS, EVENT name or \
             ATTRIBUTE name"
        }
        Rule::time_unit => "HOURS, DAYS or WEEKS",
        Rule::window | Rule::last_window | Rule::range_window => "IN LAST, SINCE or BEFORE",
        Rule::count_clause | Rule::count_kind => "AT LEAST, AT MOST or EXACTLY",
        Rule::where_clause => "WHERE",
        Rule::as_of => "AS OF",
        Rule::EOI => "the end of the statement",
        Rule::kw_count => "COUNT",
        Rule::kw_find => "FIND",
        Rule::kw_show => "SHOW",
        Rule::kw_limit => "LIMIT",
        Rule::kw_offset => "OFFSET",
        Rule::kw_breakdown => "BREAKDOWN",
        Rule::kw_by => "BY",
        Rule::kw_top => "TOP",
        Rule::kw_define => "DEFINE",
        Rule::kw_group => "GROUP",
        Rule::kw_as => "AS",
        Rule::kw_drop => "DROP",
        Rule::kw_alter => "ALTER",
        Rule::kw_export => "EXPORT",
        Rule::kw_event => "EVENT",
        Rule::of_clause => "OF",
        Rule::kw_to => "TO",
        Rule::show_star => "*",
        Rule::kw_attribute => "ATTRIBUTE",
        Rule::kw_type => "TYPE",
        Rule::kw_explain => "EXPLAIN",
        Rule::kw_of => "OF",
        Rule::kw_or => "OR",
        Rule::kw_and => "AND",
        Rule::kw_not => "NOT",
        Rule::kw_all => "ALL",
        Rule::kw_tag => "TAG",
        Rule::kw_in => "IN",
        Rule::kw_did => "DID",
        Rule::kw_where => "WHERE",
        Rule::kw_times => "TIMES",
        Rule::kw_last => "LAST",
        Rule::kw_least => "LEAST",
        Rule::kw_most => "MOST",
        Rule::kw_between => "BETWEEN",
        Rule::kw_is => "IS",
        Rule::kw_null => "NULL",
        Rule::kw_identifier => "IDENTIFIER",
        Rule::has_identifier | Rule::kw_has => "HAS IDENTIFIER",
        Rule::identifier_count => "COUNT(IDENTIFIER type)",
        Rule::kw_identifiers => "IDENTIFIERS",
        Rule::id_limit => "LIMIT",
        Rule::id_priority | Rule::kw_priority => "PRIORITY",
        Rule::id_block | Rule::kw_block => "BLOCK",
        Rule::kw_merge => "MERGE",
        Rule::merge_rule | Rule::kw_latest | Rule::kw_earliest => {
            "LATEST, EARLIEST, MIN, MAX or SUM"
        }
        _ => return None,
    })
}

pub(crate) type PestError = pest::error::Error<Rule>;
