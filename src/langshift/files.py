"""Writing that never leaves a half-written artefact, and reading text that names bad lines."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, LangshiftError

log = logging.getLogger(__name__)


Inputs = Mapping[str, "str | os.PathLike | Iterable[str | os.PathLike] | None"]


def check_not_input(out: str | os.PathLike, inputs: Inputs | None, param: str = "--out") -> None:
    """Refuse an ``out`` that is one of the inputs or holds one (writing it would destroy the input).

    ``inputs`` maps each input parameter to its path(s); values that name no file or folder (hub ids,
    built-in names, None) are skipped. Paths are compared resolved, so symlinks and ``./`` do not hide a clash."""
    target = Path(out).resolve()
    for name, value in (inputs or {}).items():
        values = [value] if isinstance(value, (str, os.PathLike)) or value is None else list(value)
        for item in values:
            if item is None or not Path(item).exists():
                continue
            src = Path(item).resolve()
            if src == target:
                raise ConfigError(param, str(out), f"is also the input {name}={str(item)!r}; writing it would "
                                                   "destroy the input: choose another output path")
            if target in src.parents:
                raise ConfigError(param, str(out), f"holds the input {name}={str(item)!r}; replacing it would "
                                                   "destroy the input: choose an output path outside it")


def clean_stale(out: str | os.PathLike) -> list[Path]:
    """Remove what a killed save to ``out`` left behind: ``.<name>.XXXXXXXX.tmp`` (atomic_dir /
    atomic_write_text temporaries) and ``.<name>.old``. Call it only as the one writer of ``out``."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:[A-Za-z0-9_]{{8}}\.tmp|old)")
    removed = []
    for path in out.parent.iterdir():
        if pattern.fullmatch(path.name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.append(path)
    if removed:
        log.info("removed %d stale temporary file(s) of an interrupted save to %s", len(removed), out)
    return removed


def check_out_dir(out: str | os.PathLike, overwrite: bool, param: str = "--out", inputs: Inputs | None = None) -> Path:
    """``out`` as a Path once it is safe to write: not an input nor holding one, and absent unless
    ``overwrite``. Stale temporaries of an earlier killed save to it are removed."""
    check_not_input(out, inputs, param)
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(param, str(out), "exists already; choose another folder or pass --overwrite")
    clean_stale(out)
    return out


def check_out_file(path: str | os.PathLike, overwrite: bool = True, param: str = "--out",
                   inputs: Inputs | None = None) -> Path:
    """``check_out_dir`` for an output that is one file: a folder there is refused (it cannot be replaced
    by a file), and so is a missing parent that exists as a file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(param, str(path), "is a folder; give the path of a file to write")
    if any(p.exists() and not p.is_dir() for p in path.parents):
        raise ConfigError(param, str(path), "lies under a file, not a folder; give a path in a folder")
    return check_out_dir(path, overwrite, param, inputs)


_LOCKS: dict[Path, tuple[int, list[Path]]] = {}


@contextlib.contextmanager
def out_lock(out: str | os.PathLike, param: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on ``out`` (``flock`` of the sibling ``.<name>.lock``) while the block runs,
    so a second process writing the same output fails at once instead of replacing the first one's work.
    The lock dies with the process (no stale lock after a kill); re-entrant within one process.
    Parent folders made for the lock file are removed again if nothing else was written into them."""
    out = Path(out)
    key = out.resolve()
    if key in _LOCKS:
        yield out
        return
    made = []
    parent = key.parent
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    key.parent.mkdir(parents=True, exist_ok=True)
    lock = key.parent / f".{key.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(param, str(out), f"another langshift process is writing it (lock {lock}); wait "
                                               "for that run to end or choose another output path") from None
        try:  # the holder before us may have removed the file between our open and flock: take the new one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _LOCKS[key] = (fd, made)
    try:
        yield out
    finally:
        del _LOCKS[key]
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()  # before unlocking, so a waiter that opened it notices (the inode check above)
        os.close(fd)
        for folder in made:  # innermost first; stops at the first folder that holds something
            try:
                folder.rmdir()
            except OSError:
                break


def put_in_place(folder: str | os.PathLike, out: str | os.PathLike) -> None:
    """Rename the finished ``folder`` to ``out``; an ``out`` already there (overwrite) is moved aside first and
    removed after, so ``out`` is never missing nor half-replaced."""
    folder, out = Path(folder), Path(out)
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(folder, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(folder, out)


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, overwrite: bool = False, param: str = "--out") -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``out`` in one rename.

    On any error the temporary folder is removed and ``out`` is left as it was.
    """
    out = check_out_dir(out, overwrite, param)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; the artefact should read like any folder
        put_in_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the artefact should read like any file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def iter_lines(path: str | os.PathLike, param: str = "--text", on_bad: str = "fail",
               skip_blank: bool = True) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file, streamed. A line that is not UTF-8 fails naming its
    number (``on_bad="fail"``) or is skipped with one warning at the end (``on_bad="skip"``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(param, str(path), "no such file; give the path of a UTF-8 text file")
    skipped: list[int] = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                if on_bad == "skip":
                    skipped.append(number)
                    continue
                raise LangshiftError(
                    f"{param}={str(path)!r}: line {number} is not UTF-8 ({exc.reason} at byte {exc.start}); "
                    "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8) or skip bad lines"
                ) from None
            if skip_blank and not line.strip():
                continue
            yield number, line
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} non-UTF-8 line(s): {skipped[:20]}", stacklevel=2)


def read_lines(path: str | os.PathLike, param: str = "--text", on_bad: str = "fail",
               skip_blank: bool = True) -> list[str]:
    """Lines of a UTF-8 text file (see ``iter_lines``); never dropped silently. An empty file (or one
    with only blank lines) is an error."""
    lines = [line for _, line in iter_lines(path, param, on_bad, skip_blank)]
    if not lines:
        raise ConfigError(param, str(path), "the file holds no text; give a file with at least one non-empty line")
    return lines


def read_json_lines(path: str | os.PathLike, param: str = "--data") -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a UTF-8 JSONL file. A line that is not
    UTF-8 or not a JSON object fails naming its number; an empty file fails too."""
    out = []
    for number, line in enumerate(read_lines(path, param, skip_blank=False), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LangshiftError(f"{param}={str(path)!r}: line {number} is not JSON ({exc.msg} at column "
                                 f"{exc.colno}); write one JSON object per line") from None
        if not isinstance(obj, dict):
            raise LangshiftError(f"{param}={str(path)!r}: line {number} is a {type(obj).__name__}, not a JSON "
                                 "object; write one object per line")
        out.append((number, obj))
    if not out:
        raise ConfigError(param, str(path), "the file holds only blank lines; write one JSON object per line")
    return out
