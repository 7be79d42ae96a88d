"""``langshift train lapt|clo|sft|dpo|build-sft``, ``langshift transplant``, ``langshift clo data``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from .baselines import BaselineConfig, DPOBaselineConfig
    from .clo import CLOConfig
    from .lapt import LAPTConfig

    train = sub.add_parser("train", help="adaptation (LAPT) and alignment (CLO, SFT, SFT+DPO) training")
    cmds = train.add_subparsers(dest="train_command", metavar="METHOD", required=True)
    for name, cfg_cls, handler, help_text in (
        ("lapt", LAPTConfig, _lapt, "causal-LM training on target text (LoRA + embedding rows, embeddings, full)"),
        ("clo", CLOConfig, _clo, "cross-lingual optimization on (x_en, y_en, x_t, y_t) pairs"),
        ("sft", BaselineConfig, _sft, "SFT baseline on English and/or target pairs (trl)"),
        ("dpo", DPOBaselineConfig, _dpo, "SFT then DPO baseline on the cross-lingual pairs (trl)"),
    ):
        p = cmds.add_parser(name, help=help_text)
        cfg_cls.add_arguments(p)
        p.set_defaults(func=handler)

    build = cmds.add_parser("build-sft", help="build a small English instruction set offline (man pages, Bible)")
    build.add_argument("--out", required=True, help="output JSONL ({id, instruction, response} per line)")
    build.add_argument("--n", type=int, default=400, help="number of pairs (default: 400)")
    build.add_argument("--sources", nargs="+", default=["man", "bible"], help="sources (default: man bible)")
    build.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    build.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    build.set_defaults(func=_build_sft)

    tp = sub.add_parser("transplant", help="A's tokenizer and embeddings on B's body (Franken-Adapter)")
    tp.add_argument("--embeddings-from", required=True, help="model A: tokenizer, input embeddings, LM head")
    tp.add_argument("--body-from", required=True, help="model B: every other weight, chat template, generation config")
    tp.add_argument("--out", required=True, help="output model folder (written atomically)")
    tp.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    tp.set_defaults(func=_transplant)

    clo = sub.add_parser("clo", help="CLO data preparation")
    clo_cmds = clo.add_subparsers(dest="clo_command", metavar="ACTION", required=True)
    data = clo_cmds.add_parser("data", help="translate English (instruction, response) pairs into CLO records")
    data.add_argument("--sft", required=True, help="English JSONL: {id, instruction, response} per line")
    data.add_argument("--translator", required=True, help="translator name (see `langshift ls`)")
    data.add_argument("--lang", required=True, help="target language code, e.g. es")
    data.add_argument("--src", default="en", help="source language code (default: en)")
    data.add_argument("--cache", default=None, help="translation cache file (sqlite), reused across runs")
    data.add_argument("--out", required=True, help="output JSONL (id, x_en, y_en, x_t, y_t); untranslated "
                                                   "records go to <out stem>.untranslated.jsonl")
    data.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    data.set_defaults(func=_clo_data)


def _print(obj) -> int:
    print(json.dumps(obj, ensure_ascii=False, indent=2))
    return 0


def _summary(out) -> int:
    return _print({"out": str(out), **json.loads((out / "train_summary.json").read_text(encoding="utf-8"))})


def _inputs(cfg, *names: str):
    """Refuse an --out that is (or holds) one of the config's inputs, before any model loads."""
    from ..files import check_out_dir

    check_out_dir(cfg.out, cfg.overwrite, inputs={"--" + n.replace("_", "-"): getattr(cfg, n) for n in names})
    return cfg


def _lapt(args):
    from .lapt import LAPTConfig, read_row_ids, train_lapt

    cfg = _inputs(LAPTConfig.from_namespace(args), "model", "text", "code_switched", "embedding_rows")
    if cfg.mode == "lora":
        read_row_ids(cfg.embedding_rows, None)  # a bad --embedding-rows file fails before the model loads
    return _summary(train_lapt(cfg))


def _clo(args):
    from .clo import CLOConfig, train_clo

    return _summary(train_clo(_inputs(CLOConfig.from_namespace(args), "model", "data")))


def _sft(args):
    from .baselines import BaselineConfig, train_sft

    return _summary(train_sft(_inputs(BaselineConfig.from_namespace(args), "model", "data")))


def _dpo(args):
    from .baselines import DPOBaselineConfig, train_dpo

    return _summary(train_dpo(_inputs(DPOBaselineConfig.from_namespace(args), "model", "data")))


def _build_sft(args):
    from ..config import check_range
    from .instructions import write_sft

    check_range("--n", args.n, 1)

    return _print(write_sft(args.out, args.n, args.sources, args.seed, args.overwrite))


def _transplant(args):
    from ..files import check_not_input
    from .transplant import transplant

    check_not_input(args.out, {"--embeddings-from": args.embeddings_from, "--body-from": args.body_from})
    out = transplant(args.embeddings_from, args.body_from, args.out, args.overwrite)
    return _print(json.loads((out / "transplant.json").read_text(encoding="utf-8")) | {"out": str(out)})


def _clo_data(args):
    from ..files import check_out_file
    from .clo_data import make_clo_data

    check_out_file(args.out, args.overwrite, "--out", {"--sft": args.sft, "--cache": args.cache})
    return _print(make_clo_data(args.sft, args.translator, args.lang, args.out, args.src, args.cache,
                                args.overwrite))
