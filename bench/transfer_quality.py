"""Zero-shot bits per byte on held-out Spanish Bible verses after moving SmolLM2-135M-Instruct to a
Spanish byte-level BPE, for every init method, for deepfocus's and wechsel's matrices, and for the
original model with its own tokenizer. No training after the transfer.

Tokenizer and every fastText space see only the non-held-out verses plus Debian's Spanish fortunes
(bench/transfer_data.py). MIGRATE's space is the same Spanish word-level fastText as `focus-words`,
continued for one epoch on the KJV English Bible with its nouns translated (apertium), so the pair
`focus-words` / `migrate` isolates MIGRATE's contribution. Run:

    python bench/transfer_quality.py          # writes bench/results/transfer_quality.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import transfer_data as data

RESULTS = Path(__file__).parent / "results" / "transfer_quality.json"


def sh(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "langshift.cli", *args], check=True, stdout=subprocess.DEVNULL)


def migrate_spaces(es_train: Path, epochs: int) -> tuple[Path, Path]:
    """(Spanish word-level space, the same continued on code-switched English) via the CLI chain."""
    words, cont = data.WORK / f"ft-es-words-e{epochs}", data.WORK / f"ft-es-words-e{epochs}-cs"
    cs_text = data.WORK / "kjv.codeswitched.txt"
    if not cs_text.is_file():
        sh("codeswitch", "migrate", "--text", str(data.english_text()), "--out", str(data.WORK / "kjv.cs.jsonl"),
           "--text-out", str(cs_text), "--cache", str(data.WORK / "translations.sqlite"), "--overwrite")
    if not words.is_dir():
        sh("static", "train", "--text", str(es_train), "--out", str(words), "--epochs", str(epochs), "--workers", "2")
    if not cont.is_dir():
        sh("static", "continue", "--model", str(words), "--text", str(cs_text), "--out", str(cont), "--workers", "2")
    return words, cont


def bpb(model, tok, texts) -> float:
    from langshift.evaluate.bpb import bits_per_byte

    return bits_per_byte(model, tok, texts, batch_size=16, progress=False)["bits_per_byte"]


def with_matrix(model, tgt, matrix: torch.Tensor):
    """``model`` with ``tgt``'s vocabulary and the given (tied) input/output matrix."""
    m = copy.deepcopy(model)
    m.resize_token_embeddings(len(tgt))
    with torch.no_grad():
        m.get_input_embeddings().weight.copy_(matrix.to(m.dtype))
    m.tie_weights()
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--heldout", type=int, default=300, help="held-out verses scored (of ~1,000)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the fastText spaces trained here")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--only", nargs="+", default=None,
                    help="re-run only these rows of ours (names as printed) and merge them into the existing results")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.manual_seed(0)

    from langshift.models import load_model, load_tokenizer
    from langshift.transfer.apply import transfer
    from langshift.transfer.config import TransferOptions

    es_train, es_held = data.spanish_split()
    texts = es_held.read_text(encoding="utf-8").splitlines()[: args.heldout]
    tok_dir = data.target_tokenizer(args.vocab_size)
    src, tgt = load_tokenizer("smollm2-135m-instruct"), load_tokenizer(str(tok_dir))
    model = load_model("smollm2-135m-instruct")
    words, cont = migrate_spaces(es_train, args.epochs)
    es_ft, _ = data.fasttext_words(es_train, "es")
    en_ft, _ = data.fasttext_words(data.english_text(), "en")
    rows: dict[str, dict] = {}

    def record(name: str, value: float, **extra) -> None:
        rows[name] = {"bits_per_byte": round(value, 4), **extra}
        print(f"{name:34s} {value:.4f}", flush=True)

    if args.only:
        previous = json.loads(RESULTS.read_text())
        rows.update(previous["results"])
        settings_only = set(args.only)
    else:
        record("original model, own tokenizer", bpb(model, src, texts))
    # 1. Our methods.
    settings = {
        "random": {}, "mean": {}, "fvt": {}, "compose": {},
        "focus (token-level fastText)": {"method": "focus", "aux_text": str(es_train), "aux_epochs": args.epochs},
        "focus-words (word-level fastText)": {"method": "focus", "aux_fasttext": str(words)},
        "migrate (word-level, continued on code-switched)": {"method": "migrate", "aux_fasttext": str(cont)},
        "salt (token-level fastText)": {"method": "salt", "aux_text": str(es_train), "aux_epochs": args.epochs},
        "wechsel": {"method": "wechsel", "aux_fasttext": str(es_ft), "source_fasttext": str(en_ft),
                    "dictionary": str(data.dictionary_tsv())},
    }
    for name, opts in settings.items():
        if args.only and name not in settings_only:
            continue
        method = opts.pop("method", name)
        start = time.perf_counter()
        new, prov = transfer(copy.deepcopy(model), src, tgt, TransferOptions(method=method, **opts))
        record(name, bpb(new, tgt, texts), seconds=round(time.perf_counter() - start, 1), counts=prov.counts)
        del new
    # 2. Peers on the same tokenizer.
    if not args.skip_peers and not args.only:
        from deepfocus import FOCUS

        emb = model.get_input_embeddings().weight.detach()
        for label, kwargs in {"deepfocus FOCUS (defaults: own fastText, dim 100, min_count 10)":
                              {"target_training_data_path": str(es_train)},
                              "deepfocus FOCUS (min_count 1)":
                              {"target_training_data_path": str(es_train), "fasttext_model_min_count": 1,
                               "fasttext_model_epochs": args.epochs}}.items():
            matrix = FOCUS(target_tokenizer=tgt, source_tokenizer=src, source_embeddings=emb, verbosity="silent",
                           **kwargs)
            record(label, bpb(with_matrix(model, tgt, matrix), tgt, texts))
        import fasttext
        from wechsel import WECHSEL

        w = WECHSEL(fasttext.load_model(str(en_ft)), fasttext.load_model(str(es_ft)),
                    bilingual_dictionary=str(data.dictionary_tsv()))
        matrix, _ = w.apply(src, tgt, emb.numpy())
        record("wechsel 0.0.4", bpb(with_matrix(model, tgt, torch.from_numpy(np.asarray(matrix, np.float32))), tgt,
                                    texts))
    report = {"vocab_size": len(tgt), "heldout_verses": len(texts), "results": rows, "load": os.getloadavg()}
    ours = {k: v["bits_per_byte"] for k, v in rows.items() if not k.startswith(("deepfocus", "wechsel 0", "original"))}
    best = min(ours, key=ours.get)
    peers = {k: v["bits_per_byte"] for k, v in rows.items() if k.startswith(("deepfocus", "wechsel 0")) or k == "fvt"}
    if peers:
        best_peer = min(peers, key=peers.get)
        report["best_ours"] = {"name": best, "bits_per_byte": ours[best]}
        report["best_peer_or_fvt"] = {"name": best_peer, "bits_per_byte": peers[best_peer]}
        report["improvement_over_best_peer"] = round(1 - ours[best] / peers[best_peer], 4)
        print(f"best ours: {best} {ours[best]:.4f}; best of peers and FVT: {best_peer} {peers[best_peer]:.4f}; "
              f"{100 * report['improvement_over_best_peer']:.1f}% lower", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
