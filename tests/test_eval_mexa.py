from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import EN_TEXT, ES_TEXT, save_model_folder, tiny_llama
from langshift.cli import main
from langshift.evaluate.mexa import alignment_score, mexa, plot_mexa, sentence_vectors


@pytest.fixture(scope="module")
def tiny(source_bpe):
    model = tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id, seed=2,
                       layers=3)
    return model.double(), source_bpe


def test_batched_equals_one_at_a_time(tiny):
    model, tok = tiny
    texts = EN_TEXT + ES_TEXT
    for opts in ({}, {"pooling": "last"}, {"exclude_first": True}):
        batched = sentence_vectors(model, tok, texts, batch_size=7, progress=False, **opts)
        single = np.concatenate([sentence_vectors(model, tok, [t], batch_size=1, progress=False, **opts)
                                 for t in texts], axis=1)
        assert batched.shape == (4, len(texts), 16)  # embedding output + 3 blocks
        assert np.abs(batched - single).max() < 1e-6


def test_position_weighted_mean_by_hand(tiny):
    import torch

    model, tok = tiny
    ids = tok(EN_TEXT[0])["input_ids"]
    with torch.no_grad():
        hs = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
    w = torch.arange(1, len(ids) + 1, dtype=torch.float64)
    expected = (hs[2][0] * w[:, None]).sum(0) / w.sum()
    got = sentence_vectors(model, tok, [EN_TEXT[0]], progress=False)
    assert np.allclose(got[2, 0], expected.numpy(), atol=1e-10)
    assert np.allclose(sentence_vectors(model, tok, [EN_TEXT[0]], layers=[2], progress=False)[0], got[2])
    # exclude_first: position 1 gets weight 0, the others keep weight t
    w[0] = 0
    no_first = sentence_vectors(model, tok, [EN_TEXT[0]], exclude_first=True, progress=False)[2, 0]
    assert np.allclose(no_first, ((hs[2][0] * w[:, None]).sum(0) / w.sum()).numpy(), atol=1e-10)
    last = sentence_vectors(model, tok, [EN_TEXT[0]], pooling="last", progress=False)[2, 0]
    assert np.allclose(last, hs[2][0, -1].numpy(), atol=1e-10)


def test_bad_options_are_named(tiny):
    from langshift.errors import ConfigError

    model, tok = tiny
    for kwargs, param in (({"pooling": "mean"}, "pooling"), ({"layers": [9]}, "layers"),
                          ({"precision": "fp8"}, "precision"), ({"batch_size": 0}, "batch_size")):
        with pytest.raises(ConfigError, match=param):
            sentence_vectors(model, tok, EN_TEXT[:2], progress=False, **kwargs)
    one_token = tok.convert_ids_to_tokens(tok(EN_TEXT[0])["input_ids"][:1])
    with pytest.raises(ConfigError, match="exclude_first"):
        sentence_vectors(model, tok, [tok.convert_tokens_to_string(one_token)], exclude_first=True, progress=False)


def test_bfloat16_autocast_stays_close(tiny):
    model, tok = tiny
    texts = EN_TEXT + ES_TEXT
    ref = sentence_vectors(model.float(), tok, texts, progress=False)
    fast = sentence_vectors(model, tok, texts, precision="bfloat16", progress=False)
    model.double()
    cos = (ref * fast).sum(-1) / np.linalg.norm(ref, axis=-1) / np.linalg.norm(fast, axis=-1)
    assert cos.min() > 0.999 and np.abs(ref - fast).max() > 0  # close, and bfloat16 really ran


def test_alignment_score_by_hand():
    en = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert alignment_score(en, en) == 1.0
    # pair 0's target is closer to en_2 than to en_0: the row rule fails pair 0
    xx = np.array([[0.1, 1.0], [0.0, 1.0], [1.0, 1.0]])
    assert alignment_score(en, xx) == pytest.approx(2 / 3)
    # S = [[1, .8], [0, .6]]: pair 1 beats its row (0) but not its column (S_01 = .8): only the column rule fails it
    assert alignment_score(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.8, 0.6]])) == 0.5


def test_centring_removes_a_shared_offset():
    rng = np.random.default_rng(1)
    en = rng.normal(size=(20, 8))
    xx = en + 0.05 * rng.normal(size=(20, 8))
    en_off, xx_off = en + 100.0, xx - 100.0 * np.eye(8)[0]  # huge shared and language-specific offsets
    assert alignment_score(en, xx) == 1.0
    assert alignment_score(en_off, xx_off) < 0.5
    assert alignment_score(en_off, xx_off, centre=True) == 1.0


def test_alignment_score_matches_naive_loops():
    rng = np.random.default_rng(0)
    en, xx = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    en[:6] = xx[:6] + 0.1 * rng.normal(size=(6, 5))
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    ok = 0
    for i in range(12):
        others = [j for j in range(12) if j != i]
        sii = cos(en[i], xx[i])
        ok += sii > max(cos(en[i], xx[j]) for j in others) and sii > max(cos(en[j], xx[i]) for j in others)
    assert alignment_score(en, xx) == pytest.approx(ok / 12) and ok >= 6


def test_mexa_result_plot_and_cli(tiny, tmp_path, capsys):
    model, tok = tiny
    pairs = list(zip(EN_TEXT, ES_TEXT, strict=False))
    res = mexa(model, tok, pairs, batch_size=3, progress=False)
    assert res["layers"] == [0, 1, 2, 3] and len(res["scores"]) == 4  # embedding output included, as in MEXA
    assert res["mean"] == pytest.approx(np.mean(res["scores"])) and res["max"] == max(res["scores"])
    assert res["settings"]["pooling"] == "weighted" and res["settings"]["centre"] is False
    blocks = mexa(model, tok, pairs, include_embeddings=False, progress=False)
    assert blocks["layers"] == [1, 2, 3] and blocks["scores"] == res["scores"][1:]
    same = mexa(model, tok, [(e, e) for e, _ in pairs], progress=False)
    assert same["scores"] == [1.0] * 4  # identical sentences are perfectly aligned
    plot_mexa({"tiny": res}, tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"

    folder = save_model_folder(model.float(), tok, tmp_path / "model")
    model.double()
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps({"en": e, "xx": x}) + "\n" for e, x in pairs))
    assert main(["eval", "mexa", "--model", str(folder), "--pairs", str(pairs_file), "--save", str(tmp_path / "run"),
                 "--plot", str(tmp_path / "p.png")]) == 0
    out = json.loads(capsys.readouterr().out)["results"][str(folder)]["mexa"]
    assert out["n_pairs"] == 8 and (tmp_path / "p.png").is_file() and (tmp_path / "run" / "mexa.model.json").is_file()


@pytest.mark.real_model
def test_real_model_mexa_runs(real_model_path):
    from langshift.evaluate.builders import build
    from langshift.models import load_model, load_tokenizer

    # Raw MEXA of SmolLM2-135M on verse pairs is at chance (~0.02 on 100 pairs: its cosines are dominated by
    # shared outlier channels and a language offset); with the first position left out and each language
    # centred its middle layers align (0.75 at layer 15 on 100 pairs). 32 pairs: chance is ~0.03.
    pairs = [(r["en"], r["xx"]) for r in build("parallel", 32, seed=1)]
    model, tok = load_model(real_model_path), load_tokenizer(real_model_path)
    opts = dict(batch_size=32, layers=[0, *range(10, 21)], exclude_first=True, precision="bfloat16", progress=False)
    en = sentence_vectors(model, tok, [e for e, _ in pairs], **opts)
    xx = sentence_vectors(model, tok, [x for _, x in pairs], **opts)
    assert alignment_score(en[0], xx[0], centre=True) < 0.3  # embedding output
    assert max(alignment_score(en[k], xx[k], centre=True) for k in range(1, 12)) > 0.4  # blocks 10..20
    # mismatched pairs stay at chance: centring does not invent alignment
    assert max(alignment_score(en[k], np.roll(xx[k], 1, axis=0), centre=True) for k in range(12)) < 0.15
