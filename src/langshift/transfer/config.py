"""``TransferConfig``: every option of the transfer stage, with help text and cross-field checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError


@dataclass
class TransferConfig(StageConfig):
    model: str | None = opt(None, "source model: a Hugging Face folder, a hub id, a .gguf file (or a folder "
                                  "holding one; dequantised once into the cache), or the built-in name "
                                  "smollm2-135m-instruct (its own tokenizer is the source tokenizer)")
    tokenizer: str | None = opt(None, "target tokenizer: a tokenizer folder (tokenizer.json) or a model folder")
    out: str | None = opt(None, "output folder for the new model (safetensors, tokenizer, config)")
    method: str = opt("focus", "init method for new tokens: random, mean, fvt, compose, focus, migrate, wechsel, salt "
                               "(`langshift ls` lists them)")
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
    k: int | None = opt(None, "neighbours per new token (wechsel: 10, salt: 32 when not given)")
    temperature: float = opt(0.1, "wechsel: softmax temperature over cosine similarities")
    ridge: float = opt(10.0, "salt: ridge strength relative to the neighbours' mean squared norm (0 = "
                             "minimum-norm least squares). 10 was best on SmolLM2 -> Spanish: small values "
                             "extrapolate to rows 10x the source norms (1e-3: 30 bits/byte)")
    mix: float = opt(0.5, "compose: weight of the merge-composed row against the FVT row (1 = composed only, "
                          "0 = FVT)")
    block_size: int = opt(1024, "new tokens per vectorised block (memory: block × overlap floats)")
    pad_to_multiple_of: int | None = opt(None, "pad the new embedding matrix to a multiple of this many rows "
                                               "(padding rows = mean of the source rows)")
    aux_token_form: Literal["text", "native"] = opt(
        "text", "how target/source tokens are looked up in a static space: 'text' = the token's surface without "
                "its word-start marker (word-level spaces such as cc.* and MIGRATE's, and spaces trained here); "
                "'native' = the tokenizer's own token string (Ġcasa, ▁casa), for spaces trained on natively "
                "tokenised text as deepfocus trains them")
    aux_dim: int = opt(300, "dimension of a fastText space trained from --aux-text / --source-text")
    aux_epochs: int = opt(3, "epochs of a fastText space trained from --aux-text / --source-text")
    provenance: str | None = opt(None, "write a JSON file saying how each target token's row was made")
    overwrite: bool = opt(False, "replace --out if it exists")

    def validate(self) -> None:
        from .methods import INIT_METHODS

        INIT_METHODS.get(self.method, "--method")  # an unknown name fails here, with close names
        if self.k is not None:
            check_range("--k", self.k, 1)
        check_range("--temperature", self.temperature, 0, lo_open=True)
        check_range("--ridge", self.ridge, 0)
        check_range("--block-size", self.block_size, 1)
        check_range("--mix", self.mix, 0, 1)
        check_range("--aux-dim", self.aux_dim, 1)
        check_range("--aux-epochs", self.aux_epochs, 1)
        if self.pad_to_multiple_of is not None:
            check_range("--pad-to-multiple-of", self.pad_to_multiple_of, 1)

    def check_inputs(self, target_space: bool = False, source_space: bool = False, aux_rows: bool = False,
                     dictionary: bool = False) -> None:
        """The method's inputs are given, as paths in this config or as objects already built."""
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
