"""SynCS §4.1 step 2: distil the teacher's rows into a small student (trl SFTTrainer, LoRA or full).

Each kept teacher row becomes one conversational prompt/completion pair: the prompt is the App. C.1
prompt with the source side only (``teach.prompt`` without the translation), the completion the
code-switched sentence; loss on the completion only. The paper's schedule (App. C: 3 epochs, lr 5e-5,
warm-up 0.1, cosine to 0) is the default apart from the learning rate, which LoRA needs higher.
Training runs in ``<out>.work`` (resumable checkpoints); the merged model is written to ``<out>`` at once.
``run_distill(cfg)`` is the front door (``codeswitch distill``): ``out`` checked against the inputs, seeded,
trained; it returns the model folder with its ``train_summary.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from ..config import check_range, opt
from ..errors import ConfigError, LangshiftError
from ..optional import require
from ..train.config import LoRATrainingConfig, TrainResult, run_training
from .teach import KINDS, prompt

log = logging.getLogger(__name__)
TRL_INSTALL = "pip install 'langshift[train]'  (trl, datasets, peft)"
ROW_FIELDS = ("source", "kind", "output")


@dataclass(kw_only=True)
class DistillConfig(LoRATrainingConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "data")
    SIZES: ClassVar[tuple[str, ...]] = (*LoRATrainingConfig.SIZES, "max_len")

    model: str = opt(help="the student to fine-tune: built-in name (smollm2-135m-instruct), folder or hub id")
    data: str = opt(help="teacher rows (JSONL from `codeswitch teach`: source, kind, output)")
    source_lang: str = opt("en", "language of the sources (names it in the prompt)")
    target_lang: str = opt("es", "language switched in (names it in the prompt)")
    mode: Literal["lora", "full"] = opt("lora", "LoRA on the attention projections (merged at the end) or all weights")
    lora_r: int = opt(16, "LoRA rank")
    lora_alpha: float = opt(32.0, "LoRA scaling α")
    lora_dropout: float = opt(0.05, "LoRA dropout")
    lr: float = opt(5e-4, "peak learning rate (paper, full SFT of 3B: 5e-5; LoRA needs ~10× more)")
    warmup: float = opt(0.1, "warm-up share of the steps (paper: 0.1)")
    epochs: float = opt(3.0, "epochs (paper: 3)")
    max_len: int = opt(256, "longest prompt+completion in tokens")
    save_steps: int = opt(50, "save a checkpoint every this many steps (resume point)")

    def validate(self) -> None:
        super().validate()
        check_range("--warmup", self.warmup, 0.0, 1.0)


def read_rows(path: str, param: str = "--data") -> list[dict]:
    """Teacher rows: each needs non-empty source/kind/output and a token-level kind; rejected rows refused."""
    from ..train.data import read_jsonl

    rows = read_jsonl(path, ("id", *ROW_FIELDS), param)
    for n, r in enumerate(rows, 1):
        if r["kind"] not in KINDS:
            raise LangshiftError(f"{param}={path!r}: row {n}: kind {r['kind']!r}; the student learns "
                                 f"{', '.join(KINDS)}")
        if r.get("rejected"):
            raise LangshiftError(f"{param}={path!r}: row {n} was rejected by the filter ({r['rejected']}); "
                                 "write the rows without --keep-rejected")
    if not rows:
        raise ConfigError(param, path, "holds no rows; run `langshift codeswitch teach` first")
    return rows


def sft_rows(rows: list[dict], source_lang: str, target_lang: str) -> list[dict]:
    """trl's conversational prompt/completion rows: source-only prompt → code-switched sentence."""
    return [{"prompt": [{"role": "user", "content": prompt(r["kind"], r["source"], source_lang, target_lang)}],
             "completion": [{"role": "assistant", "content": r["output"]}]} for r in rows]


def train_distill(cfg: DistillConfig, model=None, tokenizer=None) -> Path:
    from ..models import load_model, load_tokenizer
    from ..train.lapt import unwrap
    from ..train.modules import attention_leaf_names
    from ..train.runtime import prepare_out, run_trainer, save_final, training_arguments

    trl = require("trl", TRL_INSTALL, "codeswitch distill")
    datasets = require("datasets", TRL_INSTALL, "codeswitch distill")
    out = Path(cfg.out)
    work = prepare_out(out, cfg.overwrite)
    rows = read_rows(cfg.data)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model, "--model")
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("--model", cfg.model, "the student's tokenizer has no chat template; give an "
                                                "instruction-tuned model (e.g. smollm2-135m-instruct)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model if model is not None else load_model(cfg.model)
    if cfg.mode == "lora":
        model = cfg.add_lora(model, attention_leaf_names(model))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    args = training_arguments(work, **cfg.schedule(), scheduler="cosine", args_class=trl.SFTConfig,
                              max_length=cfg.max_len, completion_only_loss=True, packing=False, remove_unused_columns=True)
    data = datasets.Dataset.from_list(sft_rows(rows, cfg.source_lang, cfg.target_lang))
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    summary = run_trainer(trainer, work)
    summary.update({"stage": "codeswitch-distill", "config": cfg.to_dict(), "rows": len(rows),
                    "per_kind": {k: sum(r["kind"] == k for r in rows) for k in KINDS},
                    "trainable_parameters": trainable})
    return save_final(unwrap(trainer.model).eval(), tokenizer, out, work, cfg.overwrite, summary, cfg.keep_work)


def run_distill(cfg: DistillConfig, model=None, tokenizer=None) -> TrainResult:
    """The student fine-tuned on ``cfg.data`` and written to ``cfg.out``; ``model`` / ``tokenizer``: loaded
    ones instead of ``cfg.model``'s."""
    return run_training(cfg, lambda c: train_distill(c, model, tokenizer))
