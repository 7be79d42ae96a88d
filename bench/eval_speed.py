"""Evaluation speed on the built-in 135M model: MEXA on N parallel pairs (goal: 1,000 pairs ≤ 60 s on
2 cores) and log-likelihood multiple-choice throughput. Prints the figures and writes
bench/results/eval_speed.json.

    python bench/eval_speed.py [--pairs 1000] [--mc-items 50] [--batch-size 32] [--precision bfloat16]
                               [--threads N] [--diagnostic] [--mc-baseline]

--diagnostic also scores MEXA with the first position excluded and each language centred (not MEXA;
see langshift.evaluate.mexa); --mc-baseline also times the multiple-choice items the way they were
scored before (full logits at every position, no autocast) to show the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from langshift.evaluate.bpb import score_windows
from langshift.evaluate.builders import build
from langshift.evaluate.mc import build_requests, encode_request, evaluate_mc, parse_item
from langshift.evaluate.mexa import mexa
from langshift.files import atomic_write_json
from langshift.models import load_model, load_tokenizer
from langshift.resources import BUILTIN_MODEL


def _summary(res: dict) -> dict:
    return {"mean": round(res["mean"], 4), "max": round(res["max"], 4), "best_layer": res["best_layer"],
            "scores": [round(s, 3) for s in res["scores"]], "settings": res["settings"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--mc-items", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="dtype the model is loaded in")
    ap.add_argument("--precision", default="bfloat16", choices=["model", "bfloat16"],
                    help="bfloat16: autocast the matrix products of a float32 model")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--diagnostic", action="store_true")
    ap.add_argument("--mc-baseline", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_speed.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    model, tok = load_model(BUILTIN_MODEL, dtype=getattr(torch, args.dtype)), load_tokenizer(BUILTIN_MODEL)
    pairs = [(r["en"], r["xx"]) for r in build("parallel", args.pairs, seed=0)]
    n_tokens = sum(len(ids) for ids in tok([s for p in pairs for s in p])["input_ids"])

    t0 = time.perf_counter()
    res = mexa(model, tok, pairs, batch_size=args.batch_size, max_length=args.max_length, precision=args.precision)
    mexa_s = time.perf_counter() - t0
    out = {
        "command": "python bench/eval_speed.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" if not isinstance(v, bool) else f"--{k.replace('_', '-')}"
            for k, v in vars(args).items() if v not in (None, False) and k != "out"),
        "model": BUILTIN_MODEL, "dtype": args.dtype, "precision": args.precision, "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "machine": platform.machine(), "load_average_before": [round(x, 2) for x in load_before],
        "mexa": {"pairs": len(pairs), "tokens": n_tokens, "seconds": round(mexa_s, 2),
                 "tokens_per_second": round(n_tokens / mexa_s), "pairs_per_second": round(len(pairs) / mexa_s, 1),
                 "goal_seconds_for_1000": 60, **_summary(res)},
    }
    if args.diagnostic:
        t0 = time.perf_counter()
        diag = mexa(model, tok, pairs, batch_size=args.batch_size, max_length=args.max_length,
                    precision=args.precision, exclude_first=True, centre=True)
        out["mexa_exclude_first_centred"] = {"seconds": round(time.perf_counter() - t0, 2), **_summary(diag)}

    items = [parse_item(r, "bench") for r in build("translation", args.mc_items, seed=0)]
    t0 = time.perf_counter()
    mc = evaluate_mc(model, tok, items, lang="es", batch_size=args.batch_size, precision=args.precision)
    mc_s = time.perf_counter() - t0
    windows = [encode_request(tok, c, x, 1024) for it in items for c, x in build_requests(it, "es")]
    out["mc"] = {"items": len(items), "choices": len(windows), "tokens": sum(len(w.ids) for w in windows),
                 "seconds": round(mc_s, 2), "items_per_second": round(len(items) / mc_s, 2),
                 "acc": mc["acc"], "acc_norm": mc["acc_norm"]}
    if args.mc_baseline:
        t0 = time.perf_counter()
        score_windows(model, windows, args.batch_size, pad_id=tok.pad_token_id or 0, desc="MC baseline")
        base_s = time.perf_counter() - t0
        out["mc"]["baseline_full_logits_seconds"] = round(base_s, 2)
        out["mc"]["speedup"] = round(base_s / mc_s, 2)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    atomic_write_json(args.out, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
