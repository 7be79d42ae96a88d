"""Multiple choice by log-likelihood: our small runner over JSONL items, and an lm-eval adapter.

Task file (JSONL, one item a line)::

    {"question": str, "choices": [str, ...], "answer": int (0-based), "passage": str (optional),
     "language": "es" (optional; default: the runner's ``lang``), "id": any (optional)}

Each item is rendered with its language's template (``templates.py``). Two formats:
  * ``text`` (default): context = [passage +] question + answer indicator; each choice's text is the
    continuation (" " + choice). Length-normalised accuracy divides by the choice's UTF-8 bytes.
  * ``letters``: the choices are listed with their labels and the continuation is " " + label
    (BELEBELE-style, seed 004 Table 7).
The continuation is scored as sum log p(continuation tokens | context), the context preceded by the
tokenizer's BOS/EOS token exactly as in bits per byte.
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import ConfigError, LangshiftError
from .batching import pad_right
from .bpb import Window, context_token_id
from .intervals import wilson
from .templates import get_template

Format = Literal["text", "letters"]


@dataclass
class MCItem:
    question: str
    choices: list[str]
    answer: int
    passage: str | None = None
    language: str | None = None
    id: object = None
    extra: dict = field(default_factory=dict)


# 1. Reading and checking task files ----------------------------------------------------------------

def parse_item(obj: object, where: str) -> MCItem:
    """One item from a decoded JSON object; errors name ``where`` (file:line) and the field."""
    if not isinstance(obj, dict):
        raise LangshiftError(f"{where}: expected a JSON object with question, choices, answer")
    for key in ("question", "choices", "answer"):
        if key not in obj:
            raise LangshiftError(f"{where}: missing field {key!r} (each item needs question, choices, answer)")
    q, choices, answer = obj["question"], obj["choices"], obj["answer"]
    if not isinstance(q, str) or not q.strip():
        raise LangshiftError(f"{where}: field 'question' must be a non-empty string")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip()
                                                                    for c in choices):
        raise LangshiftError(f"{where}: field 'choices' must be a list of at least 2 non-empty strings")
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise LangshiftError(f"{where}: field 'answer' must be a 0-based integer index, got {answer!r}")
    if not 0 <= answer < len(choices):
        raise LangshiftError(f"{where}: field 'answer'={answer} is out of range for {len(choices)} choices "
                             f"(use a 0-based index 0..{len(choices) - 1})")
    passage = obj.get("passage")
    if passage is not None and not isinstance(passage, str):
        raise LangshiftError(f"{where}: field 'passage' must be a string when given")
    known = {"question", "choices", "answer", "passage", "language", "id"}
    return MCItem(q, list(choices), answer, passage or None, obj.get("language"), obj.get("id"),
                  {k: v for k, v in obj.items() if k not in known})


def load_items(path: str | Path, param: str = "--tasks") -> list[MCItem]:
    from ..files import read_json_lines

    if not Path(path).is_file():
        raise ConfigError(param, str(path), "no such file; give a JSONL task file or lm-eval task names")
    return [parse_item(obj, f"{path}:{number}") for number, obj in read_json_lines(path, param)]


# 2. Requests: (context, continuation) per choice ---------------------------------------------------

def build_requests(item: MCItem, lang: str, fmt: Format = "text",
                   fallback_english: bool = False) -> list[tuple[str, str]]:
    tpl = get_template(item.language or lang, fallback_english, param="language")
    if fmt == "letters":
        ctx = tpl.render_ll_context(item.question, item.passage, item.choices)
        return [(ctx, " " + label) for label in tpl.labels(len(item.choices))]
    if fmt != "text":
        raise ConfigError("format", fmt, "use 'text' or 'letters'")
    ctx = tpl.render_ll_context(item.question, item.passage)
    return [(ctx, " " + choice) for choice in item.choices]


def encode_request(tokenizer, context: str, continuation: str, max_length: int) -> Window:
    """Context and continuation ids; the continuation is the part of encode(context + continuation)
    after encode(context) when that is a prefix (so merges across the seam follow the tokenizer),
    else it is encoded alone. Over-long inputs lose tokens from the left of the context."""
    enc = lambda s: list(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    ctx_ids, whole = enc(context), enc(context + continuation)
    cont = whole[len(ctx_ids):] if whole[:len(ctx_ids)] == ctx_ids and len(whole) > len(ctx_ids) else enc(continuation)
    if not cont:
        raise LangshiftError(f"continuation {continuation!r} gives no tokens")
    head = context_token_id(tokenizer)
    ctx_ids = ([head] if head is not None else []) + ctx_ids
    if not ctx_ids:
        raise LangshiftError("empty context and no BOS/EOS token: the first continuation token has no context")
    ids = (ctx_ids + cont)[-max_length:]
    return Window(0, ids, max(1, len(ids) - len(cont)))


def continuation_logprobs(model, tokenizer, requests: list[tuple[str, str]], batch_size: int = 8,
                          max_length: int = 1024, progress: bool = True, precision: str = "model") -> list[float]:
    """log p(continuation | context) (natural log) for each request."""
    windows = [encode_request(tokenizer, c, x, max_length) for c, x in requests]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return [-v for v in score_continuations(model, windows, batch_size, pad, precision, progress)]


def score_continuations(model, windows: list[Window], batch_size: int, pad_id: int = 0, precision: str = "model",
                        progress: bool = True) -> list[float]:
    """Summed NLL (nats) of each window's scored tokens, as ``bpb.score_windows``, but the LM head runs only
    on the positions that predict scored tokens (``logits_to_keep``): with a 49k vocabulary the head over
    every context position costs a fifth of the compute and most of the memory traffic."""
    import torch
    from tqdm.auto import tqdm

    from .mexa import precision_context

    if batch_size < 1:
        raise ConfigError("batch_size", batch_size, "must be at least 1")
    device = next(model.parameters()).device
    can_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
    order = sorted(range(len(windows)), key=lambda k: -len(windows[k].ids))  # similar lengths per batch
    out = [0.0] * len(windows)
    bar = tqdm(total=len(windows), desc="multiple choice", unit="req", disable=not progress or len(windows) < 2)
    with torch.inference_mode(), precision_context(model, precision):
        for start in range(0, len(order), batch_size):
            chunk = [windows[k] for k in order[start:start + batch_size]]
            ids, mask = pad_right([w.ids for w in chunk], pad_id)
            # logits at position t predict token t+1: keep positions lo..hi-1 covering every row's scored span
            lo = min(w.first_scored for w in chunk) - 1 if can_keep else 0
            hi = max(len(w.ids) for w in chunk) - 1 if can_keep else ids.shape[1]
            kwargs = {"logits_to_keep": torch.arange(lo, hi, device=device)} if can_keep else {}
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False,
                           **kwargs).logits
            for r, w in enumerate(chunk):
                pred = logits[r, w.first_scored - 1 - lo:len(w.ids) - 1 - lo]
                pred = pred.to(torch.promote_types(pred.dtype, torch.float32))  # half → float32, keep float64
                target = ids[r, w.first_scored:len(w.ids)].to(pred.device)
                out[order[start + r]] = float(torch.nn.functional.cross_entropy(pred, target, reduction="sum"))
            bar.update(len(chunk))
    bar.close()
    return out


# 3. Metrics ------------------------------------------------------------------------------------------

def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n), as lm-eval reports)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def _argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


def score_items(items: list[MCItem], logprobs: list[list[float]], continuations: list[list[str]]) -> dict:
    """Accuracy and length-normalised accuracy (log-likelihood per UTF-8 byte of the continuation)."""
    correct, correct_norm, per_lang, preds = [], [], {}, []
    for item, lps, conts in zip(items, logprobs, continuations, strict=True):
        norm = [lp / max(1, len(c.encode("utf-8"))) for lp, c in zip(lps, conts, strict=True)]
        pick, pick_norm = _argmax(lps), _argmax(norm)
        correct.append(float(pick == item.answer))
        correct_norm.append(float(pick_norm == item.answer))
        per_lang.setdefault(item.language or "-", []).append(float(pick == item.answer))
        preds.append({"id": item.id, "answer": item.answer, "pred": pick, "pred_norm": pick_norm,
                      "logprobs": lps})
    acc, acc_se = mean_and_stderr(correct)
    acc_norm, acc_norm_se = mean_and_stderr(correct_norm)
    low, high = wilson(sum(correct), len(correct))
    return {"n": len(items), "acc": acc, "acc_stderr": acc_se, "acc_low": low, "acc_high": high,  # 95% Wilson
            "acc_norm": acc_norm, "acc_norm_stderr": acc_norm_se,
            "by_language": {k: {"n": len(v), "acc": sum(v) / len(v)} for k, v in sorted(per_lang.items())},
            "predictions": preds}


def evaluate_mc(model, tokenizer, items: list[MCItem], lang: str = "en", fmt: Format = "text",
                batch_size: int = 8, max_length: int = 1024, fallback_english: bool = False,
                progress: bool = True, precision: str = "model") -> dict:
    """Run every item: one scored continuation per choice; returns metrics and predictions.

    ``precision="bfloat16"`` autocasts the matrix products (see ``mexa.precision_context``)."""
    if not items:
        raise ConfigError("items", [], "no items to evaluate")
    per_item = [build_requests(it, lang, fmt, fallback_english) for it in items]
    flat = [r for reqs in per_item for r in reqs]
    lps = continuation_logprobs(model, tokenizer, flat, batch_size, max_length, progress, precision)
    grouped, k = [], 0
    for reqs in per_item:
        grouped.append(lps[k:k + len(reqs)])
        k += len(reqs)
    res = score_items(items, grouped, [[x for _, x in reqs] for reqs in per_item])
    res["format"] = fmt
    return res


# 4. lm-eval adapter ----------------------------------------------------------------------------------

def run_lm_eval(model, tokenizer, tasks: list[str], include_path: str | None = None, limit: int | None = None,
                batch_size: int = 8, num_fewshot: int | None = None, device: str = "cpu") -> dict:
    """lm-eval tasks on an already-loaded model (``HFLM(pretrained=model, tokenizer=tokenizer)``).

    Task data comes from the hub unless the task's YAML points at local files (``include_path`` adds a
    folder of task YAMLs). Offline, a hub task fails: the error says so instead of a stack of retries.
    """
    from ..optional import require

    require("lm_eval", "pip install 'lm-eval>=0.4'", "lm-eval tasks")
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    manager = None
    if include_path:  # indexing lm-eval's own thousands of task YAMLs takes ~30 s: skip it when not needed
        manager = TaskManager(include_path=include_path, include_defaults=False)
        if any(t not in manager.all_tasks for t in tasks):
            manager = None
    manager = manager or TaskManager(include_path=include_path)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError("--tasks", ",".join(unknown), "not a JSONL file nor a known lm-eval task; give a task "
                                                        "file, an lm-eval task name, or --include-path with task YAMLs")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    try:
        out = simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                              num_fewshot=num_fewshot, log_samples=False, bootstrap_iters=0)
    except Exception as exc:  # datasets/hub errors come in many types; name the likely cause
        text = f"{type(exc).__name__}: {exc}"
        if any(s in text for s in ("offline", "Offline", "ConnectionError", "resolve", "Couldn't reach",
                                   "LocalEntryNotFound", "not found on the Hugging Face Hub")):
            raise LangshiftError(f"lm-eval could not load the data of {tasks} ({text[:300]}). No network here: "
                                 "use a task whose YAML reads local files (--include-path) or a JSONL task "
                                 "file") from None
        raise
    return {"results": _jsonable(out["results"]), "versions": _jsonable(out.get("versions", {})),
            "n_samples": _jsonable(out.get("n-samples", {}))}


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
