import json

import pytest

from rolegen.errors import RolegenError
from rolegen.models import cached_models, inspect_model, resolve_model


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
    path = copy_model(tiny_model, vocab_size=49216)
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
