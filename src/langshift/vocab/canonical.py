"""Canonical form of a token: its exact UTF-8 bytes plus a "starts a word" flag.

Tokenizer families spell the same surface differently: byte-level BPE writes bytes in GPT-2's printable
alphabet (``Ġ`` is a leading space), SentencePiece marks a word start with ``▁`` and spells raw bytes as
``<0xNN>``, WordPiece marks a continuation with ``##``. Comparing vocabularies across families needs
one form: the bytes the token contributes to decoded text (without the word-start space) and whether
it begins a word. The family is read from the tokenizer's backend (model, pre-tokenizer, decoder,
normalizer), never from the model's name.

Semantics (the same for every family, so keys compare across families):
- ``word_start`` is True when the token begins with the family's word-start marker (``Ġ``/``▁``, or
  for WordPiece-style vocabularies: no ``##``) *and* something other than whitespace follows it.
  The marker is then dropped from ``bytes``. A lone marker (``Ġ``, ``▁``) or an all-whitespace token is
  literal whitespace: ``bytes`` keeps its spaces and ``word_start`` is False, so ``Ġ``, ``▁`` and
  ``<0x20>`` all read as one space byte.
- ``kind == "byte"``: a SentencePiece byte-fallback piece ``<0xNN>`` (bytes = that one raw byte), or a
  byte-level BPE token whose bytes are not complete UTF-8 (part of a character, e.g. ``Ã`` = 0xC3).
  Their bytes are kept exactly; ``text`` shows U+FFFD for the missing part. Byte-fallback pieces never
  carry the word-start marker, so they are never word starts; a byte-level token such as ``Ġ`` + 0xC3
  is (the space precedes the partial character).
- ``kind == "special"``: the tokenizer's special tokens (named roles, extra special tokens and added
  tokens flagged special, and the model's unknown token); ``kind == "added"``: other added tokens.
  Both have ``bytes`` = their content and ``word_start`` False; they are matched by role or content.
- ``kind == "unused"``: an id below ``len(tokenizer)`` that the backend maps to no token (a gap).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from ..errors import LangshiftError
from ..perf import gc_paused

KINDS = ("normal", "byte", "special", "added", "unused")
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@dataclasses.dataclass(frozen=True, slots=True)  # slots: 10× cheaper to build, and a vocabulary builds 100k
class CanonicalToken:
    id: int
    bytes: bytes
    word_start: bool
    kind: str
    text: str  # readable surface without the word-start marker (bytes decoded, errors replaced)

    @property
    def key(self) -> tuple[bytes, bool]:
        """What two tokens must share to be the same token: (exact bytes, starts a word)."""
        return (self.bytes, self.word_start)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a backend spells tokens: ``family`` is byte_level, metaspace or continuation."""

    family: str
    model_type: str
    marker: str | None = None  # metaspace: the word-start character (usually ▁)
    continuation: str | None = None  # continuation family: the prefix of non-initial pieces (usually ##)
    byte_fallback: bool = False


# 1. Reading the backend -------------------------------------------------------------------------

def fast_backend(tokenizer):
    """The ``tokenizers.Tokenizer`` behind a fast tokenizer; a slow (Python) tokenizer is refused clearly."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", True):
        name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
        raise LangshiftError(
            f"tokenizer {name!r} is a slow (Python) tokenizer ({type(tokenizer).__name__}); langshift reads the "
            "fast backend. Load it with AutoTokenizer.from_pretrained(..., use_fast=True), or save it once as "
            "a fast tokenizer (tokenizer.json) with transformers' convert_slow_tokenizer")
    return backend


def backend_json(tokenizer) -> dict[str, Any]:
    """The whole ``tokenizers`` JSON of a fast tokenizer (merges included)."""
    return json.loads(fast_backend(tokenizer).to_str())


def light_backend_json(tokenizer) -> dict[str, Any]:
    """What canonical forms need from the backend, without parsing BPE merges (most of a large JSON)."""
    backend = fast_backend(tokenizer)
    model = backend.model
    mtype = type(model).__name__
    if mtype == "Unigram":
        model_data = json.loads(model.__getstate__())
    else:
        model_data = {"type": mtype, "vocab": backend.get_vocab(with_added_tokens=False)}
        for attr in ("byte_fallback", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
            model_data[attr] = getattr(model, attr, None)
    data: dict[str, Any] = {"model": model_data}
    for part in ("normalizer", "pre_tokenizer", "decoder"):
        component = getattr(backend, part)
        data[part] = json.loads(component.__getstate__()) if component is not None else None
    data["added_tokens"] = [{"id": i, "content": a.content, "special": a.special}
                            for i, a in backend.get_added_tokens_decoder().items()]
    return data


def _components(node: Any) -> Iterator[dict[str, Any]]:
    """Every component of a normalizer / pre-tokenizer / decoder, looking inside Sequences."""
    if isinstance(node, dict):
        yield node
        for key in ("pretokenizers", "decoders", "normalizers", "processors"):
            for child in node.get(key) or []:
                yield from _components(child)


def describe_layout(tokenizer, data: dict[str, Any] | None = None) -> Layout:
    """Detect how the backend spells tokens (family, marker, byte fallback) from its JSON."""
    data = data if data is not None else backend_json(tokenizer)
    model = data["model"]
    mtype = model.get("type") or ("Unigram" if isinstance(model.get("vocab"), list) else "BPE")
    fallback = bool(model.get("byte_fallback", False))
    parts = [*_components(data.get("pre_tokenizer")), *_components(data.get("decoder"))]
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if model.get("end_of_word_suffix"):
        raise LangshiftError(f"tokenizer {name!r}: BPE with an end-of-word suffix "
                             f"({model['end_of_word_suffix']!r}) is not supported; use a byte-level BPE, "
                             "SentencePiece or WordPiece tokenizer")
    if any(p.get("type") == "ByteLevel" for p in parts):
        return Layout("byte_level", mtype, byte_fallback=fallback)
    marker = _metaspace_marker(data, parts)
    if marker is not None:
        return Layout("metaspace", mtype, marker=marker, byte_fallback=fallback)
    prefix = model.get("continuing_subword_prefix")
    if mtype == "WordPiece" or prefix:
        return Layout("continuation", mtype, continuation=prefix or "##", byte_fallback=fallback)
    raise LangshiftError(
        f"tokenizer {name!r}: cannot tell how its {mtype} vocabulary marks word starts (no ByteLevel, no "
        "Metaspace/▁ replacement, no ## continuation prefix); supported: byte-level BPE, SentencePiece-style "
        "(▁) BPE/Unigram, WordPiece")


def _metaspace_marker(data: dict[str, Any], parts: list[dict[str, Any]]) -> str | None:
    for p in parts:
        if p.get("type") == "Metaspace":
            return p.get("replacement", "▁")
    # Llama-style: no pre-tokenizer; the normalizer writes ▁ for spaces and the decoder writes them back.
    for p in [*_components(data.get("decoder")), *_components(data.get("normalizer"))]:
        if p.get("type") == "Replace":
            pattern, content = p.get("pattern", {}).get("String"), p.get("content")
            if content == " " and pattern:
                return pattern
            if pattern == " " and content:
                return content
    return None


def model_vocab(data: dict[str, Any]) -> dict[int, str]:
    """id → token string of the backend's model (BPE/WordPiece/WordLevel dict or Unigram list)."""
    vocab = data["model"]["vocab"]
    if isinstance(vocab, list):
        return {i: piece for i, (piece, _score) in enumerate(vocab)}
    return {i: tok for tok, i in vocab.items()}


@lru_cache(maxsize=1)
def _byte_level_decoding() -> dict[str, int]:
    """GPT-2's printable stand-in character → the raw byte it spells.

    Written out here because ``tokenizers`` exposes only the alphabet (a set), not the mapping; the
    tests check it against the library's ByteLevel pre-tokenizer.
    """
    direct = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: b for b in direct}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = 256 + shifted
            shifted += 1
    return {chr(code): b for b, code in table.items()}


@lru_cache(maxsize=1)
def _byte_level_to_latin1() -> dict[int, str]:
    """str.translate table: stand-in character → the latin-1 character of its byte (fast bulk decoding)."""
    return {ord(c): chr(b) for c, b in _byte_level_decoding().items()}


# 2. One token → canonical form ------------------------------------------------------------------

def _split_word_start(raw: bytes) -> tuple[bytes, bool]:
    """Drop a leading word-start space when non-whitespace follows; else the bytes are literal."""
    if raw[:1] == b" " and len(raw) > 1 and not raw[1:].isspace():
        return raw[1:], True
    return raw, False


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _canonical_model_token(token: str, layout: Layout) -> tuple[bytes, bool, str]:
    """(bytes, word_start, kind) of an ordinary model-vocabulary token."""
    if layout.byte_fallback:
        m = _BYTE_PIECE.match(token)
        if m:
            return bytes([int(m.group(1), 16)]), False, "byte"
    if layout.family == "byte_level":
        try:
            raw = token.translate(_byte_level_to_latin1()).encode("latin-1")
        except UnicodeEncodeError:
            # A character outside the byte alphabet cannot come from byte-level pre-tokenisation; keep its UTF-8.
            table = _byte_level_decoding()
            raw = b"".join(bytes([table[c]]) if c in table else c.encode("utf-8") for c in token)
        raw, start = _split_word_start(raw)
        return raw, start, "normal" if _is_utf8(raw) else "byte"
    if layout.family == "metaspace":
        raw, start = _split_word_start(token.replace(layout.marker, " ").encode("utf-8"))
        return raw, start, "normal"
    prefix = layout.continuation
    if token.startswith(prefix) and len(token) > len(prefix):
        return token[len(prefix):].encode("utf-8"), False, "normal"
    return token.encode("utf-8"), True, "normal"


# 3. The whole vocabulary ------------------------------------------------------------------------

def special_ids(tokenizer, data: dict[str, Any]) -> set[int]:
    """Ids the tokenizer treats as special: named roles, extra specials, added tokens flagged special,
    and the model's own unknown token."""
    ids = {a["id"] for a in data.get("added_tokens", []) if a.get("special")}
    ids.update(i for i in tokenizer.all_special_ids if i is not None)
    model = data["model"]
    if isinstance(model.get("unk_id"), int):
        ids.add(model["unk_id"])
    elif model.get("unk_token") and isinstance(model.get("vocab"), dict) and model["unk_token"] in model["vocab"]:
        ids.add(model["vocab"][model["unk_token"]])
    return ids


class _Reader:
    """The parts of a backend that canonical forms need, read once."""

    def __init__(self, tokenizer):
        data = light_backend_json(tokenizer)
        self.layout = describe_layout(tokenizer, data)
        self.vocab = model_vocab(data)
        self.added = {a["id"]: a["content"] for a in data.get("added_tokens", [])}
        self.specials = special_ids(tokenizer, data)

    def token(self, i: int) -> CanonicalToken:
        token = self.vocab.get(i)
        if token is not None and self.layout.byte_fallback and _BYTE_PIECE.match(token):
            raw, start, kind = _canonical_model_token(token, self.layout)
        elif i in self.added or (i in self.specials and token is not None):
            content = self.added.get(i, token)
            raw, start, kind = content.encode("utf-8"), False, "special" if i in self.specials else "added"
        elif token is not None:
            raw, start, kind = _canonical_model_token(token, self.layout)
        else:
            raw, start, kind = b"", False, "unused"
        return CanonicalToken(i, raw, start, kind, raw.decode("utf-8", errors="replace"))


def canonical_vocab(tokenizer) -> list[CanonicalToken]:
    """Canonical form of every id below ``len(tokenizer)`` (list index = token id)."""
    reader = _Reader(tokenizer)
    with gc_paused():
        return [reader.token(i) for i in range(len(tokenizer))]


def canonical_token(tokenizer, token_id: int) -> CanonicalToken:
    """Canonical form of one id (parses the backend each call: use ``canonical_vocab`` for many ids)."""
    size = len(tokenizer)
    if not 0 <= token_id < size:
        raise LangshiftError(f"token id {token_id} is outside the tokenizer's ids 0..{size - 1}")
    return _Reader(tokenizer).token(token_id)
