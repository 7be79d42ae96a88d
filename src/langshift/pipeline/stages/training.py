"""The training stages (LAPT, CLO; in-process or under `accelerate launch`), transplant and CLO data."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import StageConfig, opt
from ...errors import LangshiftError
from ...files import atomic_write_json
from ...train.clo import CLOConfig
from ...train.lapt import LAPTConfig
from .base import Context, Slot, Stage, add_stage

log = logging.getLogger(__name__)


# 5. Training (LAPT, CLO): in-process, or under `accelerate launch` ---------------------------------

def _train(stage: str, cfg, ctx: Context) -> dict:
    out = Path(cfg.out)
    if not out.exists():  # the library writes it in one rename: present means finished
        drop_partial_checkpoints(out.with_name(out.name + ".work"))
        if ctx.launch and ctx.launch.get("accelerate_config"):
            launch_training(stage, cfg, ctx.launch, ctx.work)
        else:
            train_in_process(stage, cfg)
    return json.loads((out / "train_summary.json").read_text(encoding="utf-8"))


def drop_partial_checkpoints(folder: Path) -> list[str]:
    """Remove Trainer checkpoints cut short by a kill: Trainer writes ``trainer_state.json`` last and not
    atomically, and resuming from a checkpoint without a complete one fails (or resumes wrong)."""
    dropped = []
    for ckpt in sorted(folder.glob("checkpoint-*")) if folder.is_dir() else []:
        state = ckpt / "trainer_state.json"
        try:
            ok = json.loads(state.read_text(encoding="utf-8")).get("global_step") == int(ckpt.name.split("-")[-1])
        except (OSError, ValueError):
            ok = False
        if not ok:
            shutil.rmtree(ckpt, ignore_errors=True)
            dropped.append(ckpt.name)
    if dropped:
        log.warning("removed checkpoint(s) cut short by an interruption: %s", ", ".join(dropped))
    return dropped


def train_in_process(stage: str, cfg) -> Path:
    from transformers import set_seed

    # train_lapt builds the LoRA adapter (random init) before Trainer seeds anything: seed first, so the
    # result does not depend on what ran earlier in this process.
    set_seed(cfg.seed)
    if stage == "lapt":
        from ...train.lapt import train_lapt

        return train_lapt(cfg)
    from ...train.clo import train_clo

    return train_clo(cfg)


def launch_command(stage: str, config_file: Path, launch: dict[str, Any]) -> list[str]:
    """``accelerate launch`` of ``python -m langshift.pipeline.launch STAGE CONFIG.json``."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launch["accelerate_config"])]
    if launch.get("num_processes"):
        cmd += ["--num_processes", str(launch["num_processes"])]
    return cmd + ["-m", "langshift.pipeline.launch", stage, str(config_file)]


def launch_training(stage: str, cfg, launch: dict[str, Any], work: Path) -> None:
    config_file = work / f"{stage}.launch.json"
    atomic_write_json(config_file, cfg.to_dict())
    cmd = launch_command(stage, config_file, launch)
    log.info("launching: %s", " ".join(cmd))
    res = subprocess.run(cmd, check=False, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if res.returncode != 0:
        raise LangshiftError(f"stage {stage!r}: `accelerate launch` exited with {res.returncode}; its output is "
                             f"above. Checkpoints in {work} are kept; run again to resume")


_TRAIN_OWNED = {"out": lambda w: str(w / "model"), "overwrite": lambda w: False, "keep_work": lambda w: False}
add_stage(Stage("lapt", LAPTConfig,
           (Slot("model", ("@transfer", "$model"), kind="model"), Slot("text", ("$lapt_text", "$target_text"),
                                                                       kind="file"),
            Slot("code_switched", ("@syncs",), required=False, kind="file")),
           "model", execute=lambda stage, cfg, ctx: _train("lapt", cfg, ctx), owned=_TRAIN_OWNED, training=True,
           help="language-adaptive pre-training (LoRA + embeddings, embeddings only, full)"))


# 6. Transplant (Franken-Adapter) -------------------------------------------------------------------

@dataclass
class TransplantStageConfig(StageConfig):
    embeddings_from: str | None = opt(None, "model A: tokenizer, input embeddings, LM head (default: LAPT's)")
    body_from: str | None = opt(None, "model B: the instruction-tuned sibling whose body is kept")


def run_transplant(cfg: TransplantStageConfig, ctx: Context) -> dict:
    from ...train.transplant import transplant

    def make() -> dict:
        out = transplant(cfg.embeddings_from, cfg.body_from, str(ctx.work / "model"))
        return json.loads((out / "transplant.json").read_text(encoding="utf-8"))

    return ctx.step("transplant", ("model",), make)


add_stage(Stage("transplant", TransplantStageConfig,
           (Slot("embeddings_from", ("@lapt", "@transfer"), kind="model"),
            Slot("body_from", ("$instruct_model",), kind="model")),
           "model", execute=lambda stage, cfg, ctx: run_transplant(cfg, ctx), help="Franken-Adapter: tuned embeddings onto the instruct model's body"))


# 7. CLO data and CLO -------------------------------------------------------------------------------

@dataclass
class CloDataStageConfig(StageConfig):
    sft: str | None = opt(None, "English JSONL: {id, instruction, response} per line")
    translator: str = opt("apertium", "translator by name (`langshift ls`)")
    translator_options: dict = opt({}, "options of the translator backend, e.g. {model: FOLDER} for seq2seq")
    src: str = opt("en", "source language code")
    lang: str = opt("es", "target language code")
    cache: str | None = opt(None, "sqlite translation cache reused across runs")


def run_clo_data(cfg: CloDataStageConfig, ctx: Context) -> dict:
    from ...train.clo_data import make_clo_data
    from ...translate import get_translator

    def make() -> dict:
        translator = get_translator(cfg.translator, cfg.src, cfg.lang, cache=cfg.cache, **cfg.translator_options)
        return make_clo_data(cfg.sft, cfg.translator, cfg.lang, str(ctx.work / "clo.jsonl"), cfg.src, cfg.cache,
                             overwrite=True, translator_obj=translator)

    return ctx.step("clo_data", ("clo.jsonl", "clo.untranslated.jsonl", "clo.stats.json"), make)


add_stage(Stage("clo_data", CloDataStageConfig, (Slot("sft", ("$sft",), kind="file"),), "clo.jsonl", execute=lambda stage, cfg, ctx: run_clo_data(cfg, ctx),
           volatile=("cache",), help="translate English instruction pairs into CLO records"))
add_stage(Stage("clo", CLOConfig,
           (Slot("model", ("@transplant", "@lapt", "@transfer", "$instruct_model", "$model"), kind="model"),
            Slot("data", ("@clo_data", "$clo_data"), kind="file")),
           "model", execute=lambda stage, cfg, ctx: _train("clo", cfg, ctx), owned=_TRAIN_OWNED, training=True,
           volatile=("ref_batch_size",), help="cross-lingual optimisation (CLO)"))
