"""Data stages on an existing engine: 🤗 ``datasets`` on one machine, ``datatrove`` executors beyond it.

A corpus becomes an Arrow dataset on disk (memory-mapped, so larger-than-memory corpora only need disk),
cut into fixed *groups* of documents; a pure per-group step (sentence splitting, tagging, tokenising)
runs over the groups with ``Dataset.map(num_proc=N)`` or as datatrove tasks, one Parquet shard each.
Groups are fixed by the corpus and the group size, never by the worker count, so a step whose output
depends on its whole batch (an HMM tagger reads across sentences) gives the same rows for 1 or N workers.

Cluster engine: datatrove — its Local/Slurm/Ray executors run the same step unchanged and its per-task
completion markers (``skip_completed``) make shards resumable; it adds only loguru and humanize to our lock.
The datatrove side is ``engine_datatrove.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import StageConfig, check_range, opt
from .errors import ConfigError, LangshiftError
from .files import iter_lines

log = logging.getLogger(__name__)

ENGINES = ("datasets", "datatrove")
EXECUTORS = ("local", "slurm", "ray")
SCALE_INSTALL = "pip install 'langshift[scale]'  (datatrove==0.10.1)"


@dataclass
class EngineOptions(StageConfig):
    """Where a data stage's per-group step runs: the config fields every engine-backed stage shares."""

    num_proc: int = opt(1, "worker processes for the per-group step (datasets num_proc, or datatrove workers); "
                           "the output does not change with it")
    engine: Literal["datasets", "datatrove"] = opt("datasets", "datasets: Dataset.map on this machine; datatrove: "
                                                   "the same step as datatrove tasks (local, slurm, ray), resumable")
    tasks: int | None = opt(None, "datatrove: shards of the corpus, one task each (default: num_proc)")
    executor: Literal["local", "slurm", "ray"] = opt("local", "datatrove executor")
    executor_options: str | dict = opt({}, "datatrove executor options as JSON/YAML, e.g. '{partition: cpu, time: "
                                           "\"4:00:00\"}' for slurm")
    work_dir: str | None = opt(None, "datatrove: folder for the shards and completion markers; a rerun resumes from "
                                     "it (default: OUT.work, removed after success)")

    def validate(self) -> None:
        super().validate()
        check_range("num_proc", self.num_proc, 1)
        if self.engine not in ENGINES:
            raise ConfigError("engine", self.engine, f"choose one of {', '.join(ENGINES)}")
        if self.tasks is not None:
            check_range("tasks", self.tasks, 1)
        self.executor_options = parse_mapping("executor_options", self.executor_options, "{partition: cpu}")


def parse_mapping(name: str, value: str | dict, example: str = "{model: FOLDER}") -> dict:
    """A mapping option: a dict from a recipe, or JSON/YAML text from the command line."""
    if isinstance(value, str):
        import yaml

        try:
            value = yaml.safe_load(value) if value.strip() else {}
        except yaml.YAMLError as exc:
            raise ConfigError(name, value, f"not JSON/YAML ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(name, value, f"give a mapping, e.g. '{example}'")
    return value


def run_groups(groups, step: Callable[[dict], dict], features, opts: EngineOptions, work: str | os.PathLike,
               name: str, desc: str = "", shards: str | None = None):
    """``step`` over ``groups`` on the engine ``opts`` names: Dataset.map(num_proc) under ``work``, or datatrove
    tasks with their shards under ``opts.work_dir/shards`` (default ``work/datatrove/shards``; shards: name)."""
    if opts.engine == "datatrove":
        from .engine_datatrove import run_datatrove

        sub = name if shards is None else shards
        where = Path(opts.work_dir) / sub if opts.work_dir else Path(work) / "datatrove" / sub
        rows = run_datatrove(groups, step, features, where, opts.tasks or opts.num_proc, opts.num_proc,
                             opts.executor, opts.executor_options)
        if rows is None:
            raise LangshiftError(f"the datatrove tasks were submitted ({opts.executor}); rerun the same command "
                                 "when they have finished: finished tasks are skipped and the outputs written")
        return rows
    return map_groups(groups, step, features, opts.num_proc, work, name, desc)


def as_corpus(documents):
    """A corpus dataset as it is, or documents of this process (strings) as one."""
    return documents if hasattr(documents, "column_names") else corpus_from_texts(documents)


def _datasets():
    from .optional import require

    return require("datasets", "pip install 'langshift[train]'", "reading and writing corpora with 🤗 datasets")


# 1. Corpora in: text (one document a line), JSONL ("text" field), Parquet ("text" column) ------------------

def iter_documents(path: str | os.PathLike, param: str = "--text", on_bad: str = "fail") -> Iterator[str]:
    """Documents of one file, lazily: non-blank lines of UTF-8 text, the ``text`` field of .jsonl lines or
    the ``text`` column of .parquet; a bad line or record is named by its number."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(param, str(path), "no such file; give a UTF-8 text, .jsonl or .parquet file")
    n = 0
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid and OSError for a non-Parquet file
            raise ConfigError(param, str(path), f"not a Parquet file ({exc})") from None
        if "text" not in pf.schema_arrow.names:
            raise ConfigError(param, str(path), f"has no 'text' column (columns: {', '.join(pf.schema_arrow.names)})"
                                                "; name the document column 'text'")
        row = 0
        for batch in pf.iter_batches(columns=["text"], batch_size=4096):
            for text in batch.column(0).to_pylist():
                row += 1
                if not isinstance(text, str):
                    raise LangshiftError(f"{param}={str(path)!r}: row {row}: 'text' is {text!r}, not a string")
                if text.strip():
                    n += 1
                    yield text
    else:
        for number, line in iter_lines(path, param, on_bad):
            if path.suffix == ".jsonl":
                line = _jsonl_text(line, number, path, param)
                if not line.strip():
                    continue
            n += 1
            yield line
    if n == 0:
        raise ConfigError(param, str(path), "the file holds no text; give a file with at least one non-empty "
                                            "document")


def _jsonl_text(line: str, number: int, path: Path, param: str) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LangshiftError(f"{param}={str(path)!r}: line {number} is not JSON ({exc.msg} at column {exc.colno}); "
                             "write one JSON object per line") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise LangshiftError(f"{param}={str(path)!r}: line {number} has no string field 'text'; every line needs "
                             "one (the document)")
    return obj["text"]


def _corpus_rows(paths: Sequence[str], param: str, on_bad: str) -> Iterator[dict]:
    doc = 0
    for p in paths:
        for text in iter_documents(p, param, on_bad):
            yield {"doc": doc, "text": text}
            doc += 1


def load_corpus(paths: Sequence[str | os.PathLike], work: str | os.PathLike, param: str = "--text",
                on_bad: str = "fail"):
    """The documents of ``paths`` as an Arrow dataset under ``work`` (columns doc, text), streamed from the
    files in chunks (nothing holds the corpus in memory)."""
    ds = _datasets()
    features = ds.Features({"doc": ds.Value("int64"), "text": ds.Value("string")})
    with _quiet(), our_generator_errors():
        return ds.Dataset.from_generator(_corpus_rows, features=features, cache_dir=str(Path(work) / "hf"),
                                         gen_kwargs={"paths": [str(p) for p in paths], "param": param,
                                                     "on_bad": on_bad})


@contextlib.contextmanager
def our_generator_errors():
    """datasets wraps what a generator raises in DatasetGenerationError: give back our own clear error."""
    ds = _datasets()
    try:
        yield
    except ds.exceptions.DatasetGenerationError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (LangshiftError, ConfigError)):
            raise cause from None
        raise


def corpus_from_texts(texts) -> Any:
    """Documents already in this process (the library API) as the same kind of dataset."""
    ds = _datasets()
    texts = list(texts)
    features = ds.Features({"doc": ds.Value("int64"), "text": ds.Value("string")})
    return ds.Dataset.from_dict({"doc": list(range(len(texts))), "text": texts}, features=features)


def group_documents(corpus, size: int, work: str | os.PathLike):
    """One row per group of ``size`` consecutive documents (columns group, first, docs)."""
    ds = _datasets()

    def group(batch, indices):
        return {"group": [indices[0] // size], "first": [batch["doc"][0]], "docs": [batch["text"]]}

    features = ds.Features({"group": ds.Value("int64"), "first": ds.Value("int64"),
                            "docs": ds.List(ds.Value("string"))})
    with _quiet():
        return corpus.map(group, batched=True, batch_size=size, with_indices=True, features=features,
                          remove_columns=corpus.column_names, cache_file_name=str(Path(work) / "groups.arrow"),
                          desc="grouping documents")


def features(columns: dict):
    """datasets Features from a plain spec: "int64" → Value, ["string"] → List, {"a": "int32"} → struct."""
    ds = _datasets()

    def value(v):
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        if isinstance(v, list):
            return ds.List(value(v[0]))
        return ds.Value(v)

    return ds.Features({k: value(v) for k, v in columns.items()})


def rows_to_dataset(rows: Callable[[], Iterator[dict]], features, work: str | os.PathLike):
    """The rows a generator yields as an Arrow dataset under ``work``, written as they come."""
    ds = _datasets()
    with _quiet():  # a fresh fingerprint: the rows come from this run's data, never from an older cache
        return ds.Dataset.from_generator(rows, features=features, cache_dir=str(Path(work) / "hf"),
                                         fingerprint=uuid.uuid4().hex)


def windows(n_groups: int, num_proc: int, grow: bool) -> Iterator[range]:
    """Groups per engine call: all at once, or (``grow``: a budget that usually stops early) windows that
    double from 4 per worker, each one pool of workers started."""
    if not grow:
        yield range(n_groups)
        return
    start, size = 0, 4 * max(num_proc, 1)
    while start < n_groups:
        yield range(start, min(n_groups, start + size))
        start, size = start + size, size * 2


# 2. The per-group step on one machine: Dataset.map(num_proc) -------------------------------------------------

def map_groups(groups, step: Callable[[dict], dict], features, num_proc: int, work: str | os.PathLike, name: str,
               desc: str = ""):
    """``step`` over each group (one call per group, its rows concatenated in group order)."""
    with _quiet():
        return groups.map(step, batched=True, batch_size=1, num_proc=num_proc if num_proc > 1 else None,
                          features=features, remove_columns=groups.column_names,
                          cache_file_name=str(Path(work) / f"{name}.arrow"), desc=desc or name)


# Objects a step builds once per process (a tagger keeps subprocesses and loads models): keyed by spec.
_LOCAL: dict[Any, Any] = {}


def process_local(key: Any, build: Callable[[], Any]) -> Any:
    if key not in _LOCAL:
        if not _LOCAL and _in_pool_worker():
            # a datasets pool ends its workers with SIGTERM: stop the subprocesses first, so that they are
            # waited for (their CPU time is counted, none is orphaned)
            signal.signal(signal.SIGTERM, _close_and_exit)
        _LOCAL[key] = build()
    return _LOCAL[key]


def close_process_locals() -> None:
    while _LOCAL:
        _, obj = _LOCAL.popitem()
        close = getattr(obj, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def _in_pool_worker() -> bool:
    import multiprocess

    return multiprocess.parent_process() is not None


def _close_and_exit(signum, frame) -> None:  # noqa: ARG001
    close_process_locals()
    os._exit(0)


@contextlib.contextmanager
def _quiet():
    """datasets' progress bars per map call are noise in a stage's log (langshift's own bar stays)."""
    ds = _datasets()
    was = ds.is_progress_bar_enabled()
    ds.disable_progress_bars()
    try:
        yield
    finally:
        if was:
            ds.enable_progress_bars()
