//! A small mutational fuzzer that runs on stable Rust, for the fuzz targets of the test
//! suites (feature `fuzzing`; not part of the engine's API).
//!
//! Each target starts from a corpus of real inputs (frames, statements, log files,
//! manifests), mutates them (bit flips, interesting bytes and numbers, deleted, duplicated
//! and inserted runs, splices of two inputs, tokens from a dictionary) and runs the target on
//! each mutant for a time budget. A target fails by panicking; the fuzzer then reports the
//! input (hex) and the seed, and the run fails. A stack overflow aborts the process instead:
//! the seed and the iteration printed at the start reproduce it
//! (`MEMBERDB_FUZZ_SEED=<seed>`).
//!
//! Budgets: `MEMBERDB_FUZZ_SECONDS` (default 10 per target, what `cargo test` runs; CI sets
//! 60), `MEMBERDB_FUZZ_SEED` (default: from the clock, printed).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Numbers that break parsers: boundaries of the integer types and of lengths.
const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"1",
    b"-0",
    b"65535",
    b"65536",
    b"2147483647",
    b"2147483648",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"18446744073709551615",
    b"99999999999999999999",
    b"1e308",
    b"NaN",
    b"\x00",
    b"\xff",
    b"\r\n",
    b"\n",
    b"'",
    b"\"",
    b"(",
    b")",
    b"\\",
];

/// Runs fuzz targets.
#[derive(Debug)]
pub struct Fuzzer {
    name: String,
    corpus: Vec<Vec<u8>>,
    dictionary: Vec<Vec<u8>>,
    budget: Duration,
    seed: u64,
    max_len: usize,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Inputs run.
    pub runs: u64,
    /// The seed (to reproduce the run).
    pub seed: u64,
}

impl Fuzzer {
    /// A fuzzer named `name` (for messages) over `corpus` (at least one input).
    pub fn new(name: &str, corpus: Vec<Vec<u8>>) -> Self {
        let seconds = std::env::var("MEMBERDB_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(10.0);
        let seed = std::env::var("MEMBERDB_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        let max_len = corpus.iter().map(Vec::len).max().unwrap_or(0) * 2 + 64;
        Fuzzer {
            name: name.to_string(),
            corpus,
            dictionary: Vec::new(),
            budget: Duration::from_secs_f64(seconds.max(0.0)),
            seed,
            max_len,
        }
    }

    /// Tokens the mutations insert (keywords of the language, command names, ...).
    pub fn dictionary<I, T>(mut self, tokens: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.dictionary = tokens.into_iter().map(|t| t.as_ref().to_vec()).collect();
        self
    }

    /// The longest mutant (default: twice the longest corpus input, plus 64).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// A fixed budget instead of `MEMBERDB_FUZZ_SECONDS`.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Runs `target` on every corpus input, then on mutants until the budget is spent.
    /// Panics (with the input) if the target panics.
    pub fn run(&self, mut target: impl FnMut(&[u8])) -> Report {
        assert!(!self.corpus.is_empty(), "a fuzz target needs a corpus");
        eprintln!(
            "fuzz {}: seed {} (MEMBERDB_FUZZ_SEED), {:.0?}",
            self.name, self.seed, self.budget
        );
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut runs = 0u64;
        let mut one = |input: &[u8], runs: &mut u64| {
            *runs += 1;
            if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
                panic!(
                    "fuzz {}: the target panicked on input #{} (seed {}), {} bytes: {}\n\
                     as text: {:?}",
                    self.name,
                    runs,
                    self.seed,
                    input.len(),
                    hex(input),
                    String::from_utf8_lossy(input)
                );
            }
        };
        for input in &self.corpus {
            one(input, &mut runs);
        }
        let started = Instant::now();
        while started.elapsed() < self.budget {
            let mut input = self.corpus[rng.random_range(0..self.corpus.len())].clone();
            for _ in 0..rng.random_range(1..=8u32) {
                self.mutate(&mut input, &mut rng);
            }
            input.truncate(self.max_len);
            one(&input, &mut runs);
        }
        eprintln!("fuzz {}: {runs} inputs, no failure", self.name);
        Report {
            runs,
            seed: self.seed,
        }
    }

    fn mutate(&self, input: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
        let len = input.len();
        let pos = |rng: &mut ChaCha8Rng| rng.random_range(0..=len);
        match rng.random_range(0..9u32) {
            // flip a bit
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] ^= 1 << rng.random_range(0..8u32);
            }
            // a random byte
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] = rng.random();
            }
            // delete a run
            2 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=16usize)).min(len);
                input.drain(start..end);
            }
            // duplicate a run, possibly many times (repetition is what breaks limits)
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=32usize)).min(len);
                let run = input[start..end].to_vec();
                let times = if rng.random_bool(0.1) {
                    rng.random_range(1..=2000usize)
                } else {
                    rng.random_range(1..=4usize)
                };
                let at = pos(rng);
                let copies: Vec<u8> = run
                    .iter()
                    .copied()
                    .cycle()
                    .take(run.len() * times)
                    .collect();
                input.splice(at..at, copies);
            }
            // an interesting number or byte
            4 => {
                let token = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let at = pos(rng);
                input.splice(at..at, token.iter().copied());
            }
            // a token of the dictionary
            5 if !self.dictionary.is_empty() => {
                let token = &self.dictionary[rng.random_range(0..self.dictionary.len())];
                let at = pos(rng);
                input.splice(at..at, token.iter().copied());
            }
            // splice in a piece of another input
            6 => {
                let other = &self.corpus[rng.random_range(0..self.corpus.len())];
                if !other.is_empty() {
                    let start = rng.random_range(0..other.len());
                    let end = (start + rng.random_range(1..=64usize)).min(other.len());
                    let at = pos(rng);
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
            // cut the end off
            7 if len > 0 => input.truncate(rng.random_range(0..len)),
            // random bytes
            _ => {
                let at = pos(rng);
                let n = rng.random_range(1..=8usize);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                input.splice(at..at, bytes);
            }
        }
    }
}

use crate::util::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_run_and_a_panic_names_its_input() {
        let fuzzer = Fuzzer::new("demo", vec![b"hello".to_vec()]).budget(Duration::from_millis(50));
        let report = fuzzer.run(|_| {});
        assert!(report.runs > 10);
        let found = catch_unwind(|| {
            Fuzzer::new("demo", vec![b"abc".to_vec()])
                .budget(Duration::from_secs(5))
                .run(|input| assert!(!input.contains(&0xff), "no 0xff"))
        });
        let message = found.unwrap_err();
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("ff"), "{message}");
    }
}
