"""SynCS mixing by new-token budget (seed 003, §4.3–4.4): how many new tokens each type may add.

The paper counts code-switching by the tokens it adds in the inserted language ("# New Tokens":
100M, 500M, 2,000M), under the tokenizer of the model to be trained, and mixes types by splitting
that budget:

- equal:       the four types, a quarter of the budget each;
- repl-equal:  token-repl and sent-repl, half each (the paper's best, "En-Repl. Equal", SynCS*);
- extreme:     one type takes the whole budget (the paper: En-Token-Repl. on English, Zh-Token-Annt.
               on Chinese — ``type`` / ``target_type``).

Sides: ``source`` code-switches documents in source_lang with target_lang insertions, ``target`` documents in
target_lang with source_lang insertions, ``both`` does each with its own budget. Only a share of the
documents is touched (the paper modifies 20% of the English documents), or a share of the sentences;
the sentences of that selection are visited in one seeded random order over the whole corpus, each given
the open type that has spent the smallest part of its budget, and modified until the type's budget is
spent: a type stops at the first modification that would pass its budget, so it never exceeds it and
falls short by less than that one sentence's new tokens. Since the visiting order is random over the
corpus, a budget spent early is still spread evenly over the documents ("adjusting the ratio of
modified sentences"). The corpus is held in memory to make that order.

Sentence formats, word choice and translation are those of ``codeswitch syncs`` (``syncs.build``).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..config import Result, StageConfig, check_range, opt
from ..errors import ConfigError
from ..files import atomic_dir, atomic_write_json
from .provenance import Record, TokenCounter, batched, check_share, split_documents, translator_counts
from .syncs import MIXES, build, eligible_words, pick_words

log = logging.getLogger(__name__)

SIDES = {"source": ["source"], "target": ["target"], "both": ["source", "target"]}
Kind = Literal["token-repl", "token-annt", "sent-repl", "sent-annt"]


@dataclass
class MixOptions(StageConfig):
    """What ``mix_side`` takes: the budgets, the mixing and the selection."""

    budget: int = opt(help="new tokens to add on each side (the paper's '# New Tokens'), split among the types")
    target_budget: int | None = opt(None, "the target side's budget when it differs from --budget")
    side: Literal["source", "target", "both"] = opt(
        "source", "code-switch documents in source_lang (target_lang insertions), in target_lang (source_lang insertions), or both")
    source_lang: str = opt("en", "language of the source-side documents")
    target_lang: str = opt("es", "language of the target-side documents and of the source side's insertions")
    mix: Literal["equal", "extreme", "repl-equal"] = opt(
        "repl-equal", "equal: 4 types, 1/4 each; repl-equal: token-repl and sent-repl, 1/2 each; extreme: one type")
    type: Kind = opt("token-repl", "the source side's type for mix=extreme")
    target_type: Kind = opt("token-annt", "the target side's type for mix=extreme")
    select: Literal["documents", "sentences"] = opt(
        "documents", "what --share selects: documents (all their sentences may switch) or sentences")
    share: float = opt(0.2, "share of documents (or sentences) that may be code-switched; the paper: 0.2")
    translator: str = opt("apertium", "translator by name (`langshift ls` lists them), used in both directions")
    cache: str | None = opt(None, "sqlite file caching translations across runs")
    words: Literal["nouns", "content", "random"] = opt(
        "nouns", "token-level: which words may switch (nouns/content words need --tagger for the side's language)")
    tagger: str = opt("apertium", "POS tagger by name, for words=nouns|content")
    word_share: float = opt(0.3, "token-level: share of the eligible words of a sentence switched (at least one)")
    tokenizer: str | None = opt(None, "count new tokens with this tokenizer (the model's to be trained: a folder, "
                                      "a tokenizer.json's folder, or a hub id); default: whitespace words")
    batch_size: int = opt(512, "sentences per translator call")
    seed: int = opt(0, "seed for the selection, the visiting order, and the words")

    def validate(self) -> None:
        super().validate()
        check_share("share", self.share)
        check_share("word_share", self.word_share)
        check_range("batch_size", self.batch_size, 1)
        for side in SIDES[self.side]:
            name = "budget" if side == "source" or self.target_budget is None else "target_budget"
            n = self.side_budget(side)
            if n < len(self.types(side)):
                raise ConfigError(name, n, f"give at least {len(self.types(side))} new tokens (one per type of "
                                           f"mix={self.mix})")
        if self.word_share == 0:
            raise ConfigError("word_share", 0, "token-level types need word_share > 0")

    def types(self, side: str) -> list[str]:
        if self.mix == "extreme":
            return [self.type if side == "source" else self.target_type]
        return list(MIXES[self.mix])

    def side_budget(self, side: str) -> int:
        return self.target_budget if side == "target" and self.target_budget is not None else self.budget

    def langs(self, side: str) -> tuple[str, str]:
        """(language of the documents, language inserted)."""
        return (self.source_lang, self.target_lang) if side == "source" else (self.target_lang, self.source_lang)


@dataclass(kw_only=True)
class MixConfig(MixOptions):
    """``codeswitch mix``: the options with the documents of each side and the output folder."""

    INPUTS: ClassVar[tuple[str, ...]] = ("text", "target_text")

    text: list[str] = opt([], "documents in source_lang (one a line), for side source|both")
    target_text: list[str] = opt([], "documents in target_lang (one a line), for side target|both")
    out: str = opt(help="folder for SIDE.jsonl (provenance), SIDE.txt and summary.json")
    overwrite: bool = opt(False, "replace an existing --out folder")
    on_bad: Literal["fail", "skip"] = opt("fail", "non-UTF-8 lines: fail or skip")

    def validate(self) -> None:
        super().validate()
        for name in ("text", "target_text"):
            if isinstance(getattr(self, name), str):  # a recipe gives one path
                setattr(self, name, [getattr(self, name)])
        for side in SIDES[self.side]:
            name = "text" if side == "source" else "target_text"
            if not getattr(self, name):
                raise ConfigError(name, None, f"side={self.side} needs documents in {self.langs(side)[0]}: give "
                                              f"--{name.replace('_', '-')}")


@dataclass
class MixResult(Result):
    mix: str
    side: str
    token_counter: str
    seed: int
    sides: dict = field(default_factory=dict)   # per side: its allocation, new tokens per type, counts
    new_tokens: int = 0


def allocate(budget: int, types: Sequence[str]) -> dict[str, int]:
    """The budget split evenly among ``types``; the remainder goes one token each to the first types."""
    q, r = divmod(budget, len(types))
    return {t: q + (i < r) for i, t in enumerate(types)}


def select(records: Sequence[Record], n_docs: int, how: str, share: float, seed: str) -> list[int]:
    """Indices of the records that may switch: every sentence of round(share × documents) random documents,
    or round(share × sentences) random sentences."""
    rng = random.Random(f"{seed}:select")
    if how == "documents":
        docs = set(rng.sample(range(n_docs), math.floor(share * n_docs + 0.5)))
        return [i for i, r in enumerate(records) if r.doc in docs]
    return sorted(rng.sample(range(len(records)), math.floor(share * len(records) + 0.5)))


def mix_side(documents: Sequence[str], translator, cfg: MixOptions, side: str = "source", tagger=None,
             counter: TokenCounter | None = None) -> tuple[list[Record], dict]:
    """Every sentence of ``documents`` as a record, code-switched under the side's per-type budgets; and
    the side's summary."""
    counter = counter or TokenCounter(cfg.tokenizer)
    lang, inserted = cfg.langs(side)
    types = cfg.types(side)
    if tagger is None and cfg.words != "random" and any(t.startswith("token") for t in types):
        raise ConfigError("words", cfg.words, "choosing nouns or content words needs a tagger; pass one, or use "
                                              "words=random")
    alloc = allocate(cfg.side_budget(side), types)
    key = f"{cfg.seed}:{side}"
    start, calls0 = time.perf_counter(), translator_counts(translator)
    records = list(split_documents(documents, lang))
    chosen = select(records, len(documents), cfg.select, cfg.share, key)
    order = random.Random(f"{key}:order").sample(chosen, len(chosen))
    # stopped: type → new tokens of the modification that did not fit (None: the budget was spent exactly)
    spent, stopped = dict.fromkeys(types, 0), {}
    modified, words_switched, not_translated = dict.fromkeys(types, 0), 0, 0
    word_memo: dict[tuple[str, str | None], str | None] = {}
    sent_memo: dict[str, str | None] = {}
    for chunk in batched(order, cfg.batch_size):
        open_types = [t for t in types if t not in stopped]
        if not open_types:
            break
        recs = [records[i] for i in chunk]
        # deal types: each sentence to the open type that has committed the smallest part of its budget,
        # committing an estimate of its cost (translations are about as long as their source)
        sizes = counter.counts([r.original for r in recs])
        pending = dict(spent)
        kinds = []
        for n in sizes:
            t = min(open_types, key=lambda t: (pending[t] / alloc[t], types.index(t)))
            pending[t] += max(1, n if t.startswith("sent") else round(cfg.word_share * n))
            kinds.append(t)
        tok = [r for r, k in zip(recs, kinds, strict=True) if k.startswith("token")]
        cands = eligible_words([r.original for r in tok], cfg.words, tagger) if tok else []
        picked = {r.id: pick_words(c, cfg.word_share, cfg.seed, r.id) for r, c in zip(tok, cands, strict=True)}
        new = list(dict.fromkeys((w, t) for ws in picked.values() for _, _, w, t in ws if (w, t) not in word_memo))
        if new:
            tags = None if cfg.words == "random" else [t for _, t in new]
            word_memo.update(zip(new, translator.translate_words([w for w, _ in new], tags), strict=True))
        sents = list(dict.fromkeys(r.original for r, k in zip(recs, kinds, strict=True)
                                   if k.startswith("sent") and r.original not in sent_memo))
        if sents:
            sent_memo.update(zip(sents, translator.translate_sentences(sents), strict=True))
        for rec, kind in zip(recs, kinds, strict=True):
            if kind in stopped:
                continue
            text, edits = build(rec.original, kind, picked.get(rec.id, []), word_memo, sent_memo.get(rec.original))
            if not edits:
                not_translated += 1
                continue
            n = sum(counter.counts([e.translation for e in edits]))
            if spent[kind] + n > alloc[kind]:
                stopped[kind] = n
                continue
            rec.text, rec.replacements, rec.type, rec.new_tokens = text, edits, kind, n
            spent[kind] += n
            if spent[kind] == alloc[kind]:
                stopped[kind] = None  # spent exactly: nothing more can fit
            modified[kind] += 1
            words_switched += len(edits) if kind.startswith("token") else 0
    ran_out = [t for t in types if t not in stopped]
    if ran_out:
        log.warning("%s side: the selected sentences ran out before the budget of %s was spent (%s of %s new "
                    "tokens); raise --share or lower the budget", side, ", ".join(ran_out),
                    {t: spent[t] for t in ran_out}, {t: alloc[t] for t in ran_out})
    calls, requests = translator_counts(translator)
    n_sent, n_mod = len(records), sum(modified.values())
    summary = {
        "side": side, "documents_lang": lang, "inserted_lang": inserted, "documents": len(documents),
        "sentences": n_sent, "select": cfg.select, "share": cfg.share,
        "selected_documents": len({records[i].doc for i in chosen}), "selected_sentences": len(chosen),
        "types": types, "budget": cfg.side_budget(side), "allocation": alloc, "new_tokens": spent,
        "short_by": {t: alloc[t] - spent[t] for t in types},
        # the modification that would have passed the type's budget: the shortfall is below it
        "stopped_at": {t: stopped.get(t) for t in types}, "ran_out": ran_out,
        "modified": modified, "magnitude": sum(spent.values()),
        "density": round(n_mod / n_sent, 6) if n_sent else 0.0,
        "density_selected": round(n_mod / len(chosen), 6) if chosen else 0.0,
        "words_switched": words_switched, "not_translated": not_translated,
        "translator_calls": calls - calls0[0], "translator_requests": requests - calls0[1],
        "seconds": round(time.perf_counter() - start, 3),
    }
    return records, summary


def run_mix(cfg: MixConfig) -> MixResult:
    """``out/{side}.jsonl`` (provenance, one record per sentence), ``out/{side}.txt`` and ``out/summary.json``."""
    from ..translate import get_translator
    from .provenance import read_documents, write_outputs

    cfg.check_output()
    inputs = {"source": cfg.text, "target": cfg.target_text}
    counter = TokenCounter(cfg.tokenizer)
    summary = {"mix": cfg.mix, "side": cfg.side, "token_counter": counter.name, "seed": cfg.seed, "sides": {}}
    with atomic_dir(cfg.out, cfg.overwrite) as tmp:
        for side in SIDES[cfg.side]:
            lang, inserted = cfg.langs(side)
            tagger = None
            if cfg.words != "random" and any(t.startswith("token") for t in cfg.types(side)):
                from ..text.tagging import get_tagger

                tagger = get_tagger(cfg.tagger, lang)
            translator = get_translator(cfg.translator, lang, inserted, cache=cfg.cache)
            records, summary["sides"][side] = mix_side(read_documents(inputs[side], cfg.on_bad), translator, cfg,
                                                       side, tagger, counter)
            write_outputs(records, tmp / f"{side}.jsonl", tmp / f"{side}.txt")
            log.info("SynCS mix, %s side: %s new tokens of %s", side, summary["sides"][side]["new_tokens"],
                     summary["sides"][side]["allocation"])
        summary["new_tokens"] = sum(s["magnitude"] for s in summary["sides"].values())
        atomic_write_json(tmp / "summary.json", summary)
    return MixResult(out=str(cfg.out), **summary)
