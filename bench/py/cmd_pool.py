#!/usr/bin/env python3
"""The poold command's job done with multiprocessing.Pool, for workload 9 of
poold's comparison harness (go run ./bench/cmd/compare -only command).

  cmd_pool.py [--procs N] [--jsonl] FILE

reads FILE, a JSON array of tasks {"id": ..., "func": "echo", "args":
{"value": ...}} or, with --jsonl or a name ending in .jsonl, JSON Lines of
the same entries; submits each to a fork Pool(N) (default 2) with
apply_async of echo(args), as a Python user would write it; and prints one
JSON line per result, {"id", "ok", "result", "pid"}, on stdout, in the
file's order. At the end it writes {"tasks": n, "ok": n} on stderr, for the
harness to check. The harness times the whole process, interpreter start-up
included, with stdout to /dev/null. Standard library only.
"""
import argparse
import json
import multiprocessing as mp
import os
import sys


def echo(args):
    """The built-in echo task of poold: its args' value, and who ran it."""
    return args.get("value"), os.getpid()


def entries(path, lines):
    with open(path, "rb") as f:
        if not lines:
            yield from json.load(f)
            return
        for line in f:
            if line.strip():
                yield json.loads(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--jsonl", action="store_true")
    ap.add_argument("file")
    a = ap.parse_args()
    lines = a.jsonl or a.file.endswith(".jsonl")

    pool = mp.get_context("fork").Pool(a.procs)
    pending = []
    for t in entries(a.file, lines):
        if t.get("func") != "echo":
            sys.exit("cmd_pool.py: only echo tasks, not %r" % t.get("func"))
        pending.append((t["id"], t["args"]["value"], pool.apply_async(echo, (t["args"],))))
    ok = 0
    write = sys.stdout.write
    dumps = json.dumps
    for tid, want, r in pending:
        value, pid = r.get()
        ok += value == want
        write(dumps({"id": tid, "ok": True, "result": value, "pid": pid}) + "\n")
    sys.stdout.flush()
    pool.close()
    pool.join()
    sys.stderr.write(dumps({"tasks": len(pending), "ok": ok}) + "\n")


if __name__ == "__main__":
    main()
