//! The TCP server: Redis protocol over an event loop, limits, graceful shutdown.
//!
//! One thread polls every socket (mio: epoll on Linux) and answers the quick requests itself
//! (PING, INFO, MEMBER.GET, CLIENT, ...); QUERY statements go to a pool of threads, writes
//! to the database's commit thread (`Database::submit`, so any number of writing clients
//! share one fsync per batch), AUTH to a thread of its own. A connection costs its buffers,
//! not a thread: its requests are answered in order, one at a time (`conn.rs`). A connection
//! closes after a protocol error, on QUIT, after `limits.idle_seconds` without a whole
//! request, when it has not authenticated within `limits.auth_seconds`, when its replies
//! stay unread for `limits.write_timeout_seconds`, or at shutdown. Shutdown (SIGTERM,
//! SIGINT): stop accepting and reading, answer every request already read, cut the
//! connections still busy after `limits.shutdown_seconds`, checkpoint, exit 0.

mod audit;
pub(crate) mod auth;
mod cache;
mod commands;
pub(crate) mod config;
mod conn;
mod erase;
#[cfg(test)]
mod fuzz_tests;
mod identities;
mod info;
mod parsed;
mod pool;
mod resp;
pub(crate) mod roles;
mod share;
mod stats;
mod streams;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossbeam::channel::{Receiver, Sender, unbounded};
use memberdb::Database;
use mio::{Events, Interest, Poll, Token, Waker};

use config::Config;
use conn::Conn;
use pool::Completion;
use stats::Stats;

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) db: Arc<Database>,
    pub(crate) config: Config,
    pub(crate) stats: Stats,
    pub(crate) cache: Arc<cache::AnswerCache>,
    /// Statements parsed, by their text.
    pub(crate) parsed: parsed::ParsedStatements,
    pub(crate) auth: auth::AuthGate,
    /// The audit log in the database's directory.
    pub(crate) audit: Arc<memberdb::audit::AuditLog>,
    /// Clean-room counts: the shared secret, the pools' directory, the users' budgets.
    pub(crate) share: share::Share,
    /// What each configured user may do, built from its roles at start.
    pub(crate) accesses: std::collections::HashMap<String, Arc<memberdb::Access>>,
    /// The access of every client of a server without users (open on loopback).
    pub(crate) open_access: Arc<memberdb::Access>,
    /// The threads that run QUERY statements.
    queries: pool::QueryPool,
    pub(crate) addr: SocketAddr,
    shutting_down: AtomicBool,
    next_id: AtomicU64,
    /// Connections that have not authenticated yet (only counted when users are configured).
    unauthenticated: AtomicUsize,
    /// Replies of requests that ran away from the event loop, and its wake-up.
    completions: (Sender<Completion>, Receiver<Completion>),
    waker: OnceLock<Arc<Waker>>,
    /// A wake-up is on its way and the event loop has not yet taken the completions: later
    /// completions need not wake it again (one `eventfd` write per batch, not per reply).
    wake_pending: AtomicBool,
    /// A commit added stream entries since the event loop last looked: blocked `XREAD`s run
    /// again.
    streams_changed: AtomicBool,
}

/// How often the event loop looks at its clocks (idle, authentication, unread replies) and
/// the shutdown flag.
const POLL: Duration = Duration::from_millis(100);
const LISTENER: Token = Token(0);
/// Parsed statements kept by text, and their text's bytes in all.
const PARSED_STATEMENTS: usize = 1024;
const PARSED_BYTES: usize = 1 << 20;
const WAKER: Token = Token(1);

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
    pub(crate) fn serve(self, db: Database, dir: &std::path::Path) -> Result<Server> {
        let addr = self.listener.local_addr()?;
        self.listener.set_nonblocking(true)?;
        let mut listener = mio::net::TcpListener::from_std(self.listener);
        let poll = Poll::new().context("cannot create the event loop")?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let shared = Arc::new(Shared::new(db, self.config, addr, dir)?);
        audit::record_bursts(&shared);
        let _ = shared.waker.set(waker);
        // A commit that adds stream entries wakes the blocked readers (a weak reference: the
        // database must not keep the server's state alive).
        let weak = Arc::downgrade(&shared);
        shared.db.on_changes(Arc::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.streams_changed.store(true, Ordering::Release);
                shared.wake();
            }
        }));
        Ok(Server {
            listener,
            poll,
            shared,
        })
    }
}

impl Shared {
    fn new(
        db: Database,
        config: Config,
        addr: SocketAddr,
        dir: &std::path::Path,
    ) -> Result<Shared> {
        let accesses = roles::accesses(&config, &db)?;
        let share = share::Share::new(&config.share)?;
        let audit =
            memberdb::audit::AuditLog::open(dir, config.audit.retention_days, config.file_mode()?)
                .with_context(|| format!("the audit log in {}", dir.display()))?;
        audit
            .record(memberdb::audit::AuditEvent {
                action: "start".to_string(),
                detail: Some(format!("config sha256 {}", config.source_hash)),
                ..memberdb::audit::AuditEvent::default()
            })
            .context("cannot record the start in the audit log")?;
        Ok(Shared {
            audit: Arc::new(audit),
            share,
            accesses,
            open_access: Arc::new(memberdb::Access::admin()),
            db: Arc::new(db),
            stats: Stats::new(),
            cache: Arc::new(cache::AnswerCache::new(
                config.answer_cache,
                config.answer_cache_bytes,
            )),
            parsed: parsed::ParsedStatements::new(PARSED_STATEMENTS, PARSED_BYTES),
            auth: auth::AuthGate::new(config.limits.auth_concurrency),
            queries: pool::QueryPool::new(config.limits.query_threads),
            addr,
            shutting_down: AtomicBool::new(false),
            // tokens 0 and 1 are the listener's and the waker's
            next_id: AtomicU64::new(2),
            unauthenticated: AtomicUsize::new(0),
            completions: unbounded(),
            waker: OnceLock::new(),
            wake_pending: AtomicBool::new(false),
            streams_changed: AtomicBool::new(false),
            config,
        })
    }

    /// Hands a reply to the event loop.
    pub(crate) fn complete(&self, done: Completion) {
        let _ = self.completions.0.send(done);
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.get() {
            let _ = waker.wake();
        }
    }
}

/// A listening server.
pub(crate) struct Server {
    listener: mio::net::TcpListener,
    poll: Poll,
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

    /// Serves until stopped, then answers what the connections have sent and checkpoints.
    pub(crate) fn run(mut self) -> Result<()> {
        let shared = self.shared.clone();
        let limits = &shared.config.limits;
        let mut events = Events::with_capacity(1024);
        let mut conns: HashMap<u64, Conn> = HashMap::new();
        let mut scratch = vec![0u8; 64 * 1024];
        let mut grace: Option<Instant> = None;
        // The clocks are looked at once per poll interval, not after every event.
        let mut clocks_checked = Instant::now();
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(POLL))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(e).context("the event loop failed");
            }
            let stopping = shared.shutting_down.load(Ordering::SeqCst);
            if stopping && grace.is_none() {
                let _ = self.poll.registry().deregister(&mut self.listener);
                tracing::info!(
                    connections = conns.len(),
                    "stopped accepting; finishing in-flight requests"
                );
                grace = Some(Instant::now() + Duration::from_secs(limits.shutdown_seconds));
            }
            let mut touched: Vec<u64> = Vec::new();
            for event in events.iter() {
                match event.token() {
                    LISTENER if !stopping => self.accept(&mut conns),
                    LISTENER | WAKER => {}
                    Token(t) => {
                        let id = t as u64;
                        if let Some(conn) = conns.get_mut(&id) {
                            if event.is_readable() || event.is_read_closed() {
                                conn.readable();
                            }
                            touched.push(id);
                        }
                    }
                }
            }
            // Cleared before the completions are taken: one sent after this wakes the loop
            // again, one sent before it is taken below.
            shared.wake_pending.store(false, Ordering::Release);
            for done in shared.completions.1.try_iter() {
                if let Some(conn) = conns.get_mut(&done.conn) {
                    conn.complete(&shared, done);
                    touched.push(conn.id);
                }
            }
            // Blocked stream reads: run again after a commit that added entries; answered
            // nil when their time is up (or at shutdown).
            let changed = shared.streams_changed.swap(false, Ordering::AcqRel);
            let now = Instant::now();
            for conn in conns.values_mut() {
                if conn.unblock(&shared, changed, now, stopping) {
                    touched.push(conn.id);
                }
            }
            for id in touched {
                let Some(conn) = conns.get_mut(&id) else {
                    continue;
                };
                match conn.pump(&shared, &mut scratch, !stopping) {
                    Err(e) => self.close(&mut conns, id, &format!("I/O error: {e}")),
                    Ok(()) => {
                        if let Some(why) = conn.closed() {
                            self.close(&mut conns, id, &why);
                        }
                    }
                }
            }
            let now = Instant::now();
            if now.duration_since(clocks_checked) >= POLL || stopping {
                clocks_checked = now;
                let expired: Vec<(u64, String)> = conns
                    .values_mut()
                    .filter_map(|c| c.expired(&shared, now).map(|why| (c.id, why)))
                    .collect();
                for (id, why) in expired {
                    self.close(&mut conns, id, &why);
                }
            }
            if stopping {
                let done: Vec<u64> = conns
                    .values()
                    .filter(|c| c.finished_for_shutdown())
                    .map(|c| c.id)
                    .collect();
                for id in done {
                    self.close(&mut conns, id, "server shutting down");
                }
                if conns.is_empty() {
                    break;
                }
                if grace.is_some_and(|g| Instant::now() >= g) {
                    tracing::warn!(
                        busy = conns.len(),
                        "cutting the connections still busy at shutdown"
                    );
                    let ids: Vec<u64> = conns.keys().copied().collect();
                    for id in ids {
                        self.close(&mut conns, id, "cut at shutdown");
                    }
                    break;
                }
            }
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

    /// Accepts every waiting connection, within the limits on clients.
    fn accept(&mut self, conns: &mut HashMap<u64, Conn>) {
        let shared = &self.shared;
        let limits = &shared.config.limits;
        let guarded = !shared.config.users.is_empty();
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of file descriptors, a connection reset before accept: the next
                    // readiness event tries again.
                    tracing::warn!("accept failed: {e}");
                    return;
                }
            };
            let stats = &shared.stats;
            stats.connections.fetch_add(1, Ordering::SeqCst);
            let refusal = if conns.len() >= limits.clients {
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
                // Best effort: a fresh socket takes a short line without blocking.
                let _ = stream.write(refusal.as_bytes());
                continue;
            }
            let _ = stream.set_nodelay(true);
            let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
            let mut conn = Conn::new(id, stream, shared);
            if let Err(e) = self.poll.registry().register(
                &mut conn.stream,
                Token(id as usize),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!("cannot watch a connection: {e}");
                continue;
            }
            if guarded {
                shared.unauthenticated.fetch_add(1, Ordering::SeqCst);
                conn.counted_unauthenticated = true;
            }
            stats.clients.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(id, peer = ?conn.peer, "connection opened");
            conns.insert(id, conn);
        }
    }

    fn close(&mut self, conns: &mut HashMap<u64, Conn>, id: u64, why: &str) {
        let Some(mut conn) = conns.remove(&id) else {
            return;
        };
        let shared = &self.shared;
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        if conn.counted_unauthenticated {
            shared.unauthenticated.fetch_sub(1, Ordering::SeqCst);
        }
        shared.auth.sweep(None);
        tracing::debug!(id, peer = ?conn.peer, why, "connection closed");
        shared.stats.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Stops a running server.
#[derive(Clone)]
pub(crate) struct Stopper {
    shared: Arc<Shared>,
}

impl Stopper {
    pub(crate) fn stop(&self) {
        if !self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            self.shared.wake();
        }
    }
}
