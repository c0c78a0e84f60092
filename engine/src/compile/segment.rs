//! A bound plan as ClickHouse SQL. Each leaf of the segment is one `groupBitmap` state of
//! member rows, and the leaves that read one file are computed in one pass over it
//! (`groupBitmapStateIf`, one column per leaf): the members file (with the live members,
//! the universe of `NOT`), the tags file, the events file; a `DID` with a count groups its
//! events by member in its own entry; values of members' events (aggregates) are columns
//! of one pass per set of events read, grouped by member. `AND`, `OR` and `NOT` are
//! `bitmapAnd`, `bitmapOr` and `bitmapAndnot` of those columns, each a named expression
//! with a comment naming the part of the segment. Equal parts are written once.

use std::collections::HashMap;

use super::Tables;
use super::literal::{ident, instant, string, test};
use crate::attributes::Attribute;
use crate::computed::ValueExpr;
use crate::error::{Error, Result};
use crate::plan::{Node, Op, Plan, Source};
use crate::segment::{CmpOp, Did, Frequency, Predicate, PropFilter, Segment, Window};
use crate::state::{Named, State};
use crate::value::Value;

/// The parts of a statement's segment, gathered per file, then written as SQL.
pub(crate) struct Parts<'s> {
    pub(super) state: &'s State,
    pub(super) tables: &'s Tables,
    pub(super) now: i64,
    /// Leaves over the members file, the tags file, the events file: (name, comment,
    /// condition) each, computed in one pass per file.
    members: Vec<Leaf>,
    tags: Vec<Leaf>,
    events: Vec<Leaf>,
    /// Parts over a relation of their own (a `DID` with a count, a computed value, a
    /// sequence): (name, comment, the relation, the bitmap aggregate over it).
    relations: Vec<Leaf>,
    /// Per-member aggregates of the events a condition selects, one pass each, and the
    /// parts read from them.
    passes: Vec<Pass>,
    /// Combinations: (name, comment, expression over the names before it).
    combinations: Vec<Leaf>,
    /// Name by what it computes: a part met twice is written once.
    named: HashMap<String, String>,
    /// Combinations `op(x, y)` as (op, x, y): COUNT reads them by the fused cardinality
    /// (`bitmapAndnotCardinality(x, y)`), without building the result.
    counted: HashMap<String, (&'static str, String, String)>,
    /// Groups being inlined (a definition reads only groups defined before it, so this
    /// only guards against a damaged catalog).
    pub(super) inlining: Vec<String>,
    /// Parts the statement's output reads besides the segment (a `CASE` trait's `WHEN`s):
    /// the `segment` entry holds them as columns.
    pub(super) exports: Vec<String>,
}

struct Leaf {
    name: String,
    comment: String,
    sql: String,
    /// Over a relation: the aggregate giving the part's bitmap.
    agg: String,
}

/// One `GROUP BY member_row` pass over the events `conditions` select: every aggregate
/// over those events (and expression of them) is a column of it, and every part testing
/// one is a bitmap over it, so values of the same events cost one pass, not one each.
struct Pass {
    conditions: String,
    /// (expression, its column's name), in order: a column reads only those before it.
    columns: Vec<(String, String)>,
    /// Parts over the pass: `sql` is the condition on its columns.
    leaves: Vec<Leaf>,
}

/// `items` (each of one or more lines) indented by `by`, one after another.
fn indent(items: &[String], by: &str) -> String {
    items
        .iter()
        .map(|item| format!("{by}{}", item.replace('\n', &format!("\n{by}"))))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// A comment's text on one line.
fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// The name of pass `i`'s entry (and the prefix of its columns' names).
fn pass_name(i: usize) -> String {
    format!("pass_{}", i + 1)
}

/// The name of the live members' column.
pub(crate) const UNIVERSE: &str = "live_members";
/// The name of the entry holding the segment's members as `b`.
pub(crate) const SEGMENT: &str = "segment";

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Members,
    Tags,
    Events,
    /// `sql` is a relation with a `member_row` column, read by the aggregate given.
    Relation,
    /// `sql` is a condition on the columns of the pass (its index).
    Pass(usize),
    Combination,
}

impl<'s> Parts<'s> {
    pub(crate) fn new(state: &'s State, tables: &'s Tables, now: i64) -> Self {
        Parts {
            state,
            tables,
            now,
            members: Vec::new(),
            tags: Vec::new(),
            events: Vec::new(),
            relations: Vec::new(),
            passes: Vec::new(),
            combinations: Vec::new(),
            named: HashMap::new(),
            counted: HashMap::new(),
            inlining: Vec::new(),
            exports: Vec::new(),
        }
    }

    /// Gathers `plan`'s parts; returns the expression of its live members (for
    /// [`Parts::with_clause`], once what the output reads is gathered too).
    pub(crate) fn root(&mut self, plan: &Plan<'_>) -> Result<String> {
        let root = self.node(&plan.root)?;
        // Rows that are not live (erased, merged into another profile) may hold values a
        // leaf selects: the answer is then cut to the live ones. Without such rows the live
        // members are built only for a NOT or ALL that needs them.
        let members = &self.state.members;
        let dead_rows = members.live().len() != members.len() as u64;
        if root == UNIVERSE || !dead_rows {
            return Ok(root);
        }
        let live = format!("bitmapAnd({UNIVERSE}, {root})");
        let counted = ("bitmapAnd", UNIVERSE.to_string(), root);
        self.counted.insert(live.clone(), counted);
        Ok(live)
    }

    /// The `WITH` clause: one entry per file read, one per part over its own relation, and
    /// the segment (`result` as `b`, and the parts exported for the output).
    pub(crate) fn with_clause(&self, segment: &str, result: &str) -> String {
        let (mut entries, aliases, from) = self.gathered(result);
        let body = match aliases.is_empty() {
            true => String::new(),
            false => format!("WITH\n{}\n    ", indent(&aliases, "        ")),
        };
        let selected: Vec<String> = std::iter::once(format!("{result} AS b"))
            .chain(self.exports.iter().cloned())
            .collect();
        entries.push(format!(
            "    -- the segment: {}\n    {SEGMENT} AS ({body}SELECT {}{from})",
            one_line(segment),
            selected.join(", ")
        ));
        format!("WITH\n{}", entries.join(",\n"))
    }

    /// The query counting `result`: the parts in one `WITH` clause and the count read from
    /// them in the same scope (a bitmap passed through a `WITH` entry's column is copied:
    /// at 10M members, 25 ms of a 30 ms COUNT), by the fused cardinality
    /// (`bitmapAndnotCardinality(x, y)`) when `result` combines two or more.
    pub(crate) fn count_query(&self, segment: &str, result: &str) -> String {
        let (entries, aliases, from) = self.gathered(result);
        let count = match self.counted.get(result) {
            Some((op, x, y)) => format!("{op}Cardinality({x}, {y})"),
            None => format!("bitmapCardinality({result})"),
        };
        let mut with = entries;
        if !aliases.is_empty() {
            with.push(format!(
                "    -- the segment: {}\n{}",
                one_line(segment),
                indent(&aliases, "    ")
            ));
        }
        match with.is_empty() {
            true => format!("SELECT {count} AS count{from}"),
            false => format!("WITH\n{}\nSELECT {count} AS count{from}", with.join(",\n")),
        }
    }

    /// The entries of the `WITH` clause (the passes over the files and relations), the
    /// combinations (with the live members when read) as `-- comment\nexpr AS name`
    /// aliases, and the `FROM` of the entries, for a segment whose members are `result`.
    fn gathered(&self, result: &str) -> (Vec<String>, Vec<String>, String) {
        let columns = |leaves: &[Leaf]| -> String {
            leaves
                .iter()
                .map(|l| {
                    format!(
                        "        -- {}\n        groupBitmapStateIf(member_row, {}) AS {}",
                        one_line(&l.comment),
                        l.sql,
                        l.name
                    )
                })
                .collect::<Vec<_>>()
                .join(",\n")
        };
        let mut entries = Vec::new();
        let mut from = Vec::new();
        let uses_universe = result.contains(UNIVERSE)
            || self.exports.iter().any(|e| e == UNIVERSE)
            || self.combinations.iter().any(|c| c.sql.contains(UNIVERSE));
        // the live members' stored state, when the tables have one
        let live = self.stored("live", "").filter(|_| uses_universe);
        if (uses_universe && live.is_none()) || !self.members.is_empty() {
            let mut parts = Vec::new();
            if uses_universe && live.is_none() {
                parts.push(format!(
                    "        -- the live members (the universe of NOT)\n        \
                     groupBitmapStateIf(member_row, live) AS {UNIVERSE}"
                ));
            }
            if !self.members.is_empty() {
                parts.push(columns(&self.members));
            }
            entries.push(format!(
                "    -- one pass over the members\n    member_sets AS (SELECT\n{}\n    FROM {})",
                parts.join(",\n"),
                self.tables.members
            ));
            from.push("member_sets".to_string());
        }
        if !self.tags.is_empty() {
            let names: Vec<String> = self.tags.iter().map(|t| t.sql.clone()).collect();
            entries.push(format!(
                "    -- one pass over the tags\n    tag_sets AS (SELECT\n{}\n    FROM {} WHERE {})",
                columns(&self.tags),
                self.tables.tags,
                names.join(" OR ")
            ));
            from.push("tag_sets".into());
        }
        if !self.events.is_empty() {
            let conditions: Vec<String> =
                self.events.iter().map(|e| format!("({})", e.sql)).collect();
            entries.push(format!(
                "    -- one pass over the events\n    event_sets AS (SELECT\n{}\n    FROM {} WHERE {})",
                columns(&self.events),
                self.tables.events,
                conditions.join(" OR ")
            ));
            from.push("event_sets".into());
        }
        for (i, pass) in self.passes.iter().enumerate() {
            if pass.leaves.is_empty() {
                continue;
            }
            entries.push(format!(
                "    -- per member, one pass over the events of: {}\n    {} AS (SELECT\n{}\n    FROM (\n        {}\n    ))",
                one_line(&pass.conditions),
                pass_name(i),
                columns(&pass.leaves),
                self.pass_relation(i).replace('\n', "\n        ")
            ));
            from.push(pass_name(i));
        }
        for c in &self.relations {
            entries.push(format!(
                "    -- {}\n    {} AS (SELECT {} AS {} FROM (\n        {}\n    ))",
                one_line(&c.comment),
                c.name,
                c.agg,
                c.name,
                c.sql.replace('\n', "\n        ")
            ));
            from.push(c.name.clone());
        }
        let live = live.map(|l| format!("-- the live members\n{l} AS {UNIVERSE}"));
        let aliases: Vec<String> = live
            .into_iter()
            .chain(
                self.combinations
                    .iter()
                    .map(|c| format!("-- {}\n{} AS {}", one_line(&c.comment), c.sql, c.name)),
            )
            .collect();
        let from = match from.is_empty() {
            true => String::new(),
            false => format!(" FROM {}", from.join(", ")),
        };
        (entries, aliases, from)
    }

    /// Adds a part (or finds the equal one) and returns its name.
    pub(super) fn add(
        &mut self,
        kind: Kind,
        prefix: &str,
        comment: String,
        sql: String,
    ) -> Result<String> {
        self.add_over(kind, prefix, comment, sql, String::new())
    }

    /// [`Parts::add`] of a part over its own relation `sql`, read by `agg`.
    pub(super) fn add_over(
        &mut self,
        kind: Kind,
        prefix: &str,
        comment: String,
        sql: String,
        agg: String,
    ) -> Result<String> {
        let key = format!("{prefix}\0{sql}\0{agg}");
        if let Some(name) = self.named.get(&key) {
            return Ok(name.clone());
        }
        let count = self.members.len()
            + self.tags.len()
            + self.events.len()
            + self.relations.len()
            + self.passes.iter().map(|p| p.leaves.len()).sum::<usize>()
            + self.combinations.len();
        let name = format!("{prefix}_{}", count + 1);
        let leaf = Leaf {
            name: name.clone(),
            comment,
            sql,
            agg,
        };
        match kind {
            Kind::Members => self.members.push(leaf),
            Kind::Tags => self.tags.push(leaf),
            Kind::Events => self.events.push(leaf),
            Kind::Relation => self.relations.push(leaf),
            Kind::Pass(i) => self.passes[i].leaves.push(leaf),
            Kind::Combination => self.combinations.push(leaf),
        }
        self.named.insert(key, name.clone());
        Ok(name)
    }

    /// The column holding `expr`, an aggregate of the events `conditions` select (or an
    /// expression of the pass's columns), in the pass over those events: the pass and the
    /// column's name. Equal expressions share a column.
    pub(super) fn pass_column(&mut self, conditions: &str, expr: String) -> (usize, String) {
        let pass = match self.passes.iter().position(|p| p.conditions == conditions) {
            Some(i) => i,
            None => {
                self.passes.push(Pass {
                    conditions: conditions.to_string(),
                    columns: Vec::new(),
                    leaves: Vec::new(),
                });
                self.passes.len() - 1
            }
        };
        (pass, self.column_of(pass, expr))
    }

    /// [`Parts::pass_column`] in pass `pass`.
    pub(super) fn column_of(&mut self, pass: usize, expr: String) -> String {
        let columns = &mut self.passes[pass].columns;
        if let Some((_, name)) = columns.iter().find(|(e, _)| *e == expr) {
            return name.clone();
        }
        let name = format!("{}_v{}", pass_name(pass), columns.len() + 1);
        columns.push((expr, name.clone()));
        name
    }

    /// Pass `pass` as a relation: `member_row` and its columns.
    pub(super) fn pass_relation(&self, pass: usize) -> String {
        let pass = &self.passes[pass];
        let columns: String = pass
            .columns
            .iter()
            .map(|(expr, name)| format!(",\n    {expr} AS {name}"))
            .collect();
        format!(
            "SELECT member_row{columns}\nFROM {} WHERE {} GROUP BY member_row",
            self.tables.events, pass.conditions
        )
    }

    pub(super) fn node(&mut self, node: &Node<'_>) -> Result<String> {
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
                Kind::Combination,
                "none",
                comment,
                "bitmapBuild(emptyArrayUInt32())".to_string(),
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
                let prefix = if pos == [UNIVERSE] && neg.len() == 1 {
                    "not"
                } else {
                    "and"
                };
                match (pos.split_last(), neg.is_empty()) {
                    (_, false) => {
                        let (x, y) = (fold("bitmapAnd", &pos), fold("bitmapOr", &neg));
                        self.pair(prefix, comment, "bitmapAndnot", x, y)
                    }
                    (Some((last, rest)), true) if !rest.is_empty() => {
                        let x = fold("bitmapAnd", rest);
                        self.pair(prefix, comment, "bitmapAnd", x, last.clone())
                    }
                    _ => self.add(Kind::Combination, prefix, comment, fold("bitmapAnd", &pos)),
                }
            }
            Op::Or(parts) => {
                let parts = parts
                    .iter()
                    .map(|n| self.node(n))
                    .collect::<Result<Vec<_>>>()?;
                match parts.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        let x = fold("bitmapOr", rest);
                        self.pair("or", comment, "bitmapOr", x, last.clone())
                    }
                    _ => self.add(Kind::Combination, "or", comment, fold("bitmapOr", &parts)),
                }
            }
            Op::Stored(_) | Op::Computed { .. } => Err(Error::Internal(format!(
                "compile: a stored or computed operator outside a leaf ({comment})"
            ))),
        }
    }

    /// The combination `op(x, y)` (`bitmapAnd`, `bitmapAndnot`, `bitmapOr`), which COUNT
    /// reads by the fused `<op>Cardinality(x, y)`.
    fn pair(
        &mut self,
        prefix: &str,
        comment: String,
        op: &'static str,
        x: String,
        y: String,
    ) -> Result<String> {
        let expr = format!("{op}({x}, {y})");
        let name = self.add(Kind::Combination, prefix, comment, expr)?;
        self.counted.insert(name.clone(), (op, x, y));
        Ok(name)
    }

    fn leaf(&mut self, segment: &Segment) -> Result<String> {
        let comment = segment.to_string();
        match segment {
            Segment::All => Ok(UNIVERSE.to_string()),
            Segment::Tag(tag) => match self.stored("tag", tag) {
                Some(state) => self.add(Kind::Combination, "tag", comment, state),
                None => {
                    let condition = format!("tag = {}", string(tag));
                    self.add(Kind::Tags, "tag", comment, condition)
                }
            },
            Segment::Attr { name, predicate } => {
                let attr = match self.state.require_named(name)? {
                    Named::Attribute(a) => a,
                    Named::Trait(_) => {
                        let value = ValueExpr::Attr(name.clone());
                        return self.value_leaf(&value, predicate, comment);
                    }
                };
                if let Some(states) = self.value_states(attr, predicate) {
                    return self.add(Kind::Combination, "attr", comment, states);
                }
                let condition = test(&ident(name), attr.column.data_type(), predicate, name)?;
                self.add(Kind::Members, "attr", comment, condition)
            }
            Segment::Did(Did {
                event,
                filter: None,
                frequency: None,
                window: None,
            }) if self.tables.sets.is_some() => {
                self.state.events.require(event)?;
                let state = self.stored("event", event).unwrap_or_default();
                self.add(Kind::Combination, "did", comment, state)
            }
            Segment::Did(did) => {
                let (kind, sql) = self.did(did)?;
                let agg = "groupBitmapState(member_row)".to_string();
                self.add_over(kind, "did", comment, sql, agg)
            }
            Segment::InGroup(name) => self.group(name, comment),
            Segment::Sequence(sequence) => self.sequence(sequence, comment),
            Segment::Value { value, predicate } => self.value_leaf(value, predicate, comment),
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

    /// The stored state of `kind` (`live`, `tag`, `event`) `name`, when the tables have
    /// states (`--schema`'s `<prefix>_sets`, a Join table): `joinGet` gives the empty state
    /// for a tag or event type without a row.
    fn stored(&self, kind: &str, name: &str) -> Option<String> {
        let sets = self.tables.sets.as_ref()?;
        Some(join_get(sets, kind, &string(name), "''"))
    }

    /// An equality or `IN` on an attribute with a stored state per value: the value's
    /// state, or the union of the values' states.
    fn value_states(&self, attr: &Attribute, predicate: &Predicate) -> Option<String> {
        let sets = self.tables.sets.as_ref()?;
        if !super::has_value_states(attr) {
            return None;
        }
        let values: &[Value] = match predicate {
            Predicate::Cmp(CmpOp::Eq, v) => std::slice::from_ref(v),
            Predicate::In(values) => values,
            _ => return None,
        };
        let texts = values
            .iter()
            .map(|v| match v {
                Value::Str(s) => Some(string(s)),
                Value::Bool(b) => Some(format!("'{b}'")),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let name = string(&attr.name);
        Some(match texts.as_slice() {
            [one] => join_get(sets, "value", &name, one),
            _ => format!(
                "arrayReduce('groupBitmapMergeState', arrayMap(v -> {}, [{}]))",
                join_get(sets, "value", &name, "v"),
                texts.join(", ")
            ),
        })
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
        // the group's own name, so the SQL says where its definition is
        self.add(
            Kind::Combination,
            &format!("group_{}", simple(name)),
            format!("{comment}: {}", group.definition),
            inner,
        )
    }

    /// `DID`: the condition on the events file of the events of the type that pass the
    /// window and the filter; with a frequency, the subquery of the members with enough.
    fn did(&self, did: &Did) -> Result<(Kind, String)> {
        let condition =
            self.event_conditions(&did.event, did.window.as_ref(), did.filter.as_ref())?;
        let events = self.tables.events.as_str();
        Ok(match did.frequency {
            None => (Kind::Events, condition),
            Some(frequency) => {
                let having = match frequency {
                    Frequency::AtLeast(n) => format!("count() >= {n}"),
                    Frequency::AtMost(n) => format!("count() <= {n}"),
                    Frequency::Exactly(n) => format!("count() = {n}"),
                };
                (
                    Kind::Relation,
                    format!(
                        "SELECT member_row FROM {events} WHERE {condition} GROUP BY member_row \
                         HAVING {having}"
                    ),
                )
            }
        })
    }

    /// The condition on the events file selecting the events of type `event` that pass
    /// the window and the filter.
    pub(super) fn event_conditions(
        &self,
        event: &str,
        window: Option<&Window>,
        filter: Option<&PropFilter>,
    ) -> Result<String> {
        let mut conditions = vec![format!("event = {}", string(event))];
        if let Some(window) = window {
            conditions.extend(self.window(window)?);
        }
        if let Some(filter) = filter {
            conditions.push(self.filter(filter)?);
        }
        Ok(conditions.join(" AND "))
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

/// The segment's bitmap, as a scalar subquery (ClickHouse computes it once).
pub(crate) fn segment_bitmap() -> String {
    format!("(SELECT b FROM {SEGMENT})")
}

/// `f(f(a, b), c)` of the parts `names`.
pub(super) fn fold(f: &str, names: &[String]) -> String {
    let mut parts = names.iter().cloned();
    let first = parts.next().unwrap_or_else(|| UNIVERSE.to_string());
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

/// The state of the key (`kind`, `name`, `value`: SQL expressions but `kind`) in the Join
/// table `sets`.
fn join_get(sets: &str, kind: &str, name: &str, value: &str) -> String {
    format!(
        "joinGet({}, 'members', '{kind}', {name}, {value})",
        string(sets)
    )
}
