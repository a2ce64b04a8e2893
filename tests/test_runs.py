import json

import pytest

from rolegen.errors import RolegenError
from rolegen.runs import RunDir


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
    RunDir(tmp_path, resume=False, config={}).close()
    with pytest.raises(RolegenError, match="already holds a run; pass --resume"):
        RunDir(tmp_path, resume=False, config={})


def test_resume_with_changed_content_settings_is_refused(tmp_path):
    run = RunDir(tmp_path, resume=False, config={"seed": 1})
    run.write_manifest({"config": {"seed": 1, "turns": 6}})
    run.close()
    with pytest.raises(RolegenError, match=r"'turns' was 6 .* now 8"):
        RunDir(tmp_path, resume=True, config={"seed": 1, "turns": 8})


def test_resume_without_a_run_is_an_error(tmp_path):
    with pytest.raises(RolegenError, match="no run to resume"):
        RunDir(tmp_path / "new", resume=True, config={})


def test_manifest_is_replaced_atomically(tmp_path):
    run = RunDir(tmp_path, resume=False, config={})
    run.write_manifest({"status": "running"})
    run.write_manifest({"status": "complete"})
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"status": "complete"}
    assert not list(tmp_path.glob(".*.tmp"))
