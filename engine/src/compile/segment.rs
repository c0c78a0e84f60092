//! A bound plan as ClickHouse SQL: every part of the segment a `WITH` entry holding one
//! `groupBitmap` state of member rows, with a comment naming the part; `AND`, `OR` and
//! `NOT` become `bitmapAnd`, `bitmapOr` and `bitmapAndnot` of the live members' bitmap.
//! Equal parts are written once.

use std::collections::HashMap;

use super::Tables;
use super::literal::{ident, instant, string, test};
use crate::error::{Error, Result};
use crate::plan::{Node, Op, Plan, Source};
use crate::segment::{Did, Frequency, PropFilter, Segment, Window};
use crate::state::{Named, State};

/// The `WITH` entries of a statement, in the order they are written.
pub(crate) struct Parts<'s> {
    state: &'s State,
    tables: &'s Tables,
    now: i64,
    entries: Vec<Entry>,
    /// Entry name by body: a part met twice is written once.
    named: HashMap<String, String>,
    /// Groups being inlined (a definition reads only groups defined before it, so this
    /// only guards against a damaged catalog).
    inlining: Vec<String>,
}

struct Entry {
    name: String,
    comment: String,
    body: String,
}

/// The name of the live members' entry.
pub(crate) const UNIVERSE: &str = "live_members";

impl<'s> Parts<'s> {
    pub(crate) fn new(state: &'s State, tables: &'s Tables, now: i64) -> Self {
        let mut parts = Parts {
            state,
            tables,
            now,
            entries: Vec::new(),
            named: HashMap::new(),
            inlining: Vec::new(),
        };
        let body = format!(
            "SELECT groupBitmapState(member_row) AS b FROM {} WHERE live",
            tables.members
        );
        parts.entries.push(Entry {
            name: UNIVERSE.to_string(),
            comment: "the live members: the universe of NOT".to_string(),
            body: body.clone(),
        });
        parts.named.insert(body, UNIVERSE.to_string());
        parts
    }

    /// The entry holding the members of `plan` (live members only).
    pub(crate) fn segment(&mut self, plan: &Plan<'_>) -> Result<String> {
        let root = self.node(&plan.root)?;
        if root == UNIVERSE {
            return Ok(root);
        }
        let comment = format!("the segment: {}", plan.root.source_text());
        self.add(
            "segment",
            comment,
            format!(
                "SELECT bitmapAnd({}, {}) AS b",
                scalar(UNIVERSE),
                scalar(&root)
            ),
        )
    }

    /// The `WITH` clause.
    pub(crate) fn with_clause(&self) -> String {
        let entries: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                let comment = e.comment.replace('\n', " ");
                format!("    -- {comment}\n    {} AS ({})", e.name, e.body)
            })
            .collect();
        format!("WITH\n{}", entries.join(",\n"))
    }

    /// Adds an entry (or finds the equal one) and returns its name.
    fn add(&mut self, kind: &str, comment: String, body: String) -> Result<String> {
        if let Some(name) = self.named.get(&body) {
            return Ok(name.clone());
        }
        let name = format!("{kind}_{}", self.entries.len());
        self.entries.push(Entry {
            name: name.clone(),
            comment,
            body: body.clone(),
        });
        self.named.insert(body, name.clone());
        Ok(name)
    }

    fn node(&mut self, node: &Node<'_>) -> Result<String> {
        match node.source {
            Source::Segment(segment) if is_leaf(segment) => self.leaf(segment),
            _ => self.combination(node),
        }
    }

    /// `AND`, `OR` and `NOT` as the binder shaped them.
    fn combination(&mut self, node: &Node<'_>) -> Result<String> {
        let comment = node.source_text();
        match &node.op {
            Op::Universe => Ok(UNIVERSE.to_string()),
            Op::Nothing => self.add(
                "none",
                comment,
                "SELECT bitmapBuild(emptyArrayUInt32()) AS b".to_string(),
            ),
            Op::And { pos, neg } => {
                let pos = pos
                    .iter()
                    .map(|n| self.node(n))
                    .collect::<Result<Vec<_>>>()?;
                let neg = neg
                    .iter()
                    .map(|n| self.node(n))
                    .collect::<Result<Vec<_>>>()?;
                let mut expr = fold("bitmapAnd", &pos);
                if !neg.is_empty() {
                    expr = format!("bitmapAndnot({expr}, {})", fold("bitmapOr", &neg));
                }
                let kind = if pos == [UNIVERSE] && neg.len() == 1 {
                    "not"
                } else {
                    "and"
                };
                self.add(kind, comment, format!("SELECT {expr} AS b"))
            }
            Op::Or(parts) => {
                let parts = parts
                    .iter()
                    .map(|n| self.node(n))
                    .collect::<Result<Vec<_>>>()?;
                self.add(
                    "or",
                    comment,
                    format!("SELECT {} AS b", fold("bitmapOr", &parts)),
                )
            }
            Op::Stored(_) | Op::Computed { .. } => Err(Error::Internal(format!(
                "compile: a stored or computed operator outside a leaf ({comment})"
            ))),
        }
    }

    fn leaf(&mut self, segment: &Segment) -> Result<String> {
        let comment = segment.to_string();
        match segment {
            Segment::All => Ok(UNIVERSE.to_string()),
            Segment::Tag(tag) => {
                let body = format!(
                    "SELECT groupBitmapState(member_row) AS b FROM {} WHERE tag = {}",
                    self.tables.tags,
                    string(tag)
                );
                self.add("tag", comment, body)
            }
            Segment::Attr { name, predicate } => {
                let attr = match self.state.require_named(name)? {
                    Named::Attribute(a) => a,
                    Named::Trait(_) => {
                        return Err(refused(
                            &comment,
                            format!("'{name}' is a computed trait; traits do not compile yet"),
                        ));
                    }
                };
                let condition = test(&ident(name), attr.column.data_type(), predicate, name)?;
                let body = format!(
                    "SELECT groupBitmapState(member_row) AS b FROM {} WHERE {condition}",
                    self.tables.members
                );
                self.add("attr", comment, body)
            }
            Segment::Did(did) => {
                let body = self.did(did)?;
                self.add("did", comment, body)
            }
            Segment::InGroup(name) => self.group(name, comment),
            Segment::Sequence(_) => Err(refused(
                &comment,
                "sequences (THEN) do not compile yet".to_string(),
            )),
            Segment::Value { .. } => Err(refused(
                &comment,
                "computed values (aggregates, DAYS SINCE, BUCKET) do not compile yet".to_string(),
            )),
            Segment::Identifiers { .. } => Err(refused(
                &comment,
                "identifier counts read the identity graph, which is not in the Parquet files \
                 (exact identity replay does not compile)"
                    .to_string(),
            )),
            Segment::And(_) | Segment::Or(_) | Segment::Not(_) => Err(Error::Internal(
                "compile: a combination taken for a leaf".into(),
            )),
        }
    }

    /// A group, its definition bound at the same *now* and written in place.
    fn group(&mut self, name: &str, comment: String) -> Result<String> {
        let group = self.state.groups.require(name)?;
        if self.inlining.iter().any(|g| g == name) {
            return Err(Error::Internal(format!("group '{name}' reads itself")));
        }
        let plan = crate::plan::bind(self.state, &group.definition, self.now, None)?;
        self.inlining.push(name.to_string());
        let inner = self.node(&plan.root);
        self.inlining.pop();
        let inner = inner?;
        // the group's own entry, named for it, so the SQL says where its definition is
        let body = format!("SELECT b FROM {inner}");
        self.add(
            &format!("group_{}", simple(name)),
            format!("{comment}: {}", group.definition),
            body,
        )
    }

    /// `DID`: the events of the type that pass the window and the filter, per member,
    /// counted when a frequency is asked.
    fn did(&self, did: &Did) -> Result<String> {
        let mut conditions = vec![format!("event = {}", string(&did.event))];
        if let Some(window) = &did.window {
            conditions.extend(self.window(window)?);
        }
        if let Some(filter) = &did.filter {
            conditions.push(self.filter(filter)?);
        }
        let events = self.tables.events.as_str();
        let condition = conditions.join(" AND ");
        Ok(match did.frequency {
            None => {
                format!("SELECT groupBitmapState(member_row) AS b FROM {events} WHERE {condition}")
            }
            Some(frequency) => {
                let having = match frequency {
                    Frequency::AtLeast(n) => format!("count() >= {n}"),
                    Frequency::AtMost(n) => format!("count() <= {n}"),
                    Frequency::Exactly(n) => format!("count() = {n}"),
                };
                format!(
                    "SELECT groupBitmapState(member_row) AS b FROM (SELECT member_row FROM \
                     {events} WHERE {condition} GROUP BY member_row HAVING {having})"
                )
            }
        })
    }

    /// The window's bounds on `ts`; a bound before 1900 or after 2299 (outside what
    /// ClickHouse's times hold, so no event read there lies beyond it) is left out.
    fn window(&self, window: &Window) -> Result<Vec<String>> {
        let (lo, hi) = crate::segment::resolve_window(window, self.now)?;
        let mut out = Vec::new();
        match window {
            // now - span < ts <= now
            Window::Last { .. } => {
                if let Some(t) = instant(lo - 1) {
                    out.push(format!("ts > {t}"));
                }
                if let Some(t) = instant(hi - 1) {
                    out.push(format!("ts <= {t}"));
                }
            }
            Window::Range { .. } => {
                if lo != i64::MIN
                    && let Some(t) = instant(lo)
                {
                    out.push(format!("ts >= {t}"));
                }
                if hi != i64::MAX
                    && let Some(t) = instant(hi)
                {
                    out.push(format!("ts < {t}"));
                }
            }
        }
        Ok(out)
    }

    /// A `WHERE` over event properties. Comparisons are NULL on NULL, which `AND` and `OR`
    /// treat as false; under `NOT` a NULL is made false first, so `NOT` selects it.
    fn filter(&self, filter: &PropFilter) -> Result<String> {
        Ok(match filter {
            PropFilter::Prop { name, predicate } => {
                let data_type = *self.state.events.props.get(name).ok_or_else(|| {
                    Error::unknown(
                        "event property",
                        name,
                        self.state.events.props.keys().map(String::as_str),
                    )
                })?;
                format!("({})", test(&ident(name), data_type, predicate, name)?)
            }
            PropFilter::And(parts) if parts.is_empty() => "1".to_string(),
            PropFilter::Or(parts) if parts.is_empty() => "0".to_string(),
            PropFilter::And(parts) => format!(
                "({})",
                parts
                    .iter()
                    .map(|p| self.filter(p))
                    .collect::<Result<Vec<_>>>()?
                    .join(" AND ")
            ),
            PropFilter::Or(parts) => format!(
                "({})",
                parts
                    .iter()
                    .map(|p| self.filter(p))
                    .collect::<Result<Vec<_>>>()?
                    .join(" OR ")
            ),
            PropFilter::Not(inner) => format!("(NOT ifNull({}, 0))", self.filter(inner)?),
        })
    }
}

/// Segments the binder shapes by itself (into stored bitmaps, bins, days): compiled from
/// what they say, not from their operators.
fn is_leaf(segment: &Segment) -> bool {
    !matches!(segment, Segment::And(_) | Segment::Or(_) | Segment::Not(_))
}

/// The entry `name`'s bitmap, as a scalar subquery (ClickHouse computes each once).
pub(crate) fn scalar(name: &str) -> String {
    format!("(SELECT b FROM {name})")
}

/// `f(f(a, b), c)` of the entries `names`.
fn fold(f: &str, names: &[String]) -> String {
    let mut parts = names.iter().map(|n| scalar(n));
    let first = parts.next().unwrap_or_else(|| scalar(UNIVERSE));
    parts.fold(first, |acc, p| format!("{f}({acc}, {p})"))
}

/// A name reduced to what an entry's name may hold.
fn simple(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The error of a part that does not compile, naming it.
pub(crate) fn refused(part: &str, why: String) -> Error {
    Error::InvalidSegment(format!("does not compile to ClickHouse SQL: {part}: {why}"))
}
