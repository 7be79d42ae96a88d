"""Train a target-language tokenizer, or extend the source tokenizer with target-language tokens.

Both keep what the source model relies on: its special tokens (same strings, same roles, first in the
vocabulary) and its chat template, so the new tokenizer slots into the model's prompts unchanged.

- ``train_tokenizer``: byte-level BPE (the base's pre-tokenizer and decoder when the base is byte-level;
  all 256 bytes in the alphabet, so nothing is ever unknown) or a SentencePiece-style unigram (▁ word
  starts, 256 byte-fallback pieces).
- ``extend_tokenizer``: the merged-vocabulary route (MIGRATE appendix C): add N target-language tokens to
  the source tokenizer so that ordinary tokenisation produces them. For BPE this continues BPE training
  on top of the source tokenizer's own segmentation and appends the new merges after the source ones;
  for unigram it adds the best-scoring target pieces; for WordPiece the target tokenizer's new entries.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError, LangshiftError
from ..files import atomic_dir, read_lines
from .canonical import _BYTE_PIECE, backend_json, describe_layout, model_vocab
from .frame import frame_pieces

log = logging.getLogger(__name__)

ROLE_ATTRS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")
DEFAULT_SPECIALS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
METASPACE = "▁"
# Byte-fallback pieces must never be matched from literal text such as "<0x41>": they score far below every
# learned piece, and every printable ASCII character is a piece, so such text always has a likelier spelling.
BYTE_PIECE_SCORE = -1.0e6
ASCII_PRINTABLE = [chr(c) for c in range(0x21, 0x7F)]


MAX_VOCAB = 1 << 20


@dataclasses.dataclass
class TokenizerConfig(StageConfig):
    kind: Literal["bpe", "unigram"] = opt("bpe", "tokenizer model: byte-level BPE, or SentencePiece-style "
                                                 "unigram with byte fallback")
    vocab_size: int = opt(32000, "size of the new vocabulary, special tokens and the 256 byte tokens included")
    min_frequency: int = opt(2, "a merge (BPE) must be seen at least this often in the training text")
    keep_chat_frame: bool = opt(True, "also train the base's chat-frame pieces (role words, default system "
                                      "prompt) so the new tokenizer spells the frame as the base does and "
                                      "its rows are copied, not approximated")
    show_progress: bool = opt(True, "show the trainer's progress bar")

    def validate(self) -> None:
        if self.kind not in ("bpe", "unigram"):
            raise ConfigError("kind", self.kind, "choose bpe or unigram")
        # the upper bound: the largest vocabularies in use (Gemma 3) hold 262k tokens; far larger sizes
        # make the Rust trainer abort the process instead of raising
        check_range("vocab_size", self.vocab_size, 300, MAX_VOCAB)
        check_range("min_frequency", self.min_frequency, 0)


@dataclasses.dataclass
class ExtendConfig(StageConfig):
    add: int = opt(1000, "how many target-language tokens to add to the base tokenizer")
    min_frequency: int = opt(2, "a new token must be seen at least this often in the text")
    show_progress: bool = opt(True, "show the trainer's progress bar")

    def validate(self) -> None:
        check_range("add", self.add, 1, MAX_VOCAB)
        check_range("min_frequency", self.min_frequency, 0)


# 1. Inputs ---------------------------------------------------------------------------------------

def collect_texts(texts_or_files: Iterable[str | os.PathLike] | str | os.PathLike,
                  param: str = "--text") -> list[str]:
    """Texts from a mix of strings (texts) and ``Path`` objects (UTF-8 files, one text a line)."""
    if isinstance(texts_or_files, (str, os.PathLike)):
        texts_or_files = [texts_or_files]
    texts: list[str] = []
    for item in texts_or_files:
        if isinstance(item, os.PathLike):
            texts.extend(read_lines(item, param))
        elif isinstance(item, str):
            texts.append(item)
        else:
            raise ConfigError(param, type(item).__name__, "give texts (str) or file paths (pathlib.Path)")
    if not any(t.strip() for t in texts):
        raise ConfigError(param, f"{len(texts)} texts", "no text to train on; give at least one non-empty text")
    return texts


@dataclasses.dataclass
class Specials:
    """Special tokens in vocabulary order, their roles, extra specials and the chat template."""

    tokens: list[str]
    roles: dict[str, str]
    extra: list[str] | dict[str, str]
    chat_template: str | dict | None = None
    model_max_length: int | None = None


def specials_of(base) -> Specials:
    """The base tokenizer's special tokens (added tokens flagged special, in id order, then role tokens)."""
    if base is None:
        return Specials(list(DEFAULT_SPECIALS.values()), dict(DEFAULT_SPECIALS), [])
    data = backend_json(base)
    layout = describe_layout(base, data)
    tokens = [a["content"] for a in sorted(data.get("added_tokens", []), key=lambda a: a["id"])
              if a.get("special") and not (layout.byte_fallback and _BYTE_PIECE.match(a["content"]))]
    roles = {r: str(getattr(base, r)) for r in ROLE_ATTRS if getattr(base, r, None) is not None}
    extra = getattr(base, "extra_special_tokens", None) or []
    extra = {k: str(v) for k, v in extra.items()} if isinstance(extra, dict) else [str(t) for t in extra]
    for t in [*roles.values(), *(extra.values() if isinstance(extra, dict) else extra)]:
        if t not in tokens:
            tokens.append(t)
    return Specials(tokens, roles, extra, getattr(base, "chat_template", None),
                    getattr(base, "model_max_length", None))


def wrap(backend, specials: Specials):
    """A ``PreTrainedTokenizerFast`` around a ``tokenizers.Tokenizer`` with the given specials."""
    from transformers import PreTrainedTokenizerFast

    kwargs: dict[str, Any] = dict(specials.roles)
    if specials.extra:
        kwargs["extra_special_tokens"] = specials.extra
    if specials.model_max_length:
        kwargs["model_max_length"] = specials.model_max_length
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, clean_up_tokenization_spaces=False, **kwargs)
    if specials.chat_template:
        fast.chat_template = specials.chat_template
    return fast


def save_tokenizer(tokenizer, out: str | os.PathLike, overwrite: bool = False, param: str = "--out") -> Path:
    """``save_pretrained`` into ``out`` through a temporary folder (never half-written)."""
    with atomic_dir(out, overwrite, param) as tmp:
        tokenizer.save_pretrained(tmp)
    return Path(out)


# 2. Training from scratch ------------------------------------------------------------------------

def _skeleton(base_data: dict[str, Any] | None, model: dict[str, Any]) -> dict[str, Any]:
    """A backend JSON with the base's text pipeline (normalizer, pre-tokenizer, decoder) and ``model``."""
    data: dict[str, Any] = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
                            "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None}
    if base_data is not None:
        for key in ("normalizer", "pre_tokenizer", "decoder"):
            data[key] = copy.deepcopy(base_data.get(key))
    data["model"] = model
    return data


def _byte_level_defaults() -> dict[str, Any]:
    return {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}}


def _metaspace_defaults() -> dict[str, Any]:
    from tokenizers import decoders, pre_tokenizers

    pre = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first", split=True)
    dec = decoders.Sequence([decoders.Replace(METASPACE, " "), decoders.ByteFallback(), decoders.Fuse(),
                             decoders.Strip(" ", 1, 0)])
    return {"pre_tokenizer": json.loads(pre.__getstate__()), "decoder": json.loads(dec.__getstate__())}


def _remap_post_processor(node: Any, vocab: dict[str, int]) -> Any:
    """The base's post-processor with its special-token ids looked up again in the new vocabulary."""
    if isinstance(node, list):
        return [_remap_post_processor(n, vocab) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _remap_post_processor(v, vocab) for k, v in node.items()}
    if node.get("type") == "TemplateProcessing":
        for name, spec in out.get("special_tokens", {}).items():
            missing = [t for t in spec["tokens"] if t not in vocab]
            if missing:
                raise LangshiftError(f"the base post-processor uses {missing} ({name}), absent from the new "
                                     "vocabulary")
            spec["ids"] = [vocab[t] for t in spec["tokens"]]
    return out


def train_tokenizer(texts_or_files, kind: str = "bpe", vocab_size: int = 32000, base_tokenizer=None,
                    *, min_frequency: int = 2, show_progress: bool = True, keep_chat_frame: bool = True):
    """A new ``PreTrainedTokenizerFast`` trained on the texts, keeping the base's specials and chat template.

    ``texts_or_files``: strings are texts, ``pathlib.Path`` items are UTF-8 files (one text a line).
    """
    from tokenizers import Tokenizer, pre_tokenizers, trainers

    cfg = TokenizerConfig(kind=kind, vocab_size=vocab_size, min_frequency=min_frequency,
                          keep_chat_frame=keep_chat_frame, show_progress=show_progress)
    texts = collect_texts(texts_or_files)
    specials = specials_of(base_tokenizer)
    base_data = backend_json(base_tokenizer) if base_tokenizer is not None else None
    base_family = describe_layout(base_tokenizer, base_data).family if base_data is not None else None

    # 2.1 The text pipeline: the base's when it is of the same family, else the family's standard one.
    if cfg.kind == "bpe":
        same = base_family == "byte_level"
        data = _skeleton(base_data if same else None, {"type": "BPE", "vocab": {}, "merges": []})
        if not same:
            data.update(_byte_level_defaults())
        need = len(specials.tokens) + 256
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                      special_tokens=specials.tokens, show_progress=cfg.show_progress,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        same = base_family == "metaspace"
        data = _skeleton(base_data if same else None, {"type": "Unigram", "unk_id": None, "vocab": [],
                                                       "byte_fallback": False})
        if not same:
            data.update(_metaspace_defaults())
        need = len(specials.tokens) + 256 + 2
        unk = specials.roles.get("unk_token")
        trainer = trainers.UnigramTrainer(vocab_size=cfg.vocab_size - 256, special_tokens=specials.tokens,
                                          unk_token=unk, show_progress=cfg.show_progress)
    if cfg.vocab_size < need:
        raise ConfigError("vocab_size", cfg.vocab_size, f"must be at least {need} ({len(specials.tokens)} special "
                                                        "tokens + 256 byte tokens + room for learned tokens)")

    # 2.2 Train; special tokens come first (ids 0..k-1) because the trainer puts them there. The chat
    # frame's pieces are repeated as often as there are texts, so they are learned early and whole.
    backend = Tokenizer.from_str(json.dumps(data))
    pieces = frame_pieces(base_tokenizer) if cfg.keep_chat_frame and base_tokenizer is not None else []
    repeat = max(1000, len(texts))
    frame = itertools.chain.from_iterable(itertools.repeat(pieces, repeat))  # lazy: len(texts) × ~20 pieces
    backend.train_from_iterator(itertools.chain(texts, frame), trainer, length=len(texts) + len(pieces) * repeat)
    trained = json.loads(backend.to_str())

    # 2.3 Unigram: add the 256 byte-fallback pieces right after the specials, so no character is unknown.
    if cfg.kind == "unigram":
        trained = _with_byte_pieces(trained, specials, cfg.vocab_size)
    vocab = {tok: i for i, tok in model_vocab(trained).items()}
    if base_data is not None and base_data.get("post_processor") is not None:
        trained["post_processor"] = _remap_post_processor(base_data["post_processor"], vocab)
    elif cfg.kind == "bpe" and not same:
        trained["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                                     "use_regex": True}
    return wrap(Tokenizer.from_str(json.dumps(trained)), specials)


def _with_byte_pieces(trained: dict[str, Any], specials: Specials, vocab_size: int) -> dict[str, Any]:
    pieces = trained["model"]["vocab"]
    k = len(specials.tokens)
    head, rest = pieces[:k], [p for p in pieces[k:] if not _BYTE_PIECE.match(p[0])]
    byte_pieces = [[f"<0x{b:02X}>", BYTE_PIECE_SCORE] for b in range(256)]
    lowest = min((score for _, score in rest), default=0.0)
    have = {p for p, _ in pieces}
    ascii_pieces = [[c, lowest - 1.0] for c in ASCII_PRINTABLE if c not in have]
    # Make room for the ASCII pieces by dropping the least likely multi-character pieces (never a character).
    excess = len(head) + len(byte_pieces) + len(rest) + len(ascii_pieces) - vocab_size
    if excess > 0:
        drop = {id(p) for p in sorted((p for p in rest if len(p[0]) > 1), key=lambda p: p[1])[:excess]}
        rest = [p for p in rest if id(p) not in drop]
    vocab = head + byte_pieces + rest + ascii_pieces
    unk = specials.roles.get("unk_token")
    trained["model"] = {"type": "Unigram", "vocab": vocab, "byte_fallback": True,
                        "unk_id": next((i for i, (p, _) in enumerate(vocab) if p == unk), None)}
    return trained


# 3. Extending the base tokenizer -----------------------------------------------------------------

def extend_tokenizer(base_tokenizer, texts, n_new: int, *, min_frequency: int = 2, show_progress: bool = True):
    """The base tokenizer plus up to ``n_new`` target-language tokens (ids after all existing ones).

    Existing ids, special tokens and the chat template are unchanged, so the base model's rows stay valid.
    """
    cfg = ExtendConfig(add=n_new, min_frequency=min_frequency, show_progress=show_progress)
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


def _extend_bpe(base, data, layout, texts, cfg: ExtendConfig) -> tuple[dict[str, Any], int]:
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
    learner = Tokenizer.from_str(json.dumps(_skeleton(None, {"type": "BPE", "vocab": {}, "merges": []})))

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


def _train_like(base, data, layout, texts, model: str, size: int, cfg: ExtendConfig) -> dict[str, Any]:
    """A throw-away tokenizer of the base's model type and text pipeline, trained on the texts."""
    from tokenizers import Tokenizer, trainers

    if model == "Unigram":
        skeleton = _skeleton(data, {"type": "Unigram", "unk_id": None, "vocab": [], "byte_fallback": False})
        trainer = trainers.UnigramTrainer(vocab_size=size, show_progress=cfg.show_progress)
    else:
        skeleton = _skeleton(data, {"type": "WordPiece", "vocab": {}, "unk_token": "[UNK]",
                                    "continuing_subword_prefix": layout.continuation,
                                    "max_input_chars_per_word": data["model"].get("max_input_chars_per_word", 100)})
        trainer = trainers.WordPieceTrainer(vocab_size=size, min_frequency=cfg.min_frequency,
                                            show_progress=cfg.show_progress,
                                            continuing_subword_prefix=layout.continuation)
    tok = Tokenizer.from_str(json.dumps(skeleton))
    tok.train_from_iterator(texts, trainer, length=len(texts))
    return json.loads(tok.to_str())


def _extend_unigram(base, data, layout, texts, cfg: ExtendConfig) -> tuple[dict[str, Any], int]:
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


def _extend_wordpiece(base, data, layout, texts, cfg: ExtendConfig) -> tuple[dict[str, Any], int]:
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
