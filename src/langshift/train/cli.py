"""``langshift train lapt|mimic|clo|sft|dpo|build-sft``, ``langshift transplant``, ``langshift clo data``.

Each is a table entry over its stage's front door; ``build-sft`` is hand-written because it is not a stage
(a small offline data builder with no config class or model: its four flags are its whole interface).
"""

from __future__ import annotations

import argparse

from ..commands import Command, add_group, print_json
from ..config import check_range
from .baselines import BaselineConfig, DPOBaselineConfig, run_dpo, run_sft
from .clo import CLOConfig, run_clo
from .clo_data import CloDataConfig, run_clo_data
from .instructions import write_sft
from .lapt import LAPTConfig, run_lapt
from .mimic import MimicConfig, run_mimic
from .transplant import TransplantConfig, run_transplant

TRAIN = [
    Command("lapt", LAPTConfig, run_lapt,
            "causal-LM training on target text (LoRA + embedding rows, embeddings, full)"),
    Command("mimic", MimicConfig, run_mimic,
            "train new embedding rows so the model's states on target text match the original model's"),
    Command("clo", CLOConfig, run_clo, "cross-lingual optimization on (x_en, y_en, x_t, y_t) pairs"),
    Command("sft", BaselineConfig, run_sft, "SFT baseline on English and/or target pairs (trl)"),
    Command("dpo", DPOBaselineConfig, run_dpo, "SFT then DPO baseline on the cross-lingual pairs (trl)"),
]
TRANSPLANT = Command("transplant", TransplantConfig, run_transplant,
                     "A's tokenizer and embeddings on B's body (Franken-Adapter)")
# translator_options (a dict) is for recipes; on the command line the backend's defaults apply
CLO_DATA = Command("data", CloDataConfig, run_clo_data,
                   "translate English (instruction, response) pairs into CLO records", skip=("translator_options",))


def register(sub: argparse._SubParsersAction) -> None:
    cmds = add_group(sub, "train", "adaptation (LAPT) and alignment (CLO, SFT, SFT+DPO) training", TRAIN,
                     dest="train_command")
    build = cmds.add_parser("build-sft", help="build a small English instruction set offline (man pages, Bible)")
    build.add_argument("--out", required=True, help="output JSONL ({id, instruction, response} per line)")
    build.add_argument("--n", type=int, default=400, help="number of pairs (default: 400)")
    build.add_argument("--sources", nargs="+", default=["man", "bible"], help="sources (default: man bible)")
    build.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    build.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    build.set_defaults(func=_build_sft)
    TRANSPLANT.add_to(sub)
    add_group(sub, "clo", "CLO data preparation", [CLO_DATA])


def _build_sft(args) -> int:
    check_range("--n", args.n, 1)
    print_json(write_sft(args.out, args.n, args.sources, args.seed, args.overwrite))
    return 0
