"""Transfer on the checkpoint's files: read only the vocabulary matrices, write only them back.

The input-embedding and LM-head rows are read lazily from the safetensors files into float32 (the
maths needs it), the method builds the new matrix, and the matrices go back in the checkpoint's own
dtype; every other tensor is copied byte for byte (files holding none of them are hard-linked), the
index, config (vocab_size, special ids; tie_word_embeddings untouched), generation config and the
target tokenizer are written beside them. Peak memory: the old and new vocabulary matrices.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from ..errors import ConfigError
from ..files import atomic_dir
from ..models import Checkpoint, VocabKeys, vocab_keys
from .apply import (
    SUMMARY_FILE,
    Prebuilt,
    Provenance,
    _provenance,
    as_options,
    carry_chat_template,
    compute_rows,
    retarget_ids,
)
from .config import TransferOptions
from .shards import read_rows, tensor_dtype, tensor_shape, write_checkpoint

GENERATION_FILE = "generation_config.json"


def checkpoint_rows(ckpt: Checkpoint, keys: VocabKeys, n_tok: int, param: str = "--model", shown: str = ""
                    ) -> tuple[torch.Tensor, int]:
    """(float32 source rows (n_tok, d), or (n_tok, 2d) input | output for an untied head; d)."""
    shown = shown or str(ckpt.folder)
    rows_in, d = tensor_shape(ckpt, keys.embed)
    if rows_in < n_tok:
        raise ConfigError(param, shown, f"its tokenizer has {n_tok} tokens but its input embedding matrix only "
                                        f"{rows_in} rows, so some ids have no row; give the tokenizer that belongs "
                                        "to this model, or resize the model's embeddings to the tokenizer first")
    out = torch.empty(n_tok, d if keys.tied else 2 * d, dtype=torch.float32)
    read_rows(ckpt, keys.embed, n_tok, out[:, :d])
    if not keys.tied:
        rows_out = tensor_shape(ckpt, keys.head)[0]
        if rows_out < n_tok:
            raise ConfigError(param, shown, f"its output matrix has {rows_out} rows for {n_tok} tokens; give the "
                                            "tokenizer that belongs to this model")
        read_rows(ckpt, keys.head, n_tok, out[:, d:])
    return out, d


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def updated_configs(folder: Path, rows: int, holders_fn) -> tuple[dict, dict]:
    """config.json and generation_config.json of ``folder`` with ``vocab_size = rows`` and the special
    ids set by ``holders_fn(config_ns, generation_ns)`` (which edits the namespaces in place)."""
    config = _read_json(folder / "config.json")
    generation = _read_json(folder / GENERATION_FILE)
    config["vocab_size"] = rows
    if isinstance(config.get("text_config"), dict) and "vocab_size" in config["text_config"]:
        config["text_config"]["vocab_size"] = rows
    cns, gns = SimpleNamespace(**config), SimpleNamespace(**generation)
    holders_fn(cns, gns)
    return vars(cns), vars(gns)


def transfer_checkpoint(ckpt: Checkpoint, source_tok, target_tok, out: str, cfg: TransferOptions | str,
                        overwrite: bool = False, summary: dict | None = None, prebuilt: Prebuilt | None = None,
                        param: str = "--model", shown: str = "") -> tuple[Provenance, dict]:
    """Transfer the model in ``ckpt`` to ``target_tok`` and write the result to ``out`` (one rename).
    Returns (provenance, {"rewritten": files rewritten, "dtype": ...})."""
    cfg = as_options(cfg)
    pre = prebuilt or Prebuilt()
    keys = vocab_keys(ckpt.folder, ckpt, param)
    start = time.perf_counter()
    source, d = checkpoint_rows(ckpt, keys, len(source_tok), param, shown)
    read = time.perf_counter() - start
    done = compute_rows(source, source_tok, target_tok, cfg, pre)
    done.seconds["overlap"] += read
    del source
    dtype_in = tensor_dtype(ckpt, keys.embed)
    changes: dict[str, torch.Tensor | None] = {keys.embed: done.matrix[:, :d].to(dtype_in).contiguous()}
    if not keys.tied:
        changes[keys.head] = done.matrix[:, d:].to(tensor_dtype(ckpt, keys.head)).contiguous()
    elif keys.head_stored:  # a tied checkpoint that also stores the head: keep the copy equal
        changes[keys.head] = changes[keys.embed]
    rows = done.matrix.shape[0]
    new_ids: dict[str, Any] = {}

    def retarget(config_ns, generation_ns):
        holders = [config_ns, generation_ns]
        new_ids.update(retarget_ids(holders, source_tok, target_tok, done.overlap))

    config, generation = updated_configs(ckpt.folder, rows, retarget)
    carry_chat_template(source_tok, target_tok)
    prov = _provenance(cfg.method, keys.tied, done, new_ids)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        rewritten = write_checkpoint(ckpt, tmp, changes)
        _write_json(tmp / "config.json", config)
        _write_json(tmp / GENERATION_FILE, generation)
        target_tok.save_pretrained(tmp)
        if summary is not None:
            full = {**prov.summary(), **summary}
            _write_json(tmp / SUMMARY_FILE, full)
    return prov, {"rewritten": rewritten, "dtype": str(dtype_in).removeprefix("torch.")}
