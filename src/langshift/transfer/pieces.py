"""How the SOURCE tokenizer spells each target token (FVT, and every method's fallback).

A target token is compared by its full surface: its canonical bytes with a leading space when it
starts a word. (1) Its text (with that space) is encoded by the source tokenizer without special
tokens; the split is kept when the pieces' surfaces concatenate to exactly the target surface.
(2) Otherwise — bytes that are not complete UTF-8, a source normaliser that changes the text, a
SentencePiece source that would add a word-start marker to a continuation piece — the surface is
matched greedily, longest piece first, against the source vocabulary's surfaces, which spells any
byte string a byte-level or byte-fallback source vocabulary can spell.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..vocab.canonical import CanonicalToken

_NO_PIECES_KINDS = ("special", "unused")


def surface(t: CanonicalToken) -> bytes:
    """The bytes a token adds to decoded text, word-start space included."""
    return (b" " if t.word_start else b"") + t.bytes


def surface_index(source_tokens: Sequence[CanonicalToken]) -> dict[bytes, int]:
    """Ordinary-token surface → source id (ordinary before byte tokens, then lowest id)."""
    index: dict[bytes, int] = {}
    for t in sorted(source_tokens, key=lambda t: (t.kind != "normal", t.id)):
        if t.kind in ("normal", "byte") and t.bytes:
            index.setdefault(surface(t), t.id)
    return index


def greedy_split(target: bytes, index: dict[bytes, int], longest: int) -> list[int]:
    """Longest-match split of ``target`` into source surfaces; [] when some byte has no piece."""
    out, pos = [], 0
    while pos < len(target):
        for end in range(min(len(target), pos + longest), pos, -1):
            sid = index.get(target[pos:end])
            if sid is not None:
                out.append(sid)
                pos = end
                break
        else:
            return []
    return out


class SourcePieces(Sequence):
    """Per target id, the source ids spelling it — spelt on first use, in batches.

    FVT and compose read every new token's pieces; the other methods only those of the few tokens
    they fall back on, so spelling all 30k new tokens up front (the slowest step of a FOCUS transfer
    before) is left until someone asks. ``how`` holds, per spelt id, "tokenizer", "bytes" or "none".
    """

    def __init__(self, source_tok, source_tokens: Sequence[CanonicalToken], target_tokens: Sequence[CanonicalToken]):
        self.source_tok, self.source_tokens, self.target_tokens = source_tok, source_tokens, target_tokens
        self.pieces: dict[int, list[int]] = {}
        self.how: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.target_tokens)

    def __getitem__(self, i: int) -> list[int]:
        if i not in self.pieces:
            self.spell([i])
        return self.pieces[i]

    def spell(self, ids: Sequence[int]) -> None:
        """Spell every id of ``ids`` not spelt yet (one batched call of the source tokenizer)."""
        todo = [i for i in dict.fromkeys(ids) if i not in self.pieces]
        if todo:
            pieces, how = source_pieces(self.source_tok, self.source_tokens, self.target_tokens, todo)
            self.pieces.update(pieces)
            self.how.update(how)


def source_pieces(source_tok, source_tokens: Sequence[CanonicalToken], target_tokens: Sequence[CanonicalToken],
                  ids: Sequence[int]) -> tuple[dict[int, list[int]], dict[int, str]]:
    """For each target id in ``ids``: the source ids spelling it, and how they were found
    ("tokenizer", "bytes" or "none"). Special and unused target tokens get no pieces."""
    pieces: dict[int, list[int]] = {}
    how: dict[int, str] = {}
    # 1. The source tokenizer itself, on every target token whose surface is complete UTF-8.
    todo, texts = [], []
    for i in ids:
        t = target_tokens[i]
        if t.kind in _NO_PIECES_KINDS or not t.bytes:
            pieces[i], how[i] = [], "none"
            continue
        try:
            texts.append(surface(t).decode("utf-8"))
            todo.append(i)
        except UnicodeDecodeError:
            pieces[i] = []
    if texts:
        backend = getattr(source_tok, "backend_tokenizer", None)
        if backend is not None:  # the Rust tokenizer directly: the wrapper's per-text conversion cost 0.5 s at 27k
            encoded = [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
        else:
            encoded = source_tok(texts, add_special_tokens=False)["input_ids"]
        for i, enc in zip(todo, encoded, strict=True):
            spelled = b"".join(surface(source_tokens[s]) if s < len(source_tokens) else b"\0" for s in enc)
            if enc and spelled == surface(target_tokens[i]):
                pieces[i], how[i] = list(enc), "tokenizer"
    # 2. Byte-exact greedy match for what the tokenizer could not reproduce.
    rest = [i for i in ids if i not in how]
    if rest:
        index = surface_index(source_tokens)
        longest = max((len(s) for s in index), default=1)
        for i in rest:
            split = greedy_split(surface(target_tokens[i]), index, longest)
            pieces[i], how[i] = split, "bytes" if split else "none"
    return pieces, how
