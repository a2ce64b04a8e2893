"""Shared fixtures: the embedded model (materialized once into rolegen's cache) and a
tiny random LlamaForCausalLM the tests build themselves, with the embedded model's
tokenizer and chat template. Everything runs offline."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    from rolegen.models import materialize_embedded

    return materialize_embedded()


@pytest.fixture(scope="session")
def tiny_model(embedded_model, tmp_path_factory) -> Path:
    """A 2-layer, 64-wide LLaMA with random weights and the real 49152-token tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "special_tokens_map.json",
    ):
        if (embedded_model / name).exists():
            shutil.copy(embedded_model / name, path / name)
    return path


@pytest.fixture
def copy_model(tmp_path):
    """Copy a checkpoint folder so a test can break it."""

    def _copy(src: Path, **config_changes) -> Path:
        dst = tmp_path / f"model-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(src, dst)
        if config_changes:
            config = json.loads((dst / "config.json").read_text())
            config.update(config_changes)
            (dst / "config.json").write_text(json.dumps(config))
        return dst

    return _copy
