"""Canonical bytes + word-start flag for each tokenizer family, read from the backend."""

from __future__ import annotations

import pytest

import helpers
from langshift.errors import LangshiftError
from langshift.vocab.canonical import (
    _byte_level_decoding,
    canonical_token,
    canonical_vocab,
    describe_layout,
)


def _by_token(tok, token: str):
    tid = tok.convert_tokens_to_ids(token)
    assert tid is not None and tok.convert_ids_to_tokens(tid) == token, token
    return canonical_token(tok, tid)


def test_byte_level_table_agrees_with_tokenizers():
    from tokenizers import pre_tokenizers

    table = _byte_level_decoding()
    assert set(table) == set(pre_tokenizers.ByteLevel.alphabet())
    assert sorted(table.values()) == list(range(256))
    text = "".join(chr(c) for c in [*range(1, 0x80), 0xA0, 0xE9, 0x7FF, 0x800, 0x4E2D, 0xFFFD, 0x10000, 0x1F600])
    spelled = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)
    assert bytes(table[c] for piece, _ in spelled for c in piece) == text.encode("utf-8")


def test_byte_level_bpe_tokens(source_bpe):
    assert describe_layout(source_bpe).family == "byte_level"
    the = _by_token(source_bpe, "Ġthe")
    assert (the.bytes, the.word_start, the.kind, the.text) == (b"the", True, "normal", "the")
    a = _by_token(source_bpe, "a")
    assert (a.bytes, a.word_start, a.kind) == (b"a", False, "normal")
    space = _by_token(source_bpe, "Ġ")  # a lone marker is a literal space, not a word start
    assert (space.bytes, space.word_start) == (b" ", False)
    newline = _by_token(source_bpe, "Ċ")
    assert newline.bytes == b"\n"


def test_byte_level_partial_utf8_keeps_raw_bytes(target_bpe):
    lead = _by_token(target_bpe, "Ã")  # byte 0xC3: first half of é, ñ, ó …
    assert (lead.bytes, lead.word_start, lead.kind, lead.text) == (b"\xc3", False, "byte", "\ufffd")
    tail = _by_token(target_bpe, "©")  # byte 0xA9: a continuation byte on its own
    assert (tail.bytes, tail.kind) == (b"\xa9", "byte")
    vocab = canonical_vocab(target_bpe)
    # every one of the 256 alphabet tokens is exactly one raw byte, all different
    singles = [t for t in vocab if t.kind in ("normal", "byte") and len(target_bpe.convert_ids_to_tokens(t.id)) == 1]
    assert sorted(t.bytes[0] if t.bytes != b" " else 32 for t in singles) == list(range(256))
    # a merged token holding a whole accented letter decodes to text
    accented = [t for t in vocab if "ó" in t.text]
    assert accented and all(t.kind == "normal" for t in accented)


def test_sentencepiece_unigram_tokens(target_unigram):
    layout = describe_layout(target_unigram)
    assert (layout.family, layout.marker, layout.byte_fallback) == ("metaspace", "▁", True)
    vocab = canonical_vocab(target_unigram)
    word = next(t for t in vocab if target_unigram.convert_ids_to_tokens(t.id) == "▁agua")
    assert (word.bytes, word.word_start, word.kind) == (b"agua", True, "normal")
    byte = _by_token(target_unigram, "<0xC3>")
    assert (byte.bytes, byte.word_start, byte.kind) == (b"\xc3", False, "byte")
    space = _by_token(target_unigram, "▁")
    assert (space.bytes, space.word_start) == (b" ", False)
    assert _by_token(target_unigram, "<0x20>").key == space.key
    assert _by_token(target_unigram, "<s>").kind == "special"


def test_llama_style_sentencepiece_without_pre_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, **{f"<0x{b:02X}>": 2 + b for b in range(256)}, "▁": 258, "h": 259, "o": 260,
             "▁h": 261, "▁ho": 262}
    model = models.BPE(vocab=vocab, merges=[("▁", "h"), ("▁h", "o")], unk_token="<unk>", byte_fallback=True)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>")
    assert describe_layout(fast).family == "metaspace"
    assert canonical_token(fast, 262).key == (b"ho", True)
    assert canonical_token(fast, 2 + 0xF0).key == (b"\xf0", False)
    assert canonical_token(fast, 0).kind == "special"


def test_wordpiece_tokens():
    tok = helpers.wordpiece(helpers.EN_TEXT)
    assert describe_layout(tok).family == "continuation"
    vocab = canonical_vocab(tok)
    cont = next(t for t in vocab if tok.convert_ids_to_tokens(t.id) == "##he")
    assert (cont.bytes, cont.word_start) == (b"he", False)
    whole = _by_token(tok, "the")
    assert (whole.bytes, whole.word_start) == (b"the", True)
    assert _by_token(tok, "[UNK]").kind == "special"


def test_added_and_special_tokens():
    tok = helpers.byte_level_bpe(helpers.EN_TEXT, vocab_size=300)
    tok.add_tokens(["hola mundo"])
    tok.add_special_tokens({"extra_special_tokens": ["<tool>"]})
    added = _by_token(tok, "hola mundo")
    assert (added.bytes, added.kind, added.word_start) == (b"hola mundo", "added", False)
    assert _by_token(tok, "<tool>").kind == "special"
    assert _by_token(tok, "<|im_start|>").kind == "special"
    assert len(canonical_vocab(tok)) == len(tok)


def test_bad_inputs():
    class Slow:
        is_fast = False
        name_or_path = "some/slow-model"

    with pytest.raises(LangshiftError, match="slow"):
        canonical_vocab(Slow())
    tok = helpers.wordpiece(helpers.EN_TEXT)
    with pytest.raises(LangshiftError, match="outside"):
        canonical_token(tok, len(tok))
