from __future__ import annotations

import json
import math

import pytest
import torch

from helpers import EN_TEXT, ES_TEXT, save_model_folder, tiny_llama, write_lines
from langshift.cli import main
from langshift.errors import ConfigError, LangshiftError
from langshift.evaluate.bpb import bits_per_byte, make_windows


@pytest.fixture(scope="module")
def tiny(source_bpe):
    # float64 so that the hand computation and the batched passes agree to rounding
    model = tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id, seed=3)
    return model.double(), source_bpe


def _hand_bits(model, tok, text: str) -> float:
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    return -sum(float(logp[t, ids[t + 1]]) for t in range(len(ids) - 1)) / math.log(2)


def test_equals_hand_computation(tiny):
    model, tok = tiny
    text = EN_TEXT[1]
    res = bits_per_byte(model, tok, [text], progress=False)
    expected = _hand_bits(model, tok, text)
    assert res["nll_bits"] == pytest.approx(expected, abs=1e-5)
    assert res["bytes"] == len(text.encode("utf-8"))
    assert res["bits_per_byte"] == pytest.approx(expected / res["bytes"], abs=1e-5)
    assert res["tokens"] == len(tok(text, add_special_tokens=False)["input_ids"])


def test_batched_equals_unbatched(tiny):
    model, tok = tiny
    texts = EN_TEXT + ES_TEXT
    one = bits_per_byte(model, tok, texts, batch_size=1, progress=False)
    many = bits_per_byte(model, tok, texts, batch_size=5, progress=False)
    assert many["per_document"] == pytest.approx(one["per_document"], abs=1e-9)
    assert many["bits_per_byte"] == pytest.approx(one["bits_per_byte"], abs=1e-6)
    # the byte denominator ignores tokenisation: multi-byte characters count as their UTF-8 bytes
    assert one["bytes"] == sum(len(t.encode("utf-8")) for t in texts) > sum(len(t) for t in texts)


def test_window_covering_text_equals_full_pass(tiny):
    model, tok = tiny
    text = " ".join(EN_TEXT[:3])
    n = len(tok(text, add_special_tokens=False)["input_ids"]) + 1
    full = bits_per_byte(model, tok, [text], max_length=n, stride=1, progress=False)
    other = bits_per_byte(model, tok, [text], max_length=200, stride=50, progress=False)
    assert full["nll_bits"] == pytest.approx(_hand_bits(model, tok, text), abs=1e-5)
    assert other["nll_bits"] == pytest.approx(full["nll_bits"], abs=1e-5)


def test_sliding_windows_score_each_token_once_with_context():
    seq = list(range(50))
    for max_length, stride in [(8, 3), (10, 9), (16, 8), (60, 10), (2, 1)]:
        scored = []
        for w in make_windows(seq, 0, max_length, stride):
            assert len(w.ids) <= max_length and w.first_scored >= 1
            begin = w.ids[0]
            positions = [begin + j for j in range(w.first_scored, len(w.ids))]
            if scored:  # later windows keep max_length - stride tokens of context (or all before them)
                assert w.first_scored >= min(max_length - stride, positions[0])
            scored += positions
        assert scored == list(range(1, 50)), (max_length, stride)


def test_long_text_windowed_close_to_full(tiny):
    model, tok = tiny
    text = " ".join(EN_TEXT)
    full = bits_per_byte(model, tok, [text], max_length=256, progress=False)
    win = bits_per_byte(model, tok, [text], max_length=24, stride=8, batch_size=3, progress=False)
    assert win["tokens"] == full["tokens"] > 24
    assert win["nll_bits"] != full["nll_bits"]  # less context → a different (but close) score
    assert win["bits_per_byte"] == pytest.approx(full["bits_per_byte"], rel=0.05)


def test_bad_inputs(tiny, tmp_path):
    model, tok = tiny
    with pytest.raises(ConfigError, match="texts"):
        bits_per_byte(model, tok, [], progress=False)
    with pytest.raises(ConfigError, match=r"texts\[1\]"):
        bits_per_byte(model, tok, ["fine", "  "], progress=False)
    with pytest.raises(ConfigError, match="stride"):
        bits_per_byte(model, tok, ["fine"], max_length=8, stride=8, progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        bits_per_byte(model, tok, ["fine"], batch_size=0, progress=False)


def test_cli(tiny, tmp_path, capsys):
    model, tok = tiny
    folder = save_model_folder(model, tok, tmp_path / "m")
    text = write_lines(tmp_path / "t.txt", EN_TEXT)
    assert main(["eval", "bpb", "--model", str(folder), "--text", str(text), "--limit", "3",
                 "--save", str(tmp_path / "run")]) == 0
    out = json.loads(capsys.readouterr().out)["results"][str(folder)]["bpb"]
    assert out["documents"] == 3 and out["bits_per_byte"] > 0 and out["bytes"] > 0
    saved = json.loads((tmp_path / "run" / "bpb.m.json").read_text())
    assert saved["kind"] == "bpb" and saved["result"]["bits_per_byte"] == out["bits_per_byte"]

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok line\n\xff\xfe broken\n")
    assert main(["eval", "bpb", "--model", str(folder), "--text", str(bad)]) == 2
    assert "line 2 is not UTF-8" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["eval", "bpb", "--model", str(folder), "--text", str(empty)]) == 2
    assert "holds no text" in capsys.readouterr().err


def test_no_bos_no_eos_skips_first_token(tiny):
    from helpers import byte_level_bpe

    model, _ = tiny
    tok = byte_level_bpe(EN_TEXT * 3, vocab_size=320, specials=["<unk>"])
    tok.eos_token = None
    tok.bos_token = None
    with pytest.warns(UserWarning, match="first token"):
        res = bits_per_byte(model, tok, [EN_TEXT[0]], progress=False)
    assert res["tokens"] == len(tok(EN_TEXT[0], add_special_tokens=False)["input_ids"]) - 1


@pytest.mark.real_model
def test_real_model_english_below_spanish(real_model_path):
    from langshift.models import load_model, load_tokenizer
    from langshift.resources import bible_parallel

    pairs = bible_parallel("en", "es")[1000:1020]
    model, tok = load_model(real_model_path), load_tokenizer(real_model_path)
    en = bits_per_byte(model, tok, [p[1] for p in pairs], progress=False)
    es = bits_per_byte(model, tok, [p[2] for p in pairs], progress=False)
    assert en["bits_per_byte"] < 0.8 * es["bits_per_byte"]


def test_lines_from_file_errors_name_the_parameter(tmp_path):
    from langshift.files import read_lines

    with pytest.raises(LangshiftError, match="--text"):
        read_lines(tmp_path / "missing.txt", param="--text")
