"""Nothing lost, nothing repeated: `rolegen generate` killed (SIGKILL) and stopped
(SIGTERM) at several points, then resumed; two writers on one run folder; signals
during the cleanup; an engine that fails to start. The real CLI (in a subprocess where
it is killed) on the tiny LLaMA, one turn per dialogue, a scripted user."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from rolegen.cli import _interrupts, main
from rolegen.errors import RolegenError
from rolegen.generation import session

DIALOGUES = 6
IDS = [f"sir-aldric-of-wenmoor-{i:04d}" for i in range(DIALOGUES)]


def _args(tiny_model, out, script, dialogues=DIALOGUES):
    return [
        "generate",
        "--persona",
        "sir-aldric",
        "--dialogues",
        str(dialogues),
        "--turns",
        "1",
        "--batch-size",
        "1",
        "--user-script",
        str(script),
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--max-new-tokens",
        "8",
        "--max-resamples",
        "1",
        "--no-export",
        "--out",
        str(out),
    ]


def _start(args):
    cmd = [sys.executable, "-m", "rolegen", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(out) -> list[str]:
    path = out / "dialogues.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def _status(out) -> str | None:
    try:
        return json.loads((out / "manifest.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def _wait(proc, condition, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"exited before {what}: {proc.communicate()[1][-2000:]}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _stop(proc, signum) -> tuple[int, str]:
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _ids(out) -> list[str]:
    return [json.loads(line)["id"] for line in _lines(out)]


def test_killed_and_stopped_at_each_point_every_dialogue_is_written_once(tiny_model, tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("Good morning.\n")
    out = tmp_path / "run"
    args = _args(tiny_model, out, script)

    # 1. SIGTERM in the middle, as a dialogue is written: the write finishes, and the
    # manifest says the run was interrupted (a SIGKILL right after a write:
    # test_generate_cli.py::test_killed_run_resumes_without_loss)
    proc = _start(args)
    _wait(proc, lambda: len(_lines(out)) >= 1, "the first dialogue")
    code, err = _stop(proc, signal.SIGTERM)
    assert code == 143, err[-2000:]
    assert "interrupted: finished dialogues are saved; rerun with --resume" in err
    assert "Traceback" not in err
    assert _status(out) == "interrupted"
    kept = _lines(out)
    assert 1 <= len(kept) < DIALOGUES, "the run finished before it could be stopped"

    # 2. SIGKILL between the last dialogue's write and the manifest's update: the test
    # holds the process there by putting a FIFO where the manifest's temp file goes, so
    # the final write blocks on opening it
    proc = _start([*args, "--resume"])
    _wait(proc, lambda: _status(out) == "running", "the resumed run's manifest")
    fifo = out / ".manifest.json.tmp"
    os.mkfifo(fifo)
    _wait(proc, lambda: len(_lines(out)) == DIALOGUES, "the last dialogue")
    time.sleep(0.5)  # let it reach the manifest update and block there
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    fifo.unlink()
    assert _status(out) == "running"
    assert _lines(out)[: len(kept)] == kept

    # 3. resume: nothing left to do, nothing written twice, the run is complete
    done = CliRunner().invoke(main, [*args, "--resume"])
    assert done.exit_code == 0, done.output
    assert f"resume: {DIALOGUES} dialogues already in" in done.output
    assert sorted(_ids(out)) == IDS  # each exactly once
    assert _status(out) == "complete"


def test_second_writer_is_refused_with_the_pid_of_the_first(tiny_model, tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("Good morning.\n")
    out = tmp_path / "run"
    args = _args(tiny_model, out, script, dialogues=500)  # still running when stopped
    first = _start(args)
    try:
        _wait(first, lambda: _status(out) == "running", "the first writer's manifest")
        second = CliRunner().invoke(main, [*args, "--resume"])
        assert second.exit_code == 2, second.output
        assert f"error: {out}: in use by another rolegen process (pid {first.pid}" in second.output
        assert "Traceback" not in second.output
    finally:
        code, err = _stop(first, signal.SIGTERM)
    # stopped while it loaded the engine or wrote: never a half line, never "running"
    assert code == 143, err[-2000:]
    assert _status(out) == "interrupted"
    assert len(set(_ids(out))) == len(_ids(out)) < 500


def test_a_second_signal_while_cleaning_up_is_noted_and_a_third_stops(capsys):
    before = signal.getsignal(signal.SIGTERM)  # another test (Ray) may have set one
    with _interrupts() as received:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs before this ends
        os.kill(os.getpid(), signal.SIGINT)  # e.g. during the manifest's update: noted
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert received == [signal.SIGTERM, signal.SIGINT, signal.SIGINT]
    assert "interrupt once more to stop at once" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before  # put back


def test_engine_that_fails_to_start_leaves_a_folder_a_rerun_reuses(
    tiny_model, tmp_path, monkeypatch
):
    script = tmp_path / "script.txt"
    script.write_text("Good morning.\n")
    out = tmp_path / "run"
    args = [*_args(tiny_model, out, script, dialogues=1)]

    def fail(*a, **k):
        raise RolegenError("the engine did not start (out of memory)")

    monkeypatch.setattr(session, "run_batches", fail)
    failed = CliRunner().invoke(main, args)
    assert failed.exit_code == 2 and "the engine did not start" in failed.output
    assert "Traceback" not in failed.output
    assert _status(out) == "interrupted" and _lines(out) == []
    monkeypatch.undo()

    again = CliRunner().invoke(main, args)  # the same command, no --resume needed
    assert again.exit_code == 0, again.output
    assert "holds no finished dialogue: starting the run there afresh" in again.output
    assert _ids(out) == IDS[:1] and _status(out) == "complete"


@pytest.mark.parametrize("under", [False, True])
def test_generate_out_that_is_a_file_is_refused_before_any_work(tmp_path, under):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    out = taken / "run" if under else taken
    result = CliRunner().invoke(main, ["generate", "--persona", "sir-aldric", "--out", str(out)])
    assert result.exit_code == 2 and f"error: {out}: " in result.output
    assert "model:" not in result.output  # before the model was looked at
    assert "Traceback" not in result.output
    assert taken.read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["taken"]
