"""Byte-exact overlap between a source and a target vocabulary.

A target token is "in the source" when a source token has the same canonical key (exact bytes, starts a
word; see ``canonical``), whatever the two families spell it like. Special tokens map by role
(bos/eos/unk/pad/...), then by identical content; other added tokens by identical content. The
result is the list of target ids whose embedding rows can be copied from source rows, and the rest.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

from ..errors import LangshiftError
from ..perf import gc_paused
from .canonical import CanonicalToken, canonical_vocab

# Roles in the order they claim a target token: a target token that holds two roles (pad == eos) takes
# the source row of the first one listed, so the generation-critical eos/bos are never overwritten by pad.
ROLES = ("eos_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token", "pad_token")
# Among source tokens sharing a key, ordinary tokens beat byte-fallback pieces: a <0x61> piece is almost
# never produced when "a" is in the vocabulary, so its row is the less trained one. Then lowest id.
_KIND_RANK = {"normal": 0, "byte": 1}
HOW = ("normal", "byte", "special_by_role", "special_by_content", "added_by_content")


@dataclasses.dataclass
class Overlap:
    source_name: str
    target_name: str
    source_size: int
    target_size: int
    pairs: dict[int, int]  # target id → source id
    how: dict[int, str]  # target id → one of HOW
    new_ids: list[int]
    roles: dict[str, dict[str, Any]]
    role_conflicts: list[dict[str, Any]]
    ambiguous: dict[tuple[bytes, bool], list[int]]  # key used by a target token → source ids, chosen first
    target_tokens: list[CanonicalToken] = dataclasses.field(repr=False)
    source_tokens: list[CanonicalToken] = dataclasses.field(repr=False)

    @property
    def by_kind(self) -> dict[str, int]:
        counts = Counter(self.how.values())
        return {h: counts.get(h, 0) for h in HOW}

    def report(self, examples: int = 20) -> dict[str, Any]:
        """A JSON-able summary: sizes, matched share, how tokens matched, unmatched examples, ambiguities."""
        unmatched = [self.target_tokens[i] for i in self.new_ids]
        ambiguous = sorted(self.ambiguous.items(), key=lambda kv: kv[1][0])
        return {
            "source": self.source_name,
            "target": self.target_name,
            "source_size": self.source_size,
            "target_size": self.target_size,
            "matched": len(self.pairs),
            "matched_share": round(len(self.pairs) / max(self.target_size, 1), 6),
            "new": len(self.new_ids),
            "by_kind": self.by_kind,
            "target_kinds": dict(Counter(t.kind for t in self.target_tokens)),
            "unmatched_by_kind": dict(Counter(t.kind for t in unmatched)),
            "roles": self.roles,
            "role_conflicts": self.role_conflicts,
            "unmatched_examples": {kind: [_describe(t) for t in unmatched if t.kind == kind][:examples]
                                   for kind in sorted({t.kind for t in unmatched})},
            "ambiguous_keys": len(self.ambiguous),
            "ambiguous_examples": [
                {"token": _describe_key(key), "source_ids": ids, "chosen": ids[0]}
                for key, ids in ambiguous[:examples]
            ],
        }


def _describe_key(key: tuple[bytes, bool]) -> dict[str, Any]:
    raw, start = key
    return {"text": raw.decode("utf-8", errors="replace"), "hex": raw.hex(), "word_start": start}


def _describe(t: CanonicalToken) -> dict[str, Any]:
    return {"id": t.id, "kind": t.kind, **_describe_key(t.key)}


def _name(tokenizer) -> str:
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)


def _role_id(tokenizer, role: str) -> int | None:
    token = getattr(tokenizer, role, None)
    if token is None:
        return None
    tid = tokenizer.convert_tokens_to_ids(str(token))
    return tid if isinstance(tid, int) and 0 <= tid < len(tokenizer) else None


@gc_paused()
def compute_overlap(source_tok, target_tok) -> Overlap:
    """Match target tokens to source tokens byte-exactly; raise when no ordinary token is shared."""
    src, tgt = canonical_vocab(source_tok), canonical_vocab(target_tok)
    pairs: dict[int, int] = {}
    how: dict[int, str] = {}

    # 1. Special tokens by role, first role first (see ROLES); a role only one side has is skipped here.
    roles: dict[str, dict[str, Any]] = {}
    conflicts: list[dict[str, Any]] = []
    for role in ROLES:
        sid, tid = _role_id(source_tok, role), _role_id(target_tok, role)
        if tid is None:
            continue
        roles[role] = {"target": tgt[tid].text, "target_id": tid,
                       "source": src[sid].text if sid is not None else None, "source_id": sid}
        if sid is None:
            continue
        if tid in pairs:
            if pairs[tid] != sid:
                conflicts.append({"role": role, "target_id": tid, "kept_source_id": pairs[tid],
                                  "ignored_source_id": sid, "kept_role": _roles_of(roles, tid, role)})
            continue
        pairs[tid], how[tid] = sid, "special_by_role"

    # 2. Remaining special and added tokens by identical content (chat markers and the like).
    by_content: dict[bytes, int] = {}
    for t in src:
        if t.kind in ("special", "added"):
            by_content.setdefault(t.bytes, t.id)
    for t in tgt:
        if t.kind in ("special", "added") and t.id not in pairs and t.bytes in by_content:
            pairs[t.id] = by_content[t.bytes]
            how[t.id] = "special_by_content" if t.kind == "special" else "added_by_content"

    # 3. Ordinary and byte tokens by (bytes, word_start); several source tokens per key → a fixed choice.
    candidates: dict[tuple[bytes, bool], list[CanonicalToken]] = defaultdict(list)
    for t in src:
        if t.kind in _KIND_RANK:
            candidates[(t.bytes, t.word_start)].append(t)
    for group in candidates.values():
        group.sort(key=lambda t: (_KIND_RANK[t.kind], t.id))
    ambiguous: dict[tuple[bytes, bool], list[int]] = {}
    for t in tgt:
        if t.kind not in _KIND_RANK or t.id in pairs:
            continue
        key = (t.bytes, t.word_start)
        group = candidates.get(key)
        if not group:
            continue
        pairs[t.id] = group[0].id
        how[t.id] = "byte" if "byte" in (t.kind, group[0].kind) else "normal"
        if len(group) > 1:
            ambiguous[key] = [g.id for g in group]

    if not any(h in ("normal", "byte") for h in how.values()):
        raise LangshiftError(
            f"no ordinary token of the target tokenizer {_name(target_tok)!r} ({len(tgt)} tokens) matches one of "
            f"the source tokenizer {_name(source_tok)!r} ({len(src)} tokens) byte for byte ({len(pairs)} special "
            "tokens matched). Check that both cover the same script, or train the target tokenizer on "
            "target-language text with byte-level coverage (langshift tokenizer train --kind bpe --base SOURCE)")
    new_ids = [t.id for t in tgt if t.id not in pairs]
    return Overlap(_name(source_tok), _name(target_tok), len(src), len(tgt), dict(sorted(pairs.items())),
                   how, new_ids, roles, conflicts, ambiguous, tgt, src)


def _roles_of(roles: dict[str, dict[str, Any]], target_id: int, but: str) -> list[str]:
    """The roles already recorded for ``target_id`` (other than ``but``)."""
    return [r for r, info in roles.items() if info["target_id"] == target_id and r != but]
