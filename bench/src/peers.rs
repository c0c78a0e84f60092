//! The report of the peer harness: measurements, the goals of the benchmark issue, and the
//! markdown written to `bench/results/peers-N.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// The median of samples in µs (0 when empty).
pub fn median_us(samples: &[f64]) -> f64 {
    percentile(samples, 0.5)
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

/// Resident memory of this process in bytes (Linux `/proc/self/statm`; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Timings of one system on one workload.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Median, µs.
    pub median: f64,
    /// 90th percentile, µs.
    pub p90: f64,
    /// Repetitions measured.
    pub reps: usize,
}

impl Measurement {
    /// Summarises samples in µs.
    pub fn of(samples: &[f64]) -> Self {
        Measurement {
            median: median_us(samples),
            p90: percentile(samples, 0.9),
            reps: samples.len(),
        }
    }
}

/// One workload's line of the table.
pub struct Row {
    /// Q1..Q8.
    pub name: &'static str,
    /// The statement memberdb ran.
    pub statement: String,
    /// The answer every system gave, short.
    pub answer: String,
    /// memberdb, in process, statement text to answer.
    pub memberdb: Measurement,
    /// DuckDB, in its Python process, SQL to fetched rows.
    pub duckdb: Measurement,
    /// The raw roaring operations (Q1, Q2).
    pub roaring: Option<Measurement>,
    /// The fused word-wise count over dense bitsets (Q1, Q2), in Rust.
    pub dense: Option<Measurement>,
    /// The other peers that ran this workload: chdb (wide tables, bitmap functions), CRoaring,
    /// numpy, the fused count in C.
    pub others: Vec<(&'static str, Measurement)>,
}

impl Row {
    /// A peer's measurement by its label.
    pub fn other(&self, label: &str) -> Option<&Measurement> {
        self.others
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, m)| m)
    }

    /// The fastest hand-written chdb query's median (wide tables or bitmap functions).
    pub fn best_chdb(&self) -> Option<f64> {
        ["chdb", "chdb bitmap"]
            .iter()
            .filter_map(|l| self.other(l))
            .map(|m| m.median)
            .reduce(f64::min)
    }
}

/// A goal of the benchmark issue and whether this run met it.
pub struct Goal {
    /// What is asked.
    pub what: String,
    /// What was measured.
    pub measured: String,
    /// Met?
    pub met: bool,
}

/// Everything one run of the harness measured.
#[derive(Default)]
pub struct Report {
    /// Members asked for.
    pub members: u64,
    /// Rounds of turns.
    pub rounds: usize,
    /// Sizes of the Parquet inputs: (file, bytes).
    pub parquet: Vec<(String, u64)>,
    /// Live members and events after the load.
    pub db_members: u64,
    /// Events after the load.
    pub db_events: u64,
    /// (what, rows, time) of each bulk load.
    pub loads: Vec<(&'static str, u64, Duration)>,
    /// Growth of the resident set over the load.
    pub rss_delta: u64,
    /// The engine's own count of its heap bytes, by part.
    pub memory: memberdb::MemoryUsage,
    /// Time to save the loaded database.
    pub save: Option<Duration>,
    /// Bytes of the saved database, the time to read them all, and the time to read them
    /// with the Parquet files decoded to Arrow.
    pub read_files: Option<(u64, Duration, Duration)>,
    /// Time to open the saved database (in a new process).
    pub open: Option<Duration>,
    /// The resident set of that process once the database is open.
    pub open_rss: Option<u64>,
    /// DuckDB's version, threads and load time.
    pub duckdb_version: String,
    /// DuckDB's `threads` setting.
    pub duckdb_threads: String,
    /// The other peers' versions: (peer, version).
    pub peer_versions: Vec<(String, String)>,
    /// Workloads `memberdb compile` refuses: (workload, the error).
    pub not_compiled: Vec<(String, String)>,
    /// DuckDB's load of the Parquet files into its tables.
    pub duckdb_load: Duration,
    /// The table.
    pub rows: Vec<Row>,
    /// The goals, evaluated.
    pub goals: Vec<Goal>,
}

impl Report {
    /// A report for the data set in `dir`.
    pub fn new(members: u64, dir: &Path) -> std::io::Result<Self> {
        let mut parquet = Vec::new();
        for file in ["members.parquet", "events.parquet", "tags.parquet"] {
            parquet.push((file.to_string(), std::fs::metadata(dir.join(file))?.len()));
        }
        Ok(Report {
            members,
            parquet,
            ..Report::default()
        })
    }

    fn parquet_bytes(&self) -> u64 {
        self.parquet.iter().map(|(_, b)| b).sum()
    }

    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Peers: memberdb, DuckDB, chdb and the bitmap baselines at {} members\n",
            self.members
        );
        let _ = writeln!(md, "- date: {}", now_utc());
        let _ = writeln!(md, "- machine: {}", machine());
        let _ = writeln!(
            md,
            "- versions: memberdb {} ({}), DuckDB {} (Python package, threads = {}), roaring {}",
            env!("CARGO_PKG_VERSION"),
            command_line("rustc", &["--version"]),
            self.duckdb_version,
            self.duckdb_threads,
            ROARING_VERSION,
        );
        for (peer, version) in &self.peer_versions {
            let _ = writeln!(md, "- {peer}: {version}");
        }
        for (workload, why) in &self.not_compiled {
            let _ = writeln!(md, "- not compiled: {workload}: {why}");
        }
        let _ = writeln!(
            md,
            "- data: {} members, {} events from `memberdb gen --members {} --seed 42 --end \
             2026-11-01`; Parquet {} ({})",
            self.db_members,
            self.db_events,
            self.members,
            mib(self.parquet_bytes()),
            self.parquet
                .iter()
                .map(|(f, b)| format!("{f} {}", mib(*b)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            md,
            "- method: each workload runs in memberdb (in process, statement text to answer, \
             walks past 1 ms split across the cores), then DuckDB (same Parquet files loaded into in-memory tables, SQL to \
             fetched rows), then chdb (the same files in MergeTree tables, SQL to fetched \
             rows; and its bitmap functions over bitmaps it built from the files), then the \
             bitmap baselines on the engine's own bitmaps (raw roaring-rs, CRoaring through \
             pyroaring, numpy dense bitsets, a fused word-wise count in Rust and one compiled \
             by gcc -O3 -march=native); {} such turn(s), each after a warm-up; medians of all \
             repetitions. Every system's answer must agree (a count of float sums against a \
             threshold may differ by the members whose sum is within 1e-6 of it: DuckDB adds \
             in no fixed order).\n",
            self.rounds
        );
        md.push_str(
            "| query | memberdb µs | duckdb µs | roaring µs | fused dense µs | duckdb/memberdb | memberdb/roaring | memberdb/fused dense |\n",
        );
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        let against = |m: &Option<Measurement>, ours: f64| match m {
            Some(m) => (
                format!("{:.1}", m.median),
                format!("{:.2}x", ours / m.median),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        for r in &self.rows {
            let (roaring, roaring_ratio) = against(&r.roaring, r.memberdb.median);
            let (dense, dense_ratio) = against(&r.dense, r.memberdb.median);
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.1} | {} | {} | {:.0}x | {} | {} |",
                r.name,
                r.memberdb.median,
                r.duckdb.median,
                roaring,
                dense,
                r.duckdb.median / r.memberdb.median,
                roaring_ratio,
                dense_ratio
            );
        }
        // The compiled SQL beside the hand-written ClickHouse queries and memberdb.
        if self.rows.iter().any(|r| r.other("chdb compiled").is_some()) {
            md.push_str(
                "\nCompiled SQL (`memberdb compile --tables mdb`, DESIGN section 7) in chdb, \
                 median µs, beside the best hand-written chdb query (wide tables or bitmap \
                 functions) and memberdb.\n\n\
                 | query | memberdb | chdb compiled | best hand-written chdb | compiled / hand-written | compiled / memberdb |\n\
                 |---|---:|---:|---:|---:|---:|\n",
            );
            for r in &self.rows {
                let (Some(compiled), Some(best)) = (r.other("chdb compiled"), r.best_chdb()) else {
                    continue;
                };
                let _ = writeln!(
                    md,
                    "| {} | {:.1} | {:.1} | {:.1} | {:.2}x | {:.0}x |",
                    r.name,
                    r.memberdb.median,
                    compiled.median,
                    best,
                    compiled.median / best,
                    compiled.median / r.memberdb.median
                );
            }
        }
        // Every peer on every workload it runs: its median and how many times memberdb's.
        const OTHERS: [&str; 5] = ["chdb", "chdb bitmap", "CRoaring", "numpy", "C fused"];
        md.push_str(
            "\nEvery peer, median µs (peer / memberdb); `best limit` is the fastest of the \
             bitmap baselines (roaring-rs, CRoaring, numpy, the fused counts in Rust and C) and \
             `memberdb/best limit` how far memberdb is from it.\n\n\
             | query | memberdb | duckdb | chdb (wide) | chdb bitmap | roaring-rs | CRoaring | numpy | fused (Rust) | fused (C) | memberdb/best limit |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let ours = r.memberdb.median;
            let cell = |m: Option<&Measurement>| match m {
                Some(m) => format!("{:.1} ({:.2}x)", m.median, m.median / ours),
                None => "-".to_string(),
            };
            let limits = [
                r.roaring.as_ref(),
                r.other("CRoaring"),
                r.other("numpy"),
                r.dense.as_ref(),
                r.other("C fused"),
            ];
            let best = limits
                .iter()
                .flatten()
                .map(|m| m.median)
                .fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                md,
                "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.name,
                ours,
                cell(Some(&r.duckdb)),
                cell(r.other(OTHERS[0])),
                cell(r.other(OTHERS[1])),
                cell(r.roaring.as_ref()),
                cell(r.other(OTHERS[2])),
                cell(r.other(OTHERS[3])),
                cell(r.dense.as_ref()),
                cell(r.other(OTHERS[4])),
                if best.is_finite() {
                    format!("{:.2}x", ours / best)
                } else {
                    "-".to_string()
                },
            );
        }
        md.push_str("\n| query | statement | answer | reps memberdb / duckdb | p90 memberdb / duckdb µs |\n|---|---|---|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} / {} | {:.1} / {:.1} |",
                r.name,
                r.statement,
                r.answer,
                r.memberdb.reps,
                r.duckdb.reps,
                r.memberdb.p90,
                r.duckdb.p90
            );
        }
        md.push_str("\n## Load, save, open, memory\n\n| step | rows | seconds | rows/s |\n|---|---:|---:|---:|\n");
        for (what, rows, time) in &self.loads {
            let _ = writeln!(
                md,
                "| load {what} from Parquet | {rows} | {:.2} | {:.0} |",
                time.as_secs_f64(),
                *rows as f64 / time.as_secs_f64()
            );
        }
        let _ = writeln!(
            md,
            "| DuckDB: load the same files into its tables | - | {:.2} | - |",
            self.duckdb_load.as_secs_f64()
        );
        if let (Some(save), Some((bytes, read, decode)), Some(open)) =
            (self.save, self.read_files, self.open)
        {
            let _ = writeln!(md, "| save | - | {:.2} | - |", save.as_secs_f64());
            let _ = writeln!(
                md,
                "| read the saved files ({}), bytes only | - | {:.2} | - |",
                mib(bytes),
                read.as_secs_f64()
            );
            let _ = writeln!(
                md,
                "| read the saved files, Parquet decoded to Arrow | - | {:.2} | - |",
                decode.as_secs_f64()
            );
            let _ = writeln!(
                md,
                "| open (a new process, warm page cache) | - | {:.2} | - |",
                open.as_secs_f64()
            );
            if let Some(rss) = self.open_rss {
                let _ = writeln!(
                    md,
                    "\nResident set of the process that opened the saved database, right after \
                     open: {} ({:.2}x the saved files, {}; mapped column pages are counted \
                     once touched).",
                    mib(rss),
                    rss as f64 / bytes as f64,
                    mib(bytes)
                );
            }
        }
        let m = &self.memory;
        let member_bytes = (m.members + m.attributes + m.tags) as f64;
        let _ = writeln!(
            md,
            "\nMemory (the engine's own count of its heap, `Database::memory_breakdown`): {} in \
             all, {:.2}x the Parquet size; {:.0} bytes per member (ids {}, attributes and their \
             indexes {}, tags {}) and {:.1} bytes per event ({}). The resident set of the process \
             grew by {} over the load ({:.2}x the Parquet size; it includes what the allocator \
             keeps after the load's temporary Arrow batches).",
            mib(m.total() as u64),
            m.total() as f64 / self.parquet_bytes() as f64,
            member_bytes / self.db_members.max(1) as f64,
            mib(m.members as u64),
            mib(m.attributes as u64),
            mib(m.tags as u64),
            m.events as f64 / self.db_events.max(1) as f64,
            mib(m.events as u64),
            mib(self.rss_delta),
            self.rss_delta as f64 / self.parquet_bytes() as f64,
        );
        md.push_str("\n## Goals (set for 10M members)\n\n");
        for g in &self.goals {
            let _ = writeln!(
                md,
                "- {} {}: {}",
                if g.met { "met:" } else { "**MISSED:**" },
                g.what,
                g.measured
            );
        }
        md
    }
}

impl Goal {
    /// The goals of the benchmark issue against a report.
    pub fn evaluate(report: &Report) -> Vec<Goal> {
        let mut goals = Vec::new();
        let mut ratio_goal = |name: &str, at_least: f64| {
            if let Some(r) = report.row(name) {
                let ratio = r.duckdb.median / r.memberdb.median;
                goals.push(Goal {
                    what: format!("{name} at least {at_least}x faster than DuckDB"),
                    measured: format!("{ratio:.0}x"),
                    met: ratio >= at_least,
                });
            }
        };
        for name in ["Q1", "Q2"] {
            ratio_goal(name, 200.0);
        }
        for name in ["Q3", "Q6", "Q8"] {
            ratio_goal(name, 100.0);
        }
        for name in ["Q4", "Q5"] {
            ratio_goal(name, 20.0);
        }
        // ad-hoc aggregates (the aggregates issue)
        for name in ["Q9", "Q10"] {
            ratio_goal(name, 5.0);
        }
        // sequences and funnels: at least 10x DuckDB (stepwise SQL)
        for name in ["Q14", "Q15"] {
            ratio_goal(name, 10.0);
        }
        // a predicate on a maintained trait: at most 5 ms
        for name in ["Q11", "Q12"] {
            if let Some(r) = report.row(name) {
                let ms = r.memberdb.median / 1000.0;
                goals.push(Goal {
                    what: format!("{name} (a predicate on a maintained trait) within 5 ms"),
                    measured: format!("{ms:.2} ms"),
                    met: ms <= 5.0,
                });
            }
        }
        // memberdb within `at_most` times a baseline measured in the same run.
        let mut within = |name: &str, baseline: Option<f64>, what: &str, at_most: f64| {
            if let (Some(r), Some(baseline)) = (report.row(name), baseline) {
                let ratio = r.memberdb.median / baseline;
                goals.push(Goal {
                    what: format!("{name} within {at_most}x of {what}"),
                    measured: format!("{ratio:.2}x"),
                    met: ratio <= at_most,
                });
            }
        };
        for name in ["Q1", "Q2"] {
            // The fused count compiled by gcc where the run had it, else the one in Rust.
            let dense = report
                .row(name)
                .and_then(|r| r.other("C fused").or(r.dense.as_ref()))
                .map(|d| d.median);
            within(
                name,
                dense,
                "the fused dense count in C (the physical limit)",
                3.0,
            );
        }
        for name in ["Q1", "Q2"] {
            let raw = report
                .row(name)
                .and_then(|r| r.roaring.as_ref())
                .map(|d| d.median);
            within(name, raw, "the raw roaring operations", 1.5);
        }
        for name in ["Q1", "Q2"] {
            if let Some((r, chdb)) = report
                .row(name)
                .and_then(|r| Some((r, r.other("chdb bitmap")?)))
            {
                let ratio = chdb.median / r.memberdb.median;
                goals.push(Goal {
                    what: format!("{name} at least 20x faster than chdb's bitmap functions"),
                    measured: format!("{ratio:.0}x"),
                    met: ratio >= 20.0,
                });
            }
        }
        // the compiled SQL within 2x of the best hand-written ClickHouse query (issue 19:
        // Q1..Q8; the table shows the ratio of every workload)
        let first_eight = ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Q7", "Q8"];
        for r in report.rows.iter().filter(|r| first_eight.contains(&r.name)) {
            if let (Some(compiled), Some(best)) = (r.other("chdb compiled"), r.best_chdb()) {
                let ratio = compiled.median / best;
                goals.push(Goal {
                    what: format!(
                        "{} compiled SQL within 2x of the best hand-written chdb query",
                        r.name
                    ),
                    measured: format!("{ratio:.2}x"),
                    met: ratio <= 2.0,
                });
            }
        }
        // ... and at least 2x chdb (windowFunnel, arrays)
        for name in ["Q14", "Q15"] {
            if let Some((r, chdb)) = report.row(name).and_then(|r| Some((r, r.other("chdb")?))) {
                let ratio = chdb.median / r.memberdb.median;
                goals.push(Goal {
                    what: format!("{name} at least 2x faster than chdb"),
                    measured: format!("{ratio:.1}x"),
                    met: ratio >= 2.0,
                });
            }
        }
        if let Some(r) = report.row("Q7") {
            goals.push(Goal {
                what: "Q7 (FIND 100 with fields) in at most 0.5 ms".to_string(),
                measured: format!("{:.0} µs", r.memberdb.median),
                met: r.memberdb.median <= 500.0,
            });
        }
        if let Some((_, rows, time)) = report.loads.iter().find(|l| l.0 == "events") {
            let rate = *rows as f64 / time.as_secs_f64();
            goals.push(Goal {
                what: "bulk load at least 1M events per second".to_string(),
                measured: format!("{:.2}M events/s", rate / 1e6),
                met: rate >= 1e6,
            });
        }
        if let (Some((_, _, read)), Some(open)) = (report.read_files, report.open) {
            goals.push(Goal {
                what: "open in at most 3 s".to_string(),
                measured: format!(
                    "open {:.2} s (reading its files: {:.2} s)",
                    open.as_secs_f64(),
                    read.as_secs_f64()
                ),
                met: open.as_secs_f64() <= 3.0,
            });
        }
        if let (Some((bytes, _, _)), Some(rss)) = (report.read_files, report.open_rss) {
            let ratio = rss as f64 / bytes as f64;
            goals.push(Goal {
                what: "resident set after open at most 1.5x the saved files".to_string(),
                measured: format!("{ratio:.2}x ({} of {})", mib(rss), mib(bytes)),
                met: ratio <= 1.5,
            });
        }
        let ratio = report.memory.total() as f64 / report.parquet_bytes() as f64;
        goals.push(Goal {
            what: "in-memory database under 3x its Parquet size".to_string(),
            measured: format!("{ratio:.2}x (engine heap count)"),
            met: ratio < 3.0,
        });
        goals
    }
}

/// The roaring crate version this harness was built with (Cargo.lock pins it).
const ROARING_VERSION: &str = "0.12";

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_string())
}

fn now_utc() -> String {
    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

/// `nproc`, the CPU model and the memory of this machine.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kib: u64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kib as f64 / (1024.0 * 1024.0)))
        })
        .unwrap_or_else(|| "?".to_string());
    format!("nproc = {cpus}, {model}, {memory} memory")
}
