import json
import os
import signal
import subprocess
import sys

import pytest

from rolegen.errors import RolegenError
from rolegen.runs import out_dirs
from rolegen.runs.folders import RunDir, file_hashes, input_hashes, signals_deferred
from rolegen.runs.out_dirs import command_scope


def _record(i):
    return {"id": f"d-{i}", "messages": [{"role": "system", "content": "x"}]}


def test_resume_cuts_a_torn_last_line_and_keeps_finished_dialogues(tmp_path):
    run = RunDir(tmp_path, resume=False, config={"seed": 1})
    run.write_manifest({"config": {"seed": 1}})
    run.append(_record(0))
    run.append(_record(1))
    run.close()
    with (tmp_path / "dialogues.jsonl").open("a") as fh:
        fh.write('{"id": "d-2", "messa')  # the process died mid-write

    resumed = RunDir(tmp_path, resume=True, config={"seed": 1})
    assert resumed.done_ids == {"d-0", "d-1"}
    resumed.append(_record(2))
    resumed.close()
    lines = (tmp_path / "dialogues.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["d-0", "d-1", "d-2"]


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    run = RunDir(tmp_path, resume=False, config={})
    run.append(_record(0))
    run.close()
    with pytest.raises(RolegenError, match="already holds a run; pass --resume"):
        RunDir(tmp_path, resume=False, config={})


def test_resume_with_changed_content_settings_is_refused(tmp_path):
    run = RunDir(tmp_path, resume=False, config={"seed": 1})
    run.write_manifest({"config": {"seed": 1, "turns": 6}})
    run.close()
    with pytest.raises(RolegenError, match=r"'turns' was 6 .* now 8"):
        RunDir(tmp_path, resume=True, config={"seed": 1, "turns": 8})


@pytest.mark.parametrize("manifest", ['{"config": [1, 2]}', "[]", '{"inputs": "x"}', "{"])
def test_resume_from_a_manifest_of_the_wrong_shape_is_refused(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(RolegenError, match="manifest.json: (unreadable|not a rolegen) manifest"):
        RunDir(tmp_path, resume=True, config={"seed": 1})


def test_resume_without_a_run_is_an_error(tmp_path):
    with pytest.raises(RolegenError, match="no run to resume"):
        RunDir(tmp_path / "new", resume=True, config={})


def test_manifest_is_replaced_atomically(tmp_path):
    run = RunDir(tmp_path, resume=False, config={})
    run.write_manifest({"status": "running"})
    run.write_manifest({"status": "complete"})
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"status": "complete"}
    assert not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------ damaged files


def _lines(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def test_unreadable_middle_line_is_reported_and_nothing_after_it_is_cut(tmp_path, capsys):
    run = RunDir(tmp_path, resume=False, config={})
    run.append(_record(0))
    run.close()
    with (tmp_path / "dialogues.jsonl").open("a") as fh:
        fh.write("\n")  # a blank line
        fh.write('{"id": "d-x", "messa\n')  # a broken line that is not the last
        fh.write(json.dumps(_record(1)) + "\n" + json.dumps(_record(2)) + "\n")
    before = (tmp_path / "dialogues.jsonl").read_bytes()

    resumed = RunDir(tmp_path, resume=True, config={})
    resumed.close()
    assert resumed.done_ids == {"d-0", "d-1", "d-2"}
    assert (tmp_path / "dialogues.jsonl").read_bytes() == before  # nothing cut
    err = capsys.readouterr().err
    assert "dialogues.jsonl:3: not a readable dialogue; kept as it is" in err
    assert "cut" not in err


def test_last_line_that_lost_only_its_newline_is_kept(tmp_path):
    (tmp_path / "dialogues.jsonl").write_text(
        json.dumps(_record(0)) + "\n" + json.dumps(_record(1))
    )
    run = RunDir(tmp_path, resume=True, config={})
    run.append(_record(2))
    run.close()
    assert run.done_ids == {"d-0", "d-1", "d-2"}
    assert _lines(tmp_path / "dialogues.jsonl") == ["d-0", "d-1", "d-2"]


def test_deeply_nested_torn_line_is_cut_without_a_recursion_error(tmp_path):
    (tmp_path / "dialogues.jsonl").write_text(json.dumps(_record(0)) + "\n" + "[" * 100_000)
    run = RunDir(tmp_path, resume=True, config={})
    run.close()
    assert run.done_ids == {"d-0"}
    assert _lines(tmp_path / "dialogues.jsonl") == ["d-0"]


# ------------------------------------------------------------------ the folder


def test_folder_with_no_finished_dialogue_is_reused_without_resume(tmp_path):
    # what a run whose engine failed to start leaves: a manifest and an empty file
    run = RunDir(tmp_path, resume=False, config={"seed": 1})
    run.write_manifest({"status": "interrupted", "config": {"seed": 1}})
    run.close()
    again = RunDir(tmp_path, resume=False, config={"seed": 2})
    again.append(_record(0))
    again.close()
    assert not (tmp_path / "manifest.json").exists()  # the stub's manifest is gone
    assert _lines(tmp_path / "dialogues.jsonl") == ["d-0"]


@pytest.mark.parametrize("under_a_file", [False, True])
def test_out_that_is_a_file_is_refused_and_nothing_is_written(tmp_path, under_a_file):
    afile = tmp_path / "taken"
    afile.write_text("mine\n")
    out = afile / "run" if under_a_file else afile
    with pytest.raises(RolegenError, match=f"{out}: .*is (an existing file|a file)"):
        RunDir(out, resume=False, config={})
    assert afile.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RolegenError, match="no write permission on .*ro"):
            RunDir(locked / "run", resume=False, config={})
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_resume_refuses_a_card_that_changed(tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text("name: Mara\n")
    out = tmp_path / "run"
    run = RunDir(out, resume=False, config={}, inputs=file_hashes([card]))
    run.write_manifest({"config": {}})
    run.close()
    assert json.loads((out / "manifest.json").read_text())["inputs"] == file_hashes([card])
    RunDir(out, resume=True, config={}, inputs=file_hashes([card])).close()  # unchanged: fine

    card.write_text("name: Someone else\n")
    with pytest.raises(RolegenError, match=f"--resume: {card} changed since the run started"):
        RunDir(out, resume=True, config={}, inputs=file_hashes([card]))


def _started(out, inputs):
    run = RunDir(out, resume=False, config={}, inputs=inputs)
    run.write_manifest({"config": {}})
    run.close()


def test_resume_names_the_card_added_to_and_removed_from_a_folder(tmp_path):
    folder = tmp_path / "cards"
    folder.mkdir()
    for name in ("a.yaml", "b.yaml"):
        (folder / name).write_text(f"name: {name}\n")
    out = tmp_path / "run"
    _started(out, input_hashes([], {folder: sorted(folder.iterdir())}))
    (folder / "c.yaml").write_text("name: C\n")
    (folder / "a.yaml").unlink()
    with pytest.raises(RolegenError) as refused:
        RunDir(
            out, resume=True, config={}, inputs=input_hashes([], {folder: sorted(folder.iterdir())})
        )
    assert str(refused.value) == (
        f"--resume: folder {folder}/ changed since the run started (c.yaml added; a.yaml "
        "removed); resume with the folder as it was, or use another --out"
    )


def test_resume_names_the_edited_file_of_a_folder_not_the_folder(tmp_path):
    folder = tmp_path / "templates"
    (folder / "prompts").mkdir(parents=True)
    template = folder / "prompts" / "terse.jinja"
    template.write_text("Be {{ name }}.\n")
    out = tmp_path / "run"
    _started(out, input_hashes([], {folder: [template]}))
    RunDir(out, resume=True, config={}, inputs=input_hashes([], {folder: [template]})).close()

    template.write_text("Be terse, {{ name }}.\n")
    with pytest.raises(RolegenError, match=f"--resume: {template} changed since the run started"):
        RunDir(out, resume=True, config={}, inputs=input_hashes([], {folder: [template]}))


def test_a_long_list_of_added_cards_is_cut_to_three_names(tmp_path):
    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "a.yaml").write_text("name: A\n")
    out = tmp_path / "run"
    _started(out, input_hashes([], {folder: [folder / "a.yaml"]}))
    for i in range(5):
        (folder / f"n{i}.yaml").write_text(f"name: N{i}\n")
    with pytest.raises(RolegenError, match=r"\(n0.yaml, n1.yaml, n2.yaml and 2 more added\)"):
        RunDir(
            out, resume=True, config={}, inputs=input_hashes([], {folder: sorted(folder.iterdir())})
        )


# ------------------------------------------------------------------ one writer at a time

_HOLD = (
    "import sys, time\n"
    "from rolegen.runs.out_dirs import lock_out_dir\n"
    "lock_out_dir(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)


def _holder(folder):
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_is_refused_naming_the_pid_that_holds_the_folder(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(
            RolegenError, match=rf"in use by another rolegen process \(pid {proc.pid}"
        ):
            RunDir(tmp_path, resume=False, config={})
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "dialogues.jsonl").exists()


def test_lock_of_a_killed_process_does_not_block_resume(tmp_path):
    run = RunDir(tmp_path / "run", resume=False, config={})
    run.append(_record(0))
    run.close()
    proc = _holder(tmp_path / "other")
    os.kill(proc.pid, signal.SIGKILL)  # its lock file stays, with its pid in it
    proc.wait()
    assert (tmp_path / "other" / ".rolegen.lock").read_text().strip() == str(proc.pid)
    RunDir(tmp_path / "other", resume=False, config={}).close()  # not blocked


def test_command_scope_releases_its_folders(tmp_path):
    with command_scope():
        RunDir(tmp_path, resume=False, config={}).close()
        assert os.path.realpath(tmp_path) in out_dirs._held
    assert os.path.realpath(tmp_path) not in out_dirs._held
    proc = _holder(tmp_path)  # another process can take it now
    proc.kill()
    proc.wait()


def test_sigterm_in_a_deferred_block_acts_after_the_write_in_it(tmp_path):
    # append and write_manifest run in such a block
    seen = []

    def handler(signum, frame):
        seen.append((tmp_path / "dialogues.jsonl").read_text().count("\n"))
        raise KeyboardInterrupt

    run = RunDir(tmp_path, resume=False, config={})
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(KeyboardInterrupt), signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            run.append(_record(0))
    finally:
        signal.signal(signal.SIGTERM, previous)
        run.close()
    assert seen == [1]  # the handler ran once, after the whole line was written
