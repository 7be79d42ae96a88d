"""Cross-Lingual Optimization (CLO; seed 004, eqs. 8-12): the config, the trainer and the front door.

The loss is in ``clo_loss`` (the four rows of a pair, z_en, z_t, the NLL term), the examples, batches
and reference log-probabilities in ``clo_batches``.

Both means are over the *optimizer step's* whole batch: every micro-batch of a gradient-accumulation
window and every process. The trainer counts the NLL tokens and the pairs of the window up front (as
transformers counts ``num_items_in_batch``) and each micro-batch contributes its sums divided by those
counts, so batch 2 × accumulation 4 gives the same update as batch 8 × accumulation 1.

The reference log-probabilities are those of the model before training: they are computed once, in
one pass over the data before the first step, kept with the examples (and cached in the work folder
so that a resumed run does not recompute them), so no second model sits in memory.

Why our own ``transformers.Trainer`` subclass and not trl's DPOTrainer: trl's losses treat each
preference row alone and its "sft" term covers every chosen row, while CLO couples the two rows of a
pair in one batch and takes NLL on target rows only; a ``compute_loss`` of ~20 lines keeps that exact.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from ..config import check_range, opt
from ..errors import ConfigError
from .clo_batches import attach_reference, collate_pairs, encode_pairs
from .clo_data import CLO_FIELDS, resolve_system_prompt
from .clo_loss import NLL_ROWS, T_CHOSEN, count_items, pair_logps_and_nll, pair_terms
from .config import TrainingConfig, TrainResult, run_training
from .data import read_jsonl
from .modules import attention_parameter_names, set_trainable
from .runtime import final_state_dict, prepare_out, run_trainer, save_final, training_arguments

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class CLOConfig(TrainingConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "data")
    SIZES: ClassVar[tuple[str, ...]] = (*TrainingConfig.SIZES, "ref_batch_size", "eval_steps")

    model: str = opt(help="model to align: built-in name, model folder or hub id")
    data: str = opt(help="CLO JSONL: one object per line with id, x_en, y_en, x_t, y_t (see `langshift clo data`)")
    lam: float = opt(0.5, "λ: weight of the target-language NLL; 1−λ weighs the cross-lingual loss", flag="--lambda")
    beta: float = opt(0.1, "β: strength of the KL constraint in z (must be > 0)")
    min_lr: float = opt(1.1e-6, "learning rate at the end of the cosine schedule (paper: 1.1e-6)")
    max_len: int = opt(512, "longest prompt+response in tokens; longer responses are cut")
    train: Literal["attention", "all"] = opt("attention", "parameters to train: attention projections or all")
    ref_batch_size: int = opt(8, "pairs per forward pass when computing the reference log-probabilities")
    nll: Literal["target", "both"] = opt(
        "target", "rows the NLL term covers: the target-language chosen answer only (paper, eq. 9) or the English "
                  "and target chosen answers (Table 5 ablation; §7.2 finds it biases the model towards English)")
    system_prompt: str | None = opt(
        None, "system message put before every training prompt (all four rows): literal text, or "
              "'same-language:<code>' for App. F's 'Please answer in the same language as the input.' in that "
              "language (built in for en es fr de pt it ca ko zh sw); default none (as the paper trains)")
    val_fraction: float = opt(
        0.0, "share of the pairs held out (never trained on) to pick the checkpoint with the lowest validation "
             "CLO loss, which is the model saved (App. B: 'the model with the lowest validation loss was "
             "selected'); 0 = no held-out split, the last step is saved")
    eval_steps: int = opt(50, "with --val-fraction: evaluate (and checkpoint) every this many steps and at the end")
    keep_work: bool = opt(False, "keep <out>.work (checkpoints, reference cache) after success")

    def validate(self) -> None:
        super().validate()
        check_range("--lambda", self.lam, 0.0, 1.0)
        check_range("--beta", self.beta, 0.0, None, lo_open=True)
        check_range("--min-lr", self.min_lr, 0.0)
        check_range("--val-fraction", self.val_fraction, 0.0, 0.5)
        resolve_system_prompt(self.system_prompt, "--system-prompt")
        if self.max_len < 8:
            raise ConfigError("--max-len", self.max_len, "must be at least 8 tokens")


# 3. The trainer ---------------------------------------------------------------------------------

PARTS = ("nll", "cl", "accuracy", "z_en", "z_t")


def batch_sums(model, batch: dict, beta: float, nll_rows=(T_CHOSEN,)):
    """Sums over one collated batch (moved to the model's device): ``PARTS`` as sums, and ``count_items``."""
    import torch

    device = next(model.parameters()).device
    labels = batch["labels"].to(device)
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    seq, nll_sum, n_tok = pair_logps_and_nll(logits, labels, nll_rows)
    t = pair_terms(seq, batch["ref_logps"].to(device, seq.dtype), beta)
    hits = (t["z_en"] > 0).float().sum() + (t["z_t"] > 0).float().sum()
    sums = torch.stack([nll_sum, t["cl"].sum(), hits / 2, t["z_en"].sum(), t["z_t"].sum()])
    return sums, torch.stack([n_tok.float(), torch.tensor(float(len(seq)), device=device)])


def evaluate_clo(model, examples: list[dict], pad_id: int, batch_size: int, lam: float, beta: float,
                 nll_rows=(T_CHOSEN,)) -> dict:
    """The CLO loss and its parts over ``examples`` as one batch: NLL per token, the rest per pair."""
    import torch

    was_training = model.training
    model.eval()
    sums, counts = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            s, c = batch_sums(model, collate_pairs(examples[start:start + batch_size], pad_id), beta, nll_rows)
            sums, counts = sums + s.double(), counts + c.double()
    model.train(was_training)
    tokens, pairs = counts.clamp(min=1).tolist()
    means = dict(zip(PARTS, (sums / torch.tensor([tokens] + [pairs] * 4, dtype=sums.dtype)).tolist(), strict=True))
    return {"loss": lam * means["nll"] + (1.0 - lam) * means["cl"], **means}


def make_clo_trainer(model, args, examples: list[dict], pad_id: int, lam: float, beta: float,
                     nll: str = "target", eval_examples: list[dict] | None = None):
    """A ``transformers.Trainer`` whose ``compute_loss`` is the CLO loss (inherits checkpoints, accelerate)."""
    import torch
    from transformers import Trainer

    nll_rows = NLL_ROWS[nll]

    class CLOTrainer(Trainer):
        # compute_loss already divides by the counts of the whole optimizer step (all micro-batches), so the
        # Trainer must not divide by the accumulation steps again (transformers 5: see Trainer.training_step).
        loss_is_scaled_for_ga = True

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._parts, self._part_steps = None, set()

        def get_batch_samples(self, epoch_iterator, num_batches, device):
            """The step's micro-batches and ``[NLL tokens, pairs]`` over all of them and every process: the
            Trainer hands this to each ``compute_loss`` call as ``num_items_in_batch``."""
            batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
            counts = sum((count_items(b["labels"], nll_rows) for b in batches), torch.zeros(2)).to(device)
            if self.accelerator.num_processes > 1:
                counts = self.accelerator.reduce(counts, "sum")
            return batches, counts

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            sums, local = batch_sums(model, inputs, beta, nll_rows)
            if torch.is_tensor(num_items_in_batch) and num_items_in_batch.shape == (2,):
                # this micro-batch's share of the step's means; DDP averages gradients over processes, so
                # each process's share is multiplied back by their number
                counts, scale = num_items_in_batch.to(sums.device), self.accelerator.num_processes
            else:  # a batch seen alone (no accumulation window): its own means
                counts, scale = local, 1
            tokens, pairs = counts.clamp(min=1).unbind()
            parts = sums / torch.stack([tokens, pairs, pairs, pairs, pairs])
            loss = (lam * parts[0] + (1.0 - lam) * parts[1]) * scale
            if model.training:
                self._parts = parts.detach() if self._parts is None else self._parts + parts.detach()
                self._part_steps.add(self.state.global_step)
            return (loss, None) if return_outputs else loss

        def log(self, logs, *args, **kwargs):
            if "loss" in logs and self._parts is not None:  # each part's mean over the steps since the last line
                parts = self._parts
                if self.accelerator.num_processes > 1:
                    parts = self.accelerator.reduce(parts, "sum")
                logs.update(zip(PARTS, (parts / len(self._part_steps)).tolist(), strict=True))
                self._parts, self._part_steps = None, set()
            super().log(logs, *args, **kwargs)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            """The exact CLO loss over the held-out pairs (one batch's means, not a mean of batch means)."""
            data = eval_dataset if eval_dataset is not None else self.eval_dataset
            with self.accelerator.autocast():
                res = evaluate_clo(self.model, data, pad_id, self.args.per_device_eval_batch_size, lam, beta,
                                   nll_rows)
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in res.items()}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return CLOTrainer(model=model, args=args, train_dataset=examples, eval_dataset=eval_examples,
                      data_collator=lambda exs: collate_pairs(exs, pad_id))


def split_validation(examples: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(training, held-out) pairs: a seeded random ``fraction`` of the pairs is held out."""
    if fraction <= 0:
        return examples, []
    n_val = round(len(examples) * fraction)
    if n_val < 1 or n_val >= len(examples):
        raise ConfigError("--val-fraction", fraction, f"holds out {n_val} of {len(examples)} pairs; need at least "
                                                      "one held-out and one training pair (raise it or add data)")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_val])
    return ([ex for i, ex in enumerate(examples) if i not in held],
            [ex for i, ex in enumerate(examples) if i in held])


def train_clo(cfg: CLOConfig, model=None, tokenizer=None) -> Path:
    """Run CLO from ``cfg``; ``model``/``tokenizer`` may be given already loaded (else from ``cfg.model``)."""
    from ..models import load_model, load_tokenizer

    out = Path(cfg.out)
    work = prepare_out(out, cfg.overwrite)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model, "--model")
    model = model if model is not None else load_model(cfg.model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    records = read_jsonl(cfg.data, CLO_FIELDS, "--data")
    system = resolve_system_prompt(cfg.system_prompt, "--system-prompt")
    examples = encode_pairs(tokenizer, records, cfg.max_len, system)
    train_examples, val_examples = split_validation(examples, cfg.val_fraction, cfg.seed)

    # 1. Choose what trains before anything runs, so a model without attention modules fails at once.
    names = attention_parameter_names(model) if cfg.train == "attention" else None
    trainable = set_trainable(model, names)
    best = {}
    if val_examples:  # App. B: keep the checkpoint with the lowest validation loss (the Trainer's own machinery,
        # which needs checkpoints on the evaluation steps)
        best = dict(eval_strategy="steps", eval_steps=cfg.eval_steps, load_best_model_at_end=True,
                    metric_for_best_model="eval_loss", greater_is_better=False,
                    per_device_eval_batch_size=cfg.batch_size)
    args = training_arguments(work, **{**cfg.schedule(), "save_steps": cfg.eval_steps if val_examples else
                                       cfg.save_steps}, scheduler="cosine_with_min_lr",
                              scheduler_kwargs={"min_lr": cfg.min_lr}, **best)
    # 2. Reference log-probs from the untrained model, once (cached for resumes), on the training device
    #    and in the training precision, so that policy and reference agree exactly at step 0.
    import torch

    model.to(args.device)
    with torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=bool(args.bf16)):
        ref_passes = attach_reference(model, examples, pad_id, cfg.ref_batch_size, work / "ref_logps.json")
    # 3. Train: Trainer handles devices, mixed precision, checkpoints and resuming.
    trainer = make_clo_trainer(model, args, train_examples, pad_id, cfg.lam, cfg.beta, cfg.nll,
                               val_examples or None)
    summary = run_trainer(trainer, work)
    state_dict = final_state_dict(trainer)  # every process takes part in gathering sharded (FSDP) weights
    if not trainer.is_world_process_zero():  # under accelerate launch only the main process writes
        return out
    summary.update({"stage": "clo", "config": cfg.to_dict(), "pairs": len(train_examples),
                    "validation_pairs": len(val_examples), "system_prompt": system,
                    "trainable_parameters": trainable, "reference_passes": ref_passes})
    if val_examples:
        ckpt = trainer.state.best_model_checkpoint
        summary.update({"best_eval_loss": trainer.state.best_metric,
                        "best_step": int(ckpt.rsplit("-", 1)[-1]) if ckpt else None,
                        "eval_loss_by_step": {r["step"]: r["eval_loss"] for r in trainer.state.log_history
                                              if "eval_loss" in r}})
    model.eval()
    return save_final(model, tokenizer, out, work, cfg.overwrite, summary, cfg.keep_work, state_dict)


def run_clo(cfg: CLOConfig) -> TrainResult:
    """CLO's front door (CLI, pipeline, `accelerate launch`)."""
    return run_training(cfg, train_clo)
