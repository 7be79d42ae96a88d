"""Memory of CLO's per-token log-probabilities on real batches at a large vocabulary: the response
positions only upcast to float32 (``clo_loss.token_logps``) against the whole padded grid upcast (the
previous code, kept here as the comparison).

The batches are CLO's own: every 8 pairs (32 rows: x_en→y_en, x_en→y_t, x_t→y_t, x_t→y_en under
SmolLM2's chat template, right-padded to the longest row) of the translated pool that
``bench/science.py clo`` trains on; the widest batch is measured, since a step's peak is set by it. The
logits are random bf16 tensors of that batch's shape with a Llama-3-sized vocabulary (128,256), as a
bf16 model's head would return them; each variant runs forward and backward in a fresh process, whose
peak RSS (``ru_maxrss``) minus its RSS with the logits allocated is what the log-prob step costs.
Both variants' values and gradients are checked bit-identical first (the same logits, in this process).

    python bench/clo_logps_memory.py           # writes bench/results/clo_logps_memory.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
from pathlib import Path

import torch

from langshift.files import atomic_write_json
from langshift.models import load_tokenizer
from langshift.train.clo_batches import collate_pairs, encode_pairs
from langshift.train.clo_loss import token_logps
from train_clo_fidelity import make_data

RESULTS = Path(__file__).parent / "results" / "clo_logps_memory.json"
DATA = Path(__file__).parent / ".work" / "science" / "clo_data"


def full_grid_logps(logits, labels):
    """The previous ``token_logps``: every position of the padded grid upcast and normalised."""
    logits, labels = logits[:, :-1, :].float(), labels[:, 1:]
    mask = labels != -100
    picked = logits.gather(-1, labels.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
    return picked * mask, mask


VARIANTS = {"response positions (token_logps)": token_logps, "whole grid (before)": full_grid_logps}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(variant: str, labels_path: str, vocab: int) -> None:
    """One forward + backward of ``variant`` on random bf16 logits; prints the peak RSS above the logits'."""
    labels = torch.load(labels_path, weights_only=True)
    logits = torch.randn(*labels.shape, vocab, dtype=torch.bfloat16).requires_grad_()
    before = rss_mib()
    seq = VARIANTS[variant](logits, labels)[0].sum(-1)
    seq.pow(2).sum().backward()
    print(json.dumps({"rss_with_logits_mib": round(before), "peak_mib": round(rss_mib()),
                      "step_mib": round(rss_mib() - before)}))


def widest_batch(pairs: int, seed: int) -> torch.Tensor:
    tok = load_tokenizer("smollm2-135m-instruct")
    records = make_data(DATA, 518, "apertium", "es")
    examples = encode_pairs(tok, records, 512)
    random.Random(seed).shuffle(examples)
    batches = [collate_pairs(examples[i:i + pairs], tok.pad_token_id) for i in range(0, len(examples), pairs)]
    return max(batches, key=lambda b: b["labels"].shape[1])["labels"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=128_256)
    ap.add_argument("--pairs", type=int, default=8, help="pairs per batch (4 rows each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.vocab)
    labels = widest_batch(args.pairs, args.seed)
    counted = (labels[:, 1:] != -100).float().mean().item()
    small = torch.randn(*labels.shape, 512).requires_grad_()      # bit-identity on a small vocabulary
    small_labels = torch.where(labels == -100, labels, labels % 512)
    (a, _), (b, _) = full_grid_logps(small, small_labels), token_logps(small, small_labels)
    ga, = torch.autograd.grad(a.sum(-1).pow(2).sum(), small)
    gb, = torch.autograd.grad(b.sum(-1).pow(2).sum(), small)
    identical = bool(torch.equal(a, b) and torch.equal(ga, gb))
    labels_path = RESULTS.parent.parent / ".work" / "clo_logps_labels.pt"
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(labels, labels_path)
    runs = {}
    for name in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--vocab", str(args.vocab), "--child", name, str(labels_path)],
                             check=True, capture_output=True, text=True).stdout
        runs[name] = json.loads(out.strip().splitlines()[-1])
        print(name, runs[name], flush=True)
    lean, full = (runs[n]["step_mib"] for n in VARIANTS)
    result = {"command": "python bench/clo_logps_memory.py " + " ".join(sys.argv[1:]),
              "batch_shape": list(labels.shape), "vocab": args.vocab, "counted_share": round(counted, 4),
              "logits_mib": round(labels.numel() * args.vocab * 2 / 2 ** 20), "bit_identical": identical,
              "runs": runs, "step_ratio": round(lean / full, 3)}
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    atomic_write_json(RESULTS, result)


if __name__ == "__main__":
    main()
