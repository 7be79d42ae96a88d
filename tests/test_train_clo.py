"""CLO: the loss against a hand computation, target-only NLL, attention-only updates, reference reuse,
exact means under gradient accumulation, the paper's options (English+target NLL, system prompt, best
checkpoint on held-out pairs)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import helpers
from langshift.errors import ConfigError, LangshiftError
from langshift.train import clo, clo_batches, clo_loss
from langshift.train.runtime import read_log


def _pairs(n=4):
    en, es = helpers.EN_TEXT, helpers.ES_TEXT
    return [{"id": f"p{i}", "x_en": en[i % len(en)], "y_en": en[(i + 1) % len(en)] + " " + en[i // 3],
             "x_t": es[i % len(es)], "y_t": es[(i + 1) % len(es)] + " " + es[i // 4]} for i in range(n)]


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
    parts = clo_loss.clo_loss(policy, ref, nll, lam, beta)

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


def test_token_logps_normalises_response_positions_only():
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 13, dtype=torch.bfloat16, requires_grad=True)  # a bf16 model's head output
    labels = torch.randint(0, 13, (4, 7))
    labels[:, :3] = -100
    labels[1, 5:] = -100  # padding
    logps, mask = clo_loss.token_logps(logits, labels)
    assert logps.dtype == torch.float32 and logps.shape == mask.shape == (4, 6)
    ref = torch.log_softmax(logits.detach()[:, :-1].float(), -1).gather(
        -1, labels[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(logps[mask], ref[mask], atol=1e-6)
    assert (logps[~mask] == 0).all()
    logps.sum().backward()
    # prompts, padding and the last position get no gradient: they were never normalised
    assert (logits.grad[:, :-1][~mask] == 0).all() and (logits.grad[:, -1] == 0).all()
    assert (logits.grad[:, :-1][mask] != 0).any(-1).all()


def test_nll_counts_target_chosen_rows_only():
    torch.manual_seed(0)
    logits = torch.randn(8, 6, 11)  # two pairs × four rows
    labels = torch.randint(0, 11, (8, 6))
    labels[:, :2] = -100  # prompts
    labels[3, 4:] = -100  # a shorter row: counts must follow the mask
    _, nll_sum, n_tok = clo_loss.pair_logps_and_nll(logits, labels)
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, labels[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    mask = labels[:, 1:] != -100
    rows = [2, 6]
    assert n_tok.item() == mask[rows].sum().item() == 8
    assert nll_sum.item() == pytest.approx(-(logp[rows] * mask[rows]).sum().item(), rel=1e-5)
    assert clo_loss.count_items(labels).tolist() == [8.0, 2.0]
    # changing any other row's logits leaves the NLL unchanged
    logits2 = logits.clone()
    logits2[[0, 1, 3, 4, 5, 7]] += torch.randn(6, 6, 11)
    assert clo_loss.pair_logps_and_nll(logits2, labels)[1].item() == pytest.approx(nll_sum.item(), rel=1e-6)
    # Table 5's ablation: the English chosen rows (0, 4) join the NLL
    _, both_sum, both_tok = clo_loss.pair_logps_and_nll(logits, labels, clo_loss.NLL_ROWS["both"])
    rows = [0, 2, 4, 6]
    assert both_tok.item() == mask[rows].sum().item() == 16
    assert both_sum.item() == pytest.approx(-(logp[rows] * mask[rows]).sum().item(), rel=1e-5)
    assert clo_loss.count_items(labels, clo_loss.NLL_ROWS["both"]).tolist() == [16.0, 2.0]


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


# Exact means under every batch shape -------------------------------------------------------------------


def _sgd(monkeypatch):
    """Plain SGD, no clipping: the update is −lr·gradient, so any mis-scaled gradient shows (Adam's first
    step is nearly scale-free and would hide a grad_accum× error)."""
    orig = clo.training_arguments
    monkeypatch.setattr(clo, "training_arguments",
                        lambda *a, **kw: orig(*a, **kw, optim="sgd", max_grad_norm=0.0))


def _hand_loss(model, tok, pairs, lam, beta):
    """λ·NLL(target chosen tokens, token mean) + (1−λ)·mean over pairs of −log σ(z_en) − log σ(z_t), written
    out row by row (reference = the model itself, as at step 0)."""
    import torch.nn.functional as F

    from langshift.train.data import chat_pair_ids

    def logp(x, y):
        ids, plen = chat_pair_ids(tok, x, y, 64)
        out = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
        tgt = torch.tensor(ids[plen:])
        return out[plen - 1:len(ids) - 1].gather(-1, tgt[:, None]).squeeze(-1)

    nll_sum, n_tok, cl = 0.0, 0, 0.0
    for p in pairs:
        rows = [logp(p["x_en"], p["y_en"]), logp(p["x_en"], p["y_t"]), logp(p["x_t"], p["y_t"]),
                logp(p["x_t"], p["y_en"])]
        seq = [r.sum() for r in rows]
        ref = [s.detach() for s in seq]
        z_en = beta * ((seq[0] - ref[0]) - (seq[1] - ref[1]))
        z_t = beta * ((seq[2] - ref[2]) - (seq[3] - ref[3]))
        cl = cl - F.logsigmoid(z_en) - F.logsigmoid(z_t)
        nll_sum, n_tok = nll_sum - rows[2].sum(), n_tok + len(rows[2])
    return lam * nll_sum / n_tok + (1 - lam) * cl / len(pairs)


def test_accumulation_gives_the_same_update_as_one_batch(tmp_path, source_bpe, monkeypatch):
    """8 pairs, one optimizer step: batch 8 × 1, 2 × 4 and 3 × 3 (micro-batches of 3, 3, 2) all give the
    update and logged loss of the hand-computed λ·NLL(target) + (1−λ)·pref over the 8 pairs."""
    _sgd(monkeypatch)
    pairs = _pairs(8)
    data = tmp_path / "clo8.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    lam, beta, lr = 0.3, 0.5, 0.5
    start = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
    before = {k: v.clone() for k, v in start.state_dict().items()}

    # the hand computation: gradient of the loss over all 8 pairs at the starting weights
    hand = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
    hand_loss = _hand_loss(hand, source_bpe, pairs, lam, beta)
    hand_loss.backward()
    expected = {k: before[k] - lr * p.grad for k, p in hand.named_parameters()}

    runs = {}
    for batch, accum in ((8, 1), (2, 4), (3, 3)):
        model = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
        out = clo.train_clo(_cfg(tmp_path, data, out=str(tmp_path / f"b{batch}x{accum}"), batch_size=batch,
                                 grad_accum=accum, max_steps=1, train="all", lr=lr, lam=lam, beta=beta,
                                 warmup=0.0), model=model, tokenizer=source_bpe)
        runs[(batch, accum)] = (dict(model.named_parameters()), read_log(out)[0])
    for (batch, accum), (params, logged) in runs.items():
        assert logged["loss"] == pytest.approx(hand_loss.item(), rel=1e-5), (batch, accum)
        assert logged["nll"] == pytest.approx((hand_loss.item() - (1 - lam) * 2 * math.log(2)) / lam, rel=1e-5)
        assert logged["cl"] == pytest.approx(2 * math.log(2), rel=1e-5)  # z = 0 at step 0
        for k, p in params.items():
            assert not torch.equal(p.detach(), before[k]) or k not in expected
            torch.testing.assert_close(p.detach(), expected[k], rtol=1e-4, atol=1e-6, msg=f"{batch}x{accum}: {k}")


def test_accumulation_over_several_steps_matches(tmp_path, source_bpe, monkeypatch):
    """16 pairs, 2 steps, same seed (same data order): 4 × 2 ends where 8 × 1 does; losses logged equal."""
    _sgd(monkeypatch)
    data = tmp_path / "clo16.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in _pairs(16)), encoding="utf-8")
    ends, logs = [], []
    for batch, accum in ((8, 1), (4, 2)):
        model = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
        out = clo.train_clo(_cfg(tmp_path, data, out=str(tmp_path / f"m{batch}"), batch_size=batch, grad_accum=accum,
                                 max_steps=2, train="all", lr=0.5, nll="both"), model=model, tokenizer=source_bpe)
        ends.append({k: v.clone() for k, v in model.state_dict().items()})
        logs.append([r["loss"] for r in read_log(out) if "loss" in r])
    for k in ends[0]:
        torch.testing.assert_close(ends[0][k], ends[1][k], rtol=1e-4, atol=1e-6, msg=k)
    assert logs[0] == pytest.approx(logs[1], rel=1e-5) and len(logs[0]) == 2 and logs[0][0] != logs[0][1]


# The paper's options ------------------------------------------------------------------------------------------


def test_system_prompt_on_every_row(tiny):
    _, tok, _ = tiny
    from langshift.train.clo_data import SAME_LANGUAGE, resolve_system_prompt

    system = resolve_system_prompt("same-language:es")
    assert system == SAME_LANGUAGE["es"]
    assert resolve_system_prompt(None) is None and resolve_system_prompt("Answer briefly.") == "Answer briefly."
    plain = clo_batches.encode_pairs(tok, _pairs(1), 512)[0]["rows"]
    with_sys = clo_batches.encode_pairs(tok, _pairs(1), 512, system)[0]["rows"]
    for (ids, plen), (ids0, plen0) in zip(with_sys, plain, strict=True):
        prompt = tok.decode(ids[:plen])
        assert prompt.startswith("<|im_start|>system\n" + system) and plen > plen0
        assert ids[plen:] == ids0[plen0:]  # same answer tokens: the system turn is prompt (no loss)
    with pytest.raises(ConfigError) as info:
        clo.CLOConfig(model="m", data="d", out="o", system_prompt="same-language:xx")
    assert info.value.param == "--system-prompt" and "same-language:es" in str(info.value)


def test_best_checkpoint_on_held_out_pairs(tmp_path, source_bpe):
    """App. B: with --val-fraction the pairs held out never train; the saved model is the checkpoint with
    the lowest validation CLO loss, recomputed here from the saved weights."""
    data = tmp_path / "clo12.jsonl"
    pairs = _pairs(12)
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    model = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
    cfg = _cfg(tmp_path, data, batch_size=3, max_steps=3, lr=0.3, train="all", val_fraction=0.25, eval_steps=1)
    out = clo.train_clo(cfg, model=model, tokenizer=source_bpe)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["pairs"] == 9 and summary["validation_pairs"] == 3
    by_step = {int(k): v for k, v in summary["eval_loss_by_step"].items()}
    assert sorted(by_step) == [1, 2, 3]
    best = min(by_step, key=by_step.get)
    assert summary["best_step"] == best and summary["best_eval_loss"] == pytest.approx(by_step[best])
    assert best != 3, f"this setting should overshoot after its best step: {by_step}"
    # the saved weights are the best step's: their validation loss is the best one
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(out)
    examples = clo_batches.encode_pairs(source_bpe, pairs, 64)
    _, held = clo.split_validation(examples, 0.25, 0)
    fresh = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
    clo_batches.attach_reference(fresh, held, source_bpe.pad_token_id, 8, None)
    res = clo.evaluate_clo(saved, held, source_bpe.pad_token_id, 2, cfg.lam, cfg.beta)
    assert res["loss"] == pytest.approx(by_step[best], rel=1e-4)
    assert not any(r["step"] > 3 for r in read_log(out))


def test_validation_split_errors(tmp_path):
    examples = [{"id": i} for i in range(3)]
    train, held = clo.split_validation(examples, 0.34, 0)
    assert len(train) == 2 and len(held) == 1 and {e["id"] for e in train + held} == {0, 1, 2}
    with pytest.raises(ConfigError, match="holds out 0 of 3"):
        clo.split_validation(examples, 0.1, 0)
    with pytest.raises(ConfigError) as info:
        _cfg(tmp_path, tmp_path / "x.jsonl", val_fraction=0.9)
    assert info.value.param == "--val-fraction"


def test_reference_rows_sorted_by_length_keep_pair_order(source_bpe):
    """The reference pass batches rows by length: every row's log-prob equals scoring that row alone."""
    model = helpers.tiny_llama(len(source_bpe), hidden=16, layers=2, seed=1)
    examples = clo_batches.encode_pairs(source_bpe, _pairs(7), 512)
    lengths = {len(ids) for ex in examples for ids, _ in ex["rows"]}
    assert len(lengths) > 1, "rows of several lengths, so sorting reorders them"
    refs = clo_batches.compute_reference_logps(model, examples, source_bpe.pad_token_id, 2)
    for ex, ref in zip(examples, refs, strict=True):
        for row, value in zip(ex["rows"], ref, strict=True):
            one = clo_batches.compute_reference_logps(model, [{"rows": [row]}], source_bpe.pad_token_id, 1)
            assert value == pytest.approx(one[0][0], rel=1e-5, abs=1e-5)
