//! What INFO reports: uptime, clients, commands and errors per command, query latency.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Counters shared by every connection.
pub(crate) struct Stats {
    started: Instant,
    pub(crate) clients: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) refused_connections: AtomicU64,
    commands: Mutex<BTreeMap<String, (u64, u64)>>,
    /// QUERY latency in microseconds, from request parsed to reply written to the buffer.
    query_micros: Mutex<Histogram<u64>>,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            started: Instant::now(),
            clients: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            commands: Mutex::new(BTreeMap::new()),
            query_micros: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            ),
        }
    }

    /// Counts one command (by its upper-case name; unknown ones as `unknown`).
    pub(crate) fn record(&self, command: &str, error: bool, elapsed: Duration) {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let entry = commands.entry(command.to_string()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(error);
        drop(commands);
        if command == "QUERY" {
            let micros = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let mut h = self.query_micros.lock().unwrap_or_else(|p| p.into_inner());
            let high = h.high();
            let _ = h.record(micros.min(high));
        }
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// `(command, calls, errors)` in name order.
    pub(crate) fn commands(&self) -> Vec<(String, u64, u64)> {
        let commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        commands
            .iter()
            .map(|(k, (c, e))| (k.clone(), *c, *e))
            .collect()
    }

    /// QUERY latency percentiles in microseconds: p50, p90, p99, p99.9, and the count.
    pub(crate) fn query_latency(&self) -> ([u64; 4], u64) {
        let h = self.query_micros.lock().unwrap_or_else(|p| p.into_inner());
        (
            [
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.9),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
            ],
            h.len(),
        )
    }

    pub(crate) fn current_clients(&self) -> u64 {
        self.clients.load(Ordering::SeqCst)
    }
}
