"""Franken-Adapter transplant: the tokenizer, input embeddings and LM head of model A on the body of B.

Typical use: A is the pretrained model whose embeddings were tuned for a new vocabulary (body frozen),
B is its instruction-tuned sibling. C keeps every body weight of B bit for bit, takes A's vocabulary
matrices (tied or untied as in A), A's tokenizer, and B's chat template and generation settings with
special-token ids re-read from A's tokenizer.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import Result, StageConfig, opt
from ..errors import LangshiftError
from ..files import atomic_dir, atomic_write_json, check_out_dir

log = logging.getLogger(__name__)

# Fields that must agree for A's embeddings to fit B's body (read from each model's text config).
MUST_MATCH = ("model_type", "hidden_size", "num_hidden_layers")


@dataclass
class TransplantConfig(StageConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("embeddings_from", "body_from")

    embeddings_from: str = opt(help="model A: tokenizer, input embeddings, LM head")
    body_from: str = opt(help="model B: every other weight, chat template, generation config")
    out: str = opt(help="output model folder (written atomically)")
    overwrite: bool = opt(False, "replace --out if it exists")


@dataclass
class TransplantResult(Result):
    """``transplant.json`` of the model written: where its parts came from and what it holds."""

    embeddings_from: str
    body_from: str
    chat_template_from: str | None
    special_token_ids: dict[str, Any]
    vocab_rows: int
    tied_embeddings: bool
    dtype: str | None = None  # of B's weights, when they were edited as files


def check_compatible(config_a, config_b, name_a: str = "A", name_b: str = "B") -> None:
    """Raise LangshiftError naming every mismatching field with both values."""
    a, b = config_a.get_text_config(), config_b.get_text_config()
    problems = []
    for field in MUST_MATCH:
        va, vb = getattr(a, field, None), getattr(b, field, None)
        if va != vb:
            problems.append(f"{field}: {va!r} in --embeddings-from {name_a} vs {vb!r} in --body-from {name_b}")
    arch_a, arch_b = config_a.architectures or [], config_b.architectures or []
    if arch_a and arch_b and arch_a != arch_b:
        problems.append(f"architectures: {arch_a} in --embeddings-from {name_a} vs {arch_b} in --body-from {name_b}")
    if problems:
        raise LangshiftError("cannot transplant: the two models are not siblings (" + "; ".join(problems) + "). "
                             "Give an embeddings model and a body model of the same architecture and size")


def transplant_model(model_a, model_b):
    """Put A's input embeddings and LM head into B (in place) and return B. Pure tensor surgery."""
    import torch

    check_compatible(model_a.config, model_b.config)
    emb_a = model_a.get_input_embeddings().weight.detach()
    head_a_module = model_a.get_output_embeddings()
    tied_a = head_a_module is None or head_a_module.weight is model_a.get_input_embeddings().weight
    text_b = model_b.config.get_text_config()

    # 1. Input embeddings: a fresh module with A's rows (vocabulary sizes may differ).
    new_emb = torch.nn.Embedding(emb_a.shape[0], emb_a.shape[1], padding_idx=model_b.get_input_embeddings().padding_idx)
    new_emb.weight.data.copy_(emb_a.to(new_emb.weight.dtype))
    new_emb.to(model_b.get_input_embeddings().weight.device, model_b.get_input_embeddings().weight.dtype)
    model_b.set_input_embeddings(new_emb)
    text_b.vocab_size = emb_a.shape[0]
    model_b.config.vocab_size = emb_a.shape[0]

    # 2. Output head: tied exactly when A's is tied (A's two matrices travel as a pair).
    head_b = model_b.get_output_embeddings()
    if head_b is None:
        raise LangshiftError(f"--body-from: {type(model_b).__name__} has no output embeddings (LM head) to replace")
    new_head = torch.nn.Linear(emb_a.shape[1], emb_a.shape[0], bias=head_a_module is not None
                               and getattr(head_a_module, "bias", None) is not None)
    new_head.to(new_emb.weight.device, new_emb.weight.dtype)
    if tied_a:
        new_head.weight = new_emb.weight
    else:
        new_head.weight.data.copy_(head_a_module.weight.detach())
    if new_head.bias is not None:
        new_head.bias.data.copy_(head_a_module.bias.detach())
    model_b.set_output_embeddings(new_head)
    text_b.tie_word_embeddings = tied_a
    model_b.config.tie_word_embeddings = tied_a
    return model_b


def _special_ids(tokenizer) -> dict[str, int | None]:
    return {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id}


def _remap_id(token_id, tok_from, tok_to, fallback):
    """The id in ``tok_to`` of the token string that ``token_id`` is in ``tok_from`` (else ``fallback``)."""
    if token_id is None:
        return fallback
    if isinstance(token_id, list):
        mapped = [_remap_id(t, tok_from, tok_to, None) for t in token_id]
        mapped = [m for m in mapped if m is not None]
        return mapped or fallback
    text = tok_from.convert_ids_to_tokens(int(token_id))
    new = tok_to.convert_tokens_to_ids(text) if text is not None else None
    return new if new is not None and new != tok_to.unk_token_id else fallback


def _chat_template(tok_a, tok_b) -> str | None:
    """B's chat template on A's tokenizer; warn when it names special tokens that A lacks."""
    template = getattr(tok_b, "chat_template", None)
    if template:
        tok_a.chat_template = template
        missing = sorted({t for t in re.findall(r"<\|?[A-Za-z_]+\|?>", template)
                          if tok_a.convert_tokens_to_ids(t) in (None, tok_a.unk_token_id)})
        if missing:
            log.warning("B's chat template uses %s, which A's tokenizer does not have as tokens", missing)
    return template


def transplant(embeddings_from: str, body_from: str, out: str, overwrite: bool = False) -> Path:
    """Check A and B fit, write C to ``out`` atomically; returns ``out``. Safetensors models are edited on
    their files: only A's vocabulary matrices are read, B's body files are linked or copied byte for byte."""
    from transformers import AutoConfig

    from ..models import load_tokenizer, model_path, read_checkpoint

    out_path = check_out_dir(out, overwrite)
    path_a, path_b = model_path(embeddings_from, "--embeddings-from"), model_path(body_from, "--body-from")
    check_compatible(AutoConfig.from_pretrained(path_a), AutoConfig.from_pretrained(path_b), path_a, path_b)
    ckpt_a = read_checkpoint(path_a, "--embeddings-from", embeddings_from) if Path(path_a).is_dir() else None
    ckpt_b = read_checkpoint(path_b, "--body-from", body_from) if Path(path_b).is_dir() else None
    tok_a, tok_b = load_tokenizer(path_a, "--embeddings-from"), load_tokenizer(path_b, "--body-from")
    ids = _special_ids(tok_a)
    template = _chat_template(tok_a, tok_b)
    record = {"embeddings_from": str(embeddings_from), "body_from": str(body_from),
              "chat_template_from": "body" if template else None, "special_token_ids": ids}
    if ckpt_a is not None and ckpt_b is not None:
        _transplant_files(ckpt_a, ckpt_b, tok_a, tok_b, ids, record, out_path, overwrite)
    else:
        _transplant_loaded(path_a, path_b, tok_a, tok_b, ids, record, out_path, overwrite)
    log.info("transplant written to %s: %s", out_path, json.dumps(ids))
    return out_path


def _transplant_files(ckpt_a, ckpt_b, tok_a, tok_b, ids, record, out_path: Path, overwrite: bool) -> None:
    from ..models import vocab_keys
    from ..transfer.lean import GENERATION_FILE, updated_configs
    from ..transfer.shards import read_rows, tensor_dtype, tensor_shape, write_checkpoint

    keys_a, keys_b = vocab_keys(ckpt_a.folder, ckpt_a, "--embeddings-from"), vocab_keys(ckpt_b.folder, ckpt_b,
                                                                                         "--body-from")
    rows = tensor_shape(ckpt_a, keys_a.embed)[0]
    dtype = tensor_dtype(ckpt_b, keys_b.embed)
    emb = read_rows(ckpt_a, keys_a.embed, rows).to(dtype)
    changes, added = {keys_b.embed: emb}, {}
    if keys_a.tied:
        if keys_b.head_stored:  # an untied B loses its head; a tied B that stores one keeps it equal
            changes[keys_b.head] = None if not keys_b.tied else emb
    else:
        head = read_rows(ckpt_a, keys_a.head, tensor_shape(ckpt_a, keys_a.head)[0]).to(
            tensor_dtype(ckpt_b, keys_b.head) if keys_b.head_stored else dtype)
        if keys_b.head_stored:
            changes[keys_b.head] = head
        else:
            added[keys_b.head] = (keys_b.embed, head)

    def set_ids(config, generation):
        config.tie_word_embeddings = keys_a.tied
        text = getattr(config, "text_config", None)
        if isinstance(text, dict):
            text["tie_word_embeddings"] = keys_a.tied
        for key, value in ids.items():
            setattr(config, key, value)
            setattr(generation, key, _remap_id(getattr(generation, key, None), tok_b, tok_a, value))

    config, generation = updated_configs(ckpt_b.folder, rows, set_ids)
    with atomic_dir(out_path, overwrite=overwrite) as tmp:
        write_checkpoint(ckpt_b, tmp, changes, added)
        for name, obj in (("config.json", config), (GENERATION_FILE, generation)):
            (tmp / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tok_a.save_pretrained(tmp)
        atomic_write_json(tmp / "transplant.json", {**record, "vocab_rows": rows, "tied_embeddings": keys_a.tied,
                                                    "dtype": str(dtype).removeprefix("torch.")})


def _transplant_loaded(path_a, path_b, tok_a, tok_b, ids, record, out_path: Path, overwrite: bool) -> None:
    """Models without safetensors files: load both whole (float32) and do the surgery in memory."""
    from transformers import GenerationConfig

    from ..models import load_model

    model_a, model_b = load_model(path_a, "--embeddings-from"), load_model(path_b, "--body-from")
    model_c = transplant_model(model_a, model_b)
    for key, value in ids.items():
        setattr(model_c.config, key, value)
    try:
        gen = GenerationConfig.from_pretrained(path_b)
    except OSError:
        gen = model_c.generation_config
    for key, value in ids.items():
        setattr(gen, key, _remap_id(getattr(gen, key, None), tok_b, tok_a, value))
    model_c.generation_config = gen
    with atomic_dir(out_path, overwrite=overwrite) as tmp:
        model_c.save_pretrained(tmp, safe_serialization=True)
        tok_a.save_pretrained(tmp)
        atomic_write_json(tmp / "transplant.json", {
            **record, "vocab_rows": model_c.get_input_embeddings().weight.shape[0],
            "tied_embeddings": bool(model_c.config.tie_word_embeddings)})


def run_transplant(cfg: TransplantConfig) -> TransplantResult:
    """The transplant's front door: ``out`` must not be (or hold) A or B."""
    cfg.check_output()
    out = transplant(cfg.embeddings_from, cfg.body_from, cfg.out, cfg.overwrite)
    return TransplantResult(str(out), **json.loads((out / "transplant.json").read_text(encoding="utf-8")))
