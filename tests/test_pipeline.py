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
    # scored under rolegen's prompt and the plain one held out of training (the default)
    systems = {"base", "adapter", "base @ plain", "adapter @ plain"}
    assert results["adapter"]["path"] == str(out / "adapter")
    assert results["samples"] == dict.fromkeys(systems, 6)  # 1 persona x 2 scripts x 3 turns
    # the default training data: replies drawn with frequency penalty 0.5, each paired
    # against a plain-sampled one, under three prompts; DPO runs each context once
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["config"]["distill"] == "frequency-penalty=0.5"
    assert manifest["config"]["prompts"] == ["rolegen", "tavern-greeting", "sheet-examples"]
    pairs = (out / "data" / "preference" / "train.jsonl").read_text().splitlines()
    assert any("plain_decoding" in json.loads(line)["reasons"] for line in pairs)
    trained = json.loads((out / "adapter" / "train_config.json").read_text())
    assert trained["dpo_shared_prefix"] and trained["ul_weight"] == 0.5
    assert (out / "eval" / "report.html").is_file()

    again = CliRunner().invoke(main, ["pipeline", "--config", str(path), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "[1/3] generate: done" in again.output and "[2/3] train: done" in again.output
    assert "8 dialogues done, 0 to go" in again.output  # 2 scripts x 2 systems x 2 prompts


def test_pipeline_config_errors_name_the_section(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"train": {"epoks": 2}}))
    result = CliRunner().invoke(main, ["pipeline", "--config", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "pipeline config, train: unknown field 'epoks'" in result.output


def test_pipeline_teacher_behind_a_server_writes_the_data(tiny_model, tmp_path):
    from rolegen.config import PipelineConfig
    from rolegen.config.pipeline_stages import teacher_server

    assert teacher_server(PipelineConfig()) == {}
    chat = teacher_server(PipelineConfig(teacher_url="http://127.0.0.1:9/v1"))
    assert chat == {"engine": "openai", "base_url": "http://127.0.0.1:9/v1", "request_mode": "chat"}
    both = PipelineConfig(teacher_url="http://127.0.0.1:9/v1", teacher_model=str(tiny_model))
    assert teacher_server(both)["request_mode"] == "completions"
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
    assert "error: server http://127.0.0.1:9/v1: GET /models failed after" in result.output


def _two_rounds_config(tiny_model) -> dict:
    """A small run that still makes preference pairs in both rounds: one persona, one
    script, three turns, one DPO step, one eval system."""
    return {
        "model": str(tiny_model),
        "rounds": 2,
        "persona": ["chef-pip"],
        "user_script": ["personas/scripts/smalltalk.txt"],
        "dialogues": 2,
        "turns": 3,
        "eval_dialogues": 1,
        "generate": {"engine": "hf", "max_new_tokens": 8, "echo_ratio": 35.0, "max_resamples": 3},
        # DPO alone: the pairs come from every rejected candidate, while the random model's
        # few clean dialogues may all be cut below the filter's two turns (no SFT data)
        "train": {
            "method": "dpo",
            "ul_weight": 0,  # unlikelihood takes its contexts from the SFT split
            "max_steps": 1,
            "dtype": "float32",
            "max_length": 512,
            "dpo_max_pairs": 4,
            "save_steps": 0,
        },
        "eval": {
            "engine": "hf",
            "system": ["adapter"],
            "persona": ["evals/personas/barista-leo.yaml"],
            "user_script": ["personas/scripts/smalltalk.txt"],
            "max_new_tokens": 8,
            "turns": 2,
            "bootstrap": 20,
            "fluency": False,
            "embeddings": False,
        },
    }


def test_round_two_generates_with_round_ones_adapter_and_resumes_after_round_one(
    tiny_model, tmp_path, monkeypatch
):
    import rolegen.recipes.generate as generate
    from rolegen.config.pipeline_stages import round_seed

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_two_rounds_config(tiny_model)))
    out = tmp_path / "pipe"
    args = ["pipeline", "--config", str(path), "--out", str(out)]

    # stopped as Ctrl-C would stop it, once round 1 has trained and round 2 starts
    real = generate.run_generate

    def stop_in_round_two(cfg, echo=print):
        if cfg.engine_config.adapter:
            raise KeyboardInterrupt
        return real(cfg, echo=echo)

    monkeypatch.setattr(generate, "run_generate", stop_in_round_two)
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 130, first.output
    assert "[round 1/2] train:" in first.output and "[round 2/2] generate:" in first.output
    assert (out / "adapter" / "summary.json").is_file()
    # round 1's stage times were written as each stage ended, before the stop
    kept = json.loads((out / "pipeline.json").read_text())["timings_seconds"]
    assert set(kept) == {"generate", "train"}
    monkeypatch.setattr(generate, "run_generate", real)
    round_one = [out / "data" / "manifest.json", out / "adapter" / "adapter_model.safetensors"]
    written = [p.stat().st_mtime_ns for p in round_one]

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "[round 1/2] generate: done" in again.output
    assert "[round 1/2] train: done" in again.output
    assert "[round 2/2] eval:" in again.output and "(round 2 adapter)" in again.output
    assert [p.stat().st_mtime_ns for p in round_one] == written  # round 1 is not redone

    # round 2 generated with round 1's adapter, under seeds of its own
    manifest = json.loads((out / "round2" / "data" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["adapter"]["path"] == str(out / "adapter")
    assert manifest["config"]["seed"] == round_seed(0, 2) != 0
    assert json.loads((out / "data" / "manifest.json").read_text())["config"]["seed"] == 0
    # ... and trained on from that adapter
    summary = json.loads((out / "round2" / "adapter" / "summary.json").read_text())
    assert summary["init_adapter"]["path"] == str(out / "adapter") and summary["round"] == 2
    # the one eval is of round 2's adapter, and says so
    results = json.loads((out / "round2" / "eval" / "results.json").read_text())
    assert results["adapter"]["path"] == str(out / "round2" / "adapter")
    assert results["adapter"]["round"] == 2
    assert not (out / "eval").exists()
    pipeline = json.loads((out / "pipeline.json").read_text())
    assert pipeline["rounds"] == 2 and pipeline["results"] == str(out / "round2" / "eval")
    times = pipeline["timings_seconds"]
    assert {k: times[k] for k in kept} == kept  # skipped stages keep the time they took
    assert set(times) == {"generate", "train", "round2/generate", "round2/train", "round2/eval"}


def test_rounds_below_one_are_refused_and_round_seeds_are_distinct(tmp_path):
    from rolegen.config.pipeline_stages import round_seed

    out = tmp_path / "pipe"
    result = CliRunner().invoke(main, ["pipeline", "--rounds", "0", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "--rounds must be at least 1" in result.output and "got 0" in result.output
    assert not out.exists()
    seeds = [round_seed(0, k) for k in range(1, 6)] + [round_seed(1, k) for k in range(1, 6)]
    assert seeds[0] == 0 and seeds[5] == 1  # round 1 keeps the run's seed
    assert len(set(seeds)) == len(seeds)  # no stage of a round reuses another's seed
    assert all(0 <= s < 2**31 for s in seeds)


def test_prompt_names_of_both_stages_are_checked_before_the_first_stage(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"generate": {"prompts": "rolegen,tavern-greeting,nope"}}))
    out = tmp_path / "pipe"
    result = CliRunner().invoke(main, ["pipeline", "--config", str(path), "--out", str(out)])
    assert result.exit_code == 2 and "unknown prompt 'nope' (--prompts)" in result.output
    assert not out.exists()
    path.write_text(yaml.safe_dump({"eval": {"prompts": ["plain", "plain"]}}))
    result = CliRunner().invoke(main, ["pipeline", "--config", str(path), "--out", str(out)])
    assert result.exit_code == 2 and "--prompts: name each prompt once" in result.output


def test_an_eval_prompt_that_also_made_training_data_is_noted():
    from rolegen.config import EvalConfig, GenerateConfig
    from rolegen.recipes.pipeline import _check_prompts

    notes = []
    trained = GenerateConfig(prompts=["rolegen,tavern-greeting,sheet-examples"])
    _check_prompts(trained, EvalConfig(prompts=["rolegen,plain"]), notes.append)
    assert notes == []  # plain held out; rolegen is the project's own template
    _check_prompts(trained, EvalConfig(prompts=["plain,sheet-examples"]), notes.append)
    assert notes == [
        "note: eval prompt(s) sheet-examples also render training dialogues (generate: "
        "prompts): their figures do not measure a held-out prompt"
    ]
