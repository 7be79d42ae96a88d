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
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LangshiftError
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


@contextmanager
def refused_start_leaves_no_work(work: Path):
    """Around a stage's data preparation: when it fails, a work folder it made (not one a run before made,
    with checkpoints to resume from) is removed, so a refused start leaves nothing behind."""
    existed = work.exists()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(work, ignore_errors=True)
        raise


def has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()


def training_arguments(work: Path, *, batch_size: int, lr: float, epochs: float, max_steps: int | None,
                       warmup: float, seed: int, save_steps: int, grad_accum: int = 1,
                       gradient_checkpointing: bool | None = None, bf16: bool | None = None,
                       scheduler: str = "linear", scheduler_kwargs: dict | None = None, args_class=None,
                       **extra: Any):
    """``TrainingArguments`` (or a subclass such as trl's ``SFTConfig``) for our stages; every value trl
    would default differently is set.

    ``gradient_checkpointing`` and ``bf16`` left at None mean "on when a GPU is there" (bf16 only where the
    GPU supports it); True/False force them. bf16 is autocast mixed precision: the weights stay float32.
    """
    from transformers import TrainingArguments

    args_class = args_class or TrainingArguments
    gpu = has_accelerator()
    import torch

    if bf16 is None:
        bf16 = gpu and torch.cuda.is_bf16_supported()
    elif bf16 and gpu and not torch.cuda.is_bf16_supported():
        raise ConfigError("--bf16", True, "this GPU has no bfloat16 support; pass --no-bf16")
    return args_class(
        output_dir=str(work), per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
        learning_rate=lr, num_train_epochs=epochs, max_steps=max_steps if max_steps else -1,
        warmup_steps=warmup, lr_scheduler_type=scheduler, lr_scheduler_kwargs=scheduler_kwargs or {},
        weight_decay=0.0, logging_steps=1, save_strategy="steps", save_steps=save_steps, save_total_limit=2,
        seed=seed, data_seed=seed, bf16=bf16, fp16=False,
        # no accelerator at all: say CPU, so that processes started by `accelerate launch`/torchrun join one
        # gloo group (multi-CPU DDP) instead of each training alone, and bf16 autocast is allowed on CPU
        use_cpu=not torch.accelerator.is_available(),
        activation_checkpointing=gpu if gradient_checkpointing is None else gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False}, report_to=[], dataloader_num_workers=0,
        # every trainable parameter takes part in each forward pass (frozen ones have no grad), so DDP
        # need not search the graph for unused ones after every backward
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=gpu, disable_tqdm=False, **{"remove_unused_columns": False, **extra})


def last_checkpoint(work: Path) -> str | None:
    """The newest complete checkpoint in ``work``. Trainer writes ``trainer_state.json`` last and not
    atomically, so a checkpoint without a readable one was cut off by a crash: it is removed."""
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
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

    return StepTimer()


def run_trainer(trainer, work: Path) -> dict:
    """Train, resuming from the last checkpoint in ``work`` if one exists. Returns a summary."""
    check_launch(trainer)
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


def check_launch(trainer) -> None:
    """Fail before training when ``accelerate launch`` was asked for FSDP or DeepSpeed and the Trainer
    did not get it: accelerate silently falls back to plain DDP on CPU processes (ACCELERATE_USE_CPU),
    which would train unsharded under a config that promises sharding."""
    for env, enabled, what in (("ACCELERATE_USE_FSDP", trainer.is_fsdp_enabled, "FSDP"),
                               ("ACCELERATE_USE_DEEPSPEED", trainer.is_deepspeed_enabled, "DeepSpeed")):
        if os.environ.get(env, "false").lower() == "true" and not enabled:
            raise LangshiftError(
                f"the accelerate config asks for {what} but accelerate set up "
                f"{trainer.accelerator.distributed_type.value} (it does {what} only on GPUs/accelerators, not "
                "on CPU processes); use a DDP config (distributed_type: MULTI_GPU) on CPUs")


def gather_full_state_dict(model) -> dict | None:
    """The full (unsharded) state dict of an FSDP2-sharded ``model`` on every rank, on CPU; None when its
    parameters are not sharded. Collective: every process must call it. The same call accelerate's
    ``get_state_dict`` makes for FSDP2."""
    from torch.distributed.tensor import DTensor

    if not any(isinstance(p, DTensor) for p in model.parameters()):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def final_state_dict(trainer) -> dict | None:
    """Full weights for the final save when the model is sharded over processes (FSDP 1/2, DeepSpeed
    ZeRO-3), else None (each process holds the whole model: 1 process, DDP, ZeRO-1/2). Collective: call it
    on every process, before only the main one saves, or the gather waits forever."""
    model = trainer.model_wrapped if trainer.model_wrapped is not None else trainer.model
    if trainer.is_fsdp_enabled:
        return gather_full_state_dict(model) if trainer.accelerator.is_fsdp2 else \
            trainer.accelerator.get_state_dict(model)
    if trainer.is_deepspeed_enabled and trainer.accelerator.deepspeed_config["zero_optimization"]["stage"] == 3:
        return trainer.accelerator.get_state_dict(model)
    return None


def save_final(model, tokenizer, out: Path, work: Path, overwrite: bool, summary: dict,
               keep_work: bool = False, state_dict: dict | None = None) -> Path:
    """Write the plain HF model folder, the training log and a summary atomically; drop the work folder.

    ``state_dict``: the gathered full weights of a sharded model (``final_state_dict``), saved instead of
    ``model``'s own (which then only gives the config and the names)."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
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
