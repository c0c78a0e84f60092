//! The threads that run QUERY statements, apart from the connections' threads.
//!
//! Evaluating a statement allocates bitmaps and result rows of up to megabytes; an allocator
//! keeps such memory in per-thread heaps, so with a thread per connection every connection
//! that ever ran a big statement kept its share (300 clients: gigabytes). Statements run
//! here instead, on `limits.query_threads` threads, and their replies are encoded here; a
//! connection's thread only reads requests, writes bytes, and runs the writes (which must
//! stay many at once so that the group commit shares fsyncs).

use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender, bounded, unbounded};

use super::Shared;
use super::commands::{Session, execute};

/// A statement to run and where to send its encoded reply.
struct Job {
    shared: Arc<Shared>,
    session: Session,
    args: Vec<Vec<u8>>,
    reply: Sender<Done>,
}

/// An encoded reply, whether it is an error, and how long the statement took.
pub(crate) struct Done {
    pub(crate) bytes: Vec<u8>,
    pub(crate) error: bool,
    pub(crate) took: Duration,
}

pub(crate) struct QueryPool {
    jobs: Sender<Job>,
}

impl QueryPool {
    /// `threads` workers (0: one per core).
    pub(crate) fn new(threads: usize) -> QueryPool {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let (jobs, queue) = unbounded::<Job>();
        for i in 0..threads {
            let queue: Receiver<Job> = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("memberdb-query-{i}"))
                .spawn(move || {
                    // Ends when every sender (the shared state) is gone.
                    for job in queue {
                        let started = std::time::Instant::now();
                        let mut session = job.session;
                        let reply = execute(&job.shared, &mut session, &job.args);
                        let mut bytes = Vec::new();
                        reply.write(session.resp3, &mut bytes);
                        let done = Done {
                            bytes,
                            error: reply.is_error(),
                            took: started.elapsed(),
                        };
                        drop(reply);
                        // The connection may be gone; then nobody wants the reply.
                        let _ = job.reply.send(done);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a query thread: {e}");
            }
        }
        QueryPool { jobs }
    }

    /// Runs QUERY `args` for a copy of `session` on a pool thread and waits for its reply.
    pub(crate) fn run(&self, shared: &Arc<Shared>, session: &Session, args: Vec<Vec<u8>>) -> Done {
        let (reply, done) = bounded(1);
        let job = Job {
            shared: shared.clone(),
            session: session.clone(),
            args,
            reply,
        };
        let lost = || Done {
            bytes: b"-ERR the statement's thread stopped; try again\r\n".to_vec(),
            error: true,
            took: Duration::ZERO,
        };
        if self.jobs.send(job).is_err() {
            return lost();
        }
        done.recv().unwrap_or_else(|_| lost())
    }
}
