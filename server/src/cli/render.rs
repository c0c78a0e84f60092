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

fn text(v: &Option<Value>) -> String {
    v.as_ref()
        .map_or_else(|| "NULL".to_string(), Value::to_string)
}

/// Header and rows of an output, as text.
fn grid(output: &Output) -> (Vec<String>, Vec<Vec<String>>) {
    match output {
        Output::Count(n) => (vec!["count".into()], vec![vec![n.to_string()]]),
        Output::Find(found) => (
            found.columns.clone(),
            found
                .rows
                .iter()
                .map(|r| {
                    std::iter::once(r.member_id.clone())
                        .chain(r.values.iter().map(text))
                        .collect()
                })
                .collect(),
        ),
        Output::Breakdown(lines) => (
            vec!["value".into(), "count".into()],
            lines
                .iter()
                .map(|l| vec![text(&l.value), l.count.to_string()])
                .collect(),
        ),
        Output::GroupDefined { name, members } => (
            vec!["group".into(), "members".into()],
            vec![vec![name.clone(), members.to_string()]],
        ),
        Output::GroupDropped(name) => (vec!["dropped group".into()], vec![vec![name.clone()]]),
        Output::Table { columns, rows } => (columns.clone(), rows.clone()),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Renders one output.
pub(crate) fn render(output: &Output, format: Format) -> String {
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
            Output::Breakdown(lines) => {
                let lines: Vec<_> = lines
                    .iter()
                    .map(|l| json!({"value": json_value(&l.value), "count": l.count}))
                    .collect();
                json!({ "breakdown": lines }).to_string()
            }
            Output::GroupDefined { name, members } => {
                json!({"group": name, "members": members}).to_string()
            }
            Output::GroupDropped(name) => json!({ "dropped": name }).to_string(),
            other => {
                let (columns, rows) = grid(other);
                json!({"columns": columns, "rows": rows}).to_string()
            }
        },
        Format::Csv => {
            let (columns, rows) = grid(output);
            let mut out = columns
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(",");
            for row in rows {
                out.push('\n');
                out.push_str(
                    &row.iter()
                        .map(|c| csv_field(c))
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
            let (columns, rows) = grid(output);
            let mut table = Table::new();
            table.load_style(UTF8_FULL_CONDENSED).set_header(columns);
            let shown = rows.len();
            for row in rows {
                table.add_row(row);
            }
            let mut out = table.to_string();
            if let Output::Find(found) = output {
                out.push_str(&format!("\n{shown} of {} members", found.total));
            }
            out
        }
    }
}
