//! Funnels as SQL (DESIGN section 10). The entered members (a first-step event in the
//! range, within `FOR`) are a segment like any other; each one's events of the steps'
//! types become one time-ordered array of marks (time, order in the file, a bit per step
//! the event may fill, the entry's `TOUCH` property); from each entry, an `arrayFold` over
//! the steps takes each next step's earliest event strictly later than the step before and
//! at most `WITHIN` after the entry, as `sequence/walk.rs` does. The member's furthest step
//! and the times of its earliest entry reaching it give the counts, shares and medians.

use super::Tables;
use super::literal::{ident, string};
use super::segment::{Parts, segment_bitmap};
use crate::computed::ValueExpr;
use crate::error::Result;
use crate::sequence::{Funnel, FunnelBy};
use crate::state::State;

/// What a compiled funnel gives: the report, or the members at one step.
pub(super) enum Asked<'q> {
    Report,
    AtStep {
        step: usize,
        columns: &'q [String],
        limit: Option<usize>,
        offset: usize,
    },
}

/// `funnel` (bound at `now`) as one SQL query.
pub(super) fn funnel(
    state: &State,
    tables: &Tables,
    now: i64,
    funnel: &Funnel,
    asked: Asked<'_>,
) -> Result<String> {
    // the engine's checks and errors: event types, properties, the BY value
    crate::plan::bind_funnel(state, funnel, now, None)?;
    let steps = funnel.steps.len();
    let entry = funnel.entry_segment();
    let plan = crate::plan::bind(state, &entry, now, None)?;
    let mut parts = Parts::new(state, tables, now);
    let root = parts.root(&plan)?;
    let members = segment_bitmap();

    // the buckets of a BY value, or the members shown at a step: values over the members
    let by_value = match &funnel.by {
        Some(FunnelBy::Value(v)) => {
            let value = parts.value(v, false)?;
            let (mut exprs, joins) = parts.output(vec![value])?;
            Some((exprs.remove(0), joins))
        }
        _ => None,
    };
    let shown = match &asked {
        Asked::AtStep { columns, .. } => {
            let mut values = Vec::new();
            for name in *columns {
                values.push(parts.value(&ValueExpr::Attr(name.clone()), false)?);
            }
            Some(parts.output(values)?)
        }
        Asked::Report => None,
    };
    let mut with = parts.with_clause(&entry.to_string(), &root);

    // each event's steps: bit k for step k + 1 (the first step's only in the range)
    let mut roles = Vec::new();
    for (k, step) in funnel.steps.iter().enumerate() {
        let window = if k == 0 { funnel.range.as_ref() } else { None };
        let condition = parts.event_conditions(&step.event, window, step.filter.as_ref())?;
        roles.push(format!("if({condition}, {}, 0)", 1u64 << k));
    }
    let touch = match &funnel.by {
        Some(FunnelBy::FirstTouch(p) | FunnelBy::LastTouch(p)) => ident(p),
        _ => "NULL".to_string(),
    };
    let mut types: Vec<String> = funnel.steps.iter().map(|s| string(&s.event)).collect();
    types.sort();
    types.dedup();
    let seq = tables.seq;
    with.push_str(&format!(
        ",\n    -- each entered member's events of the steps' types, in time order (equal times \
         as written), with the steps each may fill\n    \
         marks AS (SELECT member_row, arraySort(groupArray((t, seq, roles, touch))) AS m FROM (\n        \
         SELECT member_row, toUnixTimestamp64Micro(ts) AS t, {seq} AS seq, toUInt64({}) AS roles, \
         {touch} AS touch\n        FROM {} WHERE event IN ({}) AND bitmapContains({members}, \
         member_row)\n    ) WHERE roles > 0 GROUP BY member_row)",
        roles.join(" + "),
        tables.events,
        types.join(", "),
    ));
    let within = crate::segment::window_span(funnel.within.0, funnel.within.1)
        .unwrap_or(i64::MAX)
        .min(super::sequence::UNBOUNDED);
    // from entry time t0, step k + 1's earliest event after step k's and by t0 + within
    let next = format!(
        "e -> bitAnd(e.3, bitShiftLeft(toUInt64(1), k)) != 0 AND e.1 > chain[k] AND e.1 <= t0 + \
         {within}"
    );
    let chain = format!(
        "arrayFold((chain, k) -> if(length(chain) = k AND arrayExists({next}, m), \
         arrayPushBack(chain, arrayFirst({next}, m).1), chain), range(1, {steps}), [t0])"
    );
    with.push_str(&format!(
        ",\n    -- from each entry the chain of steps; the furthest, and the times of the \
         earliest entry reaching it\n    \
         reach AS (SELECT member_row, arrayFilter(e -> bitAnd(e.3, 1) != 0, m) AS entries,\n        \
         arrayMap(t0 -> {chain}, arrayMap(e -> e.1, entries)) AS chains,\n        \
         arrayMax(arrayMap(c -> length(c), chains)) AS furthest,\n        \
         arrayFirst(c -> length(c) = furthest, chains) AS times,\n        \
         entries[1].4 AS first_touch, entries[-1].4 AS last_touch\n    FROM marks)"
    ));

    if let Asked::AtStep {
        step,
        columns,
        limit,
        offset,
    } = asked
    {
        funnel.check_step(step)?;
        let (exprs, joins) = shown.unwrap_or_default();
        let mut out = vec!["member_id".to_string()];
        for (name, expr) in columns.iter().zip(exprs) {
            out.push(super::aliased(expr, &ident(name)));
        }
        let mut sql = format!(
            "{with}\nSELECT {}\nFROM (SELECT * FROM {} WHERE member_row IN (SELECT member_row \
             FROM reach WHERE furthest = {step})) AS m{joins}\nORDER BY member_row",
            out.join(", "),
            tables.members
        );
        if let Some(limit) = limit {
            sql.push_str(&format!("\nLIMIT {limit}"));
        }
        if offset > 0 {
            sql.push_str(&format!(" OFFSET {offset}"));
        }
        return Ok(sql);
    }

    let (bucket, join) = match (&funnel.by, by_value) {
        (Some(FunnelBy::FirstTouch(_)), _) => ("first_touch".to_string(), String::new()),
        (Some(FunnelBy::LastTouch(_)), _) => ("last_touch".to_string(), String::new()),
        (_, Some((expr, joins))) => (
            "bucket".to_string(),
            format!(
                "\n    LEFT JOIN (SELECT member_row, {expr} AS bucket FROM (SELECT * FROM {} WHERE \
                 bitmapContains({members}, member_row)) AS m{}) AS b USING member_row",
                tables.members,
                joins.replace('\n', "\n    ")
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let names: Vec<String> = funnel.steps.iter().map(|s| string(&s.event)).collect();
    // per (bucket, step): members reaching it, the bucket's entered members, those reaching
    // the step before, the gaps from the step before (sorted)
    let grouped = |select: &str, key: &str| {
        format!(
            "SELECT {select}step, countIf(furthest >= step) AS members, count() AS entered, \
             countIf(furthest >= step - 1) AS previous,\n        \
             arraySort(groupArrayIf(times[step] - times[step - 1], furthest >= step AND step > \
             1)) AS gaps\n    FROM reach ARRAY JOIN range(1, {}) AS step{join} GROUP BY {key}step",
            steps + 1
        )
    };
    let columns = "step, [{}][step] AS event, members, if(entered = 0, 0., members / entered) AS \
                   share_of_first, if(previous = 0, 0., members / previous) AS share_of_previous, if(empty(gaps), NULL, \
                   if(length(gaps) % 2 = 1, toFloat64(gaps[intDiv(length(gaps), 2) + 1]), \
                   (toFloat64(gaps[intDiv(length(gaps), 2)]) + toFloat64(gaps[intDiv(length(gaps), \
                   2) + 1])) / 2) / 1e6) AS median_seconds"
        .replace("{}", &names.join(", "));
    Ok(if bucket.is_empty() {
        // every step, even when nobody entered
        format!(
            "{with}\nSELECT {columns}\nFROM (SELECT arrayJoin(range(1, {})) AS step) AS s\n\
             LEFT JOIN (\n    {}\n) AS a USING step\nORDER BY step",
            steps + 1,
            grouped("", "")
        )
    } else {
        format!(
            "{with}\nSELECT bucket, {columns}\nFROM (\n    {}\n)\nORDER BY entered DESC, bucket ASC \
             NULLS LAST, step",
            grouped(&format!("{bucket} AS bucket, "), "bucket, ")
        )
    })
}
