"""A small English instruction set built offline, for CLO/SFT when no instruction data can be had.

How it is made (and what it is not): every pair comes from a template filled with text already on the
machine — no model writes these answers, and no answer asserts more than its source says.

  man     the NAME line of installed English manual pages (``apropos -l .``): "ls (1) - list directory
          contents" gives questions such as "What is the ls command used for?" answered with the page's
          own one-line description, its section and the section's meaning.
  bible   verses of the offline English Bible (KJV via diatheke): "What does Genesis 1:3 say?" answered
          with the verse; "Which verse comes after ...?" answered with the next verse.

Answers are short and formulaic; the set teaches the question/answer format and gives text to
translate, not knowledge. Replace it with OpenAssistant or your own JSONL
(``{"id", "instruction", "response"}`` per line) whenever you can.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable

from ..errors import ConfigError, LangshiftError, MissingDependencyError
from ..files import atomic_write_text, check_out_dir
from ..registry import Registry
from .data import write_jsonl_text

SOURCES: Registry[Callable[[random.Random], list[dict]]] = Registry("instruction source",
                                                                   ["langshift.train.instructions"])
SECTIONS = {"1": "user commands", "2": "system calls", "3": "library functions", "4": "special files",
            "5": "file formats and configuration files", "6": "games", "7": "overviews and conventions",
            "8": "system administration commands"}
_NAME_LINE = re.compile(r"^(?P<name>[A-Za-z][\w.+-]*) \((?P<section>[1-8])\w*\)\s+- (?P<desc>.+)$")


@SOURCES.register("man")
def man_pairs(rng: random.Random) -> list[dict]:
    """Questions about installed manual pages, answered with each page's own NAME-line description."""
    if shutil.which("apropos") is None:
        raise MissingDependencyError("apropos is not installed; install it with: apt-get install man-db")
    res = subprocess.run(["apropos", "-l", "."], capture_output=True, text=True, check=False,
                         env={**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
    pages = {}
    for line in res.stdout.splitlines():
        m = _NAME_LINE.match(line.strip())
        if m and len(m["desc"].split()) >= 3 and "(" not in m["desc"]:
            pages.setdefault(m["name"], (m["section"], m["desc"].strip().rstrip(".")))
    questions = [
        ("What is the {name} {kind} used for?", "The {name} {kind} is documented in section {sec} of the manual, "
         "the section for {secname}. Its manual page describes it in one line: {desc}."),
        ("Explain in one sentence what {name} does.", "According to its manual page, {name} is used to {desc_lc}."),
        ("I found {name} on my system. What is it?", "{name} is listed in section {sec} of the manual ({secname}). "
         "The manual page describes it as follows: {desc}."),
    ]
    out = []
    for name in sorted(pages):
        sec, desc = pages[name]
        kind = "command" if sec in ("1", "8") else "function" if sec in ("2", "3") else "manual entry"
        q, a = questions[rng.randrange(len(questions))]
        fill = {"name": name, "kind": kind, "sec": sec, "secname": SECTIONS[sec], "desc": desc,
                "desc_lc": desc[0].lower() + desc[1:]}
        out.append({"id": f"man:{name}.{sec}", "instruction": q.format(**fill), "response": a.format(**fill)})
    return out


@SOURCES.register("bible")
def bible_pairs(rng: random.Random) -> list[dict]:
    """Questions about verses of the offline English Bible, answered with the verses themselves."""
    from ..resources import bible_verses

    verses = list(bible_verses("en").items())
    out = []
    for i, (ref, text) in enumerate(verses):
        if len(text.split()) < 6:
            continue
        if i + 1 < len(verses) and rng.random() < 0.5:
            nxt_ref, nxt = verses[i + 1]
            out.append({"id": f"bible-next:{ref}", "instruction": f"Which verse comes after this one? \"{text}\"",
                        "response": f"The next verse is {nxt_ref}: {nxt}"})
        else:
            out.append({"id": f"bible:{ref}", "instruction": f"What does {ref} say in the Bible?",
                        "response": f"{ref} says: {text}"})
    return out


def build_sft(n: int, sources: list[str], seed: int = 0) -> list[dict]:
    """``n`` pairs drawn evenly from ``sources`` (as evenly as each source allows), reproducibly."""
    if n < 1:
        raise ConfigError("--n", n, "must be at least 1")
    rng = random.Random(seed)
    pools = {s: SOURCES.get(s, "--sources")(random.Random(seed)) for s in sources}
    for s, pool in pools.items():
        rng.shuffle(pool)
        if not pool:
            raise LangshiftError(f"--sources: {s!r} gave no pairs on this machine")
    out: list[dict] = []
    while len(out) < n and any(pools.values()):
        for s in sources:
            if pools[s] and len(out) < n:
                out.append(pools[s].pop())
    return out


def write_sft(out: str, n: int, sources: list[str], seed: int = 0, overwrite: bool = False) -> dict:
    check_out_dir(out, overwrite)
    records = build_sft(n, sources, seed)
    atomic_write_text(out, write_jsonl_text(records))
    counts: dict[str, int] = {}
    for r in records:
        counts[r["id"].split(":")[0]] = counts.get(r["id"].split(":")[0], 0) + 1
    return {"out": out, "records": len(records), "by_kind": counts}
