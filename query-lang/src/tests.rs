//! Parser tests: every form of DESIGN section 3, errors, and properties (round trip through
//! the printer, no panic on any input).

use proptest::prelude::*;

use crate::ast::*;
use crate::{MAX_NESTING, parse_script, parse_statement};

fn canon(text: &str) -> String {
    parse_statement(text)
        .unwrap_or_else(|e| panic!("{text}: {}", e.render()))
        .to_string()
}

#[test]
fn every_form_parses_and_prints_canonically() {
    let cases = [
        ("city = 'Shanghai'", "COUNT city = 'Shanghai'"),
        ("city != 'Shanghai'", "COUNT city != 'Shanghai'"),
        ("city <> 'Shanghai'", "COUNT city != 'Shanghai'"),
        ("points >= 1000", "COUNT points >= 1000"),
        (
            "level in ('gold', 'platinum')",
            "COUNT level IN ('gold', 'platinum')",
        ),
        ("age BETWEEN 25 AND 35", "COUNT age BETWEEN 25 AND 35"),
        // an empty list matches nothing; the API can build one, so the text can say it
        ("level in ( )", "COUNT level IN ()"),
        ("phone IS NULL", "COUNT phone IS NULL"),
        ("phone is not null", "COUNT phone IS NOT NULL"),
        (
            "joined_at >= '2026-01-01'",
            "COUNT joined_at >= '2026-01-01'",
        ),
        ("subscribed = true", "COUNT subscribed = TRUE"),
        ("score < -2.5", "COUNT score < -2.5"),
        ("TAG 'vip'", "COUNT TAG 'vip'"),
        ("tag '摄影爱好者'", "COUNT TAG '摄影爱好者'"),
        ("TAG 'O''Brien'", "COUNT TAG 'O''Brien'"),
        ("IN GROUP coupon_claimed", "COUNT IN GROUP coupon_claimed"),
        ("DID claim_coupon", "COUNT DID claim_coupon"),
        (
            "did claim_coupon then redeem_coupon within 7 days matching coupon_id",
            "COUNT DID claim_coupon THEN redeem_coupon WITHIN 7 DAYS MATCHING coupon_id",
        ),
        (
            "DID claim_coupon IN LAST 30 DAYS THEN NOT redeem_coupon WHERE store = 3 WITHIN 1 WEEK",
            "COUNT DID claim_coupon IN LAST 30 DAYS THEN NOT redeem_coupon WHERE store = 3 \
             WITHIN 1 WEEKS",
        ),
        (
            "FUNNEL scan_qr, follow, purchase WHERE amount > 0 WITHIN 14 DAYS IN LAST 90 DAYS \
             FOR city = 'Shanghai' BY qr_code FIRST TOUCH",
            "FUNNEL scan_qr, follow, purchase WHERE amount > 0 WITHIN 14 DAYS IN LAST 90 DAYS \
             FOR city = 'Shanghai' BY qr_code FIRST TOUCH",
        ),
        (
            "funnel a, b within 2 hours by city",
            "FUNNEL a, b WITHIN 2 HOURS BY city",
        ),
        (
            "find funnel a, b within 2 days since '2026-01-01' at step 1 show city limit 5",
            "FIND FUNNEL a, b WITHIN 2 DAYS SINCE '2026-01-01' AT STEP 1 SHOW city LIMIT 5",
        ),
        (
            "define identifier phone limit 1 priority 2 block '13800000000', '00000000000'",
            "DEFINE IDENTIFIER phone LIMIT 1 PRIORITY 2 BLOCK '13800000000', '00000000000'",
        ),
        ("define identifier openid", "DEFINE IDENTIFIER openid"),
        (
            "define attribute points merge sum",
            "DEFINE ATTRIBUTE points MERGE SUM",
        ),
        ("show identifiers", "SHOW IDENTIFIERS"),
        (
            "has identifier phone and count(identifier openid) >= 2 and not count(identifier unionid) = 0",
            "COUNT HAS IDENTIFIER phone AND COUNT(IDENTIFIER openid) >= 2 AND NOT COUNT(IDENTIFIER unionid) = 0",
        ),
        ("COUNT(IDENTIFIER phone) >= 1", "COUNT HAS IDENTIFIER phone"),
        ("has = 1", "COUNT has = 1"),
        (
            // the new words stay names elsewhere
            "COUNT merge = 1 AND priority > 2 AND TAG 'block'",
            "COUNT merge = 1 AND priority > 2 AND TAG 'block'",
        ),
        (
            // CASE's THEN is not a sequence's: a literal follows it
            "DEFINE TRAIT t AS CASE WHEN DID a THEN 'x' ELSE 'y' END",
            "DEFINE TRAIT t AS CASE WHEN DID a THEN 'x' ELSE 'y' END",
        ),
        (
            "DID purchase IN LAST 30 DAYS",
            "COUNT DID purchase IN LAST 30 DAYS",
        ),
        (
            "did purchase in last 1 hour",
            "COUNT DID purchase IN LAST 1 HOURS",
        ),
        (
            "DID purchase IN LAST 2 WEEKS",
            "COUNT DID purchase IN LAST 2 WEEKS",
        ),
        (
            "DID purchase AT LEAST 3 TIMES IN LAST 90 DAYS",
            "COUNT DID purchase AT LEAST 3 TIMES IN LAST 90 DAYS",
        ),
        (
            "DID purchase AT MOST 2 TIMES",
            "COUNT DID purchase AT MOST 2 TIMES",
        ),
        (
            "DID purchase EXACTLY 1 TIMES",
            "COUNT DID purchase EXACTLY 1 TIMES",
        ),
        (
            "DID purchase WHERE amount >= 500 IN LAST 7 DAYS",
            "COUNT DID purchase WHERE amount >= 500 IN LAST 7 DAYS",
        ),
        (
            "DID purchase WHERE (amount >= 500 AND store = 'S012') AT LEAST 2 TIMES IN LAST 52 WEEKS",
            "COUNT DID purchase WHERE (amount >= 500 AND store = 'S012') AT LEAST 2 TIMES IN LAST 52 WEEKS",
        ),
        (
            "DID purchase WHERE NOT store = 'S1'",
            "COUNT DID purchase WHERE NOT store = 'S1'",
        ),
        (
            "DID purchase SINCE '2026-01-01' BEFORE '2026-07-01'",
            "COUNT DID purchase SINCE '2026-01-01' BEFORE '2026-07-01'",
        ),
        (
            "DID purchase BEFORE '2026-07-01'",
            "COUNT DID purchase BEFORE '2026-07-01'",
        ),
        (
            "a = 1 AND b = 2 OR NOT c = 3",
            "COUNT (a = 1 AND b = 2) OR NOT c = 3",
        ),
        ("NOT (TAG 'a' OR TAG 'b')", "COUNT NOT (TAG 'a' OR TAG 'b')"),
        ("NOT NOT ALL", "COUNT NOT NOT ALL"),
        ("\"会员等级\" = 'gold'", "COUNT 会员等级 = 'gold'"),
        ("\"the level\" = 'gold'", "COUNT \"the level\" = 'gold'"),
        ("\"count\" = 1", "COUNT \"count\" = 1"),
        ("count all", "COUNT ALL"),
        (
            "FIND TAG 'vip' SHOW phone, city LIMIT 100 OFFSET 20",
            "FIND TAG 'vip' SHOW phone, city LIMIT 100 OFFSET 20",
        ),
        ("find all", "FIND ALL"),
        (
            "BREAKDOWN DID claim_coupon BY city TOP 5",
            "BREAKDOWN DID claim_coupon BY city TOP 5",
        ),
        (
            "DEFINE GROUP reminder AS DID claim_coupon AND NOT DID redeem_coupon",
            "DEFINE GROUP reminder AS DID claim_coupon AND NOT DID redeem_coupon",
        ),
        ("drop group reminder", "DROP GROUP reminder"),
        (
            "EXPLAIN TAG 'vip' AND city = 'X'",
            "EXPLAIN TAG 'vip' AND city = 'X'",
        ),
        (
            "explain sql find tag 'vip' show city limit 5",
            "EXPLAIN SQL FIND TAG 'vip' SHOW city LIMIT 5",
        ),
        (
            "EXPLAIN SQL TAG 'vip' AS OF '2026-01-01'",
            "EXPLAIN SQL COUNT TAG 'vip' AS OF '2026-01-01'",
        ),
        (
            "EXPLAIN SQL BREAKDOWN ALL OVERLAP 'p.parquet' BY city TOP 3",
            "EXPLAIN SQL BREAKDOWN ALL OVERLAP 'p.parquet' BY city TOP 3",
        ),
        // sql stays a name outside EXPLAIN SQL's place
        ("EXPLAIN sql = 'x'", "EXPLAIN sql = 'x'"),
        ("show attributes", "SHOW ATTRIBUTES"),
        ("SHOW TAGS", "SHOW TAGS"),
        ("SHOW EVENTS", "SHOW EVENTS"),
        ("show loads", "SHOW LOADS"),
        ("show event claim_coupon", "SHOW EVENT claim_coupon"),
        ("show attribute city", "SHOW ATTRIBUTE city"),
        (
            "breakdown did claim_coupon by coupon_id of claim_coupon top 3",
            "BREAKDOWN DID claim_coupon BY coupon_id OF claim_coupon TOP 3",
        ),
        ("find all show *", "FIND ALL SHOW *"),
        (
            "export tag 'vip' show city, phone to 'a b.csv'",
            "EXPORT TAG 'vip' SHOW city, phone TO 'a b.csv'",
        ),
        (
            "alter attribute phone type string",
            "ALTER ATTRIBUTE phone TYPE string",
        ),
        ("drop attribute \"zip code\"", "DROP ATTRIBUTE \"zip code\""),
        ("SHOW GROUPS", "SHOW GROUPS"),
        (
            "COUNT DID purchase IN LAST 7 DAYS AS OF '2026-11-01T00:00:00Z'",
            "COUNT DID purchase IN LAST 7 DAYS AS OF '2026-11-01T00:00:00Z'",
        ),
        ("COUNT ALL -- a comment\n", "COUNT ALL"),
        ("indexed = 1", "COUNT indexed = 1"),
        // values computed per member (DESIGN section 9)
        (
            "count(purchase where amount >= 500 in last 90 days) = 0",
            "COUNT COUNT(purchase WHERE amount >= 500 IN LAST 90 DAYS) = 0",
        ),
        (
            "SUM(amount OF purchase IN LAST 365 DAYS) >= 1000",
            "COUNT SUM(amount OF purchase IN LAST 365 DAYS) >= 1000",
        ),
        (
            "count(distinct city of join_campaign in last 3 days) >= 2",
            "COUNT COUNT(DISTINCT city OF join_campaign IN LAST 3 DAYS) >= 2",
        ),
        (
            "COUNT(DISTINCT city OF join_campaign WITHIN ANY 3 DAYS) >= 2",
            "COUNT COUNT(DISTINCT city OF join_campaign WITHIN ANY 3 DAYS) >= 2",
        ),
        (
            "COUNT(DISTINCT DAYS OF visit_store IN LAST 30 DAYS) >= 4",
            "COUNT COUNT(DISTINCT DAYS OF visit_store IN LAST 30 DAYS) >= 4",
        ),
        (
            "FIRST(channel OF follow) = 'qr' AND LAST(store OF purchase) = 'S012'",
            "COUNT FIRST(channel OF follow) = 'qr' AND LAST(store OF purchase) = 'S012'",
        ),
        (
            "LAST(purchase) < '2026-01-01'",
            "COUNT LAST(purchase) < '2026-01-01'",
        ),
        (
            "DAYS SINCE LAST(purchase) > 180",
            "COUNT DAYS SINCE LAST(purchase) > 180",
        ),
        (
            "days since joined_at between 21 and 120",
            "COUNT DAYS SINCE joined_at BETWEEN 21 AND 120",
        ),
        (
            "BUCKET(DAYS SINCE LAST(purchase), 30, 60, 90, 180, 365) = 1",
            "COUNT BUCKET(DAYS SINCE LAST(purchase), 30, 60, 90, 180, 365) = 1",
        ),
        (
            "avg(amount of purchase) is null or min(amount of purchase) in (1, 2)",
            "COUNT AVG(amount OF purchase) IS NULL OR MIN(amount OF purchase) IN (1, 2)",
        ),
        (
            "max(amount of purchase where (store = 'S1' or store = 'S2') since '2026-01-01') > 9.5",
            "COUNT MAX(amount OF purchase WHERE (store = 'S1' OR store = 'S2') SINCE \
             '2026-01-01') > 9.5",
        ),
        // the function words stay names where no "(" follows
        ("sum = 3 AND first != 'x'", "COUNT sum = 3 AND first != 'x'"),
        (
            "BREAKDOWN DID purchase IN LAST 365 DAYS BY r, m",
            "BREAKDOWN DID purchase IN LAST 365 DAYS BY r, m",
        ),
        (
            "breakdown all by city, store of purchase, bucket(count(purchase), 1, 3) top 9",
            "BREAKDOWN ALL BY city, store OF purchase, BUCKET(COUNT(purchase), 1, 3) TOP 9",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(canon(input), expected, "input: {input}");
        // the canonical text is a fixed point
        assert_eq!(canon(expected), expected);
    }
}

#[test]
fn explain_sql_holds_the_statement_and_its_overlap() {
    let s = parse_statement("EXPLAIN SQL COUNT TAG 'a' OVERLAP 'p.parquet'").unwrap();
    let StatementKind::ExplainSql(inner) = &s.kind else {
        panic!("EXPLAIN SQL")
    };
    assert!(matches!(**inner, StatementKind::Count(Expr::Tag(..))));
    assert_eq!(
        s.overlap.map(|l| l.to_string()),
        Some("'p.parquet'".to_string())
    );
}

#[test]
fn precedence_is_not_and_or() {
    let s = parse_statement("a = 1 OR b = 2 AND NOT c = 3").unwrap();
    let StatementKind::Count(Expr::Or(parts, _)) = s.kind else {
        panic!("OR at the top")
    };
    assert!(matches!(&parts[1], Expr::And(inner, _) if matches!(inner[1], Expr::Not(..))));
}

#[test]
fn where_takes_one_comparison_so_the_rest_is_the_segment() {
    let s = parse_statement("DID purchase WHERE amount > 100 AND city = 'X'").unwrap();
    let StatementKind::Count(Expr::And(parts, _)) = s.kind else {
        panic!("AND at the top")
    };
    assert!(matches!(&parts[0], Expr::Did(d, _) if d.filter.is_some()));
    assert!(matches!(&parts[1], Expr::Cmp(c) if c.name.text == "city"));
}

#[test]
fn spans_point_at_the_source() {
    let text = "COUNT TAG 'vip' AND ctiy = 'X'";
    let s = parse_statement(text).unwrap();
    let StatementKind::Count(Expr::And(parts, _)) = s.kind else {
        panic!()
    };
    let Expr::Cmp(c) = &parts[1] else { panic!() };
    assert_eq!(&text[c.name.span.start..c.name.span.end], "ctiy");
    assert_eq!(&text[c.span.start..c.span.end], "ctiy = 'X'");
}

#[test]
fn scripts_split_on_semicolons() {
    let stmts = parse_script("COUNT ALL; ; FIND TAG 'x' LIMIT 1;\nSHOW TAGS;").unwrap();
    assert_eq!(stmts.len(), 3);
    assert!(parse_script("").unwrap().is_empty());
    assert!(parse_script("-- nothing\n").unwrap().is_empty());
    assert!(parse_statement("COUNT ALL; COUNT ALL").is_err());
}

#[test]
fn errors_say_what_was_expected_in_words() {
    let cases = [
        (
            "COUNT TAG vip",
            1,
            11,
            "expected a quoted string, found 'vip'",
        ),
        (
            "COUNT city = ",
            1,
            14,
            "expected a value ('text', a number, TRUE or FALSE), found the end of the input",
        ),
        ("COUNT city == 'x'", 1, 13, "found '='"),
        (
            "SELECT count(*) FROM members WHERE city = 'Shanghai'",
            1,
            8,
            "this looks like SQL: memberdb speaks its segment language",
        ),
        ("COUNT ALL;\n  select 1", 2, 3, "this looks like SQL"),
        (
            "COUNT DID purchase IN LAST 3 MONTHS",
            1,
            30,
            "expected HOURS, DAYS or WEEKS, found 'MONTHS'",
        ),
        (
            "FIND ALL LIMIT ten",
            1,
            16,
            "expected a whole number, found 'ten'",
        ),
        ("COUNT\n  TAG 'a' AND AND", 2, 15, "expected a segment"),
        (
            "SHOW USERS",
            1,
            6,
            "expected ATTRIBUTES, TAGS, EVENTS, GROUPS, TRAITS, LOADS, IDENTIFIERS, EVENT name or ATTRIBUTE name, found 'USERS'",
        ),
        ("COUNT TAG 'unterminated", 1, 11, "quoted string"),
        (
            "DEFINE ATTRIBUTE points MERGE AVG",
            1,
            31,
            "expected LATEST, EARLIEST, MIN, MAX or SUM",
        ),
        (
            "DEFINE IDENTIFIER phone LIMIT one",
            1,
            31,
            "expected a whole number",
        ),
        ("COUNT ALL extra", 1, 11, "found 'extra'"),
    ];
    for (text, line, column, words) in cases {
        let e = parse_statement(text).expect_err(text);
        assert_eq!((e.line, e.column), (line, column), "{text}: {}", e.render());
        assert!(e.message.contains(words), "{text}: {}", e.message);
        assert!(
            !e.message.contains("kw_") && !e.message.contains("Rule"),
            "{}",
            e.message
        );
    }
}

#[test]
fn caret_rendering_under_the_offending_text() {
    let e = parse_statement("COUNT city = 'x' AND points >").unwrap_err();
    let rendered = e.render();
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines[1], "  COUNT city = 'x' AND points >");
    assert_eq!(
        lines[2].find('^'),
        Some(2 + 29),
        "the caret sits just past the last character"
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("COUNT {}ALL{}", "(".repeat(100_000), ")".repeat(100_000));
    let e = parse_statement(&deep).unwrap_err();
    assert!(
        e.message.contains(&format!("deeper than {MAX_NESTING}")),
        "{}",
        e.message
    );
    let ok = format!(
        "COUNT {}ALL{}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert!(parse_statement(&ok).is_ok());
    // parentheses inside strings do not count
    let quoted = format!("COUNT TAG '{}'", "(".repeat(1000));
    assert!(parse_statement(&quoted).is_ok());
}

/// Issue 11, finding 1: 1,740 `NOT`s (7 KB, under every byte limit) were accepted because only
/// parentheses counted, and the walkers of the tree overflowed a connection thread's stack.
#[test]
fn each_not_is_a_level_of_nesting() {
    let nots = |n: usize| format!("COUNT {}TAG 'vip'", "NOT ".repeat(n));
    assert!(parse_statement(&nots(MAX_NESTING)).is_ok());
    for n in [MAX_NESTING + 1, 1_740, 100_000] {
        let e = parse_statement(&nots(n)).unwrap_err();
        assert!(e.message.contains("each NOT"), "{}", e.message);
    }
    // parentheses and NOTs add up
    let half = MAX_NESTING / 2;
    let mixed = |extra: usize| {
        format!(
            "COUNT {}{}ALL{}",
            "NOT ".repeat(half + extra),
            "(".repeat(half),
            ")".repeat(half)
        )
    };
    assert!(parse_statement(&mixed(0)).is_ok());
    assert!(parse_statement(&mixed(1)).is_err());
    let alternating = format!(
        "COUNT {}TAG 'a'{}",
        "NOT (TAG 'a' AND ".repeat(40),
        ")".repeat(40)
    );
    assert!(parse_statement(&alternating).is_err(), "80 levels");
    // NOTs in WHERE count too
    let filter = |n: usize| format!("COUNT DID e WHERE {}amount > 1", "NOT ".repeat(n));
    assert!(parse_statement(&filter(MAX_NESTING)).is_ok());
    assert!(parse_statement(&filter(MAX_NESTING + 1)).is_err());
    // a flat list of any length is one level
    let flat = format!("COUNT {}ALL", "TAG 'a' OR NOT TAG 'b' OR ".repeat(5_000));
    assert!(parse_statement(&flat).is_ok());
    // siblings do not add up
    let siblings = format!(
        "COUNT ({}TAG 'a') AND ({}TAG 'b')",
        "NOT ".repeat(MAX_NESTING - 1),
        "NOT ".repeat(MAX_NESTING - 1)
    );
    assert!(parse_statement(&siblings).is_ok());
}

#[test]
fn a_caller_may_lower_the_limit_and_stored_text_may_go_deeper() {
    let text = format!("COUNT {}ALL", "NOT ".repeat(10));
    assert!(crate::parse_statement_nested(&text, 10).is_ok());
    assert!(crate::parse_statement_nested(&text, 9).is_err());
    let deep = format!("COUNT {}ALL", "NOT ".repeat(MAX_NESTING * 2));
    assert!(parse_statement(&deep).is_err());
    assert!(crate::parse_statement_nested(&deep, crate::MAX_STORED_NESTING).is_ok());
}

#[test]
fn refusing_a_huge_not_chain_needs_little_stack() {
    let text = format!("COUNT {}ALL", "NOT ".repeat(200_000));
    let refused = std::thread::Builder::new()
        .stack_size(128 << 10)
        .spawn(move || parse_statement(&text).is_err())
        .unwrap()
        .join()
        .unwrap();
    assert!(refused);
}

// ---------------------------------------------------------------- properties

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,8}",
        Just("会员等级".to_string()),
        Just("count".to_string()),
        Just("sum".to_string()),
        Just("first".to_string()),
        Just("distinct".to_string()),
        Just("bucket".to_string()),
        Just("with \"quotes\"".to_string()),
        Just("select".to_string()),
        Just("then".to_string()),
        Just("matching".to_string()),
        Just("funnel".to_string()),
        Just("step".to_string()),
        Just("touch".to_string()),
    ]
}

fn lit(kind: LiteralKind) -> Literal {
    Literal {
        kind,
        span: Span::default(),
    }
}

fn literal_strategy() -> impl Strategy<Value = Literal> {
    prop_oneof![
        "[a-zA-Z0-9 '上海-]{0,8}".prop_map(|s| lit(LiteralKind::Str(s))),
        any::<i64>().prop_map(|i| lit(LiteralKind::Int(i))),
        (-1.0e9f64..1.0e9).prop_map(|x| lit(LiteralKind::Float(x))),
        prop::sample::select(vec![1e-7, 2.0, -0.5, 1e300]).prop_map(|x| lit(LiteralKind::Float(x))),
        any::<bool>().prop_map(|b| lit(LiteralKind::Bool(b))),
    ]
}

fn n(text: String) -> Name {
    Name {
        text,
        span: Span::default(),
    }
}

fn test_strategy() -> impl Strategy<Value = Test> {
    let op = prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ]);
    prop_oneof![
        (op, literal_strategy()).prop_map(|(o, l)| Test::Cmp(o, l)),
        prop::collection::vec(literal_strategy(), 1..4).prop_map(Test::In),
        (literal_strategy(), literal_strategy()).prop_map(|(a, b)| Test::Between(a, b)),
        any::<bool>().prop_map(|negated| Test::Null { negated }),
    ]
}

fn comparison_strategy() -> impl Strategy<Value = Comparison> {
    (name_strategy(), test_strategy()).prop_map(|(name, test)| Comparison {
        name: n(name),
        test,
        span: Span::default(),
    })
}

fn prop_strategy() -> impl Strategy<Value = PropExpr> {
    comparison_strategy()
        .prop_map(PropExpr::Cmp)
        .prop_recursive(3, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4)
                    .prop_map(|v| PropExpr::And(v, Span::default())),
                prop::collection::vec(inner.clone(), 2..4)
                    .prop_map(|v| PropExpr::Or(v, Span::default())),
                inner.prop_map(|e| PropExpr::Not(Box::new(e), Span::default())),
            ]
        })
}

fn unit_strategy() -> impl Strategy<Value = Unit> {
    prop::sample::select(vec![Unit::Hours, Unit::Days, Unit::Weeks])
}

fn window_strategy() -> impl Strategy<Value = WindowExpr> {
    let date = || "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(|s| lit(LiteralKind::Str(s)));
    prop_oneof![
        (0u64..10_000, unit_strategy()).prop_map(|(amount, unit)| WindowExpr::Last {
            amount,
            unit,
            span: Span::default()
        }),
        (prop::option::of(date()), prop::option::of(date()))
            .prop_filter("one bound", |(a, b)| a.is_some() || b.is_some())
            .prop_map(|(since, before)| WindowExpr::Range {
                since,
                before,
                span: Span::default()
            }),
    ]
}

fn aggregate_strategy() -> impl Strategy<Value = ValueExpr> {
    let func = prop::sample::select(vec![
        AggFunc::Count,
        AggFunc::CountDistinct,
        AggFunc::CountDistinctDays,
        AggFunc::Sum,
        AggFunc::Avg,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::First,
        AggFunc::Last,
    ]);
    let window = prop::option::of(prop_oneof![
        window_strategy().prop_map(AggWindow::Window),
        (0u64..100, unit_strategy()).prop_map(|(amount, unit)| AggWindow::WithinAny {
            amount,
            unit,
            span: Span::default()
        }),
    ]);
    (
        func,
        name_strategy(),
        any::<bool>(),
        name_strategy(),
        prop::option::of(prop_strategy()),
        window,
    )
        .prop_map(|(func, prop, with_prop, event, filter, window)| {
            let prop = match func {
                AggFunc::Count | AggFunc::CountDistinctDays => None,
                AggFunc::First | AggFunc::Last if !with_prop => None,
                _ => Some(n(prop)),
            };
            ValueExpr::Aggregate(Box::new(Aggregate {
                func,
                prop,
                event: n(event),
                filter,
                window,
                span: Span::default(),
            }))
        })
}

/// A value that is not a bare name (which reads as an attribute comparison).
fn computed_strategy() -> impl Strategy<Value = ValueExpr> {
    let days_since = prop_oneof![
        aggregate_strategy(),
        name_strategy().prop_map(|a| ValueExpr::Name(n(a))),
    ]
    .prop_map(|v| ValueExpr::DaysSince(Box::new(v), Span::default()));
    let leaf = prop_oneof![aggregate_strategy(), days_since];
    leaf.prop_recursive(2, 4, 1, |inner| {
        (
            prop_oneof![inner, name_strategy().prop_map(|a| ValueExpr::Name(n(a)))],
            prop::collection::vec(-1000i64..1000, 1..4),
        )
            .prop_map(|(value, cuts)| ValueExpr::Bucket {
                value: Box::new(value),
                cuts: cuts.into_iter().map(|c| lit(LiteralKind::Int(c))).collect(),
                span: Span::default(),
            })
    })
}

fn did_strategy() -> impl Strategy<Value = Expr> {
    let count = prop::option::of((
        prop::sample::select(vec![
            CountKind::AtLeast,
            CountKind::AtMost,
            CountKind::Exactly,
        ]),
        0u64..1000,
    ));
    let window = prop::option::of(window_strategy());
    let then = prop::option::of((
        any::<bool>(),
        name_strategy(),
        prop::option::of(prop_strategy()),
        prop::option::of((0u64..100, unit_strategy())),
        prop::option::of(name_strategy()),
    ));
    (
        name_strategy(),
        prop::option::of(prop_strategy()),
        count,
        window,
        then,
    )
        .prop_map(|(event, filter, count, window, then)| {
            Expr::Did(
                DidExpr {
                    event: n(event),
                    filter,
                    count: count.map(|(k, c)| (k, c, Span::default())),
                    window,
                    then: then.map(|(negated, event, filter, within, matching)| {
                        Box::new(ThenExpr {
                            negated,
                            event: n(event),
                            filter,
                            within: within.map(|(a, u)| (a, u, Span::default())),
                            matching: matching.map(n),
                            span: Span::default(),
                        })
                    }),
                },
                Span::default(),
            )
        })
}

fn funnel_strategy() -> impl Strategy<Value = FunnelExpr> {
    let step =
        (name_strategy(), prop::option::of(prop_strategy())).prop_map(|(e, filter)| FunnelStep {
            event: n(e),
            filter,
            span: Span::default(),
        });
    let by = prop::option::of(prop_oneof![
        computed_strategy().prop_map(FunnelBy::Value),
        name_strategy().prop_map(|a| FunnelBy::Value(ValueExpr::Name(n(a)))),
        (name_strategy(), any::<bool>()).prop_map(|(p, first)| FunnelBy::Touch {
            prop: n(p),
            first,
            span: Span::default()
        }),
    ]);
    (
        prop::collection::vec(step, 1..5),
        (0u64..100, unit_strategy()),
        prop::option::of(window_strategy()),
        prop::option::of(expr_strategy()),
        by,
    )
        .prop_map(|(steps, (a, u), range, segment, by)| FunnelExpr {
            steps,
            within: (a, u, Span::default()),
            range,
            segment,
            by,
            span: Span::default(),
        })
}

fn expr_strategy() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        Just(Expr::All(Span::default())),
        "[a-z '摄]{0,6}".prop_map(|t| Expr::Tag(t, Span::default())),
        name_strategy().prop_map(|g| Expr::InGroup(n(g), Span::default())),
        comparison_strategy().prop_map(Expr::Cmp),
        did_strategy(),
        (computed_strategy(), test_strategy()).prop_map(|(value, test)| Expr::Value(
            ValueComparison {
                value,
                test,
                span: Span::default()
            }
        )),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| Expr::And(v, Span::default())),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| Expr::Or(v, Span::default())),
            inner.prop_map(|e| Expr::Not(Box::new(e), Span::default())),
        ]
    })
}

fn trait_body_strategy() -> impl Strategy<Value = TraitBody> {
    let value = prop_oneof![
        computed_strategy(),
        name_strategy().prop_map(|a| ValueExpr::Name(n(a)))
    ];
    let literal = prop_oneof![
        "[a-z_ ]{0,8}".prop_map(|t| lit(LiteralKind::Str(t))),
        (-1000i64..1000).prop_map(|i| lit(LiteralKind::Int(i))),
    ];
    prop_oneof![
        value.clone().prop_map(TraitBody::Value),
        (1u64..12, value, any::<bool>(), expr_strategy()).prop_map(
            |(buckets, value, descending, over)| TraitBody::Quantile {
                buckets,
                value,
                descending,
                over: Box::new(over),
                span: Span::default(),
            }
        ),
        (
            prop::collection::vec((expr_strategy(), literal.clone()), 1..4),
            prop::option::of(literal)
        )
            .prop_map(|(whens, otherwise)| TraitBody::Case {
                whens,
                otherwise,
                span: Span::default(),
            }),
    ]
}

fn statement_strategy() -> impl Strategy<Value = Statement> {
    let kind = prop_oneof![
        expr_strategy().prop_map(StatementKind::Count),
        (
            expr_strategy(),
            prop::collection::vec(name_strategy(), 0..3),
            prop::option::of(0u64..1000),
            prop::option::of(0u64..1000)
        )
            .prop_map(|(segment, show, limit, offset)| StatementKind::Find {
                segment,
                show_all: show.is_empty() && limit == Some(7),
                show: show.into_iter().map(n).collect(),
                limit,
                offset
            }),
        (
            expr_strategy(),
            prop::collection::vec(name_strategy(), 0..3),
            any::<bool>(),
            "[a-z/.' ]{1,12}"
        )
            .prop_map(|(segment, show, all, path)| StatementKind::Export {
                segment,
                show_all: all && show.is_empty(),
                show: show.into_iter().map(n).collect(),
                path: Literal {
                    kind: LiteralKind::Str(path),
                    span: Span::default()
                }
            }),
        (
            expr_strategy(),
            prop::collection::vec(
                prop_oneof![
                    (name_strategy(), prop::option::of(name_strategy())).prop_map(|(name, of)| {
                        ByColumn::Name {
                            name: n(name),
                            of: of.map(n),
                        }
                    }),
                    computed_strategy().prop_map(ByColumn::Value),
                ],
                1..4
            ),
            prop::option::of(0u64..100)
        )
            .prop_map(|(segment, by, top)| StatementKind::Breakdown { segment, by, top }),
        name_strategy().prop_map(|e| StatementKind::ShowEvent(n(e))),
        name_strategy().prop_map(|a| StatementKind::ShowAttribute(n(a))),
        (
            name_strategy(),
            expr_strategy(),
            prop::option::of(1u64..400)
        )
            .prop_map(|(name, segment, keep_days)| StatementKind::DefineGroup {
                name: n(name),
                segment,
                keep_days
            }),
        (name_strategy(), trait_body_strategy()).prop_map(|(name, body)| {
            StatementKind::DefineTrait {
                name: n(name),
                body,
            }
        }),
        name_strategy().prop_map(|t| StatementKind::DropTrait(n(t))),
        name_strategy().prop_map(|g| StatementKind::ShowGroup(n(g))),
        ("[A-Za-z0-9']{1,8}", name_strategy()).prop_map(|(m, g)| StatementKind::ExplainMember {
            member: lit(LiteralKind::Str(m)),
            group: n(g)
        }),
        name_strategy().prop_map(|g| StatementKind::DropGroup(n(g))),
        name_strategy().prop_map(|a| StatementKind::DropAttribute(n(a))),
        (name_strategy(), name_strategy()).prop_map(|(a, t)| StatementKind::AlterAttribute {
            name: n(a),
            type_name: n(t)
        }),
        expr_strategy().prop_map(StatementKind::Explain),
        prop::sample::select(vec![
            ShowWhat::Attributes,
            ShowWhat::Tags,
            ShowWhat::Events,
            ShowWhat::Groups,
            ShowWhat::Loads,
            ShowWhat::Traits
        ])
        .prop_map(StatementKind::Show),
        funnel_strategy().prop_map(StatementKind::Funnel),
        (
            funnel_strategy(),
            0u64..40,
            prop::collection::vec(name_strategy(), 0..3),
            prop::option::of(0u64..1000),
            prop::option::of(0u64..1000)
        )
            .prop_map(
                |(funnel, k, show, limit, offset)| StatementKind::FindFunnel {
                    funnel,
                    step: (k, Span::default()),
                    show_all: show.is_empty() && limit == Some(7),
                    show: show.into_iter().map(n).collect(),
                    limit,
                    offset
                }
            ),
    ];
    let as_of = prop::option::of(
        "2026-[01][0-9]-[0-2][0-9]T00:00:00Z".prop_map(|s| lit(LiteralKind::Str(s))),
    );
    let overlap = prop::option::of("[a-z]{1,8}\\.parquet".prop_map(|s| lit(LiteralKind::Str(s))));
    (kind, as_of, overlap).prop_map(|(kind, as_of, overlap)| {
        // OVERLAP follows the segment of COUNT, FIND, BREAKDOWN and EXPORT only.
        let takes = matches!(
            kind,
            StatementKind::Count(_)
                | StatementKind::Find { .. }
                | StatementKind::Breakdown { .. }
                | StatementKind::Export { .. }
        );
        Statement {
            kind,
            as_of,
            overlap: overlap.filter(|_| takes),
            span: Span::default(),
        }
    })
}

proptest! {
    #[test]
    fn parse_of_print_is_identity(stmt in statement_strategy()) {
        let text = stmt.to_string();
        let parsed = parse_statement(&text).map_err(|e| TestCaseError::fail(e.render()))?;
        prop_assert_eq!(parsed.without_spans(), stmt);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,60}") {
        let _ = parse_script(&text);
    }

    #[test]
    fn random_token_soup_never_panics(words in prop::collection::vec(prop::sample::select(vec![
        "COUNT", "FIND", "DID", "NOT", "AND", "OR", "(", ")", "'x'", "\"y\"", "IN", "LAST", "3",
        "DAYS", "WHERE", "=", "TAG", "GROUP", "BETWEEN", "IS", "NULL", ";", "AS", "OF", "-1.5", "--",
    ]), 0..30)) {
        let _ = parse_script(&words.join(" "));
    }
}
