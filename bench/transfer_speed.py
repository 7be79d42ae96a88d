"""Wall time of every init method, SmolLM2-135M → a 32k Spanish byte-level BPE, side by side with
deepfocus 1.0.1 ``FOCUS`` and wechsel 0.0.4 on the same tokenizer and the same fastText models.

fastText training is timed separately (both sides read the same trained .bin files). Each method is
timed from the loaded model and tokenizers to the finished matrix (overlap, fastText loading and
look-ups included), as `langshift transfer` runs it without --provenance; building the per-token
provenance (only done when asked for) is timed separately. Each library does its own fastText
loading; every .bin is read through just before each timed run, so no one pays the disk. Every
method, ours and the peers', runs --repeats times (3) in interleaved rounds; medians are reported,
as this machine's speed varies from run to run. Run:

    python bench/transfer_speed.py            # writes bench/results/transfer_speed.json

Needs the bench extra: pip install -e ".[bench]" (deepfocus, wechsel and the fasttext package).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

import transfer_data as data

RESULTS = Path(__file__).parent / "results" / "transfer_speed.json"


def warm_page_cache(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def ours(model, src, tgt, method: str, inputs: dict):
    from langshift.transfer.apply import transfer
    from langshift.transfer.config import TransferOptions

    if method == "wechsel":
        cfg = TransferOptions(method=method, aux_fasttext=str(inputs["es_words"]),
                              source_fasttext=str(inputs["en_words"]), dictionary=str(inputs["dictionary"]))
    elif method in ("focus", "migrate", "salt"):
        cfg = TransferOptions(method=method, aux_fasttext=str(inputs["native"]), aux_token_form="native")
    else:
        cfg = TransferOptions(method=method)
    fresh = copy.deepcopy(model)
    (new_model, prov), wall, cpu = timed(lambda: transfer(fresh, src, tgt, cfg))
    _, prov_wall, _ = timed(lambda: prov.tokens)
    return new_model.get_input_embeddings().weight.detach().clone(), prov, wall, cpu, prov_wall


def deepfocus_focus(model, src, tgt, native: Path):
    from deepfocus import FOCUS

    emb = model.get_input_embeddings().weight.detach()
    return timed(lambda: FOCUS(target_tokenizer=tgt, source_tokenizer=src, source_embeddings=emb,
                               fasttext_model_path=str(native), verbosity="silent"))


def deepfocus_random_rows(src, tgt, native: Path) -> list[int]:
    """Target ids deepfocus initialises randomly: new tokens missing from its fastText vocabulary."""
    import fasttext
    from deepfocus.focus import get_overlapping_tokens, is_very_rare_token

    ft = fasttext.load_model(str(native))
    _, new = get_overlapping_tokens(tgt, src, match_symbols=False, exact_match_all=True, fuzzy_match_all=False)
    return sorted(info.target.id for info in new.values() if is_very_rare_token(info.target.native_form, ft))


def same_numbers(model, src, tgt, native: Path, deepfocus_matrix: torch.Tensor) -> dict:
    """Run our vectorised sparsemax on deepfocus's exact inputs (its overlap, its anchors, the .bin's
    vectors) and compare with deepfocus's rows: the rows both compute must agree."""
    import fasttext
    from deepfocus.focus import get_overlapping_tokens, is_very_rare_token

    from langshift.transfer.methods.sparsemax import sparsemax_mix

    ft = fasttext.load_model(str(native))
    overlap, new = get_overlapping_tokens(tgt, src, match_symbols=False, exact_match_all=True, fuzzy_match_all=False)
    emb = model.get_input_embeddings().weight.detach()
    anchors = [(tok, info) for tok, info in sorted(overlap.items(), key=lambda x: x[1].target.id)
               if not is_very_rare_token(tok, ft)]
    news = [info for tok, info in sorted(new.items(), key=lambda x: x[1].target.id)
            if not is_very_rare_token(info.target.native_form, ft)]
    keys = torch.tensor(np.stack([ft[tok] for tok, _ in anchors]))
    values = torch.stack([emb[info.source[0].id] for _, info in anchors])
    queries = torch.tensor(np.stack([ft[info.target.native_form] for info in news]))
    rows, _, _ = sparsemax_mix(queries, keys, values, progress=False)
    ids = torch.tensor([info.target.id for info in news])
    copied = torch.tensor([info.target.id for info in overlap.values()])
    copied_src = torch.tensor([info.source[0].id for info in overlap.values()])
    return {"focus_rows_compared": len(news),
            "focus_rows_max_abs_diff": float((rows - deepfocus_matrix[ids]).abs().max()),
            "copied_rows_compared": len(copied),
            "copied_rows_identical": bool(torch.equal(deepfocus_matrix[copied], emb[copied_src]))}


def wechsel_apply(model, src, tgt, en_words: Path, es_words: Path, dictionary: Path):
    import fasttext
    from wechsel import WECHSEL

    emb = model.get_input_embeddings().weight.detach().numpy()

    def run():
        w = WECHSEL(fasttext.load_model(str(en_words)), fasttext.load_model(str(es_words)),
                    bilingual_dictionary=str(dictionary))
        matrix, _info = w.apply(src, tgt, emb)
        return torch.from_numpy(np.asarray(matrix, dtype=np.float32))

    return timed(run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--dim", type=int, default=300, help="fastText dimension")
    ap.add_argument("--methods", nargs="+", default=None, help="our methods to time (default: all)")
    ap.add_argument("--skip-peers", action="store_true", help="time only our methods")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of every method; medians are reported")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    # Imported before timing, as the peers' modules are (this machine compiles every module on import).
    import transformers.initialization  # noqa: F401

    import langshift.static  # noqa: F401
    import langshift.static.facebook_bin  # noqa: F401
    import langshift.transfer.apply  # noqa: F401
    from langshift.models import load_model, load_tokenizer
    from langshift.transfer.methods import INIT_METHODS

    # 1. Shared inputs: tokenizer and fastText models (training timed separately).
    tok_dir = data.target_tokenizer(args.vocab_size)
    native, t_native = data.fasttext_native(tok_dir, dim=args.dim)
    es_train, _ = data.spanish_split()
    es_words, t_es = data.fasttext_words(es_train, "es", dim=args.dim)
    en_words, t_en = data.fasttext_words(data.english_text(), "en", dim=args.dim)
    inputs = {"native": native, "es_words": es_words, "en_words": en_words, "dictionary": data.dictionary_tsv()}
    def warm(*paths: Path) -> None:  # just before each timed run: the VM's memory reclaim evicts idle file pages
        for path in paths:
            warm_page_cache(path)
    src = load_tokenizer("smollm2-135m-instruct")
    tgt = load_tokenizer(str(tok_dir))
    model = load_model("smollm2-135m-instruct")
    report = {"vocab_size": len(tgt), "fasttext_dim": args.dim, "load": os.getloadavg(),
              "fasttext_training_seconds": {"target_tokens": round(t_native, 1), "es_words": round(t_es, 1),
                                            "en_words": round(t_en, 1)}, "repeats": args.repeats,
              "ours": {}, "peers": {}}

    # 2-3. Rounds: every method of ours, then the peers on the same tokenizer and fastText models;
    #      the medians over --repeats rounds are reported (this machine's speed varies run to run).
    runs: dict[str, list[tuple[float, float]]] = {}
    last: dict[str, object] = {}
    methods = args.methods or INIT_METHODS.names()
    for rnd in range(1, args.repeats + 1):
        for method in methods:
            warm(native, es_words, en_words)
            matrix, prov, wall, cpu, prov_wall = ours(model, src, tgt, method, inputs)
            runs.setdefault(method, []).append((wall, cpu))
            last[method] = (matrix, prov, prov_wall)
            print(f"[{rnd}] ours {method:8s} {wall:7.2f} s wall {cpu:7.2f} s cpu  {prov.seconds}  "
                  f"(+{prov_wall:.2f} s for the per-token provenance)", flush=True)
        if not args.skip_peers:
            warm(native, es_words, en_words)
            df_matrix, wall, cpu = deepfocus_focus(model, src, tgt, native)
            runs.setdefault("deepfocus FOCUS", []).append((wall, cpu))
            print(f"[{rnd}] deepfocus FOCUS {wall:7.2f} s wall {cpu:7.2f} s cpu", flush=True)
            warm(native, es_words, en_words)
            _, wall, cpu = wechsel_apply(model, src, tgt, en_words, es_words, inputs["dictionary"])
            runs.setdefault("wechsel 0.0.4", []).append((wall, cpu))
            print(f"[{rnd}] wechsel         {wall:7.2f} s wall {cpu:7.2f} s cpu", flush=True)

    def median(name: str) -> dict:
        walls, cpus = zip(*runs[name], strict=True)
        return {"wall_s": round(float(np.median(walls)), 2), "cpu_s": round(float(np.median(cpus)), 2),
                "wall_s_runs": [round(w, 2) for w in walls]}

    for method in methods:
        _, prov, prov_wall = last[method]
        report["ours"][method] = {**median(method), "stages_s": prov.seconds, "provenance_s": round(prov_wall, 2),
                                  "copied": prov.counts["copied"], "new": prov.counts["new"], "left_random": 0,
                                  "fallback_fvt": prov.counts["fallback_fvt"],
                                  "fallback_mean": prov.counts["fallback_mean"]}
    if not args.skip_peers:
        random_rows = deepfocus_random_rows(src, tgt, native)
        report["peers"]["deepfocus FOCUS"] = {**median("deepfocus FOCUS"), "left_random": len(random_rows)}
        report["peers"]["wechsel"] = median("wechsel 0.0.4")
        report["same_numbers"] = same_numbers(model, src, tgt, native, df_matrix)
        if "focus" in last:
            report["same_numbers"].update(copied_rows_vs_ours(model, src, tgt, last["focus"][0], df_matrix))
        print("same numbers:", report["same_numbers"], flush=True)
        report["ratios"] = {}
        if "focus" in report["ours"]:
            df = report["peers"]["deepfocus FOCUS"]
            report["ratios"].update({
                "deepfocus_over_ours_focus_wall": round(df["wall_s"] / report["ours"]["focus"]["wall_s"], 2),
                "deepfocus_over_ours_focus_cpu": round(df["cpu_s"] / report["ours"]["focus"]["cpu_s"], 2)})
        if "wechsel" in report["ours"]:
            report["ratios"]["wechsel_over_ours_wechsel_wall"] = round(
                report["peers"]["wechsel"]["wall_s"] / report["ours"]["wechsel"]["wall_s"], 2)
        print("medians:", {k: v["wall_s"] for k, v in {**report["ours"], **report["peers"]}.items()}, flush=True)
        print("ratios:", report["ratios"], flush=True)
    report["load_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


def copied_rows_vs_ours(model, src, tgt, ours_matrix: torch.Tensor, df_matrix: torch.Tensor) -> dict:
    """On the rows deepfocus copies: where both copy the same source row the values must be identical;
    where the source rows differ, deepfocus decoded a partial-UTF-8 byte token to U+FFFD and copied the
    row of whatever source token also decodes to U+FFFD (a mistake peers make: an unknown byte is not a token)."""
    from deepfocus.focus import get_overlapping_tokens

    from langshift.vocab.overlap import compute_overlap

    overlap, _ = get_overlapping_tokens(tgt, src, match_symbols=False, exact_match_all=True, fuzzy_match_all=False)
    pairs = compute_overlap(src, tgt).pairs
    same = [i.target.id for i in overlap.values() if pairs.get(i.target.id) == i.source[0].id]
    differ = [i.target.id for i in overlap.values() if pairs.get(i.target.id) != i.source[0].id]
    return {"copied_rows_same_source": len(same),
            "copied_rows_same_source_identical": bool(torch.equal(ours_matrix[same], df_matrix[same])),
            "copied_rows_deepfocus_other_source": len(differ),
            "deepfocus_other_source_examples": tgt.convert_ids_to_tokens(differ[:8])}


if __name__ == "__main__":
    main()
