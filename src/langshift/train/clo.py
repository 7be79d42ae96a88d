"""Cross-Lingual Optimization (CLO; seed 004, eqs. 8-12): the loss, the batches and the trainer.

Each English pair (x_en, y_en) with its translation (x_t, y_t) gives four rows, always in the same
batch and in this order:

    0  x_en → y_en   chosen      (English prompt, English answer)
    1  x_en → y_t    rejected    (English prompt, target-language answer)
    2  x_t  → y_t    chosen      (target prompt, target answer)
    3  x_t  → y_en   rejected    (target prompt, English answer)

    z_en = β·[(log π(y_en|x_en) − log π_ref(y_en|x_en)) − (log π(y_t|x_en) − log π_ref(y_t|x_en))]
    z_t  = β·[(log π(y_t|x_t)  − log π_ref(y_t|x_t))  − (log π(y_en|x_t) − log π_ref(y_en|x_t))]
    L    = λ·NLL(y_t|x_t) + (1−λ)·mean_i[−log σ(z_en,i) − log σ(z_t,i)]

log π(y|x) is the sum of the response tokens' log-probabilities (as in DPO). NLL is taken on row 2 only
(the target-language chosen row) and normalised as the mean per response token over the batch: the
sum of −log p over every y_t token of the batch divided by their number (the usual causal-LM loss; the
paper's eq. 9 writes a per-sequence mean, which weighs long answers more and changes the scale with
answer length).

The reference log-probabilities are those of the model before training: they are computed once, in
one pass over the data before the first step, kept with the examples (and cached in the work folder
so that a resumed run does not recompute them), so no second model sits in memory.

Why our own ``transformers.Trainer`` subclass and not trl's DPOTrainer: trl's losses treat each
preference row alone and its "sft" term covers every chosen row, while CLO couples the two rows of a
pair in one batch and takes NLL on target rows only; a ``compute_loss`` of ~20 lines keeps that exact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError
from .data import chat_pair_ids, read_jsonl
from .modules import attention_parameter_names, set_trainable
from .runtime import prepare_out, run_trainer, save_final, training_arguments

log = logging.getLogger(__name__)

CLO_FIELDS = ("id", "x_en", "y_en", "x_t", "y_t")
ROWS = (("x_en", "y_en"), ("x_en", "y_t"), ("x_t", "y_t"), ("x_t", "y_en"))
EN_CHOSEN, EN_REJECTED, T_CHOSEN, T_REJECTED = range(4)


@dataclass
class CLOConfig(StageConfig):
    model: str = opt(help="model to align: built-in name, model folder or hub id")
    data: str = opt(help="CLO JSONL: one object per line with id, x_en, y_en, x_t, y_t (see `langshift clo data`)")
    out: str = opt(help="output model folder (written atomically; <out>.work holds checkpoints)")
    lam: float = opt(0.5, "λ: weight of the target-language NLL; 1−λ weighs the cross-lingual loss", flag="--lambda")
    beta: float = opt(0.1, "β: strength of the KL constraint in z (must be > 0)")
    lr: float = opt(5e-5, "peak learning rate (AdamW)")
    min_lr: float = opt(1.1e-6, "learning rate at the end of the cosine schedule (paper: 1.1e-6)")
    warmup: float = opt(0.0, "warm-up: a share of the steps (<1) or a number of steps")
    batch_size: int = opt(8, "English pairs per batch (each gives 4 rows, so 4× as many sequences)")
    grad_accum: int = opt(1, "gradient accumulation steps")
    epochs: float = opt(1.0, "epochs over the pairs")
    max_steps: int | None = opt(None, "stop after this many optimizer steps (short runs)")
    max_len: int = opt(512, "longest prompt+response in tokens; longer responses are cut")
    train: Literal["attention", "all"] = opt("attention", "parameters to train: attention projections or all")
    ref_batch_size: int = opt(8, "pairs per forward pass when computing the reference log-probabilities")
    save_steps: int = opt(100, "save a checkpoint every this many steps (resume point)")
    seed: int = opt(0, "random seed")
    overwrite: bool = opt(False, "replace an existing --out")
    keep_work: bool = opt(False, "keep <out>.work (checkpoints, reference cache) after success")

    def validate(self) -> None:
        check_range("--lambda", self.lam, 0.0, 1.0)
        check_range("--beta", self.beta, 0.0, None, lo_open=True)
        check_range("--lr", self.lr, 0.0, None, lo_open=True)
        check_range("--min-lr", self.min_lr, 0.0)
        check_range("--warmup", self.warmup, 0.0)
        check_range("--epochs", self.epochs, 0.0, None, lo_open=True)
        if self.max_steps is not None:
            check_range("--max-steps", self.max_steps, 1)
        for name in ("batch_size", "grad_accum", "ref_batch_size", "save_steps"):
            if getattr(self, name) < 1:
                raise ConfigError("--" + name.replace("_", "-"), getattr(self, name), "must be at least 1")
        if self.max_len < 8:
            raise ConfigError("--max-len", self.max_len, "must be at least 8 tokens")


# 1. The loss, as a pure function of log-probabilities -------------------------------------------


def clo_loss(policy_logps, ref_logps, target_nll, lam: float, beta: float) -> dict:
    """CLO loss from per-row sequence log-probs ``[N, 4]`` (row order ``ROWS``) and the target NLL.

    Returns the loss and its parts (``nll``, ``cl``, ``z_en``, ``z_t`` per pair, reward accuracy).
    """
    import torch.nn.functional as F

    ratio = policy_logps - ref_logps
    z_en = beta * (ratio[:, EN_CHOSEN] - ratio[:, EN_REJECTED])
    z_t = beta * (ratio[:, T_CHOSEN] - ratio[:, T_REJECTED])
    cl = (-F.logsigmoid(z_en) - F.logsigmoid(z_t)).mean()
    loss = lam * target_nll + (1.0 - lam) * cl
    accuracy = ((z_en > 0).float().mean() + (z_t > 0).float().mean()) / 2
    return {"loss": loss, "nll": target_nll, "cl": cl, "z_en": z_en, "z_t": z_t, "accuracy": accuracy}


def token_logps(logits, labels):
    """Log-probability of each next token (``[B, T-1]``) and the mask of positions that count."""
    import torch

    logits, labels = logits[:, :-1, :].float(), labels[:, 1:]
    mask = labels != -100
    safe = labels.masked_fill(~mask, 0)
    # gather − logsumexp: avoids materialising a second vocabulary-sized log_softmax tensor
    picked = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return picked * mask, mask


def pair_logps_and_nll(logits, labels):
    """Sequence log-probs ``[N, 4]`` and the mean per-token NLL of the target-chosen rows."""
    logps, mask = token_logps(logits, labels)
    seq = logps.sum(-1).view(-1, 4)
    target_rows = slice(T_CHOSEN, None, 4)
    nll = -logps[target_rows].sum() / mask[target_rows].sum().clamp(min=1)
    return seq, nll


# 2. Examples and batches ------------------------------------------------------------------------


def encode_pairs(tokenizer, records: list[dict], max_len: int) -> list[dict]:
    """Per record, the four rows (ids and prompt length) under the chat template."""
    examples = []
    for rec in records:
        rows = [chat_pair_ids(tokenizer, rec[x], rec[y], max_len) for x, y in ROWS]
        examples.append({"id": rec["id"], "rows": rows})
    return examples


def collate_pairs(examples: list[dict], pad_id: int) -> dict:
    """4N right-padded rows (pair-major), labels −100 on prompts and padding, reference log-probs."""
    import torch

    rows = [r for ex in examples for r in ex["rows"]]
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full_like(input_ids, -100)
    attention = torch.zeros_like(input_ids)
    for i, (ids, prompt_len) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, prompt_len:len(ids)] = input_ids[i, prompt_len:len(ids)]
        attention[i, :len(ids)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
    if all("ref_logps" in ex for ex in examples):
        batch["ref_logps"] = torch.tensor([ex["ref_logps"] for ex in examples], dtype=torch.float32)
    return batch


def compute_reference_logps(model, examples: list[dict], pad_id: int, batch_size: int) -> list[list[float]]:
    """Sequence log-probs of the four rows of every example under ``model`` as it is now (once)."""
    import torch
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[list[float]] = []
    with torch.no_grad():
        for start in tqdm(range(0, len(examples), batch_size), desc="reference log-probs", unit="batch"):
            batch = collate_pairs(examples[start:start + batch_size], pad_id)
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits
            seq, _ = pair_logps_and_nll(logits, batch["labels"].to(device))
            out.extend(seq.double().cpu().tolist())
    model.train(was_training)
    return out


def attach_reference(model, examples: list[dict], pad_id: int, batch_size: int, cache: Path | None) -> int:
    """Store reference log-probs in ``examples`` (from ``cache`` when it matches). Returns passes run."""
    key = hashlib.sha256(json.dumps([[ex["id"], ex["rows"]] for ex in examples]).encode()).hexdigest()
    if cache is not None and cache.is_file():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            for ex, ref in zip(examples, stored["ref_logps"], strict=True):
                ex["ref_logps"] = ref
            return 0
    refs = compute_reference_logps(model, examples, pad_id, batch_size)
    for ex, ref in zip(examples, refs, strict=True):
        ex["ref_logps"] = ref
    if cache is not None:
        from ..files import atomic_write_json

        atomic_write_json(cache, {"key": key, "ref_logps": refs})
    return math.ceil(len(examples) / batch_size)


# 3. The trainer ---------------------------------------------------------------------------------


def make_clo_trainer(model, args, examples: list[dict], pad_id: int, lam: float, beta: float):
    """A ``transformers.Trainer`` whose ``compute_loss`` is the CLO loss (inherits checkpoints, accelerate)."""
    from transformers import Trainer

    class CLOTrainer(Trainer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._parts: dict[str, list[float]] = {}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ref = inputs["ref_logps"]
            logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
            seq, nll = pair_logps_and_nll(logits, inputs["labels"])
            parts = clo_loss(seq, ref.to(seq.dtype), nll, lam, beta)
            for name in ("nll", "cl", "accuracy"):
                self._parts.setdefault(name, []).append(float(parts[name].detach()))
            for name in ("z_en", "z_t"):
                self._parts.setdefault(name, []).append(float(parts[name].detach().mean()))
            return (parts["loss"], logits) if return_outputs else parts["loss"]

        def log(self, logs, *args, **kwargs):
            if "loss" in logs:  # add the mean of each part since the last log line
                for name, values in self._parts.items():
                    logs[name] = sum(values) / len(values)
                self._parts = {}
            super().log(logs, *args, **kwargs)

    return CLOTrainer(model=model, args=args, train_dataset=examples,
                      data_collator=lambda exs: collate_pairs(exs, pad_id))


def train_clo(cfg: CLOConfig, model=None, tokenizer=None) -> Path:
    """Run CLO from ``cfg``; ``model``/``tokenizer`` may be given already loaded (else from ``cfg.model``)."""
    from ..models import load_model, load_tokenizer

    out = Path(cfg.out)
    work = prepare_out(out, cfg.overwrite)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model, "--model")
    model = model if model is not None else load_model(cfg.model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    records = read_jsonl(cfg.data, CLO_FIELDS, "--data")
    examples = encode_pairs(tokenizer, records, cfg.max_len)

    # 1. Choose what trains before anything runs, so a model without attention modules fails at once.
    names = attention_parameter_names(model) if cfg.train == "attention" else None
    trainable = set_trainable(model, names)
    args = training_arguments(work, batch_size=cfg.batch_size, lr=cfg.lr, epochs=cfg.epochs,
                              max_steps=cfg.max_steps, warmup=cfg.warmup, seed=cfg.seed, save_steps=cfg.save_steps,
                              grad_accum=cfg.grad_accum, scheduler="cosine_with_min_lr",
                              scheduler_kwargs={"min_lr": cfg.min_lr})
    # 2. Reference log-probs from the untrained model, once (cached for resumes), on the training device
    #    and in the training precision, so that policy and reference agree exactly at step 0.
    import torch

    model.to(args.device)
    with torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=bool(args.bf16)):
        ref_passes = attach_reference(model, examples, pad_id, cfg.ref_batch_size, work / "ref_logps.json")
    # 3. Train: Trainer handles devices, mixed precision, checkpoints and resuming.
    trainer = make_clo_trainer(model, args, examples, pad_id, cfg.lam, cfg.beta)
    summary = run_trainer(trainer, work)
    if not trainer.is_world_process_zero():  # under accelerate launch only the main process writes
        return out
    summary.update({"stage": "clo", "config": cfg.to_dict(), "pairs": len(examples),
                    "trainable_parameters": trainable, "reference_passes": ref_passes})
    model.eval()
    return save_final(model, tokenizer, out, work, cfg.overwrite, summary, cfg.keep_work)
