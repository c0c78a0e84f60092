//! The text INFO returns: `# Section` headers and `key:value` lines, as Redis writes them.

use std::fmt::Write;

use super::Shared;

/// INFO, all sections or the one named (case-insensitive).
/// INFO's text; `scoped`: for a user who sees only some members, without the whole
/// database's figures (its `# Data` section).
pub(crate) fn render(shared: &Shared, section: Option<&str>, scoped: bool) -> String {
    let wanted = section.map(str::to_lowercase);
    let show = |name: &str| wanted.as_deref().is_none_or(|w| w == "all" || w == name);
    let mut out = String::new();
    let stats = &shared.stats;
    if show("server") {
        let _ = write!(
            out,
            "# Server\r\nmemberdb_version:{}\r\nredis_version:7.0.0\r\nuptime_in_seconds:{}\r\n\
             tcp_listen:{}\r\nsync_policy:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            stats.uptime().as_secs(),
            shared.addr,
            shared.config.sync,
        );
    }
    if show("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\ntotal_connections_received:{}\r\n\
             rejected_connections:{}\r\n\r\n",
            stats.current_clients(),
            shared.config.limits.clients,
            stats.connections.load(std::sync::atomic::Ordering::SeqCst),
            stats
                .refused_connections
                .load(std::sync::atomic::Ordering::SeqCst),
        );
    }
    if show("stats") {
        out.push_str("# Stats\r\n");
        let ([p50, p90, p99, p999], n) = stats.query_latency();
        let _ = write!(
            out,
            "answer_cache_hits:{}\r\nanswer_cache_misses:{}\r\nanswer_cache_bytes:{}\r\n",
            shared.cache.hits.load(std::sync::atomic::Ordering::Relaxed),
            shared
                .cache
                .misses
                .load(std::sync::atomic::Ordering::Relaxed),
            shared.cache.bytes(),
        );
        let _ = write!(
            out,
            "query_count:{n}\r\nquery_latency_p50_us:{p50}\r\nquery_latency_p90_us:{p90}\r\n\
             query_latency_p99_us:{p99}\r\nquery_latency_p999_us:{p999}\r\n\r\n"
        );
        out.push_str("# Commandstats\r\n");
        for (name, calls, errors) in stats.commands() {
            let _ = write!(
                out,
                "cmdstat_{}:calls={calls},errors={errors}\r\n",
                name.to_lowercase()
            );
        }
        out.push_str("\r\n");
    }
    if show("data") && !scoped {
        let db = &shared.db;
        let _ = write!(
            out,
            "# Data\r\nmembers:{}\r\nevents:{}\r\ntags:{}\r\ngroups:{}\r\nused_memory:{}\r\nmapped_memory:{}\r\n\r\n",
            db.member_count(),
            db.event_count(),
            db.tags().len(),
            db.groups().len(),
            db.memory_usage(),
            db.memory_breakdown().mapped,
        );
    }
    if show("persistence") {
        let log = shared.db.log_stats();
        let _ = write!(
            out,
            "# Persistence\r\nlog_records:{}\r\nlog_batches:{}\r\nlog_fsyncs:{}\r\ncheckpoints:{}\r\n\
             last_checkpoint_unix_ms:{}\r\nlast_checkpoint_pause_us:{}\r\n\
             last_checkpoint_fsync_us:{}\r\nread_only:{}\r\n",
            log.records,
            log.batches,
            log.fsyncs,
            log.checkpoints,
            log.last_checkpoint_unix_ms,
            log.last_checkpoint_pause_us,
            log.last_checkpoint_fsync_us,
            shared
                .db
                .read_only_reason()
                .unwrap_or_else(|| "no".to_string()),
        );
    }
    out
}
