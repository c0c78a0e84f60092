//! Work the event loop hands off: QUERY statements to a pool of `limits.query_threads`
//! threads, AUTH and HELLO (a password check, delayed for an address that keeps failing) to
//! a short-lived thread each; their encoded replies come back as [`Completion`]s.
//!
//! Evaluating a statement allocates bitmaps and result rows of up to megabytes; an allocator
//! keeps such memory in per-thread heaps, so statements run on a few threads and their
//! replies are encoded there. Writes go to the database's commit thread
//! ([`memberdb::Database::submit`]), so no request blocks the event loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, unbounded};

use super::Shared;
use super::commands::{Session, execute};
use super::streams::{self, Answer, Blocked};

/// A request to run away from the event loop, for connection `conn`.
pub(crate) struct Job {
    pub(crate) conn: u64,
    pub(crate) session: Session,
    pub(crate) name: String,
    pub(crate) args: Vec<Vec<u8>>,
}

/// A request's encoded reply, back for its connection.
pub(crate) struct Completion {
    pub(crate) conn: u64,
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) error: bool,
    pub(crate) took: Duration,
    /// The session after the request, when it may change it (AUTH, HELLO).
    pub(crate) session: Option<Session>,
    /// A stream read that found nothing and waits (no reply yet).
    pub(crate) blocked: Option<Blocked>,
}

/// Runs `job` here and encodes its reply.
fn run(shared: &Shared, job: Job, keep_session: bool) -> Completion {
    let started = Instant::now();
    let mut session = job.session;
    let reply = if streams::COMMANDS.contains(&job.name.as_str()) {
        match streams::execute(shared, &session, &job.name, &job.args) {
            Answer::Reply(reply) => reply,
            Answer::Wait(blocked) => {
                return Completion {
                    conn: job.conn,
                    name: job.name,
                    bytes: Vec::new(),
                    error: false,
                    took: started.elapsed(),
                    session: None,
                    blocked: Some(blocked),
                };
            }
        }
    } else {
        execute(shared, &mut session, &job.args)
    };
    let mut bytes = Vec::new();
    reply.write(session.resp3, &mut bytes);
    Completion {
        conn: job.conn,
        name: job.name,
        bytes,
        error: reply.is_error(),
        took: started.elapsed(),
        session: keep_session.then_some(session),
        blocked: None,
    }
}

pub(crate) struct QueryPool {
    jobs: Sender<(Arc<Shared>, Job)>,
}

impl QueryPool {
    /// `threads` workers (0: one per core).
    pub(crate) fn new(threads: usize) -> QueryPool {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let (jobs, queue) = unbounded::<(Arc<Shared>, Job)>();
        for i in 0..threads {
            let queue: Receiver<(Arc<Shared>, Job)> = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("memberdb-query-{i}"))
                .spawn(move || {
                    // Ends when every sender (the shared state) is gone.
                    for (shared, job) in queue {
                        let done = run(&shared, job, false);
                        shared.complete(done);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a query thread: {e}");
            }
        }
        QueryPool { jobs }
    }

    /// Runs QUERY (or stream command) `job` on a pool thread; its reply comes back through [`Shared::complete`].
    pub(crate) fn spawn(&self, shared: &Arc<Shared>, job: Job) {
        if let Err(e) = self.jobs.send((shared.clone(), job)) {
            let (_, job) = e.into_inner();
            shared.complete(lost(job, "the statement's thread stopped; try again"));
        }
    }
}

/// Runs AUTH or HELLO `job` on a thread of its own (a failing address waits there, not in
/// the event loop or the query threads); its reply and session come back through
/// [`Shared::complete`].
pub(crate) fn spawn_auth(shared: &Arc<Shared>, job: Job) {
    let (conn, name) = (job.conn, job.name.clone());
    let worker = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("memberdb-auth".to_string())
        .spawn(move || {
            let done = run(&worker, job, true);
            worker.complete(done);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a thread for AUTH: {e}");
        shared.complete(Completion {
            conn,
            name,
            bytes: b"-ERR the server is out of threads; try again\r\n".to_vec(),
            error: true,
            took: Duration::ZERO,
            session: None,
            blocked: None,
        });
    }
}

fn lost(job: Job, why: &str) -> Completion {
    Completion {
        conn: job.conn,
        name: job.name,
        bytes: format!("-ERR {why}\r\n").into_bytes(),
        error: true,
        took: Duration::ZERO,
        session: None,
        blocked: None,
    }
}
