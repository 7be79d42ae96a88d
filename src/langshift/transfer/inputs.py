"""The auxiliary inputs of the init methods, built from files, spaces and tokenizers.

Static look-up strings: a token is looked up by its canonical ``text`` (surface without the
word-start marker), so a word-level fastText model (cc.*, MIGRATE's continued model) and one trained
here on target-tokenised text read the same strings. Special, unused and partial-UTF-8 byte tokens
get no static vector (their text is not language); they take the methods' fallback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..files import read_lines
from ..vocab.canonical import CanonicalToken
from .config import TransferOptions

log = logging.getLogger(__name__)

_NO_TEXT_KINDS = ("special", "unused", "byte")


def lookup_text(t: CanonicalToken) -> str:
    return "" if t.kind in _NO_TEXT_KINDS else t.text.strip()


def lookup_strings(tokenizer, tokens: Sequence[CanonicalToken], form: str = "text") -> list[str]:
    """The string each token is looked up by: its canonical text, or (``form="native"``) the tokenizer's
    own token string (``Ġcasa``), for spaces trained on natively tokenised text as deepfocus trains them."""
    if form == "text":
        return [lookup_text(t) for t in tokens]
    native = tokenizer.convert_ids_to_tokens(list(range(len(tokens))))
    return ["" if t.kind in _NO_TEXT_KINDS or s is None else s for t, s in zip(tokens, native, strict=True)]


def static_matrix(space, tokens: Sequence[CanonicalToken], texts: list[str] | None = None) -> torch.Tensor:
    """(n, dim) float32 static vectors of ``tokens`` (looked up by ``texts`` when given, else by their
    canonical text); zero rows where there is none."""
    texts = [lookup_text(t) for t in tokens] if texts is None else texts
    vectors, missing = space.lookup([s or " " for s in texts])
    vectors[missing | np.array([not s for s in texts], dtype=bool)] = 0.0
    return torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))


def tokenised_sentences(tokenizer, tokens: Sequence[CanonicalToken], lines: Sequence[str],
                        form: str = "text") -> list[list[str]]:
    """Each line as the look-up strings of its tokens (FOCUS trains fastText on tokenised text)."""
    encoded = tokenizer(list(lines), add_special_tokens=False)["input_ids"]
    strings = lookup_strings(tokenizer, tokens, form)
    out = []
    for ids in encoded:
        words = [strings[i] for i in ids if i < len(tokens)]
        words = [w for w in words if w]
        if words:
            out.append(words)
    return out


def static_space(path: str | None, text: str | None, tokenizer, tokens: Sequence[CanonicalToken],
                 cfg: TransferOptions, path_param: str, text_param: str):
    """Load the fastText space at ``path``, or train one on ``text`` tokenised by ``tokenizer``.

    Training uses one worker and the config's seed: gensim is only reproducible single-threaded.
    """
    from ..static import StaticConfig, load_static, train_static

    if path is not None:
        return load_static(path, param=path_param, allow_pickle=cfg.allow_pickle)
    lines = read_lines(text, text_param)
    sentences = tokenised_sentences(tokenizer, tokens, lines, cfg.aux_token_form)
    if not sentences:
        raise ConfigError(text_param, text, "no token of this text has a look-up string; give real text")
    static_cfg = StaticConfig(dim=cfg.aux_dim, epochs=cfg.aux_epochs, min_count=1, workers=1, seed=cfg.seed)
    log.info("training a %d-dim fastText space on %d lines of %s", cfg.aux_dim, len(sentences), text)
    return train_static(sentences, static_cfg)


def read_dictionary(path: str, param: str = "--dictionary") -> list[tuple[str, str]]:
    """Word pairs 'source<TAB>target' (or two space-separated words) a line; other lines are skipped."""
    pairs, skipped = [], 0
    for line in read_lines(path, param):
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) == 2 and fields[0].strip() and fields[1].strip():
            pairs.append((fields[0].strip(), fields[1].strip()))
        else:
            skipped += 1
    if not pairs:
        raise ConfigError(param, path, "holds no 'source<TAB>target' word pair; write one pair a line")
    if skipped:
        log.warning("%s: skipped %d line(s) that are not two fields", path, skipped)
    return pairs


def dictionary_vectors(pairs: list[tuple[str, str]], source_space, target_space, param: str = "--dictionary"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Static vectors of dictionary pairs where both words have one."""
    src, miss_s = source_space.lookup([a for a, _ in pairs])
    tgt, miss_t = target_space.lookup([b for _, b in pairs])
    keep = ~(miss_s | miss_t)
    if keep.sum() < 2:
        raise ConfigError(param, f"{len(pairs)} pairs", "fewer than 2 pairs have vectors in both static spaces; "
                                                        "give a dictionary for these two languages")
    if keep.sum() < source_space.dim:
        log.warning("only %d dictionary pairs for a %d-dim alignment: the Procrustes map is under-determined",
                    int(keep.sum()), source_space.dim)
    return torch.from_numpy(src[keep]), torch.from_numpy(tgt[keep])


def aux_model_rows(name: str, target_tok, param: str = "--aux-model") -> torch.Tensor:
    """Input-embedding rows of ``name``, one per target token; its tokenizer must be the target one."""
    from transformers import AutoModel

    from ..models import load_tokenizer
    from ..resources import resolve_model

    path = resolve_model(name, param)
    if Path(path).is_dir() and any((Path(path) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        aux_tok = load_tokenizer(path, param)
        if aux_tok.get_vocab() != target_tok.get_vocab():
            raise ConfigError(param, name, "its tokenizer differs from --tokenizer; salt reads the auxiliary model's "
                                           "row for each target token id, so give a model trained with the target "
                                           "tokenizer (or use --aux-fasttext)")
    model = AutoModel.from_pretrained(path, dtype=torch.float32)
    rows = model.get_input_embeddings().weight.detach().float()
    if rows.shape[0] < len(target_tok):
        raise ConfigError(param, name, f"has {rows.shape[0]} embedding rows but the target tokenizer has "
                                       f"{len(target_tok)} tokens; give a model that uses the target tokenizer")
    return rows[: len(target_tok)].clone()


def check_same_dim(a, b, param_a: str, value_a, param_b: str) -> None:
    if a.dim != b.dim:
        raise ConfigError(param_a, value_a, f"its static space has dimension {a.dim} but {param_b}'s has {b.dim}; "
                                            "the two spaces are aligned by an orthogonal map, so give spaces of "
                                            "equal dimension (or set --aux-dim to match when training one)")


def bpe_merges(tokenizer, param: str, n_rows: int | None = None) -> torch.Tensor:
    """The tokenizer's BPE merges as (a, b, merged) id triples, in merge order; merges whose parts or
    result are not vocabulary ids (below ``n_rows`` when given) are left out."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    if model.get("type") != "BPE" or not model.get("merges"):
        raise ConfigError(param, getattr(tokenizer, "name_or_path", "") or model.get("type"),
                          f"is a {model.get('type')} tokenizer without BPE merges; --method compose composes new "
                          "tokens along BPE merges, so both tokenizers must be BPE (use fvt or focus otherwise)")
    vocab, limit = model["vocab"], n_rows if n_rows is not None else float("inf")
    triples = []
    for merge in model["merges"]:
        a, b = merge if isinstance(merge, list) else merge.split(" ", 1)
        ids = (vocab.get(a), vocab.get(b), vocab.get(a + b))
        if None not in ids and max(ids) < limit:
            triples.append(ids)
    return torch.tensor(triples, dtype=torch.long).reshape(-1, 3)
