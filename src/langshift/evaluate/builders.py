"""Offline evaluation sets built from the verse-aligned Bible (``resources.bible_parallel``).

These are SYNTHETIC tasks, made here because no benchmark data can be downloaded; they measure
something real but are not standard benchmarks:
  * ``translation``  — which of four target-language verses translates the English verse? (question:
    the English verse; choices: its translation and three other verses of similar length; language:
    the target, so the target template's labels are used).
  * ``next_verse``   — which target-language verse comes next? (question: a verse; choices: the
    following verse of the same chapter and three verses from elsewhere, similar length).
  * ``parallel``     — (English, target) verse pairs for MEXA and the hidden-state view (JSONL with
    ``en`` and ``xx`` fields).
Every set is reproducible under ``seed`` and records it, with ``synthetic: true``, in each item.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Result, StageConfig, opt
from ..errors import ConfigError
from ..registry import Registry

BUILDERS: Registry[Callable[..., list[dict]]] = Registry("eval set", modules=[__name__])

_MIN_CHARS, _MAX_CHARS = 30, 300


def _usable(pairs):
    return [p for p in pairs if _MIN_CHARS <= len(p[1]) <= _MAX_CHARS and _MIN_CHARS <= len(p[2]) <= _MAX_CHARS]


def _distractors(rng: random.Random, pool: list[str], avoid: set[str], length: int, k: int = 3) -> list[str]:
    """k texts from ``pool`` of length close to ``length`` (so length alone does not give the answer)."""
    picks: list[str] = []
    while len(picks) < k:
        cands = rng.sample(pool, min(len(pool), 40))
        cands = [c for c in cands if c not in avoid and c not in picks]
        if cands:
            picks.append(min(cands, key=lambda c: abs(len(c) - length)))
    return picks


def _shuffle_choices(rng: random.Random, gold: str, others: list[str]) -> tuple[list[str], int]:
    choices = [gold, *others]
    rng.shuffle(choices)
    return choices, choices.index(gold)


@BUILDERS.register("translation")
def build_translation(n: int, seed: int = 0, source_lang: str = "en", target_lang: str = "es", pairs=None) -> list[dict]:
    """Four-way 'which verse is the translation' items."""
    pairs = _usable(pairs if pairs is not None else _bible(source_lang, target_lang))
    rng = random.Random(seed)
    pool = [p[2] for p in pairs]
    items = []
    for ref, en, xx in rng.sample(pairs, min(n, len(pairs))):
        choices, answer = _shuffle_choices(rng, xx, _distractors(rng, pool, {xx}, len(xx)))
        items.append({"id": ref, "question": en, "choices": choices, "answer": answer, "language": target_lang,
                      "task": "translation", "synthetic": True, "seed": seed})
    return items


@BUILDERS.register("next_verse")
def build_next_verse(n: int, seed: int = 0, source_lang: str = "en", target_lang: str = "es", pairs=None) -> list[dict]:
    """Four-way 'which verse comes next' items in the target language (same chapter only)."""
    pairs = pairs if pairs is not None else _bible(source_lang, target_lang)
    rng = random.Random(seed)
    chapter = [p[0].rsplit(":", 1)[0] for p in pairs]
    follow = [i for i in range(len(pairs) - 1) if chapter[i] == chapter[i + 1]
              and _MIN_CHARS <= len(pairs[i][2]) <= _MAX_CHARS and _MIN_CHARS <= len(pairs[i + 1][2]) <= _MAX_CHARS]
    pool = [p[2] for p in _usable(pairs)]
    items = []
    for i in rng.sample(follow, min(n, len(follow))):
        cur, nxt = pairs[i][2], pairs[i + 1][2]
        choices, answer = _shuffle_choices(rng, nxt, _distractors(rng, pool, {cur, nxt}, len(nxt)))
        items.append({"id": pairs[i][0], "question": cur, "choices": choices, "answer": answer, "language": target_lang,
                      "task": "next_verse", "synthetic": True, "seed": seed})
    return items


@BUILDERS.register("parallel")
def build_parallel(n: int, seed: int = 0, source_lang: str = "en", target_lang: str = "es", pairs=None) -> list[dict]:
    """(English, target) verse pairs for MEXA."""
    pairs = _usable(pairs if pairs is not None else _bible(source_lang, target_lang))
    rng = random.Random(seed)
    return [{"id": ref, "en": en, "xx": xx, "language": target_lang, "synthetic": True, "seed": seed}
            for ref, en, xx in rng.sample(pairs, min(n, len(pairs)))]


def build(task: str, n: int, seed: int = 0, source_lang: str = "en", target_lang: str = "es") -> list[dict]:
    if n < 1:
        raise ConfigError("--n", n, "must be a positive number of items")
    return BUILDERS.get(task, "--task")(n, seed=seed, source_lang=source_lang, target_lang=target_lang)


def _bible(source_lang: str, target_lang: str):
    from ..resources import bible_parallel

    return bible_parallel(source_lang, target_lang)


@dataclass
class BuildConfig(StageConfig):
    task: str = opt(help="translation, next_verse or parallel")
    out: str = opt(help="JSONL file to write")
    n: int = opt(200, "number of items")
    seed: int = opt(0, "seed of the sample (recorded in each item)")
    source_lang: str = opt("en", "language of the questions' verses (parallel: the 'en' side)")
    target_lang: str = opt("es", "language of the answers' verses (parallel: the 'xx' side)")


@dataclass
class BuildResult(Result):
    task: str
    items: int
    seed: int
    synthetic: bool = True


def run_build(cfg: BuildConfig) -> BuildResult:
    """Build an offline (synthetic) evaluation set into the JSONL file ``cfg.out``."""
    from ..files import atomic_write_text, check_out_file

    check_out_file(cfg.out)
    rows = build(cfg.task, cfg.n, cfg.seed, cfg.source_lang, cfg.target_lang)
    atomic_write_text(cfg.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return BuildResult(out=cfg.out, task=cfg.task, items=len(rows), seed=cfg.seed)
