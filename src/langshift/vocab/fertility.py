"""Fertility: how many tokens a tokenizer spends on a text sample (per word, per byte)."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigError


def fertility(tokenizer, texts: Iterable[str], batch_size: int = 1000) -> dict[str, float | int]:
    """Tokens per whitespace-separated word and per UTF-8 byte, without special tokens.

    Words are whitespace-separated strings: the same count for every tokenizer, so numbers compare
    across tokenizers (for scripts written without spaces compare ``tokens_per_byte`` instead).
    ``unk_rate`` is the share of tokens that are the unknown token (0 when the tokenizer has none).
    """
    texts = [t for t in texts if t]
    if not texts:
        raise ConfigError("texts", 0, "give at least one non-empty text to measure fertility on")
    unk = tokenizer.unk_token_id
    tokens = words = n_bytes = unks = 0
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        for text, ids in zip(batch, tokenizer(batch, add_special_tokens=False)["input_ids"], strict=True):
            tokens += len(ids)
            words += len(text.split())
            n_bytes += len(text.encode("utf-8"))
            if unk is not None:
                unks += sum(1 for i in ids if i == unk)
    return {
        "tokens_per_word": tokens / max(words, 1),
        "tokens_per_byte": tokens / n_bytes,
        "bytes_per_token": n_bytes / max(tokens, 1),
        "tokens": tokens,
        "words": words,
        "bytes": n_bytes,
        "unk_rate": unks / max(tokens, 1),
    }
