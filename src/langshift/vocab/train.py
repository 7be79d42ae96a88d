"""Train a target-language tokenizer that keeps the base's special tokens and chat template.

``train_tokenizer``: byte-level BPE (the base's pre-tokenizer and decoder when the base is byte-level;
all 256 bytes in the alphabet, so nothing is ever unknown) or a SentencePiece-style unigram (▁ word
starts, 256 byte-fallback pieces). Special tokens come first in the vocabulary, as in the base, so the
new tokenizer slots into the model's prompts unchanged.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from ..errors import ConfigError, LangshiftError
from .build import Specials, TrainOptions, collect_texts, skeleton, specials_of, wrap
from .canonical import _BYTE_PIECE, backend_json, describe_layout, model_vocab
from .frame import frame_pieces

METASPACE = "▁"
# Byte-fallback pieces must never be matched from literal text such as "<0x41>": they score far below every
# learned piece, and every printable ASCII character is a piece, so such text always has a likelier spelling.
BYTE_PIECE_SCORE = -1.0e6
ASCII_PRINTABLE = [chr(c) for c in range(0x21, 0x7F)]


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

    cfg = TrainOptions(kind=kind, vocab_size=vocab_size, min_frequency=min_frequency,
                          keep_chat_frame=keep_chat_frame, show_progress=show_progress)
    texts = collect_texts(texts_or_files)
    specials = specials_of(base_tokenizer)
    base_data = backend_json(base_tokenizer) if base_tokenizer is not None else None
    base_family = describe_layout(base_tokenizer, base_data).family if base_data is not None else None

    # 2.1 The text pipeline: the base's when it is of the same family, else the family's standard one.
    if cfg.kind == "bpe":
        same = base_family == "byte_level"
        data = skeleton(base_data if same else None, {"type": "BPE", "vocab": {}, "merges": []})
        if not same:
            data.update(_byte_level_defaults())
        need = len(specials.tokens) + 256
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                      special_tokens=specials.tokens, show_progress=cfg.show_progress,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        same = base_family == "metaspace"
        data = skeleton(base_data if same else None, {"type": "Unigram", "unk_id": None, "vocab": [],
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

