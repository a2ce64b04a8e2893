import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.config import GenerateConfig, TrainConfig
from rolegen.config.options import load_config
from rolegen.errors import RolegenError


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_config_with_flag_overrides(tmp_path):
    path = _write(
        tmp_path, "persona: [tea-house-hana]\nturns: 8\nsampling:\n  temperature: 0.5\ntop_p: 0.9\n"
    )
    cfg = load_config(GenerateConfig, path, {"turns": 3, "max_new_tokens": 40})
    assert cfg.personas == ["tea-house-hana"]
    assert cfg.turns == 3  # the flag wins
    assert cfg.sampling.temperature == 0.5  # nested section
    assert cfg.sampling.top_p == 0.9  # flat key routed into the section
    assert cfg.sampling.max_new_tokens == 40
    assert cfg.dialogues == 4  # default kept


def test_unknown_field_names_file_and_field(tmp_path):
    path = _write(tmp_path, "turnz: 3\n")
    with pytest.raises(RolegenError, match=r"run.yaml: unknown field 'turnz'"):
        load_config(GenerateConfig, path, {})


def test_wrong_type_names_file_and_field(tmp_path):
    path = _write(tmp_path, "dialogues: many\n")
    with pytest.raises(RolegenError, match=r"run.yaml: field 'dialogues': must be an integer"):
        load_config(GenerateConfig, path, {})


def test_bad_choice_is_rejected(tmp_path):
    path = _write(tmp_path, "engine: tensorrt\n")
    with pytest.raises(RolegenError, match="field 'engine' must be one of auto, vllm, hf"):
        load_config(GenerateConfig, path, {})
    # train's dtype, refused before the data is encoded and before --out is touched
    path = _write(tmp_path, "data: run\ndtype: fp16\n")
    with pytest.raises(RolegenError, match="field 'dtype' must be one of auto, bfloat16"):
        load_config(TrainConfig, path, {})


def test_malformed_yaml_is_named(tmp_path):
    path = _write(tmp_path, "turns: [3\n")
    with pytest.raises(RolegenError, match="run.yaml: malformed YAML, line 2: ") as caught:
        load_config(GenerateConfig, path, {})
    assert "\n" not in str(caught.value)  # one line, not PyYAML's quote of the text


# ---------------------------------------------------------------- ranges, before anything loads


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--persona", "chef-pip", "--top-p", "-5"], "--top-p must be above 0"),
        (["generate", "--persona", "chef-pip", "--top-p", "1.5"], "--top-p must be above 0"),
        (["generate", "--persona", "chef-pip", "--temperature", "-1"], "--temperature must be 0"),
        (
            ["generate", "--persona", "chef-pip", "--repetition-penalty", "0"],
            "--repetition-penalty must be above 0",
        ),
        (
            ["generate", "--persona", "chef-pip", "--max-resamples", "-3"],
            "--max-resamples must be at least 0",
        ),
        (
            ["generate", "--persona", "chef-pip", "--kv-cache-gib", "0.5"],
            "--kv-cache-gib must be a whole number of GiB, at least 1",
        ),
        (
            ["generate", "--persona", "chef-pip", "--kv-cache-gib", "2.5"],
            "--kv-cache-gib must be a whole number",
        ),
        (
            ["generate", "--persona", "chef-pip", "--asked-resamples", "-1"],
            "--asked-resamples must be at least 0",
        ),
        (
            ["generate", "--persona", "chef-pip", "--distill", "frequency-penalty=x"],
            "--distill 'frequency-penalty=x': 'x' is not a float",
        ),
        (
            ["generate", "--persona", "chef-pip", "--distill", "top-k=5"],
            "--distill 'top-k=5': unknown term 'top-k=5'",
        ),
        (
            [
                "generate",
                "--persona",
                "chef-pip",
                "--engine",
                "openai",
                "--base-url",
                "http://x",
                "--distill",
                "no-repeat-ngram=3",
            ],
            "--distill no-repeat-ngram needs a logits processor",
        ),
        (
            ["generate", "--persona", "chef-pip", "--engine", "openai", "--base-url", "x:1/v1"],
            "--base-url x:1/v1: not an http(s) URL with a host",
        ),
        (
            ["generate", "--persona", "chef-pip", "--engine", "openai", "--base-url", "ftp://h/v1"],
            "--base-url ftp://h/v1: not an http(s) URL with a host",
        ),
        (
            ["eval", "--engine", "openai", "--base-url", "http://me:secret@h:99999/v1"],
            "--base-url http://h:99999/v1: not a valid URL (Port out of range",  # no credential
        ),
        (["eval", "--judge-url", "http://h:abc/v1"], "--judge-url http://h:abc/v1: not a valid"),
        (["filter", "x.jsonl", "--judge-url", "http://[::1/v1"], "--judge-url"),
        (["eval", "--temperature", "-1"], "--temperature must be 0"),
        (["eval", "--top-p", "0"], "--top-p must be above 0"),
        (["eval", "--kv-cache-gib", "0"], "--kv-cache-gib must be a whole number"),
        (["eval", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["train", "--data", "run", "--max-steps", "-2"], "--max-steps must be at least 1"),
        (["train", "--data", "run", "--max-steps", "0"], "--max-steps must be at least 1"),
        (["train", "--data", "run", "--epochs", "0"], "--epochs and --dpo-epochs must be above 0"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_out_of_range_flags_are_one_line_errors_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1  # one line
    assert not out.exists()


def test_the_same_ranges_hold_in_a_yaml_config(tmp_path):
    path = _write(tmp_path, "persona: [chef-pip]\nsampling:\n  top_p: -5\n")
    cfg = load_config(GenerateConfig, path, {})
    with pytest.raises(RolegenError, match="--top-p must be above 0 and at most 1, got -5"):
        cfg.validate()


def test_the_kv_cache_flag_wins_over_the_environment_which_wins_over_the_default(monkeypatch):
    from rolegen.generation.engines.vllm import KV_CACHE_ENV, kv_cache_space

    monkeypatch.setenv(KV_CACHE_ENV, "2")
    assert kv_cache_space(3.0) == "3"  # --kv-cache-gib 3: what the manifest's config says
    assert kv_cache_space(None) == "2"
    monkeypatch.delenv(KV_CACHE_ENV)
    assert kv_cache_space(None) == "4"
    config = load_config(GenerateConfig, None, {"personas": ["chef-pip"]})
    assert config.engine_config.kv_cache_gib is None
    config.validate()  # the default passes its own check
