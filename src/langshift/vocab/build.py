"""What training and extending a tokenizer share: their options, the input texts, the base's special
tokens (kept: same strings, same roles, first in the vocabulary) and chat template, and saving."""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError
from ..files import atomic_dir, read_lines
from .canonical import _BYTE_PIECE, backend_json, describe_layout

ROLE_ATTRS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")
DEFAULT_SPECIALS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
MAX_VOCAB = 1 << 20


# 0. Options ------------------------------------------------------------------------------------------

@dataclasses.dataclass
class TrainOptions(StageConfig):
    kind: Literal["bpe", "unigram"] = opt("bpe", "tokenizer model: byte-level BPE, or SentencePiece-style "
                                                 "unigram with byte fallback")
    vocab_size: int = opt(32000, "size of the new vocabulary, special tokens and the 256 byte tokens included")
    min_frequency: int = opt(2, "a merge (train, BPE) or a new token (extend) must be seen at least "
                                    "this often in the text")
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
class ExtendOptions(StageConfig):
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



def skeleton(base_data: dict[str, Any] | None, model: dict[str, Any]) -> dict[str, Any]:
    """A backend JSON with the base's text pipeline (normalizer, pre-tokenizer, decoder) and ``model``."""
    data: dict[str, Any] = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
                            "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None}
    if base_data is not None:
        for key in ("normalizer", "pre_tokenizer", "decoder"):
            data[key] = copy.deepcopy(base_data.get(key))
    data["model"] = model
    return data

