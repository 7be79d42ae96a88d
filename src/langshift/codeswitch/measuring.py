"""The front doors of ``codeswitch measure`` and ``codeswitch score``: files in, label counts (and scores) out.

``run_measure(MeasureConfig)``: a corpus (text, .jsonl, .parquet) → the report of ``measure.report`` and one
label per sentence; with an encoder or an LLM (``detect.DetectConfig``) the models decide (``detect.detect``).
``run_score(ScoreConfig)``: labelled documents (``detect.read_gold``) → precision and recall per type.
Each config is complete: the options of ``measure`` and ``detect``, the annotation check's translator,
the files in and out. The outputs are checked against the inputs before anything is read.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..config import Result, StageConfig, opt
from ..files import atomic_write_json
from .detect import DetectConfig, detect, predicted_sets, read_gold, score
from .measure import BackTranslation, MeasureOptions, iter_rows, labelled, report
from .provenance import atomic_stream, read_documents, write_rows

# 1. measure ------------------------------------------------------------------------------------------


@dataclass
class MeasureFiles(StageConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("text",)

    text: list[str] = opt(help="UTF-8 text files (one document per line), .jsonl or .parquet")
    out: str | None = opt(None, "write the report as JSON here")
    labels_out: str | None = opt(None, "write one JSON line per sentence with its label")
    overwrite: bool = opt(False, "replace existing outputs")
    on_bad: Literal["fail", "skip"] = opt("fail", "non-UTF-8 lines: fail or skip")

    def validate(self) -> None:
        super().validate()
        if isinstance(self.text, str):  # one path
            self.text = [self.text]


@dataclass
class MeasureConfig(MeasureOptions, DetectConfig, BackTranslation, MeasureFiles):
    """``codeswitch measure``: the heuristics' options, the detectors', the translator and the files."""


@dataclass
class MeasureResult(Result):
    """The report written to ``out`` (counts, shares and examples per label), with the paths written."""

    labels_out: str | None = None
    documents: int = 0
    sentences: int = 0
    langs: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)
    code_switched: int = 0
    code_switched_shares: dict[str, float] = field(default_factory=dict)
    documents_with_code_switching: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    detectors: dict[str, Any] | None = None     # set when an encoder or an LLM decided a level


def run_measure(cfg: MeasureConfig) -> MeasureResult:
    """Files in read into an Arrow dataset, labels streamed out: no list of the corpus. With an encoder or
    an LLM, ``detect`` decides (it holds the corpus)."""
    from ..engine import load_corpus

    cfg.check_langs()
    cfg.check_output_files("out", "labels_out")
    translator = cfg.back_translator()
    if cfg.encoder or cfg.llm:
        result, rows = detect(read_documents(cfg.text, cfg.on_bad), cfg, cfg, translator=translator)
        if cfg.labels_out is not None:
            write_rows(rows, cfg.labels_out, cfg.overwrite, "--labels-out")
    else:
        with tempfile.TemporaryDirectory(prefix="langshift-measure.") as work, contextlib.ExitStack() as stack:
            fh = (stack.enter_context(atomic_stream(cfg.labels_out, cfg.overwrite, "--labels-out"))
                  if cfg.labels_out else None)

            def streamed():
                for r in iter_rows(labelled(load_corpus(cfg.text, work, "--text", cfg.on_bad), cfg, None,
                                            translator is not None, work), cfg, translator):
                    if fh is not None:
                        fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                    yield r

            result = report(streamed(), cfg)
    if cfg.out is not None:
        atomic_write_json(cfg.out, result)
    return MeasureResult(out=cfg.out, labels_out=cfg.labels_out, **result)


# 2. score --------------------------------------------------------------------------------------------

@dataclass
class ScoreFiles(StageConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("gold",)

    gold: str = opt(help="JSONL, one document a line: {\"text\": ..., \"label\": "
                         "token-repl|token-annt|sent-repl|sent-annt|none}")
    out: str | None = opt(None, "write the scores as JSON here")
    rows_out: str | None = opt(None, "write one JSON line per sentence with its label and evidence")
    overwrite: bool = opt(False, "replace existing outputs")


@dataclass
class ScoreConfig(MeasureOptions, DetectConfig, BackTranslation, ScoreFiles):
    """``codeswitch score``: the detection of ``codeswitch measure`` on labelled documents."""


@dataclass
class ScoreResult(Result):
    """The scores written to ``out`` but the confusion table (in the file only)."""

    rows_out: str | None = None
    gold: str = ""
    detectors: dict[str, Any] = field(default_factory=dict)
    measure: dict[str, Any] = field(default_factory=dict)
    detect: dict[str, Any] = field(default_factory=dict)
    items: int = 0
    per_label: dict[str, Any] = field(default_factory=dict)
    exact: dict[str, Any] = field(default_factory=dict)
    exact_by_group: dict[str, Any] | None = None
    segments: dict[str, Any] = field(default_factory=dict)


def run_score(cfg: ScoreConfig, encoder=None, choose=None) -> ScoreResult:
    """Detect on the labelled documents and score per label; writes the report (and the rows) when asked.
    ``encoder`` / ``choose``: ready-made detectors instead of those the config names."""
    cfg.check_langs()
    cfg.check_output_files("out", "rows_out")
    gold = read_gold(cfg.gold)
    rep, rows = detect([g["text"] for g in gold], cfg, cfg, encoder, choose, cfg.back_translator())
    groups = [str(g.get("group", g["label"])) for g in gold]
    result = {"gold": str(cfg.gold), "detectors": rep["detectors"], "measure": cfg.part(MeasureOptions),
              "detect": cfg.part(DetectConfig),
              **score([g["label"] for g in gold], predicted_sets(rows, len(gold)), groups),
              "segments": {"counts": rep["counts"], "code_switched_shares": rep["code_switched_shares"]}}
    if cfg.rows_out is not None:
        write_rows(rows, cfg.rows_out, cfg.overwrite, "--rows-out")
    if cfg.out is not None:
        atomic_write_json(cfg.out, result)
    return ScoreResult(out=cfg.out, rows_out=cfg.rows_out, **{k: v for k, v in result.items() if k != "confusion"})


__all__ = ["MeasureConfig", "MeasureResult", "ScoreConfig", "ScoreResult", "run_measure", "run_score"]
