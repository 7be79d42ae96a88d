"""Ablation corpora of SynCS §3.2: the same corpus without its code-switching, and a control.

With M the corpus, M_wcs / M_wocs its documents with / without code-switching (decided by
``codeswitch measure``: a document is code-switched when one of its sentences gets a label in
``cs_labels``) and S a random sample of clean documents from a holdout pool P_wocs, |S| = |M_wcs|:

- D_cs-free  = M_wocs ∪ S            — every code-switched document replaced by a clean one;
- D_control  = (M \\ T) ∪ S           — the same number of random documents T replaced by the same S
                                        (T ⊆ M_wocs as in the paper, or any documents with control_from=any).

The pool is a ``--clean`` file (measured too: its code-switched documents, and documents also in the
corpus, are dropped), or, without
one, |M_wcs| clean documents of the corpus itself held out — then M is the corpus less that holdout,
and ``original`` is written too, so that D_original, D_cs-free and D_control have the same number of
documents (the paper's Table 2). Replacements take the replaced document's position, so a line-by-line
diff of two corpora shows exactly the substitution.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ..config import Result, StageConfig, opt
from ..errors import ConfigError, LangshiftError
from ..files import atomic_dir, atomic_write_json, atomic_write_text, read_json_lines, read_lines
from .measure import LABELS, BackTranslation, MeasureOptions, measure
from .provenance import TokenCounter

log = logging.getLogger(__name__)

CS_LABELS = [x for x in LABELS if x != "monolingual"]


@dataclass
class AblateOptions(StageConfig):
    seed: int = opt(0, "seed for the holdout, the replacements S and the control's documents T")
    control_from: Literal["clean", "any"] = opt(
        "clean", "D_control replaces random clean documents (the paper's T ⊆ M_wocs) or random documents of any kind")
    cs_labels: list[str] = opt(CS_LABELS, "sentence labels (of `codeswitch measure`) that make a document "
                                          "code-switched")
    field: str = opt("text", "JSONL input: the field holding a document's text")
    tokenizer: str | None = opt(None, "count the corpora's tokens with this tokenizer; default: whitespace words")

    def validate(self) -> None:
        super().validate()
        bad = [x for x in self.cs_labels if x not in CS_LABELS]
        if bad or not self.cs_labels:
            raise ConfigError("cs_labels", self.cs_labels, f"choose among {', '.join(CS_LABELS)}")


@dataclass
class AblateFiles(StageConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("text", "clean")

    text: str = opt(help="the corpus: UTF-8 text (one document a line) or .jsonl")
    out: str = opt(help="folder for original, cs-free and control corpora and summary.json")
    clean: str | None = opt(None, "pool of replacement documents (text or .jsonl; its code-switched ones are "
                                  "dropped); default: hold out clean documents of --text")
    overwrite: bool = opt(False, "replace an existing --out folder")
    on_bad: Literal["fail", "skip"] = opt("fail", "non-UTF-8 lines: fail or skip")


@dataclass
class AblateConfig(AblateOptions, MeasureOptions, BackTranslation, AblateFiles):
    """``codeswitch ablate``: the construction's options, ``measure``'s, the translator and the files."""


@dataclass
class AblateResult(Result):
    """``summary.json`` but the document ids (held out, replacements, replaced: in the file only)."""

    documents: int = 0
    code_switched: int = 0
    clean: int = 0
    sentence_labels: dict[str, int] = field(default_factory=dict)
    cs_labels: list[str] = field(default_factory=list)
    pool: str = ""
    pool_clean: int | None = None
    pool_code_switched: int | None = None
    pool_in_corpus: int | None = None
    tokens_added: int = 0
    corpora: dict[str, dict] = field(default_factory=dict)
    token_counter: str = "whitespace"
    seed: int = 0


@dataclass
class Doc:
    id: str
    text: str
    record: dict | None = None      # the whole JSONL object, kept in the output


# 1. Reading and writing a corpus ------------------------------------------------------------------

def read_corpus(path: str | os.PathLike, field: str = "text", param: str = "--text", on_bad: str = "fail") -> list[Doc]:
    """Documents of a text file (one a line; id = 0-based document number, as ``measure`` counts) or
    of a .jsonl file (``field`` holds the text; id = its ``id`` field, else the document number)."""
    if Path(path).suffix != ".jsonl":
        return [Doc(str(i), t) for i, t in enumerate(read_lines(path, param, on_bad=on_bad))]
    docs, seen = [], set()
    for i, (number, obj) in enumerate(read_json_lines(path, param)):
        text = obj.get(field)
        if not isinstance(text, str) or not text.strip():
            raise LangshiftError(f"{param}={str(path)!r}: line {number}: field {field!r} is "
                                 f"{'missing' if field not in obj else repr(text)}, not a non-empty string; "
                                 "pass --field naming the text field")
        doc_id = str(obj.get("id", i))
        if doc_id in seen:
            raise LangshiftError(f"{param}={str(path)!r}: line {number}: id {doc_id!r} appears twice; ids must be "
                                 "unique")
        seen.add(doc_id)
        docs.append(Doc(doc_id, text, obj))
    return docs


def render(docs: Sequence[Doc], jsonl: bool, field: str) -> str:
    if not jsonl:
        # a text corpus holds one document a line: a newline inside a JSONL document would split it
        return "".join(" ".join(d.text.splitlines()) + "\n" for d in docs)
    return "".join(json.dumps(d.record if d.record is not None else {"id": d.id, field: d.text},
                              ensure_ascii=False) + "\n" for d in docs)


# 2. The construction (pure) ----------------------------------------------------------------------

def code_switched(docs: Sequence[Doc], mcfg: MeasureOptions, cs_labels: Sequence[str], detect: Callable | None = None,
                  translator=None) -> tuple[list[bool], Counter]:
    """Whether each document is code-switched, and the count of each sentence label."""
    _, rows = measure([d.text for d in docs], mcfg, detect, translator)
    flags = [False] * len(docs)
    for r in rows:
        if r["label"] in cs_labels:
            flags[r["doc"]] = True
    return flags, Counter(r["label"] for r in rows)


def build(corpus: Sequence[Doc], cs: Sequence[bool], pool: Sequence[Doc] | None, cfg: AblateOptions) -> dict:
    """The three corpora and the bookkeeping. ``pool``: clean holdout documents, or None to hold out
    clean documents of ``corpus``."""
    wcs = [i for i, f in enumerate(cs) if f]
    clean = [i for i, f in enumerate(cs) if not f]
    k = len(wcs)
    held: list[int] = []
    if pool is None:
        if len(clean) < 2 * k:
            raise ConfigError("--clean", None, f"the corpus has {k} code-switched and only {len(clean)} clean "
                                               f"documents; holding out {k} clean ones as replacements and "
                                               f"choosing {k} for the control needs {2 * k}: give a --clean file")
        held = sorted(random.Random(f"{cfg.seed}:ablate:holdout").sample(clean, k))
        replacements = [corpus[i] for i in random.Random(f"{cfg.seed}:ablate:order").sample(held, k)]
        kept = set(held)
        clean = [i for i in clean if i not in kept]
    else:
        if len(pool) < k:
            raise ConfigError("--clean", len(pool), f"the pool holds {len(pool)} clean documents, fewer than the "
                                                    f"{k} code-switched documents to replace; give a larger pool")
        replacements = random.Random(f"{cfg.seed}:ablate:pool").sample(list(pool), k)
    out_of_m = set(held)
    original = [i for i in range(len(corpus)) if i not in out_of_m]
    candidates = clean if cfg.control_from == "clean" else original
    if len(candidates) < k:
        raise ConfigError("control_from", cfg.control_from, f"only {len(candidates)} documents to draw the control's "
                                                            f"{k} from; use control_from=any")
    control = sorted(random.Random(f"{cfg.seed}:ablate:control").sample(candidates, k))

    def substitute(targets: list[int]) -> list[Doc]:
        by = dict(zip(targets, replacements, strict=True))
        return [by.get(i, corpus[i]) for i in original]

    return {"original": [corpus[i] for i in original], "cs-free": substitute(wcs), "control": substitute(control),
            "wcs": wcs, "control_ids": control, "held": held, "replacements": replacements}


# 3. The command ----------------------------------------------------------------------------------

def run_ablate(cfg: AblateConfig, detect: Callable | None = None) -> AblateResult:
    """Write ``out/{original,cs-free,control}.{txt|jsonl}`` (the corpus's format) and ``out/summary.json``.
    ``detect``: a language-ID function instead of fastText's."""
    cfg.check_langs()
    cfg.check_output()
    translator = cfg.back_translator()
    corpus = read_corpus(cfg.text, cfg.field, "--text", cfg.on_bad)
    cs, labels = code_switched(corpus, cfg, cfg.cs_labels, detect, translator)
    pool = pool_rejected = pool_in_corpus = None
    if cfg.clean is not None:
        pool_docs = read_corpus(cfg.clean, cfg.field, "--clean", cfg.on_bad)
        pool_cs, _ = code_switched(pool_docs, cfg, cfg.cs_labels, detect, translator)
        # a holdout: a pool document that is also in the corpus would be duplicated by the substitution
        texts = {d.text for d in corpus}
        pool = [d for d, f in zip(pool_docs, pool_cs, strict=True) if not f and d.text not in texts]
        pool_rejected = sum(pool_cs)
        pool_in_corpus = sum(d.text in texts for d in pool_docs)
        ids = {d.id for d in corpus}
        for d in pool:  # a pool document must not be mistaken for a corpus document in the summary
            if d.id in ids or d.record is None:
                d.id = f"clean:{d.id}"
    parts = build(corpus, cs, pool, cfg)
    counter = TokenCounter(cfg.tokenizer)

    def tokens(docs: Sequence[Doc]) -> int:
        return sum(sum(counter.counts([d.text for d in docs[i:i + 1000]])) for i in range(0, len(docs), 1000))

    ids = [d.id for d in corpus]
    corpora = {name: {"documents": len(parts[name]), "tokens": tokens(parts[name])}
               for name in ("original", "cs-free", "control")}
    for name, key in (("cs-free", "wcs"), ("control", "control_ids")):
        corpora[name].update(replaced=[ids[i] for i in parts[key]],
                             tokens_removed=tokens([corpus[i] for i in parts[key]]))
    corpora["control"]["drawn_from"] = cfg.control_from
    summary = {
        "documents": len(corpus), "code_switched": len(parts["wcs"]), "clean": len(corpus) - len(parts["wcs"]),
        "sentence_labels": {x: labels.get(x, 0) for x in LABELS}, "cs_labels": cfg.cs_labels,
        "pool": str(cfg.clean) if cfg.clean is not None else "clean documents of --text, held out",
        "pool_clean": len(pool) if pool is not None else None, "pool_code_switched": pool_rejected,
        "pool_in_corpus": pool_in_corpus,
        "held_out": [ids[i] for i in parts["held"]],
        # S: the i-th replaced document of either corpus gets the i-th of these
        "replacements": [d.id for d in parts["replacements"]], "tokens_added": tokens(parts["replacements"]),
        "corpora": corpora, "token_counter": counter.name, "seed": cfg.seed,
    }
    jsonl = Path(cfg.text).suffix == ".jsonl"
    ext = ".jsonl" if jsonl else ".txt"
    with atomic_dir(cfg.out, cfg.overwrite) as tmp:
        for name in ("original", "cs-free", "control"):
            atomic_write_text(tmp / f"{name}{ext}", render(parts[name], jsonl, cfg.field))
        atomic_write_json(tmp / "summary.json", summary)
    log.info("ablate: %d of %d documents code-switched; D_cs-free and D_control written to %s",
             len(parts["wcs"]), len(corpus), cfg.out)
    return AblateResult(out=str(cfg.out), **{k: v for k, v in summary.items() if k not in ("held_out", "replacements")}
                        | {"corpora": {n: {k: v for k, v in c.items() if k != "replaced"} for n, c in corpora.items()}})
