//! The TCP server: Redis protocol, a thread per connection, limits, graceful shutdown.
//!
//! Each connection reads requests into a buffer and answers every whole request in it in
//! order; replies are written out as they are produced, in batches of
//! `limits.reply_buffer_bytes`, so pipelined requests share writes while a client that never
//! reads holds at most one batch and one reply in the server (its writes then time out after
//! `limits.write_timeout_seconds` and it is disconnected). A connection closes after a
//! protocol error, on QUIT, after `limits.idle_seconds` without a whole request, when it has
//! not authenticated within `limits.auth_seconds`, or at shutdown. Shutdown (SIGTERM,
//! SIGINT): stop accepting, let every connection finish the requests it has read, cut the
//! ones still busy after `limits.shutdown_seconds`, checkpoint, exit 0.

pub(crate) mod auth;
mod cache;
mod commands;
pub(crate) mod config;
#[cfg(test)]
mod fuzz_tests;
mod info;
mod pool;
mod resp;
mod stats;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use memberdb::Database;

use commands::{Session, command_name, execute};
use config::Config;
use resp::{Reply, parse_request};
use stats::Stats;

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) db: Arc<Database>,
    pub(crate) config: Config,
    pub(crate) stats: Stats,
    pub(crate) cache: cache::AnswerCache,
    pub(crate) auth: auth::AuthGate,
    /// The threads that run QUERY statements.
    queries: pool::QueryPool,
    pub(crate) addr: SocketAddr,
    shutting_down: AtomicBool,
    next_id: AtomicU64,
    /// Connections that have not authenticated yet (only counted when users are configured).
    unauthenticated: AtomicUsize,
    /// A handle on every open connection's socket, to cut the ones still busy at shutdown.
    sockets: Mutex<HashMap<u64, TcpStream>>,
}

/// How often a waiting connection looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);

/// The listening socket, bound before the database is opened: a server that cannot take
/// its address says so before it takes the database's lock or spends time opening it.
pub(crate) struct Listener {
    listener: TcpListener,
    config: Config,
}

impl Listener {
    /// Binds the configured address. Refuses a non-loopback address without users.
    pub(crate) fn bind(config: Config) -> Result<Listener> {
        let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&config.bind)
            .with_context(|| format!("'{}' is not an address to listen on", config.bind))?
            .collect();
        if config.users.is_empty()
            && let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback())
        {
            bail!(
                "refusing to listen on {open} without any password: anyone on the network \
                 could read and change the data. Add [[users]] with password hashes to the \
                 config file (memberdb hash-password), or bind 127.0.0.1"
            );
        }
        let listener = TcpListener::bind(&addrs[..])
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        Ok(Listener { listener, config })
    }

    /// The server over `db`, ready to run.
    pub(crate) fn serve(self, db: Database) -> Result<Server> {
        let addr = self.listener.local_addr()?;
        Ok(Server {
            listener: self.listener,
            shared: Arc::new(Shared::new(db, self.config, addr)),
        })
    }
}

impl Shared {
    fn new(db: Database, config: Config, addr: SocketAddr) -> Shared {
        Shared {
            db: Arc::new(db),
            stats: Stats::new(),
            cache: cache::AnswerCache::new(config.answer_cache, config.answer_cache_bytes),
            auth: auth::AuthGate::new(config.limits.auth_concurrency),
            queries: pool::QueryPool::new(config.limits.query_threads),
            addr,
            shutting_down: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            unauthenticated: AtomicUsize::new(0),
            sockets: Mutex::new(HashMap::new()),
            config,
        }
    }
}

/// A listening server.
pub(crate) struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A handle that stops the server from another thread.
    pub(crate) fn stopper(&self) -> Stopper {
        Stopper {
            shared: self.shared.clone(),
        }
    }

    /// Serves until stopped, then waits for the connections to finish and checkpoints.
    pub(crate) fn run(self) -> Result<()> {
        let shared = &self.shared;
        let limits = &shared.config.limits;
        let guarded = !shared.config.users.is_empty();
        let mut connections: Vec<std::thread::JoinHandle<()>> = Vec::new();
        for stream in self.listener.incoming() {
            if shared.shutting_down.load(Ordering::SeqCst) {
                break;
            }
            connections.retain(|c| !c.is_finished());
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let stats = &shared.stats;
            stats.connections.fetch_add(1, Ordering::SeqCst);
            let refusal = if connections.len() >= limits.clients {
                Some("-ERR max number of clients reached\r\n")
            } else if guarded
                && shared.unauthenticated.load(Ordering::SeqCst) >= limits.unauthenticated_clients
            {
                Some(
                    "-ERR too many connections waiting to authenticate \
                     (limits.unauthenticated_clients); try again later\r\n",
                )
            } else {
                None
            };
            if let Some(refusal) = refusal {
                stats.refused_connections.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = stream.write_all(refusal.as_bytes());
                continue;
            }
            if guarded {
                shared.unauthenticated.fetch_add(1, Ordering::SeqCst);
            }
            let conn_shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("memberdb-conn".to_string())
                .spawn(move || serve_connection(stream, conn_shared));
            match spawned {
                Ok(handle) => connections.push(handle),
                Err(e) => {
                    if guarded {
                        shared.unauthenticated.fetch_sub(1, Ordering::SeqCst);
                    }
                    tracing::warn!("cannot start a connection thread: {e}")
                }
            }
        }
        tracing::info!(
            connections = connections.len(),
            "stopped accepting; finishing in-flight requests"
        );
        // Connections finish what they have read; those still busy after the grace period
        // (a client that does not read, a statement without a deadline) are cut.
        let grace = Instant::now() + Duration::from_secs(limits.shutdown_seconds);
        while Instant::now() < grace && connections.iter().any(|c| !c.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let busy = connections.iter().filter(|c| !c.is_finished()).count();
        if busy > 0 {
            tracing::warn!(busy, "cutting the connections still busy at shutdown");
            for socket in lock(&shared.sockets).values() {
                let _ = socket.shutdown(std::net::Shutdown::Both);
            }
        }
        for c in connections {
            let _ = c.join();
        }
        shared.auth.sweep(Some(Duration::ZERO));
        let started = Instant::now();
        let wrote = shared
            .db
            .checkpoint_if_needed()
            .context("the checkpoint at shutdown failed")?;
        tracing::info!(
            checkpoint = wrote,
            millis = started.elapsed().as_millis() as u64,
            "bye"
        );
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops a running server.
#[derive(Clone)]
pub(crate) struct Stopper {
    shared: Arc<Shared>,
}

impl Stopper {
    pub(crate) fn stop(&self) {
        if self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop with a connection of our own.
        let mut addr = self.shared.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    }
}

fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let shared = &shared;
    let stats = &shared.stats;
    stats.clients.fetch_add(1, Ordering::SeqCst);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let peer = stream.peer_addr().ok();
    if let Ok(handle) = stream.try_clone() {
        lock(&shared.sockets).insert(id, handle);
    }
    tracing::debug!(id, ?peer, "connection opened");
    let client = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.ip());
    let mut session = Session::new(id, client, shared);
    let why = match converse(&mut stream, shared, &mut session) {
        Ok(why) => why,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            let why = format!(
                "the client did not read its replies for {}s (limits.write_timeout_seconds); \
                 unsent replies dropped",
                shared.config.limits.write_timeout_seconds
            );
            tracing::warn!(id, ?peer, "{why}");
            why
        }
        Err(e) => format!("I/O error: {e}"),
    };
    if !shared.config.users.is_empty() && !session.authenticated() {
        shared.unauthenticated.fetch_sub(1, Ordering::SeqCst);
    }
    lock(&shared.sockets).remove(&id);
    shared.auth.sweep(None);
    tracing::debug!(id, ?peer, why, "connection closed");
    stats.clients.fetch_sub(1, Ordering::SeqCst);
}

/// Answers requests until the connection ends; returns why it ended.
fn converse(
    stream: &mut TcpStream,
    shared: &Arc<Shared>,
    session: &mut Session,
) -> std::io::Result<String> {
    let limits = &shared.config.limits;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(limits.write_timeout_seconds)))?;
    let idle = Duration::from_secs(limits.idle_seconds);
    let guarded = !session.authenticated();
    let connected = Instant::now();
    let auth_deadline = connected + Duration::from_secs(limits.auth_seconds);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    // The idle clock restarts when a whole request arrives, never when a reply is sent.
    let mut last_request = connected;
    loop {
        // Every whole request in the buffer, answered in order.
        let mut used = 0;
        loop {
            let frames = limits.frames(session.authenticated());
            match parse_request(&buf[used..], &frames) {
                Ok(Some((args, n))) => {
                    used += n;
                    last_request = Instant::now();
                    let was_authenticated = session.authenticated();
                    let name = command_name(&args);
                    if name == "QUERY" && was_authenticated {
                        // Statements run on the query threads (see pool.rs).
                        let done = shared.queries.run(shared, session, args);
                        shared.stats.record(&name, done.error, done.took);
                        out.extend_from_slice(&done.bytes);
                    } else {
                        let started = Instant::now();
                        let reply = execute(shared, session, &args);
                        shared
                            .stats
                            .record(&name, reply.is_error(), started.elapsed());
                        reply.write(session.resp3, &mut out);
                    }
                    if guarded && !was_authenticated && session.authenticated() {
                        shared.unauthenticated.fetch_sub(1, Ordering::SeqCst);
                    }
                    if session.quit {
                        stream.write_all(&out)?;
                        return Ok("QUIT".to_string());
                    }
                    // Written as produced: a client that pipelines and never reads holds
                    // at most this much here, then blocks on its own socket.
                    if out.len() >= limits.reply_buffer_bytes {
                        stream.write_all(&out)?;
                        out.clear();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    Reply::error("ERR", format!("Protocol error: {}", e.0))
                        .write(session.resp3, &mut out);
                    stream.write_all(&out)?;
                    return Ok(format!("protocol error: {}", e.0));
                }
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if out.capacity() > 4 * limits.reply_buffer_bytes.max(16 * 1024) {
            // one huge reply should not keep its buffer for the connection's life
            out = Vec::with_capacity(16 * 1024);
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            return Ok("server shutting down".to_string());
        }
        if !session.authenticated() && Instant::now() >= auth_deadline {
            let why = format!(
                "not authenticated within {}s (limits.auth_seconds)",
                limits.auth_seconds
            );
            say_closing(stream, session, &why);
            return Ok("authentication timeout".to_string());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok("closed by the client".to_string()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if last_request.elapsed() >= idle {
            let what = if buf.is_empty() {
                "idle"
            } else {
                "a request left unfinished"
            };
            say_closing(
                stream,
                session,
                &format!("{what} for {}s", limits.idle_seconds),
            );
            return Ok(format!("{what} timeout"));
        }
    }
}

/// Tells the client why the server closes its connection (best effort: it is closing).
fn say_closing(stream: &mut TcpStream, session: &Session, why: &str) {
    let mut out = Vec::new();
    Reply::error("ERR", format!("closing the connection: {why}")).write(session.resp3, &mut out);
    let _ = stream.write_all(&out);
}
