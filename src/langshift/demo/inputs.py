"""The demo's input files, made offline from ``langshift.resources`` into ``OUT/inputs/``.

Held-out data never reaches a training text: Bible chapters are split once (every ``HELDOUT_EVERY``-th
chapter is held out, by position in canonical order), and the held-out chapters are split again into a
*select* half (picks the init method) and a *test* half (bits per byte, multiple choice, MEXA). The
tokenizer, fastText, LAPT text, the verse pairs LAPT mixes in, the code-switched English and the
instruction set only see the other chapters (and fortunes, which are not Bible text). The instruction pool
is cut into three disjoint parts: the CLO training pairs, *dev* fidelity prompts (to choose training
settings on) and *test* fidelity prompts (the report's), each prompt set in Spanish and in the same
instructions' English.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import LangshiftError
from ..files import atomic_write_json, atomic_write_text

HELDOUT_EVERY = 20          # 1 chapter in 20 (about 60 of 1,189) is held out
SEED = 0
PARALLEL_SEED = 17          # the pairs' draw: the one the dev run that chose them used (BENCHMARKS.md, "A sixth lever")
_NEXT_REF = re.compile(r"The next verse is (?P<ref>.+? \d+:\d+): ")  # train.instructions' answer form


@dataclass(frozen=True)
class Sizes:
    """How much of each resource a demo profile uses."""

    target_lines: int | None    # Spanish training text: train-chapter verses + fortunes (None: all)
    source_verses: int          # English verses to code-switch (MIGRATE)
    select_verses: int          # held-out Spanish verses that pick the init method
    eval_verses: int            # held-out Spanish verses for bits per byte
    mc_items: int               # per offline multiple-choice task (translation, next verse)
    mexa_pairs: int             # held-out (English, Spanish) verse pairs
    sft_pairs: int              # English instruction pairs translated for CLO
    prompts: int                # chat prompts for language fidelity, in Spanish and English (not in the CLO data)
    dev_prompts: int = 0        # a second such set, to choose training settings on (never the test prompts)
    parallel_pairs: int = 0     # train-chapter (English, target) verse pairs, one LAPT document each


NAMES = {"target_text": "target.es.txt", "source_text": "source.en.txt", "select_text": "select.es.txt",
         "eval_text": "heldout.es.txt", "mc_tasks": "mc.jsonl", "mexa_pairs": "mexa.jsonl", "sft": "sft.en.jsonl",
         "prompts": "prompts.es.txt", "prompts_en": "prompts.en.txt", "parallel": "parallel.jsonl"}
DEV_NAMES = {"dev_prompts": "dev.es.txt", "dev_prompts_en": "dev.en.txt"}  # not recipe inputs: for tuning


def _chapter(ref: str) -> str:
    return ref.rsplit(":", 1)[0]


def split_chapters(pairs: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, str, str]]]:
    """``train`` / ``select`` / ``test`` verse pairs by chapter (fixed: depends on the Bible only)."""
    chapters = list(dict.fromkeys(_chapter(p[0]) for p in pairs))
    held = chapters[HELDOUT_EVERY // 2::HELDOUT_EVERY]
    which = {c: ("select" if i % 2 == 0 else "test") for i, c in enumerate(held)}
    out: dict[str, list] = {"train": [], "select": [], "test": []}
    for p in pairs:
        out[which.get(_chapter(p[0]), "train")].append(p)
    return out


def _mentions_heldout(record: dict, held_chapters: set[str]) -> bool:
    """A Bible instruction pair about a held-out verse, or whose answer is one ("which verse comes after"
    the last verse before a held-out chapter). An answer whose reference cannot be read counts as one."""
    kind, _, ref = record["id"].partition(":")
    if not kind.startswith("bible"):
        return False
    if _chapter(ref) in held_chapters:
        return True
    if kind == "bible-next":
        named = _NEXT_REF.match(record["response"])
        return named is None or _chapter(named["ref"]) in held_chapters
    return False


def parallel_documents(pairs: list[tuple[str, str, str]], n: int, seed: int = PARALLEL_SEED) -> list[dict]:
    """``n`` of the (ref, source, target) ``pairs`` drawn at random, each one ``{"text": ...}`` document of its two
    verses, one per line, the source or the target first at random: LAPT reads both directions, so a word and its
    translation share a context window (the one lever that moved the demo's MC before CLO; BENCHMARKS.md)."""
    rng = random.Random(seed)
    pairs = list(pairs)
    rng.shuffle(pairs)
    docs = []
    for _ref, source, target in pairs[:n]:
        first, second = (source, target) if rng.random() < 0.5 else (target, source)
        docs.append({"text": first + "\n" + second})
    return docs


def _sample(rng: random.Random, items: list, n: int | None) -> list:
    return list(items) if n is None or n >= len(items) else rng.sample(items, n)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def make_inputs(folder: Path, sizes: Sizes, source_lang: str = "en", target_lang: str = "es",
                translation_cache: str | None = None) -> dict[str, str]:
    """Write every input file (skipped when a manifest of the same sizes exists); returns name → path."""
    paths = {k: str(folder / v) for k, v in {**NAMES, **DEV_NAMES}.items()}
    manifest_path = folder / "manifest.json"
    wanted = {"sizes": asdict(sizes), "source_lang": source_lang, "target_lang": target_lang, "heldout_every": HELDOUT_EVERY, "seed": SEED}
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if old.get("params") == wanted and all(Path(p).is_file() for p in paths.values()):
            return paths
    from ..evaluate.builders import build_next_verse, build_parallel, build_translation
    from ..resources import bible_parallel, fortunes
    from ..train.instructions import build_sft
    from ..translate import get_translator

    folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=6, desc="demo inputs", unit="step")
    rng = random.Random(SEED)
    # 1. Bible split and fortunes: the training texts see train chapters only.
    split = split_chapters(bible_parallel(source_lang, target_lang))
    target = [p[2] for p in split["train"]] + fortunes(target_lang)
    target = _sample(rng, target, sizes.target_lines)
    source = [p[1] for p in _sample(rng, split["train"], sizes.source_verses)]
    atomic_write_text(paths["target_text"], "".join(t + "\n" for t in target))
    atomic_write_text(paths["source_text"], "".join(t + "\n" for t in source))
    parallel = parallel_documents(split["train"], sizes.parallel_pairs)
    atomic_write_text(paths["parallel"], _jsonl(parallel))
    bar.update()
    # 2. Held-out texts: one half picks the init method, the other is the test set.
    select = [p[2] for p in _sample(rng, split["select"], sizes.select_verses)]
    heldout = [p[2] for p in _sample(rng, split["test"], sizes.eval_verses)]
    atomic_write_text(paths["select_text"], "".join(t + "\n" for t in select))
    atomic_write_text(paths["eval_text"], "".join(t + "\n" for t in heldout))
    bar.update()
    # 3. Offline multiple choice and MEXA pairs, built from the test chapters only.
    mc = (build_translation(sizes.mc_items, SEED, source_lang, target_lang, pairs=split["test"])
          + build_next_verse(sizes.mc_items, SEED, source_lang, target_lang, pairs=split["test"]))
    atomic_write_text(paths["mc_tasks"], _jsonl(mc))
    atomic_write_text(paths["mexa_pairs"], _jsonl(build_parallel(sizes.mexa_pairs, SEED, source_lang, target_lang,
                                                                 pairs=split["test"])))
    bar.update()
    # 4. English instruction pairs (man pages, Bible): none about a held-out chapter. The pool is cut into
    #    three disjoint parts: CLO training pairs, dev prompts (to choose settings on), test prompts.
    held_chapters = {_chapter(p[0]) for p in split["select"] + split["test"]}
    need = sizes.sft_pairs + 2 * (sizes.dev_prompts + sizes.prompts)  # prompts: twice, some fail to translate
    pool = [r for r in build_sft(2 * need, ["man", "bible"], SEED) if not _mentions_heldout(r, held_chapters)]
    if len(pool) < need:
        raise LangshiftError(f"the offline instruction builder gave {len(pool)} usable pairs; the demo needs {need}")
    atomic_write_text(paths["sft"], _jsonl(pool[:sizes.sft_pairs]))
    bar.update()
    # 5. Fidelity prompts: instructions the CLO data does not hold, in English and translated into the
    #    target language (the same instructions in both, so the two fidelity rates are comparable).
    translator = get_translator("apertium", source_lang, target_lang, cache=translation_cache)
    rest = [r["instruction"] for r in pool[sizes.sft_pairs:]]
    dev_pool, test_pool = rest[:2 * sizes.dev_prompts], rest[2 * sizes.dev_prompts:2 * (sizes.dev_prompts
                                                                                     + sizes.prompts)]
    written = {}
    for key, english, n in (("dev_prompts", dev_pool, sizes.dev_prompts), ("prompts", test_pool, sizes.prompts)):
        both = [(" ".join(t.split()), " ".join(e.split())) for e, t in zip(english, translator.translate_sentences(english),
                                                                         strict=True) if t and t.strip()][:n]
        if n and not both:
            raise LangshiftError("apertium translated none of the fidelity prompts; check `apertium -l`")
        atomic_write_text(paths[key], "".join(t + "\n" for t, _ in both))
        atomic_write_text(paths[key + "_en"], "".join(e + "\n" for _, e in both))
        written[key] = len(both)
    prompts = written["prompts"]
    bar.update()
    counts = {"train_verses": len(split["train"]), "select_verses_available": len(split["select"]),
              "test_verses_available": len(split["test"]), "target_lines": len(target), "source_lines": len(source),
              "select_lines": len(select), "eval_lines": len(heldout), "parallel_pairs": len(parallel),
              "mc_items": len(mc), "sft_pairs": sizes.sft_pairs, "prompts": prompts,
              "dev_prompts": written["dev_prompts"]}
    atomic_write_json(manifest_path, {"params": wanted, "counts": counts, "files": {**NAMES, **DEV_NAMES}})
    bar.update()
    bar.close()
    return paths
