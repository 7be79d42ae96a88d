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
(the target-language chosen row; ``nll="both"`` adds row 0, the ablation of Table 5) and normalised as
the mean per response token: the sum of −log p over every such token divided by their number (the usual
causal-LM loss; the paper's eq. 9 writes a per-sequence mean, which weighs long answers more and changes
the scale with answer length). The preference term is a mean over pairs.

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

import hashlib
import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError
from .clo_data import resolve_system_prompt
from .data import chat_pair_ids, read_jsonl
from .modules import attention_parameter_names, set_trainable
from .runtime import final_state_dict, prepare_out, run_trainer, save_final, training_arguments

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
    gradient_checkpointing: bool | None = opt(None, "recompute activations in the backward pass (less memory, "
                                                    "slower); default: on when a GPU is there")
    bf16: bool | None = opt(None, "bfloat16 autocast (weights stay float32); default: on when the GPU "
                                  "supports it, off on CPU")
    max_len: int = opt(512, "longest prompt+response in tokens; longer responses are cut")
    train: Literal["attention", "all"] = opt("attention", "parameters to train: attention projections or all")
    ref_batch_size: int = opt(8, "pairs per forward pass when computing the reference log-probabilities")
    save_steps: int = opt(100, "save a checkpoint every this many steps (resume point)")
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
        check_range("--val-fraction", self.val_fraction, 0.0, 0.5)
        resolve_system_prompt(self.system_prompt, "--system-prompt")
        for name in ("batch_size", "grad_accum", "ref_batch_size", "save_steps", "eval_steps"):
            if getattr(self, name) < 1:
                raise ConfigError("--" + name.replace("_", "-"), getattr(self, name), "must be at least 1")
        if self.max_len < 8:
            raise ConfigError("--max-len", self.max_len, "must be at least 8 tokens")


# 1. The loss, as a pure function of log-probabilities -------------------------------------------


NLL_ROWS = {"target": (T_CHOSEN,), "both": (EN_CHOSEN, T_CHOSEN)}


def pair_terms(policy_logps, ref_logps, beta: float) -> dict:
    """Per pair ``z_en``, ``z_t`` and the cross-lingual loss −log σ(z_en) − log σ(z_t) (rows as ``ROWS``)."""
    import torch.nn.functional as F

    ratio = policy_logps - ref_logps
    z_en = beta * (ratio[:, EN_CHOSEN] - ratio[:, EN_REJECTED])
    z_t = beta * (ratio[:, T_CHOSEN] - ratio[:, T_REJECTED])
    return {"z_en": z_en, "z_t": z_t, "cl": -F.logsigmoid(z_en) - F.logsigmoid(z_t)}


def clo_loss(policy_logps, ref_logps, target_nll, lam: float, beta: float) -> dict:
    """CLO loss of one whole batch from per-row sequence log-probs ``[N, 4]`` and its (mean) NLL.

    Returns the loss and its parts (``nll``, ``cl``, ``z_en``, ``z_t`` per pair, reward accuracy).
    """
    t = pair_terms(policy_logps, ref_logps, beta)
    cl = t["cl"].mean()
    accuracy = ((t["z_en"] > 0).float().mean() + (t["z_t"] > 0).float().mean()) / 2
    return {"loss": lam * target_nll + (1.0 - lam) * cl, "nll": target_nll, "cl": cl, "z_en": t["z_en"],
            "z_t": t["z_t"], "accuracy": accuracy}


def token_logps(logits, labels):
    """Log-probability of each next token (``[B, T-1]``) and the mask of positions that count."""
    import torch

    logits, labels = logits[:, :-1, :].float(), labels[:, 1:]
    mask = labels != -100
    safe = labels.masked_fill(~mask, 0)
    # gather − logsumexp: avoids materialising a second vocabulary-sized log_softmax tensor
    picked = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return picked * mask, mask


def nll_row_mask(n_rows: int, nll_rows=(T_CHOSEN,), device=None):
    """Which of ``n_rows`` pair-major rows the NLL term covers."""
    import torch

    return torch.isin(torch.arange(n_rows, device=device) % 4, torch.tensor(nll_rows, device=device))


def pair_logps_and_nll(logits, labels, nll_rows=(T_CHOSEN,)):
    """Sequence log-probs ``[N, 4]``, the summed NLL of the ``nll_rows`` rows' tokens and their number."""
    logps, mask = token_logps(logits, labels)
    seq = logps.sum(-1).view(-1, 4)
    rows = nll_row_mask(len(logps), nll_rows, logps.device)
    return seq, -logps[rows].sum(), mask[rows].sum()


def count_items(labels, nll_rows=(T_CHOSEN,)):
    """``[NLL tokens, pairs]`` of a collated batch: what the step's means divide by (float tensor)."""
    import torch

    rows = nll_row_mask(len(labels), nll_rows, labels.device)
    return torch.stack([(labels[rows, 1:] != -100).sum(), torch.tensor(len(labels) // 4, device=labels.device)]
                       ).float()


# 2. Examples and batches ------------------------------------------------------------------------


def system_pair_ids(tokenizer, system: str, instruction: str, response: str, max_len: int) -> tuple[list[int], int]:
    """``chat_pair_ids`` with a system turn first (same cut rules: the response's end goes first)."""
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": instruction}]
    prompt = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": response}], tokenize=False)
    if not full.startswith(prompt):
        full = prompt + response + (tokenizer.eos_token or "")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    if len(p_ids) >= max_len:
        p_ids = p_ids[-(max_len // 2):]
    return (p_ids + r_ids)[:max_len], len(p_ids)


def encode_pairs(tokenizer, records: list[dict], max_len: int, system: str | None = None) -> list[dict]:
    """Per record, the four rows (ids and prompt length) under the chat template (with ``system`` if given)."""
    examples = []
    for rec in records:
        if system:
            rows = [system_pair_ids(tokenizer, system, rec[x], rec[y], max_len) for x, y in ROWS]
        else:
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
            seq = token_logps(logits, batch["labels"].to(device))[0].sum(-1).view(-1, 4)
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
    args = training_arguments(work, batch_size=cfg.batch_size, lr=cfg.lr, epochs=cfg.epochs,
                              max_steps=cfg.max_steps, warmup=cfg.warmup, seed=cfg.seed,
                              save_steps=cfg.eval_steps if val_examples else cfg.save_steps,
                              grad_accum=cfg.grad_accum, scheduler="cosine_with_min_lr",
                              scheduler_kwargs={"min_lr": cfg.min_lr},
                              gradient_checkpointing=cfg.gradient_checkpointing, bf16=cfg.bf16, **best)
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
