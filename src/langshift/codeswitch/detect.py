"""Model-based code-switching detection (seed 003, §2.2 and App. A.1) on top of ``measure``'s heuristics.

``measure`` labels every sentence from evidence it can show (language ID, word frequencies, parentheses);
that stays the default. SynCS decides the two finer questions with models, and so can this module:

1. Sentence level — is a sentence in language B a translation of the A text beside it? SynCS embeds both
   with LaBSE (following Briakou et al. 2023): cosine ≥ ``threshold`` → a translation pair → sent-annt,
   otherwise the meaning is only in B → sent-repl. Partners: the A text outside the parentheses of the
   same sentence, else the sentences just before and after it; parentheses no longer decide.
   Encoders: sentence-transformers by name (``st:sentence-transformers/LaBSE``), or a causal LM (folder,
   hub id, built-in name) whose hidden states at ``layer`` are mean-pooled as MEXA pools them
   (``evaluate.mexa.sentence_vectors``, the attention-sink first position left out). Small LMs need
   ``centre`` (each language's mean vector subtracted, over the texts of the run): on 120 Bible en–es
   verse pairs SmolLM2-135M's middle layer tells translations from neighbours with AUC 0.95 centred,
   0.71 raw.
2. Token level (``classify.py``) — sentences mixing both languages (measure's token-annt / token-repl) go to an LLM: first
   the unrelated filter (real code-switching, or a name, a loanword, a third language, noise?), then
   App. A.1's annotation/replacement prompt, verbatim but for the language names. An OpenAI-compatible
   endpoint answers in words and the last ``\\box(n)`` is parsed; a local HF chat model is asked to
   continue "Formatting result: \\box(" and the likelier digit is taken (a small model rarely keeps the
   format). A reply without a verdict keeps the heuristic label and is counted.

``score`` compares the labels with a labelled JSONL file (one document a line, ``text`` and ``label``:
one of the four types or ``none``) per document: the predicted set is the set of the four types found in
the document's sentences, ``none`` when empty (monolingual or unrelated only).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError, LangshiftError
from .classify import EndpointChooser, LocalChooser, refine_tokens
from .measure import _WORD, MeasureOptions, measure, parts, report
from .provenance import TYPES

log = logging.getLogger(__name__)
GOLD = (*TYPES, "none")
SENT = ("sent-annt", "sent-repl")


@dataclass
class DetectConfig(StageConfig):
    encoder: str | None = opt(None, "sentence level: a cross-lingual encoder deciding annotation vs replacement — "
                                    "'st:NAME' (sentence-transformers, e.g. st:sentence-transformers/LaBSE) or a "
                                    "causal LM (folder, hub id, built-in name) whose pooled hidden states serve; "
                                    "default: the parentheses heuristic")
    threshold: float = opt(0.5, "sentence level: cosine at or above which a B sentence and the A text beside it "
                                "are a translation pair")
    layer: int | None = opt(None, "causal-LM encoder: hidden_states index pooled (default: the middle block)")
    centre: bool = opt(True, "subtract each language's mean vector before the cosines (needed by small LMs)")
    min_centre: int = opt(8, "centre only when each language has at least this many texts in the run")
    llm: str | None = opt(None, "token level: classify mixed sentences with an LLM — an OpenAI-compatible URL "
                                "(http…, with --llm-model) or a local chat model (folder, hub id, built-in name); "
                                "default: the heuristic")
    llm_model: str | None = opt(None, "model name served at the --llm URL")
    llm_key_env: str | None = opt(None, "environment variable holding the --llm endpoint's API key")
    unrelated_filter: bool = opt(True, "token level: ask the LLM first whether the switch is unrelated (a name, "
                                       "loanword, third language, noise)")
    model_batch_size: int = opt(16, "texts per forward pass of a local encoder or LLM")

    def validate(self) -> None:
        super().validate()
        check_range("threshold", self.threshold, -1, 1)
        check_range("model_batch_size", self.model_batch_size, 1)
        check_range("min_centre", self.min_centre, 2)
        if self.llm and self.llm.startswith(("http://", "https://")) and not self.llm_model:
            raise ConfigError("llm_model", self.llm_model, f"name the model served at --llm {self.llm}")


# 1. Sentence encoders ----------------------------------------------------------------------------

class HiddenStateEncoder:
    """Mean-pooled hidden states of one layer of a causal LM (MEXA's weighted mean, first position out)."""

    def __init__(self, model, tokenizer, layer: int | None = None, batch_size: int = 16):
        n = model.config.num_hidden_layers
        self.layer = n // 2 if layer is None else layer
        if not 0 <= self.layer <= n:
            raise ConfigError("layer", layer, f"give a hidden_states index in 0..{n} (0 = embeddings)")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from ..evaluate.mexa import sentence_vectors

        return sentence_vectors(self.model, self.tokenizer, list(texts), self.batch_size, layers=[self.layer],
                                exclude_first=True, progress=False)[0]


class SentenceTransformerEncoder:
    def __init__(self, name: str, batch_size: int = 32):
        from ..optional import require

        st = require("sentence_transformers", "pip install sentence-transformers", "--encoder st:NAME")
        self.model, self.batch_size = st.SentenceTransformer(name), batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True),
                          dtype=np.float64)


def load_encoder(spec: str, layer: int | None = None, batch_size: int = 16):
    if spec.startswith("st:"):
        if not spec[3:]:
            raise ConfigError("encoder", spec, "name the sentence-transformers model, e.g. "
                                               "st:sentence-transformers/LaBSE")
        return SentenceTransformerEncoder(spec[3:], batch_size)
    from ..models import load_model, load_tokenizer

    return HiddenStateEncoder(load_model(spec, "--encoder"), load_tokenizer(spec, "--encoder"), layer, batch_size)


# 2. Sentence level: translation pairs --------------------------------------------------------------

def _docs(rows: list[dict]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for k, r in enumerate(rows):
        groups.setdefault(r["doc"], []).append(k)
    return list(groups.values())


def sentence_candidates(rows: list[dict], cfg: MeasureOptions) -> list[tuple[int, str, list[str]]]:
    """(row index, B text, A partner texts) for every sentence-level row. Partners have two words or more."""
    def enough(t: str) -> bool:
        return len(_WORD.findall(t)) >= 2

    out = []
    for idx in _docs(rows):
        for j, k in enumerate(idx):
            if rows[k]["label"] not in SENT:
                continue
            p = parts(rows[k]["text"])
            long = [s for _, s in p.segments if len(_WORD.findall(s)) >= cfg.sentence_words]
            if p.outside and long and rows[k]["lang"] in (None, rows[k]["doc_lang"]):
                seg, partners = long[0], [p.outside]      # "A sentence (B sentence)": beside it, in parentheses
            else:
                seg = p.segments[0][1] if not p.outside and p.segments else rows[k]["text"]
                near = [idx[i] for i in (j - 1, j + 1) if 0 <= i < len(idx)]
                partners = [parts(rows[n]["text"]).outside or rows[n]["text"] for n in near
                            if rows[n]["label"] not in (*SENT, "unrelated")]
            out.append((k, seg, [t for t in partners if enough(t)]))
    return out


def centred(vectors: np.ndarray, groups: Sequence[int], min_count: int) -> np.ndarray | None:
    """Each group's mean subtracted from its rows; None when a group has fewer than ``min_count`` rows."""
    groups = np.asarray(groups)
    out = vectors.astype(np.float64).copy()
    for g in np.unique(groups):
        if (groups == g).sum() < min_count:
            return None
        out[groups == g] -= out[groups == g].mean(axis=0)
    return out


def pair_similarity(seg_vecs: np.ndarray, partner_vecs: np.ndarray, owner: Sequence[int], n_segments: int) -> list:
    """Per segment: the highest cosine with its partners (rows of ``partner_vecs`` owned by it), or None."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    best: list[float | None] = [None] * n_segments
    if len(partner_vecs):
        sims = np.einsum("pd,pd->p", unit(partner_vecs), unit(seg_vecs)[np.asarray(owner)])
        for o, s in zip(owner, sims, strict=True):
            best[o] = float(s) if best[o] is None else max(best[o], float(s))
    return best


def refine_sentences(rows: list[dict], encoder, mcfg: MeasureOptions, dcfg: DetectConfig) -> dict:
    """Relabel sentence-level rows as sent-annt (a partner at ``threshold`` or above) or sent-repl."""
    cands = sentence_candidates(rows, mcfg)
    info = {"encoder": dcfg.encoder, "threshold": dcfg.threshold, "candidates": len(cands), "centred": False}
    if not cands:
        return info
    segs = [s for _, s, _ in cands]
    partners = [(c, t) for c, (_, _, ps) in enumerate(cands) for t in ps]
    texts = list(dict.fromkeys(segs + [t for _, t in partners]))
    where = {t: i for i, t in enumerate(texts)}
    vecs = encoder.encode(texts)
    if dcfg.centre:
        # a text is in B when it is a segment, else in A (its partners); a text in both roles keeps B
        group = [0 if t in set(segs) else 1 for t in texts]
        c = centred(vecs, group, dcfg.min_centre)
        if c is None:
            log.warning("too few sentence-level texts (< %d per language) to centre; cosines are raw",
                        dcfg.min_centre)
        else:
            vecs, info["centred"] = c, True
    seg_vecs = vecs[[where[s] for s in segs]]
    part_vecs = vecs[[where[t] for _, t in partners]] if partners else np.zeros((0, vecs.shape[1]))
    sims = pair_similarity(seg_vecs, part_vecs, [c for c, _ in partners], len(cands))
    for (k, _, _), sim in zip(cands, sims, strict=True):
        rows[k]["heuristic"] = rows[k]["label"]
        rows[k]["similarity"] = None if sim is None else round(sim, 6)
        rows[k]["label"] = "sent-annt" if sim is not None and sim >= dcfg.threshold else "sent-repl"
    return info


# 3. Token level: the LLM classifier (classify.py) -------------------------------------------------

def load_chooser(dcfg: DetectConfig):
    if dcfg.llm.startswith(("http://", "https://")):
        from ..evaluate.judge import endpoint_from_args

        return EndpointChooser(endpoint_from_args(dcfg.llm, dcfg.llm_model, dcfg.llm_key_env))
    from ..models import load_model, load_tokenizer

    return LocalChooser(load_model(dcfg.llm, "--llm"), load_tokenizer(dcfg.llm, "--llm"), dcfg.model_batch_size)


# 4. The whole detection --------------------------------------------------------------------------

def detect(documents: Sequence[str], mcfg: MeasureOptions, dcfg: DetectConfig | None = None, encoder=None,
           choose: Callable | None = None, translator=None, langid: Callable | None = None) -> tuple[dict, list[dict]]:
    """``measure`` refined by an encoder (sentence level) and an LLM (token level) when given or configured.
    Returns (report, rows) like ``measure``; the report says which detector decided each level."""
    dcfg = dcfg or DetectConfig()
    _, rows = measure(documents, mcfg, langid, translator)
    detectors: dict = {"sentence": "heuristic", "token": "heuristic"}
    if encoder is None and dcfg.encoder:
        encoder = load_encoder(dcfg.encoder, dcfg.layer, dcfg.model_batch_size)
    if encoder is not None:
        detectors["sentence"] = refine_sentences(rows, encoder, mcfg, dcfg)
    if choose is None and dcfg.llm:
        choose = load_chooser(dcfg)
    if choose is not None:
        detectors["token"] = {"llm": dcfg.llm or "given", **refine_tokens(rows, choose, mcfg.langs,
                                                                             dcfg.unrelated_filter)}
    return report(rows, mcfg) | {"detectors": detectors}, rows


# 5. Scoring against labelled documents ---------------------------------------------------------------

def read_gold(path: str | os.PathLike, param: str = "--gold") -> list[dict]:
    """Labelled documents: JSONL of {"text": str, "label": one of GOLD, ...}."""
    from ..files import read_json_lines

    out = []
    for number, obj in read_json_lines(path, param):
        if not isinstance(obj.get("text"), str) or obj.get("label") not in GOLD:
            raise LangshiftError(f"{param}={str(path)!r}: line {number} needs a string 'text' and a 'label' in "
                                 f"{', '.join(GOLD)}; got label {obj.get('label')!r}")
        out.append(obj)
    return out


def predicted_sets(rows: list[dict], n_docs: int) -> list[frozenset]:
    found: list[set] = [set() for _ in range(n_docs)]
    for r in rows:
        if r["label"] in TYPES:
            found[r["doc"]].add(r["label"])
    return [frozenset(s) for s in found]


def score(gold: Sequence[str], predicted: Sequence[frozenset], groups: Sequence[str] | None = None) -> dict:
    """Per label: precision and recall over documents with 95% Wilson intervals; ``none`` is predicted when
    no type is. ``groups`` (e.g. how each item was built) adds the share exactly right per group."""
    from ..evaluate.intervals import wilson

    if len(gold) != len(predicted) or not gold:
        raise ConfigError("gold", len(gold), f"need one gold label per document ({len(predicted)} predicted)")
    pred = [p if p else frozenset({"none"}) for p in predicted]
    out: dict = {"items": len(gold), "per_label": {}}
    for t in GOLD:
        tp = sum(g == t and t in p for g, p in zip(gold, pred, strict=True))
        n_pred = sum(t in p for p in pred)
        n_gold = sum(g == t for g in gold)

        def ratio(k, n):
            return {"value": round(k / n, 4), "ci95": [round(x, 4) for x in wilson(k, n)], "n": n} if n else None
        out["per_label"][t] = {"gold": n_gold, "predicted": n_pred, "true_positive": tp,
                               "precision": ratio(tp, n_pred), "recall": ratio(tp, n_gold)}
    exact = [p == frozenset({g}) for g, p in zip(gold, pred, strict=True)]
    out["exact"] = {"value": round(sum(exact) / len(exact), 4), "ci95": [round(x, 4) for x in
                                                                       wilson(sum(exact), len(exact))]}
    out["confusion"] = {g: dict(Counter("+".join(sorted(p)) for gg, p in zip(gold, pred, strict=True) if gg == g))
                        for g in GOLD}
    if groups is not None:
        by: dict[str, list[bool]] = {}
        for g, ok in zip(groups, exact, strict=True):
            by.setdefault(g, []).append(ok)
        out["exact_by_group"] = {g: {"n": len(v), "exact": round(sum(v) / len(v), 4)} for g, v in sorted(by.items())}
    return out
