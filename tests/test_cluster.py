"""`rolegen generate` on Ray: a local cluster (`ray.init(num_cpus=2)`) with 2 replicas
writes the same dialogues as one process (transformers engine, same seeds), survives a
replica killed mid-run, and resumes a local run."""

import json
import os
import signal
import threading
import time

import pytest
from support import run_eval

from rolegen.config import (
    ClusterConfig,
    EngineConfig,
    GenerateConfig,
    ModelConfig,
    SamplingConfig,
)
from rolegen.recipes.generate import run_generate

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        configure_logging=False,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def _cfg(model, out, dialogues=3, on_ray=False, **cluster):
    return GenerateConfig(
        personas=["tea-house-hana", "captain-mara-vell"],
        dialogues=dialogues,
        turns=3,
        model_config=ModelConfig(model=str(model)),
        engine_config=EngineConfig(engine="hf"),
        out=str(out),
        batch_size=2,
        candidates=2,  # where the batches run is tested here, not the resampling
        sampling=SamplingConfig(max_new_tokens=16, user_max_new_tokens=12),
        export=False,
        cluster=ClusterConfig(ray=on_ray, **cluster),
    )


def _records(out) -> dict:
    lines = (out / "dialogues.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    by_id = {r["id"]: r for r in records}
    assert len(by_id) == len(records), "a dialogue was written twice"
    return by_id


@pytest.fixture(scope="module")
def local_run(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    run_generate(_cfg(tiny_model, out, dialogues=4), echo=lambda s: None)
    return _records(out)


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_two_replicas_write_the_dialogues_of_a_local_run(cluster, tiny_model, tmp_path, local_run):
    out = tmp_path / "ray"
    run_generate(_cfg(tiny_model, out, dialogues=4, on_ray=True, replicas=2), echo=lambda s: None)
    got = _records(out)
    assert sorted(got) == sorted(local_run)
    for key, record in local_run.items():
        assert got[key] == record, key
    manifest = _manifest(out)
    assert manifest["status"] == "complete"
    engine = manifest["engine"]
    assert engine["where"] == "ray" and engine["replicas"] == 2
    assert engine["replica_failures"] == 0
    # both replicas did work: 4 batches of 2 went to 2 replicas
    assert len(engine["batches_per_replica"]) == 2
    assert sum(engine["batches_per_replica"].values()) == 4
    assert manifest["tokens"]["generated"] > 0


def _replica_pids() -> list[int]:
    import psutil

    pids = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::Replica"):
            pids.append(p.pid)
    return pids


def test_a_replica_killed_mid_run_loses_nothing(cluster, tiny_model, tmp_path, local_run):
    out = tmp_path / "ray"
    cfg = _cfg(tiny_model, out, dialogues=4, on_ray=True, replicas=2)
    cfg.batch_size = 1  # 8 batches: the kill lands while most are still to come
    messages, error = [], []

    def run():
        try:
            run_generate(cfg, echo=messages.append)
        except Exception as e:  # noqa: BLE001 -- reported below
            error.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.time() + 300
    while thread.is_alive() and time.time() < deadline and killed is None:
        path = out / "dialogues.jsonl"
        if path.exists() and path.read_text().count("\n") >= 1:
            pids = _replica_pids()
            if pids:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=600)
    assert not error, error
    assert killed is not None, "no replica process to kill"
    manifest = _manifest(out)
    assert manifest["status"] == "complete"
    assert manifest["engine"]["replica_failures"] >= 1
    assert any("died" in m for m in messages)
    got = _records(out)
    assert sorted(got) == sorted(local_run)
    # batch size 1 here, 2 in the local run: the transformers engine seeds per batch, so
    # texts may differ; what must hold is that every dialogue is there, once, complete
    for record in got.values():
        assert record["end_reason"] and len(record["messages"]) >= 3


def test_resume_a_local_run_on_ray(cluster, tiny_model, tmp_path, local_run):
    out = tmp_path / "run"
    run_generate(_cfg(tiny_model, out, dialogues=2), echo=lambda s: None)
    assert len(_records(out)) == 4
    cfg = _cfg(tiny_model, out, dialogues=4, on_ray=True, replicas=2)
    cfg.resume = True
    run_generate(cfg, echo=lambda s: None)
    got = _records(out)
    # the resumed run makes the batches an uninterrupted local run made: same text
    assert got == local_run
    assert _manifest(out)["dialogues"]["written_this_session"] == 4


def test_eval_on_ray_writes_the_dialogues_of_a_local_eval(
    cluster, tiny_model, eval_script, tmp_path
):
    args = ["--system", "base", "--system", "base+repetition-penalty=1.3", "--batch-size", "2"]
    args += ["--no-fluency", "--no-embeddings"]

    def evaluate(out, *extra):
        result = run_eval(tiny_model, out, eval_script, *args, *extra)
        assert result.exit_code == 0, result.output
        return _records(out)

    local = evaluate(tmp_path / "local")
    on_ray = evaluate(tmp_path / "ray", "--ray", "--replicas", "2")
    assert len(local) == 8 and on_ray == local
    assert (tmp_path / "ray" / "results.json").is_file()


def test_bad_cluster_flags_fail_before_anything_loads(tiny_model, tmp_path):
    from click.testing import CliRunner

    from rolegen.cli import main

    for flag, value in (("--replicas", "0"), ("--tensor-parallel", "0"), ("--replica-cpus", "-1")):
        result = CliRunner().invoke(
            main,
            ["generate", "--persona", "tea-house-hana", "--model", str(tiny_model)]
            + ["--out", str(tmp_path / "run"), "--ray", flag, value],
        )
        assert result.exit_code == 2 and f"{flag} must be at least 1" in result.output
    assert not (tmp_path / "run").exists()
