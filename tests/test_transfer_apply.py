"""transfer() on tiny models: every method, tied and untied heads, padding, special ids, saving, errors."""

from __future__ import annotations

import pytest
import torch

import helpers
from langshift.errors import ConfigError, LangshiftError
from langshift.transfer.apply import Prebuilt, save_transferred, transfer
from langshift.transfer.config import TransferConfig, TransferOptions
from langshift.transfer.methods import INIT_METHODS
from langshift.transfer.pieces import surface
from langshift.transfer.run import run_transfer
from langshift.vocab.canonical import canonical_vocab

DICTIONARY = [("man", "hombre"), ("book", "libro"), ("king", "rey"), ("city", "ciudad"), ("water", "agua"),
              ("bread", "pan"), ("light", "luz"), ("world", "mundo"), ("river", "río"), ("dog", "perro"),
              ("field", "campo"), ("doctor", "médico"), ("brother", "hermano"), ("letter", "carta"),
              ("house", "casa"), ("table", "mesa"), ("children", "niños"), ("daughter", "hija"),
              ("people", "pueblo"), ("morning", "mañana")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer_inputs")
    es = helpers.write_lines(root / "es.txt", helpers.ES_TEXT * 4)
    en = helpers.write_lines(root / "en.txt", helpers.EN_TEXT * 4)
    dic = helpers.write_lines(root / "dict.tsv", [f"{a}\t{b}" for a, b in DICTIONARY])
    return {"es": str(es), "en": str(en), "dict": str(dic)}


def config(method: str, files, **kw) -> TransferOptions:
    return TransferOptions(method=method, aux_text=files["es"], source_text=files["en"], dictionary=files["dict"],
                          aux_dim=16, aux_epochs=2, k=4, **kw)


def source_model(source_bpe, tied=True, pad_rows=0, seed=0):
    return helpers.tiny_llama(len(source_bpe), tied=tied, pad_rows=pad_rows, seed=seed,
                              bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)


def matrices(model):
    return model.get_input_embeddings().weight.detach(), model.get_output_embeddings().weight.detach()


# 1. Every method, tied and untied --------------------------------------------------------------

@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("method", INIT_METHODS.names())
def test_every_method_copies_the_overlap_into_both_matrices(method, tied, source_bpe, target_bpe, files):
    model = source_model(source_bpe, tied=tied)
    src_in, src_out = (m.clone() for m in matrices(model))
    model, prov = transfer(model, source_bpe, target_bpe, config(method, files))
    assert "tokens" not in vars(prov)  # per-token provenance is built only when read
    new_in, new_out = matrices(model)
    assert new_in.shape[0] == len(target_bpe) and model.config.vocab_size == len(target_bpe)
    assert (new_in.data_ptr() == new_out.data_ptr()) == tied
    copied = [t for t in prov.tokens if t["how"] == "copied"]
    assert len(copied) == prov.counts["copied"] > 100
    for t in copied:
        s = t["sources"][0]["id"]
        assert torch.equal(new_in[t["id"]], src_in[s])
        assert torch.equal(new_out[t["id"]], src_out[s])
    new = [t["id"] for t in prov.tokens if t["how"] != "copied"]
    assert new and all(prov.tokens[i]["how"] == method for i in new)
    assert torch.isfinite(new_in).all() and torch.isfinite(new_out).all()
    if method != "mean":
        assert new_in[new].std(0).sum() > 0


def test_untied_output_rows_come_from_the_source_output_rows(source_bpe, target_bpe, files):
    model = source_model(source_bpe, tied=False)
    src_in, src_out = (m.clone() for m in matrices(model))
    model, prov = transfer(model, source_bpe, target_bpe, "fvt")
    new_in, new_out = matrices(model)
    checked = 0
    for t in prov.tokens:
        if t["how"] != "fvt":
            continue
        ids = [s["id"] for s in t["sources"]]
        assert torch.allclose(new_in[t["id"]], src_in[ids].mean(0), atol=1e-6)
        assert torch.allclose(new_out[t["id"]], src_out[ids].mean(0), atol=1e-6)
        assert not torch.allclose(new_in[t["id"]], new_out[t["id"]])
        checked += 1
    assert checked > 10


def test_fvt_splits_target_tokens_into_source_pieces_that_spell_them(source_bpe, target_unigram):
    """Across families (byte-level BPE source, SentencePiece target) the pieces spell the token exactly."""
    model = source_model(source_bpe)
    model, prov = transfer(model, source_bpe, target_unigram, "fvt")
    src, tgt = canonical_vocab(source_bpe), canonical_vocab(target_unigram)
    fvt = [t for t in prov.tokens if t["how"] == "fvt" and t["fallback"] is None]
    assert len(fvt) > 20
    for t in fvt:
        if len(t["sources"]) < 8:   # provenance keeps 8 pieces
            assert b"".join(surface(src[s["id"]]) for s in t["sources"]) == surface(tgt[t["id"]])
    assert {t["source_split"] for t in fvt} >= {"tokenizer"}


def test_methods_are_deterministic_end_to_end(source_bpe, target_bpe, files):
    runs = []
    for _ in range(2):
        model, _ = transfer(source_model(source_bpe), source_bpe, target_bpe, config("focus", files))
        runs.append(matrices(model)[0].clone())
    assert torch.equal(*runs)
    a, _ = transfer(source_model(source_bpe), source_bpe, target_bpe, config("random", files, seed=1))
    b, _ = transfer(source_model(source_bpe), source_bpe, target_bpe, config("random", files, seed=2))
    assert not torch.equal(matrices(a)[0], matrices(b)[0])


# 2. Padding rows ---------------------------------------------------------------------------------

def test_padding_rows_are_ignored_as_sources_and_new_padding_is_the_mean(source_bpe, target_bpe, files):
    model = source_model(source_bpe, tied=False, pad_rows=7)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(source_bpe):] = 1e4   # poison: must never be read
        model.get_output_embeddings().weight[len(source_bpe):] = -1e4
    src_in, src_out = (m[: len(source_bpe)].clone() for m in matrices(model))
    cfg = config("focus", files, pad_to_multiple_of=64)
    model, prov = transfer(model, source_bpe, target_bpe, cfg)
    new_in, new_out = matrices(model)
    n = len(target_bpe)
    assert new_in.shape[0] == new_out.shape[0] == 384 == model.config.vocab_size   # 330 -> 6 x 64
    assert torch.allclose(new_in[n:], src_in.mean(0).expand(384 - n, -1), atol=1e-6)
    assert torch.allclose(new_out[n:], src_out.mean(0).expand(384 - n, -1), atol=1e-6)
    assert new_in.abs().max() < 100 and new_out.abs().max() < 100
    assert all(s["id"] < len(source_bpe) for t in prov.tokens for s in t["sources"])


# 3. Saving ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_saved_folder_reloads_generates_and_uses_the_target_ids(source_bpe, tmp_path, files, tied):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = helpers.byte_level_bpe(helpers.ES_TEXT * 3, vocab_size=330, specials=["<pad>", "<s>", "</s>"])
    target.chat_template = None
    model = source_model(source_bpe, tied=tied)
    model, prov = transfer(model, source_bpe, target, config("fvt", files))
    save_transferred(model, target, str(tmp_path / "out"), summary=prov.summary())
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert torch.equal(loaded.get_input_embeddings().weight, model.get_input_embeddings().weight)
    assert torch.equal(loaded.get_output_embeddings().weight, model.get_output_embeddings().weight)
    assert loaded.config.tie_word_embeddings == tied
    for role in ("bos", "eos", "pad"):
        assert getattr(loaded.config, f"{role}_token_id") == getattr(tok, f"{role}_token_id") is not None
        assert getattr(loaded.generation_config, f"{role}_token_id") == getattr(tok, f"{role}_token_id")
    assert tok.convert_ids_to_tokens(loaded.config.eos_token_id) == "</s>"
    assert tok.chat_template == source_bpe.chat_template       # carried over from the source
    ids = tok("El rey", return_tensors="pt")
    out = loaded.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5


# 4. Bad input --------------------------------------------------------------------------------------

def test_model_with_fewer_rows_than_its_tokenizer_is_refused(source_bpe, target_bpe):
    model = helpers.tiny_llama(len(source_bpe) - 10)
    with pytest.raises(ConfigError, match="--model.*320 tokens.*310 rows"):
        transfer(model, source_bpe, target_bpe, "mean")


def test_fasttext_dimension_mismatch_is_refused(source_bpe, target_bpe, files):
    from langshift.static import StaticConfig, train_static

    def space(texts, dim):
        return train_static([t.split() for t in texts], StaticConfig(dim=dim, min_count=1, workers=1, epochs=1))

    pre = Prebuilt(target_space=space(helpers.ES_TEXT, 8), source_space=space(helpers.EN_TEXT, 16),
                   dictionary=DICTIONARY)
    with pytest.raises(ConfigError, match="--source-fasttext.*dimension 16.*8"):
        transfer(source_model(source_bpe), source_bpe, target_bpe, TransferOptions(method="wechsel"),
                 prebuilt=pre)


def test_unknown_method_and_missing_inputs_are_clear(files):
    with pytest.raises(LangshiftError, match="'fokus'.*Did you mean 'focus'"):
        TransferOptions(method="fokus")
    with pytest.raises(ConfigError, match="--aux-fasttext"):
        TransferOptions(method="focus").check_inputs()
    with pytest.raises(ConfigError, match="--dictionary"):
        TransferOptions(method="wechsel", aux_text=files["es"], source_text=files["en"]).check_inputs()
    with pytest.raises(ConfigError, match="--aux-model"):
        TransferOptions(method="salt").check_inputs()
    with pytest.raises(ConfigError, match="--temperature"):
        TransferOptions(method="wechsel", temperature=0)


def test_existing_output_is_refused_and_a_failed_save_leaves_nothing(source_bpe, target_bpe, tmp_path, monkeypatch):
    model_dir = helpers.save_model_folder(source_model(source_bpe), source_bpe, tmp_path / "src")
    tok_dir = tmp_path / "tgt"
    target_bpe.save_pretrained(tok_dir)
    out = tmp_path / "out"
    out.mkdir()
    cfg = TransferConfig(model=str(model_dir), tokenizer=str(tok_dir), out=str(out), method="mean")
    with pytest.raises(ConfigError, match="--out.*--overwrite"):
        run_transfer(cfg)
    out.rmdir()
    from transformers import PreTrainedTokenizerFast

    def broken(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        run_transfer(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "tgt"]


def test_salt_reads_an_aux_model_that_uses_the_target_tokenizer(source_bpe, target_bpe, tmp_path):
    aux_dir = helpers.save_model_folder(helpers.tiny_llama(len(target_bpe), hidden=24, seed=7), target_bpe,
                                        tmp_path / "aux")
    cfg = TransferOptions(method="salt", aux_model=str(aux_dir), k=6)
    model, prov = transfer(source_model(source_bpe), source_bpe, target_bpe, cfg)
    assert prov.counts["fallback_fvt"] + prov.counts["fallback_mean"] == 0
    assert sum(t["how"] == "salt" for t in prov.tokens) == prov.counts["new"]
    wrong = helpers.save_model_folder(helpers.tiny_llama(len(source_bpe)), source_bpe, tmp_path / "wrong")
    with pytest.raises(ConfigError, match="--aux-model.*differs from --tokenizer"):
        transfer(source_model(source_bpe), source_bpe, target_bpe,
                 TransferOptions(method="salt", aux_model=str(wrong)))
