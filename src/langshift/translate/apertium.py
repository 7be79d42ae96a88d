"""Apertium (rule-based MT) as a translator and as the source of an English tagger.

Everything is batched through apertium's null-flush mode (``-z``): items are written to ONE
subprocess pipeline, each ended by a NUL byte; every stage flushes at a NUL, so the output splits
back on NUL one-to-one. Words go through the morphological analyser (+ tagger when no tag
is given), the bilingual transducer and the generator, so inflection survives:
``books`` → ``^book<n><pl>$`` → ``libro<n><m><pl>`` → ``libros``. Sentences go through the pair's
whole mode (``apertium -f none -z -u PAIR``), with apertium's stream characters escaped.

Caveat: apertium-tagger does NOT fully reset at a NUL (an earlier item can change a later item's tags,
e.g. a preceding "till" turns "he called" from past into participle), so a call's tags depend on the
other items of that call, and a tagger stage always gets a fresh process per call: the tags are then a
function of the call's items alone, whatever ran before. The stateless transducer stages (lt-proc
analysis, bilingual look-up, generation) instead stay running between calls (``run(..., keep=N)``), the
analysis passing its output on to a fresh tagger: MIGRATE tags and translates batch after batch, and
starting lt-proc (~25 ms of CPU to load a transducer) each time cost more than its look-ups. The
whole-pair mode is started per call too: some of its transfer stages only flush at the end of input.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError, LangshiftError, MissingDependencyError
from .base import TRANSLATORS, Translator

DEFAULT_DATA_DIR = "/usr/share/apertium"
INSTALL = "apt-get install apertium apertium-eng-spa (or the apertium-<pair> package for your languages)"
_BATCH = 20000  # items per subprocess call: bounds memory, keeps the progress bar moving
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


# --- 2. Finding installed pairs and their files ---------------------------------------------------

def _code3(lang: str) -> set[str]:
    """The spellings of a language code apertium may use (``en`` and ``eng``)."""
    import langcodes

    forms = {lang}
    try:
        tag = langcodes.Language.get(lang)
        forms |= {tag.language or lang, tag.to_alpha3()}
    except (LookupError, ValueError):
        pass
    return {f.lower() for f in forms if f}


def _failure(what: str, code: int | None, stderr: bytes, cmd: str) -> LangshiftError:
    return LangshiftError(f"apertium pipeline {what} (exit {code}): {stderr.decode('utf-8', 'replace')[-500:]}\n"
                          f"command: {cmd}")


def _payload(items: list[str]) -> bytes:
    return "".join(p.replace("\0", " ") + "\0" for p in items).encode("utf-8")


def _command(stages: list[list[str]], tool) -> str:
    return " | ".join(" ".join(shlex.quote(a) for a in [tool(s[0]), *s[1:]]) for s in stages)


def _run_fresh(cmd: str, feed: Callable[[Callable[[bytes], object]], object], n: int) -> list[str]:
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


def _write_all(payload: bytes, write: Callable[[bytes], object]) -> None:
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
        writer = threading.Thread(target=self._write, args=(payload + _payload([sentinel]), failed),
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


def installed_pairs(data_dir: str | os.PathLike = DEFAULT_DATA_DIR) -> list[str]:
    modes = Path(data_dir) / "modes"
    return sorted(p.stem for p in modes.glob("*.mode")) if modes.is_dir() else []


@dataclass
class ApertiumPair:
    """One installed pair: its mode name and the transducer files its mode file names."""

    pair: str
    data_dir: Path
    bin_dir: str | None = None
    _pipes: dict[str, KeptPipeline] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def find(cls, source_lang: str, target_lang: str, data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
             bin_dir: str | None = None, param: str = "source_lang/target_lang") -> ApertiumPair:
        pairs = installed_pairs(data_dir)
        if not pairs:
            raise MissingDependencyError(f"no apertium language pairs under {data_dir}/modes. Install with: {INSTALL}")
        source_forms, target_forms = _code3(source_lang), _code3(target_lang)
        for name in pairs:
            parts = name.split("-")
            if len(parts) == 2 and parts[0] in source_forms and parts[1] in target_forms:
                return cls(name, Path(data_dir), bin_dir)
        raise ConfigError(param, f"{source_lang}-{target_lang}", f"apertium has no such installed pair; installed pairs: "
                                                 f"{', '.join(pairs)} (more: apt-get install apertium-<pair>)")

    @cached_property
    def mode_text(self) -> str:
        return (self.data_dir / "modes" / f"{self.pair}.mode").read_text(encoding="utf-8")

    def file(self, suffix: str) -> str:
        """The path in the mode file ending in ``suffix`` (e.g. ``.autobil.bin``)."""
        for path in re.findall(r"'([^']+)'", self.mode_text) + self.mode_text.split():
            if path.endswith(suffix) and not path.endswith("_" + suffix.lstrip(".")):
                return path
        # files the mode does not name (a tagger-less mode) may still sit next to the ones it does
        named = re.findall(r"'([^']+\.bin)'", self.mode_text)
        if named:
            guess = Path(named[0]).parent / f"{self.pair}{suffix}"
            if guess.exists():
                return str(guess)
        raise LangshiftError(f"apertium pair {self.pair!r} has no {suffix} file; reinstall apertium-{self.pair}")

    def tool(self, name: str) -> str:
        found = shutil.which(name, path=self.bin_dir) if self.bin_dir else shutil.which(name)
        if not found:
            where = f" in {self.bin_dir}" if self.bin_dir else ""
            raise MissingDependencyError(f"the apertium program {name!r} was not found{where}. Install with: {INSTALL}")
        return found

    # --- 3. Running a pipeline over many items ------------------------------------------------------

    def run(self, stages: list[list[str]], items: list[str], desc: str = "apertium", keep: int = 0) -> list[str]:
        """Feed ``items`` (already in stream format) through ``stages``; one output string per item.
        The first ``keep`` stages (stateless ones only) run in this pair's pipeline kept between calls;
        the others in a fresh process per call."""
        if not items:
            return []
        kept_cmd = _command(stages[:keep], self.tool) if keep else None
        fresh_cmd = _command(stages[keep:], self.tool) if keep < len(stages) else None
        out: list[str] = []
        starts = range(0, len(items), _BATCH)
        for start in tqdm(starts, desc=desc, disable=len(items) <= _BATCH, unit="batch"):
            part = items[start:start + _BATCH]
            payload, n = _payload(part), len(part)
            if fresh_cmd is None:  # all kept
                raw = self._kept(kept_cmd).process(payload, n)
                out.extend(raw.decode("utf-8", "replace").split("\0")[:n])
            elif kept_cmd is None:  # all fresh
                out.extend(_run_fresh(fresh_cmd, partial(_write_all, payload), n))
            else:  # the kept stages stream their output into the fresh ones
                out.extend(_run_fresh(fresh_cmd, partial(self._kept(kept_cmd).process, payload, n), n))
        return out

    def _kept(self, cmd: str) -> KeptPipeline:
        with self._lock:
            pipe = self._pipes.get(cmd)
            if pipe is None or not pipe.usable():
                pipe = self._pipes[cmd] = KeptPipeline(cmd)
            return pipe

    def close(self) -> None:
        """Stop this pair's kept pipelines (they also stop when the pair is garbage-collected)."""
        with self._lock:
            for pipe in self._pipes.values():
                pipe.stop()
            self._pipes.clear()

    def __getstate__(self) -> dict:
        # a copy in another process starts its own pipelines
        return {k: v for k, v in self.__dict__.items() if k not in ("_pipes", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _pipes={}, _lock=threading.Lock())

    def analyse_stage(self) -> list[str]:
        return ["lt-proc", "-z", "-w", self.file(".automorf.bin")]

    def tagger_stage(self) -> list[str]:
        return ["apertium-tagger", "-z", "-g", self.file(".prob")]


# --- 4. Words: analyse (and tag), translate lemma+tags, generate the inflected form -----------------

# Penn tag → apertium categories that may carry it, and the number it implies
_PENN_CLASSES = {
    "NN": (("n",), "sg"), "NNS": (("n",), "pl"), "NNP": (("np", "n"), "sg"), "NNPS": (("np", "n"), "pl"),
    "JJ": (("adj",), None), "JJR": (("adj",), None), "JJS": (("adj",), None),
    "RB": (("adv", "preadv"), None), "RBR": (("adv",), None), "RBS": (("adv",), None),
    "MD": (("vaux", "vbmod"), None), "CD": (("num",), None), "IN": (("pr", "cnjsub"), None),
    "TO": (("pr",), None), "DT": (("det",), None), "PRP": (("prn",), None), "PRP$": (("det", "prn"), None),
    "CC": (("cnjcoo",), None), "UH": (("ij",), None),
    **{t: (("vblex", "vbser", "vbhaver", "vbdo", "vbmod", "vaux"), None)
       for t in ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ")},
}
_GENDERS = ("m", "f", "mf", "nt", "ut", "n")


def pick_analysis(readings: list[str], penn: str) -> str | None:
    """The reading of a word that fits its Penn tag (category, then number); None if none fits."""
    classes, number = _PENN_CLASSES.get(penn, ((), None))
    best, best_score = None, -1
    for reading in readings:
        lemma, tags = lemma_tags(reading)
        if not tags or tags[0] not in classes:
            continue
        score = (len(classes) - classes.index(tags[0])) * 4
        if number is not None and (number in tags or "sp" in tags):
            score += 2
        if score > best_score:
            best, best_score = reading, score
    return best


def match_case(source: str, target: str) -> str:
    """Title-case in → Title-case out, UPPER in → UPPER out, otherwise the target as generated."""
    if len(source) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper() and target[:1].islower():
        return target[:1].upper() + target[1:]
    return target


def translate_words(pair: ApertiumPair, gen_pair_file: str, words: list[str],
                    tags: list[str] | None) -> list[str | None]:
    # 4a. analysis input: an all-caps word is looked up lower-cased (the analyser would call it unknown)
    probe = [w.lower() if len(w) > 1 and w.isupper() else w for w in words]
    stages = [pair.analyse_stage()] if tags is not None else [pair.analyse_stage(), pair.tagger_stage()]
    # the analyser is kept running; the tagger, which carries state, is fresh per call (see the module note)
    analysed = pair.run(stages, [escape(w) for w in probe], desc="apertium analyse", keep=1)
    chosen: list[str | None] = []
    for i, chunk in enumerate(analysed):
        lus = [c for kind, c in stream_tokens(chunk) if kind == "lu"]
        if len(lus) != 1:  # empty, or the word splits into several units (John's → John + 's): skip
            chosen.append(None)
            continue
        parts = split_unescaped(lus[0], "/")
        if tags is None:  # tagger output: one reading, "*word" when unknown
            chosen.append(None if parts[0].startswith("*") else parts[0])
        else:  # analyser output: surface/reading1/reading2...
            readings = [p for p in parts[1:] if not p.startswith("*")]
            chosen.append(pick_analysis(readings, tags[i]))
    # 4b. bilingual transducer: lemma<tags> → target lemma<tags> (first = default sense)
    todo = [i for i, a in enumerate(chosen) if a is not None]
    bil = pair.run([["lt-proc", "-z", "-b", pair.file(".autobil.bin")]],
                   [f"^{chosen[i]}$" for i in todo], desc="apertium bilingual", keep=1)
    target: dict[int, str] = {}
    for i, chunk in zip(todo, bil, strict=True):
        lus = [c for kind, c in stream_tokens(chunk) if kind == "lu"]
        parts = split_unescaped(lus[0], "/") if len(lus) == 1 else []
        if len(parts) >= 2 and not parts[1].startswith("@") and parts[1].strip():
            target[i] = parts[1]
    # 4c. generation; an unresolved gender/number (<GD>/<ND>, normally fixed by transfer rules) is
    # retried dropped (the tag may repeat one already there: tiempo<n><m><ND><sg>), then with the source
    # number and each gender the generator may know
    out: list[str | None] = [None] * len(words)
    pending: dict[int, list[str]] = {}
    for i, t in target.items():
        number = next((n for n in ("sg", "pl") if f"<{n}>" in (chosen[i] or "")), "sg")
        nd_opts = ["", f"<{number}>"] if "<ND>" in t else ["<ND>"]
        gd_opts = ["", *(f"<{g}>" for g in _GENDERS)] if "<GD>" in t else ["<GD>"]
        pending[i] = [t] + [t.replace("<ND>", nd).replace("<GD>", gd) for nd in nd_opts for gd in gd_opts]
    flat = [(i, cand) for i, cands in pending.items() for cand in dict.fromkeys(cands)]
    generated = pair.run([["lt-proc", "-z", "-g", gen_pair_file]], [f"^{c}$" for _, c in flat],
                         desc="apertium generate", keep=1)
    for (i, _), form in zip(flat, generated, strict=True):
        form = unescape(form).replace("~", "").strip()
        if out[i] is None and form and not form.startswith(("#", "@", "*")):
            out[i] = match_case(words[i], form)
    return out


def translate_sentences(pair: ApertiumPair, sentences: list[str]) -> list[str | None]:
    # a newline inside an item would be kept by apertium; the item is one line of text
    items = [escape(" ".join(s.split())) + "\n" for s in sentences]
    stages = [["apertium", "-f", "none", "-z", "-u", "-d", str(pair.data_dir), pair.pair]]
    outs = pair.run(stages, items, desc="apertium translate")
    return [unescape(o).strip() or None if s.strip() else s for s, o in zip(sentences, outs, strict=True)]


@TRANSLATORS.register("apertium")
class ApertiumTranslator(Translator):
    """Rule-based apertium pair; words keep their inflection and case (needs apertium-<pair>)."""

    name = "apertium"

    def __init__(self, source_lang: str, target_lang: str, data_dir: str = DEFAULT_DATA_DIR, bin_dir: str | None = None):
        super().__init__(source_lang, target_lang)
        self.pair = ApertiumPair.find(source_lang, target_lang, data_dir, bin_dir)
        self.pair.tool("lt-proc")  # fail now, not at the first batch, when apertium is missing
        self.pair.tool("apertium")

    def options(self) -> dict:
        return {"pair": self.pair.pair}

    def translate_words(self, words: list[str], tags: list[str] | None = None) -> list[str | None]:
        return translate_words(self.pair, self.pair.file(".autogen.bin"), words, tags)

    def translate_sentences(self, sentences: list[str]) -> list[str | None]:
        return translate_sentences(self.pair, sentences)

    def close(self) -> None:
        """Stop the word pipelines kept between calls (a later call starts them again)."""
        self.pair.close()
