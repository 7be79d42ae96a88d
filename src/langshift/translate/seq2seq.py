"""Neural MT through transformers: NLLB-200, M2M100 or Marian checkpoints, batched on any device.

Language codes differ per family and are derived from ISO codes (or given as-is):
NLLB ``spa_Latn`` (ISO 639-3 + script), M2M100 ``__es__`` (ISO 639-1 token), Marian: one model per
pair, except multi-target models whose vocabulary has ``>>spa<<`` tokens (prefixed to the source).
Words are translated as one-word inputs (no tags; case follows the source word).
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from ..errors import ConfigError, LangshiftError
from ..optional import require
from .apertium import match_case
from .base import TRANSLATORS, Translator

FAMILIES = ("auto", "nllb", "m2m100", "marian")


def nllb_code(lang: str) -> str:
    """``es`` → ``spa_Latn`` (a code already in NLLB form is returned unchanged)."""
    if "_" in lang and len(lang.split("_")[1]) == 4:
        return lang
    import langcodes

    tag = langcodes.Language.get(lang)
    script = tag.maximize().script or "Latn"
    return f"{tag.to_alpha3()}_{script}"


def family_codes(family: str, lang: str) -> list[str]:
    """Candidate vocabulary tokens that name ``lang`` in ``family`` (first that exists wins)."""
    import langcodes

    if family == "nllb":
        return [nllb_code(lang)]
    if family == "m2m100":
        base = langcodes.Language.get(lang).language or lang
        return [f"__{base}__", base]
    a3 = langcodes.Language.get(lang).to_alpha3()
    return [f">>{a3}<<", f">>{lang}<<"]


@TRANSLATORS.register("seq2seq")
class Seq2SeqTranslator(Translator):
    """A transformers encoder-decoder MT model (NLLB, M2M100, Marian) from a local folder or hub cache."""

    name = "seq2seq"

    def __init__(self, source_lang: str, target_lang: str, model: str = "", family: str = "auto", device: str = "auto",
                 batch_size: int = 32, num_beams: int = 1, max_new_tokens: int = 256):
        super().__init__(source_lang, target_lang)
        if not model:
            raise ConfigError("model", model, "give a local folder or hub id of an NLLB, M2M100 or Marian model")
        if family not in FAMILIES:
            raise ConfigError("family", family, f"use one of {', '.join(FAMILIES)}")
        if batch_size < 1:
            raise ConfigError("batch_size", batch_size, "must be at least 1")
        transformers = require("transformers", "pip install transformers", "the seq2seq translator")
        torch = require("torch", "pip install torch", "the seq2seq translator")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(model)
            self.model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise ConfigError("model", model, f"cannot load a seq2seq model and tokenizer from it ({exc})") from exc
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model.to(device).eval()
        self.model_name, self.batch_size = model, batch_size
        self.num_beams, self.max_new_tokens = num_beams, max_new_tokens
        self.family = self._detect_family() if family == "auto" else family
        self.batches = 0  # generate() calls, for tests and progress reports
        self._setup_languages()

    # --- 1. Which family, which language tokens --------------------------------------------------
    def _detect_family(self) -> str:
        kind = getattr(self.model.config, "model_type", "")
        if kind == "marian":
            return "marian"
        if "nllb" in type(self.tokenizer).__name__.lower() or "eng_Latn" in self.tokenizer.get_vocab():
            return "nllb"
        if kind == "m2m_100":
            return "m2m100"
        raise ConfigError("family", "auto", f"cannot tell the family of a {kind!r} model; pass family=nllb, "
                                            "m2m100 or marian")

    def _find_token(self, lang: str, param: str) -> str | None:
        vocab = self.tokenizer.get_vocab()
        for code in family_codes(self.family, lang):
            if code in vocab:
                return code
        if self.family == "marian":
            return None  # a one-pair Marian model needs no language token
        known = sorted(t for t in vocab if (t.startswith("__") and t.endswith("__")) or
                       (len(t) == 8 and t[3] == "_"))[:40]
        raise ConfigError(param, lang, f"the {self.family} model {self.model_name!r} has no token for it "
                                       f"(tried {family_codes(self.family, lang)}); it knows e.g. {', '.join(known)}")

    def _setup_languages(self) -> None:
        self.target_token = self._find_token(self.target_lang, "target_lang")
        self.source_token = self._find_token(self.source_lang, "source_lang") if self.family != "marian" else None
        if hasattr(self.tokenizer, "src_lang") and self.source_token:
            # NLLB/M2M100 tokenizers add the source language token themselves
            self.tokenizer.src_lang = self.source_token if self.family == "nllb" else self.source_token.strip("_")
            self._prefix = ""
        elif self.family == "marian":
            self._prefix = f"{self.target_token} " if self.target_token else ""
        else:
            self._prefix = f"{self.source_token} "  # a plain tokenizer: write the source token ourselves

    def options(self) -> dict[str, Any]:
        return {"model": self.model_name, "family": self.family, "num_beams": self.num_beams,
                "max_new_tokens": self.max_new_tokens}

    # --- 2. Batched generation -----------------------------------------------------------------
    def translate_sentences(self, sentences: list[str]) -> list[str | None]:
        import torch

        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # similar lengths pad less
        out: list[str | None] = [None] * len(sentences)
        gen_kwargs: dict[str, Any] = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens}
        if self.family != "marian":
            gen_kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(self.target_token)
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc="seq2seq translate", disable=len(starts) <= 1, unit="batch"):
            idx = order[start:start + self.batch_size]
            batch = self.tokenizer([self._prefix + sentences[i] for i in idx], return_tensors="pt",
                                   padding=True, truncation=True).to(self.device)
            batch.pop("token_type_ids", None)
            try:
                with torch.inference_mode():
                    generated = self.model.generate(**batch, **gen_kwargs)
            except RuntimeError as exc:
                raise LangshiftError(f"seq2seq generation failed on {self.device} ({exc}); lower batch_size "
                                     f"(now {self.batch_size}) or use device=cpu") from exc
            self.batches += 1
            for i, text in zip(idx, self.tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
                out[i] = text.strip() or None
        return out

    def translate_words(self, words: list[str], tags: list[str] | None = None) -> list[str | None]:
        found = self.translate_sentences(words)
        return [match_case(w, t) if t else None for w, t in zip(words, found, strict=True)]
