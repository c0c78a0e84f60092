//! Execution of a plan over a universe of members. The computed leaves are computed first;
//! then every bitmap of the plan is walked together, one chunk of 65,536 members at a time,
//! so intermediate results never outgrow a chunk (8 KiB, in L1) and a count never builds a
//! result bitmap. Per chunk and per operator a kernel is chosen from the kinds of chunks it
//! meets: an empty or full operand decides without reading the others; an array (at most
//! 4,096 members) is probed against the others; bitsets are combined word by word, fused
//! with the popcount when only the count is wanted.

use std::time::Instant;

use roaring::RoaringBitmap;

use super::{Node, Op, Plan, Source};
use crate::bitmap::kernels::{and_count, and_into, or_into, set_bits};
use crate::bitmap::{CHUNK_BITS, Chunk, ChunkRef, Chunks, WORDS, Words};
use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::state::State;

/// [`Error::DeadlineExceeded`] once `deadline` (if any) has passed.
pub(crate) fn check_deadline(deadline: Option<Instant>) -> Result<()> {
    match deadline {
        Some(d) if Instant::now() >= d => Err(Error::DeadlineExceeded),
        _ => Ok(()),
    }
}

/// The members a plan runs over: its `ALL`, what `NOT` complements within, and a bound on
/// every answer.
#[derive(Clone, Copy)]
pub(crate) struct Universe<'a> {
    chunks: &'a Chunks,
    /// Every live member: then every leaf lies inside it (the state's invariant) and the
    /// answer needs no final intersection with it.
    everyone: bool,
    /// Threads a count or a members walk may split its chunks across.
    threads: usize,
    /// A walk splits when what is left would take longer than this ([`SPLIT_WORTH`]).
    split_worth: std::time::Duration,
}

/// Below this many chunks (4M member rows) a walk stays on one thread.
const PARALLEL_MIN_CHUNKS: usize = 64;

/// A walk splits across threads only when what is left would take longer than this on one:
/// starting a thread costs tens of microseconds (about 90 on the 2-core machine of the
/// benchmarks), so a 200 µs count is faster alone.
const SPLIT_WORTH: std::time::Duration = std::time::Duration::from_micros(1000);

/// The machine's cores (at most 8), the default number of threads of a walk.
pub(crate) fn default_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(8)
    })
}

impl<'a> Universe<'a> {
    /// Every live member of `state`.
    pub(crate) fn live(state: &'a State) -> Self {
        Universe {
            chunks: state.members.live().chunks(),
            everyone: true,
            threads: default_threads(),
            split_worth: SPLIT_WORTH,
        }
    }

    /// The same universe walked on at most `threads` threads (1: the caller's only).
    pub(crate) fn with_threads(self, threads: usize) -> Self {
        Universe {
            threads: threads.max(1),
            ..self
        }
    }

    /// The universe's members when it is not every member and has at most `limit` of
    /// them (then they are tested one by one rather than walked).
    pub(crate) fn few_rows(&self, limit: u64) -> Option<Vec<u32>> {
        (!self.everyone && self.chunks.len() <= limit).then(|| self.chunks.rows())
    }

    /// Whether this is every live member.
    pub(crate) fn is_everyone(&self) -> bool {
        self.everyone
    }

    pub(crate) fn chunks(&self) -> &'a Chunks {
        self.chunks
    }

    /// The members of `chunks` (live members only).
    pub(crate) fn of(chunks: &'a Chunks) -> Self {
        Universe {
            chunks,
            everyone: false,
            threads: default_threads(),
            split_worth: SPLIT_WORTH,
        }
    }
}

/// The kernels an operator can run on one chunk (EXPLAIN counts them).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kernel {
    /// An empty or full operand decided the chunk without reading the others.
    Decided,
    /// A stored or computed chunk used as it is.
    Borrowed,
    /// The smallest operand, an array, probed against the others.
    Probe,
    /// Bitsets combined word by word (with the popcount, for a count).
    Words,
    /// Arrays merged.
    Merge,
}

pub(crate) const KERNELS: usize = 5;

impl Kernel {
    pub(crate) const ALL: [Kernel; KERNELS] = [
        Kernel::Decided,
        Kernel::Borrowed,
        Kernel::Probe,
        Kernel::Words,
        Kernel::Merge,
    ];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kernel::Decided => "decided by an empty/full operand",
            Kernel::Borrowed => "borrowed",
            Kernel::Probe => "array probe",
            Kernel::Words => "word-wise",
            Kernel::Merge => "array merge",
        }
    }
}

/// What EXPLAIN learns about one node while the plan runs.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeStats {
    /// Members of the node's result, over the chunks walked (for a computed leaf: all).
    pub(crate) members: u64,
    /// Time in the node and its children (for a computed leaf: computing it).
    pub(crate) nanos: u64,
    /// Chunks per [`Kernel`].
    pub(crate) kernels: [u32; KERNELS],
}

/// An operator ready to walk: leaves are chunk forms, node ids are the plan's pre-order.
enum X<'x> {
    Leaf {
        chunks: &'x Chunks,
        id: usize,
    },
    And {
        pos: Vec<X<'x>>,
        neg: Vec<X<'x>>,
        id: usize,
    },
    Or {
        parts: Vec<X<'x>>,
        id: usize,
    },
}

impl X<'_> {
    /// A guess of the members, to order operands (small positives first, so an empty one
    /// ends an `AND` early).
    fn estimate(&self) -> u64 {
        match self {
            X::Leaf { chunks, .. } => chunks.len(),
            X::And { pos, .. } => pos.iter().map(X::estimate).min().unwrap_or(0),
            X::Or { parts, .. } => parts.iter().map(X::estimate).sum(),
        }
    }
    fn id(&self) -> usize {
        match self {
            X::Leaf { id, .. } | X::And { id, .. } | X::Or { id, .. } => *id,
        }
    }
}

/// A chunk of an operator's result.
enum V<'x> {
    Empty,
    Full,
    Array(&'x [u16]),
    Bits(&'x Words, u32),
    OwnedArray(Vec<u16>),
    OwnedBits(Box<Words>, u32),
}

impl<'x> V<'x> {
    fn from_ref(c: ChunkRef<'x>) -> V<'x> {
        match c {
            ChunkRef::Empty => V::Empty,
            ChunkRef::Full => V::Full,
            ChunkRef::Array(a) => V::Array(a),
            ChunkRef::Bits(w, n) => V::Bits(w, n),
        }
    }
    fn view(&self) -> ChunkRef<'_> {
        match self {
            V::Empty => ChunkRef::Empty,
            V::Full => ChunkRef::Full,
            V::Array(a) => ChunkRef::Array(a),
            V::OwnedArray(a) => ChunkRef::Array(a),
            V::Bits(w, n) => ChunkRef::Bits(w, *n),
            V::OwnedBits(w, n) => ChunkRef::Bits(w, *n),
        }
    }
    fn len(&self) -> u32 {
        self.view().len()
    }
    fn words(&self) -> Option<&Words> {
        match self {
            V::Bits(w, _) => Some(w),
            V::OwnedBits(w, _) => Some(w),
            _ => None,
        }
    }
    fn array(&self) -> Option<&[u16]> {
        match self {
            V::Array(a) => Some(a),
            V::OwnedArray(a) => Some(a),
            _ => None,
        }
    }
    fn into_chunk(self) -> Chunk {
        match self {
            V::Empty => Chunk::Empty,
            V::Full => Chunk::Full,
            V::Array(a) => Chunk::Array(a.into()),
            V::OwnedArray(a) => Chunk::Array(a.into_boxed_slice()),
            V::Bits(w, n) => Chunk::from_words(w, n),
            V::OwnedBits(w, n) => Chunk::from_words(&w, n),
        }
    }
}

/// Walks chunks of one prepared tree, recycling its buffers.
struct Walker<'x> {
    bits: Vec<Box<Words>>,
    arrays: Vec<Vec<u16>>,
    lists: Vec<Vec<V<'x>>>,
    stats: Option<Vec<NodeStats>>,
}

impl<'x> Walker<'x> {
    fn new(profile: Option<usize>) -> Self {
        Walker {
            bits: Vec::new(),
            arrays: Vec::new(),
            lists: Vec::new(),
            stats: profile.map(|n| vec![NodeStats::default(); n]),
        }
    }

    fn recycle(&mut self, v: V<'x>) {
        match v {
            V::OwnedBits(b, _) => self.bits.push(b),
            V::OwnedArray(mut a) => {
                a.clear();
                self.arrays.push(a);
            }
            _ => {}
        }
    }

    fn recycle_list(&mut self, mut list: Vec<V<'x>>) {
        for v in list.drain(..) {
            self.recycle(v);
        }
        self.lists.push(list);
    }

    fn list(&mut self) -> Vec<V<'x>> {
        self.lists.pop().unwrap_or_default()
    }

    fn words(&mut self) -> Box<Words> {
        self.bits.pop().unwrap_or_else(|| Box::new([0; WORDS]))
    }

    fn note(&mut self, id: usize, kernel: Kernel, members: u32, started: Option<Instant>) {
        if let Some(s) = self.stats.as_mut().and_then(|stats| stats.get_mut(id)) {
            s.members += u64::from(members);
            s.kernels[kernel as usize] += 1;
            if let Some(t) = started {
                s.nanos += t.elapsed().as_nanos() as u64;
            }
        }
    }

    fn clock(&self) -> Option<Instant> {
        self.stats.as_ref().map(|_| Instant::now())
    }

    /// Chunk `k` of `x`'s result.
    fn eval(&mut self, x: &X<'x>, k: usize) -> V<'x> {
        let started = self.clock();
        let (v, kernel) = match x {
            X::Leaf { chunks, .. } => (V::from_ref(chunks.get(k)), Kernel::Borrowed),
            X::And { pos, neg, .. } => match self.operands(pos, neg, k) {
                Err(decided) => (decided, Kernel::Decided),
                Ok((pv, nv)) => self.and(pv, nv),
            },
            X::Or { parts, .. } => self.or(parts, k),
        };
        self.note(x.id(), kernel, v.len(), started);
        v
    }

    /// Members of chunk `k` of `x`'s result, without building it where the last step can
    /// count instead.
    fn count(&mut self, x: &X<'x>, k: usize) -> u32 {
        let X::And { pos, neg, id } = x else {
            let v = self.eval(x, k);
            let n = v.len();
            self.recycle(v);
            return n;
        };
        let started = self.clock();
        let (n, kernel) = match self.operands(pos, neg, k) {
            Err(decided) => (decided.len(), Kernel::Decided),
            Ok((pv, nv)) => {
                let (pv, nv) = (self.densify(pv), self.densify(nv));
                let all_words = !pv.is_empty()
                    && pv.iter().chain(&nv).all(|v| v.words().is_some())
                    && pv.len() + nv.len() <= MAX_FUSED;
                if all_words {
                    let mut p = [&ZERO; MAX_FUSED];
                    let mut q = [&ZERO; MAX_FUSED];
                    for (slot, v) in p.iter_mut().zip(&pv) {
                        *slot = v.words().expect("checked");
                    }
                    for (slot, v) in q.iter_mut().zip(&nv) {
                        *slot = v.words().expect("checked");
                    }
                    let n = and_count(&p[..pv.len()], &q[..nv.len()]);
                    self.recycle_list(pv);
                    self.recycle_list(nv);
                    (n, Kernel::Words)
                } else {
                    let (v, kernel) = self.and(pv, nv);
                    let n = v.len();
                    self.recycle(v);
                    (n, kernel)
                }
            }
        };
        self.note(*id, kernel, n, started);
        n
    }

    /// The operands of an `AND` on chunk `k`: the positives that are not full and the
    /// negatives that are not empty, or the answer when one operand decides it.
    #[allow(clippy::type_complexity)]
    fn operands(
        &mut self,
        pos: &[X<'x>],
        neg: &[X<'x>],
        k: usize,
    ) -> std::result::Result<(Vec<V<'x>>, Vec<V<'x>>), V<'x>> {
        let mut pv = self.list();
        for p in pos {
            match self.eval(p, k) {
                V::Empty => {
                    self.recycle_list(pv);
                    return Err(V::Empty);
                }
                V::Full => {}
                v => pv.push(v),
            }
        }
        let mut nv = self.list();
        for n in neg {
            match self.eval(n, k) {
                V::Full => {
                    self.recycle_list(pv);
                    self.recycle_list(nv);
                    return Err(V::Empty);
                }
                V::Empty => {}
                v => nv.push(v),
            }
        }
        if pv.is_empty() && nv.is_empty() {
            self.recycle_list(pv);
            self.recycle_list(nv);
            return Err(V::Full);
        }
        Ok((pv, nv))
    }

    /// The operands with arrays too large to probe turned into bitsets, unless an array
    /// small enough to probe is among them (then the others are probed as they are).
    fn densify(&mut self, mut operands: Vec<V<'x>>) -> Vec<V<'x>> {
        let probe = operands
            .iter()
            .any(|v| v.array().is_some_and(|a| a.len() <= PROBE_LIMIT));
        if probe {
            return operands;
        }
        for v in operands.iter_mut() {
            if let Some(a) = v.array() {
                let mut words = self.words();
                words.fill(0);
                set_bits(&mut words, a);
                let n = a.len() as u32;
                let old = std::mem::replace(v, V::OwnedBits(words, n));
                self.recycle(old);
            }
        }
        operands
    }

    /// `AND` of the positives less the negatives, on one chunk.
    fn and(&mut self, pv: Vec<V<'x>>, nv: Vec<V<'x>>) -> (V<'x>, Kernel) {
        let mut pv = self.densify(pv);
        if pv.len() == 1 && nv.is_empty() {
            let v = pv.pop().expect("one operand");
            self.recycle_list(pv);
            self.recycle_list(nv);
            return (v, Kernel::Borrowed);
        }
        // The smallest array, if any, is probed against everything else.
        let smallest = pv
            .iter()
            .enumerate()
            .filter(|(_, v)| v.array().is_some())
            .min_by_key(|(_, v)| v.len())
            .map(|(i, _)| i);
        let result = if let Some(i) = smallest {
            let mut out = self.arrays.pop().unwrap_or_default();
            let array = pv[i].array().expect("an array");
            let others: Vec<ChunkRef<'_>> = pv
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, v)| v.view())
                .collect();
            let nots: Vec<ChunkRef<'_>> = nv.iter().map(V::view).collect();
            out.extend(array.iter().copied().filter(|&m| {
                others.iter().all(|o| o.contains(m)) && !nots.iter().any(|n| n.contains(m))
            }));
            let v = if out.is_empty() {
                self.arrays.push(out);
                V::Empty
            } else {
                V::OwnedArray(out)
            };
            (v, Kernel::Probe)
        } else {
            // Only bitsets among the positives (possibly none: the complement of the
            // negatives); negatives may be arrays too.
            let mut out = self.words();
            let positives: Vec<&Words> = pv.iter().filter_map(V::words).collect();
            let negatives: Vec<&Words> = nv.iter().filter_map(V::words).collect();
            let mut n = and_into(&mut out, &positives, &negatives);
            for a in nv.iter().filter_map(V::array) {
                for &m in a {
                    let (w, bit) = (usize::from(m >> 6), 1u64 << (m & 63));
                    if out[w] & bit != 0 {
                        out[w] &= !bit;
                        n -= 1;
                    }
                }
            }
            (self.settle(out, n), Kernel::Words)
        };
        self.recycle_list(pv);
        self.recycle_list(nv);
        result
    }

    /// `OR` of the parts, on one chunk.
    fn or(&mut self, parts: &[X<'x>], k: usize) -> (V<'x>, Kernel) {
        let mut vals = self.list();
        let mut total = 0usize;
        for p in parts {
            match self.eval(p, k) {
                V::Empty => {}
                V::Full => {
                    self.recycle_list(vals);
                    return (V::Full, Kernel::Decided);
                }
                v => {
                    total += v.len() as usize;
                    vals.push(v);
                }
            }
        }
        if vals.len() <= 1 {
            let v = vals.pop().unwrap_or(V::Empty);
            self.recycle_list(vals);
            return (v, Kernel::Decided);
        }
        let result = if total <= MERGE_LIMIT && vals.iter().all(|v| v.array().is_some()) {
            let mut out = self.arrays.pop().unwrap_or_default();
            for v in &vals {
                out.extend_from_slice(v.array().expect("arrays"));
            }
            out.sort_unstable();
            out.dedup();
            (V::OwnedArray(out), Kernel::Merge)
        } else {
            let mut out = self.words();
            out.fill(0);
            for a in vals.iter().filter_map(V::array) {
                set_bits(&mut out, a);
            }
            let words: Vec<&Words> = vals.iter().filter_map(V::words).collect();
            let n = or_into(&mut out, &words);
            (self.settle(out, n), Kernel::Words)
        };
        self.recycle_list(vals);
        result
    }

    /// A bitset result with `n` members, as the chunk kind it is.
    fn settle(&mut self, out: Box<Words>, n: u32) -> V<'x> {
        if n == 0 {
            self.bits.push(out);
            V::Empty
        } else if n == CHUNK_BITS {
            self.bits.push(out);
            V::Full
        } else {
            V::OwnedBits(out, n)
        }
    }
}

/// Arrays up to this many members are probed against the other operands; larger ones are
/// set into a bitset and combined word-wise (1,024 words: past about as many probes the
/// word loop is cheaper).
const PROBE_LIMIT: usize = 1024;

/// An OR of arrays with at most this many members in all is merged (sorted) into an array;
/// more are set into a bitset (a few stores each, where sorting costs a comparison sort).
const MERGE_LIMIT: usize = 128;

/// Operands of the fused count at most (more go through the general path).
const MAX_FUSED: usize = 16;
static ZERO: Words = [0; WORDS];

/// Checked every this many chunks against the deadline.
const DEADLINE_EVERY: usize = 16;

/// A plan with its computed leaves, ready to walk.
pub(crate) struct Run<'p> {
    plan: &'p Plan<'p>,
    universe: Universe<'p>,
    computed: Vec<Chunks>,
    deadline: Option<Instant>,
    /// Per node (pre-order), when profiling.
    pub(crate) stats: Option<Vec<NodeStats>>,
}

impl<'p> Run<'p> {
    /// Computes the plan's leaves; `profile` collects [`NodeStats`] for EXPLAIN.
    pub(crate) fn start(
        plan: &'p Plan<'p>,
        universe: Universe<'p>,
        deadline: Option<Instant>,
        profile: bool,
    ) -> Result<Self> {
        let mut computed = vec![Chunks::default(); plan.leaves];
        let mut stats = profile.then(|| vec![NodeStats::default(); count_nodes(&plan.root)]);
        let mut id = 0;
        // A universe smaller than everyone bounds what the leaves compute (the chunks it
        // has members in): incremental group maintenance runs plans over a few members.
        let within = (!universe.everyone).then_some(universe.chunks);
        compute_leaves(
            &plan.root,
            &mut computed,
            &mut stats,
            &mut id,
            deadline,
            within,
        )?;
        Ok(Run {
            plan,
            universe,
            computed,
            deadline,
            stats,
        })
    }

    fn tree(&self) -> X<'_> {
        let mut id = 0;
        let root = prepare(
            &self.plan.root,
            &self.computed,
            self.universe.chunks,
            &mut id,
        );
        if self.universe.everyone {
            return root;
        }
        let universe = X::Leaf {
            chunks: self.universe.chunks,
            id: usize::MAX,
        };
        match root {
            // One more operand of the root's AND, not an AND around it: a count stays one
            // fused pass (a scoped session's Q1 took twice the admin's time when the root
            // was built into a chunk and then intersected with the scope).
            X::And { mut pos, neg, id } => {
                pos.push(universe);
                pos.sort_by_key(|x| (!matches!(x, X::Leaf { .. }), x.estimate()));
                X::And { pos, neg, id }
            }
            root => X::And {
                pos: vec![universe, root],
                neg: Vec::new(),
                id: usize::MAX,
            },
        }
    }

    fn chunks(&self) -> usize {
        self.universe.chunks.count()
    }

    /// The universe when it is not every member (a write's touched members, a clock
    /// move's candidates): its empty chunks are skipped without walking the plan there.
    fn sparse_universe(&self) -> Option<&'p Chunks> {
        (!self.universe.everyone).then_some(self.universe.chunks)
    }

    fn walker(&self) -> Walker<'_> {
        Walker::new(self.stats.as_ref().map(Vec::len))
    }

    /// Adds a walk's statistics to the leaves' (computing them).
    fn keep_stats(&mut self, walked: Option<Vec<NodeStats>>) {
        if let (Some(mine), Some(theirs)) = (&mut self.stats, walked) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                m.members += t.members;
                m.nanos += t.nanos;
                for (a, b) in m.kernels.iter_mut().zip(t.kernels) {
                    *a += b;
                }
            }
        }
    }

    /// Walks the universe's chunks in order, handing each to `step` with the walker and
    /// the tree; the walk's statistics join the run's.
    fn walk(&mut self, mut step: impl for<'x> FnMut(&mut Walker<'x>, &X<'x>, usize)) -> Result<()> {
        let walked = {
            let tree = self.tree();
            let mut walker = self.walker();
            for k in 0..self.chunks() {
                if k % DEADLINE_EVERY == 0 {
                    check_deadline(self.deadline)?;
                }
                step(&mut walker, &tree, k);
            }
            walker.stats
        };
        self.keep_stats(walked);
        Ok(())
    }

    /// Walks the universe's chunks in order, folding each into a `T`, and returns the
    /// parts' results in chunk order. The caller's thread starts alone; when what is left
    /// would take more than [`SPLIT_WORTH`] at the pace so far (and the universe has at
    /// least [`PARALLEL_MIN_CHUNKS`] chunks), the rest is split into contiguous ranges,
    /// one per thread, each with its own walker. Starting a thread costs tens of
    /// microseconds, so a fast walk never pays it.
    fn walk_split<T: Send + Default>(
        &mut self,
        step: impl for<'x> Fn(&mut Walker<'x>, &X<'x>, usize, &mut T) + Sync,
    ) -> Result<Vec<T>> {
        let chunks = self.chunks();
        let threads = if chunks >= PARALLEL_MIN_CHUNKS {
            self.universe.threads
        } else {
            1
        };
        // Walks `range` into `acc`; with `pace` (when the walk started), stops at the first
        // deadline check where the rest of all chunks would take longer than the split is
        // worth. Returns where it stopped and the walker's statistics.
        let walk = |this: &Self,
                    range: std::ops::Range<usize>,
                    acc: &mut T,
                    pace: Option<Instant>|
         -> Result<(usize, Option<Vec<NodeStats>>)> {
            let tree = this.tree();
            let mut walker = this.walker();
            for (i, k) in range.clone().enumerate() {
                if i % DEADLINE_EVERY == 0 {
                    check_deadline(this.deadline)?;
                    if let Some(started) = pace
                        && k > 0
                        && started.elapsed() * (chunks - k) as u32 / k as u32
                            > this.universe.split_worth
                    {
                        return Ok((k, walker.stats));
                    }
                }
                step(&mut walker, &tree, k, acc);
            }
            Ok((range.end, walker.stats))
        };
        // Alone, until the pace says the rest is worth splitting.
        let mut first = T::default();
        let pace = (threads > 1).then(Instant::now);
        let (done, stats) = walk(self, 0..chunks, &mut first, pace)?;
        self.keep_stats(stats);
        let mut out = vec![first];
        if done == chunks {
            return Ok(out);
        }
        let left = chunks - done;
        let parts = threads.min(left);
        let results: Vec<Result<(T, Option<Vec<NodeStats>>)>> = {
            let this = &*self;
            let walk = &walk;
            let part = move |part: usize| {
                let mut acc = T::default();
                let range = done + part * left / parts..done + (part + 1) * left / parts;
                let (_, stats) = walk(this, range, &mut acc, None)?;
                Ok((acc, stats))
            };
            std::thread::scope(|scope| {
                let others: Vec<_> = (1..parts).map(|p| scope.spawn(move || part(p))).collect();
                let mut results = vec![part(0)];
                results.extend(others.into_iter().map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Internal("a chunk walk panicked".into())))
                }));
                results
            })
        };
        for result in results {
            let (acc, stats) = result?;
            self.keep_stats(stats);
            out.push(acc);
        }
        Ok(out)
    }

    /// Members of the answer.
    pub(crate) fn count(&mut self) -> Result<u64> {
        if let Some(n) = self.disjoint_count() {
            return Ok(n);
        }
        let sparse = self.sparse_universe();
        let parts = self.walk_split(|walker, tree, k, total: &mut u64| {
            if sparse.is_some_and(|u| u.get(k).len() == 0) {
                return;
            }
            *total += u64::from(walker.count(tree, k));
        })?;
        Ok(parts.into_iter().sum())
    }

    /// The count of a comparison on one attribute over every member, from the sizes of
    /// its index's parts: the parts of an attribute's `OR` (range bins and the passing rows
    /// of the bins the range cuts, or value bitmaps) hold disjoint members, so the count is
    /// the sum of their sizes, and a complement (`x < 500` through the bins wholly outside)
    /// is the non-NULL members less that sum. At 10M members `COUNT ltv >= 1000` walked
    /// ~60 bins chunk by chunk; the sizes are known. With rows whose index entries wait
    /// (the binder's `(index answer less those rows) OR those that pass`), the count is the
    /// index's less its members among those rows, plus those that pass. `None` for any
    /// other plan.
    fn disjoint_count(&self) -> Option<u64> {
        let root = &self.plan.root;
        if !self.universe.everyone || !matches!(root.source, Source::Segment(Segment::Attr { .. }))
        {
            return None;
        }
        if let Op::Or(parts) = &root.op
            && let [current, waiting] = parts.as_slice()
            && let Op::And { pos, neg } = &current.op
            && let ([indexed], [rows]) = (pos.as_slice(), neg.as_slice())
            && let Op::Stored(rows) = &rows.op
            && let Op::Computed {
                slot,
                leaf: super::leaf::Leaf::Pending { attr, .. },
            } = &waiting.op
        {
            let held = attr.index.pending_held();
            let (count, among) = self.index_count(indexed, Some((rows, &held)))?;
            return Some(count - among + self.computed[*slot].len());
        }
        match &root.op {
            Op::Or(_) | Op::And { .. } => self.index_count(root, None).map(|(count, _)| count),
            _ => None,
        }
    }

    /// The members of `node`, an index's answer of disjoint parts
    /// ([`disjoint_count`](Self::disjoint_count)), and how many of them are among the
    /// index's pending rows (`pending`: those rows, and how many each stored bitmap holds,
    /// [`AttrIndex::pending_held`](crate::attributes::AttrIndex::pending_held)).
    fn index_count(
        &self,
        node: &Node<'_>,
        pending: Option<(&RoaringBitmap, &hashbrown::HashMap<usize, u64>)>,
    ) -> Option<(u64, u64)> {
        let rows = pending.map(|(rows, _)| rows);
        let among = |b: &crate::bitmap::Bitmap| {
            pending.map_or(0, |(_, held)| {
                held.get(&(std::ptr::from_ref(b) as usize))
                    .copied()
                    .unwrap_or(0)
            })
        };
        let size = |node: &Node<'_>| match &node.op {
            Op::Stored(b) => Some((b.len(), among(b))),
            Op::Computed { slot, .. } => {
                let c = &self.computed[*slot];
                let among = rows.map_or(0, |r| {
                    r.iter()
                        .filter(|&row| {
                            c.get((row / crate::bitmap::CHUNK_BITS) as usize)
                                .contains(row as u16)
                        })
                        .count() as u64
                });
                Some((c.len(), among))
            }
            Op::Nothing => Some((0, 0)),
            _ => None,
        };
        let sum = |parts: &[Node<'_>]| {
            parts
                .iter()
                .map(size)
                .try_fold((0, 0), |(n, a), part| part.map(|(pn, pa)| (n + pn, a + pa)))
        };
        match &node.op {
            Op::Or(parts) => sum(parts),
            Op::And { pos, neg } => match (pos.as_slice(), neg.as_slice()) {
                ([within], [outside]) => {
                    let Op::Stored(within) = &within.op else {
                        return None;
                    };
                    let (out, out_among) = match &outside.op {
                        Op::Or(parts) => sum(parts)?,
                        _ => size(outside)?,
                    };
                    Some((
                        within.len().checked_sub(out)?,
                        among(within).checked_sub(out_among)?,
                    ))
                }
                _ => None,
            },
            _ => size(node),
        }
    }

    /// The answer as chunks.
    pub(crate) fn members(&mut self) -> Result<Chunks> {
        let sparse = self.sparse_universe();
        let parts = self.walk_split(|walker, tree, k, out: &mut Vec<Chunk>| {
            if sparse.is_some_and(|u| u.get(k).len() == 0) {
                out.push(Chunk::Empty);
                return;
            }
            out.push(walker.eval(tree, k).into_chunk());
        })?;
        Ok(Chunks::from_vec(parts.into_iter().flatten().collect()))
    }

    /// Members `offset..offset + limit` of the answer in row-id order, and the size of
    /// the answer (the chunks past the page are counted, not built).
    pub(crate) fn page(&mut self, offset: u64, limit: u64) -> Result<(Vec<u32>, u64)> {
        let mut rows = Vec::new();
        let mut seen = 0u64;
        let wanted = offset.saturating_add(limit);
        self.walk(|walker, tree, k| {
            if seen >= wanted {
                seen += u64::from(walker.count(tree, k));
                return;
            }
            let v = walker.eval(tree, k);
            let n = u64::from(v.len());
            if seen + n > offset {
                let base = (k as u32) << 16;
                let skip = offset.saturating_sub(seen) as usize;
                let take = (wanted - seen.max(offset)) as usize;
                let members = members_of(v.view()).skip(skip).take(take);
                rows.extend(members.map(|low| base | u32::from(low)));
            }
            walker.recycle(v);
            seen += n;
        })?;
        Ok((rows, seen))
    }

    /// The answer as a roaring bitmap.
    pub(crate) fn bitmap(&mut self) -> Result<RoaringBitmap> {
        Ok(self.members()?.to_roaring())
    }
}

/// The members of a chunk, low bits ascending.
fn members_of(c: ChunkRef<'_>) -> Box<dyn Iterator<Item = u16> + '_> {
    match c {
        ChunkRef::Empty => Box::new(std::iter::empty()),
        ChunkRef::Full => Box::new(0..=u16::MAX),
        ChunkRef::Array(a) => Box::new(a.iter().copied()),
        ChunkRef::Bits(w, _) => Box::new(w.iter().enumerate().flat_map(|(i, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as u16;
                    word &= word - 1;
                    (i as u16) << 6 | bit
                })
            })
        })),
    }
}

pub(crate) fn count_nodes(node: &Node<'_>) -> usize {
    1 + match &node.op {
        Op::And { pos, neg } => pos.iter().chain(neg).map(count_nodes).sum(),
        Op::Or(parts) => parts.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Computes every computed leaf into its slot, in pre-order.
fn compute_leaves(
    node: &Node<'_>,
    out: &mut [Chunks],
    stats: &mut Option<Vec<NodeStats>>,
    id: &mut usize,
    deadline: Option<Instant>,
    within: Option<&Chunks>,
) -> Result<()> {
    let my = *id;
    *id += 1;
    match &node.op {
        Op::Computed { slot, leaf } => {
            check_deadline(deadline)?;
            let started = Instant::now();
            let chunks = Chunks::from_roaring(&leaf.compute(within)?);
            if let Some(stats) = stats {
                stats[my].nanos += started.elapsed().as_nanos() as u64;
                stats[my].members = chunks.len();
            }
            out[*slot] = chunks;
        }
        Op::And { pos, neg } => {
            for child in pos.iter().chain(neg) {
                compute_leaves(child, out, stats, id, deadline, within)?;
            }
        }
        Op::Or(parts) => {
            for child in parts {
                compute_leaves(child, out, stats, id, deadline, within)?;
            }
        }
        _ => {}
    }
    Ok(())
}

static NO_MEMBERS: Chunks = Chunks::empty();

/// The walkable tree of `node`, ids in pre-order, operands ordered by size.
fn prepare<'x>(
    node: &'x Node<'x>,
    computed: &'x [Chunks],
    universe: &'x Chunks,
    next: &mut usize,
) -> X<'x> {
    let id = *next;
    *next += 1;
    match &node.op {
        Op::Universe => X::Leaf {
            chunks: universe,
            id,
        },
        Op::Nothing => X::Leaf {
            chunks: &NO_MEMBERS,
            id,
        },
        Op::Stored(bitmap) => X::Leaf {
            chunks: bitmap.chunks(),
            id,
        },
        Op::Computed { slot, .. } => X::Leaf {
            chunks: &computed[*slot],
            id,
        },
        Op::And { pos, neg } => {
            let mut pos: Vec<X<'x>> = pos
                .iter()
                .map(|n| prepare(n, computed, universe, next))
                .collect();
            let neg: Vec<X<'x>> = neg
                .iter()
                .map(|n| prepare(n, computed, universe, next))
                .collect();
            // Leaves before operators, each smallest first.
            pos.sort_by_key(|x| (!matches!(x, X::Leaf { .. }), x.estimate()));
            X::And { pos, neg, id }
        }
        Op::Or(parts) => X::Or {
            parts: parts
                .iter()
                .map(|n| prepare(n, computed, universe, next))
                .collect(),
            id,
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use roaring::{MultiOps, RoaringBitmap};

    use super::*;
    use crate::bitmap::Bitmap;
    use crate::plan::{Node, Op, Plan, Source};
    use crate::segment::Segment;

    const CHUNKS: u32 = 4;
    static SOURCE: Segment = Segment::All;

    /// A bitmap with one chosen kind of chunk per chunk: empty, a sparse array, a dense
    /// bitset, a run, or full.
    fn bitmap(kinds: &[u8], seed: u64) -> RoaringBitmap {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut b = RoaringBitmap::new();
        for (k, kind) in kinds.iter().enumerate() {
            let base = k as u32 * CHUNK_BITS;
            match kind % 5 {
                0 => {}
                1 => b.extend((0..(next() % 4000)).map(|_| base + (next() % 65_536) as u32)),
                2 => b.extend((0..65_536u32).filter(|_| next() % 3 == 0).map(|i| base + i)),
                3 => {
                    let start = (next() % 30_000) as u32;
                    b.insert_range(base + start..base + start + (next() % 30_000) as u32);
                }
                _ => {
                    b.insert_range(base..base + CHUNK_BITS);
                }
            }
        }
        b
    }

    #[derive(Clone, Debug)]
    enum T {
        Leaf(usize),
        Universe,
        And(Vec<T>, Vec<T>),
        Or(Vec<T>),
    }

    fn tree(leaves: usize) -> impl Strategy<Value = T> {
        let leaf = prop_oneof![
            6 => (0..leaves).prop_map(T::Leaf),
            1 => Just(T::Universe),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                (
                    prop::collection::vec(inner.clone(), 1..4),
                    prop::collection::vec(inner.clone(), 0..3)
                )
                    .prop_map(|(p, n)| T::And(p, n)),
                prop::collection::vec(inner, 1..4).prop_map(T::Or),
            ]
        })
    }

    fn node<'a>(t: &T, leaves: &'a [Bitmap]) -> Node<'a> {
        let op = match t {
            T::Leaf(i) => Op::Stored(&leaves[*i]),
            T::Universe => Op::Universe,
            T::And(p, n) => Op::And {
                pos: p.iter().map(|t| node(t, leaves)).collect(),
                neg: n.iter().map(|t| node(t, leaves)).collect(),
            },
            T::Or(parts) => Op::Or(parts.iter().map(|t| node(t, leaves)).collect()),
        };
        Node {
            source: Source::Segment(&SOURCE),
            op,
        }
    }

    fn expected(t: &T, leaves: &[Bitmap], universe: &RoaringBitmap) -> RoaringBitmap {
        match t {
            T::Leaf(i) => (*leaves[*i]).clone(),
            T::Universe => universe.clone(),
            T::And(p, n) => {
                let pos = p
                    .iter()
                    .map(|t| expected(t, leaves, universe))
                    .intersection();
                let neg = n.iter().map(|t| expected(t, leaves, universe)).union();
                pos - neg
            }
            T::Or(parts) => parts.iter().map(|t| expected(t, leaves, universe)).union(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        /// Every chunk kind meeting every other under AND / AND NOT / OR, over the whole
        /// live set, over a smaller universe and over a few members: count, members and
        /// pages equal roaring's own operations.
        #[test]
        fn chunk_walk_equals_roaring(
            kinds in prop::collection::vec(prop::collection::vec(0u8..5, CHUNKS as usize), 2..6),
            universe_kinds in prop::collection::vec(0u8..5, CHUNKS as usize),
            seed in any::<u64>(),
            t in tree(5),
            offset in 0u64..5000,
        ) {
            let leaves: Vec<Bitmap> = (0..5)
                .map(|i| Bitmap::new(bitmap(&kinds[i % kinds.len()], seed.wrapping_add(i as u64))))
                .collect();
            let live: RoaringBitmap =
                leaves.iter().map(|b| &**b).union() | bitmap(&universe_kinds, !seed);
            let live = Bitmap::new(live);
            let subset = Bitmap::new(bitmap(&universe_kinds, seed ^ 0x55) & &*live);
            // A universe of a few members: `bitmap` tests them one by one (`probe.rs`).
            let step = (seed % 997 + 1) as usize;
            let few = Bitmap::new(live.iter().step_by(step).take(40).collect());
            let plan = Plan { root: node(&t, &leaves), now: 0, moves_with_time: false, leaves: 0 };
            for (universe, everyone) in [(&live, true), (&subset, false), (&few, false)] {
                let u = Universe {
                    chunks: universe.chunks(), everyone, threads: 1, split_worth: SPLIT_WORTH,
                };
                let want = expected(&t, &leaves, universe) & &**universe;
                prop_assert_eq!(plan.count(u, None).unwrap(), want.len());
                prop_assert_eq!(&plan.bitmap(u, None).unwrap(), &want);
                let (page, total) = plan.page(u, None, offset, 100).unwrap();
                prop_assert_eq!(total, want.len());
                let want_page: Vec<u32> = want.iter().skip(offset as usize).take(100).collect();
                prop_assert_eq!(page, want_page);
                let (_, explained) = crate::plan::explain(&plan, u, None).unwrap();
                prop_assert_eq!(explained, want.len());
            }
        }
    }

    /// Past [`PARALLEL_MIN_CHUNKS`], count and members split the chunks across threads
    /// and give what one walk gives, in order.
    #[test]
    fn split_walks_equal_one_walk() {
        let chunks = PARALLEL_MIN_CHUNKS * 2 + 3;
        let kinds = |shift: usize| -> Vec<u8> {
            (0..chunks).map(|k| ((k * 7 + shift) % 5) as u8).collect()
        };
        let leaves: Vec<Bitmap> = (0..5)
            .map(|i| Bitmap::new(bitmap(&kinds(i), 17 + i as u64)))
            .collect();
        let live = Bitmap::new(leaves.iter().map(|b| &**b).union());
        let t = T::And(
            vec![T::Or(vec![T::Leaf(0), T::Leaf(1)]), T::Leaf(2)],
            vec![T::Leaf(3)],
        );
        let plan = Plan {
            root: node(&t, &leaves),
            now: 0,
            moves_with_time: false,
            leaves: 0,
        };
        let want = expected(&t, &leaves, &live) & &*live;
        assert!(!want.is_empty());
        for threads in [1, 2, 3, 8] {
            // split as soon as the pace is known (after the first 16 chunks)
            let u = Universe {
                chunks: live.chunks(),
                everyone: true,
                threads,
                split_worth: std::time::Duration::ZERO,
            };
            assert_eq!(
                plan.count(u, None).unwrap(),
                want.len(),
                "{threads} threads"
            );
            assert_eq!(plan.bitmap(u, None).unwrap(), want, "{threads} threads");
            let (_, explained) = crate::plan::explain(&plan, u, None).unwrap();
            assert_eq!(explained, want.len());
        }
    }
}
