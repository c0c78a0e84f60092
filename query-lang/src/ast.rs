//! The syntax tree of the segment language. Every node carries the byte span of its source
//! text, so the engine can point at the offending part of a statement.

/// A byte range `start..end` in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A name (attribute, event, property, group) with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    /// The name, unquoted.
    pub text: String,
    /// Where it was written.
    pub span: Span,
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum LiteralKind {
    /// `'text'`
    Str(String),
    /// `42`, `-7`
    Int(i64),
    /// `99.5`
    Float(f64),
    /// `TRUE` / `FALSE`
    Bool(bool),
}

/// A literal with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    /// The value.
    pub kind: LiteralKind,
    /// Where it was written.
    pub span: Span,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` (also `<>`)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The test of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// `op literal`
    Cmp(CmpOp, Literal),
    /// `IN (a, b, ...)`
    In(Vec<Literal>),
    /// `BETWEEN lo AND hi`
    Between(Literal, Literal),
    /// `IS NULL` (`false`) / `IS NOT NULL` (`true`)
    Null {
        /// `IS NOT NULL`
        negated: bool,
    },
}

/// `name test`: on an attribute, or on an event property inside `WHERE`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The attribute or property.
    pub name: Name,
    /// The test.
    pub test: Test,
    /// The whole comparison.
    pub span: Span,
}

/// A `WHERE` condition over event properties.
#[derive(Clone, Debug, PartialEq)]
pub enum PropExpr {
    /// One comparison.
    Cmp(Comparison),
    /// All of them.
    And(Vec<PropExpr>, Span),
    /// Any of them.
    Or(Vec<PropExpr>, Span),
    /// Not this one.
    Not(Box<PropExpr>, Span),
}

/// How many events a `DID` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountKind {
    /// `AT LEAST n TIMES`
    AtLeast,
    /// `AT MOST n TIMES`
    AtMost,
    /// `EXACTLY n TIMES`
    Exactly,
}

/// Unit of `IN LAST n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// `HOURS`
    Hours,
    /// `DAYS`
    Days,
    /// `WEEKS`
    Weeks,
}

/// The time window of a `DID`.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowExpr {
    /// `IN LAST n unit`
    Last {
        /// n
        amount: u64,
        /// unit
        unit: Unit,
        /// The whole clause.
        span: Span,
    },
    /// `SINCE t`, `BEFORE t`, or both.
    Range {
        /// `SINCE`
        since: Option<Literal>,
        /// `BEFORE`
        before: Option<Literal>,
        /// The whole clause.
        span: Span,
    },
}

/// `DID event [WHERE ...] [count] [window]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DidExpr {
    /// The event type.
    pub event: Name,
    /// The `WHERE` condition.
    pub filter: Option<PropExpr>,
    /// `AT LEAST` / `AT MOST` / `EXACTLY n TIMES`, with the span of the clause.
    pub count: Option<(CountKind, u64, Span)>,
    /// The time window.
    pub window: Option<WindowExpr>,
    /// `THEN [NOT] b ...`: the second part of a sequence (DESIGN section 10).
    pub then: Option<Box<ThenExpr>>,
}

/// `THEN [NOT] b [WHERE ...] [WITHIN n unit] [MATCHING p]`: the second part of a sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct ThenExpr {
    /// `THEN NOT`: no such event follows.
    pub negated: bool,
    /// The second event type.
    pub event: Name,
    /// The `WHERE` condition on the second events.
    pub filter: Option<PropExpr>,
    /// `WITHIN n unit`, with the span of the clause.
    pub within: Option<(u64, Unit, Span)>,
    /// `MATCHING p`: the two events agree on property `p`.
    pub matching: Option<Name>,
    /// From `THEN` to the end of the part.
    pub span: Span,
}

/// One step of a funnel: an event type and an optional `WHERE`.
#[derive(Clone, Debug, PartialEq)]
pub struct FunnelStep {
    /// The event type.
    pub event: Name,
    /// The `WHERE` condition on the step's events.
    pub filter: Option<PropExpr>,
    /// The whole step.
    pub span: Span,
}

/// How a funnel's members are split into buckets.
#[derive(Clone, Debug, PartialEq)]
pub enum FunnelBy {
    /// `BY <value>`: an attribute, trait or value expression.
    Value(ValueExpr),
    /// `BY p FIRST TOUCH` (`first`) / `BY p LAST TOUCH`: the property of the member's
    /// earliest / latest entry event in the range.
    Touch {
        /// The property.
        prop: Name,
        /// `FIRST TOUCH`
        first: bool,
        /// The whole clause after `BY`.
        span: Span,
    },
}

/// `FUNNEL s1, s2, ... WITHIN n unit [range] [FOR segment] [BY ...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FunnelExpr {
    /// The steps, in order.
    pub steps: Vec<FunnelStep>,
    /// `WITHIN n unit`: the longest time from an entry to its last step.
    pub within: (u64, Unit, Span),
    /// The entries' window (`IN LAST`, `SINCE` / `BEFORE`).
    pub range: Option<WindowExpr>,
    /// `FOR segment`: the members looked at.
    pub segment: Option<Expr>,
    /// `BY ...`: the buckets.
    pub by: Option<FunnelBy>,
    /// The whole funnel.
    pub span: Span,
}

/// An aggregate function over a member's events (DESIGN section 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    /// `COUNT(e ...)`: matching events.
    Count,
    /// `COUNT(DISTINCT p OF e ...)`: distinct non-NULL values of `p`.
    CountDistinct,
    /// `COUNT(DISTINCT DAYS OF e ...)`: distinct UTC days with a matching event.
    CountDistinctDays,
    /// `SUM(p OF e ...)`
    Sum,
    /// `AVG(p OF e ...)`
    Avg,
    /// `MIN(p OF e ...)`
    Min,
    /// `MAX(p OF e ...)`
    Max,
    /// `FIRST([p OF] e ...)`: the first event's value of `p` (its time without `p`).
    First,
    /// `LAST([p OF] e ...)`: the last event's value of `p` (its time without `p`).
    Last,
}

/// Which events an aggregate reads: a `DID` window, or any interval of a length.
#[derive(Clone, Debug, PartialEq)]
pub enum AggWindow {
    /// `IN LAST`, `SINCE`, `BEFORE`, as for `DID`.
    Window(WindowExpr),
    /// `WITHIN ANY n unit`: some interval `[t, t + n units)` (sliding).
    WithinAny {
        /// n
        amount: u64,
        /// unit
        unit: Unit,
        /// The whole clause.
        span: Span,
    },
}

/// `FUNC([DISTINCT] [p OF | DAYS OF] event [WHERE ...] [window])`.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    /// The function.
    pub func: AggFunc,
    /// The property (`p OF`): required by `COUNT(DISTINCT p ...)`, `SUM`, `AVG`, `MIN`,
    /// `MAX`; optional for `FIRST` / `LAST`; absent for `COUNT`.
    pub prop: Option<Name>,
    /// The event type.
    pub event: Name,
    /// The `WHERE` condition on the events.
    pub filter: Option<PropExpr>,
    /// The events' window.
    pub window: Option<AggWindow>,
    /// The whole aggregate.
    pub span: Span,
}

/// A value computed per member: wherever an attribute can be compared.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueExpr {
    /// An attribute, by name.
    Name(Name),
    /// An aggregate over the member's events.
    Aggregate(Box<Aggregate>),
    /// `DAYS SINCE x`: whole days from `x` to *now*.
    DaysSince(Box<ValueExpr>, Span),
    /// `BUCKET(x, c1, ..., cm)`: 1 + the number of cut points `<= x`.
    Bucket {
        /// The value bucketed.
        value: Box<ValueExpr>,
        /// The cut points, ascending.
        cuts: Vec<Literal>,
        /// The whole expression.
        span: Span,
    },
}

impl ValueExpr {
    /// The source span of the expression.
    pub fn span(&self) -> Span {
        match self {
            ValueExpr::Name(n) => n.span,
            ValueExpr::Aggregate(a) => a.span,
            ValueExpr::DaysSince(_, s) | ValueExpr::Bucket { span: s, .. } => *s,
        }
    }
}

/// `value test`: a computed value compared.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueComparison {
    /// The value (never a bare name: that is a [`Comparison`]).
    pub value: ValueExpr,
    /// The test.
    pub test: Test,
    /// The whole comparison.
    pub span: Span,
}

/// What a trait computes per member.
#[derive(Clone, Debug, PartialEq)]
pub enum TraitBody {
    /// A value expression (an attribute, an earlier trait, an aggregate, ...).
    Value(ValueExpr),
    /// `QUANTILE(k, x [DESC]) OVER segment`: the member's score 1..k among the members of
    /// the segment with a value.
    Quantile {
        /// k, the number of scores.
        buckets: u64,
        /// The value ranked.
        value: ValueExpr,
        /// `DESC`: the largest values get score 1.
        descending: bool,
        /// The members ranked.
        over: Box<Expr>,
        /// The whole expression.
        span: Span,
    },
    /// `CASE WHEN seg THEN literal ... [ELSE literal] END`: the first segment holding the
    /// member gives its value.
    Case {
        /// `WHEN seg THEN literal`, in order.
        whens: Vec<(Expr, Literal)>,
        /// `ELSE literal`
        otherwise: Option<Literal>,
        /// The whole expression.
        span: Span,
    },
}

/// One column of `BREAKDOWN ... BY`.
#[derive(Clone, Debug, PartialEq)]
pub enum ByColumn {
    /// An attribute (or trait), or with `of` a property of an event type.
    Name {
        /// The attribute, or the property.
        name: Name,
        /// `OF event`: `name` is a property of this event type.
        of: Option<Name>,
    },
    /// A computed value.
    Value(ValueExpr),
}

/// A segment expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `ALL`
    All(Span),
    /// `TAG 'name'`
    Tag(String, Span),
    /// `IN GROUP name`
    InGroup(Name, Span),
    /// An attribute comparison.
    Cmp(Comparison),
    /// A computed value compared (`SUM(amount OF purchase) >= 1000`).
    Value(ValueComparison),
    /// `DID ...`
    Did(DidExpr, Span),
    /// `COUNT(IDENTIFIER type) op n`; `HAS IDENTIFIER type` is `>= 1`.
    Identifiers {
        /// The identifier type.
        id_type: Name,
        /// The comparison.
        op: CmpOp,
        /// The count compared with.
        count: u64,
        /// The whole predicate.
        span: Span,
    },
    /// `a AND b AND ...`
    And(Vec<Expr>, Span),
    /// `a OR b OR ...`
    Or(Vec<Expr>, Span),
    /// `NOT a`
    Not(Box<Expr>, Span),
}

impl Expr {
    /// The source span of the expression.
    pub fn span(&self) -> Span {
        match self {
            Expr::All(s) | Expr::Tag(_, s) | Expr::InGroup(_, s) | Expr::Did(_, s) => *s,
            Expr::And(_, s) | Expr::Or(_, s) | Expr::Not(_, s) => *s,
            Expr::Cmp(c) => c.span,
            Expr::Value(v) => v.span,
            Expr::Identifiers { span, .. } => *span,
        }
    }
}

/// What `SHOW` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowWhat {
    /// `SHOW ATTRIBUTES`
    Attributes,
    /// `SHOW TAGS`
    Tags,
    /// `SHOW EVENTS`
    Events,
    /// `SHOW GROUPS`
    Groups,
    /// `SHOW LOADS`
    Loads,
    /// `SHOW TRAITS`
    Traits,
    /// `SHOW IDENTIFIERS`
    Identifiers,
}

/// How an attribute's values combine when profiles merge (`DEFINE ATTRIBUTE a MERGE r`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeRuleName {
    /// `LATEST`
    Latest,
    /// `EARLIEST`
    Earliest,
    /// `MIN`
    Min,
    /// `MAX`
    Max,
    /// `SUM`
    Sum,
}

impl MergeRuleName {
    /// The rule as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeRuleName::Latest => "LATEST",
            MergeRuleName::Earliest => "EARLIEST",
            MergeRuleName::Min => "MIN",
            MergeRuleName::Max => "MAX",
            MergeRuleName::Sum => "SUM",
        }
    }
}

/// A statement without its `AS OF`.
#[derive(Clone, Debug, PartialEq)]
pub enum StatementKind {
    /// `COUNT seg`, or a segment alone.
    Count(Expr),
    /// `FIND seg [SHOW a, b | SHOW *] [LIMIT n] [OFFSET n]`
    Find {
        /// The segment.
        segment: Expr,
        /// Attributes to show.
        show: Vec<Name>,
        /// `SHOW *`: every attribute.
        show_all: bool,
        /// `LIMIT`
        limit: Option<u64>,
        /// `OFFSET`
        offset: Option<u64>,
    },
    /// `BREAKDOWN seg BY column, ... [TOP n]`
    Breakdown {
        /// The segment.
        segment: Expr,
        /// The columns (at least one): a row per combination of their values.
        by: Vec<ByColumn>,
        /// `TOP`
        top: Option<u64>,
    },
    /// `DEFINE GROUP name AS seg [KEEP CHANGES n DAYS]`
    DefineGroup {
        /// Group name.
        name: Name,
        /// Definition.
        segment: Expr,
        /// `KEEP CHANGES n DAYS`: how long its change stream keeps entries.
        keep_days: Option<u64>,
    },
    /// `DROP GROUP name`
    DropGroup(Name),
    /// `DEFINE IDENTIFIER name [LIMIT n] [PRIORITY p] [BLOCK 'v', ...]`
    DefineIdentifier {
        /// The type's name.
        name: Name,
        /// `LIMIT` (default 1).
        limit: Option<u64>,
        /// `PRIORITY` (default: after every declared type).
        priority: Option<u64>,
        /// `BLOCK`: values ignored.
        block: Vec<Literal>,
    },
    /// `DEFINE ATTRIBUTE name MERGE rule`
    DefineMerge {
        /// The attribute.
        attribute: Name,
        /// The rule.
        rule: MergeRuleName,
    },
    /// `DEFINE TRAIT name AS value | QUANTILE ... | CASE ...`
    DefineTrait {
        /// Trait name.
        name: Name,
        /// What it computes.
        body: TraitBody,
    },
    /// `DROP TRAIT name`
    DropTrait(Name),
    /// `ALTER ATTRIBUTE name TYPE type`
    AlterAttribute {
        /// The attribute.
        name: Name,
        /// The type's name as written (`string`, `integer`, ...).
        type_name: Name,
    },
    /// `DROP ATTRIBUTE name`
    DropAttribute(Name),
    /// `EXPORT seg [SHOW a, b | SHOW *] TO 'file'`
    Export {
        /// The segment.
        segment: Expr,
        /// Attributes to write besides `member_id`.
        show: Vec<Name>,
        /// `SHOW *`: every attribute.
        show_all: bool,
        /// The file: `.parquet`, `.csv` or `.jsonl`.
        path: Literal,
    },
    /// `EXPLAIN seg`
    Explain(Expr),
    /// `EXPLAIN SQL <statement>`: the statement (COUNT, FIND, BREAKDOWN, a segment alone)
    /// compiled to ClickHouse SQL instead of run.
    ExplainSql(Box<StatementKind>),
    /// `EXPLAIN MEMBER 'id' IN GROUP name`: why one member is in a group or not, and when
    /// that changes.
    ExplainMember {
        /// The member id, as written.
        member: Literal,
        /// The group.
        group: Name,
    },
    /// `SHOW GROUP name`: definition, size, position, retention, next time-driven change.
    ShowGroup(Name),
    /// `SHOW ATTRIBUTES | TAGS | EVENTS | GROUPS | LOADS`
    Show(ShowWhat),
    /// `SHOW EVENT name`: its properties, their types, NULL counts and top values.
    ShowEvent(Name),
    /// `SHOW ATTRIBUTE name`: its top values.
    ShowAttribute(Name),
    /// `FUNNEL ...`: members per step.
    Funnel(FunnelExpr),
    /// `FIND FUNNEL ... AT STEP k [SHOW ...] [LIMIT n] [OFFSET n]`: the members whose
    /// furthest step is `k`.
    FindFunnel {
        /// The funnel.
        funnel: FunnelExpr,
        /// `k` (1-based), with the span of `AT STEP k`.
        step: (u64, Span),
        /// Attributes to show.
        show: Vec<Name>,
        /// `SHOW *`: every attribute.
        show_all: bool,
        /// `LIMIT`
        limit: Option<u64>,
        /// `OFFSET`
        offset: Option<u64>,
    },
}

/// One statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// What it does.
    pub kind: StatementKind,
    /// `AS OF '<timestamp>'`: the pinned *now*, as written.
    pub as_of: Option<Literal>,
    /// `OVERLAP 'pool.parquet'` after the segment of COUNT, BREAKDOWN (FIND and EXPORT
    /// parse it, to be refused): counted among the members whose key is in another
    /// party's pool of keyed hashes (DESIGN section 12).
    pub overlap: Option<Literal>,
    /// The whole statement.
    pub span: Span,
}
