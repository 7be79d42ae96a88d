"""Language-adaptive pre-training (LAPT): causal-LM training on target-language text.

Modes:
  lora        MIGRATE appendix D: LoRA r 64, α 16, dropout 0.1, no bias, on the attention projections,
              plus the embedding rows (all rows, or the new ids given) trainable through peft; the
              adapter is merged before saving, so the output is a plain HF folder.
  embeddings  Franken-Adapter: only the input embeddings and the LM head train, the body is frozen.
  full        every parameter trains.
Text is packed into fixed-length blocks (documents joined by EOS) on 🤗 datasets (streamed in, tokenised with
Dataset.map, cached as Arrow under <out>.work/data). Optionally code-switched text is mixed in at a given
share of blocks (SynCS continued pre-training), or only in the first steps (a curriculum). Built on
``transformers.Trainer`` (so ``accelerate launch`` runs it on many GPUs unchanged) and peft.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from ..config import check_range, opt
from ..errors import ConfigError
from .config import LoRATrainingConfig, TrainResult, run_training
from .data import block_dataset, curriculum_indices, mix_indices
from .modules import attention_leaf_names, embedding_parameter_names, leaf_name, set_trainable, vocab_modules
from .runtime import (
    final_state_dict,
    prepare_out,
    refused_start_leaves_no_work,
    run_trainer,
    save_final,
    training_arguments,
)

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class LAPTConfig(LoRATrainingConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "text", "code_switched", "embedding_rows")
    SIZES: ClassVar[tuple[str, ...]] = (*LoRATrainingConfig.SIZES, "num_proc")

    model: str = opt(help="model to adapt: built-in name, model folder or hub id")
    text: str = opt(help="target-language text: a text file (one document a line) or JSONL with a 'text' field")
    mode: Literal["lora", "embeddings", "full"] = opt("lora", "what trains: LoRA+embedding rows, embeddings only, all")
    code_switched: str | None = opt(None, "code-switched text to mix in (same formats as --text)")
    mix_ratio: float | None = opt(None, "share of code-switched blocks in the mix (default: all of both texts); "
                                        "with --mix-steps, their share in those steps (default 1)")
    mix_steps: int | None = opt(None, "curriculum: code-switched blocks only in the first N optimizer steps, later "
                                      "steps read --text alone; blocks are then read in that order, not reshuffled "
                                      "(each epoch repeats it)")
    embedding_rows: str = opt("all", "lora mode: embedding rows that train: 'all', 'none', or a JSON file with a "
                                     "list of ids (or an object with 'new_ids', as `langshift transfer` writes)")
    seq_len: int = opt(512, "tokens per packed block (MIGRATE: 2048)")
    grad_accum: int = opt(4, "gradient accumulation steps (8×4 = MIGRATE's batch 32)")
    lr: float = opt(1e-4, "peak learning rate (AdamW)")
    warmup: float = opt(0.08, "warm-up: a share of the steps (<1) or a number of steps")
    num_proc: int = opt(1, "tokenising workers (datasets Dataset.map num_proc); 1 streams the file; the blocks do "
                           "not change with it")

    def validate(self) -> None:
        super().validate()
        if self.seq_len < 2:
            raise ConfigError("--seq-len", self.seq_len, "must be a positive size of at least 2")
        if self.mix_ratio is not None:
            check_range("--mix-ratio", self.mix_ratio, 0.0, 1.0)
            if self.code_switched is None:
                raise ConfigError("--mix-ratio", self.mix_ratio, "needs --code-switched (the text to mix in)")
        if self.mix_steps is not None:
            if self.mix_steps < 1:
                raise ConfigError("--mix-steps", self.mix_steps, "give a number of optimizer steps of at least 1")
            if self.code_switched is None:
                raise ConfigError("--mix-steps", self.mix_steps, "needs --code-switched (the text to mix in)")
            if self.mix_ratio == 0.0:
                raise ConfigError("--mix-ratio", 0.0, "with --mix-steps puts no code-switched block in those steps; "
                                                      "give a share in (0, 1] or leave --mix-steps out")

    def unused_fields(self) -> tuple[str, ...]:
        return () if self.mode == "lora" else ("lora_r", "lora_alpha", "lora_dropout", "embedding_rows")


# 1. Data ----------------------------------------------------------------------------------------


def block_data(cfg: LAPTConfig, tokenizer, cache: str | os.PathLike):
    """The training blocks as a memory-mapped Arrow dataset (``input_ids``) cached under ``cache``, and counts:
    the blocks ``pack_texts`` and ``mix_blocks`` make, without the corpus in memory."""
    mono = block_dataset(cfg.text, tokenizer, cfg.seq_len, cache, cfg.num_proc, "--text")
    if cfg.code_switched is None:
        blocks, stats = mono, {"blocks": len(mono), "monolingual_blocks": len(mono), "code_switched_blocks": 0}
    else:
        from datasets import concatenate_datasets

        mixed = block_dataset(cfg.code_switched, tokenizer, cfg.seq_len, cache, cfg.num_proc, "--code-switched")
        if cfg.mix_steps is not None:  # every process reads batch × accumulation blocks a step
            early = cfg.mix_steps * cfg.batch_size * cfg.grad_accum * int(os.environ.get("WORLD_SIZE", "1"))
            ratio = 1.0 if cfg.mix_ratio is None else cfg.mix_ratio
            order, stats = curriculum_indices(len(mono), len(mixed), early, ratio, cfg.seed)
            if stats["early_blocks"] < early:
                log.warning("--code-switched gives %d blocks: the code-switched steps end after %d blocks, not %d",
                            len(mixed), stats["early_blocks"], early)
        else:
            ratio = len(mixed) / max(1, len(mixed) + len(mono)) if cfg.mix_ratio is None else cfg.mix_ratio
            order, stats = mix_indices(len(mono), len(mixed), ratio, cfg.seed)
        blocks = concatenate_datasets([mono, mixed]).select([i + src * len(mono) for src, i in order])
    if len(blocks) == 0:
        raise ConfigError("--text", cfg.text, f"gives no block of {cfg.seq_len} tokens; give more text or a "
                                              "smaller --seq-len")
    return blocks, stats


def build_blocks(cfg: LAPTConfig, tokenizer) -> tuple[list[list[int]], dict]:
    """``block_data`` as lists in memory (small corpora, benches)."""
    with tempfile.TemporaryDirectory(prefix="langshift-blocks.") as tmp:
        blocks, stats = block_data(cfg, tokenizer, tmp)
        return blocks["input_ids"], stats


def collate_blocks(examples: list[dict]) -> dict:
    import torch

    ids = torch.tensor([ex["input_ids"] for ex in examples], dtype=torch.long)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


# 2. Which parameters train ------------------------------------------------------------------------


def read_row_ids(spec: str, vocab_rows: int | None) -> list[int] | None:
    """``all`` → None (every row); ``none`` → []; else ids from a JSON file (list, or {'new_ids': [...]}).
    ``vocab_rows`` None checks the file alone (before the model is loaded)."""
    if spec in ("all", "none"):
        return None if spec == "all" else []
    path = Path(spec)
    if not path.is_file():
        raise ConfigError("--embedding-rows", spec, "give 'all', 'none' or a JSON file with a list of token ids")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("--embedding-rows", spec, f"is not one JSON document ({exc}); give a JSON list of ids "
                                                    "or the provenance/summary JSON `langshift transfer` writes "
                                                    "(a JSONL file is not one)") from None
    ids = data.get("new_ids") if isinstance(data, dict) else data
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ConfigError("--embedding-rows", spec, "the file must hold a JSON list of integer ids or an object "
                                                    "with a 'new_ids' list")
    bad = [i for i in ids if not 0 <= i < (vocab_rows if vocab_rows is not None else float("inf"))]
    if bad:
        raise ConfigError("--embedding-rows", spec, f"ids {bad[:5]} are outside the {vocab_rows} embedding rows")
    return sorted(set(ids))


def lora_model(model, cfg: LAPTConfig):
    """Wrap ``model`` with LoRA on the attention projections and trainable embedding rows (peft)."""
    names, tied = vocab_modules(model)
    head = model.get_output_embeddings()
    rows = read_row_ids(cfg.embedding_rows, model.get_input_embeddings().weight.shape[0])
    extra: dict = {}
    if rows is None:  # every row: a trainable copy of the whole matrix (peft modules_to_save)
        extra["modules_to_save"] = names + ([leaf_name(model, head)] if tied and head is not None else [])
    elif rows:  # only the given rows: peft TrainableTokens keeps a delta for them
        extra["trainable_token_indices"] = {n: rows for n in names}
    return cfg.add_lora(model, attention_leaf_names(model), ensure_weight_tying=tied and bool(extra), **extra)


def prepare_model(model, cfg: LAPTConfig):
    """The model to hand to the Trainer, and the number of trainable parameters."""
    if cfg.mode == "lora":
        wrapped = lora_model(model, cfg)
        return wrapped, sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    names = embedding_parameter_names(model) if cfg.mode == "embeddings" else None
    return model, set_trainable(model, names)


def unwrap(model):
    """A plain transformers model: LoRA merged into the weights when ``model`` is a peft model."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


# 3. Training ------------------------------------------------------------------------------------


def train_lapt(cfg: LAPTConfig, model=None, tokenizer=None) -> Path:
    from transformers import Trainer

    from ..models import load_model, load_tokenizer

    out = Path(cfg.out)
    work = prepare_out(out, cfg.overwrite)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model, "--model")
    model = model if model is not None else load_model(cfg.model)
    with refused_start_leaves_no_work(work):  # blocks cached in the work folder: a resume does not tokenise again
        blocks, stats = block_data(cfg, tokenizer, work / "data")
    log.info("LAPT data: %s", stats)
    trainable_model, trainable = prepare_model(model, cfg)
    # a curriculum (--mix-steps) is an order: the Trainer must not reshuffle it
    order = {"train_sampling_strategy": "sequential"} if cfg.mix_steps is not None else {}
    args = training_arguments(work, **cfg.schedule(), scheduler="linear", **order)
    trainer = Trainer(model=trainable_model, args=args, train_dataset=blocks,
                      data_collator=collate_blocks)
    if cfg.mode == "lora" and trainer.is_fsdp_enabled:
        raise ConfigError("--mode", "lora", "LoRA is not merged from FSDP shards; use a DDP or DeepSpeed ZeRO-2 "
                                            "accelerate config for LoRA, or --mode full/embeddings under FSDP")
    summary = run_trainer(trainer, work)
    state_dict = final_state_dict(trainer)  # every process takes part in gathering sharded weights
    if not trainer.is_world_process_zero():  # under accelerate launch only the main process writes
        return out
    summary.update({"stage": "lapt", "config": cfg.to_dict(), "data": stats, "trainable_parameters": trainable})
    final = unwrap(trainer.model).eval()
    return save_final(final, tokenizer, out, work, cfg.overwrite, summary, cfg.keep_work, state_dict)


def run_lapt(cfg: LAPTConfig) -> TrainResult:
    """LAPT's front door (CLI, pipeline, `accelerate launch`): a bad --embedding-rows file fails before the
    model loads."""
    def check() -> None:
        if cfg.mode == "lora":
            read_row_ids(cfg.embedding_rows, None)

    return run_training(cfg, train_lapt, check)
