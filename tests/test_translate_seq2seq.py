import pytest

from langshift.errors import ConfigError
from langshift.translate import get_translator
from langshift.translate.seq2seq import family_codes, nllb_code


@pytest.fixture(scope="module")
def tiny_m2m100(tmp_path_factory):
    """A random 1-layer M2M100 with a tiny unigram tokenizer and __en__/__es__ language tokens."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    import helpers

    tok = helpers.sentencepiece_unigram(helpers.EN_TEXT + helpers.ES_TEXT, vocab_size=120, byte_fallback=False)
    tok.add_special_tokens({"pad_token": "<pad>", "additional_special_tokens": ["__en__", "__es__"]})
    torch.manual_seed(0)
    config = M2M100Config(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          decoder_start_token_id=tok.eos_token_id)
    folder = tmp_path_factory.mktemp("m2m")
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def test_language_codes_per_family():
    assert nllb_code("es") == "spa_Latn" and nllb_code("ru") == "rus_Cyrl" and nllb_code("zh") == "zho_Hans"
    assert nllb_code("deu_Latn") == "deu_Latn"
    assert family_codes("m2m100", "es")[0] == "__es__" and family_codes("marian", "es")[0] == ">>spa<<"


def test_batched_generation_and_cache(tiny_m2m100, tmp_path):
    sents = [f"the old man number {i} reads a book" for i in range(7)] + ["the old man number 0 reads a book"]
    tr = get_translator("seq2seq", "en", "es", cache=tmp_path / "c.sqlite", model=tiny_m2m100, batch_size=3,
                        max_new_tokens=6, device="cpu")
    assert tr.backend.family == "m2m100" and tr.backend.target_token == "__es__"
    out = tr.translate_sentences(sents)
    assert len(out) == 8 and all(o is None or isinstance(o, str) for o in out)
    assert out[0] == out[7]  # deterministic; the duplicate was not generated twice
    assert tr.calls == 7 and tr.backend.batches == 3  # ceil(7 / 3) generate() calls
    again = get_translator("seq2seq", "en", "es", cache=tmp_path / "c.sqlite", model=tiny_m2m100, batch_size=3,
                           max_new_tokens=6, device="cpu")
    assert again.translate_sentences(sents) == out and again.calls == 0 and again.backend.batches == 0
    other = get_translator("seq2seq", "en", "es", cache=tmp_path / "c.sqlite", model=tiny_m2m100,
                           max_new_tokens=4, device="cpu")
    other.translate_sentences(sents[:1])
    assert other.calls == 1  # another generation setting is another cache key


def test_forced_target_token(tiny_m2m100, monkeypatch):
    tr = get_translator("seq2seq", "en", "es", model=tiny_m2m100, max_new_tokens=4, device="cpu")
    seen = {}
    real = tr.backend.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(tr.backend.model, "generate", spy)
    tr.translate_words(["Book"])
    es_id = tr.backend.tokenizer.convert_tokens_to_ids("__es__")
    assert seen["forced_bos_token_id"] == es_id
    en_id = tr.backend.tokenizer.convert_tokens_to_ids("__en__")
    assert en_id in seen["input_ids"][0].tolist()  # the source language token is written in


def test_errors(tiny_m2m100, tmp_path):
    with pytest.raises(ConfigError, match="target_lang='fr'.*__es__"):
        get_translator("seq2seq", "en", "fr", model=tiny_m2m100, device="cpu")
    with pytest.raises(ConfigError, match="model"):
        get_translator("seq2seq", "en", "es", model=str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="family"):
        get_translator("seq2seq", "en", "es", model=tiny_m2m100, family="t5")
