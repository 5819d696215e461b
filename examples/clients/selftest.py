#!/usr/bin/env python3
"""Runs poold serve through poold_client.py the way a long-lived user
would: selftest.py POOLD N. N tasks, 1 % of them bad lines and 1 % tasks
that kill their worker; every id must come back exactly once, each with the
kind it should have; cancel and stats must answer. Prints one line of
counts and exits 0, or says what was wrong and exits 1."""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from poold_client import PooldServer  # noqa: E402


def main(poold, n):
    want = {}
    with PooldServer([poold, "serve", "-n", "2"], stderr=open(os.devnull, "w")) as pool:
        for i in range(n):
            tid = "t%d" % i
            if i % 100 == 37:
                pool.send_raw('{"id": "%s", "func": "no_such_task"}' % tid)
                want[tid] = "bad_task"
            elif i % 100 == 71:
                pool.submit(tid, "crash", {"mode": "kill"})
                want[tid] = "worker_lost"
            else:
                pool.submit(tid, "echo", {"value": i})
                want[tid] = "ok"
        pool.submit("long", "sleep", {"seconds": 30})
        want["long"] = "canceled"
        stats = pool.stats()
        if stats["received"] != n + 1:
            return fail("stats say %d tasks received, want %d: %s" % (stats["received"], n + 1, stats))
        if not pool.cancel("long"):
            return fail("cancel of the long task found nothing in flight")
        if pool.cancel("no-such-id"):
            return fail("cancel of an unknown id said it cancelled something")
        seen = collections.Counter()
        kinds = collections.Counter()
        for r in pool.results(len(want)):
            seen[r["id"]] += 1
            kind = "ok" if r["ok"] else r["error"]["kind"]
            kinds[kind] += 1
            if want.get(r["id"]) != kind:
                return fail("%s: %s, want %s: %s" % (r["id"], kind, want.get(r["id"]), r))
            if kind == "ok" and r["result"] != int(r["id"][1:]):
                return fail("%s: result %r" % (r["id"], r["result"]))
        dup = [i for i, c in seen.items() if c != 1]
        missing = set(want) - set(seen)
        if dup or missing:
            return fail("ids seen twice: %s; missing: %s" % (dup[:5], sorted(missing)[:5]))
        code = pool.close()
        if code != 0:
            return fail("poold serve exited %d at the end of its input, want 0" % code)
    print("ok: %d results, %s" % (sum(kinds.values()), dict(sorted(kinds.items()))))
    return 0


def fail(msg):
    print("FAIL: " + msg)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
