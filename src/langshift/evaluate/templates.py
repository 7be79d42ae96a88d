"""Per-language multiple-choice templates (package data ``langshift/data/templates/mc.json``).

Field labels and answer indicators follow the scheme of seed 004 (Table 7: native labels for
passage, question and answer); the generative instruction follows its Table 6 (ask for a last line
'<indicator>: LETTER'). A language without an entry is an error that lists the shipped ones, unless
the caller asks for the English fallback.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import ConfigError

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Template:
    lang: str
    passage: str
    question: str
    answer: str
    option_labels: tuple[str, ...]
    instruction: str
    markers: tuple[str, ...]

    def labels(self, n: int, latin: bool = False) -> list[str]:
        """Labels of ``n`` options: the language's own (e.g. 가), 나)) or Latin letters."""
        if n > len(LETTERS):
            raise ConfigError("choices", n, f"at most {len(LETTERS)} choices are supported")
        own = self.option_labels
        return list(own[:n]) if not latin and n <= len(own) else list(LETTERS[:n])

    def render_question(self, question: str, passage: str | None = None, choices: list[str] | None = None,
                        latin: bool = False) -> str:
        """'Passage: …\\nQuestion: …\\nA. …\\nB. …' in the template's language (no answer indicator)."""
        lines = [f"{self.passage}: {passage}"] if passage else []
        lines.append(f"{self.question}: {question}")
        for label, choice in zip(self.labels(len(choices or []), latin), choices or [], strict=True):
            lines.append(f"{label}{'' if label.endswith(')') else '.'} {choice}")
        return "\n".join(lines)

    def render_ll_context(self, question: str, passage: str | None = None,
                          choices: list[str] | None = None) -> str:
        """The log-likelihood context: the question block followed by the answer indicator."""
        return self.render_question(question, passage, choices) + f"\n{self.answer}:"

    def render_instruction(self, n_choices: int) -> str:
        letters = LETTERS[:n_choices]
        return self.instruction.format(indicator=self.answer, letters=", ".join(letters), example=letters[0])


@lru_cache(maxsize=1)
def _table() -> dict[str, dict]:
    text = resources.files("langshift").joinpath("data/templates/mc.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def languages() -> list[str]:
    return sorted(_table())


def get_template(lang: str, fallback_english: bool = False, param: str = "--lang") -> Template:
    """The template of ``lang`` (ISO 639-1 code); English only when ``fallback_english`` is set."""
    table = _table()
    code = (lang or "").lower().split("-")[0].split("_")[0]
    if code not in table:
        if not fallback_english:
            raise ConfigError(param, lang, f"no template for this language; shipped: {', '.join(languages())}. "
                                           "Add one to langshift/data/templates/mc.json or allow the English "
                                           "fallback (--fallback-english)")
        code = "en"
    d = table[code]
    return Template(code, d["passage"], d["question"], d["answer"], tuple(d["option_labels"]),
                    d["instruction"], tuple(d.get("markers", ())))
