"""CLO's examples and batches: the four rows of each pair under the chat template, right-padded batches
with the response tokens as labels, and the reference log-probabilities computed once before training."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from ..files import atomic_write_json
from .clo_loss import ROWS, token_logps
from .data import chat_pair_ids


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
    """Sequence log-probs of the four rows of every example under ``model`` as it is now (once).

    Rows are independent here, so they go longest first in batches of ``4 * batch_size`` rows of similar
    length (little padding: CLO pairs mix short and long answers) and are put back in pair order."""
    import torch
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = [(i, k, row) for i, ex in enumerate(examples) for k, row in enumerate(ex["rows"])]
    rows.sort(key=lambda r: -len(r[2][0]))
    out = [[0.0] * len(ex["rows"]) for ex in examples]
    step = 4 * batch_size
    with torch.no_grad():
        for start in tqdm(range(0, len(rows), step), desc="reference log-probs", unit="batch"):
            chunk = rows[start:start + step]
            batch = collate_pairs([{"rows": [r[2] for r in chunk]}], pad_id)
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits
            seq = token_logps(logits, batch["labels"].to(device))[0].sum(-1).double().cpu().tolist()
            for (i, k, _), value in zip(chunk, seq, strict=True):
                out[i][k] = value
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
        atomic_write_json(cache, {"key": key, "ref_logps": refs})
    return math.ceil(len(examples) / batch_size)
