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
from pathlib import Path

from ..errors import LangshiftError
from ..files import atomic_dir, atomic_write_json, check_out_dir

log = logging.getLogger(__name__)

# Fields that must agree for A's embeddings to fit B's body (read from each model's text config).
MUST_MATCH = ("model_type", "hidden_size", "num_hidden_layers")


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


def transplant(embeddings_from: str, body_from: str, out: str, overwrite: bool = False) -> Path:
    """Load A and B, check they fit, write C to ``out`` atomically; returns ``out``."""
    from transformers import AutoConfig, GenerationConfig

    from ..models import load_model, load_tokenizer
    from ..resources import resolve_model

    out_path = check_out_dir(out, overwrite)
    path_a, path_b = resolve_model(embeddings_from, "--embeddings-from"), resolve_model(body_from, "--body-from")
    check_compatible(AutoConfig.from_pretrained(path_a), AutoConfig.from_pretrained(path_b), path_a, path_b)
    tok_a, tok_b = load_tokenizer(path_a, "--embeddings-from"), load_tokenizer(path_b, "--body-from")
    model_a, model_b = load_model(path_a, "--embeddings-from"), load_model(path_b, "--body-from")

    # 1. Surgery.
    model_c = transplant_model(model_a, model_b)
    # 2. Special-token ids now come from A's tokenizer.
    ids = _special_ids(tok_a)
    for key, value in ids.items():
        setattr(model_c.config, key, value)
    try:
        gen = GenerationConfig.from_pretrained(path_b)
    except OSError:
        gen = model_c.generation_config
    for key, value in ids.items():
        setattr(gen, key, _remap_id(getattr(gen, key, None), tok_b, tok_a, value))
    model_c.generation_config = gen
    # 3. B's chat template on A's tokenizer; warn when it names special tokens that A lacks.
    template = getattr(tok_b, "chat_template", None)
    if template:
        tok_a.chat_template = template
        missing = sorted({t for t in re.findall(r"<\|?[A-Za-z_]+\|?>", template)
                          if tok_a.convert_tokens_to_ids(t) in (None, tok_a.unk_token_id)})
        if missing:
            log.warning("B's chat template uses %s, which A's tokenizer does not have as tokens", missing)

    with atomic_dir(out_path, overwrite=overwrite) as tmp:
        model_c.save_pretrained(tmp, safe_serialization=True)
        tok_a.save_pretrained(tmp)
        atomic_write_json(tmp / "transplant.json", {
            "embeddings_from": str(embeddings_from), "body_from": str(body_from),
            "vocab_rows": model_c.get_input_embeddings().weight.shape[0],
            "tied_embeddings": bool(model_c.config.tie_word_embeddings),
            "chat_template_from": "body" if template else None, "special_token_ids": ids})
    log.info("transplant written to %s: %s", out_path, json.dumps(ids))
    return out_path
