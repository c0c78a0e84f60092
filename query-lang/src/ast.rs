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
    /// `DID ...`
    Did(DidExpr, Span),
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
    /// `BREAKDOWN seg BY attr [OF event] [TOP n]`
    Breakdown {
        /// The segment.
        segment: Expr,
        /// The attribute, or with `of` the event property.
        by: Name,
        /// `OF event`: `by` is a property of this event type.
        of: Option<Name>,
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
}

/// One statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// What it does.
    pub kind: StatementKind,
    /// `AS OF '<timestamp>'`: the pinned *now*, as written.
    pub as_of: Option<Literal>,
    /// The whole statement.
    pub span: Span,
}
