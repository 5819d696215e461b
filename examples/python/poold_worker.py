"""A poold worker in Python, standard library only.

This module speaks poold's worker protocol, version 5, as docs/protocol.md
specifies it: a parent (poold, or a Go program embedding a pool) starts
the worker with pipes on its stdin and stdout, and the two exchange
length-prefixed msgpack frames. It holds a small msgpack encoder and
decoder of its own (nil, bool, integers of every width, float32 and
float64, str, bin, array, map, ext), so that it needs no package.

Use it by handing :func:`main` the functions to serve::

    import poold_worker

    def square(args):
        return args["x"] * args["x"]

    if __name__ == "__main__":
        poold_worker.main({"square": square})

and run it as ``poold --worker-cmd 'python3 myworker.py' tasks.json``.

Each function takes one argument, the task's arguments decoded (a dict for
the JSON object of a task file, or whatever msgpack value the parent sent)
and returns a value msgpack can encode: None, bool, int (-2**63 to
2**64-1), float, str, bytes, list or tuple, dict, ExtType. What it raises
fails that call alone, with kind "error", the exception's type name, its
message and the traceback; an exception with a ``kind`` attribute (a str)
chooses its kind, and one with a ``detail`` attribute adds that value.
What a function prints to stdout comes back with its result; what it
writes to stderr goes to the parent's log. A call that passes its task's
time limit fails with kind "timeout" and the worker lives on (the limit
is a SIGALRM timer: code deaf to signals is killed by the parent).
"""

import os
import select
import signal
import struct
import sys
import threading
import time

# json and traceback are imported where they are used: a worker starts
# faster without them, and needs them only to log and to fail.

__all__ = [
    "PROTOCOL_VERSION", "ExtType", "TaskFailure", "packb", "unpackb",
    "MsgpackError", "serve", "main",
]

PROTOCOL_VERSION = 5
PROGRAM = "poold_worker.py 0.1 (%s %s)" % (
    sys.implementation.name, ".".join(str(x) for x in sys.version_info[:3]))

DEFAULT_MAX_FRAME = 64 << 20   # bytes of a frame's body, either way
DEFAULT_MAX_OUTPUT = 4 << 20   # bytes of a task's stdout kept per call
MAX_DEPTH = 64                 # nested arrays and maps in a frame, its message array included
REPORT_EVERY_NS = 1_000_000    # finished calls of a chunk wait at most this long for a Result

KIND_HELLO, KIND_TASK, KIND_RESULT, KIND_CANCEL, KIND_SETUP = 1, 2, 3, 6, 7

EXIT_OK, EXIT_PROTOCOL, EXIT_INIT = 0, 3, 4

FATAL_PREFIX = "poold worker: fatal: "
MEMORY_PREFIX = "poold worker: memory limit: "

EXPLANATION = """poold_worker.py: this is a poold worker. A poold pool starts it
(poold --worker-cmd 'python3 worker.py' tasks.json) and speaks a binary
protocol with it on stdin and stdout; it does nothing useful on a terminal.
"""


# ---------------------------------------------------------------------------
# msgpack

class MsgpackError(ValueError):
    """Bytes that are not well-formed msgpack (or nest too deep)."""


class ExtType(tuple):
    """A msgpack ext value: its type code (-128 to 127) and its bytes."""

    def __new__(cls, code, data):
        if not -128 <= code <= 127:
            raise ValueError("ext type code %d out of range" % code)
        return tuple.__new__(cls, (code, bytes(data)))

    code = property(lambda self: self[0])
    data = property(lambda self: self[1])

    def __repr__(self):
        return "ExtType(%d, %r)" % self


class _Raw(bytes):
    """One value already encoded: packed as it is."""


def packb(obj, depth=MAX_DEPTH):
    """Encode obj as msgpack, integers in their shortest form, floats as
    float64, with at most depth levels of nested arrays and maps."""
    out = bytearray()
    _pack(obj, out, depth)
    return bytes(out)


def _pack_len(out, n, fix, fixmax, c16, c32):
    if n <= fixmax and fix is not None:
        out.append(fix | n)
    elif n <= 0xFFFF and c16 is not None:
        out += struct.pack(">BH", c16, n)
    elif n <= 0xFFFFFFFF:
        out += struct.pack(">BI", c32, n)
    else:
        raise ValueError("%d elements or bytes do not fit in msgpack" % n)


def _pack(obj, out, depth):
    if obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif isinstance(obj, int):
        if 0 <= obj <= 0x7F or -32 <= obj < 0:
            out += struct.pack(">b" if obj < 0 else ">B", obj)
        elif obj > 0:
            if obj <= 0xFF:
                out += struct.pack(">BB", 0xCC, obj)
            elif obj <= 0xFFFF:
                out += struct.pack(">BH", 0xCD, obj)
            elif obj <= 0xFFFFFFFF:
                out += struct.pack(">BI", 0xCE, obj)
            elif obj <= 0xFFFFFFFFFFFFFFFF:
                out += struct.pack(">BQ", 0xCF, obj)
            else:
                raise OverflowError("integer %d does not fit in 64 bits" % obj)
        elif obj >= -0x80:
            out += struct.pack(">Bb", 0xD0, obj)
        elif obj >= -0x8000:
            out += struct.pack(">Bh", 0xD1, obj)
        elif obj >= -0x80000000:
            out += struct.pack(">Bi", 0xD2, obj)
        elif obj >= -0x8000000000000000:
            out += struct.pack(">Bq", 0xD3, obj)
        else:
            raise OverflowError("integer %d does not fit in 64 bits" % obj)
    elif isinstance(obj, float):
        out += struct.pack(">Bd", 0xCB, obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8", "surrogateescape")
        if len(b) <= 31:
            out.append(0xA0 | len(b))
        elif len(b) <= 0xFF:
            out += struct.pack(">BB", 0xD9, len(b))
        else:
            _pack_len(out, len(b), None, -1, 0xDA, 0xDB)
        out += b
    elif isinstance(obj, _Raw):
        out += obj
    elif isinstance(obj, ExtType):
        code, data = obj
        n = len(data)
        fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        if n in fixed:
            out.append(fixed[n])
        elif n <= 0xFF:
            out += struct.pack(">BB", 0xC7, n)
        elif n <= 0xFFFF:
            out += struct.pack(">BH", 0xC8, n)
        else:
            out += struct.pack(">BI", 0xC9, n)
        out += struct.pack(">b", code)
        out += data
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        if len(b) <= 0xFF:
            out += struct.pack(">BB", 0xC4, len(b))
        else:
            _pack_len(out, len(b), None, -1, 0xC5, 0xC6)
        out += b
    elif isinstance(obj, (list, tuple)):
        if depth <= 0:
            raise ValueError("nested deeper than msgpack frames allow")
        _pack_len(out, len(obj), 0x90, 15, 0xDC, 0xDD)
        for x in obj:
            _pack(x, out, depth - 1)
    elif isinstance(obj, dict):
        if depth <= 0:
            raise ValueError("nested deeper than msgpack frames allow")
        _pack_len(out, len(obj), 0x80, 15, 0xDE, 0xDF)
        for k, v in obj.items():
            _pack(k, out, depth - 1)
            _pack(v, out, depth - 1)
    else:
        raise TypeError("a value of type %s cannot be encoded as msgpack"
                        % type(obj).__qualname__)


# The fixed-size codes: code → bytes after it.
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2,
          0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,
          0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
# Codes followed by a length of 1, 2 or 4 bytes, then that many bytes
# (ext: one more, its type).
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xD9: (1, 0), 0xDA: (2, 0),
          0xDB: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1)}
_LEN = {1: ">B", 2: ">H", 4: ">I"}


def _uint_at(b, off, width):
    if off + width > len(b):
        raise MsgpackError("truncated at byte %d" % off)
    return struct.unpack_from(_LEN[width], b, off)[0]


def skip(b, off=0, depth=MAX_DEPTH):
    """Check the msgpack value at b[off:] and return where it ends:
    every length within the bytes left, at most depth nested containers."""
    pending = [1]  # values still to read at each open level
    while True:
        while pending and pending[-1] == 0:
            pending.pop()
        if not pending:
            return off
        pending[-1] -= 1
        if off >= len(b):
            raise MsgpackError("truncated at byte %d" % off)
        c = b[off]
        off += 1
        count = -1
        if c <= 0x7F or c >= 0xE0 or 0xA0 <= c <= 0xBF:
            if 0xA0 <= c <= 0xBF:
                off += c & 0x1F
        elif c <= 0x8F:
            count = 2 * (c & 0x0F)
        elif c <= 0x9F:
            count = c & 0x0F
        elif c in _FIXED:
            off += _FIXED[c]
        elif c in _SIZED:
            width, extra = _SIZED[c]
            off += width + extra + _uint_at(b, off, width)
        elif c in (0xDC, 0xDD):
            width = 2 if c == 0xDC else 4
            count = _uint_at(b, off, width)
            off += width
        elif c in (0xDE, 0xDF):
            width = 2 if c == 0xDE else 4
            count = 2 * _uint_at(b, off, width)
            off += width
        else:
            raise MsgpackError("invalid code 0x%02x at byte %d" % (c, off - 1))
        if off > len(b):
            raise MsgpackError("a value at byte %d claims more bytes than remain" % off)
        if count >= 0:
            if count > len(b) - off:
                raise MsgpackError("byte %d claims %d elements, %d bytes remain" % (off, count, len(b) - off))
            if len(pending) > depth:
                raise MsgpackError("nested deeper than %d" % MAX_DEPTH)
            pending.append(count)


def unpackb(b):
    """Decode the one msgpack value b holds. Maps become dicts (a key that
    is an array becomes a tuple), str becomes str (bytes that are not
    UTF-8 kept as surrogates, so that they encode back as they came), bin
    becomes bytes, ext becomes ExtType."""
    end = skip(b)  # every bound checked before anything is built
    if end != len(b):
        raise MsgpackError("%d bytes after the value" % (len(b) - end))
    v, _ = _unpack(b, 0)
    return v


def _unpack(b, off):
    c = b[off]
    off += 1
    if c <= 0x7F:
        return c, off
    if c >= 0xE0:
        return c - 0x100, off
    if c <= 0x8F or c in (0xDE, 0xDF):
        if c <= 0x8F:
            n = c & 0x0F
        else:
            width = 2 if c == 0xDE else 4
            n, off = _uint_at(b, off, width), off + width
        d = {}
        for _ in range(n):
            k, off = _unpack(b, off)
            if isinstance(k, list):
                k = _freeze(k)
            elif isinstance(k, dict):
                raise TypeError("a map key that is a map has no Python equivalent")
            d[k], off = _unpack(b, off)
        return d, off
    if c <= 0x9F or c in (0xDC, 0xDD):
        if c <= 0x9F:
            n = c & 0x0F
        else:
            width = 2 if c == 0xDC else 4
            n, off = _uint_at(b, off, width), off + width
        a = []
        for _ in range(n):
            v, off = _unpack(b, off)
            a.append(v)
        return a, off
    if c <= 0xBF:
        n = c & 0x1F
        return bytes(b[off:off + n]).decode("utf-8", "surrogateescape"), off + n
    if c == 0xC0:
        return None, off
    if c in (0xC2, 0xC3):
        return c == 0xC3, off
    if c in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        width = _SIZED[c][0]
        n = _uint_at(b, off, width)
        off += width
        data = bytes(b[off:off + n])
        if c >= 0xD9:
            return data.decode("utf-8", "surrogateescape"), off + n
        return data, off + n
    if c in (0xC7, 0xC8, 0xC9):
        width = _SIZED[c][0]
        n = _uint_at(b, off, width)
        off += width
        code = struct.unpack_from(">b", b, off)[0]
        return ExtType(code, b[off + 1:off + 1 + n]), off + 1 + n
    if 0xD4 <= c <= 0xD8:
        n = 1 << (c - 0xD4)
        code = struct.unpack_from(">b", b, off)[0]
        return ExtType(code, b[off + 1:off + 1 + n]), off + 1 + n
    fmt = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
           0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}[c]
    return struct.unpack_from(fmt, b, off)[0], off + struct.calcsize(fmt)


def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        raise TypeError("a map key that holds a map has no Python equivalent")
    return v


class _Cursor:
    """Reads the fields of one frame's message, strictly typed."""

    def __init__(self, b):
        self.b, self.off = b, 0

    def _head(self, what):
        if self.off >= len(self.b):
            raise MsgpackError("%s: truncated" % what)
        c = self.b[self.off]
        self.off += 1
        return c

    def array_len(self, what):
        c = self._head(what)
        if 0x90 <= c <= 0x9F:
            n = c & 0x0F
        elif c in (0xDC, 0xDD):
            width = 2 if c == 0xDC else 4
            n = _uint_at(self.b, self.off, width)
            self.off += width
        else:
            raise MsgpackError("%s: want an array, got code 0x%02x" % (what, c))
        if n > len(self.b) - self.off:
            raise MsgpackError("%s: %d elements claimed in %d bytes" % (what, n, len(self.b) - self.off))
        return n

    def integer(self, what):
        c = self._head(what)
        if c <= 0x7F:
            return c
        if c >= 0xE0:
            return c - 0x100
        fmt = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
               0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}.get(c)
        if fmt is None:
            raise MsgpackError("%s: want an integer, got code 0x%02x" % (what, c))
        n = struct.calcsize(fmt)
        if self.off + n > len(self.b):
            raise MsgpackError("%s: truncated" % what)
        v = struct.unpack_from(fmt, self.b, self.off)[0]
        self.off += n
        return v

    def uint(self, what):
        v = self.integer(what)
        if v < 0:
            raise MsgpackError("%s: negative value %d" % (what, v))
        return v

    def int64(self, what):
        v = self.integer(what)
        if v >= 1 << 63:
            raise MsgpackError("%s: %d overflows int64" % (what, v))
        return v

    def boolean(self, what):
        c = self._head(what)
        if c not in (0xC2, 0xC3):
            raise MsgpackError("%s: want a bool, got code 0x%02x" % (what, c))
        return c == 0xC3

    def string(self, what):
        c = self._head(what)
        if 0xA0 <= c <= 0xBF:
            n = c & 0x1F
        elif c in (0xD9, 0xDA, 0xDB):
            width = _SIZED[c][0]
            n = _uint_at(self.b, self.off, width)
            self.off += width
        else:
            raise MsgpackError("%s: want a string, got code 0x%02x" % (what, c))
        if self.off + n > len(self.b):
            raise MsgpackError("%s: truncated" % what)
        s = bytes(self.b[self.off:self.off + n]).decode("utf-8", "surrogateescape")
        self.off += n
        return s

    def raw(self, what, open_levels):
        """The next value's bytes, checked, with open_levels containers
        around it in the frame."""
        try:
            end = skip(self.b, self.off, MAX_DEPTH - open_levels)
        except MsgpackError as e:
            raise MsgpackError("%s: %s" % (what, e)) from None
        v = bytes(self.b[self.off:end])
        self.off = end
        return v

    def done(self):
        if self.off != len(self.b):
            raise MsgpackError("%d bytes after the message" % (len(self.b) - self.off))


# ---------------------------------------------------------------------------
# The worker

class TaskFailure(Exception):
    """An error that chooses its kind ("rate_limited", say: [a-z][a-z0-9_]*)
    and may carry a detail value, as ``raise TaskFailure("rate_limited",
    "try later", detail={"after": 30})``."""

    def __init__(self, kind, message, detail=None):
        super().__init__(message)
        self.kind, self.detail = kind, detail


class _Timeout(BaseException):
    """A call passed its time limit (BaseException: `except Exception` in
    a task does not swallow it)."""


class _ProtocolError(Exception):
    """The parent's stream is broken: the worker exits non-zero."""


class _EOF(Exception):
    """The parent closed the worker's stdin between two frames."""


_ENV_MARKER_VARS = ("POOLD_WORKER", "POOLD_MAX_FRAME", "POOLD_MAX_OUTPUT", "POOLD_LOG_LEVEL",
                    "POOLD_INIT", "POOLD_INIT_ARGS", "POOLD_GOMAXPROCS", "POOLD_CONTROL_FD",
                    "POOLD_PROGRESS_FD")

_LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "warning": 3, "error": 4, "off": 9}


class _Worker:
    def __init__(self, functions, program):
        for name in functions:
            if not isinstance(name, str) or not name:
                raise ValueError("task names must be non-empty strings: %r" % (name,))
        self.functions = dict(functions)
        self.program = program or PROGRAM
        self.max_frame = DEFAULT_MAX_FRAME
        self.max_output = DEFAULT_MAX_OUTPUT
        self.level = _LEVELS["info"]
        self.buf = bytearray()  # bytes read from the parent, not yet used
        self.in_call = False

    # -- logs: hclog-style JSON lines on stderr, which the parent logs at
    # their level; plain lines for what the parent must recognise.

    def log(self, level, msg, **kv):
        if _LEVELS[level] < self.level:
            return
        import json
        entry = {"@level": level, "@message": msg, "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        entry.update(kv)
        self._stderr(json.dumps(entry, default=str))

    def _stderr(self, line):
        try:
            os.write(2, (line + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass

    # -- descriptors

    def take_stdio(self):
        """Moves the protocol off fds 0 and 1 onto private copies (not
        inherited by what a task starts), points fd 0 at /dev/null and fd 1
        at a capture file: nothing a task prints or reads can reach the
        protocol. Fd 2 stays the parent's pipe."""
        self.proto_in = os.dup(0)   # os.dup's copies are not inheritable
        self.proto_out = os.dup(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if hasattr(os, "memfd_create"):
            cap = os.memfd_create("poold-task-output")
        else:
            import tempfile
            cap, path = tempfile.mkstemp(prefix="poold-task-output-")
            os.unlink(path)
        # O_APPEND: after a truncation, writes start at 0 again whatever
        # the offset of fd 1 says.
        import fcntl
        fcntl.fcntl(cap, fcntl.F_SETFL, fcntl.fcntl(cap, fcntl.F_GETFL) | os.O_APPEND)
        os.dup2(cap, 1)
        self.capture = cap
        # What the program printed before it served, still in sys.stdout's
        # buffer, lands in the capture file now, not in the protocol: it
        # goes to stderr, being no call's.
        early = self.take_output()
        if early:
            os.write(2, early)

    def take_output(self):
        """What the call printed to fd 1 since the last take (at most
        max_output bytes, and a note of what was cut); None if nothing."""
        try:
            sys.stdout.flush()
        except Exception:
            pass
        n = os.fstat(self.capture).st_size
        if n == 0:
            return None
        keep = min(n, self.max_output)
        out = os.pread(self.capture, keep, 0)
        if n > keep:
            out += ("\n[poold: output truncated: %d of %d bytes kept]\n" % (keep, n)).encode()
        os.ftruncate(self.capture, 0)
        return out

    # -- frames

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = os.read(self.proto_in, min(max(n - len(self.buf), 64 << 10), 1 << 20))
            if not chunk:
                return None
            self.buf += chunk
        b = bytes(self.buf[:n])
        del self.buf[:n]
        return b

    def read_frame(self):
        """The next frame's body. _EOF at a clean end between frames; a
        _ProtocolError for anything else wrong."""
        hdr = self.read_exact(4)
        if hdr is None:
            if self.buf:
                raise _ProtocolError("the stream ended inside a frame header")
            raise _EOF()
        size = struct.unpack(">I", hdr)[0]
        if size > self.max_frame:
            # Refused before a byte of the body is read or allocated.
            raise _ProtocolError("frame of %d bytes, over the cap of %d" % (size, self.max_frame))
        body = self.read_exact(size)
        if body is None:
            raise _ProtocolError("the stream ended inside a frame of %d bytes" % size)
        return body

    def write_frame(self, body):
        if len(body) > self.max_frame:
            raise _ProtocolError("frame of %d bytes, over the cap of %d" % (len(body), self.max_frame))
        data = memoryview(struct.pack(">I", len(body)) + body)
        while data:
            n = os.write(self.proto_out, data)
            data = data[n:]

    def decode(self, body):
        """The message in body: (kind, fields)."""
        c = _Cursor(body)
        n = c.array_len("message")
        if n < 1:
            raise MsgpackError("empty message array")
        kind = c.uint("message kind")
        if kind == KIND_TASK:
            if n != 6:
                raise MsgpackError("task message with %d fields, want 6" % n)
            task_id = c.uint("id")
            if task_id >= 1 << 64:
                raise MsgpackError("id: %d overflows uint64" % task_id)
            func = c.string("func")
            timeout = c.int64("timeout")
            eager = c.boolean("eager")
            nargs = c.array_len("args")
            if nargs < 1:
                raise MsgpackError("task %d has no arguments" % task_id)
            args = [c.raw("argument", 2) for _ in range(nargs)]
            c.done()
            return kind, (task_id, func, timeout, eager, args)
        if kind == KIND_SETUP:
            if n != 9:
                raise MsgpackError("setup message with %d fields, want 9" % n)
            fields = (c.int64("max frame"), c.int64("max output"), c.string("log level"),
                      c.string("initializer"), c.raw("initializer arguments", 1),
                      c.int64("procs"), c.int64("max memory"), c.int64("memory interval"))
            c.done()
            return kind, fields
        if kind in (KIND_HELLO, KIND_RESULT, KIND_CANCEL):
            raise MsgpackError("a %s message, which a worker never reads on stdin"
                               % {KIND_HELLO: "hello", KIND_RESULT: "result", KIND_CANCEL: "cancel"}[kind])
        raise MsgpackError("unknown message kind %d" % kind)

    def hello(self, setup):
        return packb([KIND_HELLO, os.getpid(), PROTOCOL_VERSION, sorted(self.functions),
                      self.program, os.uname().nodename, os.cpu_count() or 0, setup])

    # -- calls

    def _on_alarm(self, signum, frame):
        if self.in_call:
            raise _Timeout()

    def _invoke(self, fn, arg, timeout_ns):
        self.in_call = True  # before the timer: an alarm is never lost
        try:
            if timeout_ns > 0:
                signal.setitimer(signal.ITIMER_REAL, timeout_ns / 1e9)
            return fn(arg)
        finally:
            self.in_call = False
            if timeout_ns > 0:
                signal.setitimer(signal.ITIMER_REAL, 0)

    def call(self, fn, raw, timeout_ns):
        """Runs one call: its item, as a list of the 8 fields."""
        start, cpu0 = time.time_ns(), time.process_time_ns()
        value = err = exc = result = None
        try:
            arg = unpackb(raw)
        except (TypeError, MsgpackError) as e:  # a map key Python cannot hold
            err = ["bad_args", "the arguments have no Python equivalent: %s" % e, "", _type_name(e), None]
        else:
            try:
                result = self._invoke(fn, arg, timeout_ns)
            except BaseException as e:  # the call fails alone; the worker lives on
                exc = e
        end, cpu = time.time_ns(), time.process_time_ns() - cpu0
        if exc is not None:
            # Formatted once the call's time is taken: the traceback's
            # first import costs milliseconds that are not the call's.
            err = _error_of(exc)
            if isinstance(exc, _Timeout):
                err[0], err[1], err[3] = "timeout", "time limit of %gs passed" % (timeout_ns / 1e9), ""
        elif err is None:
            try:
                value = _Raw(packb(result, MAX_DEPTH - 3))
            except (TypeError, ValueError, OverflowError) as e:
                err = ["encode", "the result cannot be encoded as msgpack: %s" % e, "", _type_name(e), None]
        return [err is None, value, err, self.take_output(), start, end, cpu, _max_rss()]

    def run_job(self, task_id, func, timeout, eager, args):
        fn = self.functions.get(func)
        items, first = [], 0
        last_write = time.monotonic_ns()
        for i, raw in enumerate(args):
            # Finished calls go out before the next call starts: always for
            # an eager task, else once a while has passed since the last
            # Result, so that a worker that dies loses little.
            now = time.monotonic_ns()
            if items and (eager or now - last_write >= REPORT_EVERY_NS):
                self.write_result(task_id, first, items)
                first, items, last_write = i, [], now
            if fn is None:
                now_ns = time.time_ns()
                items.append([False, None, ["unknown_func", "no task named %r; this worker knows %s"
                                            % (func, ", ".join(sorted(self.functions))), "", "", None],
                              None, now_ns, now_ns, 0, 0])
            else:
                items.append(self.call(fn, raw, timeout))
        self.write_result(task_id, first, items)

    def write_result(self, task_id, first, items):
        """Writes the items of calls first, first+1, ... in as few Result
        frames as fit under the cap; an item too large for a frame of its
        own fails with kind result_too_large (its times kept)."""
        room = self.max_frame - 64  # the message's other fields take less
        encoded = []
        for it in items:
            e = self._item(it)
            if len(e) > room:
                e = self._item([False, None, ["result_too_large",
                    "result of %d bytes does not fit in a frame of at most %d bytes"
                    % (len(e), self.max_frame), "", "", None], None] + it[4:])
            encoded.append(e)
        i = 0
        while i < len(encoded):
            size, j = 0, i
            while j < len(encoded) and (j == i or size + len(encoded[j]) <= room):
                size += len(encoded[j])
                j += 1
            body = bytearray([0x94])  # [3, id, from, [items...]]
            body += packb(KIND_RESULT) + packb(task_id) + packb(first + i)
            _pack_len(body, j - i, 0x90, 15, 0xDC, 0xDD)
            for e in encoded[i:j]:
                body += e
            self.write_frame(bytes(body))
            i = j

    @staticmethod
    def _item(it):
        try:
            return packb(it)
        except (TypeError, ValueError, OverflowError) as e:  # a detail that cannot be encoded
            it = list(it)
            it[2] = list(it[2])
            it[2][4] = None
            it[2][1] += " (its detail could not be encoded: %s)" % e
            return packb(it)

    # -- the process

    def run(self):
        if os.isatty(0):
            sys.stderr.write(EXPLANATION)
            return 1
        try:
            os.setpgid(0, 0)  # a group of its own, to end with what its tasks start
        except OSError:
            pass  # a session leader leads its group already
        # The env-marker mode's settings (docs/protocol.md §15) are not
        # this worker's, and must not make a task's child believe it is one.
        for name in _ENV_MARKER_VARS:
            os.environ.pop(name, None)
        self.take_stdio()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        signal.signal(signal.SIGTERM, _end_group)
        signal.signal(signal.SIGALRM, self._on_alarm)
        threading.Thread(target=_end_with_reader, args=(self.proto_out,), daemon=True).start()
        try:
            return self.serve()
        except BrokenPipeError:
            return 0  # the parent is gone: nobody reads results

    def serve(self):
        # The handshake: a hello asking for a setup, the parent's Setup, the
        # initializer, then the hello that says the worker is ready.
        self.write_frame(self.hello(True))
        try:
            kind, setup = self.decode(self.read_frame())
            if kind != KIND_SETUP:
                raise _ProtocolError("a task instead of the setup")
        except _EOF:
            return EXIT_OK  # the parent wanted the hello alone (its CPU count)
        except (_ProtocolError, MsgpackError) as e:
            self._stderr("poold worker: setup failed: %s" % e)
            return EXIT_PROTOCOL
        self.apply_setup(*setup)
        err = self.initialize()
        if err:
            self._stderr("poold worker: initializer failed: %s" % err)
            return EXIT_INIT
        self.write_frame(self.hello(False))
        self.log("debug", "worker ready", tasks=len(self.functions))
        while True:
            try:
                kind, task = self.decode(self.read_frame())
                if kind != KIND_TASK:
                    raise _ProtocolError("a setup message after the handshake")
            except _EOF:
                return EXIT_OK  # the parent closed our input: every task was answered
            except (_ProtocolError, MsgpackError) as e:
                self._stderr("poold worker: bad frame from the parent; exiting: %s" % e)
                return EXIT_PROTOCOL
            self.run_job(*task)

    def apply_setup(self, max_frame, max_output, log_level, init, init_args, procs, max_memory, interval):
        if max_frame > 0:
            self.max_frame = min(max_frame, 0xFFFFFFFF)
        if max_output > 0:
            self.max_output = max_output
        if log_level:
            self.level = _LEVELS.get(log_level.lower(), self.level)
        self.init, self.init_args = init, init_args
        # procs (the parent's GOMAXPROCS for Go workers) means nothing here.
        if max_memory > 0:
            every = interval / 1e9 if interval > 0 else 0.05
            threading.Thread(target=_limit_memory, args=(max_memory, every), daemon=True).start()

    def initialize(self):
        """Runs the setup's initializer: None, or why it failed."""
        if not self.init:
            return None
        fn = self.functions.get(self.init)
        if fn is None:
            return "no task named %r; this worker knows %s" % (self.init, ", ".join(sorted(self.functions)))
        it = self.call(fn, self.init_args, 0)
        if not it[0]:
            return "%s: %s" % (it[2][0], it[2][1])
        return None


def _type_name(e):
    t = type(e)
    if t.__module__ in ("builtins", "__main__"):
        return t.__qualname__
    return "%s.%s" % (t.__module__, t.__qualname__)


def _error_of(e):
    """The error field of a call that raised e: its kind (the exception's
    kind attribute, or "error"), message, traceback from the task's own
    frames on, type name and detail."""
    import traceback
    kind = getattr(e, "kind", None)
    if not isinstance(kind, str) or not kind:
        kind = "error"
    detail = getattr(e, "detail", None)
    if detail is not None:
        try:
            detail = _Raw(packb(detail, MAX_DEPTH - 4))
        except (TypeError, ValueError, OverflowError):
            detail = None
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # this module's frames (call, _invoke) are no help
    stack = "".join(traceback.format_exception(type(e), e, tb))
    return [kind, str(e) or type(e).__name__, stack, _type_name(e), detail]


def _max_rss():
    try:
        import resource
    except ImportError:
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux and the BSDs say KiB


def _kill_group():
    """Ends the worker and what its tasks started: its process group, if
    it leads one (else only itself)."""
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _end_group(signum, frame):
    _kill_group()


def _end_with_reader(fd):
    """Ends the group once the protocol's stdout has no reader left (the
    parent died): poll reports POLLERR on a pipe whose other end is closed,
    without a write."""
    p = select.poll()
    p.register(fd, 0)
    while True:
        try:
            events = p.poll()
        except InterruptedError:
            continue
        except OSError:
            return
        if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in events):
            _kill_group()
            return
        if any(ev & select.POLLNVAL for _, ev in events):
            return


def _rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _max_rss()  # not Linux: the peak, which is at least as much


def _limit_memory(limit, every):
    """Ends the worker once its resident memory passes limit, saying so
    on stderr first: the parent blames the task that ran."""
    while True:
        time.sleep(every)
        rss = _rss()
        if rss > limit:
            line = "%sresident memory reached %.1f MiB, over the limit of %.1f MiB\n" % (
                MEMORY_PREFIX, rss / (1 << 20), limit / (1 << 20))
            try:
                os.write(2, line.encode())
            except OSError:
                pass
            _kill_group()


def serve(functions, program=None):
    """Serves functions (a dict of name → callable taking the decoded
    arguments) as a poold worker on this process's stdin and stdout, and
    returns the exit status: 0 once the parent has closed stdin, 3 for a
    broken stream, 4 for a failed initializer, 1 on a terminal."""
    return _Worker(functions, program).run()


def main(functions, program=None):
    """serve, then exit with its status."""
    sys.exit(serve(functions, program))
