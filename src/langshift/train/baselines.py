"""The baselines CLO is compared with (seed 004 §4.1), on trl.

SFT      supervised fine-tuning on the English and the translated pairs (or only one side:
         ``only="en"`` is SFT-eng, ``only="target"`` is SFT-tgt); loss on the response tokens only.
SFT+DPO  SFT on the chosen responses, then trl's standard DPO on the same cross-lingual pairs as
         independent preference rows: (x_en: chosen y_en, rejected y_t) and (x_t: chosen y_t,
         rejected y_en) — the "data augmentation without the CLO objective" of the paper.
Both read the CLO JSONL (id, x_en, y_en, x_t, y_t) and apply the model's chat template (trl's
conversational prompt/completion format).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from ..config import check_range, opt
from ..errors import ConfigError
from ..optional import require
from .clo_data import CLO_FIELDS
from .config import TrainingConfig, TrainResult, run_training
from .data import read_jsonl
from .modules import attention_parameter_names, set_trainable
from .runtime import prepare_out, run_trainer, save_final, training_arguments

log = logging.getLogger(__name__)
TRL_INSTALL = "pip install 'langshift[train]'  (trl, datasets)"


@dataclass(kw_only=True)
class BaselineConfig(TrainingConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "data")
    SIZES: ClassVar[tuple[str, ...]] = (*TrainingConfig.SIZES, "max_len")

    data: str = opt(help="CLO JSONL: id, x_en, y_en, x_t, y_t per line (see `langshift clo data`)")
    only: Literal["both", "en", "target"] = opt("both", "SFT rows: English and target, or one side only")
    max_len: int = opt(512, "longest prompt+response in tokens")
    train: Literal["all", "attention"] = opt("all", "parameters to train")


@dataclass(kw_only=True)
class DPOBaselineConfig(BaselineConfig):
    beta: float = opt(0.1, "β of the DPO loss (> 0)")
    sft_first: bool = opt(True, "run SFT on the chosen responses first (SFT+DPO); --no-sft-first: DPO only")
    precompute_ref: bool = opt(False, "trl precompute_ref_log_probs: no reference model in memory during DPO")

    def validate(self) -> None:
        super().validate()
        check_range("--beta", self.beta, 0.0, None, lo_open=True)
        if self.only != "both":
            raise ConfigError("--only", self.only, "applies to SFT; DPO always uses both sides of each pair")


# 1. Rows in trl's conversational formats -----------------------------------------------------------


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def sft_rows(records: list[dict], only: str = "both") -> list[dict]:
    sides = {"both": [("x_en", "y_en"), ("x_t", "y_t")], "en": [("x_en", "y_en")], "target": [("x_t", "y_t")]}
    return [{"prompt": _user(r[x]), "completion": _assistant(r[y])} for r in records for x, y in sides[only]]


def dpo_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        rows.append({"prompt": _user(r["x_en"]), "chosen": _assistant(r["y_en"]), "rejected": _assistant(r["y_t"])})
        rows.append({"prompt": _user(r["x_t"]), "chosen": _assistant(r["y_t"]), "rejected": _assistant(r["y_en"])})
    return rows


# 2. Trainers ---------------------------------------------------------------------------------------


def _select(model, train: str) -> int:
    return set_trainable(model, attention_parameter_names(model) if train == "attention" else None)


def make_sft_trainer(model, tokenizer, rows: list[dict], cfg: BaselineConfig, work: Path):
    trl = require("trl", TRL_INSTALL, "SFT baselines")
    datasets = require("datasets", TRL_INSTALL, "SFT baselines")
    args = training_arguments(work, **cfg.schedule(), args_class=trl.SFTConfig, max_length=cfg.max_len,
                              completion_only_loss=True, packing=False, remove_unused_columns=True)
    return trl.SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows),
                          processing_class=tokenizer)


def make_dpo_trainer(model, tokenizer, rows: list[dict], cfg: DPOBaselineConfig, work: Path):
    trl = require("trl", TRL_INSTALL, "DPO baselines")
    datasets = require("datasets", TRL_INSTALL, "DPO baselines")
    args = training_arguments(work, **cfg.schedule(), args_class=trl.DPOConfig, max_length=cfg.max_len,
                              beta=cfg.beta, precompute_ref_log_probs=cfg.precompute_ref, remove_unused_columns=True)
    # The reference is the model as it is now (after SFT): a frozen copy, unless trl precomputes its log-probs
    # (trl would otherwise reload the reference from the model's original path, i.e. before SFT).
    ref = None
    if not cfg.precompute_ref:
        ref = copy.deepcopy(model).eval().requires_grad_(False)
    return trl.DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=datasets.Dataset.from_list(rows),
                          processing_class=tokenizer)


def _load(cfg: BaselineConfig, model, tokenizer):
    from ..models import load_model, load_tokenizer

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model, "--model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return (model if model is not None else load_model(cfg.model)), tokenizer


def train_sft(cfg: BaselineConfig, model=None, tokenizer=None) -> Path:
    out = Path(cfg.out)
    work = prepare_out(out, cfg.overwrite)
    model, tokenizer = _load(cfg, model, tokenizer)
    rows = sft_rows(read_jsonl(cfg.data, CLO_FIELDS, "--data"), cfg.only)
    trainable = _select(model, cfg.train)
    trainer = make_sft_trainer(model, tokenizer, rows, cfg, work)
    summary = run_trainer(trainer, work)
    if not trainer.is_world_process_zero():  # under accelerate launch only the main process writes
        return out
    summary.update({"stage": "sft", "config": cfg.to_dict(), "rows": len(rows), "trainable_parameters": trainable})
    return save_final(model.eval(), tokenizer, out, work, cfg.overwrite, summary, cfg.keep_work)


def train_dpo(cfg: DPOBaselineConfig, model=None, tokenizer=None) -> Path:
    """SFT on the chosen responses (into ``<out>.work/sft``), then DPO on the cross-lingual pairs."""
    out = Path(cfg.out)
    work = prepare_out(out, cfg.overwrite)
    model, tokenizer = _load(cfg, model, tokenizer)
    records = read_jsonl(cfg.data, CLO_FIELDS, "--data")
    trainable = _select(model, cfg.train)
    summary: dict = {"stage": "sft+dpo" if cfg.sft_first else "dpo", "config": cfg.to_dict()}
    if cfg.sft_first:
        sft_work = work / "sft"
        sft_work.mkdir(parents=True, exist_ok=True)
        summary["sft"] = run_trainer(make_sft_trainer(model, tokenizer, sft_rows(records), cfg, sft_work), sft_work)
    dpo_work = work / "dpo"
    dpo_work.mkdir(parents=True, exist_ok=True)
    rows = dpo_rows(records)
    trainer = make_dpo_trainer(model, tokenizer, rows, cfg, dpo_work)
    summary["dpo"] = run_trainer(trainer, dpo_work)
    if not trainer.is_world_process_zero():  # under accelerate launch only the main process writes
        return out
    summary.update({"rows": len(rows), "trainable_parameters": trainable})
    # the final log: SFT lines then DPO lines, each tagged with its phase

    lines = []
    for phase in (["sft"] if cfg.sft_first else []) + ["dpo"]:
        path = work / phase / "train_log.jsonl"
        if path.is_file():
            lines += [json.dumps({"phase": phase, **json.loads(x)}) for x in path.read_text().splitlines() if x]
    (work / "train_log.jsonl").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return save_final(model.eval(), tokenizer, out, work, cfg.overwrite, summary, cfg.keep_work)


def run_sft(cfg: BaselineConfig) -> TrainResult:
    """The SFT baseline's front door."""
    return run_training(cfg, train_sft)


def run_dpo(cfg: DPOBaselineConfig) -> TrainResult:
    """The SFT+DPO baseline's front door."""
    return run_training(cfg, train_dpo)
