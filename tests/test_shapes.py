"""A model folder whose config.json does not describe its weights, and an adapter whose
adapter_config.json does not describe its weights or its base: one line naming the
tensor and the setting, before anything loads."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.models.adapters import load_adapter
from rolegen.models.checkpoints import inspect_model
from rolegen.training.lora import check_init_adapter


def _generate(model, out, *extra):
    args = ["generate", "--persona", "chef-pip", "--model", str(model), "--engine", "hf"]
    return CliRunner().invoke(main, [*args, "--out", str(out), "--no-export", *extra])


@pytest.fixture(scope="module")
def adapter_r16(tiny_model, tmp_path_factory):
    """A fresh rank-16 LoRA adapter of the tiny model on q_proj and v_proj (no training)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = tmp_path_factory.mktemp("adapter") / "r16"
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"])
    get_peft_model(model, lora).save_pretrained(path)
    return path


def test_a_config_with_another_intermediate_size_names_the_tensor_and_the_field(
    tiny_model, copy_model
):
    path = copy_model(tiny_model, intermediate_size=256)
    with pytest.raises(RolegenError) as refused:
        inspect_model(path)
    assert str(refused.value) == (
        f"{path}: config.json does not match the weights: tensor "
        "'model.layers.0.mlp.gate_proj.weight' is [128, 64] in the weights, [256, 64] by the "
        "config (intermediate_size is 256, the weights say 128)"
    )


def test_a_config_with_more_kv_heads_names_the_product_of_fields(tiny_model, copy_model):
    path = copy_model(tiny_model, num_key_value_heads=4)
    with pytest.raises(RolegenError, match=r"k_proj.weight' is \[32, 64\] in the weights, \[64"):
        inspect_model(path)
    with pytest.raises(RolegenError, match="num_key_value_heads x head_dim is 64, the weights"):
        inspect_model(path)


def test_a_config_with_more_layers_than_the_weights_is_refused(tiny_model, copy_model):
    path = copy_model(tiny_model, num_hidden_layers=3)
    with pytest.raises(RolegenError, match="num_hidden_layers is 3, the weights hold 2 layers"):
        inspect_model(path)


def test_generate_on_a_mismatched_model_is_one_line_and_writes_nothing(
    tiny_model, copy_model, tmp_path
):
    path = copy_model(tiny_model, hidden_size=32)
    result = _generate(path, tmp_path / "run")
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert "'model.embed_tokens.weight' is [49152, 64] in the weights" in last
    assert "(hidden_size is 32, the weights say 64)" in last
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_an_adapter_config_with_another_rank_than_its_weights_is_refused(
    tiny_model, adapter_r16, tmp_path
):
    config = json.loads((adapter_r16 / "adapter_config.json").read_text())
    (adapter_r16 / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))
    try:
        with pytest.raises(RolegenError) as refused:
            load_adapter(adapter_r16, tiny_model, inspect_model(tiny_model))
        assert str(refused.value) == (
            f"--adapter {adapter_r16}: adapter_config.json gives r=8, but its weights have "
            "rank 16 ('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' is "
            "[16, 64]): the config and the weights come from different trainings"
        )
        result = _generate(tiny_model, tmp_path / "run", "--adapter", str(adapter_r16))
        assert result.exit_code == 2 and "gives r=8, but its weights have rank 16" in result.output
        assert "Traceback" not in result.output and not (tmp_path / "run").exists()
    finally:
        (adapter_r16 / "adapter_config.json").write_text(json.dumps(config))


def test_an_adapter_of_its_own_rank_loads(tiny_model, adapter_r16):
    assert load_adapter(adapter_r16, tiny_model, inspect_model(tiny_model)).r == 16


def _lora(r=16, alpha=32, modules=("q_proj", "v_proj")):
    return SimpleNamespace(lora=SimpleNamespace(r=r, alpha=alpha, target_modules=list(modules)))


def test_init_adapter_of_another_rank_names_only_the_rank_and_its_flag(adapter_r16):
    with pytest.raises(RolegenError) as refused:
        check_init_adapter(adapter_r16, _lora(r=8))
    assert str(refused.value) == (
        f"--init-adapter {adapter_r16}: it has r=16, this run trains r=8: pass --lora-r 16 "
        "to train on from it"
    )
    check_init_adapter(adapter_r16, _lora())  # the same settings pass


def test_init_adapter_on_other_modules_and_alpha_names_both(adapter_r16):
    with pytest.raises(RolegenError) as refused:
        check_init_adapter(adapter_r16, _lora(alpha=16, modules=("q_proj",)))
    assert str(refused.value) == (
        f"--init-adapter {adapter_r16}: it has alpha 32 and modules q_proj, v_proj, this run "
        "trains alpha 16 and modules q_proj: pass --lora-alpha 32 --target-module q_proj "
        "--target-module v_proj to train on from it"
    )
