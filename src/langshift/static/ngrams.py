"""fastText's character n-gram buckets and composed word vectors, for many strings at once.

fastText (and gensim, which copies it) hashes the n-grams of one word at a time in a Python-level
loop: ~10 µs a word, a third of a second for a 32k vocabulary, and gensim then sums the rows word by
word. Here every n-gram of every string is found and hashed with array operations, and the rows are
summed by one sparse product; tests check the buckets against gensim's ``ft_ngram_hashes``.

fastText's rules (``Dictionary::computeSubwords``): the word is wrapped in ``<`` and ``>``; an n-gram
is n UTF-8 *characters* starting at any character; n runs over [minn, maxn]; a lone ``<`` or ``>``
is never an n-gram; repeats count as often as they occur. The hash is 32-bit FNV-1a over the
n-gram's bytes, each byte sign-extended first (fastText hashes ``int8_t``), modulo the bucket count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_NGRAM = 64  # longest n-gram length accepted (fastText's own defaults: 3..6; cc.* models: 5)
_FNV_OFFSET, _FNV_PRIME = np.uint32(2166136261), np.uint32(16777619)


def ngram_buckets(words: Sequence[str], min_n: int, max_n: int, bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """(owner, bucket) of every n-gram occurrence: ``owner[i]`` is the index in ``words`` of the
    word n-gram ``i`` belongs to. Both int64, grouped by owner in ascending order.

    Work is bounded by the words, never by the arguments: ``max_n`` above ``MAX_NGRAM`` or a bucket
    count beyond 32 bits is refused, and n stops at the longest wrapped word."""
    if max_n > MAX_NGRAM or min_n > MAX_NGRAM:
        raise ValueError(f"n-gram lengths {min_n}..{max_n}: at most {MAX_NGRAM} is supported")
    if bucket >= 2**32:
        raise ValueError(f"bucket={bucket}: fastText hashes are 32-bit, so at most 2**32 - 1 buckets")
    if bucket <= 0 or max_n < min_n or max_n <= 0 or not words:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # 1. All wrapped words in one byte buffer; a character starts at every byte that is not 10xxxxxx.
    data = np.frombuffer("".join(f"<{w}>" for w in words).encode("utf-8"), dtype=np.uint8)
    starts = np.flatnonzero((data & 0xC0) != 0x80)
    char_counts = np.fromiter((len(w) + 2 for w in words), dtype=np.int64, count=len(words))
    first_char = np.cumsum(char_counts) - char_counts         # index into ``starts`` of each word's '<'
    owner_of_char = np.repeat(np.arange(len(words)), char_counts)
    end_char = (first_char + char_counts)[owner_of_char]      # one past each character's word
    bounds = np.append(starts, len(data))                     # byte offset of character c is bounds[c]
    chars = np.arange(len(starts))
    # 2. The n-grams: character c and the n − 1 after it, inside its word; a lone '<' or '>' is skipped.
    owner, begin, length = [], [], []
    for n in range(max(min_n, 1), min(max_n, int(char_counts.max())) + 1):
        ok = chars + n <= end_char
        if n == 1:
            ok &= (chars != first_char[owner_of_char]) & (chars + 1 != end_char)
        c = chars[ok]
        owner.append(owner_of_char[c])
        begin.append(bounds[c])
        length.append(bounds[c + n] - bounds[c])
    if not owner:  # every word is shorter than min_n
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    owner_a, begin_a, length_a = (np.concatenate(x) for x in (owner, begin, length))
    # 3. FNV-1a over each n-gram's bytes, all n-grams one byte position at a time.
    signed = data.view(np.int8).astype(np.int32).view(np.uint32)  # fastText hashes sign-extended bytes
    h = np.full(len(begin_a), _FNV_OFFSET, dtype=np.uint32)
    for j in range(int(length_a.max(initial=0))):
        live = np.flatnonzero(length_a > j)
        h[live] = (h[live] ^ signed[begin_a[live] + j]) * _FNV_PRIME
    order = np.argsort(owner_a, kind="stable")
    return owner_a[order], (h[order] % np.uint32(bucket)).astype(np.int64)


def mean_rows(matrix, owner: np.ndarray, rows: np.ndarray, n_owners: int, base: np.ndarray | None = None
              ) -> np.ndarray:
    """float32 (n_owners, dim): per owner, the mean of ``matrix[rows]`` over its entries — and of its
    ``base`` row too when given (a vocabulary word's own vector). Owners without entries (and no
    base) get zeros. ``matrix`` may be memory-mapped: each distinct row is read once, in file order."""
    import torch  # here, not at the top: the CLI imports this module to build its parser

    from ..perf import csr

    dim = matrix.shape[1]
    unique, inverse = np.unique(rows, return_inverse=True)    # sorted: the memory map is read front to back
    picked = torch.from_numpy(np.ascontiguousarray(matrix[unique], dtype=np.float32))
    counts = np.bincount(owner, minlength=n_owners).astype(np.float32)
    crow = torch.from_numpy(np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]))
    picks = csr(crow, torch.from_numpy(inverse.astype(np.int64)), torch.ones(len(rows)), (n_owners, len(unique)))
    total = (picks @ picked) if len(rows) else torch.zeros(n_owners, dim)
    if base is not None:
        total += torch.from_numpy(np.ascontiguousarray(base, dtype=np.float32))
        counts += 1.0
    return (total / torch.from_numpy(counts).clamp_min(1.0).unsqueeze(1)).numpy()
