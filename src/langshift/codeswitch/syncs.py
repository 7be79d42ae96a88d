"""SynCS synthetic code-switching (seed 003, §4.1): four types, density, magnitude, mixing.

- token-repl:  words replaced by their translation            "the rey spoke"
- token-annt:  words followed by their translation            "the king (rey) spoke"
- sent-repl:   the sentence replaced by its translation       "El rey habló."
- sent-annt:   the sentence followed by its translation       "The king spoke. (El rey habló.)"

Direction is the translator's: English text with target-language spans (source en → target es), or target
text with English spans (source es → target en). Density = share of sentences modified (exact within one
sentence, chosen at random under the seed); magnitude = a budget of new tokens (tokens of the
inserted translations under the given tokenizer): once the next modification would pass it, the
remaining sentences stay unmodified. Mixing: ``equal`` (the four types evenly), ``extreme`` (one given
type), ``repl-equal`` (token-repl and sent-repl evenly; the paper's best, "SynCS*") — here by number of
sentences in one stream; ``mixing.py`` (``codeswitch mix``) splits the new-token budget per type as the
paper counts it, on either language side, over a share of the documents.

The paper synthesises token-level switching with a fine-tuned LLM; here words are chosen by POS tag
(nouns or content words) or at random and translated word by word — cheaper, and controllable.
"""

from __future__ import annotations

import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from ..config import Result, check_range, opt
from ..engine import EngineOptions, parse_mapping
from ..errors import ConfigError
from .provenance import (
    TYPES,
    Edit,
    Quota,
    Record,
    SwitchFiles,
    SwitchStats,
    TokenCounter,
    annotate,
    check_share,
    close_stream,
    run_switch,
    splice,
    split_documents,
    translator_counts,
)

log = logging.getLogger(__name__)

MIXES = {"equal": list(TYPES), "repl-equal": ["token-repl", "sent-repl"]}
CONTENT_PREFIXES = ("NN", "VB", "JJ", "RB")


@dataclass
class SyncsOptions(EngineOptions):
    """What the SynCS stream takes (``syncs()``: documents in memory or a corpus dataset)."""

    source_lang: str = opt("en", "language of the input text (the context)")
    target_lang: str = opt("es", "language of the inserted spans")
    translator: str = opt("apertium", "translator by name (`langshift ls` lists them)")
    translator_options: str | dict = opt({}, "options of the translator backend as JSON/YAML, e.g. "
                                             "'{model: FOLDER}' for seq2seq")
    cache: str | None = opt(None, "sqlite file caching translations across runs")
    density: float = opt(0.2, "share of sentences modified")
    magnitude: int | None = opt(None, "budget of new tokens (inserted translations); default: no budget")
    mix: Literal["equal", "extreme", "repl-equal"] = opt("repl-equal", "how the four types are mixed")
    type: Literal["token-repl", "token-annt", "sent-repl", "sent-annt"] = opt(
        "token-repl", "the one type used by mix=extreme")
    words: Literal["nouns", "content", "random"] = opt(
        "nouns", "token-level: which words may switch (nouns/content words need --tagger for source_lang)")
    tagger: str = opt("apertium", "POS tagger by name for source_lang, for words=nouns|content")
    word_share: float = opt(0.3, "token-level: share of the eligible words of a sentence switched (at least one)")
    tokenizer: str | None = opt(None, "count new tokens with this tokenizer; default: whitespace words")
    batch_size: int = opt(512, "sentences per batch (each makes at most one word and one sentence translator call), "
                               "and documents per group split on the engine")
    seed: int = opt(0, "seed for choosing sentences, types and words")

    def validate(self) -> None:
        super().validate()
        self.translator_options = parse_mapping("translator_options", self.translator_options)
        check_share("density", self.density)
        check_share("word_share", self.word_share)
        check_range("batch_size", self.batch_size, 1)
        if self.magnitude is not None:
            check_range("magnitude", self.magnitude, 1)
        if self.word_share == 0 and any(t.startswith("token") for t in self.types()):
            raise ConfigError("word_share", 0, "token-level types need word_share > 0")

    def types(self) -> list[str]:
        return [self.type] if self.mix == "extreme" else MIXES[self.mix]

    def tagger_needed(self) -> str | None:
        """The tagger by name when words are chosen by tag for a token-level type, else None."""
        return self.tagger if self.words != "random" and any(t.startswith("token") for t in self.types()) else None


@dataclass
class SyncsConfig(SyncsOptions, SwitchFiles):
    """``codeswitch syncs`` and the pipeline's syncs stage: the options with the files in and out."""


@dataclass
class Stats(SwitchStats):
    modified: int = 0
    per_type: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TYPES, 0))
    words_switched: int = 0
    new_tokens: int = 0
    not_translated: int = 0      # chosen sentences left unmodified: nothing could be translated


@dataclass
class SyncsResult(Stats, Result):
    """The run's counts (``Stats``) with its outputs and settings; ``codeswitch syncs`` prints it, the
    pipeline records it, OUT.summary.json holds it without the paths."""

    text_out: str | None = None
    token_counter: str = "whitespace"
    mix: str = "repl-equal"
    types: list[str] = field(default_factory=list)
    density: float = 0.0
    magnitude: int | None = None
    density_actual: float = 0.0


class TypeCycle:
    """Deals the types evenly: each block of len(types) modified sentences gets every type once, in a
    seeded random order, so any prefix of the stream is balanced within one block."""

    def __init__(self, types: Sequence[str], seed: int):
        self.types, self.seed, self.dealt, self.block = list(types), seed, 0, []

    def next(self) -> str:
        if not self.block:
            self.block = random.Random(f"{self.seed}:types:{self.dealt}").sample(self.types, len(self.types))
        self.dealt += 1
        return self.block.pop()


# 1. Pure steps -------------------------------------------------------------------------------------

def eligible_words(sentences: Sequence[str], how: str, tagger) -> list[list[tuple[int, int, str, str | None]]]:
    """(start, end, word, tag) of the words that may switch in each sentence."""
    from ..text.units import words

    spans = [words(s) for s in sentences]
    if how == "random":
        return [[(w.start, w.end, w.text, None) for w in ws if any(c.isalpha() for c in w.text)] for ws in spans]
    from .migrate import PENN_NOUNS, tag_sentences

    spans, tags = tag_sentences(sentences, tagger)
    keep = (lambda t: t in PENN_NOUNS) if how == "nouns" else (lambda t: t.startswith(CONTENT_PREFIXES))
    return [[(w.start, w.end, w.text, t) for w, t in zip(ws, ts, strict=True)
             if keep(t) and any(c.isalpha() for c in w.text)] for ws, ts in zip(spans, tags, strict=True)]


def pick_words(cands: Sequence[tuple], share: float, seed: int, key: str) -> list[tuple]:
    if not cands:
        return []
    k = max(1, math.floor(share * len(cands) + 0.5))
    return sorted(random.Random(f"{seed}:words:{key}").sample(list(cands), min(k, len(cands))))


def build(original: str, kind: str, words: Sequence[tuple], word_tr: dict, sent_tr: str | None) -> tuple[str, list[Edit]]:
    """The modified sentence and its edits (spans in the original) for one SynCS type."""
    if kind.startswith("sent"):
        if not sent_tr or not sent_tr.strip():
            return original, []
        text = sent_tr if kind == "sent-repl" else annotate(original, sent_tr)
        return text, [Edit(0, len(original), original, sent_tr)]
    edits = []
    for start, end, w, tag in words:
        tr = word_tr.get((w, tag))
        if tr and tr.strip() and tr != w:
            edits.append(Edit(start, end, w, tr, tag))
    fmt = (lambda e: e.translation) if kind == "token-repl" else (lambda e: annotate(e.source, e.translation))
    return splice(original, [(e.start, e.end, fmt(e)) for e in edits]), edits


# 2. The stream: documents split on the engine, sentences chosen in order, their words tagged on the engine,
#    then translated and applied in order until the magnitude budget ---------------------------------------

SENTENCE = {"group": "int64", "doc": "int64", "index": "int32", "sep": "string", "original": "string"}
WORD = {"start": "int32", "end": "int32", "word": "string", "tag": "string"}


PLAN = {"group": "int64", "first": "int64", "chosen": ["int32"], "kinds": ["string"], "ids": ["string"],
        "sentences": ["string"]}
PICKED = {"group": "int64", "picked": [[WORD]]}


class Split:
    """Per-group engine step: the sentences of a group of documents, one row each."""

    def __init__(self, lang: str):
        self.lang = lang

    def __call__(self, batch: dict) -> dict:
        out: dict[str, list] = {k: [] for k in SENTENCE}
        for group, first, docs in zip(batch["group"], batch["first"], batch["docs"], strict=True):
            for rec in split_documents(docs, self.lang, start=first):
                for k, v in (("group", group), ("doc", rec.doc), ("index", rec.index), ("sep", rec.sep),
                             ("original", rec.original)):
                    out[k].append(v)
        return out


def _plans(sentences, cfg: SyncsOptions) -> Iterator[dict]:
    """Per batch of ``batch_size`` sentences: which are modified, by which type, and the token-level ones
    (whose words the engine tags). The choice depends only on the order of sentences, never on translations."""
    quota, cycle = Quota(cfg.density, cfg.seed), TypeCycle(cfg.types(), cfg.seed)
    rows = sentences.select_columns(["doc", "index", "original"])
    for b, batch in enumerate(rows.iter(batch_size=cfg.batch_size)):
        ids = [f"{d}.{i}" for d, i in zip(batch["doc"], batch["index"], strict=True)]
        chosen = quota.pick(len(ids), ids[0])
        kinds = [cycle.next() for _ in chosen]
        tok = [i for i, k in zip(chosen, kinds, strict=True) if k.startswith("token")]
        yield {"group": b, "first": b * cfg.batch_size, "chosen": chosen, "kinds": kinds,
               "ids": [ids[i] for i in tok], "sentences": [batch["original"][i] for i in tok]}


class PickWords:
    """Per-group engine step: for the token-level sentences of one batch, the words that switch (one tagger
    call for the batch, as before the engine). ``tagger``: a name (each process builds its own) or an object."""

    def __init__(self, tagger, cfg: SyncsOptions):
        self.tagger, self.lang, self.words = tagger, cfg.source_lang, cfg.words
        self.share, self.seed = cfg.word_share, cfg.seed

    def __call__(self, batch: dict) -> dict:
        from .migrate import process_tagger

        tagger = process_tagger(self.tagger, self.lang) if self.tagger is not None else None
        out: dict[str, list] = {"group": [], "picked": []}
        for group, ids, sents in zip(batch["group"], batch["ids"], batch["sentences"], strict=True):
            cands = eligible_words(sents, self.words, tagger) if sents else []
            out["group"].append(group)
            out["picked"].append([[dict(zip(WORD, w, strict=True)) for w in pick_words(c, self.share, self.seed, i)]
                                  for i, c in zip(ids, cands, strict=True)])
        return out


def _planned(documents, tagger, cfg: SyncsOptions, work: Path, done) -> Iterator[tuple[list[Record], dict, list]]:
    """(records, plan, picked words) per batch of sentences, in order; once ``done()`` no more tagging."""
    from .. import engine
    from ..engine import features

    corpus = engine.as_corpus(documents)
    if len(corpus) == 0:
        return
    groups = engine.group_documents(corpus, cfg.batch_size, work)
    sentences = engine.run_groups(groups, Split(cfg.source_lang), features(SENTENCE), cfg, work, "sentences",
                                  "splitting")
    if len(sentences) == 0:
        return
    plan = engine.rows_to_dataset(lambda: _plans(sentences, cfg), features(PLAN), work)
    tagging = any(t.startswith("token") for t in cfg.types())
    step, batches = PickWords(tagger, cfg), sentences.iter(batch_size=cfg.batch_size)
    grow = cfg.magnitude is not None and cfg.engine != "datatrove"
    for w, window in enumerate(engine.windows(len(plan), cfg.num_proc, grow)):
        part = plan if len(window) == len(plan) else plan.select(window)
        picked = None
        if tagging and not done():
            picked = engine.run_groups(part, step, features(PICKED), cfg, work, f"words-{w}", "tagging")
        rows = picked.iter(batch_size=1) if picked is not None else iter(())
        for p in part.iter(batch_size=1):
            b = next(batches)
            records = [Record(doc=d, index=i, original=o, text=o, sep=s)
                       for d, i, o, s in zip(b["doc"], b["index"], b["original"], b["sep"], strict=True)]
            words = next(rows, None)
            yield records, {k: v[0] for k, v in p.items()}, words["picked"][0] if words else []


class _Run:
    def __init__(self, translator, cfg: SyncsOptions, counter: TokenCounter, stats: Stats):
        self.tr, self.cfg, self.counter, self.stats = translator, cfg, counter, stats
        self.word_memo: dict[tuple[str, str | None], str | None] = {}
        self.sent_memo: dict[str, str | None] = {}

    def batch(self, records: list[Record], plan: dict, picked_words: list[list[dict]]) -> None:
        cfg, st = self.cfg, self.stats
        if st.budget_reached:
            return
        chosen = [records[i] for i in plan["chosen"]]
        kinds = {rec.id: kind for rec, kind in zip(chosen, plan["kinds"], strict=True)}
        # 1. words of token-level sentences (tagged on the engine), translated as one call of distinct keys
        tok = [r for r in chosen if kinds[r.id].startswith("token")]
        picked = {r.id: [tuple(w[k] for k in WORD) for w in ws] for r, ws in zip(tok, picked_words, strict=True)}
        new = list(dict.fromkeys((w, t) for ws in picked.values() for _, _, w, t in ws
                                 if (w, t) not in self.word_memo))
        if new:
            tags = None if cfg.words == "random" else [t for _, t in new]
            self.word_memo.update(zip(new, self.tr.translate_words([w for w, _ in new], tags), strict=True))
        # 2. sentences for sentence-level types, one call
        sents = list(dict.fromkeys(r.original for r in chosen if kinds[r.id].startswith("sent")
                                   and r.original not in self.sent_memo))
        if sents:
            self.sent_memo.update(zip(sents, self.tr.translate_sentences(sents), strict=True))
        # 3. apply in order while the magnitude budget lasts
        for rec in chosen:
            kind = kinds[rec.id]
            text, edits = build(rec.original, kind, picked.get(rec.id, []), self.word_memo,
                                self.sent_memo.get(rec.original))
            if not edits:
                st.not_translated += 1
                continue
            n = sum(self.counter.counts([e.translation for e in edits]))
            if cfg.magnitude is not None and st.new_tokens + n > cfg.magnitude:
                if st.modified == 0:
                    raise ConfigError("magnitude", cfg.magnitude, f"smaller than the first modification ({n} new "
                                      f"tokens under {self.counter.name}); give at least {n}")
                st.budget_reached = True
                return
            rec.text, rec.replacements, rec.type, rec.new_tokens = text, edits, kind, n
            st.modified += 1
            st.per_type[kind] += 1
            st.new_tokens += n
            st.words_switched += len(edits) if kind.startswith("token") else 0


def syncs(documents, translator, cfg: SyncsOptions, tagger=None, counter: TokenCounter | None = None,
          stats: Stats | None = None, work: str | os.PathLike | None = None) -> Iterator[Record]:
    """Every sentence of ``documents`` as a record, a ``density`` share of them code-switched.

    ``documents``: strings, or a corpus dataset (``engine.load_corpus``); ``tagger``: a name (each worker
    builds its own) or a tagger object (picklable when num_proc > 1); ``work``: folder for the Arrow files
    (default: a temporary one). The output does not depend on num_proc or the engine."""
    if tagger is None and cfg.words != "random" and any(t.startswith("token") for t in cfg.types()):
        raise ConfigError("words", cfg.words, "choosing nouns or content words needs a tagger; pass one, or use "
                                              "words=random")
    if work is None:
        with tempfile.TemporaryDirectory(prefix="langshift-syncs.") as tmp:
            yield from syncs(documents, translator, cfg, tagger, counter, stats, tmp)
        return
    counter = counter or TokenCounter(cfg.tokenizer)
    stats = stats if stats is not None else Stats()
    run = _Run(translator, cfg, counter, stats)
    calls0, requests0 = translator_counts(translator)
    start, docs = time.perf_counter(), set()
    bar = tqdm(desc="SynCS code-switching", unit="sent")
    try:
        for records, plan, picked in _planned(documents, tagger, cfg, Path(work), lambda: stats.budget_reached):
            run.batch(records, plan, picked)
            for rec in records:
                stats.sentences += 1
                docs.add(rec.doc)
                yield rec
            bar.update(len(records))
    finally:
        close_stream(stats, bar, translator, (calls0, requests0), start, len(docs))


def summary(stats: Stats, cfg: SyncsOptions, counter: TokenCounter) -> dict:
    out = dict(vars(stats))
    out.update(token_counter=counter.name, mix=cfg.mix, types=cfg.types(), density=cfg.density,
               magnitude=cfg.magnitude,
               density_actual=round(stats.modified / stats.sentences, 6) if stats.sentences else 0.0)
    return out


def run_syncs(cfg: SyncsConfig) -> SyncsResult:
    """SynCS over ``cfg.text`` (text, .jsonl, .parquet): provenance to ``cfg.out`` (JSONL, or Parquet for
    OUT.parquet), the documents to ``cfg.text_out`` if set, the summary to OUT.summary.json, each atomically."""
    stats = Stats()
    # the tagger by name: each engine worker builds its own
    result = run_switch(cfg, stats, lambda corpus, run, work, translator, counter: syncs(
        corpus, translator, run, run.tagger_needed(), counter, stats, work), summary)
    log.info("SynCS: %d of %d sentences modified %s, %d new tokens", stats.modified, stats.sentences,
             stats.per_type, stats.new_tokens)
    return SyncsResult(out=str(cfg.out), text_out=cfg.text_out, **result)
