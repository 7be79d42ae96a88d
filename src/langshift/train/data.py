"""Training data: reading JSONL records, packing text into fixed-length blocks, chat formatting.

Every reader names the file, the line and the field that is wrong; nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Sequence
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
    return list(pack_stream(documents, seq_len, separator))


def pack_stream(documents: Iterable[Sequence[int]], seq_len: int, separator: int | None) -> Iterator[list[int]]:
    """``pack_ids`` as a stream: the same blocks, holding at most one block and one document at a time."""
    if seq_len < 2:
        raise ConfigError("--seq-len", seq_len, "must be at least 2")
    buf: list[int] = []
    for doc in documents:
        buf.extend(doc)
        if separator is not None:
            buf.append(separator)
        if len(buf) >= seq_len:
            n = len(buf) - len(buf) % seq_len
            for i in range(0, n, seq_len):
                yield buf[i:i + seq_len]
            buf = buf[n:]


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


def mix_indices(n_mono: int, n_mixed: int, ratio: float, seed: int) -> tuple[list[tuple[int, int]], dict]:
    """(source, index) of the blocks of a mix where a share ``ratio`` comes from the code-switched blocks
    (source 1) and the rest from the monolingual ones (source 0), and its counts.

    The largest set with exactly that share is taken (the scarcer source is used whole), then shuffled.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError("--mix-ratio", ratio, "is the share of code-switched blocks; give a value in [0, 1]")
    rng = random.Random(seed)
    if ratio == 0.0 or not n_mixed:
        n_mix, n_keep = 0, n_mono
    elif ratio == 1.0 or not n_mono:
        n_mix, n_keep = n_mixed, 0
    else:
        total = int(min(n_mono / (1 - ratio), n_mixed / ratio))
        n_mix = min(n_mixed, round(total * ratio))
        n_keep = min(n_mono, total - n_mix)
    # random.sample picks positions from the population's length alone: sampling range(n) picks the blocks
    # that sampling the list of blocks would
    order = [(0, i) for i in rng.sample(range(n_mono), n_keep)] + [(1, i) for i in rng.sample(range(n_mixed), n_mix)]
    rng.shuffle(order)
    return order, {"blocks": len(order), "monolingual_blocks": n_keep, "code_switched_blocks": n_mix,
                   "code_switched_share": (n_mix / len(order)) if order else 0.0}


def curriculum_indices(n_mono: int, n_mixed: int, early_blocks: int, ratio: float,
                       seed: int) -> tuple[list[tuple[int, int]], dict]:
    """(source, index) of blocks where the code-switched ones (source 1) come only among the first
    ``early_blocks``, as a share ``ratio`` of them, and every monolingual block (source 0) fills the rest; and
    its counts. Each part is shuffled on its own: the order between them is the curriculum, so the blocks must
    be read in this order.

    When the code-switched blocks are too few for ``early_blocks`` the early part shrinks and keeps the share.
    """
    if not 0.0 < ratio <= 1.0:
        raise ConfigError("--mix-ratio", ratio, "with --mix-steps is the share of code-switched blocks in those "
                                                "steps; give a value in (0, 1]")
    rng = random.Random(seed)
    wanted = round(early_blocks * ratio)
    n_mix = min(n_mixed, wanted)
    early_mono = min(n_mono, early_blocks - wanted if n_mix == wanted else round(n_mix * (1 - ratio) / ratio))
    mono = rng.sample(range(n_mono), n_mono)
    early = [(0, i) for i in mono[:early_mono]] + [(1, i) for i in rng.sample(range(n_mixed), n_mix)]
    rng.shuffle(early)
    order = early + [(0, i) for i in mono[early_mono:]]
    return order, {"blocks": len(order), "monolingual_blocks": n_mono, "code_switched_blocks": n_mix,
                   "code_switched_share": (n_mix / len(order)) if order else 0.0,
                   "early_blocks": len(early), "early_code_switched_share": (n_mix / len(early)) if early else 0.0}


def mix_blocks(mono: list[list[int]], mixed: list[list[int]], ratio: float, seed: int) -> tuple[list[list[int]], dict]:
    """Blocks where a share ``ratio`` comes from ``mixed`` (code-switched) and the rest from ``mono``
    (``mix_indices`` over lists)."""
    order, stats = mix_indices(len(mono), len(mixed), ratio, seed)
    return [(mixed if src else mono)[i] for src, i in order], stats


# 3. Packing on 🤗 datasets: streamed in, tokenised with Dataset.map, packed as a stream, cached as Arrow -----

def _file_key(path: str | os.PathLike, tokenizer, seq_len: int, separator: int | None) -> str:
    """Cache key: the tokenizer (its serialised form), seq_len, separator and the file (path, size, mtime)."""
    st = os.stat(path)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        tok = hashlib.sha256(backend.to_str().encode()).hexdigest()
    else:
        from datasets.fingerprint import Hasher

        tok = Hasher.hash(tokenizer)
    ident = [1, type(tokenizer).__name__, tok, seq_len, separator, str(Path(path).resolve()), st.st_size,
             st.st_mtime_ns]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:20]


def _document_rows(path: str, param: str) -> Iterator[dict]:
    from ..engine import iter_documents

    for text in iter_documents(path, param):
        yield {"text": text}


class _Tokenise:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, batch: dict) -> dict:
        return {"ids": self.tokenizer(batch["text"], add_special_tokens=False)["input_ids"]}


def block_dataset(path: str | os.PathLike, tokenizer, seq_len: int, cache: str | os.PathLike, num_proc: int = 1,
                  param: str = "--text", batch_size: int = 1000):
    """The blocks ``pack_texts`` makes of the documents of ``path`` (text, .jsonl or .parquet), as a
    memory-mapped Arrow dataset (column ``input_ids``): no step holds the corpus in memory.

    num_proc 1: the file is read as an IterableDataset and tokenised batch by batch as it streams. num_proc
    N: the file becomes an Arrow dataset on disk, tokenised with Dataset.map(num_proc=N). Either way the
    token ids stream into the packer and the blocks into an Arrow file under ``cache``, keyed by tokenizer,
    seq_len and file: a rerun (a resumed training) reuses it, and a killed run leaves no partial file."""
    import datasets as ds
    import pyarrow as pa

    from .. import engine

    if not Path(path).is_file():
        raise ConfigError(param, str(path), "no such file; give a UTF-8 text, .jsonl or .parquet file")
    separator = document_separator(tokenizer)
    key = _file_key(path, tokenizer, seq_len, separator)
    cache = Path(cache)
    final = cache / f"blocks-{key}.arrow"
    if not final.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with engine._quiet(), engine.our_generator_errors():
            if num_proc > 1:
                corpus = engine.load_corpus([path], cache / f"corpus-{key}", param)
                docs = corpus.map(_Tokenise(tokenizer), batched=True, batch_size=batch_size, num_proc=num_proc,
                                  remove_columns=corpus.column_names, desc="tokenising",
                                  cache_file_name=str(cache / f"tokens-{key}.arrow"))
            else:
                docs = ds.IterableDataset.from_generator(_document_rows, gen_kwargs={"path": str(path),
                                                                                     "param": param})
                docs = docs.map(_Tokenise(tokenizer), batched=True, batch_size=batch_size, remove_columns=["text"])
            ids = (doc for batch in docs.iter(batch_size=batch_size) for doc in batch["ids"])
            schema = pa.schema([("input_ids", pa.list_(pa.int32(), seq_len))])
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=cache)
            try:
                with os.fdopen(fd, "wb") as fh, pa.ipc.new_stream(fh, schema) as writer:
                    rows: list[list[int]] = []
                    for block in pack_stream(ids, seq_len, separator):
                        rows.append(block)
                        if len(rows) == batch_size:
                            writer.write_batch(_block_batch(rows, seq_len, schema))
                            rows = []
                    if rows:
                        writer.write_batch(_block_batch(rows, seq_len, schema))
                os.replace(tmp, final)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    return ds.Dataset.from_file(str(final))


def _block_batch(rows: list[list[int]], seq_len: int, schema):
    import numpy as np
    import pyarrow as pa

    flat = pa.array(np.asarray(rows, dtype=np.int32).reshape(-1))
    return pa.record_batch([pa.FixedSizeListArray.from_arrays(flat, seq_len)], schema=schema)


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
