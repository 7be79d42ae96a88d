"""Give a model a new tokenizer: build the target embedding matrices with an init method, resize the
model, carry its special-token ids and chat template over, and save a plain Hugging Face folder.

``transfer(model, source_tok, target_tok, options)`` is the library call (objects in, objects out);
``transfer_files(cfg)`` the file-to-folder one that the front door ``run.run_transfer`` calls per method.

Untied heads: the method runs once on the source input and output rows side by side, so each new
input row is built from source input rows and each new output row from source output rows, with
the same weights (``random`` samples the two halves jointly from their common Gaussian).
Rows beyond ``len(source_tok)`` are never sources; the new matrix has ``len(target_tok)`` rows,
padded to ``pad_to_multiple_of`` with the source mean.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, LangshiftError
from ..files import atomic_dir, atomic_write_json
from ..perf import gc_paused
from ..vocab.overlap import Overlap, compute_overlap
from .config import TransferConfig, TransferOptions
from .inputs import (
    aux_model_rows,
    bpe_merges,
    check_same_dim,
    dictionary_vectors,
    lookup_strings,
    read_dictionary,
    static_matrix,
    static_space,
)
from .methods import INIT_METHODS, InitResult, TransferProblem
from .pieces import SourcePieces, surface

log = logging.getLogger(__name__)

SUMMARY_FILE = "langshift_transfer.json"


@dataclass
class Prebuilt:
    """Inputs already in memory (library use): they replace the matching paths of the config."""

    target_space: Any = None          # StaticSpace of the target language
    source_space: Any = None          # StaticSpace of the source language (wechsel)
    aux_rows: torch.Tensor | None = None  # (len(target_tok), b) salt auxiliary rows
    dictionary: list[tuple[str, str]] | None = None


@dataclass
class Provenance:
    method: str
    tied: bool
    overlap: dict[str, Any]
    make_tokens: Callable[[], list[dict[str, Any]]] = field(repr=False)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @cached_property
    def tokens(self) -> list[dict[str, Any]]:
        """One record per target token (how its row was made); built on first use — a second or two
        at a 32k vocabulary that a transfer without ``--provenance`` need not spend."""
        return self.make_tokens()

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "tied": self.tied, "counts": self.counts, "seconds": self.seconds,
                "overlap": {k: self.overlap[k] for k in ("source_size", "target_size", "matched", "matched_share",
                                                         "new", "by_kind")}}

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "overlap": self.overlap, "tokens": self.tokens}


# 1. Reading the source model ---------------------------------------------------------------------

def source_rows(model, source_tok, param: str = "--model") -> tuple[torch.Tensor, bool, int]:
    """(source rows (n, d) or (n, 2d) for an untied head, tied?, d): one row per source token; rows
    beyond ``len(source_tok)`` (padding to a multiple) are not sources."""
    n_tok = len(source_tok)
    emb_in = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    name = getattr(model, "name_or_path", "") or type(model).__name__
    if emb_in.shape[0] < n_tok:
        raise ConfigError(param, name, f"its tokenizer has {n_tok} tokens but its input embedding matrix only "
                                       f"{emb_in.shape[0]} rows, so some ids have no row; give the tokenizer that "
                                       "belongs to this model, or resize the model's embeddings to the tokenizer first")
    tied = head is None or head.weight is emb_in or head.weight.data_ptr() == emb_in.data_ptr()
    # Not copied: the methods never write into the source rows, and ``install`` writes the model's
    # rows only after the new matrices are complete.
    rows = emb_in.detach()[:n_tok].float()
    if tied:
        return rows, True, rows.shape[1]
    if getattr(head, "bias", None) is not None:
        raise LangshiftError(f"{param}={name!r}: its LM head has a bias; only bias-free heads are supported")
    if head.weight.shape[0] < n_tok:
        raise ConfigError(param, name, f"its output matrix has {head.weight.shape[0]} rows for {n_tok} tokens; "
                                       "give the tokenizer that belongs to this model")
    return torch.cat([rows, head.weight.detach()[:n_tok].float()], dim=1), False, rows.shape[1]


# 2. The method's inputs --------------------------------------------------------------------------

def build_problem(needs: frozenset, source: torch.Tensor, overlap: Overlap, source_tok, target_tok,
                  cfg: TransferOptions, pre: Prebuilt) -> tuple[TransferProblem, dict[int, str]]:
    target_tokens, source_tokens = overlap.target_tokens, overlap.source_tokens
    pairs = sorted(overlap.pairs.items())
    pieces = SourcePieces(source_tok, source_tokens, target_tokens)
    problem = TransferProblem(
        source=source, n_target=len(target_tokens),
        overlap_target=torch.tensor([t for t, _ in pairs], dtype=torch.long),
        overlap_source=torch.tensor([s for _, s in pairs], dtype=torch.long),
        generator=torch.Generator().manual_seed(cfg.seed), pieces=pieces)
    want_target_space = bool(needs & {"static", "dictionary"}) or ("aux" in needs and pre.aux_rows is None
                                                                    and cfg.aux_model is None)
    target_space = pre.target_space
    if want_target_space and target_space is None:
        target_space = static_space(cfg.aux_fasttext, cfg.aux_text, target_tok, target_tokens, cfg,
                                    "--aux-fasttext", "--aux-text")
    form = cfg.aux_token_form
    if "static" in needs:
        problem.target_static = static_matrix(target_space, target_tokens,
                                              lookup_strings(target_tok, target_tokens, form))
    if "aux" in needs:
        if pre.aux_rows is not None:
            problem.aux = pre.aux_rows.float()
        elif cfg.aux_model is not None:
            problem.aux = aux_model_rows(cfg.aux_model, target_tok)
        else:
            problem.aux = static_matrix(target_space, target_tokens, lookup_strings(target_tok, target_tokens, form))
    if "merges" in needs:
        problem.source_merges = bpe_merges(source_tok, "--model", n_rows=source.shape[0])
        problem.target_merges = bpe_merges(target_tok, "--tokenizer", n_rows=len(target_tokens))
    if "source_static" in needs or "dictionary" in needs:
        source_space = pre.source_space or static_space(cfg.source_fasttext, cfg.source_text, source_tok,
                                                        source_tokens, cfg, "--source-fasttext", "--source-text")
        check_same_dim(source_space, target_space, "--source-fasttext",
                       cfg.source_fasttext or cfg.source_text, "--aux-fasttext")
        problem.source_static = static_matrix(source_space, source_tokens,
                                              lookup_strings(source_tok, source_tokens, form))
        pairs_words = pre.dictionary or read_dictionary(cfg.dictionary)
        problem.dict_source, problem.dict_target = dictionary_vectors(pairs_words, source_space, target_space)
    return problem, pieces.how


# 3. Writing the new matrices into the model ------------------------------------------------------

def padded_rows(matrix: torch.Tensor, source: torch.Tensor, multiple: int | None) -> torch.Tensor:
    """``matrix`` with extra rows up to a multiple of ``multiple``; padding rows = the source mean."""
    n = matrix.shape[0]
    total = n if not multiple else -(-n // multiple) * multiple
    if total == n:
        return matrix
    return torch.cat([matrix, source.mean(0).expand(total - n, -1).to(matrix.dtype)], dim=0)


def install(model, matrix: torch.Tensor, tied: bool, d: int) -> None:
    """Resize the model's embeddings to ``matrix``'s rows and write them (input | output when untied)."""
    from transformers.initialization import no_init_weights

    with no_init_weights():  # every row is overwritten below: skip drawing random ones (0.15 s at 32k × 576)
        model.resize_token_embeddings(matrix.shape[0], mean_resizing=False)
    emb_in = model.get_input_embeddings().weight
    with torch.no_grad():
        emb_in.copy_(matrix[:, :d].to(emb_in.dtype))
        if not tied:
            head = model.get_output_embeddings().weight
            head.copy_(matrix[:, d:].to(head.dtype))
    model.config.vocab_size = matrix.shape[0]


def _remap(old: Any, role_id: int | None, inverse: dict[int, int]) -> Any:
    if isinstance(old, (list, tuple)):
        ids = ([role_id] if role_id is not None else []) + [inverse[o] for o in old if o in inverse]
        return list(dict.fromkeys(ids)) or None
    if role_id is not None:
        return role_id
    return inverse.get(old) if old is not None else None


def retarget_ids(holders, source_tok, target_tok, overlap: Overlap) -> dict[str, Any]:
    """bos/eos/pad ids of each holder (config, generation config: objects with those attributes) → the
    target tokenizer's ids for those roles (a role the target lacks: the target id matched to the old
    source id, else None). Returns the new ids of the first holder."""
    inverse: dict[int, int] = {}
    for t, s in sorted(overlap.pairs.items()):
        inverse.setdefault(s, t)
    new: dict[str, Any] = {}
    for role in ("bos", "eos", "pad"):
        role_id = getattr(target_tok, f"{role}_token_id", None)
        for holder in holders:
            if holder is None:
                continue
            value = _remap(getattr(holder, f"{role}_token_id", None), role_id, inverse)
            setattr(holder, f"{role}_token_id", value)
        new[role] = getattr(holders[0], f"{role}_token_id", None)
    return new


def carry_chat_template(source_tok, target_tok) -> None:
    """The source's chat template on the target tokenizer when the target has none."""
    if not getattr(target_tok, "chat_template", None) and getattr(source_tok, "chat_template", None):
        target_tok.chat_template = source_tok.chat_template


def retarget_specials(model, source_tok, target_tok, overlap: Overlap) -> dict[str, Any]:
    """``retarget_ids`` on the model's config and generation config, and ``carry_chat_template``."""
    new = retarget_ids([model.config, getattr(model, "generation_config", None)], source_tok, target_tok, overlap)
    carry_chat_template(source_tok, target_tok)
    return new


# 4. Provenance -------------------------------------------------------------------------------------

@gc_paused()
def provenance_tokens(result: InitResult, overlap: Overlap, split_how: dict[int, str]) -> list[dict[str, Any]]:
    def show(tok) -> str:
        return surface(tok).decode("utf-8", errors="replace")

    out = []
    src_tokens, tgt_tokens = overlap.source_tokens, overlap.target_tokens
    sources, weights = result.sources.tolist(), result.weights.tolist()
    for i, tok in enumerate(tgt_tokens):
        entry: dict[str, Any] = {"id": i, "token": show(tok), "how": result.how[i],
                                 "sources": [{"id": s, "token": show(src_tokens[s]), "weight": round(w, 6)}
                                             for s, w in zip(sources[i], weights[i], strict=True) if s >= 0],
                                 "fallback": result.fallback.get(i)}
        if i in overlap.how:
            entry["match"] = overlap.how[i]
        elif i in split_how:
            entry["source_split"] = split_how[i]
        out.append(entry)
    return out


# 5. The library call -------------------------------------------------------------------------------

def as_options(options: TransferOptions | str) -> TransferOptions:
    """``TransferOptions`` as given, or a method name's default options."""
    return TransferOptions(method=options) if isinstance(options, str) else options


@dataclass
class Computed:
    """The new vocabulary matrix (padded; input | output columns when untied) and how it was made."""

    matrix: torch.Tensor
    overlap: Overlap
    result: InitResult
    split_how: dict[int, str]
    seconds: dict[str, float]


def compute_rows(source: torch.Tensor, source_tok, target_tok, cfg: TransferOptions, pre: Prebuilt) -> Computed:
    """Run ``cfg.method`` on the source rows (float32): the target matrix, padded as configured."""
    cfg.check_inputs(pre.target_space is not None, pre.source_space is not None, pre.aux_rows is not None,
                     pre.dictionary is not None)
    fn = INIT_METHODS.get(cfg.method, "--method")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    overlap = compute_overlap(source_tok, target_tok)
    seconds["overlap"] = time.perf_counter() - start
    start = time.perf_counter()
    problem, split_how = build_problem(fn.needs, source, overlap, source_tok, target_tok, cfg, pre)
    seconds["inputs"] = time.perf_counter() - start
    start = time.perf_counter()
    result = fn(problem, cfg)  # the options are the method's params (TransferOptions extends MethodParams)
    seconds["method"] = time.perf_counter() - start
    return Computed(padded_rows(result.matrix, source, cfg.pad_to_multiple_of), overlap, result, split_how, seconds)


def _provenance(method: str, tied: bool, done: Computed, special_ids: dict[str, Any]) -> Provenance:
    result, overlap = done.result, done.overlap
    counts = {"copied": len(overlap.pairs), "new": len(overlap.new_ids),
              "fallback_fvt": sum(v == "fvt" for v in result.fallback.values()),
              "fallback_mean": sum(v == "mean" for v in result.fallback.values()),
              "rows": done.matrix.shape[0], **{f"{k}_id": v for k, v in special_ids.items()
                                               if not isinstance(v, list)}}
    return Provenance(method, tied, overlap.report(), partial(provenance_tokens, result, overlap, done.split_how),
                      counts, {k: round(v, 3) for k, v in done.seconds.items()})


def transfer(model, source_tok, target_tok, options: TransferOptions | str = "focus",
             prebuilt: Prebuilt | None = None):
    """Replace ``model``'s vocabulary by ``target_tok``'s, initialising new rows as ``options`` say (a
    method name stands for that method with default options).

    Changes ``model`` in place (and sets ``target_tok.chat_template`` from the source when it has
    none); returns (model, Provenance).
    """
    cfg = as_options(options)
    pre = prebuilt or Prebuilt()
    cfg.check_inputs(pre.target_space is not None, pre.source_space is not None, pre.aux_rows is not None,
                     pre.dictionary is not None)
    start = time.perf_counter()
    source, tied, d = source_rows(model, source_tok)
    read = time.perf_counter() - start
    done = compute_rows(source, source_tok, target_tok, cfg, pre)
    done.seconds["overlap"] += read
    install(model, done.matrix, tied, d)
    special_ids = retarget_specials(model, source_tok, target_tok, done.overlap)
    return model, _provenance(cfg.method, tied, done, special_ids)


# 6. Files in, folder out ---------------------------------------------------------------------------

def save_transferred(model, target_tok, out: str, overwrite: bool = False, summary: dict | None = None) -> None:
    """A plain Hugging Face folder (safetensors, tokenizer, config), written in one rename."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        target_tok.save_pretrained(tmp)
        if summary is not None:
            (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")


def transfer_files(cfg: TransferConfig) -> dict[str, Any]:
    """Load --model's tokenizer and vocabulary matrices and --tokenizer, transfer with ``cfg.method``,
    save to --out (and --provenance); returns the JSON summary (also written to --out). A safetensors
    model is edited on its files (``lean``: only the vocabulary matrices are read and rewritten, in the
    model's dtype); any other is loaded whole in float32. ``run.run_transfer`` checks the paths first."""
    from ..models import load_model, load_tokenizer, model_path, read_checkpoint
    from .lean import transfer_checkpoint

    cfg.check_inputs()
    start = time.perf_counter()
    path = model_path(cfg.model, "--model")
    ckpt = read_checkpoint(path, "--model", cfg.model) if Path(path).is_dir() else None
    source_tok = load_tokenizer(path, "--model")
    target_tok = load_tokenizer(cfg.tokenizer, "--tokenizer")
    extra = {"model": cfg.model, "tokenizer": cfg.tokenizer, "out": cfg.out, "config": cfg.to_dict()}
    if ckpt is not None:
        prov, info = transfer_checkpoint(ckpt, source_tok, target_tok, cfg.out, cfg, cfg.overwrite,
                                         extra, shown=cfg.model)
        summary = {**prov.summary(), **extra, "dtype": info["dtype"], "rewritten_files": info["rewritten"]}
    else:
        model = load_model(path, "--model")
        model, prov = transfer(model, source_tok, target_tok, cfg)
        summary = {**prov.summary(), **extra}
        save_transferred(model, target_tok, cfg.out, cfg.overwrite, summary)
    if cfg.provenance:
        atomic_write_json(cfg.provenance, prov.to_json())
    summary["seconds"]["total"] = round(time.perf_counter() - start, 3)
    return summary
