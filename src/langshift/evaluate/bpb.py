"""Bits per byte: a tokenizer-independent language-modelling score.

What is scored, for every text:
  * the text is encoded WITHOUT the tokenizer's own special tokens, and one context token is put in
    front: the tokenizer's BOS token, else its EOS token (the usual document separator). Every token of
    the text is then predicted and scored, the first one conditioned on that context token only. Models
    whose tokenizer adds a BOS by itself therefore see exactly what they see in training; a tokenizer
    that adds an EOS at the end does not get that EOS scored (it is not part of the text's bytes).
  * if the tokenizer has neither BOS nor EOS, the first token has nothing to condition on and is not
    scored (a warning says so); its bytes still count, so such scores are slightly optimistic.
  * the denominator is the number of UTF-8 bytes of the raw text, so two tokenizers that split the same
    text differently are compared on the same quantity: bits_per_byte = sum(-log2 p(token)) / bytes.

Texts longer than ``max_length`` tokens are scored with sliding windows: each window scores ``stride``
new tokens and keeps the ``max_length - stride`` tokens before them as context, so every token is
scored exactly once. Windows of all texts are batched together (right padding + attention mask).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from ..errors import ConfigError
from .batching import pad_right
from .intervals import bootstrap_ratio

_DEFAULT_MAX_LENGTH_CAP = 1024


@dataclass(frozen=True)
class Window:
    """One forward pass: ``ids`` as input, tokens at positions ``first_scored..len(ids)-1`` are scored."""

    doc: int
    ids: list[int]
    first_scored: int


# 1. Encoding: one context token, then the text's own tokens ---------------------------------------

def context_token_id(tokenizer) -> int | None:
    """The token put before every text: BOS when the tokenizer has one, else EOS, else None."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return None


def encode_texts(tokenizer, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
    """Token sequences (context token + text tokens) and the UTF-8 byte count of each text."""
    if isinstance(texts, str):
        raise ConfigError("texts", texts[:40], "give a list of texts, not one string")
    if len(texts) == 0:
        raise ConfigError("texts", [], "no texts to score; give at least one non-empty text")
    ctx = context_token_id(tokenizer)
    if ctx is None:
        warnings.warn("the tokenizer has neither a BOS nor an EOS token: the first token of each text is "
                      "not scored (its bytes still count)", stacklevel=3)
    seqs, nbytes = [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"texts[{i}]", text, "is empty or not a string; give non-empty text")
        try:
            nbytes.append(len(text.encode("utf-8")))
        except UnicodeEncodeError as exc:
            raise ConfigError(f"texts[{i}]", text[:40], f"cannot be encoded as UTF-8 ({exc.reason}); "
                                                        "clean the text") from None
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        seq = ([ctx] if ctx is not None else []) + ids
        if len(seq) < 2:
            raise ConfigError(f"texts[{i}]", text, "gives no token to score (one token and no BOS/EOS)")
        seqs.append(seq)
    return seqs, nbytes


# 2. Sliding windows: every target position 1..n-1 scored exactly once ------------------------------

def make_windows(seq: list[int], doc: int, max_length: int, stride: int) -> list[Window]:
    """Windows over ``seq``: the first covers up to ``max_length`` tokens and scores all but its first;
    each later one scores the next ``stride`` targets with the preceding ``max_length - stride`` tokens
    as context (fewer at the end of a short text)."""
    n = len(seq)
    end = min(max_length, n)
    windows = [Window(doc, seq[:end], 1)]
    while end < n:
        new_end = min(end + stride, n)
        begin = max(0, new_end - max_length)
        windows.append(Window(doc, seq[begin:new_end], end - begin))
        end = new_end
    return windows


def resolve_lengths(model, max_length: int | None, stride: int | None) -> tuple[int, int]:
    if max_length is None:
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None) or _DEFAULT_MAX_LENGTH_CAP
        max_length = min(int(limit), _DEFAULT_MAX_LENGTH_CAP)
    if max_length < 2:
        raise ConfigError("max_length", max_length, "must be at least 2 (one context token and one scored token)")
    if stride is None:
        stride = max(1, max_length // 2)
    if not 1 <= stride <= max_length - 1:
        raise ConfigError("stride", stride, f"must be in [1, max_length - 1 = {max_length - 1}] so that each "
                                            "window keeps at least one context token")
    return max_length, stride


# 3. Scoring: summed negative log-likelihood (nats) of the scored positions of each window ----------

def score_windows(model, windows: list[Window], batch_size: int, device=None, pad_id: int = 0,
                  progress: bool = True, desc: str = "bits per byte") -> list[float]:
    """Summed NLL in nats of each window's scored tokens (same order as ``windows``)."""
    import torch

    if batch_size < 1:
        raise ConfigError("batch_size", batch_size, "must be at least 1")
    device = device or next(model.parameters()).device
    # Longest first: batches hold windows of similar length (less padding) and OOM shows up at once.
    order = sorted(range(len(windows)), key=lambda k: -len(windows[k].ids))
    out = [0.0] * len(windows)
    bar = tqdm(total=len(windows), desc=desc, unit="win", disable=not progress or len(windows) < 2)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = [windows[k] for k in order[start:start + batch_size]]
            ids, mask = pad_right([w.ids for w in chunk], pad_id)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for r, w in enumerate(chunk):
                # logits at position t predict token t+1: scored tokens first_scored.. use logits from first_scored-1.
                pred = logits[r, w.first_scored - 1:len(w.ids) - 1]
                pred = pred.to(torch.promote_types(pred.dtype, torch.float32))  # half → float32, keep float64
                target = ids[r, w.first_scored:len(w.ids)].to(pred.device)
                nll = torch.nn.functional.cross_entropy(pred, target, reduction="sum")
                out[order[start + r]] = float(nll)
            bar.update(len(chunk))
    bar.close()
    return out


# 4. Public entry point -----------------------------------------------------------------------------

def bits_per_byte(model, tokenizer, texts: Sequence[str], max_length: int | None = None,
                  stride: int | None = None, batch_size: int = 8, device=None, progress: bool = True) -> dict:
    """Sum of token NLL in bits over the UTF-8 bytes of ``texts`` (see the module doc for what is scored).

    Returns ``bits_per_byte`` (with ``_low``/``_high``: its 95% bootstrap interval over documents), ``tokens`` (scored tokens), ``bytes``, ``nll_bits`` (total),
    ``documents``, ``per_document`` (bits per byte of each text), ``max_length``, ``stride``.
    """
    max_length, stride = resolve_lengths(model, max_length, stride)
    seqs, nbytes = encode_texts(tokenizer, texts)
    windows = [w for d, seq in enumerate(seqs) for w in make_windows(seq, d, max_length, stride)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    nll = score_windows(model, windows, batch_size, device, pad_id, progress)
    per_doc = [0.0] * len(seqs)
    for w, value in zip(windows, nll, strict=True):
        per_doc[w.doc] += value
    bits = [v / math.log(2) for v in per_doc]
    total_bits, total_bytes = sum(bits), sum(nbytes)
    low, high = bootstrap_ratio(bits, nbytes) if len(bits) > 1 else (float("nan"), float("nan"))
    return {
        "bits_per_byte": total_bits / total_bytes,
        "bits_per_byte_low": low,    # 95% bootstrap interval over documents
        "bits_per_byte_high": high,
        "tokens": sum(len(s) - 1 for s in seqs),
        "bytes": total_bytes,
        "nll_bits": total_bits,
        "documents": len(seqs),
        "per_document": [b / n for b, n in zip(bits, nbytes, strict=True)],
        "max_length": max_length,
        "stride": stride,
        "context_token": context_token_id(tokenizer),
    }
