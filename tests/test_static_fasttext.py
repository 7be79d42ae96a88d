from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import EN_TEXT, ES_TEXT
from langshift.cli import main
from langshift.errors import ConfigError, LangshiftError
from langshift.static import StaticConfig, continue_static, load_static, tokenise_lines, train_static

TINY = dict(dim=16, bucket=5000, min_count=1, epochs=5, workers=1, seed=3)


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def en_space():
    return train_static(tokenise_lines(EN_TEXT * 20), StaticConfig(**TINY))


def test_defaults_follow_migrate():
    cfg = StaticConfig()
    assert (cfg.dim, cfg.sg, cfg.minn, cfg.maxn, cfg.window, cfg.negative, cfg.epochs, cfg.alpha) == (
        300, False, 5, 5, 5, 10, 1, 0.025)


def test_config_rejects_bad_ngram_range():
    with pytest.raises(ConfigError, match="maxn"):
        StaticConfig(minn=5, maxn=3)


def test_tokenise_drops_punctuation_variants():
    toks = tokenise_lines(["¡El rey! El rey; el REY."], lowercase=True)
    assert toks == [["el", "rey", "el", "rey", "el", "rey"]]


def test_vectors_known_and_composed(en_space):
    words = ["king", "kingdoms", "ab", ""]
    vecs, missing = en_space.lookup(words)
    assert vecs.dtype == np.float32 and vecs.shape == (4, 16)
    assert en_space.known("king") and not en_space.known("kingdoms")
    np.testing.assert_allclose(vecs[0], en_space.wv["king"], rtol=1e-6)
    # unseen string: mean of its character 5-gram vectors, as gensim composes it
    np.testing.assert_allclose(vecs[1], en_space.wv.get_vector("kingdoms"), rtol=1e-5, atol=1e-7)
    assert np.abs(vecs[1]).sum() > 0
    # "<ab>" has no 5-gram: the only all-zero rows, and flagged
    assert missing.tolist() == [False, False, True, True]
    assert not vecs[2:].any()
    np.testing.assert_array_equal(en_space.vectors(words), vecs)


def test_workers1_with_seed_is_deterministic_across_processes(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(EN_TEXT * 5), encoding="utf-8")
    code = ("import sys,numpy as np; from langshift.static import *; "
            f"s=train_static(tokenise_lines(open(sys.argv[1]).read().splitlines()), StaticConfig(**{TINY!r})); "
            "np.save(sys.argv[2], s.vectors(['king','kingdoms']))")
    outs = []
    for i, hashseed in enumerate(["1", "2"]):
        out = tmp_path / f"v{i}.npy"
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        subprocess.run([sys.executable, "-c", code, str(corpus), str(out)], check=True, env=env, timeout=120)
        outs.append(np.load(out))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_continue_keeps_old_words_close_and_adds_new(tmp_path):
    space = train_static(tokenise_lines(EN_TEXT * 20), StaticConfig(**TINY))
    old_words = ["king", "house", "water", "book"]
    before = space.vectors(old_words).copy()
    size = len(space)
    code_switched = [line.replace("king", "rey").replace("water", "agua") for line in EN_TEXT] * 3
    cfg = StaticConfig(**{**TINY, "epochs": 1})
    space = continue_static(space, tokenise_lines(code_switched), cfg)
    after = space.vectors(old_words)
    assert space.known("rey") and space.known("agua")
    assert len(space) == size + 2
    for b, a in zip(before, after, strict=True):
        assert _cos(b, a) > 0.9
    assert not np.allclose(before, after)  # training did move them


def test_save_load_roundtrip_and_atomic(tmp_path, en_space):
    out = tmp_path / "space"
    en_space.save(out)
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "static.json"]  # Facebook format, no pickle
    loaded = load_static(out)  # memory-mapped look-ups: same vectors up to float32 summation order
    np.testing.assert_allclose(loaded.vectors(["king", "kingdoms"]), en_space.vectors(["king", "kingdoms"]),
                               rtol=1e-6, atol=1e-7)
    assert json.loads((out / "static.json").read_text())["trainable"] is True
    with pytest.raises(ConfigError, match="--out"):
        en_space.save(out)


def test_train_save_load_continue_save_load_round_trip(tmp_path):
    space = train_static(tokenise_lines(EN_TEXT * 20), StaticConfig(**TINY))
    space.save(tmp_path / "a")
    full = load_static(tmp_path / "a", trainable=True)  # gensim reads the .bin: every row bit for bit
    for name in ("vectors_vocab", "vectors_ngrams"):
        np.testing.assert_array_equal(getattr(full.wv, name), getattr(space.wv, name))
    np.testing.assert_array_equal(full.model.syn1neg, space.model.syn1neg)
    assert full.wv.index_to_key == space.wv.index_to_key
    assert (full.wv.min_n, full.wv.max_n, full.wv.bucket, full.dim) == (5, 5, 5000, 16)
    before = full.vectors(["king", "house"]).copy()
    code_switched = [line.replace("king", "rey") for line in EN_TEXT] * 3
    cont = continue_static(full, tokenise_lines(code_switched), StaticConfig(**{**TINY, "epochs": 1}))
    assert cont.known("rey") and len(cont) == len(space) + 1
    after = cont.vectors(["king", "house"])
    assert not np.allclose(before, after) and all(_cos(b, a) > 0.9 for b, a in zip(before, after, strict=True))
    cont.save(tmp_path / "b")
    again = load_static(tmp_path / "b")
    np.testing.assert_allclose(again.vectors(["rey", "king", "reyes"]), cont.vectors(["rey", "king", "reyes"]),
                               rtol=1e-5, atol=1e-6)


def test_vectors_only_spaces_save_without_pickle(tmp_path, en_space):
    en_space.wv.save_word2vec_format(str(tmp_path / "m.vec"))
    vec = load_static(tmp_path / "m.vec")
    vec.save(tmp_path / "v")
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["static.json", "vectors.safetensors", "words.json"]
    back = load_static(tmp_path / "v")
    assert back.wv.index_to_key == vec.wv.index_to_key and not back.has_ngrams
    np.testing.assert_array_equal(back.vectors(["king", "zzz"]), vec.vectors(["king", "zzz"]))
    # a memory-mapped .bin is saved as a copy of that .bin; its gensim form as safetensors with n-grams
    en_space.save(tmp_path / "a")
    mapped = load_static(tmp_path / "a")
    mapped.save(tmp_path / "copy")
    assert (tmp_path / "copy" / "model.bin").read_bytes() == (tmp_path / "a" / "model.bin").read_bytes()
    strings = ["king", "kingdoms"]
    want = mapped.vectors(strings)
    mapped.most_similar("king", topn=2)  # converts to gensim keyed vectors
    mapped.save(tmp_path / "kv")
    kv = load_static(tmp_path / "kv")
    assert kv.has_ngrams and (tmp_path / "kv" / "vectors.safetensors").is_file()
    np.testing.assert_allclose(kv.vectors(strings), want, rtol=1e-6, atol=1e-7)


def test_legacy_gensim_pickle_only_with_allow_pickle(tmp_path, en_space, caplog):
    (tmp_path / "old").mkdir()
    en_space.model.save(str(tmp_path / "old" / "model.gensim"))
    with pytest.raises(ConfigError, match="--allow-pickle"):
        load_static(tmp_path / "old")
    with pytest.raises(ConfigError, match="--allow-pickle"):
        load_static(tmp_path / "old" / "model.gensim", trainable=True)
    space = load_static(tmp_path / "old", allow_pickle=True)
    assert "arbitrary code" in caplog.text
    np.testing.assert_array_equal(space.vectors(["king"]), en_space.vectors(["king"]))


def test_facebook_bin_and_vec(tmp_path, en_space):
    from gensim.models.fasttext import save_facebook_model

    save_facebook_model(en_space.model, str(tmp_path / "m.bin"))
    fb = load_static(tmp_path / "m.bin")
    np.testing.assert_allclose(fb.vectors(["king", "kingdoms"]), en_space.vectors(["king", "kingdoms"]), atol=1e-5)

    en_space.wv.save_word2vec_format(str(tmp_path / "m.vec"))
    vec = load_static(tmp_path / "m.vec")
    v, missing = vec.lookup(["king", "kingdoms"])
    np.testing.assert_allclose(v[0], en_space.wv["king"], atol=1e-5)
    assert missing.tolist() == [False, True] and not v[1].any()  # no n-grams in a .vec file
    with pytest.raises(LangshiftError, match="cannot be trained"):
        continue_static(vec, [["a", "b"]])


def test_facebook_bin_mapped_vectors_match_gensim_for_every_word_and_string(tmp_path, en_space):
    from gensim.models.fasttext import save_facebook_model

    save_facebook_model(en_space.model, str(tmp_path / "m.bin"))
    fb = load_static(tmp_path / "m.bin")
    words = en_space.wv.index_to_key
    np.testing.assert_allclose(fb.wv.vectors, en_space.wv.vectors, atol=1e-5)  # composed on demand
    strings = [*words[::3], "kingdomz", "çañón", "日本", "x", " "]
    np.testing.assert_allclose(fb.vectors(strings), np.stack([en_space.wv[s] for s in strings]), atol=1e-5)
    got, want = fb.most_similar(words[0], topn=3), en_space.most_similar(words[0], topn=3)
    assert [w for w, _ in got] == [w for w, _ in want]
    assert [c for _, c in got] == pytest.approx([c for _, c in want])


@pytest.mark.parametrize("min_n,max_n", [(3, 6), (1, 3), (1, 1), (5, 5)])
def test_vectorised_ngram_buckets_equal_gensims_per_word_hashes(min_n, max_n):
    from gensim.models.fasttext import ft_ngram_hashes

    from langshift.static.ngrams import ngram_buckets

    rng = np.random.default_rng(0)
    alphabet = list("abcñé€😀 Ġ<>") + ["日", "ß"]
    words = ["", "a", "ab", "Ġcorazón", "naïve", "日本語テキスト", "😀x"] + [
        "".join(rng.choice(alphabet, size=rng.integers(0, 14))) for _ in range(400)]
    owner, buckets = ngram_buckets(words, min_n, max_n, 2_000_000)
    assert (np.diff(owner) >= 0).all()
    for i, w in enumerate(words):
        assert sorted(buckets[owner == i].tolist()) == sorted(int(h) for h in ft_ngram_hashes(w, min_n, max_n, 2_000_000))


def test_mean_rows_averages_each_owners_rows_and_its_base_row():
    from langshift.static.ngrams import mean_rows

    matrix = np.arange(40, dtype=np.float32).reshape(10, 4)
    owner, rows = np.array([0, 0, 0, 2]), np.array([1, 7, 1, 3])
    out = mean_rows(matrix, owner, rows, 3)
    np.testing.assert_allclose(out[0], (2 * matrix[1] + matrix[7]) / 3)
    assert not out[1].any()  # no rows: zeros
    np.testing.assert_allclose(out[2], matrix[3])
    base = np.ones((3, 4), dtype=np.float32)
    np.testing.assert_allclose(mean_rows(matrix, owner, rows, 3, base=base)[1], base[1])
    np.testing.assert_allclose(mean_rows(matrix, owner, rows, 3, base=base)[2], (matrix[3] + 1) / 2)


def test_empty_and_untokenised_input():
    with pytest.raises(ConfigError, match="no words"):
        train_static([[], []], StaticConfig(**TINY))
    with pytest.raises(ConfigError, match="lists of words"):
        train_static(["a sentence as a string"], StaticConfig(**TINY))


def test_cli_train_continue_and_bad_utf8(tmp_path, capsys):
    en = tmp_path / "en.txt"
    en.write_text("\n".join(EN_TEXT * 10), encoding="utf-8")
    es = tmp_path / "es.txt"
    es.write_text("\n".join(ES_TEXT * 5), encoding="utf-8")
    flags = ["--dim", "8", "--bucket", "1000", "--min-count", "1", "--workers", "1"]
    assert main(["static", "train", "--text", str(en), "--out", str(tmp_path / "a"), *flags]) == 0
    assert main(["static", "continue", "--init", str(tmp_path / "a"), "--codeswitched", str(es),
                 "--out", str(tmp_path / "b"), "--min-count", "1"]) == 0
    b = load_static(tmp_path / "b")
    assert b.known("libro") and b.known("book") and b.dim == 8
    # the chain continues from what it wrote, without --allow-pickle
    assert main(["static", "continue", "--init", str(tmp_path / "b"), "--codeswitched", str(en),
                 "--out", str(tmp_path / "b2"), "--min-count", "1"]) == 0
    assert load_static(tmp_path / "b2").known("libro")
    # continuing on nothing is a mistake (it would only re-save the model): named, nothing written
    assert main(["static", "continue", "--init", str(tmp_path / "b"), "--out", str(tmp_path / "b3")]) == 2
    assert "--codeswitched" in capsys.readouterr().err and not (tmp_path / "b3").exists()

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\nbad \xff line\n")
    assert main(["static", "train", "--text", str(bad), "--out", str(tmp_path / "c"), *flags]) == 2
    assert "line 2 is not UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
