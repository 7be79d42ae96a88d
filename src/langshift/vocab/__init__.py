"""Vocabularies: canonical byte forms of tokens, byte-exact overlap, training/extending tokenizers, fertility.

- ``canonical``: every token of a fast tokenizer as (exact UTF-8 bytes, starts-a-word flag, kind), read from
  the tokenizer's backend so byte-level BPE, SentencePiece and WordPiece vocabularies compare byte for byte.
- ``overlap``: which target tokens exist in the source vocabulary (special tokens by role).
- ``tokenizer``: the tokenizer stage's front door ``run_tokenizer(cfg)`` (CLI and pipeline), over
  ``train`` (a target tokenizer keeping the source model's special tokens and chat template) and
  ``extend`` (the source tokenizer plus target-language tokens); ``build`` holds what both share.
- ``fertility``: tokens per word / per byte on a text sample.
"""

from __future__ import annotations
