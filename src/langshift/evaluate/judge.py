"""Pairwise judging (AlpacaEval-style, as seed 004 uses it): two models' outputs on the same prompts,
shown to a judge model behind an OpenAI-compatible chat endpoint in an order randomised per item
(seeded); the judge is told to count an answer in another language than the instruction's against it.

Verdicts are kept per item (``A`` wins, ``B`` wins, ``tie``); win rate of A = (wins + ties/2) / n with
the standard error of that mean. Requests are retried with exponential backoff; when the endpoint keeps
failing, the verdicts so far are written and a clear error is raised. Nothing is ever guessed: without
an endpoint the judge is skipped.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError, LangshiftError
from .mc import mean_and_stderr

PROMPT = """You compare two AI assistants' responses to the same user instruction.

Instruction:
<<<
{instruction}
>>>

Response 1:
<<<
{first}
>>>

Response 2:
<<<
{second}
>>>

Decide which response a careful human reader would prefer: helpful, correct, clear, and complete.
The response must be written in the language of the instruction; a response (or a large part of it)
in another language is a serious fault, and weigh it heavily against that response.
Reply with one JSON object and nothing else: {{"winner": 1}}, {{"winner": 2}} or {{"winner": "tie"}}."""


class JudgeError(LangshiftError):
    """The endpoint failed after every retry; ``partial`` holds the verdicts obtained before."""

    def __init__(self, msg: str, partial: list[dict]):
        super().__init__(msg)
        self.partial = partial


@dataclass
class Endpoint:
    url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 2.0
    temperature: float = 0.0

    def chat(self, prompt: str) -> str:
        """The judge's reply text (POST {url}/chat/completions), retried with exponential backoff."""
        url = self.url.rstrip("/") + ("" if self.url.rstrip("/").endswith("/chat/completions")
                                      else "/chat/completions")
        body = json.dumps({"model": self.model, "temperature": self.temperature,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                return data["choices"][0]["message"]["content"]
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError, KeyError,
                    IndexError, TypeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries:
                time.sleep(self.backoff * (2 ** attempt))
        raise LangshiftError(f"judge endpoint {url} failed {self.retries + 1} times (last: {last})")


# 1. Verdict parsing -------------------------------------------------------------------------------

_JSON = re.compile(r"\{[^{}]*\"winner\"[^{}]*\}")


def parse_verdict(reply: str) -> str | None:
    """'1', '2' or 'tie' from the judge's reply; None when it states none."""
    for m in reversed(_JSON.findall(reply)):
        try:
            value = json.loads(m)["winner"]
        except (json.JSONDecodeError, KeyError):
            continue
        value = str(value).strip().lower()
        if value in ("1", "2"):
            return value
        if value in ("tie", "draw", "0"):
            return "tie"
    return None


# 2. Pairwise comparison -----------------------------------------------------------------------------

def compare(instructions: Sequence[str], outputs_a: Sequence[str], outputs_b: Sequence[str],
            ask: Callable[[str], str], seed: int = 0, on_verdict: Callable[[dict], None] | None = None) -> dict:
    """Judge every item with ``ask(prompt) -> reply``; A/B order randomised per item with ``seed``."""
    if not (len(instructions) == len(outputs_a) == len(outputs_b)) or not instructions:
        raise ConfigError("outputs", (len(instructions), len(outputs_a), len(outputs_b)),
                          "need the same non-zero number of instructions and outputs of both models")
    rng = random.Random(seed)
    swaps = [rng.random() < 0.5 for _ in instructions]  # drawn up front: a retry never changes the order
    verdicts: list[dict] = []
    for i, (ins, a, b) in enumerate(zip(instructions, outputs_a, outputs_b, strict=True)):
        first, second = (b, a) if swaps[i] else (a, b)
        try:
            reply = ask(PROMPT.format(instruction=ins, first=first, second=second))
        except LangshiftError as exc:
            raise JudgeError(f"{exc}; {len(verdicts)} of {len(instructions)} items judged before the failure",
                             verdicts) from exc
        shown = parse_verdict(reply)
        winner = None if shown is None else "tie" if shown == "tie" else (
            ("B" if shown == "1" else "A") if swaps[i] else ("A" if shown == "1" else "B"))
        v = {"index": i, "swapped": swaps[i], "shown_winner": shown, "winner": winner, "reply": reply[:500]}
        verdicts.append(v)
        if on_verdict:
            on_verdict(v)
    return summarise(verdicts)


def summarise(verdicts: list[dict]) -> dict:
    """Win rate of A (ties as ½) over items with a verdict, its standard error, and the counts."""
    scored = [{"A": 1.0, "B": 0.0, "tie": 0.5}[v["winner"]] for v in verdicts if v["winner"] is not None]
    rate, se = mean_and_stderr(scored) if scored else (float("nan"), float("nan"))
    return {"n": len(verdicts), "judged": len(scored), "win_rate_a": rate, "stderr": se,
            "wins_a": sum(v["winner"] == "A" for v in verdicts), "wins_b": sum(v["winner"] == "B" for v in verdicts),
            "ties": sum(v["winner"] == "tie" for v in verdicts),
            "unparsed": sum(v["winner"] is None for v in verdicts), "verdicts": verdicts}


def endpoint_from_args(url: str | None, model: str | None, key_env: str | None, **kw) -> Endpoint | None:
    """The endpoint, or None when no URL is configured (flag or $LANGSHIFT_JUDGE_URL)."""
    url = url or os.environ.get("LANGSHIFT_JUDGE_URL")
    if not url:
        return None
    if not model:
        raise ConfigError("--judge-model", model, "name the judge model served at the endpoint")
    key = None
    if key_env:
        key = os.environ.get(key_env)
        if key is None:
            raise ConfigError("--api-key-env", key_env, "this environment variable is not set; export it or "
                                                        "omit the flag for an endpoint without a key")
    return Endpoint(url, model, key, **kw)


def read_outputs(path, param: str) -> dict[str, dict]:
    """JSONL with ``instruction`` (or ``prompt``) and ``output`` (or ``response``) per line → by instruction."""
    from pathlib import Path

    from ..files import read_json_lines

    if not Path(path).is_file():
        raise ConfigError(param, str(path), "no such file; give a JSONL file of {instruction, output} lines")
    out: dict[str, dict] = {}
    for number, obj in read_json_lines(path, param):
        ins = obj.get("instruction", obj.get("prompt"))
        outp = obj.get("output", obj.get("response"))
        if not isinstance(ins, str) or not isinstance(outp, str):
            raise LangshiftError(f"{path}:{number}: needs string fields 'instruction' (or 'prompt') and 'output' "
                                 "(or 'response')")
        out[ins] = obj | {"instruction": ins, "output": outp}
    return out
