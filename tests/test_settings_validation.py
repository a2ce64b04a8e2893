"""Settings no run can use are refused where they are read, before any work: numbers
that are not finite, out-of-range checks and filter shares, decoding terms, and every
stage of a pipeline before its first."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.config import EvalConfig
from rolegen.errors import RolegenError


def _run(*args):
    return CliRunner().invoke(main, list(args))


def _one_line_error(result, match: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("flag", ["--temperature", "--top-p", "--repetition-penalty"])
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_generate_refuses_a_number_that_is_not_finite(tmp_path, flag, value):
    out = tmp_path / "run"
    result = _run("generate", "--persona", "captain-mara-vell", flag, value, "--out", str(out))
    _one_line_error(result, "must be a finite number")
    assert not out.exists()


def test_a_config_file_with_inf_is_refused_naming_the_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("persona: captain-mara-vell\nsampling:\n  temperature: .inf\n")
    result = _run("generate", "--config", str(config), "--out", str(tmp_path / "run"))
    _one_line_error(result, f"{config}: field 'temperature': must be a finite number, got inf")


@pytest.mark.parametrize("flag", ["--near-duplicate", "--repeat-ratio", "--crep4"])
def test_eval_refuses_a_check_threshold_that_is_not_finite(flag):
    _one_line_error(_run("eval", flag, "nan"), "must be a finite number")


@pytest.mark.parametrize("value", ["-3", "0"])
def test_distill_refuses_a_no_repeat_ngram_below_one(tmp_path, value):
    result = _run(
        "generate", "--persona", "captain-mara-vell", "--distill", f"no-repeat-ngram={value}"
    )
    _one_line_error(result, "no-repeat-ngram bans n-grams of N >= 1 words")


@pytest.mark.parametrize(
    "term", ["frequency-penalty=inf", "presence-penalty=nan", "repetition-penalty=0"]
)
def test_eval_refuses_a_system_with_a_decoding_term_out_of_range(term):
    cfg = EvalConfig(systems=["base", f"base+{term}"])
    with pytest.raises(RolegenError, match=re.escape(f"--system 'base+{term}'")):
        cfg.validate()


@pytest.mark.parametrize(
    "flag,value,match",
    [
        ("--test-share", "1.5", "--test-share must be at least 0 and below 1"),
        ("--test-share", "1", "--test-share must be at least 0 and below 1"),
        ("--test-share", "-1", "--test-share must be at least 0 and below 1"),
        ("--repeat-ratio", "-5", "--repeat-ratio must be between 0 and 100"),
        ("--near-duplicate", "500", "--near-duplicate must be between 0 and 100"),
        ("--crep4", "2", "--crep4 must be between 0 and 1"),
        ("--min-turns", "-1", "--min-turns must be at least 0"),
        ("--test-share", "inf", "must be a finite number"),
    ],
)
def test_filter_refuses_a_setting_out_of_range_before_reading(tmp_path, flag, value, match):
    data = tmp_path / "dialogues.jsonl"
    data.write_text("not even read\n")
    result = _run("filter", str(data), flag, value)
    _one_line_error(result, match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dialogues.jsonl"]


def test_a_config_key_that_is_not_text_is_named(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("1: 2\n")
    _one_line_error(_run("generate", "--config", str(config)), "field names are text, got 1")


@pytest.mark.parametrize(
    "section,body,match",
    [
        ("train", "max_steps: -2", "pipeline config, train: --max-steps must be at least 1"),
        ("generate", "temperature: -1", "pipeline config, generate: --temperature"),
        ("eval", "top_p: 0", "pipeline config, eval: --top-p"),
        ("train", "lora_r: 0", "pipeline config, train: --lora-r"),
    ],
)
def test_pipeline_checks_every_stage_before_the_first(tmp_path, section, body, match):
    config = tmp_path / "pipeline.yaml"
    out = tmp_path / "run"
    config.write_text(f"out: {out}\n{section}:\n  {body}\n")
    _one_line_error(_run("pipeline", "--config", str(config)), match)
    assert not (out / "data").exists()


@pytest.mark.parametrize(
    "args,match",
    [
        (["pipeline", "--rounds", "1000000000000"], "--rounds must be at most 100,"),
        (
            ["generate", "--persona", "captain-mara-vell", "--turns", "99999999"],
            "--turns must be at most 10,000,",
        ),
        (["eval", "--dialogues", "5000000"], "--dialogues must be at most 1,000,000,"),
    ],
)
def test_counts_past_any_plan_are_refused_before_work(tmp_path, args, match):
    _one_line_error(_run(*args, "--out", str(tmp_path / "run")), match)
    assert not (tmp_path / "run").exists()
