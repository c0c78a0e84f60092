//! The write path: group commit through the log, checkpoints, and recovery at open.
//!
//! A write is framed into the log buffer under the `queue` lock and given the next LSN. The
//! first writer to take the `commit` lock becomes the leader: it takes every change queued so
//! far, appends their records to the log with one write, fsyncs once (policy `always`),
//! applies them to the state in LSN order under the state's write lock, and leaves each
//! writer its answer. Writers that queued meanwhile find their answers when they get the lock,
//! or lead the next batch. So concurrent writers share an fsync, and a change becomes visible
//! to readers only once it is durable.
//!
//! A checkpoint does not stop writers. Holding `commit` for a moment, it makes the log
//! durable, starts the next generation's log (every later record goes there) and takes a
//! snapshot of the state, which costs one pointer per chunk since the state is shared
//! copy-on-write (`util::chunked`). Then, with no lock, it writes the generation from the
//! snapshot and switches the manifest; a writer meanwhile copies only the chunks and bitmaps
//! it changes. Opening follows the chain of logs from the manifest's generation, so a crash
//! anywhere in between loses nothing. Automatic checkpoints (the log past
//! `checkpoint_log_bytes`) run on a background thread.
//!
//! Lock order: `checkpoint`, then `commit`, then `queue`, then the state. Bulk loads hold
//! `commit` for their whole run, so they never interleave with each other or with a batch;
//! one checkpoint runs at a time.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::RecordBatch;

use super::options::{Clock, OpenOptions, SyncPolicy};
use super::{Recovery, lock};
use crate::error::{Error, Result};
use crate::ingest::command::{self, LoadRules};
use crate::ingest::{FileFormat, decompressed, read_batches_from};
use crate::state::State;
use crate::state::apply;
use crate::storage::{self, Manifest, SaveError, Storage};
use crate::wal::change::{self, Change, LoadFormat, LoadRows, LoggedInput, Outcome};
use crate::wal::{load_file, record};

/// Called with a submitted change's answer once it is durable and applied.
pub(crate) type Notify = Box<dyn FnOnce(Result<Outcome>) + Send>;

/// A change waiting for its batch.
struct Pending {
    lsn: u64,
    /// The engine's clock for the change: the commit's time.
    at: i64,
    change: Change,
    /// The rows of a bulk load, already in memory.
    rows: Option<LoadRows>,
    /// Where the answer goes for a submitted change (else to `Done`, for its waiting writer).
    notify: Option<Notify>,
}

/// Changes framed but not yet written.
#[derive(Default)]
struct Queue {
    next_lsn: u64,
    /// The clock of the last change queued: the next one's is never earlier.
    last_at: i64,
    bytes: Vec<u8>,
    pending: Vec<Pending>,
}

/// The durable side, owned by the commit leader.
pub(super) struct Committed {
    pub(super) storage: Option<Arc<dyn Storage>>,
    /// The log file being appended to.
    pub(super) log_file: Option<String>,
    /// The generation of `log_file`: the next checkpoint writes generation + 1.
    generation: u64,
    /// Every change up to this LSN is applied to the state.
    pub(super) applied_lsn: u64,
    /// The LSN the current generation's files contain.
    pub(super) checkpoint_lsn: u64,
    /// Bytes appended to the log since the last checkpoint.
    pub(super) log_bytes: u64,
    /// Appended but not yet fsynced (policies `interval` and `off`).
    unsynced: bool,
    /// Answers a batch produced, handed to `done` once the batch is over.
    results: Vec<(u64, Result<Outcome>)>,
    /// Answers of submitted changes, handed to their callbacks once the batch is over.
    notifications: Vec<(Notify, Result<Outcome>)>,
    /// Counters since open.
    pub(super) stats: LogStats,
}

/// What the write path has done since the database was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Changes committed (log records written).
    pub records: u64,
    /// Batches committed: one log write (and, under `always`, one fsync) each.
    pub batches: u64,
    /// Log fsyncs (batches under `always`, background syncs under `interval`).
    pub fsyncs: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// When the last checkpoint was written, in milliseconds since the epoch (0: none since
    /// open).
    pub last_checkpoint_unix_ms: u64,
    /// How long the last checkpoint held writers off, in microseconds: the moment it makes
    /// the log durable, starts the next log and takes its snapshot.
    pub last_checkpoint_pause_us: u64,
    /// Of that pause, the disk's fsyncs (the rest of the log, the new log's file and
    /// directory entry), in microseconds.
    pub last_checkpoint_fsync_us: u64,
}

/// Answers waiting for their writers, and a counter of finished leaderships, so a writer
/// that found a leader busy sleeps until that leader is done.
#[derive(Default)]
struct Done {
    results: HashMap<u64, Result<Outcome>>,
    epoch: u64,
}

/// The commit lock held by a leader. Dropping it hands the batch's answers to their writers,
/// releases the lock, and then wakes every waiting writer: those with an answer return, one
/// of the others leads the next batch.
pub(super) struct Leader<'a> {
    core: &'a Core,
    committed: Option<MutexGuard<'a, Committed>>,
}

impl Committed {
    fn answer(&mut self, lsn: u64, notify: Option<Notify>, result: Result<Outcome>) {
        match notify {
            Some(notify) => self.notifications.push((notify, result)),
            None => self.results.push((lsn, result)),
        }
    }
}

impl std::ops::Deref for Leader<'_> {
    type Target = Committed;
    fn deref(&self) -> &Committed {
        self.committed.as_ref().expect("held until drop")
    }
}

impl std::ops::DerefMut for Leader<'_> {
    fn deref_mut(&mut self) -> &mut Committed {
        self.committed.as_mut().expect("held until drop")
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut committed = self.committed.take().expect("held until drop");
        let results = std::mem::take(&mut committed.results);
        let notifications = std::mem::take(&mut committed.notifications);
        // Release the commit lock first: a writer woken below must be able to lead.
        drop(committed);
        let mut done = lock(&self.core.done);
        done.results.extend(results);
        done.epoch += 1;
        drop(done);
        self.core.finished.notify_all();
        for (notify, result) in notifications {
            notify(result);
        }
    }
}

/// Wakes a background thread (the checkpointer, the commit thread), or tells it to stop.
#[derive(Default)]
struct CheckpointSignal {
    flags: Mutex<(bool, bool)>,
    wake: Condvar,
}

impl CheckpointSignal {
    fn set(&self, wanted: bool, stop: bool) {
        let mut flags = lock(&self.flags);
        flags.0 |= wanted;
        flags.1 |= stop;
        self.wake.notify_all();
    }

    /// Waits for a request; false when told to stop with none pending (a request made
    /// before the stop is still served: a process that writes a little and exits, again and
    /// again, must still checkpoint).
    fn wait(&self) -> bool {
        let mut flags = lock(&self.flags);
        while !flags.0 && !flags.1 {
            flags = self.wake.wait(flags).unwrap_or_else(|p| p.into_inner());
        }
        std::mem::take(&mut flags.0)
    }
}

/// The state, the log and the locks that order writes.
pub(crate) struct Core {
    pub(super) state: RwLock<State>,
    queue: Mutex<Queue>,
    /// Held for a whole checkpoint: one at a time.
    checkpoint: Mutex<()>,
    commit: Mutex<Committed>,
    signal: Arc<CheckpointSignal>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    /// Checkpoints asked for by [`Core::checkpoint`], each answered on its own channel by the
    /// checkpointer thread, in order.
    requests: Mutex<std::collections::VecDeque<std::sync::mpsc::SyncSender<Result<()>>>>,
    /// Wakes the commit thread, which leads the batches of submitted changes.
    submitted: Arc<CheckpointSignal>,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// The database is closing: the clock thread stops.
    stopping: std::sync::atomic::AtomicBool,
    /// `committer` runs (read by every submit, without the mutex).
    has_committer: std::sync::atomic::AtomicBool,
    done: Mutex<Done>,
    finished: Condvar,
    /// Why writes are stopped (read-only open, or an I/O failure), if they are.
    failure: Mutex<Option<String>>,
    /// The last LSN whose change readers can see; grows with every applied batch.
    pub(super) version: std::sync::atomic::AtomicU64,
    /// Woken after every applied batch: readers waiting for stream entries
    /// (`Database::wait_changes`).
    pub(super) applied: (Mutex<()>, Condvar),
    /// Called after every applied batch that added stream entries (the server's wake-up of
    /// blocked `XREAD`s).
    pub(super) listeners: Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
    pub(super) options: OpenOptions,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("options", &self.options)
            .finish()
    }
}

impl Core {
    pub(super) fn new(
        state: State,
        storage: Option<Arc<dyn Storage>>,
        manifest: Option<&Manifest>,
        recovery: &Recovery,
        options: OpenOptions,
    ) -> Arc<Core> {
        let applied_lsn = recovery.applied_lsn;
        let clock = state.clock;
        // The last log of the chain opening replayed takes the writes.
        let log_file = recovery
            .logs
            .last()
            .cloned()
            .or_else(|| manifest.and_then(|m| m.log_file.clone()));
        let generation = log_file
            .as_deref()
            .and_then(storage::log_generation)
            .unwrap_or_else(|| manifest.map_or(0, |m| m.generation));
        let background = storage.is_some() && !options.read_only && options.background_checkpoints;
        let core = Arc::new(Core {
            state: RwLock::new(state),
            queue: Mutex::new(Queue {
                next_lsn: applied_lsn + 1,
                last_at: clock,
                ..Queue::default()
            }),
            checkpoint: Mutex::new(()),
            signal: Arc::default(),
            checkpointer: Mutex::new(None),
            requests: Mutex::default(),
            submitted: Arc::default(),
            committer: Mutex::new(None),
            has_committer: std::sync::atomic::AtomicBool::new(false),
            stopping: std::sync::atomic::AtomicBool::new(false),
            commit: Mutex::new(Committed {
                storage,
                log_file,
                generation,
                applied_lsn,
                checkpoint_lsn: manifest.map_or(0, |m| m.checkpoint_lsn),
                // What a replay at the next open would read: a process that restarts often
                // still checkpoints.
                log_bytes: recovery.log_bytes,
                unsynced: false,
                results: Vec::new(),
                notifications: Vec::new(),
                stats: LogStats::default(),
            }),
            done: Mutex::new(Done::default()),
            version: std::sync::atomic::AtomicU64::new(applied_lsn),
            applied: (Mutex::new(()), Condvar::new()),
            listeners: Mutex::new(Vec::new()),
            finished: Condvar::new(),
            failure: Mutex::new(options.read_only.then(|| {
                options.read_only_reason.clone().unwrap_or_else(|| {
                    "the database was opened read-only; open it without read_only to write"
                        .to_string()
                })
            })),
            options,
        });
        if let SyncPolicy::Interval(every) = core.options.sync {
            spawn_flusher(Arc::downgrade(&core), every);
        }
        if background {
            *lock(&core.checkpointer) = spawn_checkpointer(&core);
        }
        if !core.options.read_only {
            let committer = spawn_committer(&core);
            core.has_committer
                .store(committer.is_some(), std::sync::atomic::Ordering::Release);
            *lock(&core.committer) = committer;
        }
        core
    }

    /// Stops the background threads: the commit thread once every submitted change is
    /// answered, the checkpointer once a checkpoint it is writing is done.
    pub(super) fn stop_threads(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.submitted.set(false, true);
        self.has_committer
            .store(false, std::sync::atomic::Ordering::Release);
        if let Some(handle) = lock(&self.committer).take() {
            let _ = handle.join();
        }
        self.signal.set(false, true);
        if let Some(handle) = lock(&self.checkpointer).take() {
            let _ = handle.join();
        }
    }

    /// Takes the commit lock, waiting for the current leader.
    pub(super) fn committed(&self) -> Leader<'_> {
        Leader {
            core: self,
            committed: Some(lock(&self.commit)),
        }
    }

    fn try_lead(&self) -> Option<Leader<'_>> {
        let guard = match self.commit.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Leader {
            core: self,
            committed: Some(guard),
        })
    }

    fn check_writable(&self) -> Result<()> {
        match lock(&self.failure).as_ref() {
            Some(why) => Err(Error::ReadOnly(why.clone())),
            None => Ok(()),
        }
    }

    /// Stops writes for good after a failed write or fsync: what the log holds past the last
    /// successful fsync is unknown, so carrying on could acknowledge writes that are lost.
    fn fail(&self, what: String) -> Error {
        let why = format!(
            "{what}; writes are stopped and the database is read-only. Everything acknowledged \
             before is durable: fix the storage and reopen the database"
        );
        *lock(&self.failure) = Some(why.clone());
        Error::ReadOnly(why)
    }

    /// Why writes are stopped, if they are.
    pub(super) fn read_only_reason(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// Logs `change`, waits until it is durable under the sync policy and applied, and gives
    /// back what applying it gave.
    pub(super) fn write(&self, change: Change) -> Result<Outcome> {
        self.check_writable()?;
        change.precheck()?;
        let lsn = self.enqueue(change, None, None)?;
        loop {
            let epoch = {
                let mut done = lock(&self.done);
                if let Some(result) = done.results.remove(&lsn) {
                    return result;
                }
                done.epoch
            };
            if let Some(mut leader) = self.try_lead() {
                // This writer leads the next batch: every change queued so far, its own too.
                self.commit_queued(&mut leader);
                self.maybe_checkpoint(leader);
                continue;
            }
            // A leader is busy; its batch may hold this change. Sleep until it is done.
            let mut done = lock(&self.done);
            while done.epoch == epoch && !done.results.contains_key(&lsn) {
                done = self.finished.wait(done).unwrap_or_else(|p| p.into_inner());
            }
        }
    }

    /// Logs `change` like [`Core::write`] but returns at once: `notify` gets the answer on
    /// the commit thread (or on a writer leading the batch) once the change is durable and
    /// applied. Submitters never lead, so however many there are, the state is changed by
    /// one thread and their changes share the commit thread's fsyncs.
    pub(super) fn submit(&self, change: Change, notify: Notify) {
        if let Err(e) = self.check_writable().and_then(|()| change.precheck()) {
            return notify(Err(e));
        }
        if !self
            .has_committer
            .load(std::sync::atomic::Ordering::Acquire)
        {
            // No commit thread (it could not start, or it stopped): answer in this thread.
            return notify(self.write(change));
        }
        // Encoding cannot fail for a change that passed precheck; if it did, say so.
        let mut notify = Some(notify);
        if let Err(e) = self.enqueue(change, None, notify.take()) {
            if let Some(notify) = notify {
                notify(Err(e));
            }
            return;
        }
        self.submitted.set(true, false);
    }

    /// Frames `change` into the log buffer under the next LSN and the engine's clock, and
    /// queues it for a batch. The clock is the wall clock's time (never earlier than the
    /// last change's), or with a manual clock the instant it was last set to; a
    /// [`Change::Clock`] sets it, and is refused when it would move it back.
    fn enqueue(
        &self,
        change: Change,
        rows: Option<LoadRows>,
        notify: Option<Notify>,
    ) -> Result<u64> {
        let payload = serde_json::to_vec(&change)
            .map_err(|e| Error::Internal(format!("encoding a change: {e}")))?;
        let mut queue = lock(&self.queue);
        let at = match (&change, self.options.clock) {
            (Change::Clock { now }, Clock::Manual(_)) => {
                if *now < queue.last_at {
                    return Err(Error::InvalidSegment(format!(
                        "the clock is at {} and only moves forward; {} is before it",
                        crate::value::format_timestamp(queue.last_at),
                        crate::value::format_timestamp(*now)
                    )));
                }
                *now
            }
            (_, Clock::Manual(_)) => queue.last_at,
            (_, Clock::Wall) => queue.last_at.max(crate::Timestamp::now().micros()),
        };
        queue.last_at = at;
        let lsn = queue.next_lsn;
        queue.next_lsn += 1;
        record::encode(lsn, &change::with_clock(at, &payload), &mut queue.bytes);
        queue.pending.push(Pending {
            lsn,
            at,
            change,
            rows,
            notify,
        });
        Ok(lsn)
    }

    /// The clock the next change would get (see [`Core::enqueue`]).
    pub(super) fn clock(&self) -> i64 {
        let last = lock(&self.queue).last_at;
        match self.options.clock {
            Clock::Manual(_) => last,
            Clock::Wall => last.max(crate::Timestamp::now().micros()),
        }
    }

    /// Writes, syncs and applies every queued change (the caller holds `commit`).
    fn commit_queued(&self, committed: &mut Committed) {
        let (bytes, pending) = {
            let mut queue = lock(&self.queue);
            (
                std::mem::take(&mut queue.bytes),
                std::mem::take(&mut queue.pending),
            )
        };
        if pending.is_empty() {
            return;
        }
        if let Err(e) = self.append_to_log(committed, &bytes) {
            for p in pending {
                committed.answer(p.lsn, p.notify, Err(Error::ReadOnly(e.to_string())));
            }
            return;
        }
        self.apply_batch(committed, pending);
    }

    fn append_to_log(&self, committed: &mut Committed, bytes: &[u8]) -> Result<()> {
        let (Some(storage), Some(log)) = (&committed.storage, &committed.log_file) else {
            return Ok(());
        };
        if let Some(why) = self.read_only_reason() {
            return Err(Error::ReadOnly(why));
        }
        if let Err(e) = storage.append(log, bytes) {
            return Err(self.fail(format!("writing the log {log} failed: {e}")));
        }
        committed.log_bytes += bytes.len() as u64;
        committed.stats.batches += 1;
        if self.options.sync == SyncPolicy::Always {
            if let Err(e) = storage.sync(log) {
                return Err(self.fail(format!("fsync of the log {log} failed: {e}")));
            }
            committed.stats.fsyncs += 1;
        } else {
            committed.unsynced = true;
        }
        Ok(())
    }

    fn apply_batch(&self, committed: &mut Committed, pending: Vec<Pending>) {
        let storage = committed.storage.clone();
        let read_rows = |input: &LoggedInput| read_load_file(storage.as_deref(), input);
        let write = || self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut state = write();
        let entries_before = stream_entries(&state);
        for p in pending {
            committed.stats.records += 1;
            let (lsn, at) = (p.lsn, p.at);
            let result = match (&p.change, p.rows) {
                (
                    Change::LoadCommand {
                        inputs,
                        rules,
                        at: load_at,
                    },
                    Some(rows),
                ) => {
                    // Stage under the read lock (readers go on), apply under the write lock.
                    // The commit lock keeps every other writer out in between.
                    drop(state);
                    let staged = {
                        let snapshot = self.state.read().unwrap_or_else(|p| p.into_inner());
                        change::load_inputs(inputs, Some(rows), &read_rows)
                            .and_then(|inputs| command::stage(&snapshot, inputs, rules, *load_at))
                    };
                    state = write();
                    match staged {
                        Ok(staged) => apply::logged(&mut state, lsn, at, |state, touched| {
                            apply::apply_staged(state, staged, touched).map(Outcome::Ingest)
                        }),
                        // Refused: nothing changed but the clock.
                        Err(e) => {
                            apply::logged(&mut state, lsn, at, |_, _| Ok(Outcome::Done)).and(Err(e))
                        }
                    }
                }
                (change, rows) => apply::logged(&mut state, lsn, at, |state, touched| {
                    apply::apply(state, change, rows, &read_rows, touched)
                }),
            };
            if let Err(e @ Error::Internal(_)) = &result {
                // Groups are re-evaluated from their definitions; an error there is a bug.
                let why = format!("bringing groups up to date failed: {e}");
                committed.answer(p.lsn, p.notify, result);
                committed.applied_lsn = p.lsn;
                drop(state);
                self.fail(why);
                state = write();
                continue;
            }
            committed.answer(p.lsn, p.notify, result);
            committed.applied_lsn = p.lsn;
        }
        self.version
            .store(committed.applied_lsn, std::sync::atomic::Ordering::Release);
        let new_entries = stream_entries(&state) != entries_before;
        drop(state);
        if new_entries {
            self.changes_applied();
        }
    }

    /// Wakes whoever waits for stream entries.
    fn changes_applied(&self) {
        drop(lock(&self.applied.0));
        self.applied.1.notify_all();
        let listeners = lock(&self.listeners).clone();
        for listener in listeners {
            listener();
        }
    }

    /// Asks for a checkpoint once the log holds `checkpoint_log_bytes`: from the background
    /// checkpointer, or (without one) right here, after the batch's answers are out.
    fn maybe_checkpoint(&self, leader: Leader<'_>) {
        if leader.storage.is_none() || leader.log_bytes < self.options.checkpoint_log_bytes {
            return;
        }
        drop(leader);
        if lock(&self.checkpointer).is_some() {
            self.signal.set(true, false);
        } else {
            // A failed automatic checkpoint leaves the log as it is; the next write retries.
            let _ = self.checkpoint_if_idle();
        }
    }

    /// Runs a load command: each input's rows go to a load file, a small record to the log,
    /// then it is applied, all while holding `commit`, so no other write interleaves with it.
    pub(super) fn load(
        &self,
        inputs: Vec<ReadInput>,
        rules: LoadRules,
        at: i64,
    ) -> Result<Outcome> {
        self.check_writable()?;
        let mut committed = self.committed();
        self.commit_queued(&mut committed);
        self.check_writable()?;
        let mut logged = Vec::with_capacity(inputs.len());
        let mut rows = Vec::with_capacity(inputs.len());
        let mut written: Vec<String> = Vec::new();
        for mut input in inputs {
            // In memory the record is never read back: its format tells how the rows are
            // typed. On disk the input file itself is kept (compressed, as it is), else the
            // batches as Arrow IPC.
            if let Some(storage) = &committed.storage {
                let bytes = match input.original {
                    Some(bytes) => bytes,
                    None => load_file::encode(&input.batches)?.into(),
                };
                let record = &mut input.record;
                let file = load_file::unused_name(storage.as_ref(), record.format.extension());
                if let Err(e) = storage.write_atomic(&file, &bytes) {
                    // Nothing refers to the files yet; the database is unchanged.
                    for f in written.iter().chain([&file]) {
                        let _ = storage.remove(f);
                    }
                    return Err(Error::io(storage.location().join(&file), e));
                }
                // Replay reads the load file too: it counts toward the next checkpoint.
                committed.log_bytes += bytes.len() as u64;
                written.push(file.clone());
                record.crc = load_file::checksum(&bytes);
                record.file = file;
            }
            logged.push(input.record);
            rows.push(input.batches);
        }
        let change = Change::LoadCommand {
            inputs: logged,
            rules,
            at,
        };
        let lsn = self.enqueue(change, Some(rows), None)?;
        self.commit_queued(&mut committed);
        // The batch may hold writes that came in meanwhile; their writers get their answers
        // when this leadership ends.
        let position = committed.results.iter().position(|(l, _)| *l == lsn);
        let result = match position {
            Some(i) => committed.results.swap_remove(i).1,
            None => Err(Error::Internal("a load lost its result".to_string())),
        };
        self.maybe_checkpoint(committed);
        result
    }

    /// Writes a checkpoint now (everything queued is committed first), after one in progress,
    /// and waits for it. The checkpointer thread writes it where there is one, at its lower
    /// priority (see `util::priority`), so an explicit checkpoint takes no more CPU from
    /// writers and readers than an automatic one.
    pub(super) fn checkpoint(&self) -> Result<()> {
        if lock(&self.checkpointer).is_some() {
            let (reply, answer) = std::sync::mpsc::sync_channel(1);
            lock(&self.requests).push_back(reply);
            self.signal.set(true, false);
            loop {
                match answer.recv_timeout(Duration::from_millis(100)) {
                    Ok(result) => return result,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        let stopped = lock(&self.checkpointer)
                            .as_ref()
                            .is_none_or(JoinHandle::is_finished);
                        if stopped {
                            break;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            // The thread stopped without answering (it could not go on): write it here.
        }
        self.checkpoint_here()
    }

    /// Writes a checkpoint on the calling thread, after one in progress.
    fn checkpoint_here(&self) -> Result<()> {
        let _one_at_a_time = lock(&self.checkpoint);
        self.checkpoint_running()
    }

    /// What the checkpointer thread does when woken: the checkpoints asked for, in order,
    /// then an automatic one if the log has reached its size. (Only then: a wake-up whose
    /// request an earlier wake-up already served must not write a checkpoint nobody asked
    /// for; the durability tests caught one doing so after a failed checkpoint.)
    fn serve_checkpoints(&self) {
        while let Some(reply) = lock(&self.requests).pop_front() {
            // The caller may have given up waiting; the checkpoint stands either way.
            let _ = reply.send(self.checkpoint_here());
        }
        let log_full = {
            let committed = self.committed();
            committed.storage.is_some() && committed.log_bytes >= self.options.checkpoint_log_bytes
        };
        if log_full {
            // A failure leaves the log as it is; the next request retries.
            let _ = self.checkpoint_if_idle();
        }
        if let Some(release) = self.options.after_checkpoint {
            release();
        }
    }

    /// Writes a checkpoint unless one is in progress (which will do).
    fn checkpoint_if_idle(&self) -> Result<()> {
        let _one_at_a_time = match self.checkpoint.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
        };
        self.checkpoint_running()
    }

    /// The checkpoint itself; the caller holds `checkpoint`. Writers wait only for the
    /// moment the log is switched and the snapshot taken.
    fn checkpoint_running(&self) -> Result<()> {
        // Most of what the log holds unsynced (policies `interval`, `off`) is made durable
        // before writers are held off; the pause below syncs only what came since.
        let current = {
            let committed = self.committed();
            committed
                .unsynced
                .then(|| committed.storage.clone().zip(committed.log_file.clone()))
                .flatten()
        };
        if let Some((storage, log)) = current {
            // A failure shows again, and is handled, in the pause.
            let _ = storage.sync(&log);
        }
        let (storage, snapshot, lsn, generation, log_file, old_bytes, pause) = {
            let mut committed = self.committed();
            let paused = std::time::Instant::now();
            self.commit_queued(&mut committed);
            let Some(storage) = committed.storage.clone() else {
                return Err(Error::Conflict(
                    "this database is in memory only; use save_to(dir)".to_string(),
                ));
            };
            self.check_writable()?;
            // The chain must have no gap: what the old log holds is durable before anything
            // reaches the new one.
            if committed.unsynced
                && let Some(log) = &committed.log_file
            {
                if let Err(e) = storage.sync(log) {
                    return Err(self.fail(format!("fsync of the log {log} failed: {e}")));
                }
                committed.unsynced = false;
                committed.stats.fsyncs += 1;
            }
            let generation = committed.generation + 1;
            let lsn = committed.applied_lsn;
            // Nothing refers to the new log yet if this fails: the old one goes on.
            let log_file = storage::start_log(storage.as_ref(), generation, lsn + 1)?;
            let fsyncs = paused.elapsed();
            committed.log_file = Some(log_file.clone());
            committed.generation = generation;
            let old_bytes = std::mem::take(&mut committed.log_bytes);
            let snapshot = self.state.read().unwrap_or_else(|p| p.into_inner()).clone();
            let pause = (paused.elapsed(), fsyncs);
            (
                storage, snapshot, lsn, generation, log_file, old_bytes, pause,
            )
        };
        let written =
            storage::write_generation(&snapshot, storage.as_ref(), generation, lsn, log_file);
        // The snapshot's chunks go now, not after the switch: writers stop copying them.
        drop(snapshot);
        // Both manifests, the old and the new, lead to the log in use: a failure here leaves
        // a database that opens with everything (the old generation, then the chain of logs).
        let switched =
            written.and_then(|m| storage::switch_manifest(storage.as_ref(), &m).map(|()| m));
        let mut committed = self.committed();
        let manifest = match switched {
            Ok(manifest) => manifest,
            Err(e) => {
                committed.log_bytes += old_bytes;
                return Err(e);
            }
        };
        committed.checkpoint_lsn = manifest.checkpoint_lsn;
        committed.stats.checkpoints += 1;
        committed.stats.last_checkpoint_pause_us = pause.0.as_micros() as u64;
        committed.stats.last_checkpoint_fsync_us = pause.1.as_micros() as u64;
        committed.stats.last_checkpoint_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        drop(committed);
        // Best effort: what is left goes at the next checkpoint.
        let _ = storage::remove_superseded(storage.as_ref(), &manifest);
        Ok(())
    }

    /// A checkpoint, then every file it supersedes removed, durably (member erasure: the
    /// older data files, logs and load files hold what the new generation no longer has).
    /// Unlike the best-effort clean-up after an ordinary checkpoint, a failure to remove
    /// one is an error.
    pub(super) fn checkpoint_and_remove_superseded(&self) -> Result<()> {
        let _one_at_a_time = lock(&self.checkpoint);
        self.checkpoint_running()?;
        let Some(storage) = self.committed().storage.clone() else {
            return Ok(());
        };
        let manifest = storage::read_manifest(storage.as_ref())?
            .ok_or_else(|| Error::Internal("no manifest after a checkpoint".into()))?;
        storage::remove_superseded(storage.as_ref(), &manifest)?;
        storage
            .sync_directory()
            .map_err(|e| Error::io(storage.location(), e))?;
        Ok(())
    }

    /// Makes appended log records durable (policies `interval` and `off`).
    pub(super) fn sync_log(&self) -> Result<()> {
        let mut committed = self.committed();
        if !committed.unsynced {
            return Ok(());
        }
        if let (Some(storage), Some(log)) = (&committed.storage, &committed.log_file)
            && let Err(e) = storage.sync(log)
        {
            return Err(self.fail(format!("fsync of the log {log} failed: {e}")));
        }
        committed.unsynced = false;
        committed.stats.fsyncs += 1;
        Ok(())
    }

    /// Makes `storage` the database's home: a checkpoint of the current state there.
    pub(super) fn move_to(&self, storage: Arc<dyn Storage>) -> Result<()> {
        storage.lock().map_err(Error::InUse)?;
        let _one_at_a_time = lock(&self.checkpoint);
        let mut committed = self.committed();
        self.commit_queued(&mut committed);
        self.check_writable()?;
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let manifest = match storage::save(&state, storage.as_ref(), committed.applied_lsn) {
            Ok(manifest) => manifest,
            Err(SaveError::Before(e) | SaveError::Switching(e)) => return Err(e),
        };
        drop(state);
        committed.storage = Some(storage);
        committed.log_file = manifest.log_file.clone();
        committed.generation = manifest.generation;
        committed.checkpoint_lsn = manifest.checkpoint_lsn;
        committed.log_bytes = 0;
        committed.unsynced = false;
        committed.stats.checkpoints += 1;
        Ok(())
    }
}

/// One input of a load command, read by its writer.
pub(crate) struct ReadInput {
    /// Its log record, but for the load file's name and checksum, filled in when it is
    /// written. `format` is the format it was read from (Arrow IPC for batches): text
    /// formats are typed with the load.
    pub(crate) record: LoggedInput,
    pub(crate) batches: Vec<RecordBatch>,
    /// The file's own bytes, as they are on disk (compressed when `record.gzip`).
    pub(crate) original: Option<bytes::Bytes>,
}

/// Reads the rows of a load file, checking its checksum.
fn read_load_file(storage: Option<&dyn Storage>, input: &LoggedInput) -> Result<Vec<RecordBatch>> {
    let (file, crc, format) = (input.file.as_str(), input.crc, input.format);
    let storage = storage.ok_or_else(|| Error::Internal("a load file without storage".into()))?;
    let bytes = storage
        .map(file)
        .map_err(|e| Error::io(storage.location().join(file), e))?;
    let bad = |message: String| Error::BadDatabase {
        path: storage.location().join(file),
        message,
    };
    if load_file::checksum(&bytes) != crc {
        return Err(bad(
            "checksum mismatch: the rows of a logged bulk load are damaged".to_string(),
        ));
    }
    let source = storage.location().join(file).display().to_string();
    let bytes = decompressed(bytes, input.gzip, &source)?;
    let file_format = match format {
        LoadFormat::ArrowIpc => return load_file::decode(&bytes).map_err(bad),
        LoadFormat::Parquet => FileFormat::Parquet,
        LoadFormat::Csv => FileFormat::Csv,
        LoadFormat::JsonLines => FileFormat::JsonLines,
    };
    read_batches_from(bytes, file_format, &source, &mut |_| {})
}

/// A thread named `name` that runs `work` on the core each time `signal` is set, until
/// [`Core::stop_threads`] (a request made before the stop is still served). `None`, with a
/// message, when the thread cannot start; the callers then do the work themselves.
fn spawn_worker(
    core: &Arc<Core>,
    signal: &Arc<CheckpointSignal>,
    name: &str,
    work: fn(&Core),
) -> Option<JoinHandle<()>> {
    let weak = Arc::downgrade(core);
    let signal = signal.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            while signal.wait() {
                let Some(core) = weak.upgrade() else { return };
                work(&core);
            }
        });
    spawned
        .map_err(|e| eprintln!("memberdb: cannot start the thread {name}: {e}"))
        .ok()
}

/// The commit thread: leads a batch each time changes are submitted.
fn spawn_committer(core: &Arc<Core>) -> Option<JoinHandle<()>> {
    spawn_worker(core, &core.submitted, "memberdb-commit", |core| {
        let mut leader = core.committed();
        core.commit_queued(&mut leader);
        core.maybe_checkpoint(leader);
    })
}

/// The background checkpointer: writes a checkpoint each time the write path asks for one.
fn spawn_checkpointer(core: &Arc<Core>) -> Option<JoinHandle<()>> {
    spawn_worker(core, &core.signal, "memberdb-checkpoint", |core| {
        crate::util::priority::lower_current_thread();
        core.serve_checkpoints();
    })
}

impl Core {
    /// Starts the wall clock's thread (a database that takes writes): at least every
    /// second it looks whether the wall clock has passed a group's next time-driven
    /// change, and if so logs a clock move to now, which applies them.
    pub(super) fn start_ticker(self: &Arc<Self>) {
        if self.options.read_only {
            return;
        }
        let core = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("memberdb-clock".to_string())
            .spawn(move || {
                loop {
                    let Some(core) = core.upgrade() else { return };
                    if core.stopping.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    let now = crate::Timestamp::now().micros();
                    let next = {
                        let state = core.state.read().unwrap_or_else(|p| p.into_inner());
                        state.next_time_change()
                    };
                    if next <= now {
                        // A failure stops writes and says so to the writers; the clock
                        // thread stops with them.
                        if core.write(Change::Clock { now }).is_err() {
                            return;
                        }
                        continue;
                    }
                    // Wake at the next change, and at least every second.
                    let wait = (next - now).clamp(1_000, 1_000_000) as u64;
                    drop(core);
                    std::thread::sleep(Duration::from_micros(wait));
                }
            });
        if let Err(e) = spawned {
            eprintln!(
                "memberdb: cannot start the clock thread: {e}; groups that move with time move only with writes"
            );
        }
    }
}

/// Syncs the log every `every` while the database lives (policy `interval`).
fn spawn_flusher(core: Weak<Core>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("memberdb-log-flush".to_string())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(core) = core.upgrade() else { return };
                if core.sync_log().is_err() {
                    return;
                }
            }
        });
    // Without the thread the policy degrades to `off` until the next checkpoint; say so.
    if let Err(e) = spawned {
        eprintln!("memberdb: cannot start the log flusher thread: {e}");
    }
}

/// Replays the log of `manifest` onto `state`, then the logs that follow it (a checkpoint
/// that started the next generation's log but did not switch the manifest). Returns the last
/// LSN applied, the logs read and what was found at the end of the last one.
pub(super) fn replay(
    storage: &dyn Storage,
    manifest: &Manifest,
    state: &mut State,
    repair: bool,
) -> Result<Recovery> {
    let mut recovery = Recovery {
        applied_lsn: manifest.checkpoint_lsn,
        ..Recovery::default()
    };
    let Some(first) = &manifest.log_file else {
        return Ok(recovery);
    };
    let mut log = first.clone();
    loop {
        let torn = replay_log(storage, &log, state, &mut recovery)?;
        recovery.logs.push(log.clone());
        let next = storage::log_generation(&log)
            .map(|g| storage::log_file_name(g + 1))
            .filter(|next| storage.exists(next));
        match (next, torn) {
            (Some(next), None) => log = next,
            (Some(next), Some(torn)) => {
                return Err(Error::BadDatabase {
                    path: storage.location().join(&log),
                    message: format!(
                        "the log is damaged at byte offset {} ({}) and {next} follows it; \
                         nothing was changed. Restore the directory from a backup",
                        torn.offset, torn.reason
                    ),
                });
            }
            (None, torn) => {
                if let Some(torn) = &torn
                    && repair
                {
                    let path = storage.location().join(&log);
                    if torn.offset == 0 {
                        storage
                            .write_atomic(&log, &record::file_header(recovery.applied_lsn + 1))
                            .map_err(|e| Error::io(&path, e))?;
                    } else {
                        storage
                            .truncate(&log, torn.offset)
                            .map_err(|e| Error::io(&path, e))?;
                    }
                }
                recovery.torn_tail = torn;
                break;
            }
        }
    }
    recovery.log_file = Some(log);
    Ok(recovery)
}

/// Replays one log onto `state`, which holds every change up to `recovery.applied_lsn`;
/// returns its torn tail, if it has one.
fn replay_log(
    storage: &dyn Storage,
    log: &str,
    state: &mut State,
    recovery: &mut Recovery,
) -> Result<Option<record::TornTail>> {
    let path = storage.location().join(log);
    let bytes = storage.read(log).map_err(|e| Error::io(&path, e))?;
    let load_bytes = std::cell::Cell::new(0u64);
    let scan = record::scan(&bytes).map_err(|c| Error::BadDatabase {
        path: path.clone(),
        message: format!(
            "the log is damaged at byte offset {}: {}; nothing was changed. Restore the \
             directory from a backup",
            c.offset, c.reason
        ),
    })?;
    if scan.torn.as_ref().is_none_or(|t| t.offset > 0) && scan.first_lsn != recovery.applied_lsn + 1
    {
        return Err(Error::BadDatabase {
            path,
            message: format!(
                "the log starts at record {} but what comes before it ends at record {}",
                scan.first_lsn, recovery.applied_lsn
            ),
        });
    }
    let read_rows = |input: &LoggedInput| {
        let rows = read_load_file(Some(storage), input);
        if let Ok(bytes) = storage.map(&input.file) {
            load_bytes.set(load_bytes.get() + bytes.len() as u64);
        }
        rows
    };
    for r in &scan.records {
        let (at, change) = change::read_change(r.payload).map_err(|e| Error::BadDatabase {
            path: path.clone(),
            message: format!(
                "record {} at byte offset {} is not a change this version knows: {e}",
                r.lsn, r.offset
            ),
        })?;
        // Records from before the clock was logged change at the clock.
        let at = at.unwrap_or(state.clock);
        // A change refused when it was written is refused again: the same state gives the
        // same answer. Damage to a load file is not such a refusal.
        let applied = apply::logged(state, r.lsn, at, |state, touched| {
            apply::apply(state, &change, None, &read_rows, touched)
        });
        match applied {
            Err(e @ Error::Internal(_)) => return Err(e),
            Err(e @ (Error::BadDatabase { .. } | Error::Io { .. })) => return Err(e),
            Ok(_) if matches!(change, Change::EraseMember { .. }) => {
                recovery.replayed += 1;
                recovery.erasures += 1;
            }
            _ => recovery.replayed += 1,
        }
        recovery.applied_lsn = r.lsn;
    }
    let good_bytes = scan.torn.as_ref().map_or(bytes.len() as u64, |t| t.offset);
    recovery.log_bytes += good_bytes + load_bytes.get();
    Ok(scan.torn)
}

/// How many entries the streams have ever had, to tell whether a batch added some.
fn stream_entries(state: &State) -> Vec<crate::groups::stream::EntryId> {
    state
        .groups
        .groups
        .iter()
        .map(|g| g.stream.last_id)
        .collect()
}
