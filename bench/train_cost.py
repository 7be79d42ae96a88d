"""Peak memory and seconds per step of SFT, CLO and trl's DPO on the same model, batch and length.

"Same batch" means the same number of sequences per optimizer step, all of the same length
(--max-len tokens: the texts are long enough that every row is cut to it): SFT 8 rows, CLO 2 pairs
(= 8 rows: x_en→y_en, x_en→y_t, x_t→y_t, x_t→y_en), DPO 4 preference rows (= 8 sequences:
chosen and rejected). SFT and DPO train all parameters (the paper's baselines); CLO trains the
attention projections (its default) and, as "clo_all", everything. Each method runs in a fresh
subprocess: peak memory is that process's max RSS (``resource.getrusage``; on a GPU,
``torch.cuda.max_memory_allocated``); seconds per step is the median over the steps after the first.
DPO keeps trl's default reference model in memory; CLO computes its reference log-probs once before
training: a one-time cost, not per step, inside ``outside_loop_s`` (run time minus the Trainer's
training time: model load, data encoding, CLO's reference pass, the final save). The 1-minute load
average at the start and end of each method is recorded: on a shared CPU machine it says how far the
seconds per step can be trusted.

    python bench/train_cost.py --steps 6
writes bench/results/train_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
METHODS = ("sft", "clo", "clo_all", "dpo")


def _data(path: Path, pairs: int) -> None:
    from langshift.resources import bible_parallel

    verses = bible_parallel("en", "es")
    rows = []
    for i in range(pairs):  # long answers: every row reaches --max-len and is cut there
        chunk = verses[i * 12:(i + 1) * 12]
        rows.append({"id": str(i), "x_en": "Repeat these verses: " + chunk[0][1], "x_t": "Repite estos versículos: "
                     + chunk[0][2], "y_en": " ".join(v[1] for v in chunk), "y_t": " ".join(v[2] for v in chunk)})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def worker(method: str, args) -> dict:
    import torch

    from langshift.train.baselines import BaselineConfig, DPOBaselineConfig, train_dpo, train_sft
    from langshift.train.clo import CLOConfig, train_clo

    work = Path(tempfile.mkdtemp(prefix=f"cost_{method}_"))
    data = work / "data.jsonl"
    seqs = args.sequences
    _data(data, pairs=(args.steps + 1) * seqs)
    common = dict(model=args.model, data=str(data), out=str(work / "out"), max_steps=args.steps + 1,
                  max_len=args.max_len, save_steps=10_000, lr=1e-5)
    load_start, t0 = round(os.getloadavg()[0], 2), time.time()
    if method == "sft":
        out = train_sft(BaselineConfig(batch_size=seqs, **common))
    elif method == "dpo":
        out = train_dpo(DPOBaselineConfig(batch_size=seqs // 2, sft_first=False, **common))
    else:
        out = train_clo(CLOConfig(batch_size=seqs // 4, train="all" if method == "clo_all" else "attention",
                                  ref_batch_size=seqs // 4, **common))
    total = time.time() - t0
    summary = json.loads((out / "train_summary.json").read_text())
    stats = summary.get("dpo", summary)
    gpu = torch.cuda.is_available()
    peak = (torch.cuda.max_memory_allocated() if gpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"method": method, "sequences_per_step": seqs, "max_len": args.max_len,
            "peak_memory_mib": round(peak / 2**20, 1), "memory_kind": "cuda_max_allocated" if gpu else "max_rss",
            "seconds_per_step": round(stats["seconds_per_step_median"], 3), "steps_timed": args.steps,
            "trainable_parameters": summary["trainable_parameters"], "total_s": round(total, 1),
            "outside_loop_s": round(total - (stats["train_runtime_s"] or 0.0), 1),
            "reference_passes": summary.get("reference_passes"),
            "load_avg_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=6, help="timed steps (one more runs first, untimed)")
    ap.add_argument("--sequences", type=int, default=8, help="sequences per step (multiple of 4)")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args)))
        return
    import torch

    rows = {}
    for method in args.methods:
        cmd = [sys.executable, __file__, "--worker", method, "--model", args.model, "--steps", str(args.steps),
               "--sequences", str(args.sequences), "--max-len", str(args.max_len)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{method} failed:\n{res.stderr[-3000:]}")
        rows[method] = json.loads(line[len("RESULT "):])
        print(rows[method], flush=True)
    if "sft" in rows:
        for r in rows.values():
            r["memory_vs_sft"] = round(r["peak_memory_mib"] / rows["sft"]["peak_memory_mib"], 3)
            r["time_vs_sft"] = round(r["seconds_per_step"] / rows["sft"]["seconds_per_step"], 3)
    from langshift.files import atomic_write_json

    atomic_write_json(RESULTS / "train_cost.json", {
        "model": args.model, "device": "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} "
        "threads, shared machine)", "command": shlex.join(["python", "bench/train_cost.py", *sys.argv[1:]]),
        "goal": "CLO <= 1.15x SFT peak memory and <= 1.3x SFT seconds per step",
        "methods": rows})


if __name__ == "__main__":
    main()
