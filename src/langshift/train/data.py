"""Training data: reading JSONL records, packing text into fixed-length blocks, chat formatting.

Every reader names the file, the line and the field that is wrong; nothing is skipped silently.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, LangshiftError
from ..files import read_json_lines, read_lines

# 1. JSONL records ------------------------------------------------------------------------------


def read_jsonl(path: str | os.PathLike, fields: Sequence[str], param: str = "--data") -> list[dict]:
    """Records of a JSONL file; each must be an object whose ``fields`` are non-empty strings.

    ``id`` may be a string or an integer; a record without ``id`` gets its line number as id.
    """
    records, seen = [], set()
    for number, rec in read_json_lines(path, param):
        for field in fields:
            value = rec.get(field)
            if field == "id" and value is None:
                rec["id"] = value = str(number)
            ok = isinstance(value, (str, int)) if field == "id" else isinstance(value, str) and value.strip()
            if not ok:
                problem = "is missing" if field not in rec else f"is {value!r}, not a non-empty string"
                raise LangshiftError(f"{param}={str(path)!r}: line {number}: field {field!r} {problem}; every line "
                                     f"needs the fields {', '.join(fields)}")
        rec["id"] = str(rec["id"])
        if rec["id"] in seen:
            raise LangshiftError(f"{param}={str(path)!r}: line {number}: id {rec['id']!r} appears twice; ids "
                                 "must be unique")
        seen.add(rec["id"])
        records.append(rec)
    return records


def write_jsonl_text(records: Sequence[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


# 2. Packing text for causal-LM training --------------------------------------------------------


def pack_ids(documents: Sequence[Sequence[int]], seq_len: int, separator: int | None) -> list[list[int]]:
    """Concatenate token-id documents (``separator`` between them) and cut into ``seq_len`` blocks.

    The last, shorter remainder is dropped so that every block has the same length (no padding).
    """
    if seq_len < 2:
        raise ConfigError("--seq-len", seq_len, "must be at least 2")
    stream: list[int] = []
    for doc in documents:
        stream.extend(doc)
        if separator is not None:
            stream.append(separator)
    return [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]


# Names under which tokenizers of common families store their end-of-document token.
DOCUMENT_END_NAMES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|end_of_document|>")


def document_separator(tokenizer) -> int | None:
    """The token put between packed documents: the pre-training end-of-document token.

    A chat model's ``eos_token`` is often its end-of-turn marker (SmolLM2/Qwen ``<|im_end|>``, Llama 3
    ``<|eot_id|>``); packing with it teaches the model that a turn ends anywhere, and after LAPT it
    answers every chat prompt with an empty turn. So when the EOS token appears in the chat template, a
    special token named like an end-of-document token that the template does not use is taken instead;
    when there is none (e.g. Mistral, whose template ends turns with its only EOS ``</s>``), EOS stays.
    """
    eos = tokenizer.eos_token_id
    template = getattr(tokenizer, "chat_template", None)
    template = template if isinstance(template, str) else ""
    if eos is None or tokenizer.eos_token not in template:
        return eos
    added = getattr(tokenizer, "added_tokens_decoder", {})  # id → AddedToken: the tokens that surely exist
    specials = {str(tok): tid for tid, tok in added.items()}
    for name in DOCUMENT_END_NAMES:
        if name in specials and name not in template:
            return specials[name]
    return eos


def pack_texts(tokenizer, texts: Sequence[str], seq_len: int) -> list[list[int]]:
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return pack_ids(ids, seq_len, document_separator(tokenizer))


def mix_blocks(mono: list[list[int]], mixed: list[list[int]], ratio: float, seed: int) -> tuple[list[list[int]], dict]:
    """Blocks where a share ``ratio`` comes from ``mixed`` (code-switched) and the rest from ``mono``.

    The largest set with exactly that share is taken (the scarcer source is used whole), then shuffled.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError("--mix-ratio", ratio, "is the share of code-switched blocks; give a value in [0, 1]")
    rng = random.Random(seed)
    if ratio == 0.0 or not mixed:
        n_mix, n_mono = 0, len(mono)
    elif ratio == 1.0 or not mono:
        n_mix, n_mono = len(mixed), 0
    else:
        total = int(min(len(mono) / (1 - ratio), len(mixed) / ratio))
        n_mix = min(len(mixed), round(total * ratio))
        n_mono = min(len(mono), total - n_mix)
    blocks = rng.sample(mono, n_mono) + rng.sample(mixed, n_mix)
    rng.shuffle(blocks)
    return blocks, {"blocks": len(blocks), "monolingual_blocks": n_mono, "code_switched_blocks": n_mix,
                    "code_switched_share": (n_mix / len(blocks)) if blocks else 0.0}


# 3. Chat formatting ----------------------------------------------------------------------------


def chat_prompt(tokenizer, instruction: str) -> str:
    """The model's chat template around one user turn, ending where the assistant starts."""
    if not getattr(tokenizer, "chat_template", None):
        raise LangshiftError("the tokenizer has no chat template; give an instruction-tuned model's tokenizer or "
                             "set tokenizer.chat_template")
    return tokenizer.apply_chat_template([{"role": "user", "content": instruction}], add_generation_prompt=True,
                                         tokenize=False)


def chat_pair_ids(tokenizer, instruction: str, response: str, max_len: int) -> tuple[list[int], int]:
    """Token ids of prompt + response under the chat template, and the prompt's length.

    The response part is what the template adds after the generation prompt (including its end-of-turn
    token). Over-long pairs keep the start of the prompt's budget and cut the response's end.
    """
    prompt = chat_prompt(tokenizer, instruction)
    full = tokenizer.apply_chat_template([{"role": "user", "content": instruction},
                                          {"role": "assistant", "content": response}], tokenize=False)
    if not full.startswith(prompt):  # templates that rewrite earlier turns: fall back to plain appending
        full = prompt + response + (tokenizer.eos_token or "")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    if len(p_ids) >= max_len:  # keep at least a few response tokens: cut the prompt's start
        p_ids = p_ids[-(max_len // 2):]
    return (p_ids + r_ids)[:max_len], len(p_ids)


def load_texts(path: str | os.PathLike, param: str) -> list[str]:
    """Lines of a text file, or the ``text`` field of a JSONL file (by suffix)."""
    if Path(path).suffix == ".jsonl":
        return [r["text"] for r in read_jsonl(path, ["text"], param)]
    return read_lines(path, param)
