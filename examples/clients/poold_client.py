#!/usr/bin/env python3
"""A client of `poold serve`, standard library only: poold as a co-process
that runs Python's tasks on isolated workers.

    with PooldServer(["poold", "serve", "-n", "4"]) as pool:
        pool.submit("t1", "pow", {"base": 2, "exp": 10})
        pool.submit("t2", "crash", {"mode": "segfault"})
        for result in pool.results(2):
            print(result["id"], result["ok"], result.get("result"), result["pid"])

Results come back as they finish, as dicts in poold's --json format:
"id", "ok", "result" or "error" ({"kind", "message", ...}), "host",
"pid", "attempts", ... A task that crashes its worker is one result with
kind "worker_lost"; the server goes on.
"""

import json
import subprocess
import sys
import threading
import queue


class PooldServer:
    """`poold serve` as a co-process. Submit tasks, read results."""

    def __init__(self, argv, stderr=None):
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, text=True, bufsize=1)
        self._lines = queue.Queue()
        self._controls = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self._proc.stdout:
            msg = json.loads(line)
            (self._controls if "control" in msg else self._lines).put(msg)
        self._lines.put(None)  # the server is gone
        self._controls.put(None)

    def _send(self, obj):
        self._proc.stdin.write(json.dumps(obj) + "\n")
        self._proc.stdin.flush()

    def submit(self, task_id, func, args=None, **options):
        """Submit one task; options as in a task file ("timeout": "5s",
        "retries": 1, ...)."""
        entry = {"id": task_id, "func": func}
        if args is not None:
            entry["args"] = args
        entry.update(options)
        self._send(entry)

    def send_raw(self, line):
        """Send one line as it is (to see what the server makes of it)."""
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def cancel(self, task_id):
        """Cancel the task in flight; True if there was one. Its result
        comes as any other, with kind "canceled"."""
        self._send({"control": "cancel", "id": task_id})
        return self._controls.get()["cancelled"]

    def stats(self):
        """The server's counters so far."""
        self._send({"control": "stats"})
        return self._controls.get()["stats"]

    def results(self, n=None):
        """Yield results as they finish: n of them, or until the server's
        output ends (after close)."""
        while n is None or n > 0:
            msg = self._lines.get()
            if msg is None:
                return
            yield msg
            if n is not None:
                n -= 1

    def close(self):
        """End the input: the server finishes what runs and exits.
        Returns its exit status."""
        if not self._proc.stdin.closed:
            self._proc.stdin.close()
        return self._proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv):
    """Demo: poold_client.py POOLD [FLAGS...]: runs a few tasks, one that
    crashes its worker, and prints each result on a line."""
    with PooldServer([argv[1], "serve"] + argv[2:]) as pool:
        pool.submit("pow", "pow", {"base": 2, "exp": 64})
        pool.submit("crash", "crash", {"mode": "segfault"})
        pool.submit("echo", "echo", {"value": {"a": [1, 2.5, "x"]}})
        for r in pool.results(3):
            outcome = r["result"] if r["ok"] else r["error"]["kind"]
            print(r["id"], "ok" if r["ok"] else "failed", json.dumps(outcome), "pid", r["pid"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
