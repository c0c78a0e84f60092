#!/usr/bin/env python3
"""The bitmap baselines of the peer harness (`bench/run-peers`), for Q1 and Q2.

Started by the `peers` binary with a directory of the engine's own bitmaps in the portable
roaring format (`<Q>-a.roaring`, `<Q>-b.roaring`, `<Q>-c.roaring`: the question is
`|a AND c AND NOT b|`) and the member count. It answers requests, one JSON object per line:

    -> {"op": "run", "name": "Q1", "system": "croaring", "reps": 20, "budget_s": 1.0}
    <- {"name": "Q1", "samples_us": [...], "answer": 12345}

Systems:
- `croaring`: CRoaring through pyroaring, `(a & c).difference_cardinality(b)`, the best
  order (the intersection first, then a count without building the difference);
- `numpy`: the three bitmaps as dense bitsets (numpy uint64 words), `a & c & ~b` then
  `bitwise_count` and a sum: three unfused passes with temporaries;
- `c`: one fused word-wise loop in C, `popcount(a[i] & c[i] & ~b[i])`, compiled here by gcc
  -O3 -march=native: the memory read of the three bitsets, the physical limit. Its timing
  loop runs in C (clock_gettime per repetition), so Python's call overhead is not in it.
"""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyroaring

from common import serve

DIR, MEMBERS = sys.argv[1], int(sys.argv[2])
WORDS = (MEMBERS + 63) // 64

C_SOURCE = r"""
#include <stdint.h>
#include <stddef.h>
#include <time.h>

__attribute__((noinline))
static uint64_t count(const uint64_t *a, const uint64_t *b, const uint64_t *c, size_t n) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += (uint64_t)__builtin_popcountll(a[i] & c[i] & ~b[i]);
    return total;
}

/* Runs the count `reps` times; the time of each in microseconds goes to `us`. */
uint64_t timed(const uint64_t *a, const uint64_t *b, const uint64_t *c, size_t n, int reps,
               double *us) {
    uint64_t answer = 0;
    for (int r = 0; r < reps; r++) {
        struct timespec t0, t1;
        __asm__ volatile("" ::: "memory");
        clock_gettime(CLOCK_MONOTONIC, &t0);
        answer = count(a, b, c, n);
        __asm__ volatile("" ::: "memory");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        us[r] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
    }
    return answer;
}
"""


def compile_c():
    build = tempfile.mkdtemp(prefix="memberdb-fused-")
    source, library = os.path.join(build, "fused.c"), os.path.join(build, "fused.so")
    with open(source, "w") as f:
        f.write(C_SOURCE)
    subprocess.run(["gcc", "-O3", "-march=native", "-shared", "-fPIC", "-o", library, source],
                   check=True)
    lib = ctypes.CDLL(library)
    shutil.rmtree(build, ignore_errors=True)  # loaded: the file is no longer needed
    lib.timed.restype = ctypes.c_uint64
    lib.timed.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
    version = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout
    return lib, version.strip()


def dense(bitmap):
    words = np.zeros(WORDS, dtype=np.uint64)
    rows = np.array(bitmap.to_array(), dtype=np.uint64) if len(bitmap) else np.zeros(0, np.uint64)
    np.bitwise_or.at(words, rows >> np.uint64(6), np.uint64(1) << (rows & np.uint64(63)))
    return words


def load():
    questions = {}
    for name in ("Q1", "Q2"):
        parts = {}
        for part in "abc":
            path = os.path.join(DIR, f"{name}-{part}.roaring")
            if not os.path.exists(path):
                break
            with open(path, "rb") as f:
                parts[part] = pyroaring.BitMap.deserialize(f.read())
        if len(parts) == 3:
            questions[name] = {
                "roaring": parts,
                "dense": {p: dense(b) for p, b in parts.items()},
            }
    return questions


def sample(reps, budget_s, once):
    once()
    samples, answer = [], None
    started = time.perf_counter()
    while len(samples) < reps or (time.perf_counter() - started < budget_s
                                  and len(samples) < 100 * reps):
        t0 = time.perf_counter_ns()
        answer = once()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return samples, answer


def run(questions, lib, name, system, reps, budget_s):
    q = questions[name]
    if system == "croaring":
        a, b, c = (q["roaring"][p] for p in "abc")
        samples, answer = sample(reps, budget_s, lambda: (a & c).difference_cardinality(b))
    elif system == "numpy":
        a, b, c = (q["dense"][p] for p in "abc")
        samples, answer = sample(reps, budget_s,
                                 lambda: int(np.bitwise_count(a & c & ~b).sum(dtype=np.uint64)))
    elif system == "c":
        a, b, c = (q["dense"][p] for p in "abc")
        samples, answer = [], 0
        started = time.perf_counter()
        batch = max(reps, 10)
        while len(samples) < reps or (time.perf_counter() - started < budget_s
                                      and len(samples) < 1000 * reps):
            us = (ctypes.c_double * batch)()
            answer = lib.timed(a.ctypes.data, b.ctypes.data, c.ctypes.data, WORDS, batch, us)
            samples.extend(us[1:])  # the first of a batch warms the caches up
    else:
        return {"error": f"unknown system {system}"}
    return {"name": name, "samples_us": samples, "answer": int(answer)}


def main():
    lib, gcc = compile_c()
    questions = load()
    serve({"ready": True, "load_s": 0.0,
           "version": f"pyroaring {pyroaring.__version__}, numpy {np.__version__}, gcc {gcc}",
           "threads": "1"},
          lambda r: run(questions, lib, r["name"], r["system"], r["reps"], r["budget_s"]))


if __name__ == "__main__":
    main()
