//! The Redis protocol: requests read as flat arrays of bulk strings under size limits, and
//! replies written in RESP2 or RESP3.

/// Sizes a request may not exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameLimits {
    /// Bytes of one whole request.
    pub(crate) request_bytes: usize,
    /// Bytes of one argument.
    pub(crate) bulk_bytes: usize,
    /// Arguments of one request.
    pub(crate) args: usize,
}

/// A request the stream cannot continue after: the client gets the error, then the
/// connection is closed (there is no telling where the next request starts).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub(crate) String);

/// A parsed request (its arguments) and the bytes it took, or `None` when more bytes are
/// needed.
pub(crate) type Parsed = Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError>;

/// Longest header line (`*<n>` or `$<n>`) accepted.
const MAX_LINE: usize = 32;

/// Reads one request from the front of `buf`: `Ok(Some((args, consumed)))` when a whole
/// request is there, `Ok(None)` when more bytes are needed.
pub(crate) fn parse_request(buf: &[u8], limits: &FrameLimits) -> Parsed {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        return Err(ProtocolError(format!(
            "expected '*', got '{}'; requests are arrays of bulk strings",
            (buf[0] as char).escape_default()
        )));
    }
    let Some((count, mut pos)) = header(buf, 0, b'*')? else {
        return incomplete(buf, limits);
    };
    if count < 1 {
        return Err(ProtocolError(format!("invalid multibulk length {count}")));
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count > limits.args {
        return Err(ProtocolError(format!(
            "{count} arguments, more than the limit of {}",
            limits.args
        )));
    }
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        if pos >= buf.len() {
            return incomplete(buf, limits);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError(format!(
                "expected '$', got '{}'; every argument is a bulk string",
                (buf[pos] as char).escape_default()
            )));
        }
        let Some((len, start)) = header(buf, pos, b'$')? else {
            return incomplete(buf, limits);
        };
        if len < 0 {
            return Err(ProtocolError(format!("invalid bulk length {len}")));
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > limits.bulk_bytes {
            return Err(ProtocolError(format!(
                "an argument of {len} bytes, more than the limit of {}",
                limits.bulk_bytes
            )));
        }
        let end = start.saturating_add(len);
        if end.saturating_add(2) > limits.request_bytes {
            return Err(too_large(limits));
        }
        if buf.len() < end + 2 {
            return incomplete(buf, limits);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError(
                "a bulk string does not end in CRLF".to_string(),
            ));
        }
        args.push(buf[start..end].to_vec());
        pos = end + 2;
    }
    Ok(Some((args, pos)))
}

fn too_large(limits: &FrameLimits) -> ProtocolError {
    ProtocolError(format!(
        "a request larger than the limit of {} bytes",
        limits.request_bytes
    ))
}

fn incomplete(buf: &[u8], limits: &FrameLimits) -> Parsed {
    if buf.len() > limits.request_bytes {
        return Err(too_large(limits));
    }
    Ok(None)
}

/// Parses the `<kind><integer>\r\n` line at `pos`; `None` if it is not complete yet.
fn header(buf: &[u8], pos: usize, kind: u8) -> Result<Option<(i64, usize)>, ProtocolError> {
    debug_assert_eq!(buf[pos], kind);
    let rest = &buf[pos + 1..];
    let end = rest
        .iter()
        .take(MAX_LINE + 1)
        .position(|&b| b == b'\r' || b == b'\n');
    if end.is_some_and(|i| rest[i] == b'\n') {
        return Err(ProtocolError(
            "a header line ends in LF without CR".to_string(),
        ));
    }
    let Some(cr) = end else {
        if rest.len() > MAX_LINE {
            return Err(ProtocolError("a header line is too long".to_string()));
        }
        return Ok(None);
    };
    if rest.len() < cr + 2 {
        return Ok(None);
    }
    if rest[cr + 1] != b'\n' {
        return Err(ProtocolError(
            "a header line does not end in CRLF".to_string(),
        ));
    }
    let text = std::str::from_utf8(&rest[..cr]).ok();
    let value = text.and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| {
        ProtocolError(format!(
            "invalid {} length '{}'",
            if kind == b'*' { "multibulk" } else { "bulk" },
            String::from_utf8_lossy(&rest[..cr])
        ))
    })?;
    Ok(Some((value, pos + 1 + cr + 2)))
}

/// A reply, written in the protocol version of the connection.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Double(f64),
    Bool(bool),
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array of keys and values in RESP2.
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply::Simple("OK".to_string())
    }

    pub(crate) fn text(s: impl Into<String>) -> Reply {
        Reply::Bulk(s.into().into_bytes())
    }

    /// An error reply; `kind` is the first word (`ERR`, `NOAUTH`, `NOPERM`, ...).
    pub(crate) fn error(kind: &str, message: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("{kind} {message}"))
    }

    pub(crate) fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply to `out`, in RESP3 when `resp3`, else RESP2.
    pub(crate) fn write(&self, resp3: bool, out: &mut Vec<u8>) {
        use std::io::Write;
        match self {
            Reply::Simple(s) => {
                out.push(b'+');
                out.extend_from_slice(one_line(s).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(s) => {
                out.push(b'-');
                out.extend_from_slice(one_line(s).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Int(i) => {
                let _ = write!(out, ":{i}\r\n");
            }
            Reply::Bulk(b) => {
                let _ = write!(out, "${}\r\n", b.len());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::Double(x) if resp3 => {
                let _ = write!(out, ",{}\r\n", format_double(*x));
            }
            Reply::Double(x) => Reply::text(format_double(*x)).write(resp3, out),
            Reply::Bool(b) if resp3 => {
                let _ = write!(out, "#{}\r\n", if *b { 't' } else { 'f' });
            }
            Reply::Bool(b) => Reply::Int(i64::from(*b)).write(resp3, out),
            Reply::Array(items) => {
                let _ = write!(out, "*{}\r\n", items.len());
                for item in items {
                    item.write(resp3, out);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    let _ = write!(out, "%{}\r\n", pairs.len());
                } else {
                    let _ = write!(out, "*{}\r\n", pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.write(resp3, out);
                    v.write(resp3, out);
                }
            }
        }
    }
}

fn format_double(x: f64) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{x}")
    }
}

/// Simple strings and errors cannot hold line breaks.
fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        s.replace("\r\n", " ").replace(['\r', '\n'], " ").into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits {
        request_bytes: 1024,
        bulk_bytes: 100,
        args: 8,
    };

    fn parse(bytes: &[u8]) -> Parsed {
        parse_request(bytes, &LIMITS)
    }

    #[test]
    fn whole_requests_and_every_prefix_of_one() {
        let req = b"*2\r\n$4\r\nPING\r\n$3\r\nh\xe4i\r\n*1\r\n";
        let (args, used) = parse(req).unwrap().unwrap();
        assert_eq!(args, vec![b"PING".to_vec(), b"h\xe4i".to_vec()]);
        assert_eq!(used, req.len() - 4);
        for cut in 0..used {
            assert_eq!(parse(&req[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn anything_but_a_flat_array_of_bulk_strings_is_refused() {
        for bad in [
            &b"PING\r\n"[..],
            b"*1\r\n:5\r\n",
            b"*1\r\n*1\r\n$1\r\na\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*1\r\n$-5\r\n",
            b"*x\r\n",
            b"*1\r\n$3\r\nabcd\r\n",
            b"*1\n",
            b"*99999999999999999999999\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn limits_are_enforced_before_the_bytes_arrive() {
        assert!(parse(b"*9\r\n").unwrap_err().0.contains("9 arguments"));
        assert!(
            parse(b"*1\r\n$101\r\n")
                .unwrap_err()
                .0
                .contains("101 bytes")
        );
        assert!(parse(b"*1\r\n$9223372036854775807\r\n").is_err());
        // a header line that never ends
        assert!(parse(&[b'*'; 40]).is_err());
        // many small arguments adding up past the request limit
        let mut big = b"*8\r\n".to_vec();
        for _ in 0..8 {
            big.extend_from_slice(b"$100\r\n");
            big.extend_from_slice(&[b'x'; 100]);
            big.extend_from_slice(b"\r\n");
        }
        assert!(parse(&big).is_ok());
        let limits = FrameLimits {
            request_bytes: 500,
            ..LIMITS
        };
        assert!(parse_request(&big, &limits).is_err());
        assert!(parse_request(&big[..300], &limits).is_ok());
    }

    #[test]
    fn replies_in_both_protocols() {
        let reply = Reply::Map(vec![
            (Reply::text("count"), Reply::Int(3)),
            (Reply::text("x"), Reply::Nil),
        ]);
        let mut two = Vec::new();
        reply.write(false, &mut two);
        assert_eq!(two, b"*4\r\n$5\r\ncount\r\n:3\r\n$1\r\nx\r\n$-1\r\n");
        let mut three = Vec::new();
        reply.write(true, &mut three);
        assert_eq!(three, b"%2\r\n$5\r\ncount\r\n:3\r\n$1\r\nx\r\n_\r\n");
        let mut err = Vec::new();
        Reply::error("ERR", "two\nlines").write(false, &mut err);
        assert_eq!(err, b"-ERR two lines\r\n");
    }
}
