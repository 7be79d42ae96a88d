"""``langshift codeswitch migrate|syncs|mix|measure|score|ablate|teach|distill|synth``."""

from __future__ import annotations

import argparse

from ..commands import Command, add_group
from .ablate import AblateConfig, run_ablate
from .distill import DistillConfig, run_distill
from .measuring import MeasureConfig, ScoreConfig, run_measure, run_score
from .migrate import MigrateConfig, run_migrate
from .mixing import MixConfig, run_mix
from .syncs import SyncsConfig, run_syncs
from .synth import SynthConfig, run_synth
from .teach import TeachConfig, run_teach

COMMANDS = [
    Command("migrate", MigrateConfig, run_migrate, "translate the nouns of sentences in place (MIGRATE)"),
    Command("syncs", SyncsConfig, run_syncs, "SynCS: token/sentence replacement/annotation at a density and budget"),
    Command("mix", MixConfig, run_mix, "SynCS §4.4: code-switch until each type has added its share of a budget of "
            "new tokens (equal, extreme, repl-equal), on either language side or both"),
    Command("measure", MeasureConfig, run_measure, "count code-switching types in a corpus (SynCS §2)"),
    Command("score", ScoreConfig, run_score, "precision and recall per code-switching type against labelled "
            "documents (same detectors as measure)"),
    Command("ablate", AblateConfig, run_ablate, "SynCS §3.2: D_cs-free (code-switched documents replaced by clean "
            "ones) and D_control (as many random documents replaced)"),
    # SynCS §4.1 distilled synthesiser: teach → distill → synth
    Command("teach", TeachConfig, run_teach, "SynCS §4.1: a teacher writes token-level code-switching from "
            "parallel sentences (App. C.1 prompts), filtered → JSONL rows"),
    Command("distill", DistillConfig, run_distill, "SynCS §4.1: fine-tune a small student on teacher rows (trl "
            "SFT, source-only prompt → code-switched sentence)"),
    Command("synth", SynthConfig, run_synth, "SynCS §4.1: token-level code-switching of a corpus by the distilled "
            "student (same outputs as `codeswitch syncs`)"),
]


def register(sub: argparse._SubParsersAction) -> None:
    add_group(sub, "codeswitch", "make code-switched text (MIGRATE, SynCS) or measure it", COMMANDS)
