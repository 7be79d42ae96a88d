"""The training stages (LAPT, CLO; in-process or under `accelerate launch`), transplant and CLO data.

Every row calls its stage's front door (``run_lapt``, ``run_transplant``, ``run_clo_data``, ``run_clo``) with
the config class its CLI command takes. A training stage's ``execute`` only chooses where that front door
runs: in this process, or on every process of ``accelerate launch`` (``python -m langshift.pipeline.launch``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...config import StageConfig
from ...errors import LangshiftError
from ...files import atomic_write_json
from ...train.clo import CLOConfig, run_clo
from ...train.clo_data import CloDataConfig, run_clo_data
from ...train.config import TrainResult
from ...train.lapt import LAPTConfig, run_lapt
from ...train.runtime import work_dir
from ...train.transplant import TransplantConfig, run_transplant
from .base import STAGES, Context, Slot, Stage, add_stage

log = logging.getLogger(__name__)


# 5. Training (LAPT, CLO): in-process, or under `accelerate launch` ---------------------------------

def train_stage(stage: Stage, cfg: StageConfig, ctx: Context) -> dict:
    """Run ``stage.run(cfg)`` here or on every process of ``accelerate launch``; resume from the checkpoints
    an interrupted attempt left, or read the result of a finished one."""
    out = Path(cfg.out)
    if not out.exists():  # the library writes it in one rename: present means finished
        drop_partial_checkpoints(work_dir(out))
        if not (ctx.launch and ctx.launch.get("accelerate_config")):
            return train_in_process(stage.name, cfg).to_dict()
        launch_training(stage.name, cfg, ctx.launch, ctx.work)
    return TrainResult.read(out).to_dict()


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


def train_in_process(stage: str, cfg: StageConfig) -> TrainResult:
    """The training stage ``stage``'s front door in this process (what each launched process runs too)."""
    return STAGES.get(stage).run(cfg)


def launch_command(stage: str, config_file: Path, launch: dict[str, Any]) -> list[str]:
    """``accelerate launch`` of ``python -m langshift.pipeline.launch STAGE CONFIG.json``."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launch["accelerate_config"])]
    if launch.get("num_processes"):
        cmd += ["--num_processes", str(launch["num_processes"])]
    return cmd + ["-m", "langshift.pipeline.launch", stage, str(config_file)]


def launch_training(stage: str, cfg: StageConfig, launch: dict[str, Any], work: Path) -> None:
    config_file = work / f"{stage}.launch.json"
    atomic_write_json(config_file, cfg.to_dict())
    cmd = launch_command(stage, config_file, launch)
    log.info("launching: %s", " ".join(cmd))
    res = subprocess.run(cmd, check=False, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if res.returncode != 0:
        raise LangshiftError(f"stage {stage!r}: `accelerate launch` exited with {res.returncode}; its output is "
                             f"above. Checkpoints in {work} are kept; run again to resume")


_OWNED = {"out": lambda w: str(w / "model"), "overwrite": lambda w: False}
_TRAIN_OWNED = {**_OWNED, "keep_work": lambda w: False}
# Settings that change speed or memory, not the weights (checkpointing: same weights, tested in
# test_train_distributed), so changing one re-runs nothing; each stage adds its own (LAPT's num_proc).
_SPEED_ONLY = ("gradient_checkpointing",)
_RUN_REPORTS = ("train_summary.json", "train_log.jsonl")  # timings and logs beside the weights
add_stage(Stage("lapt", LAPTConfig,
                (Slot("model", ("@transfer", "$model"), kind="model"),
                 Slot("text", ("$lapt_text", "$target_text"), kind="file"),
                 Slot("code_switched", ("@syncs",), required=False, kind="file")),
                "model", run=run_lapt, execute=train_stage, owned=_TRAIN_OWNED, training=True,
                volatile=(*_SPEED_ONLY, "num_proc"), reports=_RUN_REPORTS,
                help="language-adaptive pre-training (LoRA + embeddings, embeddings only, full)"))


# 6. Transplant (Franken-Adapter) -------------------------------------------------------------------

add_stage(Stage("transplant", TransplantConfig,
                (Slot("embeddings_from", ("@lapt", "@transfer"), kind="model"),
                 Slot("body_from", ("$instruct_model",), kind="model")),
                "model", run=run_transplant, owned=_OWNED,
                help="Franken-Adapter: tuned embeddings onto the instruct model's body"))


# 7. CLO data and CLO -------------------------------------------------------------------------------

add_stage(Stage("clo_data", CloDataConfig, (Slot("sft", ("$sft",), kind="file"),), "clo.jsonl", run=run_clo_data,
                owned={"out": lambda w: str(w / "clo.jsonl"), "overwrite": lambda w: False}, volatile=("cache",),
                leftovers=("clo.jsonl", "clo.untranslated.jsonl", "clo.stats.json"),
                help="translate English instruction pairs into CLO records"))
add_stage(Stage("clo", CLOConfig,
                (Slot("model", ("@transplant", "@lapt", "@transfer", "$instruct_model", "$model"), kind="model"),
                 Slot("data", ("@clo_data", "$clo_data"), kind="file")),
                "model", run=run_clo, execute=train_stage, owned=_TRAIN_OWNED, training=True,
                volatile=(*_SPEED_ONLY, "ref_batch_size"), reports=_RUN_REPORTS,
                help="cross-lingual optimisation (CLO)"))
