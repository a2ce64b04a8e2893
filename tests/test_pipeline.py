"""`rolegen pipeline`: the whole loop on a tiny model (plumbing, no quality claim), and
a rerun that resumes instead of starting over."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from rolegen.cli import main


def test_pipeline_runs_every_stage_and_resumes(tiny_model, tmp_path):
    config = {
        "model": str(tiny_model),
        "persona": ["tea-house-hana", "chef-pip"],
        "dialogues": 2,
        "turns": 3,
        "eval_dialogues": 1,
        # the random tiny model rarely repeats itself: a loose echo threshold makes the
        # checks reject some of its turns, so there are preference pairs to train on
        "generate": {"engine": "hf", "max_new_tokens": 12, "echo_ratio": 35.0},
        "train": {
            "max_steps": 2,
            "dtype": "float32",
            "max_length": 1024,
            "dpo_max_pairs": 8,
            "save_steps": 0,
        },
        "eval": {
            "engine": "hf",
            "system": ["base", "adapter"],
            "persona": ["evals/personas/barista-leo.yaml"],
            "max_new_tokens": 12,
            "bootstrap": 50,
            "turns": 3,
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "pipe"
    result = CliRunner().invoke(main, ["pipeline", "--config", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "data" / "dataset").is_dir() and (out / "adapter" / "summary.json").is_file()
    summary = json.loads((out / "adapter" / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["sft", "dpo"]
    results = json.loads((out / "eval" / "results.json").read_text())
    assert set(results["systems"]) == {"base", "adapter"}
    assert results["adapter"]["path"] == str(out / "adapter")
    assert results["samples"] == {"base": 6, "adapter": 6}  # 1 persona x 2 scripts x 3 turns
    assert (out / "eval" / "report.html").is_file()

    again = CliRunner().invoke(main, ["pipeline", "--config", str(path), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "[1/3] generate: done" in again.output and "[2/3] train: done" in again.output
    assert "4 dialogues done, 0 to go" in again.output


def test_pipeline_config_errors_name_the_section(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"train": {"epoks": 2}}))
    result = CliRunner().invoke(main, ["pipeline", "--config", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "pipeline config, train: unknown field 'epoks'" in result.output


def test_pipeline_teacher_behind_a_server_writes_the_data(tiny_model, tmp_path):
    from rolegen.config import PipelineConfig
    from rolegen.recipes.pipeline import _teacher_server

    assert _teacher_server(PipelineConfig()) == {}
    chat = _teacher_server(PipelineConfig(teacher_url="http://127.0.0.1:9/v1"))
    assert chat == {"engine": "openai", "base_url": "http://127.0.0.1:9/v1", "request_mode": "chat"}
    both = PipelineConfig(teacher_url="http://127.0.0.1:9/v1", teacher_model=str(tiny_model))
    assert _teacher_server(both)["request_mode"] == "completions"
    # the generate stage goes to the teacher's server (nothing listens on port 9)
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "--model",
            str(tiny_model),
            "--teacher-url",
            "http://127.0.0.1:9/v1",
            "--persona",
            "chef-pip",
            "--turns",
            "1",
            "--out",
            str(tmp_path / "pipe"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "server http://127.0.0.1:9/v1 failed" in result.output
