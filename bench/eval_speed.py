"""Evaluation speed on the built-in 135M model: MEXA on N parallel pairs (goal: 1,000 pairs ≤ 60 s on
2 cores) and log-likelihood multiple-choice throughput. Prints the figures and writes
bench/results/eval_speed.json.

    python bench/eval_speed.py [--pairs 1000] [--mc-items 50] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from langshift.evaluate.builders import build
from langshift.evaluate.mc import evaluate_mc, parse_item
from langshift.evaluate.mexa import mexa
from langshift.files import atomic_write_json
from langshift.models import load_model, load_tokenizer
from langshift.resources import BUILTIN_MODEL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--mc-items", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_speed.json"))
    args = ap.parse_args()

    model, tok = load_model(BUILTIN_MODEL, dtype=getattr(torch, args.dtype)), load_tokenizer(BUILTIN_MODEL)
    pairs = [(r["en"], r["xx"]) for r in build("parallel", args.pairs, seed=0)]
    n_tokens = sum(len(tok(s)["input_ids"]) for p in pairs for s in p)

    t0 = time.perf_counter()
    res = mexa(model, tok, pairs, batch_size=args.batch_size, max_length=args.max_length)
    mexa_s = time.perf_counter() - t0

    items = [parse_item(r, "bench") for r in build("translation", args.mc_items, seed=0)]
    t0 = time.perf_counter()
    mc = evaluate_mc(model, tok, items, lang="es", batch_size=args.batch_size)
    mc_s = time.perf_counter() - t0

    out = {
        "model": BUILTIN_MODEL, "dtype": args.dtype, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.machine(), "load_average": os.getloadavg()[0],
        "mexa": {"pairs": len(pairs), "tokens": n_tokens, "seconds": round(mexa_s, 2),
                 "pairs_per_second": round(len(pairs) / mexa_s, 1), "goal_seconds_for_1000": 60,
                 "mean": res["mean"], "max": res["max"], "best_layer": res["best_layer"]},
        "mc": {"items": len(items), "choices": sum(len(i.choices) for i in items), "seconds": round(mc_s, 2),
               "items_per_second": round(len(items) / mc_s, 2), "acc": mc["acc"], "acc_norm": mc["acc_norm"]},
    }
    atomic_write_json(args.out, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
