"""Fertility numbers checked by hand on tiny tokenizers."""

from __future__ import annotations

import pytest

import helpers
from langshift.errors import ConfigError
from langshift.vocab.fertility import fertility


def test_bytes_only_bpe_spends_one_token_per_byte():
    tok = helpers.byte_level_bpe(["x"], vocab_size=259)  # 3 specials + 256 bytes: no merges at all
    assert len(tok) == 259
    # "añb c": a, ñ (2 bytes), b, space, c = 6 bytes = 6 tokens; 2 words
    out = fertility(tok, ["añb c"])
    assert out == {"tokens_per_word": 3.0, "tokens_per_byte": 1.0, "bytes_per_token": 1.0, "tokens": 6,
                   "words": 2, "bytes": 6, "unk_rate": 0.0}


def test_wordpiece_counts_unknown_words():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece({"[UNK]": 0, "ab": 1, "a": 2, "##b": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    # "ab zz ab" → ab [UNK] ab (3 tokens, 3 words, 8 bytes); "ab" → ab
    out = fertility(fast, ["ab zz ab", "ab"])
    assert out["tokens"] == 4 and out["words"] == 4 and out["bytes"] == 10
    assert out["unk_rate"] == pytest.approx(1 / 4)
    assert out["tokens_per_word"] == 1.0 and out["bytes_per_token"] == 2.5


def test_fertility_needs_text(source_bpe):
    with pytest.raises(ConfigError, match="texts"):
        fertility(source_bpe, ["", ""])
