//! Fuzz target of the RESP codec and the commands (issue 11): mutated streams of real
//! requests are split into requests, each run as a session would run it against a database
//! in memory, and each reply encoded in both protocols. Nothing may panic; every request
//! parsed must lie within the bytes given; a reply must be a well-formed frame.
//! `MEMBERDB_FUZZ_SECONDS` sets the budget (see `memberdb::fuzzing`).

use std::net::{Ipv4Addr, SocketAddr};

use memberdb::fuzzing::Fuzzer;

use super::commands::{Session, execute};
use super::config::Config;
use super::resp::parse_request;
use super::{Shared, resp};

fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Streams of requests as clients send them: every command, pipelined.
fn corpus() -> Vec<Vec<u8>> {
    let streams: Vec<Vec<Vec<&str>>> = vec![
        vec![
            vec!["PING"],
            vec!["PING", "hello"],
            vec!["HELLO", "3"],
            vec!["HELLO", "2"],
        ],
        vec![
            vec![
                "MEMBER.SET",
                "M1",
                "city",
                "Shanghai",
                "points",
                "120",
                "score",
                "2.5",
            ],
            vec!["TAG.ADD", "M1", "vip", "摄影爱好者"],
            vec![
                "EVENT.ADD",
                "M1",
                "purchase",
                "2026-11-01T08:00:00Z",
                "amount",
                "99.5",
            ],
            vec!["EVENT.ADD", "M2", "claim_coupon", "*", "coupon", "XMAS"],
            vec!["TAG.DEL", "M1", "vip"],
            vec!["MEMBER.GET", "M1"],
        ],
        vec![
            vec!["QUERY", "COUNT TAG 'vip' AND city = 'Shanghai'"],
            vec!["QUERY", "FIND ALL SHOW city, points LIMIT 5"],
            vec!["QUERY", "BREAKDOWN ALL BY city TOP 3"],
            vec!["QUERY", "DEFINE GROUP g AS DID purchase WHERE amount > 10"],
            vec!["QUERY", "COUNT IN GROUP g; DROP GROUP g"],
            vec!["QUERY", "EXPLAIN NOT (TAG 'vip' OR points BETWEEN 1 AND 5)"],
            vec!["QUERY", "SHOW ATTRIBUTES"],
        ],
        vec![
            vec!["CLIENT", "SETNAME", "app"],
            vec!["CLIENT", "GETNAME"],
            vec!["COMMAND", "INFO", "QUERY"],
            vec!["COMMAND", "COUNT"],
            vec!["INFO", "stats"],
            vec!["SELECT", "0"],
            vec!["AUTH", "user", "pass"],
            vec!["QUIT"],
        ],
    ];
    streams
        .iter()
        .map(|s| s.iter().flat_map(|r| request(r)).collect())
        .collect()
}

/// Checks that `frame` is one whole RESP value and returns its length.
fn frame_len(frame: &[u8]) -> usize {
    fn line(frame: &[u8], at: usize) -> (&[u8], usize) {
        let end = frame[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a header line ends in CRLF");
        (&frame[at + 1..at + end], at + end + 2)
    }
    fn value(frame: &[u8], at: usize) -> usize {
        let (head, next) = line(frame, at);
        let n = || std::str::from_utf8(head).unwrap().parse::<i64>().unwrap();
        match frame[at] {
            b'+' | b'-' | b':' | b',' | b'#' | b'_' => next,
            b'$' if n() < 0 => next,
            b'$' => {
                let end = next + n() as usize;
                assert_eq!(&frame[end..end + 2], b"\r\n", "bulk ends in CRLF");
                end + 2
            }
            b'*' | b'%' => {
                let items = if frame[at] == b'%' { 2 * n() } else { n() };
                (0..items.max(0)).fold(next, |at, _| value(frame, at))
            }
            other => panic!("not a reply type: {other}"),
        }
    }
    value(frame, 0)
}

#[test]
fn resp_frames_and_commands() {
    let mut config = Config::default();
    config.limits.statement_ms = 200;
    let db = memberdb::Database::in_memory();
    let audit_dir = tempfile::tempdir().unwrap();
    let shared = Shared::new(
        db,
        config,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        audit_dir.path(),
    )
    .unwrap();
    let tokens = [
        "*1\r\n",
        "*3\r\n",
        "$-1\r\n",
        "$0\r\n\r\n",
        "$4\r\nPING\r\n",
        "$5\r\nQUERY\r\n",
        "$999999999\r\n",
        "*2147483648\r\n",
        "\r\n",
        "\n",
        "HELLO",
        "AUTH",
        "MEMBER.SET",
        "NOT NOT NOT ",
        "(((",
        "COUNT ",
        "'",
        "\0",
    ];
    Fuzzer::new("resp", corpus())
        .dictionary(tokens)
        .run(|input| {
            let mut session = Session::new(1, Ipv4Addr::LOCALHOST.into(), &shared);
            let mut used = 0;
            while used < input.len() {
                let frames = shared.config.limits.frames(session.authenticated());
                match parse_request(&input[used..], &frames) {
                    Ok(Some((args, n))) => {
                        assert!(n > 0 && used + n <= input.len(), "consumed {n} at {used}");
                        used += n;
                        let reply = execute(&shared, &mut session, &args);
                        for resp3 in [false, true] {
                            let mut out = Vec::new();
                            reply.write(resp3, &mut out);
                            assert_eq!(frame_len(&out), out.len(), "one whole reply");
                        }
                        if session.quit {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(resp::ProtocolError(message)) => {
                        assert!(!message.is_empty());
                        break;
                    }
                }
            }
        });
}
