#!/usr/bin/env python3
"""Python side of poold's comparison harness (go run ./bench/cmd/compare).

Each sub-command runs one workload on multiprocessing.Pool with the 'fork'
start method, or with --kind thread on multiprocessing.dummy.Pool (the same
Pool API on threads of this process: ThreadPool), and prints ONE JSON object
on stdout, which the Go harness parses. Times are measured inside Python with time.perf_counter, around the
same operation the Go side times. Each workload is written as a Python user
would write it, with nothing but the standard library.

  info          interpreter version and path
  (every other sub-command takes --kind process|thread; default process)
  apply_async   N x apply_async(ident, (i,)) submitted one by one, then get() all
  map           map(ident, range(N)) with the default chunksize
  latency       N sequential apply(ident, (i,)) after a warm-up: p50/p99 in us
  cpu           trial-division prime count split in T tasks, Pool(1) vs Pool(2)
  startup       Pool(P) created + first map of P items
  queued        RSS growth per task while N apply_async of time.sleep(3600)
                wait in the pool's queues (fork only)
"""
import argparse
import gc
import json
import math
import multiprocessing as mp
import multiprocessing.dummy as mpd
import os
import platform
import sys
import time


def ident(x):
    return x


def count_primes(bounds):
    """Primes p with lo <= p < hi, by trial division by the odd numbers."""
    lo, hi = bounds
    n = 0
    for k in range(max(lo, 2), hi):
        if k < 4:
            n += 1
            continue
        if k % 2 == 0:
            continue
        r = math.isqrt(k)
        d = 3
        prime = True
        while d <= r:
            if k % d == 0:
                prime = False
                break
            d += 2
        if prime:
            n += 1
    return n


def chunks(n, k):
    """k ranges [lo, hi) of about equal cost covering [0, n): trial division
    up to x costs about x**1.5, so range i ends at n*((i+1)/k)**(2/3). The Go
    side (bench.PrimeRanges) splits the same way."""
    bounds = [int(n * ((i + 1) / k) ** (2 / 3)) for i in range(k - 1)] + [n]
    return list(zip([0] + bounds[:-1], bounds))


def pct(sorted_xs, p):
    i = min(len(sorted_xs) - 1, int(round(p / 100.0 * (len(sorted_xs) - 1))))
    return sorted_xs[i]


CTX = mp.get_context("fork")


def make_pool(kind, procs):
    """Pool(procs) of worker processes (fork) or, for kind "thread", of
    threads (multiprocessing.dummy.Pool, as the anchor script makes it)."""
    if kind == "thread":
        return mpd.Pool(procs)
    return CTX.Pool(procs)


def warm_pool(procs, kind="process"):
    pool = make_pool(kind, procs)
    pool.map(ident, range(procs * 4), chunksize=1)  # every worker is up
    return pool


def stop(pool):
    pool.terminate()
    pool.join()


def out(obj):
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def cmd_info(a):
    out({"version": platform.python_version(), "executable": sys.executable,
         "implementation": platform.python_implementation(),
         "start_method": "fork"})


def cmd_apply_async(a):
    rates = []
    for _ in range(a.reps):
        pool = warm_pool(a.procs, a.kind)
        t0 = time.perf_counter()
        rs = [pool.apply_async(ident, (i,)) for i in range(a.n)]
        s = sum(r.get() for r in rs)
        dt = time.perf_counter() - t0
        stop(pool)
        assert s == a.n * (a.n - 1) // 2, s
        rates.append(a.n / dt)
    out({"rates": rates})


def cmd_map(a):
    rates = []
    for _ in range(a.reps):
        pool = warm_pool(a.procs, a.kind)
        t0 = time.perf_counter()
        s = sum(pool.map(ident, range(a.n)))
        dt = time.perf_counter() - t0
        stop(pool)
        assert s == a.n * (a.n - 1) // 2, s
        rates.append(a.n / dt)
    out({"rates": rates})


def cmd_latency(a):
    p50, p99, mean = [], [], []
    for _ in range(a.reps):
        pool = warm_pool(a.procs, a.kind)
        for i in range(a.warmup):
            pool.apply(ident, (i,))
        lat = []
        pc = time.perf_counter_ns
        for i in range(a.n):
            t0 = pc()
            r = pool.apply(ident, (i,))
            lat.append(pc() - t0)
            assert r == i
        stop(pool)
        lat.sort()
        p50.append(pct(lat, 50) / 1e3)
        p99.append(pct(lat, 99) / 1e3)
        mean.append(sum(lat) / len(lat) / 1e3)
    out({"p50_us": p50, "p99_us": p99, "mean_us": mean})


def cmd_cpu(a):
    parts = chunks(a.n, a.tasks)
    expect = count_primes((0, a.n)) if a.n <= 100000 else None
    t1, t2 = [], []
    count = None
    for _ in range(a.reps):
        for procs, ts in ((1, t1), (2, t2)):  # interleaved: drift hits both alike
            pool = warm_pool(procs)
            t0 = time.perf_counter()
            s = sum(pool.map(count_primes, parts, chunksize=1))
            ts.append(time.perf_counter() - t0)
            stop(pool)
            if count is None:
                count = s
            assert s == count and (expect is None or s == expect), (s, count, expect)
    out({"t1_s": t1, "t2_s": t2, "primes": count})


def cmd_startup(a):
    ms = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        pool = make_pool(a.kind, a.procs)
        pool.map(ident, range(a.procs))
        ms.append((time.perf_counter() - t0) * 1e3)
        pool.close()
        pool.join()
    out({"ms": ms})


def rss_bytes():
    """This process's resident set, from /proc/self/statm; None without it."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def cmd_queued(a):
    """N tasks that do not end, submitted with apply_async and held (as the
    Go side holds its AsyncResults): the resident set's growth per task,
    each side read after gc.collect()."""
    per, rates = [], []
    for _ in range(a.reps):
        pool = warm_pool(a.procs)
        gc.collect()
        r0 = rss_bytes()
        t0 = time.perf_counter()
        rs = [pool.apply_async(time.sleep, (3600,)) for _ in range(a.n)]
        dt = time.perf_counter() - t0
        gc.collect()
        r1 = rss_bytes()
        assert not rs[0].ready()
        stop(pool)
        del rs
        per.append(None if r0 is None or r1 is None else (r1 - r0) / a.n)
        rates.append(a.n / dt)
    out({"bytes_per_task": per, "submit_rates": rates})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)

    sp.add_parser("info").set_defaults(f=cmd_info)
    for name, f, n in (("apply_async", cmd_apply_async, 100_000), ("map", cmd_map, 1_000_000)):
        p = sp.add_parser(name)
        p.add_argument("--procs", type=int, default=2)
        p.add_argument("--n", type=int, default=n)
        p.add_argument("--reps", type=int, default=3)
        p.add_argument("--kind", default="process", choices=["process", "thread"])
        p.set_defaults(f=f)

    p = sp.add_parser("latency")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--kind", default="process", choices=["process", "thread"])
    p.set_defaults(f=cmd_latency)

    p = sp.add_parser("cpu")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    p.set_defaults(f=cmd_cpu)

    p = sp.add_parser("startup")
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--kind", default="process", choices=["process", "thread"])
    p.set_defaults(f=cmd_startup)

    p = sp.add_parser("queued")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=1)
    p.set_defaults(f=cmd_queued)

    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
