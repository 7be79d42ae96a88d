"""Writing that never leaves a half-written artefact, and reading text that names bad lines."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, LangshiftError


def check_out_dir(out: str | os.PathLike, overwrite: bool, param: str = "--out") -> Path:
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(param, str(out), "exists already; choose another folder or pass --overwrite")
    return out


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
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
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


def read_lines(path: str | os.PathLike, param: str = "--text", on_bad: str = "fail",
               skip_blank: bool = True) -> list[str]:
    """Lines of a UTF-8 text file. A line that is not UTF-8 fails naming its number
    (``on_bad="fail"``) or is skipped with a warning (``on_bad="skip"``); never dropped silently.
    An empty file (or one with only blank lines) is an error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(param, str(path), "no such file; give the path of a UTF-8 text file")
    lines: list[str] = []
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
            lines.append(line)
    if skipped:
        import warnings

        warnings.warn(f"{path}: skipped {len(skipped)} non-UTF-8 line(s): {skipped[:20]}", stacklevel=2)
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
