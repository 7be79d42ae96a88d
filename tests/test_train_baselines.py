"""SFT and SFT+DPO baselines on trl: rows, a short run each, what trains."""

from __future__ import annotations

import json

import pytest
import torch

import helpers
from langshift.errors import ConfigError
from langshift.train import baselines
from langshift.train.runtime import read_log


def _data(tmp_path, n=4):
    rows = [{"id": f"p{i}", "x_en": helpers.EN_TEXT[i], "y_en": helpers.EN_TEXT[i + 1],
             "x_t": helpers.ES_TEXT[i], "y_t": helpers.ES_TEXT[i + 1]} for i in range(n)]
    path = tmp_path / "clo.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, rows


def test_rows():
    recs = [{"x_en": "q", "y_en": "a", "x_t": "qt", "y_t": "at"}]
    assert [r["prompt"][0]["content"] for r in baselines.sft_rows(recs)] == ["q", "qt"]
    assert [r["completion"][0]["content"] for r in baselines.sft_rows(recs, "target")] == ["at"]
    d = baselines.dpo_rows(recs)
    assert (d[0]["chosen"][0]["content"], d[0]["rejected"][0]["content"]) == ("a", "at")
    assert (d[1]["chosen"][0]["content"], d[1]["rejected"][0]["content"]) == ("at", "a")


def test_sft_short_run(tmp_path, source_bpe):
    data, _ = _data(tmp_path)
    model = helpers.tiny_llama(len(source_bpe), seed=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = baselines.BaselineConfig(model="unused", data=str(data), out=str(tmp_path / "sft"), batch_size=2,
                                   max_steps=2, lr=1e-2, max_len=64, only="target")
    out = baselines.train_sft(cfg, model=model, tokenizer=source_bpe)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["rows"] == 4 and summary["global_step"] == 2
    assert [r["step"] for r in read_log(out) if "loss" in r] == [1, 2]


def test_sft_then_dpo_short_run(tmp_path, source_bpe):
    data, _ = _data(tmp_path)
    model = helpers.tiny_llama(len(source_bpe), seed=5)
    cfg = baselines.DPOBaselineConfig(model="unused", data=str(data), out=str(tmp_path / "dpo"), batch_size=2,
                                      max_steps=2, lr=1e-2, max_len=64)
    out = baselines.train_dpo(cfg, model=model, tokenizer=source_bpe)
    phases = [r["phase"] for r in read_log(out) if "loss" in r]
    assert phases == ["sft", "sft", "dpo", "dpo"]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["rows"] == 8 and summary["dpo"]["global_step"] == 2


def test_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="--beta"):
        baselines.DPOBaselineConfig(model="m", data="d", out=str(tmp_path / "o"), beta=0.0)
    with pytest.raises(ConfigError, match="--only"):
        baselines.DPOBaselineConfig(model="m", data="d", out=str(tmp_path / "o"), only="en")
