"""What every training stage's config and front door share (like litgpt's TrainArgs or trl's TrainingArguments).

``TrainingConfig`` holds the fields LAPT, CLO, the SFT/DPO baselines and the SynCS distillation all take
(model, out, the optimizer schedule, batch sizes, checkpoints, seed, precision) and checks them; each
stage's config derives from it, re-declares a field only to give it another default or help, and adds
its own. ``LoRATrainingConfig`` adds the LoRA fields and builds peft's ``LoraConfig`` from them.

``run_training`` is the common part of the front doors ``run_lapt``, ``run_clo``, ``run_sft`` and
``run_dpo``: output and input checks before any model loads, the seed (set before the LoRA adapter's random
init, so the CLI, the pipeline and ``accelerate launch`` give the same model), the run, and the
``TrainResult`` read back from the model's ``train_summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import Result, StageConfig, check_range, opt
from ..errors import ConfigError

SUMMARY_NAME = "train_summary.json"


# 1. The shared configs ----------------------------------------------------------------------------

@dataclass(kw_only=True)
class TrainingConfig(StageConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("model",)
    # int fields that must be at least 1 (a subclass adds its own)
    SIZES: ClassVar[tuple[str, ...]] = ("batch_size", "grad_accum", "save_steps")

    model: str = opt(help="model to train: built-in name, model folder or hub id")
    out: str = opt(help="output model folder (written atomically; <out>.work holds checkpoints)")
    lr: float = opt(5e-5, "peak learning rate (AdamW; 5e-5 is CLO's paper value, the same for SFT and DPO)")
    warmup: float = opt(0.0, "warm-up: a share of the steps (<1) or a number of steps")
    epochs: float = opt(1.0, "epochs over the training examples")
    max_steps: int | None = opt(None, "stop after this many optimizer steps (short runs)")
    batch_size: int = opt(8, "examples per device per step: packed blocks (LAPT), English pairs (CLO: 4 rows "
                             "each, so 4× as many sequences), rows (SFT, DPO, distill)")
    grad_accum: int = opt(1, "gradient accumulation steps")
    save_steps: int = opt(100, "save a checkpoint every this many steps (resume point)")
    gradient_checkpointing: bool | None = opt(None, "recompute activations in the backward pass (less memory, "
                                                    "slower); default: on when a GPU is there")
    bf16: bool | None = opt(None, "bfloat16 autocast (weights stay float32); default: on when the GPU "
                                  "supports it, off on CPU")
    seed: int = opt(0, "random seed")
    overwrite: bool = opt(False, "replace an existing --out")
    keep_work: bool = opt(False, "keep <out>.work (checkpoints) after success")

    def validate(self) -> None:
        check_range("--lr", self.lr, 0.0, None, lo_open=True)
        check_range("--warmup", self.warmup, 0.0)
        check_range("--epochs", self.epochs, 0.0, None, lo_open=True)
        if self.max_steps is not None:
            check_range("--max-steps", self.max_steps, 1)
        for name in self.SIZES:
            if getattr(self, name) < 1:
                raise ConfigError("--" + name.replace("_", "-"), getattr(self, name), "must be at least 1")

    def schedule(self) -> dict[str, Any]:
        """The keyword arguments of ``runtime.training_arguments`` that come straight from these fields."""
        return {"batch_size": self.batch_size, "lr": self.lr, "epochs": self.epochs, "max_steps": self.max_steps,
                "warmup": self.warmup, "seed": self.seed, "save_steps": self.save_steps,
                "grad_accum": self.grad_accum, "gradient_checkpointing": self.gradient_checkpointing,
                "bf16": self.bf16}


@dataclass(kw_only=True)
class LoRATrainingConfig(TrainingConfig):
    SIZES: ClassVar[tuple[str, ...]] = (*TrainingConfig.SIZES, "lora_r")

    lora_r: int = opt(64, "LoRA rank")
    lora_alpha: float = opt(16.0, "LoRA scaling α")
    lora_dropout: float = opt(0.1, "LoRA dropout")

    def validate(self) -> None:
        super().validate()
        check_range("--lora-dropout", self.lora_dropout, 0.0, 1.0)

    def add_lora(self, model, target_modules: list[str], **extra: Any):
        """``model`` with a LoRA adapter from these fields (peft: no bias, causal LM) on ``target_modules``.
        Seeds with ``seed`` first: the adapter's A matrices are drawn here, before the Trainer seeds anything."""
        from peft import LoraConfig, get_peft_model
        from transformers import set_seed

        set_seed(self.seed)
        return get_peft_model(model, LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha,
                                                lora_dropout=self.lora_dropout, bias="none",
                                                target_modules=target_modules, task_type="CAUSAL_LM", **extra))


# 2. The result and the common part of the front doors ---------------------------------------------

@dataclass
class TrainResult(Result):
    """The model folder and its ``train_summary.json``: ``stage``, ``config``, the Trainer's figures
    (``global_step``, ``resumed_from_step``, ``train_loss``, …) and what the stage counted."""

    summary: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def global_step(self) -> int | None:
        return self.summary.get("global_step")

    @property
    def train_loss(self) -> float | None:
        return self.summary.get("train_loss")

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), **self.summary}

    @classmethod
    def read(cls, out: str | Path) -> TrainResult:
        """The result of the model written to ``out``."""
        return cls(str(out), json.loads((Path(out) / SUMMARY_NAME).read_text(encoding="utf-8")))


def is_main_process() -> bool:
    """True but on the other processes of an ``accelerate launch`` (only the main one writes the model)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def run_training(cfg: TrainingConfig, train: Callable[[Any], Path],
                 check: Callable[[], object] | None = None) -> TrainResult:
    """Check ``out`` against the inputs (and ``check`` the stage's own), seed, train, read the result."""
    cfg.check_output()
    if check is not None:
        check()
    from transformers import set_seed

    # the LoRA adapter is drawn before the Trainer seeds anything: seed first, so that the result does not
    # depend on what ran earlier in this process
    set_seed(cfg.seed)
    out = train(cfg)
    return TrainResult.read(out) if is_main_process() else TrainResult(str(out))
