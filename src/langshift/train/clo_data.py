"""CLO data: English (instruction, response) pairs → (x_en, y_en, x_t, y_t) with any translator.

Each field is translated line by line (blank lines and line breaks are kept, so lists and code layout
survive). A record with any line the translator could not translate goes to a separate
``untranslated`` list, with the fields that failed, instead of being kept half in English.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..config import Result, StageConfig, opt
from ..errors import ConfigError
from ..files import atomic_write_json, atomic_write_text
from ..translate import get_translator
from .data import read_jsonl, write_jsonl_text

log = logging.getLogger(__name__)
SFT_FIELDS = ("id", "instruction", "response")
CLO_FIELDS = ("id", "x_en", "y_en", "x_t", "y_t")  # what it writes: the English pair and its translation

# Seed 004, App. F: a system prompt "such as 'Please answer in the same language as the input,' translated into
# the target language". Our translations of that sentence (hand-written: no translator is assumed installed).
SAME_LANGUAGE = {
    "en": "Please answer in the same language as the input.",
    "es": "Por favor, responde en el mismo idioma que la entrada.",
    "fr": "Veuillez répondre dans la même langue que l'entrée.",
    "de": "Bitte antworte in derselben Sprache wie die Eingabe.",
    "pt": "Por favor, responda no mesmo idioma da entrada.",
    "it": "Per favore, rispondi nella stessa lingua dell'input.",
    "ca": "Si us plau, respon en la mateixa llengua que l'entrada.",
    "ko": "입력과 같은 언어로 답변해 주세요.",
    "zh": "请使用与输入相同的语言回答。",
    "sw": "Tafadhali jibu kwa lugha ile ile iliyotumika kwenye swali.",
}
SAME_LANGUAGE_EACH = "same-language"  # the sentence in the language of the prompts it precedes
SAME_LANGUAGE_PREFIX = SAME_LANGUAGE_EACH + ":"


def resolve_system_prompt(value: str | None, param: str = "--system-prompt", lang: str | None = None) -> str | None:
    """The system message for ``value``: None/empty → None, ``same-language:<code>`` → App. F's sentence in
    that language, ``same-language`` → that sentence in ``lang`` (the language of the prompts it precedes, so
    English prompts are not told in Spanish to answer in their own language), anything else → the text itself."""
    if not value or not value.strip():
        return None
    if value.strip() == SAME_LANGUAGE_EACH:
        if lang is None:
            raise ConfigError(param, value, "here every row gets one system prompt: name its language, e.g. "
                                            f"{SAME_LANGUAGE_PREFIX}es")
        value = SAME_LANGUAGE_PREFIX + lang
    if value.startswith(SAME_LANGUAGE_PREFIX):
        code = value[len(SAME_LANGUAGE_PREFIX):].strip().lower()
        if code not in SAME_LANGUAGE:
            raise ConfigError(param, value, f"no built-in sentence for {code!r}; use one of "
                                            f"{', '.join(SAME_LANGUAGE_PREFIX + c for c in SAME_LANGUAGE)} or give "
                                            "the sentence itself")
        return SAME_LANGUAGE[code]
    return value


def translate_records(records: list[dict], translator) -> tuple[list[dict], list[dict]]:
    """(CLO records, untranslated records) from ``{"id","instruction","response"}`` records.

    ``translator`` has ``translate_sentences(list[str]) -> list[str | None]`` (None: cannot translate).
    """
    # 1. One batch of every distinct non-blank line (the translator's cache and batching do the rest).
    lines = sorted({ln.strip() for r in records for f in ("instruction", "response")
                    for ln in r[f].split("\n") if ln.strip()})
    done = dict(zip(lines, translator.translate_sentences(lines), strict=True)) if lines else {}

    # 2. Rebuild each field from its translated lines, keeping the layout.
    def field(text: str) -> str | None:
        out = []
        for ln in text.split("\n"):
            if not ln.strip():
                out.append(ln)
                continue
            t = done.get(ln.strip())
            if t is None or not t.strip():
                return None
            out.append(ln[:len(ln) - len(ln.lstrip())] + t.strip())
        return "\n".join(out)

    kept, failed = [], []
    for r in records:
        x_t, y_t = field(r["instruction"]), field(r["response"])
        if x_t is None or y_t is None:
            failed.append({"id": r["id"], "failed_fields": [n for n, v in (("instruction", x_t), ("response", y_t))
                                                              if v is None],
                           "instruction": r["instruction"], "response": r["response"]})
            continue
        kept.append({"id": r["id"], "x_en": r["instruction"], "y_en": r["response"], "x_t": x_t, "y_t": y_t})
    return kept, failed


def untranslated_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".untranslated.jsonl")


@dataclass
class CloDataConfig(StageConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("sft", "cache")

    sft: str = opt(help="English JSONL: {id, instruction, response} per line")
    translator: str = opt(help="translator by name (see `langshift ls`)")
    target_lang: str = opt(help="target language code, e.g. es")
    out: str = opt(help="output JSONL (id, x_en, y_en, x_t, y_t); untranslated records go to "
                        "<out stem>.untranslated.jsonl, counts to <out stem>.stats.json")
    source_lang: str = opt("en", "source language code")
    translator_options: dict = opt({}, "options of the translator backend, e.g. {model: FOLDER} for seq2seq")
    cache: str | None = opt(None, "translation cache file (sqlite), reused across runs")
    overwrite: bool = opt(False, "replace --out if it exists")

    def validate(self) -> None:
        if self.source_lang == self.target_lang:
            raise ConfigError("--target-lang", self.target_lang, "is the source language too; give the target "
                                                                 f"language (not {self.source_lang!r})")


@dataclass
class CloDataResult(Result):
    records: int
    translated: int
    untranslated: int
    untranslated_file: str
    translator: str
    source_lang: str
    target_lang: str


def run_clo_data(cfg: CloDataConfig, translator=None) -> CloDataResult:
    """Read ``cfg.sft``, translate it with ``cfg.translator`` (or the ready ``translator``: an object with
    ``translate_sentences``), write ``out``, its untranslated records and its counts."""
    cfg.check_output("file")
    records = read_jsonl(cfg.sft, SFT_FIELDS, "--sft")
    if translator is None:
        translator = get_translator(cfg.translator, cfg.source_lang, cfg.target_lang, cache=cfg.cache,
                                    **cfg.translator_options)
    kept, failed = translate_records(records, translator)
    if not kept:
        raise ConfigError("--translator", cfg.translator, f"translated none of the {len(records)} records; check "
                                                          f"the translator supports {cfg.source_lang}→{cfg.target_lang}")
    atomic_write_text(cfg.out, write_jsonl_text(kept))
    atomic_write_text(untranslated_path(cfg.out), write_jsonl_text(failed))
    result = CloDataResult(str(cfg.out), len(records), len(kept), len(failed), str(untranslated_path(cfg.out)),
                           cfg.translator, cfg.source_lang, cfg.target_lang)
    atomic_write_json(Path(cfg.out).with_suffix(".stats.json"), result.to_dict())
    return result
