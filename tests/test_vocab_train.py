"""Training and extending tokenizers: specials, chat template, byte-exact round trips, fewer tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import helpers
from langshift.errors import ConfigError
from langshift.vocab.build import save_tokenizer
from langshift.vocab.extend import extend_tokenizer
from langshift.vocab.fertility import fertility
from langshift.vocab.train import train_tokenizer

TRICKY = ["¿Dónde está el niño? ¡Qué año tan raro!", "Él comió piña y ñame en la montaña.",
          "über 中文 <0x41> «cita»  dos  espacios\tfin", "Ünïcödé — “comillas” 😀"]


def _spanish():
    return helpers.ES_TEXT * 20


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_train_keeps_specials_and_round_trips(kind, source_bpe, tmp_path):
    tok = train_tokenizer(_spanish(), kind, 420, source_bpe, show_progress=False)
    assert len(tok) == 420
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert tok.special_tokens_map == source_bpe.special_tokens_map
    assert tok.chat_template == source_bpe.chat_template
    for text in helpers.ES_TEXT + TRICKY:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert tok.unk_token_id not in ids
    chat = tok.apply_chat_template([{"role": "user", "content": "¿Hola?"}], tokenize=False)
    assert chat == source_bpe.apply_chat_template([{"role": "user", "content": "¿Hola?"}], tokenize=False)
    # trained on Spanish: fewer tokens per word than the English source on Spanish text
    assert fertility(tok, helpers.ES_TEXT)["tokens_per_word"] < fertility(source_bpe, helpers.ES_TEXT)["tokens_per_word"]

    from transformers import AutoTokenizer

    out = save_tokenizer(tok, tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(out)
    assert again(TRICKY[0])["input_ids"] == tok(TRICKY[0])["input_ids"]
    assert again.chat_template == tok.chat_template and again.eos_token == "<|im_end|>"
    with pytest.raises(ConfigError, match="--overwrite"):
        save_tokenizer(tok, out)


def test_unigram_has_byte_fallback_not_matched_from_text():
    tok = train_tokenizer(_spanish(), "unigram", 500, show_progress=False)
    assert tok.special_tokens_map == {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>",
                                      "pad_token": "<pad>"}
    tokens = tok.tokenize("中 <0x41>")
    assert "<0xE4>" in tokens and "<0x41>" not in tokens
    assert tok.decode(tok("中 <0x41>")["input_ids"]) == "中 <0x41>"


def test_bpe_copies_base_pipeline_and_remaps_post_processor():
    from tokenizers import processors

    base = helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)
    base.add_special_tokens({"extra_special_tokens": ["<tool>"]})
    tool = base.convert_tokens_to_ids("<tool>")
    base.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<tool> $A", special_tokens=[("<tool>", tool)])
    tok = train_tokenizer(_spanish(), "bpe", 400, base, show_progress=False)
    new_tool = tok.convert_tokens_to_ids("<tool>")
    assert new_tool == 3 != tool
    assert tok("hola")["input_ids"][0] == new_tool
    assert tok.extra_special_tokens == ["<tool>"]
    assert json.loads(tok.backend_tokenizer.to_str())["pre_tokenizer"] == \
        json.loads(base.backend_tokenizer.to_str())["pre_tokenizer"]


def test_bad_training_inputs(tmp_path):
    with pytest.raises(ConfigError, match="vocab_size"):
        train_tokenizer(_spanish(), "bpe", 100)
    with pytest.raises(ConfigError, match="kind"):
        train_tokenizer(_spanish(), "wordlevel", 1000)
    with pytest.raises(ConfigError, match="no text"):
        train_tokenizer(["", "  "], "bpe", 1000)
    path = helpers.write_lines(tmp_path / "es.txt", _spanish())
    from_file = train_tokenizer([Path(path)], "bpe", 400, show_progress=False)
    from_list = train_tokenizer(_spanish(), "bpe", 400, show_progress=False)
    assert from_file.get_vocab() == from_list.get_vocab()  # deterministic, files read line by line


def _check_extension(base, ext, n, texts):
    assert len(base) < len(ext) <= len(base) + n
    assert ext.convert_ids_to_tokens(list(range(len(base)))) == base.convert_ids_to_tokens(list(range(len(base))))
    assert ext.added_tokens_decoder.keys() == base.added_tokens_decoder.keys()  # new tokens are not "added"
    before, after = fertility(base, texts), fertility(ext, texts)
    assert after["tokens_per_word"] < 0.9 * before["tokens_per_word"]
    produced = {i for text in texts for i in ext(text)["input_ids"] if i >= len(base)}
    assert produced, "ordinary tokenisation must produce the new tokens"
    return before, after


def test_extend_byte_level_bpe(source_bpe):
    ext = extend_tokenizer(source_bpe, _spanish(), 80, show_progress=False)
    _check_extension(source_bpe, ext, 80, helpers.ES_TEXT)
    for text in helpers.ES_TEXT + TRICKY + helpers.EN_TEXT:
        assert ext.decode(ext(text)["input_ids"]) == text
    assert ext.chat_template == source_bpe.chat_template
    assert ext.special_tokens_map == source_bpe.special_tokens_map


def test_extend_unigram(target_unigram):
    ext = extend_tokenizer(target_unigram, helpers.EN_TEXT * 20, 40, show_progress=False)
    _check_extension(target_unigram, ext, 40, helpers.EN_TEXT)
    # (not "<0x41>": the test helper makes its byte pieces added tokens, so even the base decodes it as "A")
    for text in helpers.EN_TEXT + [t for t in TRICKY if "<0x" not in t]:
        assert ext.decode(ext(text)["input_ids"]) == text


def test_extend_wordpiece():
    base = helpers.wordpiece(helpers.EN_TEXT, vocab_size=120)
    ext = extend_tokenizer(base, _spanish(), 60, show_progress=False)
    _check_extension(base, ext, 60, helpers.ES_TEXT)


def test_extend_warns_when_text_is_short(source_bpe):
    with pytest.warns(UserWarning, match="only"):
        ext = extend_tokenizer(source_bpe, ["hola hola"], 50, show_progress=False)
    assert len(ext) > len(source_bpe)
    with pytest.raises(ConfigError, match="add"):
        extend_tokenizer(source_bpe, ["hola"], 0)


DEFAULT_SYSTEM_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant named Tiny, "
    "trained by volunteers<|im_end|>\n{% endif %}" + helpers.CHAT_TEMPLATE
)


def test_chat_frame_spelt_as_the_base_spells_it():
    from langshift.vocab.frame import frame_pieces, frame_report

    # a base that knows its frame's words whole, as a real instruction-tuned model does
    frame_words = ["You are a helpful assistant named Tiny, trained by volunteers", "system", "user", "assistant"]
    base = helpers.byte_level_bpe(helpers.EN_TEXT * 5 + frame_words * 30, 400)
    base.chat_template = DEFAULT_SYSTEM_TEMPLATE
    pieces = frame_pieces(base)
    assert {"system", "\n", "user", " helpful", "assistant", " assistant"} <= set(pieces)
    assert "Zq9marker" not in "".join(pieces) and "<|im_start|>" not in pieces
    kept = train_tokenizer(_spanish(), "bpe", 420, base, show_progress=False)
    report = frame_report(base, kept)
    # the default system prompt, the system/user/assistant openings and the end of a turn
    assert report["segments"] >= 4 and report["same"] == report["segments"], report["differs"]
    # without the frame, Spanish-only training shreds the English role words
    plain = train_tokenizer(_spanish(), "bpe", 420, base, show_progress=False, keep_chat_frame=False)
    assert frame_report(base, plain)["same"] < report["segments"]
    assert "assistant" not in plain.get_vocab()
    # the frame's pieces are ordinary overlapping tokens: the transfer copies their rows
    for token in ("system", "assistant", "Ġassistant", "Ġhelpful", "Ċ"):
        assert token in kept.get_vocab() and token in base.get_vocab()


def test_chat_frame_of_a_template_that_refuses_a_system_turn():
    from langshift.vocab.frame import frame_segments

    base = helpers.byte_level_bpe(helpers.EN_TEXT, 300)
    base.chat_template = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}"
                          + helpers.CHAT_TEMPLATE)
    segments = frame_segments(base)
    assert "<|im_start|>user\n" in segments and "<|im_end|>\n<|im_start|>assistant\n" in segments
    base.chat_template = None
    assert frame_segments(base) == []
