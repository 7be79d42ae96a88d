from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from langshift.cli import main
from langshift.errors import LangshiftError
from langshift.evaluate.judge import (
    LANGUAGE_CLAUSE,
    Endpoint,
    JudgeError,
    compare,
    parse_ranking,
    ranking_messages,
)

INSTR = [f"Pregunta {i}" for i in range(8)]
GOOD = [f"Buena respuesta {i}" for i in range(8)]
BAD = [f"Bad answer {i}" for i in range(8)]


class FakeJudge(BaseHTTPRequestHandler):
    """Prefers the response that starts with 'Buena'; a tie when both or neither do; can fail."""

    fail_after = None  # answer this many requests, then 500s
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeJudge.seen.append((self.path, self.headers.get("Authorization"), body))
        if FakeJudge.fail_after is not None and len(FakeJudge.seen) > FakeJudge.fail_after:
            self.send_response(500)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        first = prompt.split('"model": "m",\n    "output": "')[1].split('"\n  }')[0]
        second = prompt.split('"model": "M",\n    "output": "')[1].split('"\n  }')[0]
        g1, g2 = first.startswith("Buena"), second.startswith("Buena")
        rank_m, rank_big = (1, 1) if g1 == g2 else ((1, 2) if g1 else (2, 1))
        board = {"ordered_models": sorted([{"model": "m", "rank": rank_m}, {"model": "M", "rank": rank_big}],
                                          key=lambda e: e["rank"])}
        out = json.dumps({"choices": [{"message": {"content": "Leaderboard:\n" + json.dumps(board)}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    FakeJudge.seen, FakeJudge.fail_after = [], None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_order_swaps_and_draws(server):
    ep = Endpoint(server, "fake", api_key="k", retries=0)
    res = compare(INSTR, GOOD, BAD, ep.chat, seed=1)
    assert res["win_rate_a"] == 1.0 and res["wins_a"] == 8 and res["stderr"] == 0.0
    swapped = [v["swapped"] for v in res["verdicts"]]
    assert any(swapped) and not all(swapped)  # both orders occur with this seed
    assert all(v["shown_winner"] == ("2" if v["swapped"] else "1") for v in res["verdicts"])
    assert FakeJudge.seen[0][0] == "/v1/chat/completions" and FakeJudge.seen[0][1] == "Bearer k"
    system, user = FakeJudge.seen[0][2]["messages"]
    assert system["role"] == "system" and "leaderboard" in system["content"]
    assert LANGUAGE_CLAUSE in user["content"]  # no language given: the stricter target-language prompt
    # B is the good one now: A never wins, whatever the order
    assert compare(INSTR, BAD, GOOD, ep.chat, seed=1)["win_rate_a"] == 0.0
    # draws count ½: half the items tie
    mixed = compare(INSTR, GOOD[:4] + BAD[4:], GOOD[:4] + GOOD[4:], ep.chat, seed=3)
    assert mixed["ties"] == 4 and mixed["wins_b"] == 4 and mixed["win_rate_a"] == pytest.approx(0.25)
    assert mixed["stderr"] == pytest.approx((sum((x - 0.25) ** 2 for x in [0.5] * 4 + [0] * 4) / 7 / 8) ** 0.5)
    # the seed fixes the order
    assert [v["swapped"] for v in compare(INSTR, GOOD, BAD, ep.chat, seed=1)["verdicts"]] == swapped


def test_failing_endpoint_keeps_partial_results(server):
    FakeJudge.fail_after = 3
    ep = Endpoint(server, "fake", retries=2, backoff=0.01)
    with pytest.raises(JudgeError, match="failed 3 times.*3 of 8 items judged") as info:
        compare(INSTR, GOOD, BAD, ep.chat, seed=0)
    assert len(info.value.partial) == 3 and all(v["winner"] == "A" for v in info.value.partial)
    assert len(FakeJudge.seen) == 3 + 3  # three good answers, then three tries of the fourth


def test_unreachable_endpoint():
    ep = Endpoint("http://127.0.0.1:9/v1", "fake", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(LangshiftError, match="failed 2 times"):
        ep.chat("hi")


def test_parse_ranking():
    assert parse_ranking('{"ordered_models": [{"model": "M", "rank": 1}, {"model": "m", "rank": 2}]}') == "2"
    assert parse_ranking('[{"model": "m", "rank": 1}, {"model": "M", "rank": 2}]') == "1"
    assert parse_ranking('```json\n[{"rank": 2, "model": "M"},\n {"rank": 1, "model": "m"}]\n```') == "1"
    assert parse_ranking('[{"model": "m", "rank": 1}, {"model": "M", "rank": 1}]') == "tie"
    assert parse_ranking('{"model": "M", "rank": 1}') == "2"  # only the winner named
    assert parse_ranking('{"model": "M", "rank": 2}') is None
    assert parse_ranking('[{"model": "x", "rank": 1}, {"model": "m", "rank": "first"}]') is None
    assert parse_ranking("Model m is better") is None


def test_language_clause_for_target_language_only():
    """App. C: the clause for target-language instructions, AlpacaEval's original prompt for English."""
    es = ranking_messages("¿Qué es el agua?", "Es un líquido.", "It is a liquid.", "es")
    en = ranking_messages("What is water?", "A liquid.", "Un líquido.", "en")
    assert LANGUAGE_CLAUSE in es[1]["content"] and LANGUAGE_CLAUSE not in en[1]["content"]
    assert es[0] == en[0] and es[0]["role"] == "system"
    for msgs, outs in ((es, ("Es un líquido.", "It is a liquid.")), (en, ("A liquid.", "Un líquido."))):
        user = msgs[1]["content"]
        assert user.startswith("I require a leaderboard for various large language models. I'll provide")
        assert f'"model": "m",\n    "output": "{outs[0]}"' in user and f'"model": "M",\n    "output": "{outs[1]}"' in user
        assert "ranked first." in user and "\\" not in user and "{{" not in user
    # the original prompt is the clause-free one, word for word up to the format line
    assert en[1]["content"].replace("ranked first.\n", "ranked first." + LANGUAGE_CLAUSE + "\n").replace(
        "What is water?", "¿Qué es el agua?").replace("A liquid.", "Es un líquido.").replace(
        "Un líquido.", "It is a liquid.") == es[1]["content"]


def test_langs_per_item(server):
    ep = Endpoint(server, "fake", retries=0)
    langs = ["en", "es"] * 4
    res = compare(INSTR, GOOD, BAD, ep.chat, seed=1, langs=langs)
    assert res["win_rate_a"] == 1.0 and [v["lang"] for v in res["verdicts"]] == langs
    clauses = [LANGUAGE_CLAUSE in body["messages"][1]["content"] for _, _, body in FakeJudge.seen]
    assert clauses == [False, True] * 4
    with pytest.raises(Exception, match="one language per instruction"):
        compare(INSTR, GOOD, BAD, ep.chat, langs=["en"])


def _outputs(path, outs):
    path.write_text("".join(json.dumps({"instruction": i, "output": o}) + "\n" for i, o in zip(INSTR, outs,
                                                                                               strict=True)))
    return str(path)


def test_cli_skips_without_endpoint_and_runs_with_one(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LANGSHIFT_JUDGE_URL", raising=False)
    a, b = _outputs(tmp_path / "a.jsonl", GOOD), _outputs(tmp_path / "b.jsonl", BAD)
    assert main(["eval", "judge", "--outputs-a", a, "--outputs-b", b]) == 0
    out = json.loads(capsys.readouterr().out)["results"]["a"]["judge"]
    assert out["skipped"] is True and "no verdict" in out["reason"]
    monkeypatch.setenv("JUDGE_KEY", "secret")
    assert main(["eval", "judge", "--outputs-a", a, "--outputs-b", b, "--url", server, "--judge-model", "fake",
                 "--api-key-env", "JUDGE_KEY", "--save", str(tmp_path / "run"),
                 "--verdicts", str(tmp_path / "v.jsonl")]) == 0
    out = json.loads(capsys.readouterr().out)["results"]["a"]["judge"]
    assert out["win_rate_a"] == 1.0 and out["model_a"] == "a" and FakeJudge.seen[-1][1] == "Bearer secret"
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 8
    assert (tmp_path / "run" / "judge.a.vs_b.json").is_file()
    assert LANGUAGE_CLAUSE in FakeJudge.seen[-1][2]["messages"][1]["content"]
    assert main(["eval", "judge", "--outputs-a", a, "--outputs-b", b, "--url", server, "--judge-model", "fake",
                 "--target-lang", "en"]) == 0
    assert json.loads(capsys.readouterr().out)["results"]["a"]["judge"]["win_rate_a"] == 1.0
    assert all(LANGUAGE_CLAUSE not in body["messages"][1]["content"] for _, _, body in FakeJudge.seen[-8:])
    assert main(["eval", "judge", "--outputs-a", a, "--outputs-b", b, "--url", server, "--judge-model", "fake",
                 "--api-key-env", "NOT_SET_ANYWHERE"]) == 2
    assert "NOT_SET_ANYWHERE" in capsys.readouterr().err


def test_generation_at_paper_settings(source_bpe, monkeypatch):
    """Replies for judging/fidelity: sampled at seed 004 App. B's temperature 0.6 / top-p 0.9 by default, after
    App. F's system turn when asked; greedy stays greedy."""
    import helpers
    from langshift.evaluate import fidelity, generative
    from langshift.train.clo_data import resolve_system_prompt

    model = helpers.tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)
    seen = []
    real = model.generate

    def spy(**kw):
        seen.append(kw)
        return real(**kw)

    monkeypatch.setattr(model, "generate", spy)
    system = resolve_system_prompt("same-language:es")
    generative.chat_generate(model, source_bpe, ["Hola"], 3, sample=True, progress=False, system=system)
    assert seen[-1]["temperature"] == 0.6 and seen[-1]["top_p"] == 0.9 and seen[-1]["do_sample"]
    assert source_bpe.decode(seen[-1]["input_ids"][0]).startswith("<|im_start|>system\n" + system)
    res = fidelity.evaluate_fidelity(model, source_bpe, ["Hola"], "es", 3, progress=False, sample=True, top_p=0.5)
    assert seen[-1]["temperature"] == 0.6 and seen[-1]["top_p"] == 0.5 and len(res["responses"]) == 1
    fidelity.evaluate_fidelity(model, source_bpe, ["Hola"], "es", 3, progress=False)
    assert seen[-1]["do_sample"] is False and seen[-1]["temperature"] is None
    assert "system" not in source_bpe.decode(seen[-1]["input_ids"][0])
