//! Statements of the segment language run against a database: binding (`bind`), running,
//! EXPLAIN and SHOW.

pub(crate) mod bind;
mod overlap;
mod text;

pub(crate) use bind::FunnelSpans;
pub(crate) use text::{funnel_by_text, value_text};

use memberdb_query::ast::{ByColumn, ShowWhat, Statement, StatementKind};
use overlap::{overlap_output, overlap_view};

use crate::access::Access;
use crate::database::{Database, View};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::results::{BreakdownRow, FindOptions, FindResult};
use crate::segment::Segment;
use crate::value::Timestamp;

pub use memberdb_query::{parse_script, parse_statement, parse_statement_nested};

/// What a statement returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// COUNT (or a segment alone).
    Count(u64),
    /// FIND.
    Find(FindResult),
    /// BREAKDOWN.
    Breakdown {
        /// The column(s) broken down by, as written (`city`, `store OF purchase`, `r, m`).
        by: String,
        /// Each column's text: an attribute's name, `p OF e`, a value's canonical text.
        columns: Vec<String>,
        /// Members of the segment (what shares are of).
        total: u64,
        /// The lines.
        lines: Vec<BreakdownRow>,
    },
    /// DEFINE GROUP: the group and its size now.
    GroupDefined {
        /// Group name.
        name: String,
        /// Members now.
        members: u64,
    },
    /// DROP GROUP.
    GroupDropped(String),
    /// DEFINE TRAIT: the trait and how many members have a value now.
    TraitDefined {
        /// Trait name.
        name: String,
        /// Members with a value (not NULL) now.
        members: u64,
    },
    /// DROP TRAIT.
    TraitDropped(String),
    /// ALTER ATTRIBUTE: the attribute and its type now.
    AttributeAltered {
        /// Attribute name.
        name: String,
        /// Its type now.
        data_type: crate::value::DataType,
    },
    /// DROP ATTRIBUTE.
    AttributeDropped(String),
    /// DEFINE IDENTIFIER: the declaration as it holds (defaults filled in).
    IdentifierDefined(crate::identity::IdentifierDef),
    /// DEFINE ATTRIBUTE ... MERGE.
    MergeRuleSet {
        /// The attribute.
        attribute: String,
        /// Its rule now.
        rule: crate::identity::MergeRule,
    },
    /// EXPORT: the file written and the members in it.
    Exported {
        /// The file, as the statement names it.
        path: String,
        /// Members written.
        rows: u64,
        /// SHA-256 (hex) of their member ids, each followed by a newline, in the file's
        /// order: what the audit log records of an export instead of the ids.
        members_hash: String,
    },
    /// COUNT or BREAKDOWN with OVERLAP: counts among the members whose key is in another
    /// party's pool, each under the minimum group size suppressed.
    Overlap {
        /// The column(s) broken down by (empty for COUNT).
        columns: Vec<String>,
        /// Members of the segment in the pool.
        total: crate::share::SharedCount,
        /// One line per value (BREAKDOWN only): the values, then the count.
        lines: Vec<(Vec<Option<crate::value::Value>>, crate::share::SharedCount)>,
    },
    /// FUNNEL: a row per step (per bucket with `BY`).
    Funnel(crate::sequence::FunnelReport),
    /// EXPLAIN SQL: the statement as ClickHouse SQL (`crate::compile`).
    Sql(String),
    /// EXPLAIN and SHOW: a table of text.
    Table {
        /// Column names.
        columns: Vec<String>,
        /// Rows, one string per column.
        rows: Vec<Vec<String>>,
    },
}

impl Output {
    /// True for outputs of statements that changed the database.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Output::GroupDefined { .. }
                | Output::GroupDropped(_)
                | Output::TraitDefined { .. }
                | Output::TraitDropped(_)
                | Output::AttributeAltered { .. }
                | Output::AttributeDropped(_)
                | Output::IdentifierDefined(_)
                | Output::MergeRuleSet { .. }
        )
    }
}

/// Default rows of a FIND without LIMIT, so a careless statement cannot dump millions of
/// members (`LIMIT` raises it).
pub const DEFAULT_FIND_LIMIT: u64 = 1000;

/// How [`Database::run_with`] runs a statement.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The pinned *now* (the wall clock when `None`); a statement's `AS OF` overrides it.
    pub now: Option<Timestamp>,
    /// Reads stop with [`Error::DeadlineExceeded`] once this instant has passed. Writes
    /// (DEFINE / DROP GROUP) are not bound by it.
    pub deadline: Option<std::time::Instant>,
    /// A BREAKDOWN with more lines than this (after `TOP`) is refused with
    /// [`Error::LimitExceeded`].
    pub max_breakdown_lines: Option<usize>,
    /// Called as an EXPORT writes, with the members written and the segment's size.
    pub progress: Option<Progress>,
    /// Answers kept between statements: COUNT and BREAKDOWN consult it once bound.
    pub cache: Option<Cache>,
    /// Threads one statement may split its chunks across ([`View::with_threads`]).
    pub threads: Option<usize>,
    /// The shared secret and threshold of clean-room counts (`OVERLAP`); without them an
    /// OVERLAP is refused.
    pub share: Option<crate::share::ShareOptions>,
}

/// A store of answers a caller keeps between statements (a server's answer cache).
///
/// The engine asks it about COUNT and BREAKDOWN statements once they are bound, under a key
/// made of the bound plan (names resolved, commutative operands ordered, every window
/// resolved to the events it selects) and the statement's shape, with the data version the
/// statement reads. An answer stored under a key and a version is the answer of every
/// statement with that key at that version, whatever its text or *now*: a window that moved
/// but selects the same events shares the entry, one that selects others does not.
pub trait AnswerCache: Send + Sync {
    /// The answer kept under `key` for data version `version`.
    fn get(&self, key: &str, version: u64) -> Option<Output>;
    /// Keeps `output` under `key` for data version `version`.
    fn put(&self, key: &str, version: u64, output: &Output);
}

/// A shared [`AnswerCache`].
#[derive(Clone)]
pub struct Cache(pub std::sync::Arc<dyn AnswerCache>);

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache(..)")
    }
}

/// `run`'s answer, through the cache of `options` under `what` and the plan's key.
fn cached(
    options: &RunOptions,
    version: u64,
    what: &str,
    plan: &Plan<'_>,
    run: impl FnOnce() -> Result<Output>,
) -> Result<Output> {
    let Some(cache) = &options.cache else {
        return run();
    };
    let key = format!("{what} {}", plan.key());
    if let Some(hit) = cache.0.get(&key, version) {
        return Ok(hit);
    }
    let output = run()?;
    cache.0.put(&key, version, &output);
    Ok(output)
}

/// A progress callback: done, of total.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

impl Database {
    /// Parses and runs `;`-separated statements, stopping at the first error. `now` is the
    /// pinned *now* (wall clock when `None`); a statement's `AS OF` overrides it.
    pub fn execute(&self, text: &str, now: Option<Timestamp>) -> Result<Vec<Output>> {
        let statements = parse_script(text).map_err(Error::Syntax)?;
        statements.iter().map(|s| self.run(s, now)).collect()
    }

    /// Binds a parsed segment expression to this database's catalog: names resolved, types
    /// checked, each error pointing at its part of the text.
    pub fn bind_segment(&self, expr: &memberdb_query::ast::Expr) -> Result<Segment> {
        let (segment, spans) = bind::segment(expr)?;
        self.as_of(self.now()).bind(&segment, Some(&spans))?;
        Ok(segment)
    }

    /// Checks `segment` against the catalog (its names exist, its values fit their types)
    /// without running it.
    pub fn check_segment(&self, segment: &Segment) -> Result<()> {
        self.as_of(self.now()).bind(segment, None).map(drop)
    }

    /// Runs one parsed statement. Reads bind and run on one snapshot.
    pub fn run(&self, statement: &Statement, now: Option<Timestamp>) -> Result<Output> {
        self.run_with(
            statement,
            &RunOptions {
                now,
                ..RunOptions::default()
            },
        )
    }

    /// Runs one parsed statement under `options`: a pinned *now*, a deadline for reads, a
    /// cap on BREAKDOWN lines. Reads bind and run on one snapshot.
    pub fn run_with(&self, statement: &Statement, options: &RunOptions) -> Result<Output> {
        self.run_as(statement, options, None)
    }

    /// [`Database::run_with`] for a session's `access`: its scope is the universe of the
    /// statement's plans and part of its answers' cache keys; definitions and values that
    /// would show a masked field are left out. What the session may run, and the masks of
    /// its output, are the session's (`access::session`).
    pub(crate) fn run_as(
        &self,
        statement: &Statement,
        options: &RunOptions,
        access: Option<&Access>,
    ) -> Result<Output> {
        let now = match &statement.as_of {
            Some(lit) => bind::instant(lit, "AS OF")?,
            None => options.now.unwrap_or_else(|| self.now()),
        };
        let writes = matches!(
            statement.kind,
            StatementKind::DefineGroup { .. }
                | StatementKind::DefineIdentifier { .. }
                | StatementKind::DefineMerge { .. }
                | StatementKind::DropGroup(_)
                | StatementKind::DefineTrait { .. }
                | StatementKind::DropTrait(_)
                | StatementKind::AlterAttribute { .. }
                | StatementKind::DropAttribute(_)
        );
        if writes && let Some(why) = self.read_only_reason() {
            return Err(Error::ReadOnly(why));
        }
        match &statement.kind {
            StatementKind::ExplainSql(inner) => {
                if access.is_some_and(|a| a.scope().is_some() || a.masks_anything()) {
                    return Err(Error::NoPermission(
                        "EXPLAIN SQL compiles over every member's unmasked data: a scoped or \
                         masked user cannot run it (SQL on another engine cannot keep the \
                         scope or the masks)"
                            .into(),
                    ));
                }
                let inner = Statement {
                    kind: (**inner).clone(),
                    ..statement.clone()
                };
                let options = crate::compile::CompileOptions {
                    now: Some(now),
                    tables: None,
                };
                return Ok(Output::Sql(self.compile(&inner, &options)?));
            }
            StatementKind::DefineGroup {
                name,
                segment,
                keep_days,
            } => {
                let (seg, spans) = bind::segment(segment)?;
                self.as_of(now).bind(&seg, Some(&spans))?;
                let keep_days = keep_days
                    .map(|d| {
                        u32::try_from(d)
                            .ok()
                            .filter(|d| (1..=crate::groups::MAX_KEEP_DAYS).contains(d))
                            .ok_or_else(|| {
                                Error::InvalidSegment(format!(
                                    "KEEP CHANGES {d} DAYS: a group keeps its changes from 1 \
                                     to {} days",
                                    crate::groups::MAX_KEEP_DAYS
                                ))
                                .at(statement.span)
                            })
                    })
                    .transpose()?;
                self.define_group_keeping(&name.text, seg, keep_days)
                    .map_err(|e| e.at(name.span))?;
                let members = self.as_of(now).count(&Segment::in_group(&name.text))?;
                return Ok(Output::GroupDefined {
                    name: name.text.clone(),
                    members,
                });
            }
            StatementKind::DropGroup(name) => {
                self.drop_group(&name.text).map_err(|e| e.at(name.span))?;
                return Ok(Output::GroupDropped(name.text.clone()));
            }
            StatementKind::DefineTrait { name, body } => {
                // Each segment of the definition checked with its spans first.
                {
                    let view = self.as_of(now);
                    for (segment, spans) in bind::trait_parts(body)? {
                        view.bind(&segment, Some(&spans))?;
                    }
                }
                let definition = bind::trait_def(body)?;
                self.define_trait_only(&name.text, definition)
                    .map_err(|e| e.at(name.span))?;
                let members = self
                    .as_of(now)
                    .count(&Segment::attr(&name.text).is_not_null())?;
                return Ok(Output::TraitDefined {
                    name: name.text.clone(),
                    members,
                });
            }
            StatementKind::DropTrait(name) => {
                self.drop_trait(&name.text).map_err(|e| e.at(name.span))?;
                return Ok(Output::TraitDropped(name.text.clone()));
            }
            StatementKind::AlterAttribute { name, type_name } => {
                let data_type =
                    crate::value::DataType::from_name(&type_name.text).ok_or_else(|| {
                        Error::InvalidSegment(format!(
                            "unknown type '{}'; the types are {}",
                            type_name.text,
                            crate::value::DataType::NAMES
                        ))
                        .at(type_name.span)
                    })?;
                self.alter_attribute(&name.text, data_type)
                    .map_err(|e| e.at(name.span))?;
                return Ok(Output::AttributeAltered {
                    name: name.text.clone(),
                    data_type,
                });
            }
            StatementKind::DefineIdentifier {
                name,
                limit,
                priority,
                block,
            } => {
                let def = identifier_def(self, name, *limit, *priority, block)?;
                self.define_identifier(def.clone())
                    .map_err(|e| e.at(name.span))?;
                return Ok(Output::IdentifierDefined(def));
            }
            StatementKind::DefineMerge { attribute, rule } => {
                let rule = crate::identity::MergeRule::parse(rule.as_str())
                    .ok_or_else(|| Error::Internal("a merge rule the grammar took".into()))?;
                self.set_merge_rule(&attribute.text, rule)
                    .map_err(|e| e.at(attribute.span))?;
                return Ok(Output::MergeRuleSet {
                    attribute: attribute.text.clone(),
                    rule,
                });
            }
            StatementKind::DropAttribute(name) => {
                self.drop_attribute(&name.text)
                    .map_err(|e| e.at(name.span))?;
                return Ok(Output::AttributeDropped(name.text.clone()));
            }
            _ => {}
        }
        let scope = access.and_then(Access::scope);
        let view = self
            .as_of(now)
            .with_deadline(options.deadline)
            .with_threads(options.threads)
            .with_scope(scope)?
            .with_masks(access);
        if let Some(pool) = &statement.overlap {
            // Counted among the members whose key is in the pool; never cached (the key of
            // an answer does not hold the pool).
            let (view, share) = overlap_view(view, statement, pool, options, access)?;
            let options = RunOptions {
                cache: None,
                share: None,
                ..options.clone()
            };
            let plain = Statement {
                overlap: None,
                ..statement.clone()
            };
            let output = self.run_on(view, &plain, &options, access, String::new())?;
            return Ok(overlap_output(output, share.min_group_size));
        }
        // Answers kept for one scope are not another's.
        let within = scope.map_or(String::new(), |s| format!(" WITHIN {s}"));
        self.run_on(view, statement, options, access, within)
    }

    /// A read statement run on `view`; `within` is part of its answers' cache keys.
    fn run_on(
        &self,
        view: View<'_>,
        statement: &Statement,
        options: &RunOptions,
        access: Option<&Access>,
        within: String,
    ) -> Result<Output> {
        // The view holds the state's read lock: this is the version of what it reads.
        let version = self.version();
        let state = view.state();
        Ok(match &statement.kind {
            StatementKind::Count(e) => {
                let (seg, spans) = bind::segment(e)?;
                let plan = view.bind(&seg, Some(&spans))?;
                cached(options, version, &format!("COUNT{within}"), &plan, || {
                    Ok(Output::Count(view.count_plan(&plan)?))
                })?
            }
            StatementKind::Find {
                segment,
                show,
                show_all,
                limit,
                offset,
            } => {
                let (seg, spans) = bind::segment(segment)?;
                let plan = view.bind(&seg, Some(&spans))?;
                let options = find_options(state, show, *show_all, *limit, *offset)?;
                Output::Find(view.find_plan(&plan, &options)?)
            }
            StatementKind::Breakdown { segment, by, top } => {
                let (seg, spans) = bind::segment(segment)?;
                let plan = view.bind(&seg, Some(&spans))?;
                let top = top.map(|t| usize::try_from(t).unwrap_or(usize::MAX));
                let output = match &by[..] {
                    [ByColumn::Name { name, of }] => {
                        let cache = (options, version, within.as_str());
                        self.breakdown_one(&view, &plan, name, of.as_ref(), top, cache)?
                    }
                    columns => {
                        let values = columns
                            .iter()
                            .map(bind::by_value)
                            .collect::<Result<Vec<_>>>()?;
                        let texts: Vec<String> = values.iter().map(value_text).collect();
                        let what = format!("BREAKDOWN BY {} TOP {top:?}{within}", texts.join(", "));
                        cached(options, version, &what, &plan, || {
                            let members = view.select(&plan)?;
                            let lines = view.breakdown_values(&members, &values, top)?;
                            Ok(Output::Breakdown {
                                by: texts.join(", "),
                                columns: texts.clone(),
                                total: members.len(),
                                lines,
                            })
                        })
                        .map_err(|e| e.at(statement.span))?
                    }
                };
                let Output::Breakdown { lines, by, .. } = &output else {
                    return Err(Error::Internal("a BREAKDOWN answered otherwise".into()));
                };
                if let Some(max) = options.max_breakdown_lines
                    && lines.len() > max
                {
                    return Err(Error::LimitExceeded(format!(
                        "BREAKDOWN by {by} gives {} lines, more than the {max} allowed at once; \
                         add TOP n",
                        lines.len()
                    )));
                }
                output
            }
            StatementKind::Funnel(f) => {
                let (funnel, spans) = bind::funnel(f)?;
                let by = f.by.as_ref().map(text::funnel_by_ast_text);
                Output::Funnel(view.funnel_spanned(&funnel, Some(&spans), by)?)
            }
            StatementKind::FindFunnel {
                funnel: f,
                step,
                show,
                show_all,
                limit,
                offset,
            } => {
                let (funnel, spans) = bind::funnel(f)?;
                let spans = FunnelSpans {
                    step: step.1,
                    ..spans
                };
                let options = find_options(state, show, *show_all, *limit, *offset)?;
                let step = usize::try_from(step.0).unwrap_or(usize::MAX);
                Output::Find(view.find_funnel_spanned(&funnel, step, &options, Some(&spans))?)
            }
            StatementKind::Explain(e) => {
                let (seg, spans) = bind::segment(e)?;
                let plan = view.bind(&seg, Some(&spans))?;
                let (rows, _) = crate::plan::explain(&plan, view.universe(), options.deadline)?;
                table(&["step", "kernel", "members", "µs"], rows)
            }
            StatementKind::Export {
                segment,
                show,
                show_all,
                path,
            } => {
                let (seg, spans) = bind::segment(segment)?;
                let plan = view.bind(&seg, Some(&spans))?;
                let columns = shown_columns(state, show, *show_all)?;
                let memberdb_query::ast::LiteralKind::Str(file) = &path.kind else {
                    return Err(Error::Internal("EXPORT path is not a string".into()));
                };
                let progress = options.progress.clone();
                let members = view.select(&plan)?;
                let rows = view
                    .export_members(
                        &members,
                        &columns,
                        access,
                        std::path::Path::new(file),
                        &mut |done, all| {
                            if let Some(p) = &progress {
                                (p.0)(done, all);
                            }
                        },
                    )
                    .map_err(|e| match e {
                        e @ Error::InvalidSegment(_) => e.at(path.span),
                        e => e,
                    })?;
                let mut ids = sha2::Sha256::default();
                for row in &members {
                    sha2::Digest::update(&mut ids, state.members.member_id(row).as_bytes());
                    sha2::Digest::update(&mut ids, b"\n");
                }
                Output::Exported {
                    path: file.clone(),
                    rows,
                    members_hash: crate::util::hex(&sha2::Digest::finalize(ids)),
                }
            }
            StatementKind::Show(what) => show(&view, *what, access),
            StatementKind::ShowGroup(name) => {
                // what the session may see of it, read under this view's lock
                let scoped_size = match access {
                    Some(a) if a.is_scoped() => Some(
                        view.count(&Segment::in_group(&name.text))
                            .map_err(|e| e.at(name.span))?,
                    ),
                    _ => None,
                };
                let hidden = access.is_some_and(|a| {
                    state
                        .groups
                        .get(&name.text)
                        .is_some_and(|g| a.reads_masked(&g.definition))
                });
                // group_status takes the lock again: never while this view holds it (a
                // waiting writer would stop both)
                drop(view);
                let mut status = self.group_status(&name.text).map_err(|e| e.at(name.span))?;
                if let Some(size) = scoped_size {
                    status.size = size;
                }
                if hidden {
                    status.definition = HIDDEN_DEFINITION.to_string();
                }
                show_group(&status)
            }
            StatementKind::ExplainMember { member, group } => {
                let memberdb_query::ast::LiteralKind::Str(member_id) = &member.kind else {
                    return Err(Error::InvalidSegment(
                        "EXPLAIN MEMBER needs a member id in quotes".to_string(),
                    )
                    .at(member.span));
                };
                let explained =
                    view.explain_member(member_id, &group.text)
                        .map_err(|e| match e {
                            e @ Error::UnknownName { kind: "group", .. } => e.at(group.span),
                            e @ Error::InvalidSegment(_) => e.at(member.span),
                            e => e,
                        })?;
                table(&["part", "now", "facts", "changes at"], explained)
            }
            StatementKind::ShowEvent(event) => {
                let mut properties = view
                    .event_properties(&event.text)
                    .map_err(|e| e.at(event.span))?;
                if let Some(access) = access {
                    for p in &mut properties {
                        // counts over all events are not the scope's; values not a mask's
                        if access.is_scoped() {
                            p.non_null = 0;
                            p.nulls = 0;
                        }
                        if access.is_scoped() || access.mask_of(&p.name).is_some() {
                            p.top.clear();
                        }
                    }
                }
                table(
                    &["property", "type", "with value", "NULL", "top values"],
                    properties
                        .into_iter()
                        .map(|p| {
                            let top: Vec<String> =
                                p.top.iter().map(|(v, n)| format!("{v} ({n})")).collect();
                            vec![
                                p.name,
                                p.data_type.to_string(),
                                p.non_null.to_string(),
                                p.nulls.to_string(),
                                top.join(", "),
                            ]
                        })
                        .collect(),
                )
            }
            StatementKind::ShowAttribute(name) => {
                require_attribute(state, &name.text).map_err(|e| e.at(name.span))?;
                let all = view.universe_len();
                let lines = view.breakdown(&Segment::all(), &name.text, Some(SHOW_TOP))?;
                let share = |n: u64| format!("{:.1}%", 100.0 * n as f64 / all.max(1) as f64);
                table(
                    &[name.text.as_str(), "members", "share"],
                    lines
                        .into_iter()
                        .map(|l| {
                            let value = l.value.map_or("NULL".to_string(), |v| v.to_string());
                            vec![value, l.count.to_string(), share(l.count)]
                        })
                        .collect(),
                )
            }
            StatementKind::DefineGroup { .. }
            | StatementKind::DefineIdentifier { .. }
            | StatementKind::DefineMerge { .. }
            | StatementKind::DropGroup(_)
            | StatementKind::DefineTrait { .. }
            | StatementKind::DropTrait(_)
            | StatementKind::AlterAttribute { .. }
            | StatementKind::DropAttribute(_) => {
                return Err(Error::Internal("a write reached the read path".to_string()));
            }
            StatementKind::ExplainSql(_) => {
                return Err(Error::Internal(
                    "EXPLAIN SQL reached the read path".to_string(),
                ));
            }
        })
    }
}

/// `SHOW GROUP`: one line per property.
fn show_group(status: &crate::database::GroupStatus) -> Output {
    let next = match (status.time_dependent, status.next_change) {
        (false, _) => "never (does not move with time)".to_string(),
        (true, None) => "none due (no event in a window it reads)".to_string(),
        (true, Some(t)) => t.to_string(),
    };
    let consumer_groups: Vec<String> = status
        .consumer_groups
        .iter()
        .map(|c| {
            format!(
                "{} ({} pending, last {})",
                c.name, c.pending, c.last_delivered
            )
        })
        .collect();
    let rows = [
        ("definition", status.definition.clone()),
        ("members", status.size.to_string()),
        ("position", status.last_id.to_string()),
        ("entries kept", status.entries.to_string()),
        (
            "oldest kept",
            status
                .first_id
                .map_or("none".to_string(), |id| id.to_string()),
        ),
        ("keep changes", format!("{} days", status.keep_days)),
        ("moves with time", status.time_dependent.to_string()),
        ("next time-driven change", next),
        ("consumer groups", consumer_groups.join(", ")),
    ];
    table(
        &["property", "value"],
        rows.into_iter()
            .map(|(k, v)| vec![k.to_string(), v])
            .collect(),
    )
}

/// Values `SHOW ATTRIBUTE` lists.
const SHOW_TOP: usize = 20;

/// Checks attribute (or trait) `name`; for an event property, an error that says how to
/// break down by it.
fn require_attribute(state: &crate::state::State, name: &str) -> Result<()> {
    state.require_named(name).map(drop).map_err(|e| {
        let events: Vec<&str> = state
            .events
            .types
            .iter()
            .filter(|(_, p)| p.props.contains_key(name))
            .map(|(event, _)| event.as_str())
            .collect();
        match events.first() {
            Some(first) => Error::InvalidSegment(format!(
                "'{name}' is an event property, not an attribute: break down by it with \
                 BY {name} OF {first} (events with it: {})",
                events.join(", ")
            )),
            None => e,
        }
    })
}

/// The attributes a `SHOW` clause names (checked), or every attribute for `SHOW *`.
/// FIND's options from its `SHOW`, `LIMIT` (by default [`DEFAULT_FIND_LIMIT`]) and
/// `OFFSET`.
pub(crate) fn find_options(
    state: &crate::state::State,
    show: &[memberdb_query::ast::Name],
    show_all: bool,
    limit: Option<u64>,
    offset: Option<u64>,
) -> Result<FindOptions> {
    Ok(FindOptions {
        columns: shown_columns(state, show, show_all)?,
        limit: Some(usize::try_from(limit.unwrap_or(DEFAULT_FIND_LIMIT)).unwrap_or(usize::MAX)),
        offset: usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX),
    })
}

fn shown_columns(
    state: &crate::state::State,
    show: &[memberdb_query::ast::Name],
    all: bool,
) -> Result<Vec<String>> {
    if all {
        return Ok(state.attrs.names().map(str::to_string).collect());
    }
    for n in show {
        state.require_named(&n.text).map_err(|e| e.at(n.span))?;
    }
    Ok(show.iter().map(|n| n.text.clone()).collect())
}

fn table(columns: &[&str], rows: Vec<Vec<String>>) -> Output {
    Output::Table {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}

/// What SHOW prints in place of a definition that reads a field masked for the session.
pub(crate) const HIDDEN_DEFINITION: &str = "(hidden: it reads a field masked for you)";

/// A definition as `access` may see it.
fn definition_text(access: Option<&Access>, definition: &Segment) -> String {
    match access {
        Some(a) if a.reads_masked(definition) => HIDDEN_DEFINITION.to_string(),
        _ => definition.to_string(),
    }
}

/// A trait's definition as `access` may see it.
fn trait_text(access: Option<&Access>, definition: &crate::traits::TraitDef) -> String {
    let reads_masked = access.is_some_and(|a| {
        definition
            .value()
            .is_some_and(|v| a.check_value(v, "").is_err())
            || definition.segments().into_iter().any(|s| a.reads_masked(s))
    });
    if reads_masked {
        HIDDEN_DEFINITION.to_string()
    } else {
        definition.to_string()
    }
}

fn show(view: &View<'_>, what: ShowWhat, access: Option<&Access>) -> Output {
    let scoped = access.is_some_and(Access::is_scoped);
    // Counts of members inside the session's scope (a scoped session's SHOW).
    let count = |segment: Segment| {
        view.count(&segment)
            .map_or_else(|e| e.to_string(), |n| n.to_string())
    };
    match what {
        ShowWhat::Attributes if scoped => table(
            &["attribute", "type", "non_null", "distinct"],
            Database::attributes_of(view.state())
                .into_iter()
                .map(|a| {
                    let non_null = count(Segment::attr(&a.name).is_not_null());
                    vec![a.name, a.data_type.to_string(), non_null, String::new()]
                })
                .collect(),
        ),
        ShowWhat::Tags if scoped => table(
            &["tag", "members"],
            Database::tags_of(view.state())
                .into_iter()
                .map(|(t, _)| {
                    let n = count(Segment::tag(&t));
                    vec![t, n]
                })
                .collect(),
        ),
        ShowWhat::Events if scoped => table(
            &["event", "members"],
            Database::event_types_of(view.state())
                .into_iter()
                .map(|(e, _)| {
                    let n = count(Segment::did(&e).into());
                    vec![e, n]
                })
                .collect(),
        ),
        ShowWhat::Attributes => table(
            &["attribute", "type", "non_null", "distinct"],
            Database::attributes_of(view.state())
                .into_iter()
                .map(|a| {
                    vec![
                        a.name,
                        a.data_type.to_string(),
                        a.non_null.to_string(),
                        a.distinct.map_or(String::new(), |d| d.to_string()),
                    ]
                })
                .collect(),
        ),
        ShowWhat::Tags => table(
            &["tag", "members"],
            Database::tags_of(view.state())
                .into_iter()
                .map(|(t, n)| vec![t, n.to_string()])
                .collect(),
        ),
        ShowWhat::Events => table(
            &["event", "events"],
            Database::event_types_of(view.state())
                .into_iter()
                .map(|(e, n)| vec![e, n.to_string()])
                .collect(),
        ),
        ShowWhat::Loads => table(
            &["load", "at", "kind", "source", "rows", "content"],
            view.state()
                .loads
                .iter()
                .flat_map(|load| {
                    load.inputs.iter().map(move |input| {
                        vec![
                            load.id.to_string(),
                            load.at.to_string(),
                            input.kind.clone(),
                            input.source.clone(),
                            input.rows.to_string(),
                            input
                                .hash
                                .as_ref()
                                .map_or(String::new(), |h| h.get(..16).unwrap_or(h).to_string()),
                        ]
                    })
                })
                .collect(),
        ),
        ShowWhat::Identifiers => table(
            &[
                "identifier",
                "limit",
                "priority",
                "blocked",
                "values",
                "profiles",
            ],
            Database::identifiers_of(view.state())
                .into_iter()
                .map(|i| {
                    vec![
                        i.def.name,
                        i.def.limit.to_string(),
                        i.def.priority.to_string(),
                        i.def.blocked.join(", "),
                        if scoped {
                            String::new()
                        } else {
                            i.values.to_string()
                        },
                        if scoped {
                            String::new()
                        } else {
                            i.profiles.to_string()
                        },
                    ]
                })
                .collect(),
        ),
        ShowWhat::Traits => table(
            &[
                "trait",
                "type",
                "with value",
                "moves with time",
                "definition",
            ],
            Database::traits_of(view.state())
                .into_iter()
                .map(|t| {
                    let members = view
                        .count(&Segment::attr(&t.name).is_not_null())
                        .map_or_else(|e| e.to_string(), |n| n.to_string());
                    vec![
                        t.name,
                        t.data_type.to_string(),
                        members,
                        t.time_dependent.to_string(),
                        trait_text(access, &t.definition),
                    ]
                })
                .collect(),
        ),
        ShowWhat::Groups => table(
            &["group", "members", "definition"],
            Database::groups_of(view.state())
                .into_iter()
                .map(|g| {
                    let members = view
                        .count(&Segment::in_group(&g.name))
                        .map_or_else(|e| e.to_string(), |n| n.to_string());
                    vec![g.name, members, definition_text(access, &g.definition)]
                })
                .collect(),
        ),
    }
}

impl Database {
    /// BREAKDOWN by one attribute, or one property OF an event (a member counted under each
    /// value its events have).
    fn breakdown_one(
        &self,
        view: &View<'_>,
        plan: &Plan<'_>,
        by: &memberdb_query::ast::Name,
        of: Option<&memberdb_query::ast::Name>,
        top: Option<usize>,
        (options, version, within): (&RunOptions, u64, &str),
    ) -> Result<Output> {
        let state = view.state();
        let by_text = match of {
            Some(event) => {
                state
                    .events
                    .require(&event.text)
                    .map_err(|e| e.at(event.span))?;
                format!("{} OF {}", by.text, event.text)
            }
            None => {
                require_attribute(state, &by.text).map_err(|e| e.at(by.span))?;
                by.text.clone()
            }
        };
        let what = format!("BREAKDOWN BY {by_text} TOP {top:?}{within}");
        cached(options, version, &what, plan, || {
            let members = view.select(plan)?;
            let (lines, total) = match of {
                Some(event) => view
                    .breakdown_property_of(&members, &by.text, &event.text, top)
                    .map_err(|e| match e {
                        e @ Error::UnknownName { .. } => e.at(by.span),
                        e => e,
                    })?,
                None => view.breakdown_of(&members, &by.text, top)?,
            };
            Ok(Output::Breakdown {
                by: by_text.clone(),
                columns: vec![by_text.clone()],
                total,
                lines,
            })
        })
    }

    /// Hints for the string values a statement compares with (`=`, `!=`, `IN`) that no
    /// member (or event) has, where one differs only in case or by a typo: `no member has
    /// city 'shanghai'; did you mean 'Shanghai'?`. The CLI prints them beside the answer.
    pub fn value_hints(&self, statement: &Statement) -> Vec<String> {
        let view = self.as_of(self.now());
        let mut hints = Vec::new();
        let segment = match &statement.kind {
            StatementKind::Count(e)
            | StatementKind::Explain(e)
            | StatementKind::Find { segment: e, .. }
            | StatementKind::Breakdown { segment: e, .. }
            | StatementKind::Export { segment: e, .. }
            | StatementKind::DefineGroup { segment: e, .. } => e,
            _ => return hints,
        };
        expr_hints(&view, segment, &mut hints);
        hints
    }
}

/// The string literals of an `=`, `!=` or `IN` test.
fn compared_strings(test: &memberdb_query::ast::Test) -> Vec<&str> {
    use memberdb_query::ast::{CmpOp, LiteralKind, Test};
    fn text(l: &memberdb_query::ast::Literal) -> Option<&str> {
        match &l.kind {
            LiteralKind::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }
    match test {
        Test::Cmp(CmpOp::Eq | CmpOp::Ne, l) => text(l).into_iter().collect(),
        Test::In(list) => list.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

fn hint_text(whose: &str, name: &str, value: &str, close: &[String]) -> Option<String> {
    let quoted: Vec<String> = close.iter().map(|c| format!("'{c}'")).collect();
    (!close.is_empty()).then(|| {
        format!(
            "no {whose} has {name} '{value}'; did you mean {}?",
            quoted.join(" or ")
        )
    })
}

fn expr_hints(view: &View<'_>, expr: &memberdb_query::ast::Expr, hints: &mut Vec<String>) {
    use memberdb_query::ast::Expr;
    match expr {
        Expr::Cmp(c) => {
            for value in compared_strings(&c.test) {
                let close = view.value_hint(&c.name.text, value);
                hints.extend(hint_text("member", &c.name.text, value, &close));
            }
        }
        Expr::Did(did, _) => {
            if let Some(filter) = &did.filter {
                prop_hints(view, &did.event.text, filter, hints);
            }
        }
        Expr::And(parts, _) | Expr::Or(parts, _) => {
            parts.iter().for_each(|p| expr_hints(view, p, hints));
        }
        Expr::Not(inner, _) => expr_hints(view, inner, hints),
        Expr::All(_)
        | Expr::Tag(..)
        | Expr::InGroup(..)
        | Expr::Value(_)
        | Expr::Identifiers { .. } => {}
    }
}

fn prop_hints(
    view: &View<'_>,
    event: &str,
    filter: &memberdb_query::ast::PropExpr,
    hints: &mut Vec<String>,
) {
    use memberdb_query::ast::PropExpr;
    match filter {
        PropExpr::Cmp(c) => {
            for value in compared_strings(&c.test) {
                let close = view.property_value_hint(event, &c.name.text, value);
                let whose = format!("{event} event");
                hints.extend(hint_text(&whose, &c.name.text, value, &close));
            }
        }
        PropExpr::And(parts, _) | PropExpr::Or(parts, _) => {
            parts.iter().for_each(|p| prop_hints(view, event, p, hints));
        }
        PropExpr::Not(inner, _) => prop_hints(view, event, inner, hints),
    }
}

/// The declaration `DEFINE IDENTIFIER` names, its defaults filled in: `LIMIT 1`, and the
/// priority after every declared type's.
fn identifier_def(
    db: &Database,
    name: &memberdb_query::ast::Name,
    limit: Option<u64>,
    priority: Option<u64>,
    block: &[memberdb_query::ast::Literal],
) -> Result<crate::identity::IdentifierDef> {
    let declared = db.identifiers();
    if let Some(existing) = declared.iter().find(|i| i.def.name == name.text)
        && limit.is_none()
        && priority.is_none()
        && block.is_empty()
    {
        return Ok(existing.def.clone());
    }
    let number = |n: Option<u64>, what: &str, default: u32| -> Result<u32> {
        match n {
            None => Ok(default),
            Some(n) => u32::try_from(n).map_err(|_| {
                Error::InvalidSegment(format!("{what} {n} is too large")).at(name.span)
            }),
        }
    };
    let next_priority = declared.iter().map(|i| i.def.priority).max().unwrap_or(0) + 1;
    let mut blocked = Vec::with_capacity(block.len());
    for b in block {
        match &b.kind {
            memberdb_query::ast::LiteralKind::Str(s) => blocked.push(s.clone()),
            _ => {
                return Err(Error::InvalidSegment("BLOCK takes quoted values".into()).at(b.span));
            }
        }
    }
    Ok(crate::identity::IdentifierDef {
        name: name.text.clone(),
        limit: number(limit, "LIMIT", 1)?,
        priority: number(priority, "PRIORITY", next_priority)?,
        blocked,
    })
}
