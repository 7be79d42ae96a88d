import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from langshift.errors import ConfigError, LangshiftError
from langshift.translate import get_translator
from langshift.translate.llm import language_name

WORDS = {"book": "libro", "daughter": "hija"}


class FakeChat(BaseHTTPRequestHandler):
    """OpenAI-style /v1/chat/completions; fails the first `fail_first` requests with HTTP `fail_code`."""

    state = {"requests": 0, "fail_first": 0, "fail_code": 500, "auth": [], "bodies": []}

    def do_POST(self):  # noqa: N802
        st = self.state
        st["requests"] += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        st["bodies"].append(body)
        st["auth"].append(self.headers.get("Authorization"))
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": "not found"})
        if st["requests"] <= st["fail_first"]:
            return self._send(st["fail_code"], {"error": "try later"})
        user = body["messages"][-1]["content"]
        word = user.rsplit(": ", 1)[-1]
        answer = f"\"{WORDS[word.lower()]}\"" if word.lower() in WORDS else ("" if "nothing" in user else f"ES[{user}]")
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": answer}}]})

    def _send(self, code, obj):
        raw = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    FakeChat.state.update(requests=0, fail_first=0, fail_code=500, auth=[], bodies=[])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", FakeChat.state
    httpd.shutdown()
    httpd.server_close()


def test_words_and_sentences_through_the_endpoint(server, monkeypatch, tmp_path):
    url, state = server
    monkeypatch.setenv("MY_KEY", "sekrit")
    tr = get_translator("llm", "en", "es", cache=tmp_path / "c.sqlite", url=url, model="fake", api_key_env="MY_KEY")
    assert tr.translate_words(["Book", "daughter", "Book"], ["NN", "NN", "NN"]) == ["Libro", "hija", "Libro"]
    assert tr.translate_sentences(["Hello there.", "say nothing"]) == ["ES[Hello there.]", None]
    assert state["requests"] == 4 and tr.calls == 4 and tr.stats["untranslated"] == 1
    assert state["auth"][0] == "Bearer sekrit"
    body = state["bodies"][0]
    assert body["model"] == "fake" and body["temperature"] == 0
    assert "translation only" in body["messages"][0]["content"] and language_name("es") in body["messages"][0]["content"]
    again = get_translator("llm", "en", "es", cache=tmp_path / "c.sqlite", url=url, model="fake")
    assert again.translate_sentences(["Hello there."]) == ["ES[Hello there.]"] and state["requests"] == 4


def test_transient_failures_are_retried(server):
    url, state = server
    state.update(fail_first=2, fail_code=503)
    tr = get_translator("llm", "en", "es", url=url, model="fake", backoff=0.01, retries=3, workers=1)
    assert tr.translate_sentences(["Hi."]) == ["ES[Hi.]"]
    assert state["requests"] == 3


def test_failing_endpoint_gives_a_clear_error_after_retries(server):
    url, state = server
    state.update(fail_first=10**6)
    tr = get_translator("llm", "en", "es", url=url, model="fake", backoff=0.01, retries=2, workers=1)
    with pytest.raises(LangshiftError, match="failed 3 times; last error: HTTP 500"):
        tr.translate_sentences(["Hi."])
    assert state["requests"] == 3


def test_client_errors_are_not_retried(server):
    url, state = server
    state.update(fail_first=10**6, fail_code=401)
    tr = get_translator("llm", "en", "es", url=url, model="fake", backoff=0.01, api_key_env="NO_SUCH_VAR")
    with pytest.raises(LangshiftError, match=r"HTTP 401.*NO_SUCH_VAR"):
        tr.translate_sentences(["Hi."])
    assert state["requests"] == 1


def test_unreachable_server_and_bad_options():
    tr = get_translator("llm", "en", "es", url="http://127.0.0.1:9/v1", model="m", retries=1, backoff=0.01)
    with pytest.raises(LangshiftError, match="failed 2 times"):
        tr.translate_words(["book"])
    with pytest.raises(ConfigError, match="url"):
        get_translator("llm", "en", "es", url="localhost:8000", model="m")
    with pytest.raises(ConfigError, match="model"):
        get_translator("llm", "en", "es", url="http://x/v1")
