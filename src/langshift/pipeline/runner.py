"""Run a recipe: plan which stages skip, run, continue or re-run, then run them, resumably.

Layout of a run folder ``OUT``::

    OUT/<stage>/              the finished stage (artefact + .done.json, the record, written last)
    OUT/<stage>.work/         an attempt in progress (partial output, checkpoints, .attempt.json)
    OUT/.hashes.json          cached content hashes of inputs and outputs
    OUT/.lock                 one run at a time

A stage is skipped when its record's key (config hash + input hashes) matches. The config leaves out the
fields a stage declares volatile (speed and memory only: batch sizes of passes without gradients, gradient
checkpointing) and those its settings never read (``vocab_size`` of an extended tokenizer); an upstream
stage's output is hashed as the artefact it made (less its run reports), so an upstream stage that re-ran
and wrote the same artefact leaves the stages after it done. An attempt folder with the same key is
continued (training resumes from its checkpoints); anything else is removed and the stage runs from the
start. The finished work folder is renamed to ``OUT/<stage>`` and only then is the record written, so a
kill at any moment never leaves a stage marked done with a half-written artefact.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, LangshiftError
from ..files import atomic_write_json
from ..perf import peak_memory, reset_peak_memory
from .recipe import Recipe, Resolved, build_config, load_recipe, resolve
from .record import (
    ATTEMPT_NAME,
    HASH_CACHE,
    HashCache,
    artefact_hash,
    content_hash,
    digest,
    fsync_dir,
    manifest,
    read_attempt,
    read_record,
    verify_outputs,
    write_record,
)
from .stages import STAGES, Context

Progress = Callable[[str], None]


@dataclass
class Step:
    name: str
    action: str                        # skip | run | continue | re-run
    reason: str
    key: str | None = None             # None while an upstream stage still has to run
    input_hashes: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# 1. Hashing one stage's config and inputs --------------------------------------------------------

def hashed_config(item: Resolved, cfg, launch: dict[str, Any], cache: HashCache | None = None) -> dict[str, Any]:
    """The config fields that decide the stage's result (slots, pipeline-owned and volatile fields out, and
    those these settings never read: ``StageConfig.unused_fields``). A field naming a file the stage reads
    that is not a slot (LAPT's ``embedding_rows``) is hashed with the file's content, so editing it re-runs."""
    stage = item.stage
    drop = {s.field for s in stage.slots} | set(stage.owned) | set(stage.volatile) | set(cfg.unused_fields())
    out = {k: v for k, v in cfg.to_dict().items() if k not in drop}
    for name in cfg.INPUTS:
        path = Path(out[name]).expanduser() if isinstance(out.get(name), str) else None
        if cache is not None and path is not None and path.exists():
            out[name] = {"path": out[name], "content": content_hash(path, cache)}
    if stage.training and launch.get("accelerate_config"):
        out["__launch__"] = {"num_processes": launch.get("num_processes")}  # world size changes the batch
    return out


def input_values(item: Resolved, out: Path) -> dict[str, Any]:
    """Slot field → the path (or model name) the stage will read."""
    values = {}
    for name, inp in item.inputs.items():
        if inp.stage is not None:
            values[name] = str(out / inp.stage / STAGES.get(inp.stage).output)
        elif inp.value is not None:
            values[name] = inp.value
        elif inp.via is not None and item.stage.slot(name).required:
            raise ConfigError(f"inputs.{inp.via[1:]}", None, f"is not set but stage {item.stage.name!r} needs it "
                                                             f"({item.stage.name}.{name}); give it with --set "
                                                             f"inputs.{inp.via[1:]}=PATH")
    return values


def given_hash(item: Resolved, name: str, value: Any, cache: HashCache) -> str:
    """Content hash of a given input; a hub id (not on disk) is identified by its name."""
    slot = item.stage.slot(name)
    param = f"{item.stage.name}.{name}"
    if slot.kind == "model":
        from ..resources import resolve_model

        path = Path(resolve_model(value, param))
        if not path.exists():
            return "name:" + str(value)
    else:
        path = Path(str(value)).expanduser()
        if not path.exists():
            raise ConfigError(param, str(value), "no such file or folder (a given input: no stage of this recipe "
                                                 "makes it); check the path")
        if slot.kind == "file" and not path.is_file():
            raise ConfigError(param, str(value), "is a folder; give a file")
        if slot.kind == "dir" and not path.is_dir():
            raise ConfigError(param, str(value), "is a file; give a folder")
    return content_hash(path, cache)


# 2. The plan ---------------------------------------------------------------------------------------

def assess(item: Resolved, out: Path, launch: dict[str, Any], pending: dict[str, str], cache: HashCache) -> Step:
    """What to do with one stage given the records on disk and the stages that will run before it."""
    stage = item.stage
    name = stage.name
    values = input_values(item, out)
    cfg = build_config(item, values, out / f"{name}.work")
    config, unused = hashed_config(item, cfg, launch, cache), tuple(cfg.unused_fields())
    hashes: dict[str, str] = {}
    legacy: dict[str, str] = {}  # the same inputs hashed as earlier versions did (upstream record, not artefact)
    waiting = []
    for field_name, inp in item.inputs.items():
        if inp.stage is not None:
            if inp.stage in pending:
                waiting.append(inp.stage)
                continue
            upstream = read_record(out / inp.stage)
            if upstream is None:
                raise LangshiftError(f"artefact {values[field_name]} is missing: stage {inp.stage!r} makes it and has "
                                     "no completion record; run the recipe with that stage")
            producer = STAGES.get(inp.stage)
            verify_outputs(inp.stage, out / inp.stage, upstream, cache, only=producer.output)
            # a model slot reads the weights and config; a folder slot (the report) may read the run reports too
            reports = producer.reports if stage.slot(field_name).kind == "model" else ()
            hashes[field_name] = "output:" + artefact_hash(upstream, producer.output, reports)
            legacy[field_name] = "stage:" + upstream["hash"]
        elif field_name in values:
            hashes[field_name] = legacy[field_name] = given_hash(item, field_name, values[field_name], cache)
    record = read_record(out / name)
    if waiting:
        if record is None:
            return Step(name, "run", f"after {', '.join(waiting)} (upstream runs first)", None, {}, config)
        return Step(name, "re-run", f"after {', '.join(waiting)} (upstream runs first; skipped if what it reads "
                                    "comes out unchanged)", None, {}, config)
    key = digest({"stage": name, "config": config, "inputs": hashes})
    legacy_key = digest({"stage": name, "config": config, "inputs": legacy})
    if record is not None:
        # a record written by an earlier version is compared with the inputs hashed its way
        recorded = legacy if _is_legacy(record) else hashes
        if record["key"] in (key, legacy_key) or _same_work(stage, record, config, recorded, unused):
            verify_outputs(name, out / name, record, cache)
            return Step(name, "skip", "done, config and inputs unchanged", key, hashes, config)
        return Step(name, "re-run", _what_changed(stage, record, config, recorded, unused), key, hashes, config)
    attempt = read_attempt(out / f"{name}.work")
    if attempt is not None and attempt.get("key") == legacy_key != key:  # begun by an earlier version: go on
        key, hashes = legacy_key, legacy
    if attempt is not None and attempt.get("key") == key:
        return Step(name, "continue", "an interrupted attempt with the same config and inputs", key, hashes, config)
    reason = "not run yet"
    if (out / name).exists():
        reason = "its folder has no completion record (interrupted before it was marked done)"
    elif attempt is not None:
        reason = "an interrupted attempt had another config or inputs; starting over"
    return Step(name, "run", reason, key, hashes, config)


def _is_legacy(record: dict) -> bool:
    """A record whose upstream inputs were hashed as the upstream record ("stage:"), as earlier versions did."""
    return any(str(v).startswith("stage:") for v in record.get("input_hashes", {}).values())


def _recorded_config(stage, record: dict, unused: tuple[str, ...], config: dict) -> dict:
    """The record's config less the fields today's key leaves out: volatile ones and those today's settings
    never read (``unused``); a record may predate either. A file field recorded as its path alone (before
    file fields were hashed with their content) is taken as today's file when the path is the same."""
    kept = {k: v for k, v in record.get("config", {}).items() if k not in stage.volatile and k not in unused}
    for k, v in kept.items():
        if isinstance(v, str) and isinstance(config.get(k), dict) and config[k].get("path") == v:
            kept[k] = config[k]
    return kept


def _same_work(stage, record: dict, config: dict, hashes: dict[str, str], unused: tuple[str, ...]) -> bool:
    """Today's config and inputs are the record's: a record written before a speed-only field (say
    gradient_checkpointing) became volatile, or before unused fields left the key, still counts as done."""
    return (digest(_recorded_config(stage, record, unused, config)) == digest(config)
            and record.get("input_hashes") == hashes)


def _what_changed(stage, record: dict, config: dict, hashes: dict[str, str], unused: tuple[str, ...]) -> str:
    old_cfg, old_in = _recorded_config(stage, record, unused, config), record.get("input_hashes", {})
    changes = [_change(k, old_cfg.get(k), config.get(k)) for k in sorted(set(old_cfg) | set(config))
               if old_cfg.get(k) != config.get(k)]
    for k in sorted(set(old_in) | set(hashes)):
        if old_in.get(k) != hashes.get(k):
            what = "upstream stage output" if str(hashes.get(k, "")).startswith(("output:", "stage:")) else "input"
            changes.append(f"{what} {k} changed")
    return "changed: " + ("; ".join(changes) if changes else "stage definition")


def _change(name: str, old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict) and old.get("path") == new.get("path") and "path" in new:
        return f"{name}: the content of {new['path']} changed"
    shown = [v["path"] if isinstance(v, dict) and "path" in v else v for v in (old, new)]
    return f"{name}: {shown[0]!r} → {shown[1]!r}"


def plan(items: list[Resolved], out: Path, launch: dict[str, Any], cache: HashCache) -> list[Step]:
    steps: list[Step] = []
    pending: dict[str, str] = {}
    for item in items:
        step = assess(item, out, launch, pending, cache)
        if step.action != "skip":
            pending[step.name] = step.action
        steps.append(step)
    return steps


# 3. Running one stage ------------------------------------------------------------------------------

def _oserror(name: str, exc: OSError, work: Path) -> LangshiftError:
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
            errno.EROFS: "the file system is read-only"}.get(exc.errno, exc.strerror or str(exc))
    target = exc.filename or work
    return LangshiftError(f"stage {name!r} could not write {target}: {what}. Nothing of this stage was marked "
                          f"done; free space or fix the permissions, then run again (work kept in {work})")


def run_stage(item: Resolved, step: Step, out: Path, launch: dict[str, Any], cache: HashCache) -> dict:
    name = item.stage.name
    work, final = out / f"{name}.work", out / name
    started, marks = time.perf_counter(), reset_peak_memory()
    try:
        # 3.1 A finished record of an older config must never stand next to new files.
        with contextlib.suppress(FileNotFoundError):
            (final / ".done.json").unlink()
        attempt = read_attempt(work)
        if work.exists() and (attempt is None or attempt.get("key") != step.key):
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        _drop_leftovers(work)
        atomic_write_json(work / ATTEMPT_NAME, {"key": step.key, "stage": name,
                                                "started": _now(), "pid": os.getpid()})
        # 3.2 The stage itself, writing into the work folder.
        cfg = build_config(item, input_values(item, out), work)
        labels = {f: inp.stage or "model" for f, inp in item.inputs.items()}
        summary = item.stage(cfg, Context(work=work, launch=launch, labels=labels))
        # 3.3 Swap the finished folder in, then write the record LAST.
        files = manifest(work, cache)
        if item.stage.output not in files and not any(f.startswith(item.stage.output + "/") for f in files):
            raise LangshiftError(f"stage {name!r} finished without writing its artefact {work / item.stage.output}")
        outputs = {"files": files, "hash": digest(files)}
        if final.exists():
            trash = out / f".{name}.old"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(work, final)
        (final / ATTEMPT_NAME).unlink()
        fsync_dir(out)
        seconds = round(time.perf_counter() - started, 3)
        record = {"stage": name, "key": step.key, "hash": digest({"key": step.key, "outputs": outputs["hash"]}),
                  "config": step.config, "input_hashes": step.input_hashes, "outputs": outputs,
                  "artefact": item.stage.output, "summary": _jsonable(summary), "seconds": seconds,
                  "peak_memory": peak_memory(marks), "finished": _now(), "langshift": __version__}
        write_record(final, record)
    except OSError as exc:
        raise _oserror(name, exc, work) from exc
    finally:
        cache.save()
    return record


def _drop_leftovers(work: Path) -> None:
    """Temporary files and folders of atomic writes that a kill cut short (``.NAME.XXXX.tmp``, ``.NAME.old``):
    never part of a result, so they must not end up in the stage's folder."""
    for path in sorted(work.rglob(".*"), key=lambda p: -len(p.parts)):
        if path.name.endswith((".tmp", ".old")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _memory_words(peak: dict[str, Any]) -> str:
    words = f"peak RSS {peak['rss_mib'] / 1024:.1f} GiB"
    if peak["rss_scope"] == "process lifetime":
        words += " (this process so far)"
    if "cuda_mib" in peak:
        words += f", GPU {peak['cuda_mib'] / 1024:.1f} GiB"
    return words


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    fh = open(out / ".lock", "w")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LangshiftError(f"{out} is in use by another `langshift run`; wait for it or choose another "
                                 "--out") from None
        yield
    finally:
        fh.close()


# 4. The entry point ----------------------------------------------------------------------------------

def run_recipe(recipe: str | Path | dict | Recipe, out: str | Path, overrides: list[str] | dict | None = None,
               dry_run: bool = False, progress: Progress | None = _stderr) -> dict[str, Any]:
    """Run (or with ``dry_run`` only plan) a recipe into ``out``.

    Returns ``{"out", "recipe", "dry_run", "stages": {name: {"action", "reason", "status", "summary",
    "seconds", "peak_memory"}}}``; ``status`` is skipped / ran / continued / re-ran (planned: … on a dry run);
    ``peak_memory`` is ``perf.peak_memory`` of a stage that ran now, else None.
    ``progress`` receives one line per stage event (None: silent).
    """
    say = progress or (lambda line: None)
    recipe = load_recipe(recipe, overrides)
    items = resolve(recipe)
    if not items:
        raise ConfigError("stages", {}, "the recipe has no stages")
    out = Path(out)
    if dry_run:
        cache = HashCache(out / HASH_CACHE if out.is_dir() else None)
        steps = plan(items, out, recipe.launch, cache)
        result = _result(recipe, out, True, steps)
        for i, step in enumerate(steps, 1):
            say(f"[{i}/{len(steps)}] {step.name}: {step.action} — {step.reason}")
        return result
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
        lock.__enter__()
    except OSError as exc:
        raise _oserror(items[0].stage.name, exc, out) from exc
    try:
        cache = HashCache(out / HASH_CACHE)
        steps = plan(items, out, recipe.launch, cache)
        result = _result(recipe, out, False, steps)
        done_names = {"skip": "skipped", "run": "ran", "continue": "continued", "re-run": "re-ran"}
        for i, (item, step) in enumerate(zip(items, steps, strict=True), 1):
            if step.action != "skip" or step.key is None:
                step = assess(item, out, recipe.launch, {}, cache)  # upstream records exist now
            entry = result["stages"][step.name]
            entry.update(action=step.action, reason=step.reason)
            say(f"[{i}/{len(items)}] {step.name}: {step.action} — {step.reason}")
            if step.action == "skip":
                record = read_record(out / step.name)
                entry.update(status="skipped", summary=record.get("summary"), seconds=0.0, peak_memory=None)
                continue
            with contextlib.redirect_stdout(sys.stderr):  # stages' chatter (trainer logs) off the result's stream
                record = run_stage(item, step, out, recipe.launch, cache)
            entry.update(status=done_names[step.action], summary=record["summary"], seconds=record["seconds"],
                         peak_memory=record["peak_memory"])
            say(f"[{i}/{len(items)}] {step.name}: done in {record['seconds']:.1f} s, "
                f"{_memory_words(record['peak_memory'])} → {out / step.name}")
        cache.save()
        return result
    finally:
        lock.__exit__(None, None, None)


def _result(recipe: Recipe, out: Path, dry_run: bool, steps: list[Step]) -> dict[str, Any]:
    prefix = "planned: " if dry_run else ""
    return {"out": str(out), "recipe": recipe.name, "dry_run": dry_run,
            "stages": {s.name: {"action": s.action, "reason": s.reason, "status": prefix + s.action,
                                "summary": None, "seconds": None, "peak_memory": None} for s in steps}}
