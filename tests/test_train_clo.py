"""CLO: the loss against a hand computation, target-only NLL, attention-only updates, reference reuse."""

from __future__ import annotations

import json
import math

import pytest
import torch

import helpers
from langshift.errors import ConfigError, LangshiftError
from langshift.train import clo
from langshift.train.runtime import read_log


def _pairs(n=4):
    return [{"id": f"p{i}", "x_en": helpers.EN_TEXT[i], "y_en": helpers.EN_TEXT[i + 1],
             "x_t": helpers.ES_TEXT[i], "y_t": helpers.ES_TEXT[i + 1]} for i in range(n)]


@pytest.fixture()
def tiny(tmp_path, source_bpe):
    model = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
    data = tmp_path / "clo.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in _pairs()), encoding="utf-8")
    return model, source_bpe, data


def _cfg(tmp_path, data, **kw):
    base = dict(model="unused", data=str(data), out=str(tmp_path / "out"), batch_size=2, max_steps=2,
                lr=1e-2, save_steps=1, max_len=64)
    base.update(kw)
    return clo.CLOConfig(**base)


def test_loss_matches_hand_computation():
    policy = torch.tensor([[-10.0, -12.0, -9.0, -8.0], [-5.0, -7.5, -6.0, -6.5]])
    ref = torch.tensor([[-11.0, -11.0, -10.0, -9.0], [-5.5, -7.0, -6.0, -6.0]])
    nll, lam, beta = torch.tensor(2.25), 0.3, 0.2
    parts = clo.clo_loss(policy, ref, nll, lam, beta)

    def sig(x):
        return 1 / (1 + math.exp(-x))

    cl = 0.0
    for p, r in zip(policy.tolist(), ref.tolist(), strict=True):
        z_en = beta * ((p[0] - r[0]) - (p[1] - r[1]))
        z_t = beta * ((p[2] - r[2]) - (p[3] - r[3]))
        cl += -math.log(sig(z_en)) - math.log(sig(z_t))
    cl /= 2
    assert parts["cl"].item() == pytest.approx(cl, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(lam * 2.25 + (1 - lam) * cl, rel=1e-6)
    assert parts["z_en"][0].item() == pytest.approx(beta * ((-10 + 11) - (-12 + 11)))


def test_nll_counts_target_chosen_rows_only():
    torch.manual_seed(0)
    logits = torch.randn(8, 6, 11)  # two pairs × four rows
    labels = torch.randint(0, 11, (8, 6))
    labels[:, :2] = -100  # prompts
    _, nll = clo.pair_logps_and_nll(logits, labels)
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, labels[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    mask = labels[:, 1:] != -100
    rows = [2, 6]
    expected = -(logp[rows] * mask[rows]).sum() / mask[rows].sum()
    assert nll.item() == pytest.approx(expected.item(), rel=1e-5)
    # changing any other row's logits leaves the NLL unchanged
    logits2 = logits.clone()
    logits2[[0, 1, 3, 4, 5, 7]] += torch.randn(6, 6, 11)
    assert clo.pair_logps_and_nll(logits2, labels)[1].item() == pytest.approx(nll.item(), rel=1e-6)


def test_attention_only_changes_only_attention(tmp_path, tiny):
    model, tok, data = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = clo.train_clo(_cfg(tmp_path, data, max_steps=1), model=model, tokenizer=tok)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "nothing was trained"
    assert all(any(p in k for p in ("q_proj", "k_proj", "v_proj", "o_proj")) for k in changed), changed
    assert len(changed) == 8  # 4 projections × 2 layers
    assert (out / "model.safetensors").is_file() and read_log(out)[0]["step"] == 1


def test_train_all_changes_more(tmp_path, tiny):
    model, tok, data = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clo.train_clo(_cfg(tmp_path, data, max_steps=1, train="all"), model=model, tokenizer=tok)
    changed = {k for k in before if not torch.equal(before[k], model.state_dict()[k])}
    assert any("mlp" in k for k in changed) and any("embed" in k for k in changed)


def test_reference_computed_once_and_reused(tmp_path, tiny):
    model, tok, data = tiny
    calls = []
    model.register_forward_hook(lambda m, a, o: calls.append(m.training))
    cfg = _cfg(tmp_path, data, max_steps=4, ref_batch_size=3, keep_work=True)
    out = clo.train_clo(cfg, model=model, tokenizer=tok)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["reference_passes"] == 2  # 4 pairs, 3 per pass
    assert calls.count(False) == 2 and calls.count(True) == 4  # eval passes only before training
    # a second run over the same data with the cached reference runs no reference pass
    model2 = helpers.tiny_llama(len(tok), hidden=16, layers=2, seed=1)
    cfg2 = _cfg(tmp_path, data, max_steps=4, ref_batch_size=3, overwrite=True)
    summary2 = json.loads((clo.train_clo(cfg2, model=model2, tokenizer=tok) / "train_summary.json").read_text())
    assert summary2["reference_passes"] == 0


def test_resume_from_checkpoint(tmp_path, tiny):
    model, tok, data = tiny
    work = tmp_path / "out.work"

    class Stop(Exception):
        pass

    # interrupt after step 2: a callback raises once the checkpoint of step 2 is written
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 2:
                raise Stop

    orig = clo.make_clo_trainer

    def with_interrupt(*a, **kw):
        trainer = orig(*a, **kw)
        trainer.add_callback(Interrupt())
        return trainer

    clo.make_clo_trainer = with_interrupt
    try:
        with pytest.raises(Stop):
            clo.train_clo(_cfg(tmp_path, data, max_steps=4, save_steps=2), model=model, tokenizer=tok)
    finally:
        clo.make_clo_trainer = orig
    assert (work / "checkpoint-2").is_dir() and not (tmp_path / "out").exists()
    model2 = helpers.tiny_llama(len(tok), hidden=16, layers=2, seed=1)
    out = clo.train_clo(_cfg(tmp_path, data, max_steps=4, save_steps=2), model=model2, tokenizer=tok)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["global_step"] == 4
    assert [r["step"] for r in read_log(out) if "loss" in r] == [1, 2, 3, 4]
    assert not work.exists()


@pytest.mark.parametrize("kw, param", [({"lam": 1.5}, "--lambda"), ({"lam": -0.1}, "--lambda"),
                                       ({"beta": 0.0}, "--beta"), ({"beta": -1.0}, "--beta")])
def test_bad_hyper_parameters(tmp_path, kw, param):
    with pytest.raises(ConfigError) as info:
        _cfg(tmp_path, tmp_path / "x.jsonl", **kw)
    assert info.value.param == param


def test_missing_field_names_line_and_field(tmp_path, tiny):
    model, tok, _ = tiny
    rows = _pairs(3)
    del rows[1]["y_t"]
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in rows), encoding="utf-8")
    with pytest.raises(LangshiftError, match=r"line 2: field 'y_t' is missing"):
        clo.train_clo(_cfg(tmp_path, data), model=model, tokenizer=tok)
    assert not (tmp_path / "out").exists()


def test_model_without_attention_names(tmp_path, tiny):
    model, tok, data = tiny
    for layer in model.model.layers:  # rename the attention block so no expected name is left
        layer.mixing_block = layer.self_attn
        del layer.self_attn
    with pytest.raises(LangshiftError, match=r"found no attention projections.*mixing_block"):
        clo.train_clo(_cfg(tmp_path, data), model=model, tokenizer=tok)
