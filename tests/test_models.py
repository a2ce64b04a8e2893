import json
import shutil

import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.models.checkpoints import cached_models, inspect_model, resolve_model


def test_embedded_model_is_a_llama_checkpoint(embedded_model):
    info = inspect_model(embedded_model)
    assert info.architecture == "LlamaForCausalLM"
    assert info.vocab_size == info.tokenizer_size == 49152
    assert info.eos_token_ids == [2]
    assert info.has_chat_template
    assert info.hash_method == "sha256-all-bytes" and len(info.hash) == 64
    assert any(m["name"] == "SmolLM2-135M-Instruct" for m in cached_models())


def test_resolve_model_defaults_to_embedded(embedded_model):
    assert resolve_model(None) == embedded_model
    assert resolve_model("embedded") == embedded_model


def test_model_vocab_larger_than_tokenizer_is_fine(tiny_model, copy_model):
    from transformers import AutoModelForCausalLM

    path = copy_model(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(49216)  # the weights and config.json both say 49216
    model.save_pretrained(path)
    info = inspect_model(path)
    assert info.vocab_size == 49216 and info.tokenizer_size == 49152
    assert any("64 rows more" in w for w in info.warnings)


def test_tokenizer_larger_than_embedding_is_an_error(tiny_model, copy_model):
    path = copy_model(tiny_model, vocab_size=32000)
    with pytest.raises(RolegenError, match=r"tokenizer has 49152 tokens.*32000 rows"):
        inspect_model(path)


def test_eos_list_from_generation_config_and_tokenizer(tiny_model, copy_model):
    path = copy_model(tiny_model)
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": [7, 9]}))
    info = inspect_model(path)
    assert info.eos_token_ids == [7, 9, 2]  # the tokenizer's eos is added, with a warning
    assert any("differs from generation_config" in w for w in info.warnings)


def test_not_a_causal_lm_is_rejected(tiny_model, copy_model):
    path = copy_model(tiny_model, architectures=["BertModel"])
    with pytest.raises(RolegenError, match=r"config.json.*'architectures'.*causal LM"):
        inspect_model(path)


def test_folder_without_config_is_not_a_checkpoint(tmp_path):
    with pytest.raises(RolegenError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_missing_model_path_is_named(tmp_path):
    with pytest.raises(RolegenError, match="not found"):
        resolve_model(str(tmp_path / "nope"))


def test_hub_id_not_in_cache_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(RolegenError, match="does not download"):
        resolve_model("some-org/some-llama-7b")


# ---------------------------------------------------------------- broken folders


def _generate_with(model, tmp_path):
    return CliRunner().invoke(
        main,
        ["generate", "--persona", "chef-pip", "--model", str(model), "--engine", "hf"]
        + ["--out", str(tmp_path / "run")],
    )


def _refused(result, tmp_path, *names):
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    for name in names:
        assert name in result.output, result.output
    assert not (tmp_path / "run").exists()  # before the engine and the run folder


def test_folder_with_only_a_config_says_it_has_no_tokenizer_files(tiny_model, tmp_path):
    folder = tmp_path / "only-config"
    folder.mkdir()
    shutil.copy(tiny_model / "config.json", folder)
    result = _generate_with(folder, tmp_path)
    _refused(result, tmp_path, f"no tokenizer files in {folder}")
    assert "sentencepiece" not in result.output.lower()


def test_folder_without_weights_is_refused_before_the_engine_loads(
    tiny_model, copy_model, tmp_path
):
    path = copy_model(tiny_model)
    (path / "model.safetensors").unlink()
    _refused(_generate_with(path, tmp_path), tmp_path, f"{path}: no model weights")


def _truncate(f):
    f.write_bytes(f.read_bytes()[:-1000])


def _garbage_header(f):
    data = f.read_bytes()
    n = int.from_bytes(data[:8], "little")
    f.write_bytes(data[:8] + b"\x00" * n + data[8 + n :])


def _header_length_past_the_end(f):
    f.write_bytes(b"\xff" * 8 + f.read_bytes()[8:])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, "lies past the end of the file"),
        (_garbage_header, "its header is not a JSON object"),
        (_header_length_past_the_end, "not a safetensors file, or cut short"),
    ],
    ids=["truncated", "garbage-header", "header-length-past-the-end"],
)
def test_corrupt_safetensors_is_refused_naming_the_file(
    tiny_model, copy_model, tmp_path, damage, message
):
    path = copy_model(tiny_model)
    damage(path / "model.safetensors")
    result = _generate_with(path, tmp_path)
    _refused(result, tmp_path, f"{path / 'model.safetensors'}: ", message)


def test_sharded_checkpoint_without_one_of_its_shards_is_refused(tiny_model, copy_model):
    path = copy_model(tiny_model)
    index = {"metadata": {}, "weight_map": {"a": "model.safetensors", "b": "model-2.safetensors"}}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(RolegenError, match=r"index\.json: shard 'model-2\.safetensors' is missing"):
        inspect_model(path)


def test_sound_safetensors_headers_pass_the_check(tiny_model):
    from rolegen.models.checkpoints import safetensors_header

    header = safetensors_header(tiny_model / "model.safetensors")
    assert header["model.embed_tokens.weight"]["shape"] == [49152, 64]
