"""LAPT on the real model: held-out target-language bits per byte before and after a short run.

Text: Debian fortunes-<lang> paragraphs (offline); the last --held-out paragraphs are never trained
on. LoRA mode with MIGRATE appendix D's adapter settings (r 64, α 16, dropout 0.1, q/k/v/o) and every
embedding row trainable; --steps steps of --batch blocks × --seq-len tokens.

    python bench/train_lapt_bpb.py --steps 100
writes bench/results/train_lapt_bpb.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from langshift.evaluate.bpb import bits_per_byte
from langshift.files import atomic_write_json
from langshift.models import load_model, load_tokenizer
from langshift.resources import fortunes
from langshift.train.lapt import LAPTConfig, train_lapt

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--lang", default="es")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--mode", default="lora")
    ap.add_argument("--lora-r", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--held-out", type=int, default=200)
    args = ap.parse_args()
    paragraphs = fortunes(args.lang)
    train, held = paragraphs[:-args.held_out], paragraphs[-args.held_out:]
    work = Path(tempfile.mkdtemp(prefix="lapt_bpb_"))
    (work / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    tok = load_tokenizer(args.model)

    def bpb(model) -> float:
        return bits_per_byte(model, tok, held, max_length=256, batch_size=16, progress=False)["bits_per_byte"]

    before = bpb(load_model(args.model))
    t0 = time.time()
    out = train_lapt(LAPTConfig(model=args.model, text=str(work / "train.txt"), out=str(work / "lapt"),
                                mode=args.mode, seq_len=args.seq_len, batch_size=args.batch, grad_accum=1,
                                max_steps=args.steps, lr=args.lr, lora_r=args.lora_r, save_steps=10_000))
    seconds = time.time() - t0
    after = bpb(load_model(out))
    import json

    summary = json.loads((out / "train_summary.json").read_text())
    result = {"model": args.model, "lang": args.lang, "text": f"fortunes-{args.lang}", "mode": args.mode,
              "lora_r": args.lora_r, "steps": summary["global_step"], "batch": args.batch, "seq_len": args.seq_len,
              "lr": args.lr, "held_out_paragraphs": len(held), "bpb_before": before, "bpb_after": after,
              "train_s": round(seconds, 1), "s_per_step": round(seconds / max(1, summary["global_step"]), 2),
              "train_loss": summary["train_loss"], "trainable_parameters": summary["trainable_parameters"],
              "threads": torch.get_num_threads()}
    print(result)
    atomic_write_json(RESULTS / f"train_lapt_bpb_{args.mode}.json", result)


if __name__ == "__main__":
    main()
