//! Users, roles and passwords: argon2 hashes in the configuration, checked in constant time;
//! the gate in front of the check that bounds its cost and slows down guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::config::User;

/// The argon2id hash of `password`, as a PHC string for the configuration file.
pub(crate) fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` is `user`'s. The comparison of hashes is constant time
/// (argon2's verifier); an unknown user costs the same hash computation as a known one, so
/// the answer's timing does not tell whether a user exists.
pub(crate) fn authenticate(users: &[User], user: &str, password: &str) -> bool {
    // A hash to verify against when the user is unknown, made once.
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let found = users.iter().find(|u| u.name == user);
    let hash = match found {
        Some(u) => u.password_hash.as_str(),
        None => DECOY.get_or_init(|| hash_password("memberdb decoy").unwrap_or_default()),
    };
    let ok = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    found.is_some() && ok
}

/// Failures from one address closer together than this are one burst.
const BURST_GAP: Duration = Duration::from_secs(60);
/// The delay before a verification doubles with each failure of the burst, up to this.
const MAX_DELAY: Duration = Duration::from_secs(2);
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// Addresses remembered at most; the oldest bursts are reported and forgotten beyond it.
const MAX_ADDRESSES: usize = 10_000;

/// Failed AUTH attempts from one address.
#[derive(Debug)]
struct Burst {
    count: u32,
    first: Instant,
    last: Instant,
    user: String,
}

/// In front of every password check: at most `concurrency` argon2 verifications at once
/// (each takes 19 MiB and tens of milliseconds, so 200 clients looping AUTH once took 1.6 GB),
/// a delay for an address that keeps failing (doubling per failure, up to 2 s), and one log
/// line per burst of failures instead of one per try.
pub(crate) struct AuthGate {
    free: Mutex<usize>,
    freed: Condvar,
    bursts: Mutex<HashMap<IpAddr, Burst>>,
    /// Told of every burst of failures once it ends (the audit log's record of it).
    on_burst: std::sync::OnceLock<BurstHook>,
}

/// What is told of each ended burst.
type BurstHook = Box<dyn Fn(&EndedBurst) + Send + Sync>;

/// A burst of failed AUTH from one address, once it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EndedBurst {
    pub(crate) client: IpAddr,
    /// The user of the first failure.
    pub(crate) user: String,
    pub(crate) count: u32,
    /// When the first and the last failure were.
    pub(crate) first: std::time::SystemTime,
    pub(crate) last: std::time::SystemTime,
}

impl AuthGate {
    pub(crate) fn new(concurrency: usize) -> Self {
        AuthGate {
            free: Mutex::new(concurrency.max(1)),
            freed: Condvar::new(),
            bursts: Mutex::new(HashMap::new()),
            on_burst: std::sync::OnceLock::new(),
        }
    }

    /// Calls `f` for every burst of failures once it ends.
    pub(crate) fn on_burst(&self, f: BurstHook) {
        let _ = self.on_burst.set(f);
    }

    /// Whether `password` is `user`'s, checked after the delay `client` has
    /// earned and within the concurrency limit.
    pub(crate) fn verify(
        &self,
        users: &[User],
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> bool {
        std::thread::sleep(self.delay(client));
        let ok = {
            let _permit = self.permit();
            authenticate(users, user, password)
        };
        if ok {
            self.succeeded(client);
        } else {
            self.failed(client, user);
        }
        ok
    }

    /// Failures of the current burst from `client` so far.
    pub(crate) fn failures(&self, client: IpAddr) -> u32 {
        self.lock_bursts()
            .get(&client)
            .filter(|b| b.last.elapsed() < BURST_GAP)
            .map_or(0, |b| b.count)
    }

    fn delay(&self, client: IpAddr) -> Duration {
        match self.failures(client) {
            0 => Duration::ZERO,
            n => FIRST_DELAY
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_DELAY),
        }
    }

    fn permit(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit(self)
    }

    fn lock_bursts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Burst>> {
        self.bursts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self, client: IpAddr, user: &str) {
        let mut bursts = self.lock_bursts();
        let now = Instant::now();
        if let Some(old) = bursts.get(&client)
            && now - old.last >= BURST_GAP
        {
            self.report(client, old);
            bursts.remove(&client);
        }
        let burst = bursts.entry(client).or_insert_with(|| Burst {
            count: 0,
            first: now,
            last: now,
            user: user.to_string(),
        });
        burst.count += 1;
        burst.last = now;
        if burst.count == 1 {
            tracing::warn!(
                %client,
                user,
                "failed AUTH; further failures from this address are counted and reported \
                 once they stop"
            );
        }
        if bursts.len() > MAX_ADDRESSES {
            self.report_ended(&mut bursts, Duration::ZERO);
        }
    }

    fn succeeded(&self, client: IpAddr) {
        if let Some(burst) = self.lock_bursts().remove(&client) {
            self.report(client, &burst);
        }
    }

    /// Reports and forgets the bursts that have ended (no failure for a minute); called as
    /// connections close, and with `Duration::ZERO` at shutdown to report every burst.
    pub(crate) fn sweep(&self, gap: Option<Duration>) {
        self.report_ended(&mut self.lock_bursts(), gap.unwrap_or(BURST_GAP));
    }

    fn report_ended(&self, bursts: &mut HashMap<IpAddr, Burst>, gap: Duration) {
        bursts.retain(|client, burst| {
            let ended = burst.last.elapsed() >= gap;
            if ended {
                self.report(*client, burst);
            }
            !ended
        });
    }

    /// One log line for a burst of failures (the first was logged when it happened), and
    /// the burst to the hook.
    fn report(&self, client: IpAddr, burst: &Burst) {
        if let Some(hook) = self.on_burst.get() {
            let wall = |at: Instant| std::time::SystemTime::now() - at.elapsed();
            hook(&EndedBurst {
                client,
                user: burst.user.clone(),
                count: burst.count,
                first: wall(burst.first),
                last: wall(burst.last),
            });
        }
        log_burst(client, burst);
    }
}

/// One log line for a burst of failures (the first was logged when it happened).
fn log_burst(client: IpAddr, burst: &Burst) {
    if burst.count > 1 {
        tracing::warn!(
            %client,
            user = burst.user,
            failures = burst.count,
            seconds = (burst.last - burst.first).as_secs(),
            "a burst of failed AUTH ended"
        );
    }
}

struct Permit<'a>(&'a AuthGate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_authenticates_and_nothing_else_does() {
        let users = vec![User {
            name: "ops".into(),
            password_hash: hash_password("s3cret").unwrap(),
            roles: vec!["write".to_string()],
            role: None,
        }];
        assert!(users[0].password_hash.starts_with("$argon2id$"));
        assert!(authenticate(&users, "ops", "s3cret"));
        assert!(!authenticate(&users, "ops", "s3cret "));
        assert!(!authenticate(&users, "nobody", "s3cret"));
    }

    /// Issue 11, finding 6: AUTH had no rate limit (45 wrong passwords a second on one
    /// connection) and finding 3: verifications ran without bound (19 MiB each).
    #[test]
    fn failures_slow_an_address_down_and_verifications_are_bounded() {
        let users = vec![User {
            name: "ops".into(),
            password_hash: hash_password("s3cret").unwrap(),
            roles: vec!["write".to_string()],
            role: None,
        }];
        let gate = std::sync::Arc::new(AuthGate::new(1));
        let attacker: IpAddr = "127.0.0.9".parse().unwrap();
        let started = Instant::now();
        for _ in 0..4 {
            assert!(!gate.verify(&users, "ops", "guess", attacker));
        }
        assert_eq!(gate.failures(attacker), 4);
        // delays of 0, 50, 100 and 200 ms before the tries
        assert!(started.elapsed() >= Duration::from_millis(350));
        // another address is not slowed down, and a success ends the burst
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        assert_eq!(gate.delay(other), Duration::ZERO);
        assert!(gate.verify(&users, "ops", "s3cret", attacker));
        assert_eq!(gate.failures(attacker), 0);
        // one permit: verifications from many threads run one at a time
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (gate, running) = (gate.clone(), running.clone());
                std::thread::spawn(move || {
                    let _permit = gate.permit();
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20 + i));
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    now
                })
            })
            .collect();
        for t in threads {
            assert_eq!(
                t.join().unwrap(),
                0,
                "no other verification ran at the same time"
            );
        }
    }
}
