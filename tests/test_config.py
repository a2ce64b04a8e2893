import pytest

from rolegen.config import GenerateConfig
from rolegen.errors import RolegenError
from rolegen.options import load_config


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


def test_malformed_yaml_is_named(tmp_path):
    path = _write(tmp_path, "turns: [3\n")
    with pytest.raises(RolegenError, match="run.yaml: malformed YAML"):
        load_config(GenerateConfig, path, {})
