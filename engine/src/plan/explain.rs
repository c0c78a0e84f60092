//! EXPLAIN: the plan that ran, one row per operator in pre-order, with how it ran (the
//! leaf's kernel, or how many chunks each kernel took), its members and its time.

use std::time::Instant;

use super::exec::{Kernel, NodeStats, Run, Universe};
use super::{Node, Op, Plan};
use crate::error::Result;

/// Runs `plan` as a count, profiled, and describes every operator. Returns the rows
/// (step, kernel, members, µs) and the count.
pub(crate) fn explain(
    plan: &Plan<'_>,
    universe: Universe<'_>,
    deadline: Option<Instant>,
) -> Result<(Vec<Vec<String>>, u64)> {
    let started = Instant::now();
    let mut run = Run::start(plan, universe, deadline, true)?;
    let total = run.count()?;
    let micros = started.elapsed().as_micros();
    let stats = run.stats.take().unwrap_or_default();
    let mut rows = Vec::new();
    let mut id = 0;
    describe(&plan.root, 0, false, &stats, &mut id, &mut rows);
    rows.push(vec![
        format!(
            "COUNT over the universe, {} chunk(s) of 65,536",
            stats.first().map_or(0, |s| s.kernels.iter().sum::<u32>())
        ),
        format!(
            "computed leaves first, then every bitmap walked together chunk by chunk{}",
            if plan.moves_with_time {
                format!(
                    "; moves with now (windows resolved at {})",
                    crate::value::Timestamp(plan.now)
                )
            } else {
                String::new()
            }
        ),
        total.to_string(),
        micros.to_string(),
    ]);
    Ok((rows, total))
}

fn describe(
    node: &Node<'_>,
    depth: usize,
    negated: bool,
    stats: &[NodeStats],
    id: &mut usize,
    rows: &mut Vec<Vec<String>>,
) {
    let my = *id;
    *id += 1;
    let s = stats.get(my).cloned().unwrap_or_default();
    let text = node.source_text();
    let text = if text.chars().count() > 80 {
        format!("{}…", text.chars().take(79).collect::<String>())
    } else {
        text
    };
    let kernel = match &node.op {
        Op::Universe => "the universe".to_string(),
        Op::Nothing => "no member (the predicate cannot hold)".to_string(),
        Op::Stored(_) => "stored bitmap".to_string(),
        Op::Computed { leaf, .. } => leaf.kernel(),
        Op::And { .. } => format!("AND / AND NOT: {}", kernels(&s)),
        Op::Or(_) => format!("OR: {}", kernels(&s)),
    };
    rows.push(vec![
        format!(
            "{}{}{text}",
            "  ".repeat(depth),
            if negated { "NOT " } else { "" }
        ),
        kernel,
        s.members.to_string(),
        (s.nanos / 1000).to_string(),
    ]);
    match &node.op {
        Op::And { pos, neg } => {
            for child in pos {
                describe(child, depth + 1, false, stats, id, rows);
            }
            for child in neg {
                describe(child, depth + 1, true, stats, id, rows);
            }
        }
        Op::Or(parts) if parts.len() > COLLAPSE && parts.iter().all(is_leaf) => {
            // A window's days: one row for them all.
            let first = *id;
            *id += parts.len();
            let nanos: u64 = stats
                .get(first..*id)
                .map_or(0, |s| s.iter().map(|s| s.nanos).sum());
            let computed = parts
                .iter()
                .filter(|p| matches!(p.op, Op::Computed { .. }))
                .count();
            rows.push(vec![
                format!(
                    "{}{} operands: {} … {}",
                    "  ".repeat(depth + 1),
                    parts.len(),
                    parts[0].source_text(),
                    parts[parts.len() - 1].source_text()
                ),
                format!(
                    "{} stored bitmaps, {computed} computed",
                    parts.len() - computed
                ),
                String::new(),
                (nanos / 1000).to_string(),
            ]);
        }
        Op::Or(parts) => {
            for child in parts {
                describe(child, depth + 1, false, stats, id, rows);
            }
        }
        _ => {}
    }
}

/// ORs of more leaves than this are shown as one row of operands.
const COLLAPSE: usize = 8;

fn is_leaf(node: &Node<'_>) -> bool {
    matches!(node.op, Op::Stored(_) | Op::Computed { .. })
}

/// "word-wise ×140, array probe ×13": the chunks each kernel took.
fn kernels(s: &NodeStats) -> String {
    let used: Vec<String> = Kernel::ALL
        .iter()
        .zip(s.kernels)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{} ×{n}", k.name()))
        .collect();
    if used.is_empty() {
        "no chunk".to_string()
    } else {
        used.join(", ")
    }
}
