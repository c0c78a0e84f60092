//! The peer harness: the workloads Q1..Q8 in memberdb (in process), in DuckDB (a Python
//! child process on the very same Parquet files) and, for Q1 and Q2, as raw roaring
//! operations; the systems take turns, answers must agree, medians go into a markdown table.
//! Also measures bulk load, save / open and memory against the Parquet size.
//!
//! Run it through `bench/run-peers --members N`, which installs DuckDB and builds this.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use memberdb::query::Output;
use memberdb::{Clock, Database, InputKind, OpenOptions, Segment, Value};
use memberdb_bench::peers::{Goal, Measurement, Report, Row, median_us, rss_bytes};
use memberdb_bench::workloads::{AnswerKind, PEER_SETUP, PeerWorkload, peer_workloads};
use memberdb_bench::{bench_now, dataset_in};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value as Json, json};

/// Compare memberdb with DuckDB and raw roaring on the benchmark workloads.
#[derive(Parser)]
struct Args {
    /// Members of the generated data set (about 10 events each).
    #[arg(long, default_value_t = 1_000_000)]
    members: u64,
    /// Where data sets are cached (default: $MEMBERDB_BENCH_DATA or ~/.cache/memberdb/bench-data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Rounds of turns: every round runs each system's batch once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Time per system, workload and round, in seconds (at least `min-reps` repetitions).
    #[arg(long, default_value_t = 1.0)]
    budget: f64,
    /// Fewest repetitions per system, workload and round.
    #[arg(long, default_value_t = 5)]
    min_reps: usize,
    /// The markdown report (default: bench/results/peers-N.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Python with the duckdb package.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Skip the save / open measurement.
    #[arg(long)]
    skip_open: bool,
    /// Run only these workloads (comma-separated names, e.g. `Q9,Q10`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// (Internal) open the database in DIR, print the seconds it took and the resident
    /// set after it, and exit: the harness measures open in a fresh process this way.
    #[arg(long, hide = true, value_name = "DIR")]
    measure_open: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    if let Some(dir) = &args.measure_open {
        let started = Instant::now();
        // On the harness's manual clock: an open on the wall clock would move the saved
        // database's clock (and its traits) past the *now* the workloads ask at.
        let options = OpenOptions {
            clock: Clock::Manual(bench_now()),
            ..OpenOptions::default()
        };
        match Database::open_with(dir, options) {
            Ok(db) => {
                let secs = started.elapsed().as_secs_f64();
                println!("{secs} {} {}", rss_bytes(), db.member_count());
                return;
            }
            Err(e) => {
                eprintln!("run-peers: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Err(e) = run(args) {
        eprintln!("run-peers: {e}");
        std::process::exit(1);
    }
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn run(args: Args) -> Fallible<()> {
    let dir = dataset_in(args.data.as_deref(), args.members);
    let now = bench_now();
    let mut report = Report::new(args.members, &dir)?;
    report.rounds = args.rounds;

    eprintln!("loading {} into memberdb", dir.display());
    let rss_before = rss_bytes();
    // On a manual clock at *now*: the traits of the workloads hold at the instant asked.
    let mut db = Database::in_memory_with(OpenOptions {
        clock: Clock::Manual(now),
        ..OpenOptions::default()
    })?;
    for (kind, file, what) in [
        (InputKind::Members, "members.parquet", "members"),
        (InputKind::Events, "events.parquet", "events"),
        (InputKind::Tags, "tags.parquet", "tags"),
    ] {
        let started = Instant::now();
        let loaded = db.load_file(kind, dir.join(file))?;
        report.loads.push((what, loaded.rows, started.elapsed()));
    }
    report.rss_delta = rss_bytes().saturating_sub(rss_before);
    report.memory = db.memory_breakdown();
    report.db_members = db.member_count();
    report.db_events = db.event_count();
    for statement in PEER_SETUP {
        db.execute(statement, Some(now))?;
    }
    if !args.skip_open {
        // The queries then run on the reopened database: its answers are checked too.
        db = save_and_reopen(db, &dir, &mut report)?;
    }

    // DuckDB loads after memberdb's load and open, so their peaks of memory do not add up.
    eprintln!("loading {} into DuckDB", dir.display());
    let now_text = now.to_string();
    let data_args = [dir.as_os_str(), now_text.as_ref()];
    let mut duck = Peer::start(&args.python, "duckdb_peer.py", &data_args, "DuckDB")?;
    report.duckdb_version = duck.version.clone();
    report.duckdb_threads = duck.threads.clone();
    report.duckdb_load = duck.load;
    eprintln!("loading {} into chdb", dir.display());
    let mut chdb = Peer::start(&args.python, "chdb_peer.py", &data_args, "chdb")?;
    report.peer_versions.push((
        "chdb".to_string(),
        format!(
            "{} (threads = {}, wide tables loaded in {:.1} s)",
            chdb.version,
            chdb.threads,
            chdb.load.as_secs_f64()
        ),
    ));
    // The workloads compiled to ClickHouse SQL (DESIGN section 7) over tables chdb loads
    // from the saved database's files: the compiler's SQL beside the hand-written queries.
    let compiled = compile_workloads(&db, now, &mut chdb, &mut report)?;
    let bitmap_dir = write_operand_bitmaps(&db, &dir)?;
    let members_text = db.member_count().to_string();
    let mut bitmaps = Peer::start(
        &args.python,
        "bitmap_peer.py",
        &[bitmap_dir.as_os_str(), members_text.as_ref()],
        "bitmap baselines",
    )?;
    report
        .peer_versions
        .push(("bitmap baselines".to_string(), bitmaps.version.clone()));
    let others = [
        Other::new("chdb", 0, "wide", None),
        Other::new("chdb bitmap", 0, "bitmap", Some(BITMAP_QUESTIONS)),
        Other::new("chdb compiled", 0, "compiled", None),
        Other::new("CRoaring", 1, "croaring", Some(BITMAP_QUESTIONS)),
        Other::new("numpy", 1, "numpy", Some(BITMAP_QUESTIONS)),
        Other::new("C fused", 1, "c", Some(BITMAP_QUESTIONS)),
    ];

    let workloads: Vec<PeerWorkload> = peer_workloads()
        .into_iter()
        .filter(|w| args.only.is_empty() || args.only.iter().any(|o| o == w.name))
        .collect();
    let budget = Duration::from_secs_f64(args.budget);
    let mut failures = Vec::new();
    for w in &workloads {
        eprint!("{} ", w.name);
        let raw = raw_roaring(&db, w.name)?;
        let fused = fused_dense(&db, w.name)?;
        let (mut ours, mut theirs, mut limit) = (Vec::new(), Vec::new(), Vec::new());
        let mut dense = Vec::new();
        let mut other_samples: Vec<Vec<f64>> = vec![Vec::new(); others.len()];
        let (mut our_answer, mut their_answer) = (Json::Null, Json::Null);
        for _ in 0..args.rounds {
            let (samples, answer) = time_memberdb(&mut db, w, now, budget, args.min_reps)?;
            ours.extend(samples);
            our_answer = answer;
            let (samples, answer) = duck.run(w.name, None, args.min_reps, args.budget)?;
            theirs.extend(samples);
            their_answer = answer;
            for (other, samples) in others.iter().zip(&mut other_samples) {
                if other.only.is_some_and(|names| !names.contains(&w.name))
                    || other.system == "compiled" && !compiled.contains(&w.name)
                {
                    continue;
                }
                let peer = if other.peer == 0 {
                    &mut chdb
                } else {
                    &mut bitmaps
                };
                let (times, answer) =
                    peer.run(w.name, Some(other.system), args.min_reps, args.budget)?;
                let label = other.label;
                samples.extend(times);
                if answer != our_answer {
                    failures.push(format!(
                        "{}: memberdb {}, {label} {}",
                        w.name,
                        summarize(&our_answer),
                        summarize(&answer)
                    ));
                }
            }
            // The baselines: timed, and their answer checked against memberdb's.
            for (baseline, what, samples) in [
                (&raw, "raw roaring", &mut limit),
                (&fused, "fused dense count", &mut dense),
            ] {
                if let Some(run) = baseline {
                    let (times, count) = sample(budget, args.min_reps, run);
                    samples.extend(times);
                    if json!(count) != our_answer {
                        failures.push(format!("{}: memberdb {our_answer}, {what} {count}", w.name));
                    }
                }
            }
        }
        if our_answer != their_answer
            && !within_float_boundary(&db, w, now, &our_answer, &their_answer)?
        {
            failures.push(format!(
                "{}: memberdb {}, duckdb {}",
                w.name,
                summarize(&our_answer),
                summarize(&their_answer)
            ));
        }
        eprintln!(
            "memberdb {:.1} µs, duckdb {:.1} µs",
            median_us(&ours),
            median_us(&theirs)
        );
        report.rows.push(Row {
            name: w.name,
            statement: w.statement.clone(),
            answer: summarize(&our_answer),
            memberdb: Measurement::of(&ours),
            duckdb: Measurement::of(&theirs),
            roaring: (!limit.is_empty()).then(|| Measurement::of(&limit)),
            dense: (!dense.is_empty()).then(|| Measurement::of(&dense)),
            others: others
                .iter()
                .zip(&other_samples)
                .filter(|(_, samples)| !samples.is_empty())
                .map(|(other, samples)| (other.label, Measurement::of(samples)))
                .collect(),
        });
    }
    duck.quit();
    chdb.quit();
    bitmaps.quit();

    report.goals = Goal::evaluate(&report);
    let markdown = report.markdown();
    println!("{markdown}");
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(format!("peers-{}.md", args.members))
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, &markdown)?;
    eprintln!("wrote {}", out.display());
    if !failures.is_empty() {
        return Err(format!("answers differ:\n  {}", failures.join("\n  ")).into());
    }
    Ok(())
}

/// Compiles every workload that compiles with `memberdb compile --tables mdb` and hands the
/// SQL and the tables' DDL to the chdb peer, which loads the tables from the saved files.
/// Returns the names compiled; the others are listed in the report with the reason.
fn compile_workloads(
    db: &Database,
    now: memberdb::Timestamp,
    chdb: &mut Peer,
    report: &mut Report,
) -> Fallible<Vec<&'static str>> {
    let options = memberdb::compile::CompileOptions {
        now: Some(now),
        tables: Some("mdb".to_string()),
    };
    let schema = match db.compile_schema("mdb") {
        Ok(schema) => schema,
        // a database in memory (--skip-open) has no files to compile against
        Err(e) => {
            report.not_compiled.push(("all".to_string(), e.to_string()));
            return Ok(Vec::new());
        }
    };
    let mut queries = serde_json::Map::new();
    let mut names = Vec::new();
    for w in peer_workloads() {
        let statement = memberdb::query::parse_statement(&w.statement)?;
        match db.compile(&statement, &options) {
            Ok(sql) => {
                let kind = match w.kind {
                    AnswerKind::Count => "count",
                    AnswerKind::Breakdown => "breakdown",
                    AnswerKind::Rows => "rows",
                    // a row per step (step, event, members, ...), not the hand-written
                    // queries' one row of counts
                    AnswerKind::Funnel => "funnel_report",
                };
                queries.insert(w.name.to_string(), json!([kind, sql]));
                names.push(w.name);
            }
            Err(e) => report
                .not_compiled
                .push((w.name.to_string(), e.to_string())),
        }
    }
    let reply = chdb.ask(&json!({"op": "compiled", "ddl": schema, "queries": queries}))?;
    report.peer_versions.push((
        "chdb compiled".to_string(),
        format!(
            "`memberdb compile --tables mdb` over MergeTree tables from `compile --schema`, \
             loaded from the saved database's files in {:.1} s",
            reply["load_s"].as_f64().unwrap_or(0.0)
        ),
    ));
    Ok(names)
}

/// Saves the database to a fresh directory, drops it, times reading the saved files and
/// opening them, and returns the reopened database.
fn save_and_reopen(mut db: Database, dir: &Path, report: &mut Report) -> Fallible<Database> {
    let saved = dir.join("saved-db");
    if saved.exists() {
        std::fs::remove_dir_all(&saved)?;
    }
    eprintln!("saving to {}", saved.display());
    let started = Instant::now();
    db.save_to(&saved)?;
    report.save = Some(started.elapsed());
    let (members, events) = (db.member_count(), db.event_count());
    drop(db);
    // Reading every file once, as the open will (the page cache is warm for both): the
    // bytes alone, and the Parquet files decoded to Arrow (what any reader of them pays).
    let files: Vec<PathBuf> = std::fs::read_dir(&saved)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut bytes = 0u64;
    for file in &files {
        bytes += std::fs::read(file)?.len() as u64;
    }
    let read = started.elapsed();
    let started = Instant::now();
    for file in &files {
        if file.extension().is_some_and(|e| e == "parquet") {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file)?)?.build()?;
            for batch in reader {
                std::hint::black_box(batch?);
            }
        } else {
            std::hint::black_box(std::fs::read(file)?);
        }
    }
    report.read_files = Some((bytes, read, started.elapsed()));
    // Open in a fresh process, so that its time and resident set are open's alone (this
    // one still holds what the load left to the allocator).
    eprintln!("opening {} in a new process", saved.display());
    let out = Command::new(std::env::current_exe()?)
        .arg("--measure-open")
        .arg(&saved)
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [secs, rss, opened_members] = fields[..] else {
        return Err(format!("measuring open failed: {text:?}").into());
    };
    if opened_members as u64 != members {
        return Err("the database opened in a new process differs from the saved one".into());
    }
    report.open = Some(Duration::from_secs_f64(secs));
    report.open_rss = Some(rss as u64);
    let reopened = Database::open_with(
        &saved,
        OpenOptions {
            clock: Clock::Manual(bench_now()),
            ..OpenOptions::default()
        },
    )?;
    if reopened.member_count() != members || reopened.event_count() != events {
        return Err("the reopened database differs from the saved one".into());
    }
    Ok(reopened)
}

fn time_memberdb(
    db: &mut Database,
    w: &PeerWorkload,
    now: memberdb::Timestamp,
    budget: Duration,
    min_reps: usize,
) -> Fallible<(Vec<f64>, Json)> {
    let (samples, output) = sample(budget, min_reps, || db.execute(&w.statement, Some(now)));
    let output = output?.pop().ok_or("no output")?;
    Ok((samples, answer_json(w.kind, output)?))
}

/// Runs `f` once to warm up, then times it at least `min_reps` times and for at least
/// `budget`; returns the samples in µs and the last result.
fn sample<T>(budget: Duration, min_reps: usize, mut f: impl FnMut() -> T) -> (Vec<f64>, T) {
    let mut result = std::hint::black_box(f());
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.len() < min_reps || started.elapsed() < budget && samples.len() < 100_000 {
        let t0 = Instant::now();
        result = std::hint::black_box(f());
        samples.push(t0.elapsed().as_nanos() as f64 / 1000.0);
    }
    (samples, result)
}

/// The workloads the bitmap baselines and chdb's bitmap functions answer.
const BITMAP_QUESTIONS: &[&str] = &["Q1", "Q2"];

/// A peer other than DuckDB on one system: its label in the report, its process (0: chdb,
/// 1: the bitmap baselines), the system it runs there, and the workloads it runs (all when
/// `None`).
struct Other {
    label: &'static str,
    peer: usize,
    system: &'static str,
    only: Option<&'static [&'static str]>,
}

impl Other {
    fn new(
        label: &'static str,
        peer: usize,
        system: &'static str,
        only: Option<&'static [&'static str]>,
    ) -> Self {
        Other {
            label,
            peer,
            system,
            only,
        }
    }
}

/// The operands of Q1 and Q2 (`|a AND c AND NOT b|`), the engine's own bitmaps, written in
/// the portable roaring format for the bitmap baselines: `<dir>/peer-bitmaps/Q1-a.roaring`...
fn write_operand_bitmaps(db: &Database, dir: &Path) -> Fallible<PathBuf> {
    let out = dir.join("peer-bitmaps");
    std::fs::create_dir_all(&out)?;
    let view = db.as_of(bench_now());
    for (name, [a, b, c]) in [
        (
            "Q1",
            [
                Segment::tag("vip"),
                Segment::tag("churn_risk"),
                Segment::attr("city").eq("Shanghai"),
            ],
        ),
        (
            "Q2",
            [
                Segment::did("claim_coupon").build(),
                Segment::did("redeem_coupon").build(),
                Segment::attr("city").eq("Shanghai"),
            ],
        ),
    ] {
        for (part, segment) in [("a", a), ("b", b), ("c", c)] {
            let mut bytes = Vec::new();
            view.members(&segment)?.serialize_into(&mut bytes)?;
            std::fs::write(out.join(format!("{name}-{part}.roaring")), bytes)?;
        }
    }
    Ok(out)
}

/// Q1 and Q2 as the roaring operations alone, on the engine's own bitmaps.
fn raw_roaring(db: &Database, name: &str) -> Fallible<Option<Box<dyn Fn() -> u64>>> {
    let view = db.as_of(bench_now());
    let bitmap = |s: Segment| view.members(&s);
    Ok(match name {
        "Q1" => {
            let vip = bitmap(Segment::tag("vip"))?;
            let churn = bitmap(Segment::tag("churn_risk"))?;
            let shanghai = bitmap(Segment::attr("city").eq("Shanghai"))?;
            Some(Box::new(move || {
                (std::hint::black_box(&vip) & std::hint::black_box(&shanghai))
                    .difference_len(std::hint::black_box(&churn))
            }))
        }
        "Q2" => {
            let claimed = bitmap(Segment::did("claim_coupon").build())?;
            let redeemed = bitmap(Segment::did("redeem_coupon").build())?;
            let shanghai = bitmap(Segment::attr("city").eq("Shanghai"))?;
            Some(Box::new(move || {
                (std::hint::black_box(&claimed) & std::hint::black_box(&shanghai))
                    .difference_len(std::hint::black_box(&redeemed))
            }))
        }
        _ => None,
    })
}

/// The physical limit of Q1 and Q2, `|a AND c AND NOT b|`: one pass over the three bitmaps
/// as dense bitsets (a bit per member), `popcount(a & c & !b)` word by word, fused, with
/// the CPU's popcount instruction where it has one. Its time is the memory read of the
/// three bitsets, which no evaluator of these bitmaps can beat by much.
fn fused_dense(db: &Database, name: &str) -> Fallible<Option<Box<dyn Fn() -> u64>>> {
    let view = db.as_of(bench_now());
    let words = (db.member_count() as usize).div_ceil(64);
    let dense = |s: Segment| -> Fallible<Vec<u64>> {
        let mut bits = vec![0u64; words];
        for row in view.members(&s)?.iter() {
            bits[row as usize / 64] |= 1 << (row % 64);
        }
        Ok(bits)
    };
    let (a, b, c) = match name {
        "Q1" => (
            dense(Segment::tag("vip"))?,
            dense(Segment::tag("churn_risk"))?,
            dense(Segment::attr("city").eq("Shanghai"))?,
        ),
        "Q2" => (
            dense(Segment::did("claim_coupon").build())?,
            dense(Segment::did("redeem_coupon").build())?,
            dense(Segment::attr("city").eq("Shanghai"))?,
        ),
        _ => return Ok(None),
    };
    Ok(Some(Box::new(move || {
        memberdb_bench::limits::count_and_and_not(
            std::hint::black_box(&a),
            std::hint::black_box(&c),
            std::hint::black_box(&b),
        )
    })))
}

fn value_json(v: Option<Value>) -> Json {
    v.map_or(Json::Null, |v| Json::String(v.to_string()))
}

/// The answer in the shape `duckdb_peer.py` returns.
fn answer_json(kind: AnswerKind, output: Output) -> Fallible<Json> {
    Ok(match (kind, output) {
        (AnswerKind::Count, Output::Count(n)) => json!(n),
        (AnswerKind::Breakdown, Output::Breakdown { lines, .. }) => {
            // several columns: their values joined by '|'
            let mut lines: Vec<(Option<String>, u64)> = lines
                .into_iter()
                .map(|l| {
                    let value = if l.more.is_empty() {
                        l.value.map(|v| v.to_string())
                    } else {
                        let all: Vec<String> = std::iter::once(l.value)
                            .chain(l.more)
                            .map(|v| v.map_or("NULL".to_string(), |v| v.to_string()))
                            .collect();
                        Some(all.join("|"))
                    };
                    (value, l.count)
                })
                .collect();
            lines.sort_by(|a, b| (a.0.is_none(), &a.0).cmp(&(b.0.is_none(), &b.0)));
            json!(lines)
        }
        (AnswerKind::Rows, Output::Find(found)) => Json::Array(
            found
                .rows
                .into_iter()
                .map(|r| {
                    let mut row = vec![Json::String(r.member_id)];
                    row.extend(r.values.into_iter().map(value_json));
                    Json::Array(row)
                })
                .collect(),
        ),
        (AnswerKind::Funnel, Output::Funnel(report)) => {
            json!(report.rows.iter().map(|r| r.members).collect::<Vec<_>>())
        }
        (kind, output) => return Err(format!("expected {kind:?}, got {output:?}").into()),
    })
}

/// A short form of an answer for the table: the count, or the number of lines / rows.
fn summarize(answer: &Json) -> String {
    match answer {
        Json::Array(items) => match items.first() {
            Some(Json::Array(first)) if first.len() == 2 && first[1].is_u64() => {
                let total: u64 = items.iter().filter_map(|l| l[1].as_u64()).sum();
                format!("{} lines, {total} members", items.len())
            }
            Some(Json::Number(_)) => {
                let steps: Vec<String> = items.iter().map(Json::to_string).collect();
                format!("{} per step", steps.join(" / "))
            }
            _ => format!("{} rows", items.len()),
        },
        other => other.to_string(),
    }
}

/// A peer's child process (DuckDB, chdb, the bitmap baselines), speaking JSON lines.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    version: String,
    threads: String,
    load: Duration,
    /// Its name in messages.
    label: &'static str,
}

impl Peer {
    /// Starts `bench/peers/<script>` with `args` and waits until it has loaded its data.
    fn start(
        python: &str,
        script: &str,
        args: &[&std::ffi::OsStr],
        label: &'static str,
    ) -> Fallible<Peer> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("peers")
            .join(script);
        let mut child = Command::new(python)
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {python} {}: {e}", script.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            version: String::new(),
            threads: String::new(),
            load: Duration::ZERO,
            label,
        };
        let ready = peer.read()?;
        peer.version = ready["version"].as_str().unwrap_or("?").to_string();
        peer.threads = ready["threads"].to_string();
        peer.load = Duration::from_secs_f64(ready["load_s"].as_f64().unwrap_or(0.0));
        Ok(peer)
    }

    fn read(&mut self) -> Fallible<Json> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(format!("the {} peer exited (see its error above)", self.label).into());
        }
        let reply: Json = serde_json::from_str(&line)?;
        if let Some(e) = reply.get("error") {
            return Err(format!("{} peer: {e}", self.label).into());
        }
        Ok(reply)
    }

    /// Runs workload `name` (on `system`, for peers with several) and returns the samples in
    /// µs and the answer.
    fn run(
        &mut self,
        name: &str,
        system: Option<&str>,
        reps: usize,
        budget_s: f64,
    ) -> Fallible<(Vec<f64>, Json)> {
        let request = json!({"op": "run", "name": name, "system": system, "reps": reps,
                             "budget_s": budget_s});
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let mut reply = self.read()?;
        let samples = reply["samples_us"]
            .as_array()
            .ok_or("no samples")?
            .iter()
            .filter_map(Json::as_f64)
            .collect();
        Ok((samples, reply["answer"].take()))
    }

    /// Sends one request and returns its reply.
    fn ask(&mut self, request: &Json) -> Fallible<Json> {
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        self.read()
    }

    fn quit(mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// Whether DuckDB's count differs from memberdb's only by members whose float sum lies
/// within rounding of the workload's threshold (see `PeerWorkload::float_boundary`): said
/// on stderr, and accepted.
fn within_float_boundary(
    db: &Database,
    w: &PeerWorkload,
    now: memberdb::Timestamp,
    ours: &Json,
    theirs: &Json,
) -> Result<bool, Box<dyn std::error::Error>> {
    let (Some(boundary), Some(a), Some(b)) = (w.float_boundary, ours.as_u64(), theirs.as_u64())
    else {
        return Ok(false);
    };
    let at_boundary = match db.execute(boundary, Some(now))?.as_slice() {
        [Output::Count(n)] => *n,
        other => return Err(format!("{boundary}: expected a count, got {other:?}").into()),
    };
    let off = a.abs_diff(b);
    if off > at_boundary {
        return Ok(false);
    }
    eprintln!(
        "{}: duckdb {b}, memberdb {a}: {off} member(s) apart, {at_boundary} with a sum within \
         rounding of the threshold (float sums added in another order)",
        w.name
    );
    Ok(true)
}
