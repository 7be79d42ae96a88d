"""Extend the base tokenizer with target-language tokens: the merged-vocabulary route (MIGRATE appendix C).

``extend_tokenizer`` adds N target-language tokens to the source tokenizer so that ordinary tokenisation
produces them. For BPE this continues BPE training on top of the source tokenizer's own segmentation
and appends the new merges after the source ones; for unigram it adds the best-scoring target pieces;
for WordPiece the target tokenizer's new entries. Existing ids, special tokens and the chat template
are unchanged, so the base model's rows stay valid.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..errors import LangshiftError
from .build import ExtendOptions, collect_texts, skeleton, specials_of, wrap
from .canonical import _BYTE_PIECE, backend_json, describe_layout, model_vocab


def extend_tokenizer(base_tokenizer, texts, n_new: int, *, min_frequency: int = 2, show_progress: bool = True):
    """The base tokenizer plus up to ``n_new`` target-language tokens (ids after all existing ones).

    Existing ids, special tokens and the chat template are unchanged, so the base model's rows stay valid.
    """
    cfg = ExtendOptions(add=n_new, min_frequency=min_frequency, show_progress=show_progress)
    texts = collect_texts(texts)
    data = backend_json(base_tokenizer)
    layout = describe_layout(base_tokenizer, data)
    extend = {"BPE": _extend_bpe, "Unigram": _extend_unigram, "WordPiece": _extend_wordpiece}.get(layout.model_type)
    if extend is None:
        raise LangshiftError(f"cannot extend a {layout.model_type} tokenizer; supported: BPE, Unigram, WordPiece")
    extended, added = extend(base_tokenizer, data, layout, texts, cfg)
    if added < cfg.add:
        warnings.warn(f"the text supports only {added} new tokens (asked for {cfg.add}); give more text or "
                      "lower min_frequency", stacklevel=2)
    from tokenizers import Tokenizer

    return wrap(Tokenizer.from_str(json.dumps(extended)), specials_of(base_tokenizer))


def _words(backend, data: dict[str, Any], layout, texts: list[str]) -> Counter[str]:
    """Pre-tokenised pieces of the texts as the base model sees them, with counts."""
    counts: Counter[str] = Counter()
    normalizer, pre = backend.normalizer, backend.pre_tokenizer
    marker = re.compile(f"(?={re.escape(layout.marker)})") if layout.marker else None
    for text in texts:
        text = normalizer.normalize_str(text) if normalizer is not None else text
        if pre is not None:
            counts.update(piece for piece, _ in pre.pre_tokenize_str(text))
        elif marker is not None:
            # Llama-style SentencePiece has no pre-tokenizer; cut before each ▁ so merges never span words.
            counts.update(p for p in marker.split(text) if p)
        else:
            counts[text] += 1
    return counts


def _next_id(tokenizer, data: dict[str, Any]) -> int:
    ids = [*model_vocab(data), *(a["id"] for a in data.get("added_tokens", []))]
    return max(len(tokenizer), max(ids, default=-1) + 1)


def _extend_bpe(base, data, layout, texts, cfg: ExtendOptions) -> tuple[dict[str, Any], int]:
    """Continue BPE training from the base's segmentation and append the learned merges.

    The base's merges all rank before the new ones, so tokenisation first reproduces the base
    segmentation and then applies the new merges in the order they were learned: every new token is
    produced by ordinary tokenisation, and decoding stays byte-exact (a merge only joins strings).
    """
    from tokenizers import Tokenizer, trainers

    backend = base.backend_tokenizer
    words = _words(backend, data, layout, texts)

    # 3.1 Segment each distinct piece with the base model; byte-fallback pieces split a piece, because
    # joining "<0xC3>" and "<0xA9>" as strings would make a token that spells neither byte.
    sequences: Counter[tuple[str, ...]] = Counter()
    for piece, count in words.items():
        run: list[str] = []
        for tok in backend.model.tokenize(piece):
            if layout.byte_fallback and _BYTE_PIECE.match(tok.value):
                if run:
                    sequences[tuple(run)] += count
                run = []
            else:
                run.append(tok.value)
        if run:
            sequences[tuple(run)] += count

    # 3.2 tokenizers' BpeTrainer cannot start from an existing vocabulary, so spell each base token as one
    # private character and let it learn merges over those "characters" (planes 1-16: no surrogates).
    symbols = sorted({t for seq in sequences if len(seq) > 1 for t in seq})
    to_char = {t: chr(0x10000 + i) for i, t in enumerate(symbols)}
    to_token = {c: t for t, c in to_char.items()}
    margin = cfg.add + cfg.add // 4 + 16  # some merges rebuild a token the base already has
    trainer = trainers.BpeTrainer(vocab_size=len(symbols) + margin, min_frequency=cfg.min_frequency,
                                  show_progress=cfg.show_progress, special_tokens=[])
    learner = Tokenizer.from_str(json.dumps(skeleton(None, {"type": "BPE", "vocab": {}, "merges": []})))

    def stream() -> Iterator[str]:
        for seq, count in sequences.items():
            if len(seq) > 1:
                spelled = "".join(to_char[t] for t in seq)
                for _ in range(count):
                    yield spelled

    learner.train_from_iterator(stream(), trainer)
    learned = json.loads(learner.to_str())["model"]["merges"]

    # 3.3 Append merges in learned order until n_new new tokens exist (a prefix of merges is always valid).
    out = copy.deepcopy(data)
    vocab, merges = out["model"]["vocab"], out["model"]["merges"]
    pair_as_string = bool(merges) and isinstance(merges[0], str)
    next_id, added = _next_id(base, data), 0
    for merge in learned:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        a, b = "".join(to_token[c] for c in left), "".join(to_token[c] for c in right)
        if added >= cfg.add:
            break
        merges.append(f"{a} {b}" if pair_as_string else [a, b])
        if a + b not in vocab:
            vocab[a + b] = next_id
            next_id += 1
            added += 1
    return out, added


def _train_like(base, data, layout, texts, model: str, size: int, cfg: ExtendOptions) -> dict[str, Any]:
    """A throw-away tokenizer of the base's model type and text pipeline, trained on the texts."""
    from tokenizers import Tokenizer, trainers

    if model == "Unigram":
        shape = skeleton(data, {"type": "Unigram", "unk_id": None, "vocab": [], "byte_fallback": False})
        trainer = trainers.UnigramTrainer(vocab_size=size, show_progress=cfg.show_progress)
    else:
        shape = skeleton(data, {"type": "WordPiece", "vocab": {}, "unk_token": "[UNK]",
                                 "continuing_subword_prefix": layout.continuation,
                                 "max_input_chars_per_word": data["model"].get("max_input_chars_per_word", 100)})
        trainer = trainers.WordPieceTrainer(vocab_size=size, min_frequency=cfg.min_frequency,
                                            show_progress=cfg.show_progress,
                                            continuing_subword_prefix=layout.continuation)
    tok = Tokenizer.from_str(json.dumps(shape))
    tok.train_from_iterator(texts, trainer, length=len(texts))
    return json.loads(tok.to_str())


def _extend_unigram(base, data, layout, texts, cfg: ExtendOptions) -> tuple[dict[str, Any], int]:
    """Add the best-scoring pieces of a unigram model trained on the texts (Viterbi picks them when they
    make a likelier segmentation; any segmentation decodes to the same text)."""
    pieces = data["model"]["vocab"]
    if len(pieces) != len(base):
        raise LangshiftError(f"the base unigram vocabulary has {len(pieces)} pieces but the tokenizer {len(base)} "
                             "ids (added tokens after the pieces); new pieces would collide with them")
    known = {p for p, _ in pieces}
    target = _train_like(base, data, layout, texts, "Unigram", max(2 * cfg.add, cfg.add + 1000), cfg)
    fresh = sorted((p for p in target["model"]["vocab"] if p[0] not in known and not _BYTE_PIECE.match(p[0])),
                   key=lambda p: -p[1])[:cfg.add]
    out = copy.deepcopy(data)
    out["model"]["vocab"].extend([p, s] for p, s in fresh)
    return out, len(fresh)


def _extend_wordpiece(base, data, layout, texts, cfg: ExtendOptions) -> tuple[dict[str, Any], int]:
    """Add the target WordPiece entries the base lacks that the target tokenizer uses most on the texts;
    greedy longest-match tokenisation uses them wherever they fit."""
    from tokenizers import Tokenizer

    vocab = data["model"]["vocab"]
    target = _train_like(base, data, layout, texts, "WordPiece", max(4 * cfg.add, len(vocab) + cfg.add), cfg)
    used = Counter(t for enc in Tokenizer.from_str(json.dumps(target)).encode_batch(texts) for t in enc.tokens)
    fresh = sorted((t for t, n in used.items() if t not in vocab and t != "[UNK]" and n >= cfg.min_frequency),
                   key=lambda t: (-used[t], target["model"]["vocab"][t]))[:cfg.add]
    out = copy.deepcopy(data)
    next_id = _next_id(base, data)
    for i, tok in enumerate(fresh):
        out["model"]["vocab"][tok] = next_id + i
    return out, len(fresh)
