"""MIGRATE code-switching (seed 000, §3.1): translate the nouns of English sentences in place.

Sentences → words with offsets → POS tags → nouns (NN, NNS, NNP, NNPS) → a seeded share of the noun
occurrences (1.0 = all; MIGRATE's "half" = 0.5) → each distinct (noun, tag) of a batch translated once,
in one translator call → nouns replaced in place, the text around them byte-identical → stop at a
token budget of code-switched output (MIGRATE used 1M and 3M tokens).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..config import Result, check_range, opt
from ..engine import EngineOptions, parse_mapping
from ..errors import ConfigError
from .provenance import (
    Edit,
    Quota,
    Record,
    SwitchFiles,
    SwitchStats,
    TokenCounter,
    check_share,
    close_stream,
    run_switch,
    splice,
    split_documents,
    translator_counts,
)

log = logging.getLogger(__name__)

PENN_NOUNS = ["NN", "NNS", "NNP", "NNPS"]


@dataclass
class MigrateOptions(EngineOptions):
    """What the MIGRATE stream takes (``migrate()``: documents in memory or a corpus dataset)."""

    source_lang: str = opt("en", "language of the input text")
    target_lang: str = opt("es", "language the nouns are translated into")
    tagger: str = opt("vote", "POS tagger by name for source_lang, Penn tags (`langshift ls`); vote = apertium "
                              "and hanta must agree: noun precision 0.99 vs 0.96 for either alone "
                              "(BENCHMARKS.md, POS taggers)")
    translator: str = opt("apertium", "word translator by name (`langshift ls` lists them)")
    translator_options: str | dict = opt({}, "options of the translator backend as JSON/YAML, e.g. "
                                             "'{model: FOLDER}' for seq2seq")
    cache: str | None = opt(None, "sqlite file caching translations across runs (default: none)")
    share: float = opt(1.0, "share of noun occurrences to translate, chosen at random (MIGRATE 'half': 0.5)")
    budget: int | None = opt(None, "stop after this many tokens of code-switched output (MIGRATE: 1M or 3M); "
                                   "default: the whole input")
    tokenizer: str | None = opt(None, "count tokens with this tokenizer (folder or model name); default: "
                                      "whitespace-separated words")
    noun_tags: list[str] = opt(PENN_NOUNS, "tags that mark a noun")
    batch_size: int = opt(256, "documents per batch; each batch makes at most one translator call")
    num_proc: int = opt(1, "worker processes for sentence splitting and tagging (datasets num_proc, or datatrove "
                           "workers); translation stays in one process, so each distinct noun is still "
                           "translated once, and the output does not change with it")
    seed: int = opt(0, "seed for choosing which nouns to translate when share < 1")

    def validate(self) -> None:
        super().validate()
        self.translator_options = parse_mapping("translator_options", self.translator_options)
        check_share("share", self.share)
        check_range("batch_size", self.batch_size, 1)
        if self.budget is not None:
            check_range("budget", self.budget, 1)
        if not self.noun_tags:
            raise ConfigError("noun_tags", self.noun_tags, "give at least one tag, e.g. NN NNS NNP NNPS")


@dataclass
class MigrateConfig(MigrateOptions, SwitchFiles):
    """``codeswitch migrate`` and the pipeline's migrate stage: the options with the files in and out."""


@dataclass
class Noun:
    start: int
    end: int
    text: str
    tag: str


@dataclass
class Stats(SwitchStats):
    source_words: int = 0
    tokens: int = 0
    nouns: int = 0
    selected: int = 0
    replaced: int = 0
    untranslated: int = 0
    unchanged: int = 0
    distinct_nouns: int = 0


@dataclass
class MigrateResult(Stats, Result):
    """The run's counts (``Stats``) with its outputs and rates; ``codeswitch migrate`` prints it, the
    pipeline records it, OUT.summary.json holds it without the paths."""

    text_out: str | None = None
    token_counter: str = "whitespace"
    budget: int | None = None
    share: float = 1.0
    tokens_per_second: int | None = None
    translator_calls_per_noun: float = 0.0


# 1. Pure steps over a batch of sentences ----------------------------------------------------------

def tag_sentences(sentences: Sequence[str], tagger) -> tuple[list[list], list[list[str]]]:
    """Words with offsets and their tags for each sentence (one batched tagger call when it offers one)."""
    from ..text.units import words

    spans = [words(s, punct=True) for s in sentences]  # punctuation helps the tagger
    tokens = [[w.text for w in ws] for ws in spans]
    batch = getattr(tagger, "tag_many", None)
    tags = batch(tokens) if batch is not None else [tagger.tag(t) if t else [] for t in tokens]
    return spans, tags


def find_nouns(spans: Sequence[Sequence], tags: Sequence[Sequence[str]], noun_tags: Iterable[str]) -> list[list[Noun]]:
    wanted = set(noun_tags)
    return [[Noun(w.start, w.end, w.text, t) for w, t in zip(ws, ts, strict=True)
             if t in wanted and any(ch.isalpha() for ch in w.text)]
            for ws, ts in zip(spans, tags, strict=True)]


def choose(nouns: Sequence[Sequence[Noun]], quota: Quota, key: str) -> list[list[Noun]]:
    """The noun occurrences to translate: a quota-exact random share of this batch's occurrences."""
    flat = [(i, n) for i, ns in enumerate(nouns) for n in ns]
    keep = set(quota.pick(len(flat), key))
    out: list[list[Noun]] = [[] for _ in nouns]
    for k, (i, n) in enumerate(flat):
        if k in keep:
            out[i].append(n)
    return out


def translate_distinct(chosen: Sequence[Sequence[Noun]], translator, memo: dict[tuple[str, str], str | None]) -> int:
    """Fill ``memo`` for the (noun, tag) keys it lacks with ONE translator call; returns how many were new."""
    new = list(dict.fromkeys((n.text, n.tag) for ns in chosen for n in ns if (n.text, n.tag) not in memo))
    if new:
        out = translator.translate_words([w for w, _ in new], [t for _, t in new])
        if len(out) != len(new):
            raise RuntimeError(f"translator returned {len(out)} translations for {len(new)} words")
        memo.update(zip(new, out, strict=True))
    return len(new)


def replace_nouns(sentence: str, chosen: Sequence[Noun], memo: dict[tuple[str, str], str | None],
                  stats: Stats) -> tuple[str, list[Edit]]:
    edits = []
    for n in chosen:
        tr = memo.get((n.text, n.tag))
        if tr is None or not tr.strip():
            stats.untranslated += 1
        elif tr == n.text:
            stats.unchanged += 1
        else:
            edits.append(Edit(n.start, n.end, n.text, tr, n.tag))
    stats.replaced += len(edits)
    return splice(sentence, [(e.start, e.end, e.translation) for e in edits]), edits


def analyse(docs: Sequence[str], first_doc: int, lang: str, tagger, noun_tags: Sequence[str]
            ) -> tuple[list[Record], list[list[Noun]]]:
    """Split, tag and find nouns for a chunk of documents: the costly part, pure given the tagger, so it
    can run in worker processes."""
    records = list(split_documents(docs, lang, start=first_doc))
    spans, tags = tag_sentences([r.original for r in records], tagger)
    return records, find_nouns(spans, tags, noun_tags)


def switch_batch(records: list[Record], nouns: list[list[Noun]], translator, quota: Quota,
                 memo: dict[tuple[str, str], str | None], stats: Stats) -> list[Record]:
    """Choose, translate (one call for the batch's new distinct nouns) and replace: fills ``text``."""
    if not records:
        return records
    chosen = choose(nouns, quota, records[0].id)
    stats.nouns += sum(map(len, nouns))
    stats.selected += sum(map(len, chosen))
    stats.distinct_nouns += translate_distinct(chosen, translator, memo)
    for rec, ns in zip(records, chosen, strict=True):
        rec.text, rec.replacements = replace_nouns(rec.original, ns, memo, stats)
        rec.type = "noun-repl" if rec.replacements else None
    return records


# 2. The stream: groups analysed on the engine, then switched in order until the budget ----------------

NOUN = {"start": "int32", "end": "int32", "text": "string", "tag": "string"}


def analysed_features():
    import datasets as ds

    return ds.Features({"group": ds.Value("int64"), "doc": ds.Value("int64"), "index": ds.Value("int32"),
                        "sep": ds.Value("string"), "original": ds.Value("string"),
                        "nouns": ds.List({k: ds.Value(v) for k, v in NOUN.items()})})


def process_tagger(tagger, lang: str):
    """A tagger object as given, or the one this process built for a tagger name (once per process)."""
    if not isinstance(tagger, str):
        return tagger
    from ..engine import process_local
    from ..text.tagging import get_tagger

    return process_local(("tagger", tagger, lang), lambda: get_tagger(tagger, lang))


class Analyse:
    """The per-group engine step: sentences of a group of documents with their nouns, one row each.

    ``tagger`` is a tagger name (each process builds its own, once) or a picklable tagger object."""

    def __init__(self, tagger, lang: str, noun_tags: Sequence[str]):
        self.tagger, self.lang, self.noun_tags = tagger, lang, list(noun_tags)

    def _tagger(self):
        return process_tagger(self.tagger, self.lang)

    def __call__(self, batch: dict) -> dict:
        out: dict[str, list] = {k: [] for k in ("group", "doc", "index", "sep", "original", "nouns")}
        for group, first, docs in zip(batch["group"], batch["first"], batch["docs"], strict=True):
            records, nouns = analyse(docs, first, self.lang, self._tagger(), self.noun_tags)
            for rec, ns in zip(records, nouns, strict=True):
                out["group"].append(group)
                out["doc"].append(rec.doc)
                out["index"].append(rec.index)
                out["sep"].append(rec.sep)
                out["original"].append(rec.original)
                out["nouns"].append([vars(n) for n in ns])
        return out


def _windows(n_groups: int, cfg: MigrateOptions) -> Iterator[range]:
    """Groups analysed per engine call: all at once without a budget; with one, windows that double
    (a budget usually stops early, and each window is one pool of workers started)."""
    if cfg.budget is None or cfg.engine == "datatrove":
        yield range(n_groups)
        return
    start, size = 0, 4 * max(cfg.num_proc, 1)
    while start < n_groups:
        yield range(start, min(n_groups, start + size))
        start, size = start + size, size * 2


def _analysed(documents, tagger, cfg: MigrateOptions, work: Path) -> Iterator[tuple[list[Record], list]]:
    """(records, nouns) per group of ``batch_size`` documents, in document order."""
    from .. import engine

    corpus = engine.as_corpus(documents)
    if len(corpus) == 0:
        return
    groups = engine.group_documents(corpus, cfg.batch_size, work)
    step, features = Analyse(tagger, cfg.source_lang, cfg.noun_tags), analysed_features()
    for w, window in enumerate(_windows(len(groups), cfg)):
        part = groups if len(window) == len(groups) else groups.select(window)
        rows = engine.run_groups(part, step, features, cfg, work, f"analysed-{w}", "tagging", shards="")
        yield from _regroup(rows)


def _regroup(rows) -> Iterator[tuple[list[Record], list[list[Noun]]]]:
    records: list[Record] = []
    nouns: list[list[Noun]] = []
    current = None
    for batch in rows.iter(batch_size=1024):
        for g, d, i, sep, orig, ns in zip(batch["group"], batch["doc"], batch["index"], batch["sep"],
                                          batch["original"], batch["nouns"], strict=True):
            if g != current and records:
                yield records, nouns
                records, nouns = [], []
            current = g
            records.append(Record(doc=d, index=i, original=orig, text=orig, sep=sep))
            nouns.append([Noun(**n) for n in ns])
    if records:
        yield records, nouns


def migrate(documents, tagger, translator, cfg: MigrateOptions, counter: TokenCounter | None = None,
            stats: Stats | None = None, work: str | os.PathLike | None = None) -> Iterator[Record]:
    """Code-switched sentence records in input order; stops before the sentence that would pass the budget.

    ``documents``: strings, or a corpus dataset (``engine.load_corpus``); ``tagger``: a name (each worker
    builds its own) or a tagger object (picklable when num_proc > 1); ``work``: folder for the Arrow files
    (default: a temporary one)."""
    if work is None:
        with tempfile.TemporaryDirectory(prefix="langshift-migrate.") as tmp:
            yield from migrate(documents, tagger, translator, cfg, counter, stats, tmp)
        return
    counter = counter or TokenCounter(cfg.tokenizer)
    stats = stats if stats is not None else Stats()
    quota, memo = Quota(cfg.share, cfg.seed), {}
    calls0, requests0 = translator_counts(translator)
    start = time.perf_counter()
    docs_seen: set[int] = set()
    bar = tqdm(desc="MIGRATE code-switching", unit="tok", total=cfg.budget)
    try:
        for records, nouns in _analysed(documents, tagger, cfg, Path(work)):
            batch = switch_batch(records, nouns, translator, quota, memo, stats)
            counts = counter.counts([r.text for r in batch])
            for rec, n in zip(batch, counts, strict=True):
                if cfg.budget is not None and stats.tokens + n > cfg.budget:
                    if stats.sentences == 0:
                        raise ConfigError("budget", cfg.budget, f"smaller than the first sentence ({n} tokens "
                                          f"under {counter.name}); give a budget of at least {n}")
                    stats.budget_reached = True
                    return
                stats.tokens += n
                stats.sentences += 1
                stats.source_words += len(rec.original.split())
                docs_seen.add(rec.doc)
                bar.update(n)
                yield rec
    finally:
        close_stream(stats, bar, translator, (calls0, requests0), start, len(docs_seen))


def summary(stats: Stats, cfg: MigrateOptions, counter: TokenCounter) -> dict:
    out = dict(vars(stats))
    out.update(token_counter=counter.name, budget=cfg.budget, share=cfg.share,
               tokens_per_second=round(stats.tokens / stats.seconds) if stats.seconds else None,
               translator_calls_per_noun=round(stats.translator_calls / stats.selected, 6) if stats.selected else 0.0)
    return out


def run_migrate(cfg: MigrateConfig) -> MigrateResult:
    """MIGRATE over ``cfg.text`` (text, .jsonl, .parquet): provenance to ``cfg.out`` (JSONL, or Parquet for
    OUT.parquet), the code-switched documents to ``cfg.text_out`` if set, the summary to OUT.summary.json,
    each atomically."""
    stats = Stats()
    # the tagger by name: each engine worker builds its own
    result = run_switch(cfg, stats, lambda corpus, run, work, translator, counter: migrate(
        corpus, run.tagger, translator, run, counter, stats, work), summary)
    log.info("MIGRATE: %d sentences, %d tokens, %d of %d nouns replaced, %d translator calls, %.0f tokens/s",
             stats.sentences, stats.tokens, stats.replaced, stats.nouns, stats.translator_calls,
             result["tokens_per_second"] or 0)
    return MigrateResult(out=str(cfg.out), text_out=cfg.text_out, **result)
