"""Apertium's stream format and the subprocess pipelines that carry it (``apertium.py`` uses both).

Items are written to one pipeline in null-flush mode (``-z``), each ended by a NUL byte, and read back
split on NUL. A stateless transducer pipeline may stay running between calls (``KeptPipeline``); one with
a tagger or the whole-pair mode is started per call (``run_fresh``).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import signal
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence

from ..errors import LangshiftError

_SPECIAL = "\\[]^$/@<>{}#*+~"
_STALL_SECONDS = 300  # a kept pipeline that sends nothing for this long has lost an item: fail, don't hang


# --- 1. The stream format -------------------------------------------------------------------------

_ESCAPES = str.maketrans({c: "\\" + c for c in _SPECIAL})
_UNESCAPE = re.compile(r"\\(.)", re.S)


def escape(text: str) -> str:
    """Make raw text safe inside an apertium stream (backslash before its special characters)."""
    return text.translate(_ESCAPES)


def escape_words(words: Sequence[str], sep: str) -> str:
    """``sep.join(escape(w) for w in words)``, escaping the whole line at once when no word has a space."""
    line = " ".join(words)
    if line.count(" ") != len(words) - 1:
        return sep.join(map(escape, words))
    return line.translate(_ESCAPES).replace(" ", sep)


def unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text) if "\\" in text else text


_TOKEN = re.compile(r"\^((?:\\.|[^\\$])*)\$|\[((?:\\.|[^\\\]])*)\]|((?:\\.|[^\\^\[])+)", re.S)
_KINDS = (None, "lu", "superblank", "text")
# the same split for hot loops: findall gives ("^unit$", "") / ("", "[blank]") / ("", "") for text
UNITS = re.compile(r"(\^(?:\\.|[^\\$])*\$)|(\[(?:\\.|[^\\\]])*\])|(?:\\.|[^\\^\[])+", re.S)


def stream_tokens(chunk: str) -> list[tuple[str, str]]:
    """Split one stream chunk into ("lu", content) / ("superblank", content) / ("text", content) pieces."""
    return [(_KINDS[m.lastindex], m.group(m.lastindex)) for m in _TOKEN.finditer(chunk)]


_FIELDS: dict[str, re.Pattern] = {}


def split_unescaped(text: str, sep: str) -> list[str]:
    """``text`` split at each ``sep`` that no backslash escapes (the escapes are kept in the parts)."""
    if "\\" not in text:
        return text.split(sep)
    # one field: escaped pairs, a lone final backslash, or any character but a backslash or sep
    field_re = _FIELDS.get(sep) or _FIELDS.setdefault(sep, re.compile(
        r"(?:\\.|\\\Z|[^\\" + re.escape(sep) + "])*", re.S))
    parts, pos, end = [], 0, len(text)
    while True:
        m = field_re.match(text, pos)
        parts.append(m.group())
        pos = m.end()
        if pos >= end:
            return parts
        pos += 1  # text[pos] is an unescaped sep: the only thing a field stops at before the end


def lemma_tags(analysis: str) -> tuple[str, list[str]]:
    """``book<n><pl>`` → ("book", ["n", "pl"]); the first part of a ``+``-joined analysis."""
    first = split_unescaped(analysis, "+")[0]
    m = _READING.match(first)
    return unescape(m.group(1)), _TAG.findall(m.group(2))


_READING = re.compile(r"((?:\\.|[^\\<])*)((?:<[^>]*>)*)(.*)$", re.S)
_TAG = re.compile(r"<([^>]*)>")


# --- 2. Running pipelines ------------------------------------------------------------------------

def _failure(what: str, code: int | None, stderr: bytes, cmd: str) -> LangshiftError:
    return LangshiftError(f"apertium pipeline {what} (exit {code}): {stderr.decode('utf-8', 'replace')[-500:]}\n"
                          f"command: {cmd}")


def nul_payload(items: list[str]) -> bytes:
    return "".join(p.replace("\0", " ") + "\0" for p in items).encode("utf-8")


def pipeline_command(stages: list[list[str]], tool) -> str:
    return " | ".join(" ".join(shlex.quote(a) for a in [tool(s[0]), *s[1:]]) for s in stages)


def run_fresh(cmd: str, feed: Callable[[Callable[[bytes], object]], object], n: int) -> list[str]:
    """A fresh pipeline, ended by end of input, for the ``n`` NUL-ended items that ``feed(write)`` writes
    (while the pipeline runs, so a feeding kept pipeline and this one work at the same time)."""
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    got: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda k=k, f=f: got.__setitem__(k, f.read()), daemon=True)
               for k, f in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    try:
        feed(proc.stdin.write)
    except BrokenPipeError:
        pass  # the pipeline died: its exit status and stderr say why, below
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        for r in readers:
            r.join()
        proc.wait()
    if proc.returncode != 0:
        raise _failure("failed", proc.returncode, got.get("err", b""), cmd)
    pieces = got["out"].decode("utf-8", "replace").split("\0")
    # every stage flushes at NUL, so trailing empty flushes follow the real outputs
    if len(pieces) < n or any(p.strip() for p in pieces[n:]):
        raise LangshiftError(f"apertium returned {len(pieces)} pieces for {n} items; "
                             "the null-flush pipeline lost alignment")
    return pieces[:n]


def write_all(payload: bytes, write: Callable[[bytes], object]) -> None:
    write(payload)


def _nth(data: bytes, byte: bytes, k: int) -> int:
    """Index of the ``k``-th (1-based) occurrence of ``byte`` in ``data``."""
    at = -1
    for _ in range(k):
        at = data.index(byte, at + 1)
    return at


def _stop(proc: subprocess.Popen, owner: int, force: bool = False) -> None:
    """End of input, then wait; ``force`` (or no exit within 10 s): kill the pipeline's whole process group."""
    if os.getpid() != owner:  # a forked copy must leave its parent's processes alone
        return
    if force:
        _kill_group(proc)
    for pipe in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            pipe.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()


def _kill_group(proc: subprocess.Popen) -> None:
    # each pipeline runs in its own session: killing the group also ends the stages bash started
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class KeptPipeline:
    """A shell pipeline of null-flush stages kept running: each batch is written, then read back up to its
    last NUL. A superblank sentinel item ends every batch and must come back as the batch's last output,
    so an item lost or split by a stage is an error rather than a silent shift of every later output."""

    def __init__(self, cmd: str):
        self.cmd, self.owner, self.batches = cmd, os.getpid(), 0
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, start_new_session=True)
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop, self.proc, self.owner)

    def usable(self) -> bool:
        return os.getpid() == self.owner and self.proc.poll() is None

    def stop(self) -> None:
        self._finalizer()

    def abort(self) -> None:
        """Kill the pipeline at once (its state is unknown after an error); the pair starts a new one."""
        if self._finalizer.detach() is not None:
            _stop(self.proc, self.owner, force=True)

    def process(self, payload: bytes, n: int, sink: Callable[[bytes], object] | None = None) -> bytes:
        """The outputs of the ``n`` NUL-ended items of ``payload``, each ended by its NUL; with ``sink``,
        they are passed to it as they arrive instead (and b"" is returned)."""
        with self._lock:
            try:
                return self._exchange(payload, n, sink)
            except BaseException:
                self.abort()
                raise

    def _exchange(self, payload: bytes, n: int, sink: Callable[[bytes], object] | None) -> bytes:
        self.batches += 1
        sentinel = f"[langshift-sync-{self.batches}]"
        want = n + 1
        # 1. write from a thread: the pipeline's output must be read while a large batch goes in
        failed: list[BaseException] = []
        writer = threading.Thread(target=self._write, args=(payload + nul_payload([sentinel]), failed),
                                  daemon=True)
        writer.start()
        # 2. read until the sentinel's NUL
        chunks, nuls, fd = [], 0, self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while nuls < want:
                if not sel.select(_STALL_SECONDS):  # (process() then kills the pipeline)
                    raise LangshiftError(f"apertium pipeline sent nothing for {_STALL_SECONDS} s with "
                                         f"{want - nuls} outputs missing; stopped it\ncommand: {self.cmd}")
                data = os.read(fd, 1 << 16)
                if not data:
                    writer.join(timeout=10)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(timeout=10)
                    self.stderr.seek(0)
                    raise _failure("ended early", self.proc.returncode, self.stderr.read(), self.cmd)
                chunks.append(data)
                if sink is not None and nuls < n:  # pass on what belongs to the items, not the sentinel
                    k = data.count(b"\0")
                    sink(data if nuls + k <= n else data[:_nth(data, b"\0", n - nuls) + 1])
                nuls += data.count(b"\0")
        writer.join()
        raw = b"".join(chunks)
        # 3. exactly one output per item, the sentinel last, nothing after it
        body, _, last = raw[:-1].rpartition(b"\0") if n else (b"", b"", raw[:-1])
        if nuls != want or not raw.endswith(b"\0") or last.strip() != sentinel.encode() or failed:
            raise LangshiftError(f"apertium returned {nuls} outputs for {want} items (sentinel "
                                 f"{'found' if sentinel.encode() in raw else 'lost'}); the null-flush "
                                 f"pipeline lost alignment\ncommand: {self.cmd}")
        return b"" if sink is not None or not n else body + b"\0"

    def _write(self, payload: bytes, failed: list[BaseException]) -> None:
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:  # the pipeline died or was stopped; the reader reports why
            failed.append(exc)
