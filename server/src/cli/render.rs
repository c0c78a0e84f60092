//! Statement outputs as a readable table, JSON lines (DESIGN section 4) or CSV.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use memberdb::Value;
use memberdb::query::Output;
use serde_json::{Map, json};

/// Output formats of `memberdb query` and the REPL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Readable tables.
    Table,
    /// One JSON object per statement, one per line.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

fn json_value(v: &Option<Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(Value::Int(i)) => json!(i),
        Some(Value::Float(x)) => json!(x),
        Some(Value::Bool(b)) => json!(b),
        Some(other) => json!(other.to_string()),
    }
}

/// A value as text; `None` for NULL (a table shows `NULL`, CSV an empty field).
fn text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

/// Header and rows of an output, as text (`None`: NULL).
fn grid(output: &Output) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    match output {
        Output::Count(n) => (vec!["count".into()], vec![vec![Some(n.to_string())]]),
        Output::Sql(sql) => (vec!["sql".into()], vec![vec![Some(sql.clone())]]),
        Output::Find(found) => (
            found.columns.clone(),
            found
                .rows
                .iter()
                .map(|r| {
                    std::iter::once(Some(r.member_id.clone()))
                        .chain(r.values.iter().map(text))
                        .collect()
                })
                .collect(),
        ),
        Output::Breakdown { lines, columns, .. } => (
            if columns.len() == 1 {
                vec!["value".into(), "count".into()]
            } else {
                columns.iter().cloned().chain(["count".into()]).collect()
            },
            lines
                .iter()
                .map(|l| {
                    std::iter::once(text(&l.value))
                        .chain(l.more.iter().map(text))
                        .chain([Some(l.count.to_string())])
                        .collect()
                })
                .collect(),
        ),
        Output::Overlap {
            columns,
            total,
            lines,
        } => {
            if columns.is_empty() {
                return (vec!["count".into()], vec![vec![Some(total.to_string())]]);
            }
            let mut header = if columns.len() == 1 {
                vec!["value".to_string()]
            } else {
                columns.clone()
            };
            header.push("count".into());
            let rows = lines
                .iter()
                .map(|(values, n)| {
                    values
                        .iter()
                        .map(text)
                        .chain([Some(n.to_string())])
                        .collect()
                })
                .collect();
            (header, rows)
        }
        Output::GroupDefined { name, members } => (
            vec!["group".into(), "members".into()],
            vec![vec![Some(name.clone()), Some(members.to_string())]],
        ),
        Output::GroupDropped(name) => {
            (vec!["dropped group".into()], vec![vec![Some(name.clone())]])
        }
        Output::TraitDefined { name, members } => (
            vec!["trait".into(), "members with a value".into()],
            vec![vec![Some(name.clone()), Some(members.to_string())]],
        ),
        Output::TraitDropped(name) => {
            (vec!["dropped trait".into()], vec![vec![Some(name.clone())]])
        }
        Output::AttributeAltered { name, data_type } => (
            vec!["attribute".into(), "type".into()],
            vec![vec![Some(name.clone()), Some(data_type.to_string())]],
        ),
        Output::AttributeDropped(name) => (
            vec!["dropped attribute".into()],
            vec![vec![Some(name.clone())]],
        ),
        Output::IdentifierDefined(def) => (
            vec![
                "identifier".into(),
                "limit".into(),
                "priority".into(),
                "blocked".into(),
            ],
            vec![vec![
                Some(def.name.clone()),
                Some(def.limit.to_string()),
                Some(def.priority.to_string()),
                Some(def.blocked.join(", ")),
            ]],
        ),
        Output::MergeRuleSet { attribute, rule } => (
            vec!["attribute".into(), "merge".into()],
            vec![vec![
                Some(attribute.clone()),
                Some(rule.as_str().to_string()),
            ]],
        ),
        Output::Exported { path, rows, .. } => (
            vec!["exported to".into(), "members".into()],
            vec![vec![Some(path.clone()), Some(rows.to_string())]],
        ),
        Output::Table { columns, rows } => (
            columns.clone(),
            rows.iter()
                .map(|r| r.iter().cloned().map(Some).collect())
                .collect(),
        ),
        Output::Funnel(report) => {
            let mut columns: Vec<String> = report.by.iter().cloned().collect();
            columns.extend(FUNNEL_COLUMNS[..].iter().map(|c| c.to_string()));
            let rows = report
                .rows
                .iter()
                .map(|r| {
                    let by = report.by.as_ref().map(|_| text(&r.bucket));
                    by.into_iter()
                        .chain([
                            Some(r.step.to_string()),
                            Some(r.event.clone()),
                            Some(r.members.to_string()),
                            Some(format!("{:.4}", r.share_of_first)),
                            Some(format!("{:.4}", r.share_of_previous)),
                            r.median_seconds.map(|s| format!("{s}")),
                        ])
                        .collect()
                })
                .collect();
            (columns, rows)
        }
    }
}

/// The columns of a funnel's rows (after the `BY` column, if any).
const FUNNEL_COLUMNS: [&str; 6] = [
    "step",
    "event",
    "members",
    "share_of_first",
    "share_of_previous",
    "median_seconds",
];

/// Seconds as a short duration: `45s`, `12m 30s`, `3h 05m`, `2d 04h`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as i64;
    match s {
        ..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Width of a share bar at 100 %, in characters.
const BAR_WIDTH: usize = 20;

/// `part` of `total` as a percentage and a bar of eighth blocks: `55.5% ███████████▏`.
fn share_bar(part: u64, total: u64) -> String {
    let share = part as f64 / total.max(1) as f64;
    let eighths = (share * (BAR_WIDTH * 8) as f64).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        bar.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
    }
    format!("{:>5.1}% {bar}", share * 100.0)
}

/// One CSV field as EXPORT writes it (`memberdb::write_csv_field`); NULL is an empty field.
fn csv_field(s: Option<&str>) -> String {
    let mut out = Vec::new();
    if let Some(s) = s {
        memberdb::write_csv_field(&mut out, s);
    }
    String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
}

/// For FIND outputs cut at their LIMIT: what was left out, to say on stderr where the
/// format (CSV, JSON) has no room for it. A table says it under itself: `None`.
pub(crate) fn truncation_note(output: &Output, format: Format) -> Option<String> {
    match output {
        Output::Find(found)
            if format != Format::Table && (found.rows.len() as u64) < found.total =>
        {
            Some(format!(
                "note: FIND gave {} of {} members (its LIMIT); raise the LIMIT for all of them",
                found.rows.len(),
                found.total
            ))
        }
        _ => None,
    }
}

/// Renders one output.
pub(crate) fn render(output: &Output, format: Format) -> String {
    // compiled SQL prints as itself, to paste into a ClickHouse client
    if let (Output::Sql(sql), Format::Table) = (output, format) {
        return sql.trim_end().to_string();
    }
    match format {
        Format::Json => match output {
            Output::Count(n) => json!({ "count": n }).to_string(),
            Output::Find(found) => {
                let members: Vec<serde_json::Value> = found
                    .rows
                    .iter()
                    .map(|r| {
                        let mut m = Map::new();
                        m.insert("member_id".into(), json!(r.member_id));
                        for (c, v) in found.columns[1..].iter().zip(&r.values) {
                            m.insert(c.clone(), json_value(v));
                        }
                        serde_json::Value::Object(m)
                    })
                    .collect();
                json!({ "members": members }).to_string()
            }
            // {"value": v, "count": n}; by several columns {"a": v1, "b": v2, "count": n}
            Output::Breakdown { lines, columns, .. } => {
                let lines: Vec<_> = lines
                    .iter()
                    .map(|l| {
                        if columns.len() == 1 {
                            return json!({"value": json_value(&l.value), "count": l.count});
                        }
                        let mut m = serde_json::Map::new();
                        let values = std::iter::once(&l.value).chain(&l.more);
                        for (column, value) in columns.iter().zip(values) {
                            m.insert(column.clone(), json_value(value));
                        }
                        m.insert("count".into(), json!(l.count));
                        serde_json::Value::Object(m)
                    })
                    .collect();
                json!({ "breakdown": lines }).to_string()
            }
            Output::GroupDefined { name, members } => {
                json!({"group": name, "members": members}).to_string()
            }
            Output::GroupDropped(name) => json!({ "dropped": name }).to_string(),
            Output::TraitDefined { name, members } => {
                json!({"trait": name, "members": members}).to_string()
            }
            Output::TraitDropped(name) => json!({ "dropped_trait": name }).to_string(),
            Output::AttributeAltered { name, data_type } => {
                json!({"attribute": name, "type": data_type.to_string()}).to_string()
            }
            Output::AttributeDropped(name) => json!({ "dropped_attribute": name }).to_string(),
            Output::IdentifierDefined(def) => json!({
                "identifier": def.name,
                "limit": def.limit,
                "priority": def.priority,
                "blocked": def.blocked,
            })
            .to_string(),
            Output::MergeRuleSet { attribute, rule } => {
                json!({"attribute": attribute, "merge": rule.as_str()}).to_string()
            }
            Output::Exported { path, rows, .. } => {
                json!({"exported": path, "members": rows}).to_string()
            }
            Output::Funnel(report) => {
                let rows: Vec<_> = report
                    .rows
                    .iter()
                    .map(|r| {
                        let mut m = Map::new();
                        if report.by.is_some() {
                            m.insert("bucket".into(), json_value(&r.bucket));
                        }
                        m.insert("step".into(), json!(r.step));
                        m.insert("event".into(), json!(r.event));
                        m.insert("members".into(), json!(r.members));
                        m.insert("share_of_first".into(), json!(r.share_of_first));
                        m.insert("share_of_previous".into(), json!(r.share_of_previous));
                        m.insert("median_seconds".into(), json!(r.median_seconds));
                        serde_json::Value::Object(m)
                    })
                    .collect();
                json!({"funnel": rows, "by": report.by}).to_string()
            }
            other => {
                let (columns, rows) = grid(other);
                json!({"columns": columns, "rows": rows}).to_string()
            }
        },
        Format::Csv => {
            let (columns, rows) = grid(output);
            let mut out = columns
                .iter()
                .map(|c| csv_field(Some(c)))
                .collect::<Vec<_>>()
                .join(",");
            for row in rows {
                out.push('\n');
                out.push_str(
                    &row.iter()
                        .map(|c| csv_field(c.as_deref()))
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            out
        }
        Format::Table => {
            if let Output::Count(n) = output {
                return n.to_string();
            }
            let (mut columns, mut rows) = grid(output);
            if let Output::Breakdown {
                columns: by,
                total,
                lines,
                ..
            } = output
            {
                // The columns' names over their values, and each line's share of the
                // segment with a bar: a distribution reads faster than numbers.
                columns = by
                    .iter()
                    .cloned()
                    .chain(["members".into(), "share".into()])
                    .collect();
                for (row, line) in rows.iter_mut().zip(lines) {
                    row.push(Some(share_bar(line.count, *total)));
                }
            }
            if let Output::Funnel(report) = output {
                // Each step's share of the first with a bar, the previous step's share and
                // the median time as people read them.
                let by = usize::from(report.by.is_some());
                columns.truncate(by + 3);
                columns.extend([
                    "of first".into(),
                    "of previous".into(),
                    "median from previous".into(),
                ]);
                let mut first = 0;
                for (row, r) in rows.iter_mut().zip(&report.rows) {
                    if r.step == 1 {
                        first = r.members;
                    }
                    row.truncate(by + 3);
                    row.push(Some(share_bar(r.members, first)));
                    row.push(Some(format!("{:.1}%", r.share_of_previous * 100.0)));
                    row.push(Some(r.median_seconds.map_or("-".into(), duration)));
                }
            }
            let mut table = Table::new();
            table.load_style(UTF8_FULL_CONDENSED).set_header(columns);
            let shown = rows.len();
            for row in rows {
                table.add_row(
                    row.into_iter()
                        .map(|c| c.unwrap_or_else(|| "NULL".to_string())),
                );
            }
            let mut out = table.to_string();
            if let Output::Find(found) = output {
                out.push_str(&format!("\n{shown} of {} members", found.total));
            }
            out
        }
    }
}
