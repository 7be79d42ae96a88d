"""Completion records and content hashes: what makes a stage "done" and what decides a re-run.

A stage is done when ``OUT/<stage>/.done.json`` exists. The record is written last, atomically,
after the stage's folder is in place, so a crash at any point leaves either no record (the stage
runs again) or a record whose every file exists. The record holds:

- ``key``: hash of the stage's config hash and of its inputs' hashes. A rerun whose key differs
  re-runs the stage.
- ``outputs``: every file of the stage folder with its size and SHA-256, so a later stage can
  check that what it reads is what was recorded (missing or changed files are named).
- ``hash``: key + outputs. Earlier versions keyed downstream stages on it ("stage:" input hashes); a
  record whose inputs were hashed that way still counts as done (``runner.assess`` accepts both).

Downstream stages key on the *artefact* they read: its files' hashes less the stage's run reports
(``Stage.reports``: timings, logs, paths), ``artefact_hash``. An upstream stage that re-runs and writes
the same artefact (a recipe edit that changed nothing it reads) leaves everything after it done: an
early cut-off, so a no-op edit does not re-run a day of training.

Hashing large inputs (model folders) on every run would be slow, so hashes are cached per file by
(size, mtime_ns) in ``OUT/.hashes.json``; any edit changes the mtime and forces a re-hash.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import LangshiftError
from ..files import atomic_write_json

RECORD_NAME = ".done.json"
ATTEMPT_NAME = ".attempt.json"
HASH_CACHE = ".hashes.json"
_CHUNK = 1 << 20


def digest(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class HashCache:
    """File content hashes keyed by absolute path and validated by (size, mtime_ns)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, list] = {}
        self.dirty = False
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                self.entries = {}  # a damaged cache only costs re-hashing

    def file(self, path: Path) -> tuple[int, str]:
        st = path.stat()
        key = str(path.resolve())
        hit = self.entries.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return st.st_size, hit[2]
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        self.entries[key] = [st.st_size, st.st_mtime_ns, h.hexdigest()]
        self.dirty = True
        return st.st_size, h.hexdigest()

    def save(self) -> None:
        if self.path is not None and self.dirty and self.path.parent.is_dir():
            try:
                atomic_write_json(self.path, self.entries)
                self.dirty = False
            except OSError:
                pass  # the cache is an optimisation; failing to write it must not fail a run


def manifest(folder: Path, cache: HashCache, skip: tuple[str, ...] = (RECORD_NAME, ATTEMPT_NAME)) -> dict[str, list]:
    """Relative path → [size, sha256] of every file under ``folder`` (sorted; records excluded)."""
    out: dict[str, list] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(folder).as_posix()
        if rel in skip:
            continue
        if not path.exists():  # dangling link
            raise LangshiftError(f"{path}: a broken link in the stage output")
        out[rel] = list(cache.file(path))
    return out


def content_hash(path: Path, cache: HashCache) -> str:
    """Hash of a file's bytes, or of a folder's (relative names + file hashes)."""
    if path.is_file():
        return cache.file(path)[1]
    return digest(manifest(path, cache, skip=()))


def artefact_hash(record: dict, artefact: str, reports: tuple[str, ...] = ()) -> str:
    """Hash of the recorded files under ``artefact`` (the path a consumer reads), less those whose name
    matches one of ``reports`` (glob patterns); from the record alone, so nothing is re-read."""
    prefix = artefact.rstrip("/") + "/"
    return digest({rel: sha for rel, (_, sha) in record["outputs"]["files"].items()
                   if (rel == artefact or rel.startswith(prefix))
                   and not any(fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pat) for pat in reports)})


def read_record(stage_dir: Path) -> dict | None:
    """The stage's completion record, or None when absent or unreadable (then the stage is not done)."""
    path = stage_dir / RECORD_NAME
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    return rec if isinstance(rec, dict) and "key" in rec and "hash" in rec and "outputs" in rec else None


def verify_outputs(stage: str, stage_dir: Path, record: dict, cache: HashCache,
                   only: str | None = None) -> None:
    """Raise naming the first file of ``stage``'s recorded output that is missing or changed.

    ``only``: check just the files under this relative path (the artefact a consumer reads).
    """
    for rel, (size, sha) in record["outputs"]["files"].items():
        if only is not None and rel != only and not rel.startswith(only.rstrip("/") + "/"):
            continue
        path = stage_dir / rel
        fix = (f"delete {stage_dir} and run again to re-make it (stage {stage!r} makes it)")
        if not path.is_file():
            raise LangshiftError(f"artefact {path} is missing; it is made by stage {stage!r}. To fix: {fix}")
        got = cache.file(path)
        if got[0] != size or got[1] != sha:
            raise LangshiftError(f"artefact {path} is corrupt or was changed after stage {stage!r} finished "
                                 f"(size {got[0]} vs recorded {size}, content hash differs). To fix: {fix}")


def write_record(stage_dir: Path, record: dict) -> Path:
    """Write the completion record last and atomically (temporary file + rename)."""
    return atomic_write_json(stage_dir / RECORD_NAME, record)


def read_attempt(work: Path) -> dict | None:
    path = work / ATTEMPT_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (renames) to disk where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
