//! The TCP server: Redis protocol, a thread per connection, limits, graceful shutdown.
//!
//! Each connection reads requests into a buffer, answers every whole request in it (so
//! pipelined requests are answered in one write), and closes after a protocol error, on
//! QUIT, after `limits.idle_seconds` of silence or of a request left unfinished, or at
//! shutdown. Shutdown (SIGTERM, SIGINT): stop accepting, let every connection finish the
//! requests it has read, checkpoint, exit 0.

pub(crate) mod auth;
mod cache;
mod commands;
pub(crate) mod config;
mod info;
mod resp;
mod stats;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    pub(crate) addr: SocketAddr,
    shutting_down: AtomicBool,
    next_id: AtomicU64,
}

/// How often a waiting connection looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);

/// A listening server.
pub(crate) struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the configured address. Refuses a non-loopback address without users.
    pub(crate) fn bind(db: Database, config: Config) -> Result<Server> {
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
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                db: Arc::new(db),
                stats: Stats::new(),
                cache: cache::AnswerCache::new(config.answer_cache),
                addr,
                shutting_down: AtomicBool::new(false),
                next_id: AtomicU64::new(1),
                config,
            }),
        })
    }

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
        let mut connections: Vec<std::thread::JoinHandle<()>> = Vec::new();
        for stream in self.listener.incoming() {
            if self.shared.shutting_down.load(Ordering::SeqCst) {
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
            let stats = &self.shared.stats;
            stats.connections.fetch_add(1, Ordering::SeqCst);
            if connections.len() >= self.shared.config.limits.clients {
                stats.refused_connections.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let _ = stream.write_all(b"-ERR max number of clients reached\r\n");
                continue;
            }
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("memberdb-conn".to_string())
                .spawn(move || serve_connection(stream, &shared));
            match spawned {
                Ok(handle) => connections.push(handle),
                Err(e) => tracing::warn!("cannot start a connection thread: {e}"),
            }
        }
        tracing::info!(
            connections = connections.len(),
            "stopped accepting; finishing in-flight requests"
        );
        for c in connections {
            let _ = c.join();
        }
        let started = Instant::now();
        let wrote = self
            .shared
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

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let stats = &shared.stats;
    stats.clients.fetch_add(1, Ordering::SeqCst);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let peer = stream.peer_addr().ok();
    tracing::debug!(id, ?peer, "connection opened");
    let why = match converse(&mut stream, shared, id) {
        Ok(why) => why,
        Err(e) => format!("I/O error: {e}"),
    };
    tracing::debug!(id, ?peer, why, "connection closed");
    stats.clients.fetch_sub(1, Ordering::SeqCst);
}

/// Answers requests until the connection ends; returns why it ended.
fn converse(stream: &mut TcpStream, shared: &Shared, id: u64) -> std::io::Result<String> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    let limits = &shared.config.limits;
    let idle = Duration::from_secs(limits.idle_seconds);
    let mut session = Session::new(id, shared);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_progress = Instant::now();
    loop {
        // Every whole request in the buffer, answered in order.
        let mut used = 0;
        loop {
            let frames = limits.frames(session.authenticated());
            match parse_request(&buf[used..], &frames) {
                Ok(Some((args, n))) => {
                    used += n;
                    let started = Instant::now();
                    let reply = execute(shared, &mut session, &args);
                    shared
                        .stats
                        .record(&command_name(&args), reply.is_error(), started.elapsed());
                    reply.write(session.resp3, &mut out);
                    if session.quit {
                        stream.write_all(&out)?;
                        return Ok("QUIT".to_string());
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
            last_progress = Instant::now();
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            return Ok("server shutting down".to_string());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok("closed by the client".to_string()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() <= n {
                    // a new request starts: the idle clock restarts only for whole requests
                    last_progress = Instant::now();
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if last_progress.elapsed() >= idle {
            let what = if buf.is_empty() {
                "idle"
            } else {
                "a request left unfinished"
            };
            Reply::error(
                "ERR",
                format!(
                    "closing the connection: {what} for {}s",
                    limits.idle_seconds
                ),
            )
            .write(session.resp3, &mut out);
            let _ = stream.write_all(&out);
            return Ok(format!("{what} timeout"));
        }
    }
}
