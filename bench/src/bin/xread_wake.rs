//! How soon a blocked `XREAD` sees an entry after the write that made it is acknowledged,
//! over loopback against a running `memberdb serve` (issue 14: within 1 ms at p99).
//!
//! A reader connection blocks in `XREAD BLOCK 0` on `group:wake`; a writer connection adds
//! and removes a tag that makes one member enter and leave the group. Each round takes the
//! time the writer's `+OK` arrives and the time the reader's reply arrives; the latency is
//! the second less the first (negative when the entry arrives first: the reader is woken
//! before the writer's reply is sent), and the time from sending the write to the entry's
//! arrival. Prints the percentiles as JSON.
//!
//!     cargo run --release -p memberdb-bench --bin xread_wake -- 127.0.0.1:7379 [ROUNDS]

// mimalloc, as the memberdb binary allocates
use memberdb_bench as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Instant;

/// Sends a command in RESP.
fn send(stream: &mut TcpStream, args: &[&str]) -> std::io::Result<()> {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(out.as_bytes())
}

/// Reads one whole reply; returns its text (errors as `-...`).
fn reply(reader: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (kind, rest) = line.split_at(1);
    let rest = rest.trim_end().to_string();
    Ok(match kind {
        "+" | "-" | ":" | "_" => format!("{kind}{rest}"),
        "$" => {
            let n: i64 = rest.parse().unwrap_or(-1);
            if n < 0 {
                return Ok("nil".to_string());
            }
            let mut buf = vec![0u8; n as usize + 2];
            std::io::Read::read_exact(reader, &mut buf)?;
            String::from_utf8_lossy(&buf[..n as usize]).into_owned()
        }
        "*" | "%" => {
            let n: i64 = rest.parse().unwrap_or(-1);
            let items = if kind == "%" { n * 2 } else { n };
            let mut parts = Vec::new();
            for _ in 0..items.max(0) {
                parts.push(reply(reader)?);
            }
            format!("[{}]", parts.join(" "))
        }
        _ => format!("?{line}"),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .first()
        .ok_or("usage: xread_wake ADDR [ROUNDS]")?
        .clone();
    let rounds: usize = args.get(1).map_or(Ok(2000), |r| r.parse())?;
    let mut writer = TcpStream::connect(&addr)?;
    writer.set_nodelay(true)?;
    let mut writer_in = BufReader::new(writer.try_clone()?);
    let mut setup = |args: &[&str]| -> Result<String, Box<dyn std::error::Error>> {
        send(&mut writer, args)?;
        Ok(reply(&mut writer_in)?)
    };
    setup(&["TAG.ADD", "W0", "wake_tag"])?;
    setup(&["TAG.DEL", "W0", "wake_tag"])?;
    let defined = setup(&["QUERY", "DEFINE GROUP wake AS TAG 'wake_tag'"])?;
    if defined.starts_with('-') && !defined.contains("already exists") {
        return Err(defined.into());
    }
    let snapshot = setup(&["GROUP.SNAPSHOT", "wake"])?;
    let mut last = snapshot
        .trim_start_matches('[')
        .split(' ')
        .next()
        .unwrap_or("0-0")
        .to_string();
    let mut reader = TcpStream::connect(&addr)?;
    reader.set_nodelay(true)?;
    let mut reader_in = BufReader::new(reader.try_clone()?);
    let (arrived_tx, arrived_rx) = mpsc::channel::<(Instant, String)>();
    let (go_tx, go_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for after in go_rx {
            if send(
                &mut reader,
                &["XREAD", "BLOCK", "0", "STREAMS", "group:wake", &after],
            )
            .is_err()
            {
                return;
            }
            let Ok(text) = reply(&mut reader_in) else {
                return;
            };
            let _ = arrived_tx.send((Instant::now(), text));
        }
    });
    let mut latencies = Vec::with_capacity(rounds);
    let mut from_write = Vec::with_capacity(rounds);
    for round in 0..rounds {
        go_tx.send(last.clone())?;
        // the reader is blocked once its request is in; a short pause makes sure
        std::thread::sleep(std::time::Duration::from_millis(2));
        let command = if round % 2 == 0 { "TAG.ADD" } else { "TAG.DEL" };
        let sent = Instant::now();
        send(&mut writer, &[command, "W0", "wake_tag"])?;
        let ok = reply(&mut writer_in)?;
        let acked = Instant::now();
        if ok != "+OK" {
            return Err(format!("{command}: {ok}").into());
        }
        let (arrived, text) = arrived_rx.recv()?;
        // the entry's id is the first bulk after the key
        let id = text
            .split(' ')
            .skip_while(|w| !w.contains("group:wake"))
            .nth(1)
            .ok_or(format!("no entry in {text}"))?;
        last = id.trim_matches(|c| c == '[' || c == ']').to_string();
        let micros = if arrived >= acked {
            arrived.duration_since(acked).as_secs_f64() * 1e6
        } else {
            -(acked.duration_since(arrived).as_secs_f64() * 1e6)
        };
        latencies.push(micros);
        from_write.push(arrived.duration_since(sent).as_secs_f64() * 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    from_write.sort_by(f64::total_cmp);
    let at = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "{}",
        serde_json::json!({
            "rounds": rounds,
            "after_ack_p50_us": at(&latencies, 0.5),
            "after_ack_p99_us": at(&latencies, 0.99),
            "after_ack_max_us": at(&latencies, 1.0),
            "from_write_p50_us": at(&from_write, 0.5),
            "from_write_p99_us": at(&from_write, 0.99),
        })
    );
    Ok(())
}
