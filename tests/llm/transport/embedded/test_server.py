"""The embedded model's HTTP server on the real SmolLM2-135M file: OpenAI-shaped answers, the request options it
honours (max_tokens, stop, seed, temperature, JSON schemas by constrained decoding), clear 400s for what it cannot
serve (and it stays up), a client that disconnects mid-generation, answers that do not depend on the batch, and
its lifetime (`embedded_server`)."""
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from llm.transport.embedded import MODEL, ServerExited, embedded_server, gguf_path, started_early
from tests.support.paths import REPO

pytestmark = pytest.mark.slow  # subprocesses: see pyproject's slow marker

SCHEMA = {"type": "object", "properties": {"label": {"enum": ["natural", "rare", "implausible"]},
                                           "reason": {"type": "string", "maxLength": 40}},
          "required": ["label", "reason"], "additionalProperties": False}


@pytest.fixture(scope="module")
def server() -> str:
    proc = subprocess.Popen([sys.executable, "-m", "llm.transport.embedded.server", "--gguf", str(gguf_path())],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    assert line.startswith("listening on "), proc.stderr.read().decode()[-2000:]
    yield f"http://127.0.0.1:{int(line.split()[-1])}/v1"
    proc.terminate()
    proc.wait(10)


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/chat/completions", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ask(content: str = "Say hello to the sea.", **kw) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 12, **kw}


def test_the_model_list_names_the_model(server):
    with urllib.request.urlopen(f"{server}/models") as resp:
        assert [m["id"] for m in json.loads(resp.read())["data"]] == [MODEL]


def test_an_answer_has_the_openai_shape_and_its_usage(server):
    status, body = post(server, ask(max_tokens=5, temperature=0))
    assert status == 200
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 5 > 20


def test_a_json_schema_is_enforced(server):
    fmt = {"type": "json_schema", "json_schema": {"name": "v", "schema": SCHEMA, "strict": True}}
    for seed in range(3):
        status, body = post(server, ask("Is a retired teacher who posts daily natural?", max_tokens=60,
                                        temperature=1.0, seed=seed, response_format=fmt))
        assert status == 200
        answer = json.loads(body["choices"][0]["message"]["content"])
        assert answer["label"] in ("natural", "rare", "implausible") and len(answer["reason"]) <= 40
        assert set(answer) == {"label", "reason"} and body["choices"][0]["finish_reason"] == "stop"


def test_the_llamacpp_form_of_a_schema_is_enforced_too(server):
    status, body = post(server, ask(max_tokens=60, response_format={"type": "json_object", "schema": SCHEMA}))
    assert status == 200 and set(json.loads(body["choices"][0]["message"]["content"])) == {"label", "reason"}


def test_a_stop_string_cuts_the_text(server):
    _, whole = post(server, ask(max_tokens=30, temperature=0))
    text = whole["choices"][0]["message"]["content"]
    word = text.split()[2]
    _, cut = post(server, ask(max_tokens=30, temperature=0, stop=[word]))
    assert cut["choices"][0]["message"]["content"] == text[:text.index(word)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_the_seed_decides_a_sampled_answer(server):
    answers = [post(server, ask(max_tokens=20, temperature=1.2, seed=s))[1]["choices"][0]["message"]["content"]
               for s in (1, 1, 2)]
    assert answers[0] == answers[1] and answers[0] != answers[2]


def test_answers_do_not_depend_on_what_else_is_in_the_batch(server):
    bodies = [ask(f"Write about the number {i}.", max_tokens=16, temperature=1.0, seed=i) for i in range(6)]
    alone = [post(server, b)[1]["choices"][0]["message"]["content"] for b in bodies]
    together = [None] * len(bodies)

    def send(i):
        together[i] = post(server, bodies[i])[1]["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not JSON"),
    (ask(max_tokens=9000), "more than the model's context of 8192 tokens"),
    (ask(content="word " * 9000), "more than the model's context"),
    (ask(response_format={"type": "json_schema", "json_schema": {"schema": {"type": "strange"}}}),
     "cannot be compiled"),
    (ask(response_format={"type": "json_schema", "json_schema": {"schema": {"$ref": "#/nowhere"}}}),
     "cannot be compiled"),
    (ask(response_format={"type": "xml"}), "response_format type"),
    (ask(n=2), "n must be 1"),
    (ask(stream=True), "stream is not supported"),
    (ask(temperature=-1), "temperature must be a number"),
    (ask(max_tokens=0), "max_tokens must be a positive integer"),
    (ask(seed="x"), "seed must be an integer"),
    ({"messages": "hello"}, "messages must be a non-empty list"),
    (ask(stop=[""]), "stop must be"),
])
def test_a_bad_request_is_a_clear_400_and_the_server_stays_up(server, body, words):
    status, error = post(server, body)
    assert status == 400 and words in error["error"]["message"], error
    assert post(server, ask(max_tokens=2))[0] == 200


def test_an_unknown_model_is_a_404(server):
    status, error = post(server, {**ask(), "model": "gpt-9"})
    assert status == 404 and "gpt-9" in error["error"]["message"]


def test_a_client_that_disconnects_leaves_the_rest_of_its_batch_running(server):
    port = int(server.rsplit(":", 1)[1].split("/")[0])
    body = json.dumps(ask(max_tokens=400, temperature=1.0)).encode()
    gone = socket.create_connection(("127.0.0.1", port))
    gone.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    result = {}
    other = threading.Thread(target=lambda: result.update(answer=post(server, ask(max_tokens=40))))
    other.start()
    time.sleep(1.0)
    gone.close()  # mid-generation
    other.join(120)
    assert result["answer"][0] == 200 and result["answer"][1]["usage"]["completion_tokens"] > 0
    assert post(server, ask(max_tokens=2))[0] == 200


async def test_a_server_that_dies_in_use_raises_one_clear_error():
    with pytest.raises(ServerExited, match=r"^the embedded server exited with code -9: "):
        async with embedded_server(gguf_path()):
            os.kill(_newest_child_server(), 9)
            await asyncio.sleep(60)


async def test_a_server_started_early_is_the_one_served_and_is_stopped_either_way():
    before = set(_child_servers())
    async with started_early(gguf_path()):
        early = set(_child_servers()) - before
        assert len(early) == 1  # started at once, before anything asks for it
        async with embedded_server(gguf_path()) as url:
            assert set(_child_servers()) - before == early  # taken, not another
            with urllib.request.urlopen(f"{url}/models") as resp:
                assert json.loads(resp.read())["data"][0]["id"] == MODEL
        assert not set(_child_servers()) - before
    async with started_early(gguf_path()):  # not taken: stopped at the end of the block
        assert len(set(_child_servers()) - before) == 1
    assert not set(_child_servers()) - before


def _newest_child_server() -> int:
    """The embedded server this process started last (the module's fixture is one too)."""
    started = _child_servers()
    return max(started, key=started.get)


def _child_servers() -> dict[int, int]:
    """The embedded servers this process started that are running: pid -> start time."""
    started = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == os.getpid() and b"llm.transport.embedded.server" in \
                    Path(f"/proc/{name}/cmdline").read_bytes():
                started[int(name)] = int(stat[19])  # start time, in clock ticks since boot
        except (OSError, IndexError, ValueError):
            pass
    return started


async def test_a_server_that_cannot_start_says_why(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    from common.errors import UsageError

    with pytest.raises(UsageError, match="the embedded server exited with code 1 at start: .*not a GGUF file"):
        async with embedded_server(bad):
            raise AssertionError("never served")
