"""What every training stage shares: Trainer arguments, the JSON-lines log, resuming, the final save.

Training runs inside ``<out>.work`` (Trainer checkpoints, the log); the finished model is written to
``<out>`` in one rename, so an interrupted run leaves no half-made model, and a rerun with the same
``--out`` resumes from the last checkpoint in the work folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ..files import atomic_dir, atomic_write_json, check_out_dir

log = logging.getLogger(__name__)
LOG_NAME = "train_log.jsonl"


def work_dir(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".work")


def prepare_out(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing ``out`` before any training starts; the work folder's path. The folder itself is
    made by ``run_trainer``, so a start refused while loading the model or data leaves no empty one behind."""
    check_out_dir(out, overwrite)
    return work_dir(out)


def has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()


def training_arguments(work: Path, *, batch_size: int, lr: float, epochs: float, max_steps: int | None,
                       warmup: float, seed: int, save_steps: int, grad_accum: int = 1,
                       gradient_checkpointing: bool | None = None, scheduler: str = "linear",
                       scheduler_kwargs: dict | None = None, args_class=None, **extra: Any):
    """``TrainingArguments`` (or a subclass such as trl's ``SFTConfig``) for our stages: bf16 and
    activation checkpointing when a GPU is there; every value trl would default differently is set."""
    from transformers import TrainingArguments

    args_class = args_class or TrainingArguments
    gpu = has_accelerator()
    import torch

    bf16 = gpu and torch.cuda.is_bf16_supported()
    return args_class(
        output_dir=str(work), per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
        learning_rate=lr, num_train_epochs=epochs, max_steps=max_steps if max_steps else -1,
        warmup_steps=warmup, lr_scheduler_type=scheduler, lr_scheduler_kwargs=scheduler_kwargs or {},
        weight_decay=0.0, logging_steps=1, save_strategy="steps", save_steps=save_steps, save_total_limit=2,
        seed=seed, data_seed=seed, bf16=bf16, fp16=False,
        activation_checkpointing=gpu if gradient_checkpointing is None else gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False}, report_to=[], dataloader_num_workers=0,
        dataloader_pin_memory=gpu, disable_tqdm=False, **{"remove_unused_columns": False, **extra})


def last_checkpoint(work: Path) -> str | None:
    """The newest complete checkpoint in ``work``. Trainer writes ``trainer_state.json`` last and not
    atomically, so a checkpoint without a readable one was cut off by a crash: it is removed."""
    import json
    import shutil

    if not work.is_dir():
        return None
    done = []
    for ckpt in work.glob("checkpoint-*"):
        try:
            json.loads((ckpt / "trainer_state.json").read_text())
            done.append((int(ckpt.name.rsplit("-", 1)[-1]), ckpt))
        except (OSError, ValueError):
            shutil.rmtree(ckpt, ignore_errors=True)
    return str(max(done)[1]) if done else None


def checkpoint_step(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0


def jsonl_log_callback(work: Path, resume_step: int):
    """A TrainerCallback appending each log (loss, lr, …) as one JSON line to ``work/train_log.jsonl``.

    On resume, lines written after the checkpoint the run resumes from are dropped (they are redone).
    """
    from transformers import TrainerCallback

    path = work / LOG_NAME
    if path.is_file():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    class JsonlLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")

    return JsonlLog()


def step_timer_callback(times: list[float]):
    """A TrainerCallback recording the wall time of each optimizer step into ``times``."""
    import time

    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

    return StepTimer()


def run_trainer(trainer, work: Path) -> dict:
    """Train, resuming from the last checkpoint in ``work`` if one exists. Returns a summary."""
    import statistics

    work.mkdir(parents=True, exist_ok=True)
    checkpoint = last_checkpoint(work)
    if checkpoint:
        log.info("resuming from %s", checkpoint)
    times: list[float] = []
    trainer.add_callback(jsonl_log_callback(work, checkpoint_step(checkpoint)))
    trainer.add_callback(step_timer_callback(times))
    result = trainer.train(resume_from_checkpoint=checkpoint)
    steady = times[1:] or times  # the first step pays for warm-up (allocations, kernel selection)
    return {"global_step": trainer.state.global_step, "resumed_from_step": checkpoint_step(checkpoint),
            "train_loss": result.training_loss, "train_runtime_s": result.metrics.get("train_runtime"),
            "seconds_per_step_median": statistics.median(steady) if steady else None}


def save_final(model, tokenizer, out: Path, work: Path, overwrite: bool, summary: dict,
               keep_work: bool = False) -> Path:
    """Write the plain HF model folder, the training log and a summary atomically; drop the work folder."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if (work / LOG_NAME).is_file():
            shutil.copyfile(work / LOG_NAME, tmp / LOG_NAME)
        atomic_write_json(tmp / "train_summary.json", summary)
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return out


def read_log(folder: str | os.PathLike) -> list[dict]:
    path = Path(folder) / LOG_NAME
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
