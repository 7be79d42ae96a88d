"""SmolLM2-135M-Instruct → an 8k Spanish byte-level BPE with FOCUS: reloads, generates, beats random."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.real_model


def test_focus_on_smollm2_beats_random_on_held_out_spanish(real_model_path, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from langshift.evaluate.bpb import bits_per_byte
    from langshift.models import load_model, load_tokenizer
    from langshift.resources import bible_verses
    from langshift.transfer.apply import save_transferred, transfer
    from langshift.transfer.config import TransferOptions
    from langshift.vocab.train import train_tokenizer

    torch.manual_seed(0)
    verses = list(bible_verses("es").values())
    held_out = verses[::500][:40]                         # spread over the whole Bible, never trained on
    rest = [v for i, v in enumerate(verses) if i % 500]
    source_tok = load_tokenizer(str(real_model_path))
    target_tok = train_tokenizer(rest[:6000], "bpe", 8000, source_tok, show_progress=False)
    aux = tmp_path / "aux.txt"
    aux.write_text("\n".join(rest[6000:14000]) + "\n", encoding="utf-8")

    scores = {}
    for method in ("random", "focus"):
        cfg = TransferOptions(method=method, aux_text=str(aux), aux_dim=100, aux_epochs=2, seed=0)
        model, prov = transfer(load_model(str(real_model_path)), source_tok, target_tok, cfg)
        assert prov.counts["copied"] > 1000 and prov.counts["new"] > 4000
        assert prov.counts["fallback_mean"] + prov.counts["fallback_fvt"] < 0.02 * prov.counts["new"]
        scores[method] = bits_per_byte(model, target_tok, held_out, progress=False)["bits_per_byte"]
        if method == "focus":
            save_transferred(model, target_tok, str(tmp_path / "focus"), summary=prov.summary())
    assert scores["focus"] < scores["random"] - 0.1, scores

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "focus")
    tok = AutoTokenizer.from_pretrained(tmp_path / "focus")
    assert loaded.config.vocab_size == len(tok) == 8000
    assert loaded.config.eos_token_id == tok.eos_token_id and tok.chat_template
    prompt = tok.apply_chat_template([{"role": "user", "content": "¿Quién creó los cielos?"}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = loaded.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
