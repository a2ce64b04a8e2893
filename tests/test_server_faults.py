"""`--engine openai` against a server that misbehaves (tests/fault_server.py): retries and
backoff, the request timeout, a refused request, malformed and oversized answers, another
model answering; through the engine and through the CLI (one line, exit 2, nothing
written lost, the manifest says interrupted, no credential on disk)."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from fault_server import (
    HANG,
    RESET,
    FaultServer,
    chat,
    completion,
    models,
    reply,
    status,
)

from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.generation.engines import server as server_module
from rolegen.generation.engines.base import EngineOptions, Request
from rolegen.generation.engines.server import OpenAIEngine

SECRET_URL = "http://alice:s3cret@{host}"
COMPLETIONS = "/v1/completions"


def _engine(model, server, timeout=5.0, retries=3, mode="completions", served=None):
    url = server.url.replace("http://", "http://alice:s3cret@")
    options = EngineOptions(
        base_url=url,
        request_timeout=timeout,
        max_retries=retries,
        request_mode=mode,
        served_model=served,
    )
    return OpenAIEngine(model, options)


def _ask(engine, mode="completions"):
    messages = [{"role": "user", "content": "Hi"}] if mode == "chat" else None
    try:
        return engine.generate([Request(prompt_ids=[1, 2, 3], max_tokens=4, messages=messages)])
    finally:
        engine.close()


def _fails(model, routes, match, **kw) -> tuple[str, FaultServer]:
    with FaultServer(routes, lifetime=30) as server, pytest.raises(RolegenError) as caught:
        _ask(_engine(model, server, **kw), kw.get("mode", "completions"))
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message and "alice" not in message
    assert f"server http://127.0.0.1:{server.port}/v1" in message
    assert match in message, message
    return message, server


# ---------------------------------------------------------------- retries and time


def test_500_and_429_are_retried_and_retry_after_is_waited(embedded_model):
    routes = {COMPLETIONS: [status(500), status(429, headers={"Retry-After": "0.6"}), completion()]}
    with FaultServer(routes) as server:
        out = _ask(_engine(embedded_model, server))
    assert out[0].text == "Hello there."
    hits = server.hits_on(COMPLETIONS)
    assert len(hits) == 3
    assert hits[2].at - hits[1].at >= 0.55  # the Retry-After, not the shorter backoff
    assert hits[1].at - hits[0].at >= 0.35  # the first backoff, 0.5 s +- 20%


def test_a_400_is_sent_once_and_the_message_says_it_was_not_retried(embedded_model):
    message, server = _fails(
        embedded_model, {COMPLETIONS: [status(400, "prompt too long")]}, "HTTP 400, not retried"
    )
    assert "prompt too long" in message
    assert len(server.hits_on(COMPLETIONS)) == 1


def test_a_404_is_not_retried_but_a_408_is(embedded_model):
    _, server = _fails(embedded_model, {COMPLETIONS: [status(404)]}, "HTTP 404, not retried")
    assert len(server.hits_on(COMPLETIONS)) == 1
    with FaultServer({COMPLETIONS: [status(408), completion()]}) as server:
        assert _ask(_engine(embedded_model, server))[0].text == "Hello there."


def test_a_server_failing_for_good_gives_up_after_max_retries(embedded_model):
    message, server = _fails(
        embedded_model, {COMPLETIONS: [status(503)]}, "failed after 3 tries", retries=2
    )
    assert "HTTP 503" in message
    assert len(server.hits_on(COMPLETIONS)) == 3


def test_a_reset_connection_is_retried_then_named(embedded_model):
    with FaultServer({COMPLETIONS: [RESET, completion()]}) as server:
        assert _ask(_engine(embedded_model, server))[0].text == "Hello there."
    _fails(embedded_model, {COMPLETIONS: [RESET]}, "connection failed", retries=1)


def test_request_timeout_holds_against_a_hanging_server(embedded_model):
    start = time.monotonic()
    message, server = _fails(
        embedded_model, {COMPLETIONS: [HANG]}, "within 0.4 s (--request-timeout)", timeout=0.4
    )
    # three timeouts fit the budget (3 x 0.4 s) only without the backoffs: two tries
    assert len(server.hits_on(COMPLETIONS)) == 2
    assert time.monotonic() - start < 10


def test_a_slow_drip_body_is_a_timeout_not_a_wait_per_byte(embedded_model):
    slow = completion(drip=0.2, chunks=20)  # about 4 s for the whole body
    _fails(embedded_model, {COMPLETIONS: [slow]}, "no whole answer within 0.5 s", timeout=0.5)


def test_total_retry_time_is_bounded_even_with_long_retry_after(embedded_model):
    start = time.monotonic()
    busy = status(429, headers={"Retry-After": "3600"})
    _fails(embedded_model, {COMPLETIONS: [busy]}, "HTTP 429", timeout=0.5, retries=5)
    assert time.monotonic() - start < 10


# ---------------------------------------------------------------- malformed answers

MALFORMED = [
    ("empty choices", reply({"choices": []}), "'choices' is []"),
    ("null choices", reply({"choices": None}), "'choices' is None"),
    ("null text", reply({"choices": [{"text": None}]}), "choices[0].text is None, not text"),
    ("text a dict", reply({"choices": [{"text": {"a": 1}}]}), "choices[0].text is {'a': 1}"),
    ("choice a string", reply({"choices": ["hi"]}), "choices[0] is str"),
    ("a JSON list", reply([1, 2]), "the answer is list"),
    ("not JSON", reply(b"<html>502 Bad Gateway</html>"), "not JSON: '<html>502 Bad Gateway"),
    ("nested deep", reply(b"[" * 5000 + b"]" * 5000), "nested more than"),
    ("an error body", reply({"error": {"message": "overloaded"}}), "answered an error"),
]


@pytest.mark.parametrize("body,match", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_answer_is_one_line_naming_the_server(embedded_model, body, match):
    _, server = _fails(embedded_model, {COMPLETIONS: [body]}, match)
    assert len(server.hits_on(COMPLETIONS)) == 1  # a wrong shape is not retried


def test_a_chat_answer_without_a_message_is_named(embedded_model):
    bad = {"/v1/chat/completions": [reply({"choices": [{"message": None}]})]}
    _fails(embedded_model, bad, "choices[0].message is null", mode="chat")


def test_models_without_ids_or_of_the_wrong_shape_are_named(embedded_model):
    no_ids = {"/v1/models": [reply({"data": [{"object": "model"}]})]}
    _fails(embedded_model, no_ids, "GET /models lists no model with an 'id'")
    _fails(embedded_model, {"/v1/models": [reply([])]}, "GET /models: the answer is list")
    _fails(embedded_model, {"/v1/models": [reply({"data": None})]}, "has no list 'data'")


def test_an_oversized_body_is_refused_on_receipt(embedded_model, monkeypatch):
    monkeypatch.setattr(server_module, "MAX_BODY_BYTES", 64 << 10)
    _fails(embedded_model, {COMPLETIONS: [completion("x" * (200 << 10))]}, "answered more than")


def test_a_reply_past_max_tokens_is_cut_and_counted_as_cut_off(embedded_model):
    with FaultServer({COMPLETIONS: [completion("word " * 50_000)]}) as server:
        out = _ask(_engine(embedded_model, server))
    assert len(out[0].text) == 4 * server_module.CHARS_PER_TOKEN
    assert out[0].finish_reason == "length"


def test_a_server_answering_as_another_model_warns_once_and_says_so(embedded_model, capsys):
    with FaultServer({COMPLETIONS: [completion(model="gpt-impostor")]}) as server:
        engine = _engine(embedded_model, server)
        engine.generate([Request(prompt_ids=[1], max_tokens=4)] * 3)
        info = engine.describe()
        engine.close()
    assert info["answered_as"] == ["gpt-impostor"]
    assert capsys.readouterr().err.count("answered as model 'gpt-impostor'") == 1


# ---------------------------------------------------------------- through the CLI


def _generate(server_url, out, *extra):
    args = ["generate", "--persona", "captain-mara-vell", "--engine", "openai"]
    args += ["--base-url", server_url, "--out", str(out), "--no-export", "--no-check"]
    args += ["--user-script", str(out.parent / "script.txt"), "--turns", "1", "--batch-size", "1"]
    args += ["--request-timeout", "10", *extra]  # no hang here: room for a loaded machine
    (out.parent / "script.txt").write_text("Hello there.\n")
    return CliRunner().invoke(main, args)


def _no_secret_on_disk(folder):
    written = [p for p in folder.rglob("*") if p.is_file()]
    assert written, folder  # the run wrote its files: each is read below
    for path in written:
        assert "s3cret" not in path.read_text(errors="ignore"), path


def test_generate_against_a_failing_server_keeps_what_it_wrote(embedded_model, tmp_path):
    good = completion("Aye, welcome aboard the Kestrel, traveller.")
    routes = {COMPLETIONS: [good, status(400, "context too long")]}
    out = tmp_path / "run"
    with FaultServer(routes) as server:
        url = server.url.replace("http://", "http://alice:s3cret@")
        result = _generate(url, out, "--dialogues", "3")
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "HTTP 400, not retried" in error[0]
    assert "Traceback" not in result.output and "s3cret" not in result.output
    records = [json.loads(x) for x in (out / "dialogues.jsonl").read_text().splitlines()]
    assert len(records) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["config"]["base_url"] == server.url
    _no_secret_on_disk(out)


def test_max_retries_on_the_command_line_bounds_the_tries(embedded_model, tmp_path):
    with FaultServer({COMPLETIONS: [status(503)]}) as server:
        result = _generate(server.url, tmp_path / "run", "--max-retries", "1")
    assert result.exit_code == 2, result.output
    assert "failed after 2 tries" in result.output
    assert len(server.hits_on(COMPLETIONS)) == 2
    refused = _generate(server.url, tmp_path / "other", "--max-retries", "-1")
    assert refused.exit_code == 2 and "--max-retries must be 0 or more" in refused.output


@pytest.mark.parametrize("body", [reply({"choices": None}), reply([]), reply(b"garbage")])
def test_generate_against_a_malformed_server_is_one_line_and_interrupted(
    embedded_model, tmp_path, body
):
    out = tmp_path / "run"
    with FaultServer({COMPLETIONS: [body]}) as server:
        result = _generate(server.url, out, "--dialogues", "1")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"error: server {server.url}: POST /completions" in result.output
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"


def test_generate_records_another_model_answering_in_the_manifest(embedded_model, tmp_path):
    out = tmp_path / "run"
    with FaultServer({COMPLETIONS: [completion("Aye, aboard.", model="other-model")]}) as server:
        url = server.url.replace("http://", "http://alice:s3cret@")
        result = _generate(url, out, "--dialogues", "2")
    assert result.exit_code == 0, result.output
    assert result.output.count("answered as model 'other-model'") == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"]["server"]["answered_as"] == ["other-model"]
    assert manifest["status"] == "complete"
    _no_secret_on_disk(out)


def test_eval_writes_no_credential_into_its_manifest_or_results(embedded_model, tmp_path):
    routes = {"/v1/models": [models("smol")], "/v1/chat/completions": [chat("Aye.")]}
    script = tmp_path / "script.txt"
    script.write_text("Who are you?\nTell me more.\n")
    out = tmp_path / "eval"
    with FaultServer(routes) as server:
        url = server.url.replace("http://", "http://alice:s3cret@")
        args = ["eval", "--engine", "openai", "--base-url", url, "--persona", "captain-mara-vell"]
        args += ["--user-script", str(script), "--system", "base", "--no-fluency"]
        args += ["--no-embeddings", "--bootstrap", "10", "--out", str(out)]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["base_url"] == server.url
    _no_secret_on_disk(out)
