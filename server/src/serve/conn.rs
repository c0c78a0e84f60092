//! One client connection of the event loop: its buffers, its session, and the order of its
//! requests.
//!
//! Requests are answered one at a time in the order they came: a request that runs away from
//! the event loop (QUERY, a write, AUTH) makes the connection busy, and the requests
//! pipelined behind it wait in its input buffer until the reply is back. Replies are written
//! as they are produced; while a client has `limits.reply_buffer_bytes` of replies unsent,
//! its further requests are neither read nor run (its socket fills, as with Redis's
//! `client-output-buffer-limit`), and if nothing can be written to it for
//! `limits.write_timeout_seconds` it is disconnected with a logged reason.

use std::io::{ErrorKind, Read, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::Shared;
use super::commands::{Session, command_name, execute, write_reply, write_request};
use super::pool::{Completion, Job, spawn_auth};
use super::resp::{Reply, parse_request};
use super::streams::{self, Blocked};

/// Unparsed request bytes read ahead at most (beyond one whole request, which the frame
/// limits bound), so a client that pipelines without reading cannot grow the buffer.
const READ_AHEAD: usize = 1 << 20;

pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) stream: TcpStream,
    pub(super) peer: Option<SocketAddr>,
    session: Session,
    input: Vec<u8>,
    output: Vec<u8>,
    /// A request of this connection runs elsewhere; its reply comes as a [`Completion`].
    busy: bool,
    /// The socket may hold bytes not read yet (reading paused, or not drained).
    unread: bool,
    connected: Instant,
    /// The idle clock: restarts when a whole request arrives, never when a reply is sent.
    last_request: Instant,
    /// Counted in `Shared::unauthenticated` until it authenticates or closes.
    pub(super) counted_unauthenticated: bool,
    /// Since when replies have been waiting for the client to read them.
    stalled_since: Option<Instant>,
    /// Why the connection closes once its output is written.
    pub(super) closing: Option<String>,
    /// The client closed its side.
    eof: bool,
    /// A stream read waiting for entries (the connection is busy meanwhile).
    blocked: Option<(Blocked, String)>,
}

impl Conn {
    pub(super) fn new(id: u64, stream: TcpStream, shared: &Shared) -> Conn {
        let peer = stream.peer_addr().ok();
        let client = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.ip());
        let now = Instant::now();
        Conn {
            id,
            stream,
            peer,
            session: Session::new(id, client, shared),
            input: Vec::new(),
            output: Vec::new(),
            busy: false,
            unread: true,
            connected: now,
            last_request: now,
            counted_unauthenticated: false,
            stalled_since: None,
            closing: None,
            eof: false,
            blocked: None,
        }
    }

    fn output_full(&self, shared: &Shared) -> bool {
        self.output.len() >= shared.config.limits.reply_buffer_bytes.max(1)
    }

    /// Reads what the socket holds (while there is room), answers what can be answered and
    /// writes replies out. Returns an I/O error that ends the connection.
    pub(super) fn pump(
        &mut self,
        shared: &Arc<Shared>,
        scratch: &mut [u8],
        reading: bool,
    ) -> std::io::Result<()> {
        loop {
            self.process(shared);
            self.flush()?;
            let room = !self.busy
                && self.closing.is_none()
                && !self.output_full(shared)
                && self.input.len() < READ_AHEAD;
            if !(reading && room && self.unread && !self.eof) {
                return Ok(());
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.eof = true;
                    self.unread = false;
                }
                Ok(n) => self.input.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.unread = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The socket has become readable.
    pub(super) fn readable(&mut self) {
        self.unread = true;
    }

    /// Answers whole requests from the input, in order, until one runs elsewhere or the
    /// output is full.
    fn process(&mut self, shared: &Arc<Shared>) {
        let mut used = 0;
        while !self.busy && self.closing.is_none() && !self.output_full(shared) {
            let frames = shared.config.limits.frames(self.session.authenticated());
            match parse_request(&self.input[used..], &frames) {
                Ok(Some((args, n))) => {
                    used += n;
                    self.last_request = Instant::now();
                    self.dispatch(shared, args);
                }
                Ok(None) => break,
                Err(e) => {
                    Reply::error("ERR", format!("Protocol error: {}", e.0))
                        .write(self.session.resp3, &mut self.output);
                    self.closing = Some(format!("protocol error: {}", e.0));
                }
            }
        }
        self.input.drain(..used);
        if self.input.capacity() > 4 * READ_AHEAD && self.input.len() < READ_AHEAD {
            self.input.shrink_to(READ_AHEAD);
        }
        if self.eof && !self.busy && self.closing.is_none() {
            self.closing = Some("closed by the client".to_string());
        }
    }

    fn dispatch(&mut self, shared: &Arc<Shared>, args: Vec<Vec<u8>>) {
        let name = command_name(&args);
        let authenticated = self.session.authenticated();
        let job = |args| Job {
            conn: self.id,
            session: self.session.clone(),
            name: name.clone(),
            args,
        };
        match name.as_str() {
            "QUERY" if authenticated => {
                self.busy = true;
                shared.queries.spawn(shared, job(args));
            }
            name if authenticated
                && (streams::COMMANDS.contains(&name)
                    || super::identities::COMMANDS.contains(&name)
                    || name == super::erase::NAME) =>
            {
                self.busy = true;
                shared.queries.spawn(shared, job(args));
            }
            "AUTH" | "HELLO" => {
                self.busy = true;
                spawn_auth(shared, job(args));
            }
            // Unscoped writers go straight to the writer; scoped ones are checked first
            // (`commands::execute`).
            "MEMBER.SET" | "TAG.ADD" | "TAG.DEL" | "EVENT.ADD"
                if self
                    .session
                    .access
                    .as_ref()
                    .is_some_and(|a| a.allows(memberdb::Command::Write) && !a.is_scoped()) =>
            {
                let started = Instant::now();
                match write_request(shared, &name, &args) {
                    Ok(write) => {
                        self.busy = true;
                        let (conn, resp3, done) = (self.id, self.session.resp3, shared.clone());
                        shared.db.submit(write, move |result| {
                            let reply = write_reply(result);
                            let mut bytes = Vec::new();
                            reply.write(resp3, &mut bytes);
                            done.complete(Completion {
                                conn,
                                name,
                                bytes,
                                error: reply.is_error(),
                                took: started.elapsed(),
                                session: None,
                                blocked: None,
                            });
                        });
                    }
                    Err(reply) => self.reply(shared, &name, reply, started),
                }
            }
            _ => {
                let started = Instant::now();
                let reply = execute(shared, &mut self.session, &args);
                self.reply(shared, &name, reply, started);
                if self.session.quit {
                    self.closing = Some("QUIT".to_string());
                }
            }
        }
    }

    fn reply(&mut self, shared: &Shared, name: &str, reply: Reply, started: Instant) {
        shared
            .stats
            .record(name, reply.is_error(), started.elapsed());
        reply.write(self.session.resp3, &mut self.output);
    }

    /// The reply of the request that ran elsewhere.
    pub(super) fn complete(&mut self, shared: &Shared, done: Completion) {
        if let Some(blocked) = done.blocked {
            // Still busy: the reply comes when entries arrive or the time is up.
            self.blocked = Some((blocked, done.name));
            return;
        }
        self.busy = false;
        shared.stats.record(&done.name, done.error, done.took);
        self.output.extend_from_slice(&done.bytes);
        if let Some(session) = done.session {
            self.session = session;
        }
        if self.counted_unauthenticated && self.session.authenticated() {
            self.counted_unauthenticated = false;
            shared.unauthenticated.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Writes what the socket takes.
    fn flush(&mut self) -> std::io::Result<()> {
        let mut written = 0;
        while written < self.output.len() {
            match self.stream.write(&self.output[written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.output.drain(..written);
        if self.output.is_empty() {
            self.stalled_since = None;
            if self.output.capacity() > 64 * 1024 {
                // one huge reply should not keep its buffer for the connection's life
                self.output = Vec::new();
            }
        } else if written > 0 || self.stalled_since.is_none() {
            self.stalled_since = Some(Instant::now());
        }
        Ok(())
    }

    /// A blocked stream read: run again when `changed` (a commit added entries), answered
    /// nil when its time is up or the server stops. True when it was answered here.
    pub(super) fn unblock(
        &mut self,
        shared: &Arc<Shared>,
        changed: bool,
        now: Instant,
        stopping: bool,
    ) -> bool {
        let Some((blocked, _)) = &self.blocked else {
            return false;
        };
        let expired = blocked.until.is_some_and(|until| now >= until);
        if expired || stopping {
            let (_, name) = self.blocked.take().expect("blocked");
            self.busy = false;
            shared.stats.record(&name, false, Duration::ZERO);
            super::resp::Reply::Nil.write(self.session.resp3, &mut self.output);
            return true;
        }
        if changed {
            let (blocked, name) = self.blocked.take().expect("blocked");
            shared.queries.spawn(
                shared,
                Job {
                    conn: self.id,
                    session: self.session.clone(),
                    name,
                    args: blocked.args,
                },
            );
        }
        false
    }

    /// Why the connection closes, once it has said everything it had to.
    pub(super) fn closed(&self) -> Option<String> {
        self.output
            .is_empty()
            .then(|| self.closing.clone())
            .flatten()
    }

    /// Why the connection must close now, if it must (checked every poll interval).
    pub(super) fn expired(&mut self, shared: &Shared, now: Instant) -> Option<String> {
        let limits = &shared.config.limits;
        if let Some(since) = self.stalled_since
            && now.duration_since(since) >= Duration::from_secs(limits.write_timeout_seconds)
        {
            let why = format!(
                "the client did not read its replies for {}s (limits.write_timeout_seconds); \
                 unsent replies dropped",
                limits.write_timeout_seconds
            );
            tracing::warn!(id = self.id, peer = ?self.peer, "{why}");
            return Some(why);
        }
        if self.closing.is_some() {
            return self
                .output
                .is_empty()
                .then(|| self.closing.clone().unwrap_or_default());
        }
        if self.busy {
            return None;
        }
        if !self.session.authenticated()
            && now.duration_since(self.connected) >= Duration::from_secs(limits.auth_seconds)
        {
            let why = format!(
                "not authenticated within {}s (limits.auth_seconds)",
                limits.auth_seconds
            );
            self.say_closing(&why);
            return Some("authentication timeout".to_string());
        }
        if now.duration_since(self.last_request) >= Duration::from_secs(limits.idle_seconds) {
            let what = if self.input.is_empty() {
                "idle"
            } else {
                "a request left unfinished"
            };
            self.say_closing(&format!("{what} for {}s", limits.idle_seconds));
            return Some(format!("{what} timeout"));
        }
        None
    }

    /// At shutdown: done once nothing it has read is left to answer.
    pub(super) fn finished_for_shutdown(&self) -> bool {
        !self.busy && self.output.is_empty()
    }

    /// Tells the client why the server closes its connection (best effort: it is closing).
    fn say_closing(&mut self, why: &str) {
        let mut out = Vec::new();
        Reply::error("ERR", format!("closing the connection: {why}"))
            .write(self.session.resp3, &mut out);
        let _ = self.stream.write(&out);
    }
}
