#!/usr/bin/env python3
"""An example poold worker in Python: a few functions served over poold's
protocol by poold_worker (beside this file, standard library only).

    poold --worker-cmd 'python3 examples/python/worker.py' tasks.json

with tasks such as {"func": "square", "args": {"x": 7}}. The functions:

    echo      {"value": V}                  V, as poold's built-in echo
    square    {"x": N}                      N * N
    sleep     {"seconds": S}                S, after sleeping S seconds (as poold's)
    print     {"text": T, "times": N}       writes T (and a newline) N times to
                                            stdout and to stderr, as poold's built-in;
                                            returns the bytes written to stdout
    fail      {"message": M}                raises ValueError(M): kind "error",
                                            type "ValueError", the traceback as stack
    exit      {"code": C}                   os._exit(C): the worker dies (worker_lost)
    segfault  {}                            reads address 0 through ctypes: SIGSEGV
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poold_worker  # noqa: E402


def echo(args):
    return args.get("value") if isinstance(args, dict) else None


def square(args):
    x = args["x"]
    return x * x


def sleep(args):
    s = args.get("seconds", 0)
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not 0 <= s < 9e9:
        raise poold_worker.TaskFailure("bad_args", 'field "seconds": want a number of seconds, got %r' % (s,))
    time.sleep(s)
    return s


def print_(args):
    text, times = args["text"], args.get("times", 1)
    if not text.endswith("\n"):
        text += "\n"
    for _ in range(times):
        sys.stdout.write(text)
        sys.stderr.write(text)
    sys.stderr.flush()
    return len(text.encode()) * times


def fail(args):
    raise ValueError(args.get("message", "this task fails on purpose"))


def exit_(args):
    code = args.get("code", 1)
    sys.stderr.write("poold python task: exit %d\n" % code)
    sys.stderr.flush()
    os._exit(code)


def segfault(args):
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
    except (ImportError, ValueError, OSError):
        pass
    import ctypes
    sys.stderr.write("poold python task: segfault\n")
    sys.stderr.flush()
    ctypes.string_at(0)


FUNCTIONS = {
    "echo": echo,
    "square": square,
    "sleep": sleep,
    "print": print_,
    "fail": fail,
    "exit": exit_,
    "segfault": segfault,
}

if __name__ == "__main__":
    poold_worker.main(FUNCTIONS)
