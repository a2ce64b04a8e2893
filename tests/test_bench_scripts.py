"""The benchmark scripts in bench/ import against today's code, and importing one runs
nothing: each does its work in `main()`, behind `if __name__ == "__main__"`.

A script without a `__main__` block is a library that other scripts import. A renamed constant in `rolegen` or in `bench/machine.py` broke `bench/pipeline_bench.py`
at import, unseen, since no test loaded it; `bench/near_dup_bench.py` ran its whole
benchmark at import and overwrote its committed figures.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def _results() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (BENCH / "results").rglob("*") if p.is_file()}


@pytest.fixture(scope="module", autouse=True)
def bench_on_path():
    sys.path.insert(0, str(BENCH))  # the scripts import one another by name
    yield
    sys.path.remove(str(BENCH))


def test_there_are_scripts_to_check():
    assert len(SCRIPTS) >= 20 and BENCH / "machine.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_bench_script_imports_and_runs_nothing(script, capsys):
    before = _results()
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if 'if __name__ == "__main__"' in script.read_text(encoding="utf-8"):
        assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
    else:  # a library of the other scripts (persona_features.py)
        users = [s for s in SCRIPTS if f"import {script.stem}" in s.read_text(encoding="utf-8")]
        assert users, f"{script.name} is neither a script nor imported by one"
    assert _results() == before, f"importing {script.name} wrote to bench/results"
    assert capsys.readouterr().out == "", f"importing {script.name} printed"


def test_a_runs_machine_limit_is_the_lower_of_memory_and_its_own_matmuls():
    from machine import EMBEDDED_EMBEDDING_PARAMETERS, EMBEDDED_PARAMETERS, run_limits

    limit = {
        "matmul_fp32_gflops": 100.0,
        "matmul_bf16_gflops": 1.0,
        "decode_limit": {"dtype": "float32", "tokens_per_s": 300.0},
    }
    # decoding alone: 2 FLOPs per parameter per token
    alone = run_limits(limit, generated=1000, prompt=0, cached=0)
    assert alone["compute_limit_tokens_per_s"] == round(100e9 / (2 * EMBEDDED_PARAMETERS), 1)
    assert alone["bound"] == "memory" and alone["machine_limit_tokens_per_s"] == 300.0
    # prompt tokens read from the cache cost nothing; computed ones skip the output layer
    cached = run_limits(limit, generated=1000, prompt=5000, cached=5000)
    assert cached["compute_limit_tokens_per_s"] == alone["compute_limit_tokens_per_s"]
    computed = run_limits(limit, generated=1000, prompt=5000, cached=1000)
    flops = 2 * (
        1000 * EMBEDDED_PARAMETERS + 4000 * (EMBEDDED_PARAMETERS - EMBEDDED_EMBEDDING_PARAMETERS)
    )
    assert computed["prompt_tokens_computed"] == 4000
    assert computed["compute_limit_tokens_per_s"] == round(1000 * 100e9 / flops, 1)
    assert computed["bound"] == "compute"
    assert computed["machine_limit_tokens_per_s"] == computed["compute_limit_tokens_per_s"]
    # bf16 where that is the dtype that runs
    bf16 = run_limits({**limit, "decode_limit": {"dtype": "bfloat16", "tokens_per_s": 500.0}},
                      generated=1000, prompt=0, cached=0)  # fmt: skip
    assert bf16["compute_limit_tokens_per_s"] == round(1e9 / (2 * EMBEDDED_PARAMETERS), 1)


def test_pipeline_bench_states_generate_against_both_limits(tmp_path):
    from pipeline_bench import stage_figures

    (tmp_path / "data").mkdir()
    (tmp_path / "adapter").mkdir()
    (tmp_path / "pipeline.json").write_text(json.dumps({"timings_seconds": {"generate": 60}}))
    manifest = {
        "tokens": {"generated": 6000, "prompt": 90000, "prompt_cached": 80000,
                   "character_replies_drawn": 100},
        "timings": {"engine_seconds": 50.0},
        "dialogues": {"total": 8},
        "config": {"batch_size": 8, "candidates": 2},
    }  # fmt: skip
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    stages = [{"name": "sft", "tokens_per_second": 200.0}]
    (tmp_path / "adapter" / "summary.json").write_text(json.dumps({"stages": stages}))
    machine = {"copy_bandwidth_gbs": 30.0, "training_dtype": "float32",
               "matmul_fp32_gflops": 150.0, "matmul_bf16_gflops": 1.0,
               "training_peak_gflops": 150.0}  # fmt: skip
    gen = stage_figures(tmp_path, machine)["generate"]
    assert gen["tokens_per_s"] == 120.0 and gen["batch"] == 16
    assert gen["machine_limit"]["prompt_tokens_computed"] == 10000
    assert gen["machine_limit"]["machine_limit_tokens_per_s"] <= gen["decode_limit"]
    assert gen["fraction_of_machine_limit"] == round(
        120.0 / gen["machine_limit"]["machine_limit_tokens_per_s"], 3
    )
