"""LAPT after a tokenizer transfer, on the real model: held-out target-language bits per byte.

Pipeline (every step a real command, printed and recorded in the result):
  1. text: the target-language Bible (offline SWORD module) + Debian fortunes-<lang>; the last
     --held-out verses (end of the canon) are never trained on, neither by the tokenizer nor by LAPT.
  2. `langshift tokenizer train` — a byte-level BPE of --vocab-size on that text, keeping the base's
     specials and chat template.
  3. `langshift transfer --method <fvt|focus>` — the model moved to the new tokenizer.
  4. LAPT (`train_lapt`, LoRA mode: MIGRATE appendix D's r 64, α 16, dropout 0.1 on q/k/v/o, every
     embedding row trainable — the rows of the new vocabulary included): --steps steps of --batch
     blocks × --seq-len tokens.
Bits per byte on the held-out verses: the original model (its own tokenizer), the transferred model
before LAPT, and after LAPT. Bits per byte does not depend on the tokenizer, so the three compare.

    python bench/train_lapt_bpb.py --steps 100 --work /tmp/langshift_bench/lapt
writes bench/results/train_lapt_bpb.json (the LAPT model stays in --work/lapt for train_clo_fidelity.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from langshift.evaluate.bpb import bits_per_byte
from langshift.files import atomic_write_json, atomic_write_text
from langshift.models import load_model, load_tokenizer
from langshift.resources import bible_verses, fortunes
from langshift.train.lapt import LAPTConfig, train_lapt

RESULTS = Path(__file__).parent / "results"


def run_cli(argv: list[str], made: Path) -> dict:
    """Run a `langshift` command unless ``made`` exists (an earlier run of this script made it with the
    same command); echo it, and return it as one shell line for the record."""
    line = shlex.join(["langshift", *argv])
    reused = made.is_dir()
    print("$", line, "(output exists: reused)" if reused else "", flush=True)
    if not reused:
        subprocess.run([sys.executable, "-c", "import sys; from langshift.cli import main; sys.exit(main())",
                        *argv], check=True)
    return {"command": line, "reused_from_earlier_run": reused}


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--lang", default="es")
    ap.add_argument("--vocab-size", type=int, default=16000)
    ap.add_argument("--method", default="fvt", help="transfer init method (fvt needs no auxiliary space)")
    ap.add_argument("--held-out", type=int, default=200, help="last verses of the Bible kept for evaluation")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--mode", default="lora")
    ap.add_argument("--lora-r", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--work", default=None, help="folder for text, tokenizer and models (reused when present)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="lapt_bpb_"))
    work.mkdir(parents=True, exist_ok=True)
    commands: list[dict] = []

    # 1. Text: held-out verses at the end of the canon; everything else trains.
    verses = list(bible_verses(args.lang).values())
    held, train_verses = verses[-args.held_out:], verses[:-args.held_out]
    corpus = work / "train.txt"
    if not corpus.is_file():
        atomic_write_text(corpus, "\n".join(train_verses + fortunes(args.lang)) + "\n")
    atomic_write_text(work / "held_out.txt", "\n".join(held) + "\n")

    # 2-3. Tokenizer and transfer through the CLI (skipped when a previous run left them).
    tok_dir, moved = work / "tokenizer", work / f"transferred_{args.method}"
    commands.append(run_cli(["tokenizer", "train", "--text", str(corpus), "--base", args.model, "--out",
                             str(tok_dir), "--vocab-size", str(args.vocab_size), "--no-show-progress"], tok_dir))
    commands.append(run_cli(["transfer", "--model", args.model, "--tokenizer", str(tok_dir), "--out", str(moved),
                             "--method", args.method, "--provenance", str(work / "provenance.json")], moved))

    cache = work / "bpb_cache.json"  # scores of unchanged models on the same held-out text, kept across reruns

    def bpb(model_dir, reuse: bool = True) -> float:
        key = f"{model_dir}|{args.held_out}"
        known = json.loads(cache.read_text()) if cache.is_file() else {}
        if reuse and key in known:
            return known[key]
        model = load_model(model_dir).eval()
        known[key] = bits_per_byte(model, load_tokenizer(model_dir), held, max_length=256, batch_size=16,
                                   progress=False)["bits_per_byte"]
        atomic_write_json(cache, known)
        return known[key]

    original = bpb(args.model)
    before = bpb(moved)
    print({"bpb_original": original, "bpb_transferred": before}, flush=True)

    # 4. LAPT on the transferred model.
    load_start = load_avg()
    t0 = time.time()
    out = train_lapt(LAPTConfig(model=str(moved), text=str(corpus), out=str(work / "lapt"), mode=args.mode,
                                seq_len=args.seq_len, batch_size=args.batch, grad_accum=1, max_steps=args.steps,
                                lr=args.lr, lora_r=args.lora_r, save_steps=25, overwrite=True))
    seconds = time.time() - t0
    after = bpb(out, reuse=False)
    summary = json.loads((out / "train_summary.json").read_text())
    result = {
        "command": shlex.join(["python", "bench/train_lapt_bpb.py", *sys.argv[1:]]), "cli_commands": commands,
        "model": args.model, "lang": args.lang, "text": f"Bible {args.lang} (minus held-out) + fortunes-{args.lang}",
        "held_out": f"last {len(held)} Bible verses ({sum(len(v.encode()) for v in held)} bytes)",
        "tokenizer_vocab": args.vocab_size, "transfer_method": args.method, "lapt_mode": args.mode,
        "lora_r": args.lora_r, "embedding_rows": "all", "steps": summary["global_step"], "batch": args.batch,
        "seq_len": args.seq_len, "lr": args.lr,
        "bpb_original_model": original, "bpb_transferred_before_lapt": before, "bpb_after_lapt": after,
        "train_s": round(seconds, 1), "s_per_step_median": round(summary["seconds_per_step_median"], 2),
        "train_loss": summary["train_loss"], "trainable_parameters": summary["trainable_parameters"],
        "threads": torch.get_num_threads(), "load_avg_1min": {"start": load_start, "end": load_avg()},
        "lapt_model": str(out)}
    print(json.dumps(result, indent=1))
    atomic_write_json(RESULTS / "train_lapt_bpb.json", result)


if __name__ == "__main__":
    main()
