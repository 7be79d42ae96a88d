"""What MIGRATE and SynCS share: sentence records with spans, splicing, budgets, quotas, JSONL output.

A code-switched sentence is the original with some spans replaced (or followed by an annotation);
everything outside the spans stays byte-identical, and every edit is recorded with its offsets in
the original, so an output line can always be traced back.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..config import StageConfig, opt
from ..errors import ConfigError
from ..files import atomic_write_json, check_out_dir, read_lines

TYPES = ("token-repl", "token-annt", "sent-repl", "sent-annt")


@dataclass
class Edit:
    """One replaced or annotated span: offsets [start, end) in the original sentence."""
    start: int
    end: int
    source: str
    translation: str
    tag: str | None = None


@dataclass
class Record:
    doc: int                      # 0-based index of the input document (line)
    index: int                    # sentence number inside the document
    original: str
    text: str
    replacements: list[Edit] = field(default_factory=list)
    type: str | None = None       # SynCS type, or "noun-repl" for MIGRATE; None = unchanged
    new_tokens: int = 0           # SynCS: tokens of inserted translations
    sep: str = ""                 # text between the previous sentence and this one in the document

    @property
    def id(self) -> str:
        return f"{self.doc}.{self.index}"

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "original": self.original, "text": self.text,
               "replacements": [asdict(e) for e in self.replacements]}
        if self.type is not None or self.new_tokens:
            out["type"] = self.type
            out["new_tokens"] = self.new_tokens
        return out


# 1. Splicing -----------------------------------------------------------------------------------

def splice(original: str, pieces: Sequence[tuple[int, int, str]]) -> str:
    """``original`` with each [start, end) replaced by its new text; the rest is copied unchanged."""
    out, pos = [], 0
    for start, end, new in sorted(pieces):
        if start < pos or end < start or end > len(original):
            raise ValueError(f"overlapping or out-of-range span ({start}, {end}) in {original!r}")
        out.append(original[pos:start])
        out.append(new)
        pos = end
    out.append(original[pos:])
    return "".join(out)


def annotate(source: str, translation: str) -> str:
    """The annotation format of SynCS: "word (traducción)", "Sentence. (Traducción.)"."""
    return f"{source} ({translation})"


# 2. Sentences located in their document --------------------------------------------------------

def split_document(doc: str, lang: str) -> list[tuple[str, str]]:
    """(separator before, sentence) pairs; joining them rebuilds ``doc`` up to trailing whitespace."""
    from ..text.units import sentence_spans

    out, pos = [], 0
    for start, end in sentence_spans(doc, lang):
        out.append((doc[pos:start], doc[start:end]))
        pos = end
    return out


def split_documents(docs: Iterable[str], lang: str, start: int = 0) -> Iterator[Record]:
    """Unchanged records, one per sentence, in document order."""
    for d, doc in enumerate(docs, start=start):
        for i, (sep, sent) in enumerate(split_document(doc, lang)):
            yield Record(doc=d, index=i, original=sent, text=sent, sep=sep)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# 3. Choosing exactly a share, at random --------------------------------------------------------

class Quota:
    """Takes round(share * n) of the n items seen so far (exact within one item over the whole stream),
    choosing which ones in each batch at random under a seed."""

    def __init__(self, share: float, seed: int):
        self.share, self.seed = share, seed
        self.seen = self.taken = 0

    def pick(self, n: int, key: str) -> list[int]:
        target = math.floor(self.share * (self.seen + n) + 0.5)
        k = min(n, max(0, target - self.taken))
        self.seen += n
        self.taken += k
        # str seeds go through SHA-512 in random.Random: the same choice in every process.
        return sorted(random.Random(f"{self.seed}:{key}").sample(range(n), k))


# 4. Counting tokens ----------------------------------------------------------------------------

class TokenCounter:
    """Tokens of texts under a tokenizer (name, folder, or a ``tokenizers`` JSON file), or
    whitespace-separated words without one."""

    def __init__(self, tokenizer: str | None = None):
        self.name = tokenizer or "whitespace"
        self.tokenizer = self.raw = None
        if tokenizer and str(tokenizer).endswith(".json") and os.path.isfile(tokenizer):
            from tokenizers import Tokenizer

            try:
                self.raw = Tokenizer.from_file(str(tokenizer))
            except Exception as exc:  # the Rust loader raises a bare Exception on a malformed file
                raise ConfigError("--tokenizer", str(tokenizer), f"not a `tokenizers` JSON file ({exc}); give a "
                                                                 "tokenizer.json or a tokenizer folder") from exc
        elif tokenizer:
            from ..models import load_tokenizer

            self.tokenizer = load_tokenizer(tokenizer)

    def counts(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        if self.raw is not None:
            return [len(e.ids) for e in self.raw.encode_batch(list(texts), add_special_tokens=False)]
        if self.tokenizer is None:
            return [len(t.split()) for t in texts]
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


# 5. Input and output ---------------------------------------------------------------------------

@dataclass(kw_only=True)
class SwitchFiles(StageConfig):
    """The files of a code-switching run (``codeswitch migrate|syncs|synth``): corpus in, provenance and
    plain text out."""

    INPUTS: ClassVar[tuple[str, ...]] = ("text",)

    text: list[str] = opt(help="corpus to code-switch: UTF-8 text (one document a line), .jsonl or .parquet")
    out: str = opt(help="provenance JSONL (one record per sentence; OUT.parquet for Parquet); a summary goes to "
                        "OUT.summary.json")
    text_out: str | None = opt(None, "also write the code-switched documents as plain text, one per line")
    overwrite: bool = opt(False, "replace existing outputs")
    on_bad: Literal["fail", "skip"] = opt("fail", "a line that is not UTF-8: fail naming it, or skip it with a "
                                                  "warning")

    def validate(self) -> None:
        super().validate()
        if isinstance(self.text, (str, os.PathLike)):  # a recipe gives one path
            self.text = [str(self.text)]
        if not self.text:
            raise ConfigError("text", self.text, "give at least one corpus file")
        if self.on_bad not in ("fail", "skip"):
            raise ConfigError("on_bad", self.on_bad, "choose fail or skip")

    def check_outputs(self) -> None:
        """``out`` and ``text_out``: files, not among the inputs, absent unless ``overwrite``."""
        self.check_output_files("out", "text_out")


def read_documents(paths: Sequence[str | os.PathLike], on_bad: str = "fail") -> list[str]:
    """Non-blank lines of UTF-8 files (one document per line); a bad line is named by its number."""
    return [line for p in paths for line in read_lines(p, "--text", on_bad=on_bad)]


@contextlib.contextmanager
def atomic_stream(path: str | os.PathLike, overwrite: bool = False, param: str = "--out") -> Iterator[Any]:
    """A text file handle on a temporary sibling that replaces ``path`` only on success
    (files.atomic_write_text needs the whole text in memory; a code-switched corpus may not fit)."""
    path = check_out_dir(path, overwrite, param)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_outputs(records: Iterable[Record], out: str | os.PathLike, text_out: str | os.PathLike | None = None,
                  overwrite: bool = False) -> None:
    """Provenance JSONL (one record per sentence) and, optionally, the code-switched documents as text,
    one per line with the separators between sentences kept (the input for static-embedding training)."""
    check_out_dir(out, overwrite)
    if text_out is not None:
        check_out_dir(text_out, overwrite, "--text-out")
    with contextlib.ExitStack() as stack:
        if str(out).endswith(".parquet"):
            jsonl = stack.enter_context(_ParquetRecords(out, overwrite))
        else:
            jsonl = stack.enter_context(atomic_stream(out, overwrite))
        text = stack.enter_context(atomic_stream(text_out, overwrite, "--text-out")) if text_out else None
        current: int | None = None
        for rec in records:
            if isinstance(jsonl, _ParquetRecords):
                jsonl.add(rec)
            else:
                jsonl.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
            if text is not None:
                if current is not None and rec.doc != current:
                    text.write("\n")
                text.write(rec.sep + rec.text)
                current = rec.doc
        if text is not None and current is not None:
            text.write("\n")


def switch_files(cfg, stream) -> None:
    """What ``run_migrate`` and ``run_syncs`` share: read ``cfg.text`` into an Arrow corpus in a temporary
    folder beside ``cfg.out``, write ``stream(corpus, cfg, work)``'s records, and give datatrove a work folder
    of its own (``<out>.work``, removed after success) when none is set (``cfg``: an ``EngineOptions``
    and ``SwitchFiles``; the caller has checked the outputs)."""
    from ..engine import load_corpus

    own_work = cfg.engine == "datatrove" and cfg.work_dir is None
    if own_work:
        cfg = replace(cfg, work_dir=f"{cfg.out}.work")
    parent = Path(cfg.out).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{Path(cfg.out).name}.tmp.") as work:
        corpus = load_corpus(cfg.text, work, "--text", cfg.on_bad)
        write_outputs(stream(corpus, cfg, work), cfg.out, cfg.text_out, cfg.overwrite)
    if own_work:
        shutil.rmtree(cfg.work_dir, ignore_errors=True)


def run_switch(cfg, stats, stream, summarise) -> dict:
    """The body of ``run_migrate`` and ``run_syncs``: check the outputs, build the translator (with its
    options), run ``stream(corpus, run_cfg, work, translator, counter)`` (counting into ``stats``) through
    ``switch_files`` and write ``summarise(stats, cfg, counter)`` to OUT.summary.json, which it returns."""
    from ..translate import get_translator

    cfg.check_outputs()
    translator = get_translator(cfg.translator, cfg.source_lang, cfg.target_lang, cache=cfg.cache,
                                **cfg.translator_options)
    counter = TokenCounter(cfg.tokenizer)
    switch_files(cfg, lambda corpus, run, work: stream(corpus, run, work, translator, counter))
    result = summarise(stats, cfg, counter)
    atomic_write_json(f"{cfg.out}.summary.json", result)
    return result


def write_rows(rows: Iterable[dict], path: str | os.PathLike, overwrite: bool, param: str) -> None:
    """One JSON object a line, atomically."""
    with atomic_stream(path, overwrite, param) as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


class _ParquetRecords:
    """Provenance as Parquet (OUT.parquet): the JSONL fields as columns, written in row groups to a temporary
    sibling that replaces ``path`` only on success."""

    ROWS = 8192

    def __init__(self, path: str | os.PathLike, overwrite: bool):
        self.path, self.overwrite, self.rows = path, overwrite, []

    def __enter__(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        edit = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("source", pa.string()),
                          ("translation", pa.string()), ("tag", pa.string())])
        self.schema = pa.schema([("id", pa.string()), ("doc", pa.int64()), ("index", pa.int32()),
                                 ("original", pa.string()), ("text", pa.string()),
                                 ("replacements", pa.list_(edit)), ("type", pa.string()),
                                 ("new_tokens", pa.int64())])
        self._stream = atomic_stream(self.path, self.overwrite)
        self._fh = self._stream.__enter__()
        self.writer = pq.ParquetWriter(self._fh.buffer, self.schema)
        return self

    def add(self, rec: Record) -> None:
        self.rows.append({"id": rec.id, "doc": rec.doc, "index": rec.index, "original": rec.original,
                          "text": rec.text, "replacements": [asdict(e) for e in rec.replacements],
                          "type": rec.type, "new_tokens": rec.new_tokens})
        if len(self.rows) >= self.ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def __exit__(self, *exc) -> bool:
        try:
            if exc[0] is None:
                self._flush()
            self.writer.close()
        finally:
            self._stream.__exit__(*exc)
        return False


def check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(name, value, "a share must lie in [0, 1] (e.g. 0.5 for half)")


@dataclass
class SwitchStats:
    """What every code-switching run counts; MIGRATE and SynCS add their own counts."""

    documents: int = 0
    sentences: int = 0
    translator_calls: int = 0      # items the translator sent to its backend (distinct, not cached)
    translator_requests: int = 0   # backend batches
    budget_reached: bool = False
    seconds: float = 0.0


def close_stream(stats, bar, translator, counts_before: tuple[int, int], start: float, documents: int) -> None:
    """The end of a MIGRATE or SynCS stream, also when it is cut short: the taggers this process built by
    name closed, the progress bar closed, and the documents, translator calls and seconds counted."""
    from ..engine import close_process_locals

    close_process_locals()
    bar.close()
    stats.documents = documents
    calls, requests = translator_counts(translator)
    stats.translator_calls, stats.translator_requests = calls - counts_before[0], requests - counts_before[1]
    stats.seconds = time.perf_counter() - start


def translator_counts(translator) -> tuple[int, int]:
    """(items sent to the backend, backend requests) so far; a run reports the difference of two reads."""
    return getattr(translator, "calls", 0), getattr(translator, "stats", {}).get("requests", 0)
