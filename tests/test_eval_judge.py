from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from langshift.cli import main
from langshift.errors import LangshiftError
from langshift.evaluate.judge import Endpoint, JudgeError, compare, parse_verdict

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
        prompt = body["messages"][0]["content"]
        first = prompt.split("Response 1:\n<<<\n")[1].split("\n>>>")[0]
        second = prompt.split("Response 2:\n<<<\n")[1].split("\n>>>")[0]
        g1, g2 = first.startswith("Buena"), second.startswith("Buena")
        winner = "tie" if g1 == g2 else (1 if g1 else 2)
        out = json.dumps({"choices": [{"message": {"content": f'Reasoning… {{"winner": {json.dumps(winner)}}}'}}]})
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
    assert "another language" in FakeJudge.seen[0][2]["messages"][0]["content"]
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


def test_parse_verdict():
    assert parse_verdict('{"winner": 2}') == "2"
    assert parse_verdict('first {"winner": 1} then {"winner": "tie"}') == "tie"
    assert parse_verdict("Response 1 is better") is None


def _outputs(path, outs):
    path.write_text("".join(json.dumps({"instruction": i, "output": o}) + "\n" for i, o in zip(INSTR, outs,
                                                                                               strict=True)))
    return str(path)


def test_cli_skips_without_endpoint_and_runs_with_one(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LANGSHIFT_JUDGE_URL", raising=False)
    a, b = _outputs(tmp_path / "a.jsonl", GOOD), _outputs(tmp_path / "b.jsonl", BAD)
    assert main(["eval", "judge", "--outputs-a", a, "--outputs-b", b]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped"] is True and "no verdict" in out["reason"]
    monkeypatch.setenv("JUDGE_KEY", "secret")
    assert main(["eval", "judge", "--outputs-a", a, "--outputs-b", b, "--url", server, "--judge-model", "fake",
                 "--api-key-env", "JUDGE_KEY", "--save", str(tmp_path / "run"),
                 "--verdicts", str(tmp_path / "v.jsonl")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["win_rate_a"] == 1.0 and out["model_a"] == "a" and FakeJudge.seen[-1][1] == "Bearer secret"
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 8
    assert (tmp_path / "run" / "judge.a.vs_b.json").is_file()
    assert main(["eval", "judge", "--outputs-a", a, "--outputs-b", b, "--url", server, "--judge-model", "fake",
                 "--api-key-env", "NOT_SET_ANYWHERE"]) == 2
    assert "NOT_SET_ANYWHERE" in capsys.readouterr().err
