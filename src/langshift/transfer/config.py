"""The transfer options, in three layers that each add to the one before (no field declared twice):

- ``MethodParams``: the knobs an init method reads (``fn(problem, params)``);
- ``TransferOptions``: which method, and the inputs it is built from (static spaces, texts, an aux
  model, a dictionary): what the library call ``apply.transfer(model, source_tok, target_tok, options)``
  takes;
- ``TransferConfig``: the complete stage config of ``run.run_transfer`` — the model and target
  tokenizer files, the output folder, and the candidates to choose among on held-out text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError

# 1. What a method reads ----------------------------------------------------------------------------

@dataclass
class MethodParams(StageConfig):
    k: int | None = opt(None, "neighbours per new token (wechsel: 10, salt: 32 when not given)")
    temperature: float = opt(0.1, "wechsel: softmax temperature over cosine similarities")
    ridge: float = opt(10.0, "salt: ridge strength relative to the neighbours' mean squared norm (0 = "
                             "minimum-norm least squares). 10 was best on SmolLM2 -> Spanish: small values "
                             "extrapolate to rows 10x the source norms (1e-3: 30 bits/byte)")
    mix: float = opt(0.5, "compose: weight of the merge-composed row against the FVT row (1 = composed only, "
                          "0 = FVT)")
    block_size: int = opt(1024, "new tokens per vectorised block (memory: block × overlap floats)")

    def validate(self) -> None:
        if self.k is not None:
            check_range("--k", self.k, 1)
        check_range("--temperature", self.temperature, 0, lo_open=True)
        check_range("--ridge", self.ridge, 0)
        check_range("--block-size", self.block_size, 1)
        check_range("--mix", self.mix, 0, 1)


# 2. Which method, built from which inputs ----------------------------------------------------------

@dataclass
class TransferOptions(MethodParams):
    method: str = opt("focus", "init method for new tokens: random, mean, fvt, compose, focus, migrate, wechsel, "
                               "salt (`langshift ls` lists them)")
    seed: int = opt(0, "random seed (random init; fastText training when --aux-text is given)")
    aux_fasttext: str | None = opt(None, "fastText model of the TARGET language (`static train` folder, Facebook .bin "
                                         "or .vec): the auxiliary space of focus/migrate/salt, the target space of "
                                         "wechsel")
    aux_text: str | None = opt(None, "target-language text file (one document per line): when --aux-fasttext is "
                                     "not given, a fastText space is trained on it, pre-tokenised with the target "
                                     "tokenizer so that every target token is a word with its own vector")
    aux_model: str | None = opt(None, "salt: a target-language model whose tokenizer IS the target tokenizer; its "
                                      "input-embedding rows are the auxiliary vectors")
    source_fasttext: str | None = opt(None, "wechsel: fastText model of the SOURCE language")
    source_text: str | None = opt(None, "wechsel: source-language text to train the source fastText on (pre-tokenised "
                                        "with the source tokenizer) when --source-fasttext is not given")
    allow_pickle: bool = opt(False, "also load gensim's own pickled format for --aux-fasttext/--source-fasttext. "
                                    "Unpickling runs any code the file carries: use only for files you trust, and "
                                    "convert them once with `langshift static convert`")
    dictionary: str | None = opt(None, "wechsel: bilingual dictionary, one 'source_word<TAB>target_word' pair a line")
    pad_to_multiple_of: int | None = opt(None, "pad the new embedding matrix to a multiple of this many rows "
                                               "(padding rows = mean of the source rows)")
    aux_token_form: Literal["text", "native"] = opt(
        "text", "how target/source tokens are looked up in a static space: 'text' = the token's surface without "
                "its word-start marker (word-level spaces such as cc.* and MIGRATE's, and spaces trained here); "
                "'native' = the tokenizer's own token string (Ġcasa, ▁casa), for spaces trained on natively "
                "tokenised text as deepfocus trains them")
    aux_dim: int = opt(300, "dimension of a fastText space trained from --aux-text / --source-text")
    aux_epochs: int = opt(3, "epochs of a fastText space trained from --aux-text / --source-text")

    def validate(self) -> None:
        from .methods import INIT_METHODS

        INIT_METHODS.get(self.method, "--method")  # an unknown name fails here, with close names
        super().validate()
        check_range("--aux-dim", self.aux_dim, 1)
        check_range("--aux-epochs", self.aux_epochs, 1)
        if self.pad_to_multiple_of is not None:
            check_range("--pad-to-multiple-of", self.pad_to_multiple_of, 1)

    def check_inputs(self, target_space: bool = False, source_space: bool = False, aux_rows: bool = False,
                     dictionary: bool = False) -> None:
        """The method's inputs are given, as paths in these options or as objects already built."""
        from .methods import INIT_METHODS

        needs = INIT_METHODS.get(self.method, "--method").needs
        has_target = target_space or self.aux_fasttext is not None or self.aux_text is not None
        if "static" in needs and not has_target:
            raise ConfigError("--method", self.method, "needs a target-language static space: give --aux-fasttext "
                                                       "PATH or --aux-text FILE to train one")
        if "aux" in needs and not (aux_rows or self.aux_model is not None or has_target):
            raise ConfigError("--method", self.method, "needs auxiliary vectors: give --aux-model (a model using the "
                                                       "target tokenizer), --aux-fasttext or --aux-text")
        if "dictionary" in needs and not (dictionary or self.dictionary is not None):
            raise ConfigError("--dictionary", None, f"--method {self.method} aligns two static spaces through a "
                                                    "bilingual dictionary; give a 'source<TAB>target' word-pair file")
        if "source_static" in needs and not (source_space or self.source_fasttext or self.source_text):
            raise ConfigError("--source-fasttext", None, f"--method {self.method} needs a source-language static "
                                                         "space; give --source-fasttext PATH or --source-text FILE")


class Candidate(str):
    """A candidate on the command line: an init method's name (a recipe may give a mapping instead, which
    the recipe's type check passes through unchanged)."""


# 3. The stage: files in, a model folder out, one method or the best of several --------------------

@dataclass
class TransferConfig(TransferOptions):
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "tokenizer", "aux_fasttext", "aux_text", "aux_model",
                                         "source_fasttext", "source_text", "dictionary", "select_text")

    model: str = opt(help="source model: a Hugging Face folder, a hub id, a .gguf file (or a folder holding one; "
                          "dequantised once into the cache), or the built-in name smollm2-135m-instruct (its own "
                          "tokenizer is the source tokenizer)", kw_only=True)
    tokenizer: str = opt(help="target tokenizer: a tokenizer folder (tokenizer.json) or a model folder",
                         kw_only=True)
    out: str = opt(help="output folder for the new model (safetensors, tokenizer, config)", kw_only=True)
    overwrite: bool = opt(False, "replace --out if it exists")
    provenance: str | None = opt(None, "write a JSON file saying how each target token's row was made")
    check_specials: bool = opt(True, "refuse a target tokenizer that cannot write the model's bos/eos/pad or chat "
                                     "markers as one token, before the model loads; --no-check-specials transfers "
                                     "anyway (e.g. a published target-language tokenizer, as MIGRATE uses): the "
                                     "new config then has no id for those roles")
    candidates: list[Candidate] = opt([], "init methods to try side by side (e.g. migrate salt focus mean); the model with "
                                    "the lowest bits per byte on --select-text is kept and --method is not used. In a "
                                    "recipe an entry may be a mapping {method: NAME, FIELD: VALUE} changing this "
                                    "stage's options for that candidate (an input field only to null, e.g. "
                                    "aux_fasttext: null). They are made in OUT.candidates/; a candidate finished by "
                                    "an interrupted run with the same options is kept")
    select_text: str | None = opt(None, "held-out target-language text (one document a line) that picks among the "
                                        "candidates; keep it apart from every training text")
    select_limit: int | None = opt(None, "score the candidates on the first N lines of --select-text only")

    def validate(self) -> None:
        from .methods import INIT_METHODS

        super().validate()
        if not isinstance(self.candidates, list):
            raise ConfigError("--candidates", self.candidates, "give a list of init methods")
        self.candidates = [str(c) if isinstance(c, str) else c for c in self.candidates]
        names = [candidate_fields(c)["method"] for c in self.candidates]
        for name in names:
            INIT_METHODS.get(name, "--candidates")
        if len(set(names)) != len(names):
            raise ConfigError("--candidates", names, "list each method once")
        if self.candidates and self.select_text is None:
            raise ConfigError("--select-text", None, "candidates are picked by bits per byte on held-out text; give "
                                                     "--select-text FILE (recipe: inputs.select_text)")
        if self.select_limit is not None:
            check_range("--select-limit", self.select_limit, 1)


# what a candidate may not change: where things go and how candidates are chosen
_CANDIDATE_FIXED = ("model", "tokenizer", "out", "overwrite", "provenance", "candidates", "select_text",
                    "select_limit", "check_specials")


def candidate_fields(entry: Any) -> dict[str, Any]:
    """``focus`` or ``{method: focus, aux_fasttext: null, …}`` → the fields that candidate changes."""
    if isinstance(entry, str):
        return {"method": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("method"), str):
        raise ConfigError("--candidates", entry, "give a method name or a mapping with a 'method' name")
    fields = {f.name for f in dataclasses.fields(TransferConfig)}
    for key, value in entry.items():
        if key not in fields or key in _CANDIDATE_FIXED:
            raise ConfigError(f"--candidates.{key}", value, "not a field a candidate can change; use method and "
                                                            "the transfer options")
        if key in TransferConfig.INPUTS and value is not None:
            raise ConfigError(f"--candidates.{key}", value, "an input can only be switched off (null) per "
                                                            "candidate; set the path on the stage itself")
    return dict(entry)
