//! The soak client of `bench/run-soak`: many clients over loopback for a bounded time against
//! a running `memberdb serve`, mixing reads and writes as a marketing system does, reporting
//! throughput, latency, errors and the server's resident set over time.
//!
//!     soak --port P --pid SERVER_PID --members N [--clients 300] [--seconds 600]
//!          [--sample-seconds 10] [--out FILE]
//!
//! Each client loops over: COUNT of a few segments (with a random literal, so the answer
//! cache does not answer them all), FIND ... LIMIT 100, MEMBER.SET, TAG.ADD, EVENT.ADD. An
//! error reply counts as an error (the soak expects none); a broken connection too. The report
//! is markdown: one row per sample period (with the server's RSS and RssAnon, the engine's
//! own count of its memory from INFO, and the ratios), then the totals and the RSS growth after warm-up
//! (the first fifth of the run).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    port: u16,
    /// The server's process id, for its resident set.
    #[arg(long)]
    pid: u32,
    /// Members in the database (ids M00000001 ...), for reads and writes of existing ones.
    #[arg(long)]
    members: u64,
    #[arg(long, default_value_t = 300)]
    clients: usize,
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    #[arg(long, default_value_t = 10)]
    sample_seconds: u64,
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// `writes`: MEMBER.SET, TAG.ADD and EVENT.ADD only (the 100-writer finding of issue 11);
    /// `reads`: COUNT and FIND only; `all` (default): both; or one command's name.
    #[arg(long, default_value = "all")]
    mix: String,
}

/// Counters of one sample period, shared by the clients.
#[derive(Default)]
struct Period {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Latencies in microseconds (bounded reservoir per period).
    micros: Mutex<Vec<u64>>,
}

const OPS: &[&str] = &[
    "COUNT",
    "COUNT",
    "COUNT",
    "FIND",
    "MEMBER.SET",
    "TAG.ADD",
    "EVENT.ADD",
];
const WRITES: &[&str] = &["MEMBER.SET", "TAG.ADD", "EVENT.ADD"];
const READS: &[&str] = &["COUNT", "COUNT", "COUNT", "FIND"];

fn request(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one whole reply; true when it is an error reply.
fn read_reply(reader: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<bool> {
    line.clear();
    if reader.read_line(line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let head = line.trim_end().to_string();
    let n = || head[1..].parse::<i64>().unwrap_or(0);
    match head.as_bytes().first() {
        Some(b'-') => {
            eprintln!("error reply: {head}");
            Ok(true)
        }
        Some(b'$') if n() >= 0 => {
            let mut skip = vec![0u8; n() as usize + 2];
            reader.read_exact(&mut skip)?;
            Ok(false)
        }
        Some(b'*') | Some(b'%') => {
            let items = if head.starts_with('%') { 2 * n() } else { n() };
            let mut error = false;
            for _ in 0..items.max(0) {
                error |= read_reply(reader, line)?;
            }
            Ok(error)
        }
        _ => Ok(false),
    }
}

/// A small xorshift generator per client: no shared state on the hot path.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn command(rng: &mut Rng, ops: &[&str], members: u64, client: usize, i: u64) -> Vec<String> {
    let member = format!("M{:08}", rng.below(members) + 1);
    let s = |x: &str| x.to_string();
    match ops[rng.below(ops.len() as u64) as usize] {
        "COUNT" => {
            let points = rng.below(5000);
            let segment = match rng.below(3) {
                0 => format!("TAG 'vip' AND NOT TAG 'churn_risk' AND points >= {points}"),
                1 => format!("DID purchase AT LEAST 2 TIMES AND points < {points}"),
                _ => format!("city = 'Shanghai' AND NOT TAG 'vip' AND points > {points}"),
            };
            vec![s("QUERY"), format!("COUNT {segment}")]
        }
        "FIND" => vec![
            s("QUERY"),
            format!(
                "FIND TAG 'vip' AND points > {} SHOW city, level, points LIMIT 100",
                rng.below(2000)
            ),
        ],
        "MEMBER.SET" => vec![
            s("MEMBER.SET"),
            member,
            s("points"),
            rng.below(10_000).to_string(),
            s("soak_client"),
            client.to_string(),
        ],
        "TAG.ADD" => vec![s("TAG.ADD"), member, s("soak")],
        _ => vec![
            s("EVENT.ADD"),
            member,
            s("soak_visit"),
            s("*"),
            s("n"),
            i.to_string(),
        ],
    }
}

/// A field of `/proc/<pid>/status` in bytes: `VmRSS` (all resident pages, the binary's code
/// included) or `RssAnon` (the process's own memory).
fn status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

/// The engine's own count of its memory (INFO's `used_memory`), asked on a connection of
/// its own; 0 when the server does not answer.
fn engine_bytes(monitor: &mut Option<BufReader<TcpStream>>, port: u16) -> u64 {
    if monitor.is_none() {
        *monitor = TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(BufReader::new);
    }
    let Some(reader) = monitor.as_mut() else {
        return 0;
    };
    let mut ask = || -> std::io::Result<u64> {
        reader
            .get_mut()
            .write_all(&request(&["INFO".to_string()]))?;
        let mut head = String::new();
        reader.read_line(&mut head)?;
        let len: usize = head.trim_end().trim_start_matches('$').parse().unwrap_or(0);
        let mut body = vec![0u8; len + 2];
        reader.read_exact(&mut body)?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    };
    match ask() {
        Ok(bytes) => bytes,
        Err(_) => {
            *monitor = None;
            0
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    let period = Arc::new(Mutex::new(Arc::new(Period::default())));
    let broken = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..args.clients)
        .map(|c| {
            let (stop, period, broken) = (stop.clone(), period.clone(), broken.clone());
            let (port, members) = (args.port, args.members);
            let one = OPS.iter().find(|op| op.eq_ignore_ascii_case(&args.mix));
            let ops = match args.mix.as_str() {
                "writes" => WRITES,
                "reads" => READS,
                _ => one.map_or(OPS, std::slice::from_ref),
            };
            std::thread::spawn(move || {
                let stream = match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("client {c}: cannot connect: {e}");
                        broken.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                stream.set_nodelay(true).ok();
                let mut writer = stream.try_clone().expect("a second handle");
                let mut reader = BufReader::new(stream);
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) * 0x2545_F491));
                let mut line = String::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let bytes = request(&command(&mut rng, ops, members, c, i));
                    i += 1;
                    let started = Instant::now();
                    let result = writer
                        .write_all(&bytes)
                        .and_then(|()| read_reply(&mut reader, &mut line));
                    let micros = started.elapsed().as_micros() as u64;
                    let now = period.lock().unwrap().clone();
                    match result {
                        Ok(error) => {
                            now.requests.fetch_add(1, Ordering::Relaxed);
                            now.errors.fetch_add(u64::from(error), Ordering::Relaxed);
                            let mut m = now.micros.lock().unwrap();
                            if m.len() < 200_000 {
                                m.push(micros);
                            }
                        }
                        Err(e) => {
                            eprintln!("client {c}: connection broken: {e}");
                            broken.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            })
        })
        .collect();

    let mut rows = Vec::new();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut monitor = None;
    let mut ratios: Vec<(f64, f64)> = Vec::new();
    let (mut total_requests, mut total_errors) = (0u64, 0u64);
    let started = Instant::now();
    let rss_start = rss(args.pid);
    while started.elapsed() < Duration::from_secs(args.seconds) {
        std::thread::sleep(Duration::from_secs(args.sample_seconds));
        let ended = std::mem::replace(&mut *period.lock().unwrap(), Arc::new(Period::default()));
        let requests = ended.requests.load(Ordering::Relaxed);
        let errors = ended.errors.load(Ordering::Relaxed);
        let mut micros = ended.micros.lock().unwrap().clone();
        micros.sort_unstable();
        let at = started.elapsed().as_secs_f64();
        let resident = rss(args.pid);
        let anon = status_bytes(args.pid, "RssAnon");
        let engine = engine_bytes(&mut monitor, args.port);
        let ratio = resident as f64 / engine.max(1) as f64;
        let anon_ratio = anon as f64 / engine.max(1) as f64;
        ratios.push((ratio, anon_ratio));
        samples.push((at, resident));
        total_requests += requests;
        total_errors += errors;
        let row = format!(
            "| {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            at,
            requests as f64 / args.sample_seconds as f64,
            percentile(&micros, 0.5),
            percentile(&micros, 0.99),
            errors,
            resident >> 20,
            anon >> 20,
            engine >> 20,
            ratio,
            anon_ratio
        );
        eprintln!("{row}");
        rows.push(row);
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    // Growth after warm-up: from the first sample after a fifth of the run to the end.
    let warm = samples
        .iter()
        .find(|(at, _)| *at >= args.seconds as f64 / 5.0)
        .map_or(rss_start, |s| s.1);
    let end = samples.last().map_or(rss_start, |s| s.1);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let growth = (end as f64 - warm as f64) / warm.max(1) as f64 * 100.0;
    let broken = broken.load(Ordering::Relaxed);
    let mut report = String::new();
    report.push_str(
        "| seconds | requests/s | p50 µs | p99 µs | errors | server RSS MB | RssAnon MB | engine MB \
         | RSS / engine | RssAnon / engine |\n",
    );
    report.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &rows {
        report.push_str(r);
        report.push('\n');
    }
    report.push_str(&format!(
        "\n{} clients for {} s: {} requests ({:.0}/s), {} error replies, {} broken \
         connections. Server RSS: {} MB at start, {} MB after warm-up (at {} s), {} MB at the \
         end, {} MB at the peak: growth after warm-up {:+.1} %. RSS / the engine's count \
         (INFO used_memory): {:.2} at the end, {:.2} at most; RssAnon / count: {:.2} at the \
         end, {:.2} at most.\n",
        args.clients,
        args.seconds,
        total_requests,
        total_requests as f64 / started.elapsed().as_secs_f64(),
        total_errors,
        broken,
        rss_start >> 20,
        warm >> 20,
        args.seconds / 5,
        end >> 20,
        peak >> 20,
        growth,
        ratios.last().map_or(0.0, |r| r.0),
        ratios.iter().map(|r| r.0).fold(0.0, f64::max),
        ratios.last().map_or(0.0, |r| r.1),
        ratios.iter().map(|r| r.1).fold(0.0, f64::max)
    ));
    println!("{report}");
    if let Some(out) = args.out {
        std::fs::write(out, &report).expect("writes the report");
    }
    if total_errors > 0 || broken > 0 {
        std::process::exit(1);
    }
}
