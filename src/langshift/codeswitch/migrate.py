"""MIGRATE code-switching (seed 000, §3.1): translate the nouns of English sentences in place.

Sentences → words with offsets → POS tags → nouns (NN, NNS, NNP, NNPS) → a seeded share of the noun
occurrences (1.0 = all; MIGRATE's "half" = 0.5) → each distinct (noun, tag) of a batch translated once,
in one translator call → nouns replaced in place, the text around them byte-identical → stop at a
token budget of code-switched output (MIGRATE used 1M and 3M tokens).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError
from ..files import atomic_write_json
from .provenance import (
    Edit,
    Quota,
    Record,
    TokenCounter,
    batched,
    check_share,
    splice,
    split_documents,
    translator_counts,
)

log = logging.getLogger(__name__)

PENN_NOUNS = ["NN", "NNS", "NNP", "NNPS"]


@dataclass
class MigrateConfig(StageConfig):
    src_lang: str = opt("en", "language of the input text")
    tgt_lang: str = opt("es", "language the nouns are translated into")
    tagger: str = opt("vote", "POS tagger by name for src_lang, Penn tags (`langshift ls`); vote = apertium "
                              "and hanta must agree: noun precision 0.99 vs 0.96 for either alone "
                              "(BENCHMARKS.md, POS taggers)")
    translator: str = opt("apertium", "word translator by name (`langshift ls` lists them)")
    cache: str | None = opt(None, "sqlite file caching translations across runs (default: none)")
    share: float = opt(1.0, "share of noun occurrences to translate, chosen at random (MIGRATE 'half': 0.5)")
    budget: int | None = opt(None, "stop after this many tokens of code-switched output (MIGRATE: 1M or 3M); "
                                   "default: the whole input")
    tokenizer: str | None = opt(None, "count tokens with this tokenizer (folder or model name); default: "
                                      "whitespace-separated words")
    noun_tags: list[str] = opt(PENN_NOUNS, "tags that mark a noun")
    batch_size: int = opt(256, "documents per batch; each batch makes at most one translator call")
    num_proc: int = opt(1, "worker processes for sentence splitting and tagging (translation stays in one "
                           "process, so each distinct noun is still translated once)")
    seed: int = opt(0, "seed for choosing which nouns to translate when share < 1")

    def validate(self) -> None:
        check_share("share", self.share)
        check_range("batch_size", self.batch_size, 1)
        check_range("num_proc", self.num_proc, 1)
        if self.budget is not None:
            check_range("budget", self.budget, 1)
        if not self.noun_tags:
            raise ConfigError("noun_tags", self.noun_tags, "give at least one tag, e.g. NN NNS NNP NNPS")


@dataclass
class Noun:
    start: int
    end: int
    text: str
    tag: str


@dataclass
class Stats:
    documents: int = 0
    sentences: int = 0
    source_words: int = 0
    tokens: int = 0
    nouns: int = 0
    selected: int = 0
    replaced: int = 0
    untranslated: int = 0
    unchanged: int = 0
    distinct_nouns: int = 0
    translator_calls: int = 0      # items the translator sent to its backend (distinct, not cached)
    translator_requests: int = 0   # backend batches
    budget_reached: bool = False
    seconds: float = 0.0


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


# 2. The stream: batches until the budget ----------------------------------------------------------

_WORKER: dict = {}


def _init_worker(tagger, lang: str, noun_tags: list[str]) -> None:
    import multiprocessing.util

    _WORKER.update(tagger=tagger, lang=lang, noun_tags=noun_tags)
    # a worker that ends normally stops the subprocesses its tagger keeps (and has waited for them)
    multiprocessing.util.Finalize(None, _close_worker_tagger, exitpriority=10)


def _close_worker_tagger() -> None:
    close = getattr(_WORKER.get("tagger"), "close", None)
    if close is not None:
        close()


def _analyse_in_worker(job: tuple[list[str], int]):
    docs, first = job
    return analyse(docs, first, _WORKER["lang"], _WORKER["tagger"], _WORKER["noun_tags"])


def _analysed(documents: Iterable[str], tagger, cfg: MigrateConfig) -> Iterator[tuple[list[Record], list]]:
    jobs = ((chunk, i * cfg.batch_size) for i, chunk in enumerate(batched(documents, cfg.batch_size)))
    if cfg.num_proc <= 1:
        for chunk, first in jobs:
            yield analyse(chunk, first, cfg.src_lang, tagger, cfg.noun_tags)
        return
    import multiprocessing

    # fork: workers inherit the tagger object as it is (no pickling); translation stays in this process,
    # so each distinct noun is still translated once.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(cfg.num_proc, _init_worker, (tagger, cfg.src_lang, list(cfg.noun_tags))) as pool:
        yield from pool.imap(_analyse_in_worker, jobs)
        pool.close()  # all done: let the workers end normally (leaving early terminates them)
        pool.join()


def migrate(documents: Iterable[str], tagger, translator, cfg: MigrateConfig, counter: TokenCounter | None = None,
            stats: Stats | None = None) -> Iterator[Record]:
    """Code-switched sentence records in input order; stops before the sentence that would pass the budget."""
    counter = counter or TokenCounter(cfg.tokenizer)
    stats = stats if stats is not None else Stats()
    quota, memo = Quota(cfg.share, cfg.seed), {}
    calls0, requests0 = translator_counts(translator)
    start = time.perf_counter()
    docs_seen: set[int] = set()
    bar = tqdm(desc="MIGRATE code-switching", unit="tok", total=cfg.budget)
    try:
        for records, nouns in _analysed(documents, tagger, cfg):
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
        bar.close()
        stats.documents = len(docs_seen)
        calls, requests = translator_counts(translator)
        stats.translator_calls, stats.translator_requests = calls - calls0, requests - requests0
        stats.seconds = time.perf_counter() - start


def summary(stats: Stats, cfg: MigrateConfig, counter: TokenCounter) -> dict:
    out = dict(vars(stats))
    out.update(token_counter=counter.name, budget=cfg.budget, share=cfg.share,
               tokens_per_second=round(stats.tokens / stats.seconds) if stats.seconds else None,
               translator_calls_per_noun=round(stats.translator_calls / stats.selected, 6) if stats.selected else 0.0)
    return out


def run_migrate(cfg: MigrateConfig, text: Sequence[str | os.PathLike], out: str | os.PathLike,
                text_out: str | os.PathLike | None = None, overwrite: bool = False, on_bad: str = "fail") -> dict:
    """Files in, provenance JSONL (+ optional plain text) out, atomically; returns the summary."""
    from ..text.tagging import get_tagger
    from ..translate import get_translator
    from .provenance import read_documents, write_outputs

    docs = read_documents(text, on_bad)
    tagger = get_tagger(cfg.tagger, cfg.src_lang)
    translator = get_translator(cfg.translator, cfg.src_lang, cfg.tgt_lang, cache=cfg.cache)
    counter, stats = TokenCounter(cfg.tokenizer), Stats()
    write_outputs(migrate(docs, tagger, translator, cfg, counter, stats), out, text_out, overwrite)
    result = summary(stats, cfg, counter)
    atomic_write_json(f"{out}.summary.json", result)
    log.info("MIGRATE: %d sentences, %d tokens, %d of %d nouns replaced, %d translator calls, %.0f tokens/s",
             stats.sentences, stats.tokens, stats.replaced, stats.nouns, stats.translator_calls,
             result["tokens_per_second"] or 0)
    return result
