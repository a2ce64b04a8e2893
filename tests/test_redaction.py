"""No credential of a URL reaches a file rolegen writes: the one helper (`urls.redact`)
and the settings' serializer that uses it (`options.to_dict`)."""

from __future__ import annotations

import json

from rolegen.config import EvalConfig, GenerateConfig, PipelineConfig
from rolegen.config.options import to_dict
from rolegen.urls import public_url, redact


def test_public_url_drops_user_password_query_and_fragment():
    assert public_url("http://me:secret@host:8000/v1?key=x#f") == "http://host:8000/v1"
    assert public_url("https://token@[::1]:9/v1") == "https://[::1]:9/v1"


def test_a_url_with_a_malformed_port_still_loses_its_credentials():
    assert "secret" not in public_url("http://me:secret@host:99999/v1")


def test_redact_walks_mappings_and_lists_and_leaves_other_text_alone():
    data = {"a": ["http://u:p@h/v1", "plain@text"], "b": {"c": "ray://u:p@head:10001"}, "n": 3}
    assert redact(data) == {
        "a": ["http://h/v1", "plain@text"],
        "b": {"c": "ray://head:10001"},
        "n": 3,
    }


def test_generate_and_eval_settings_serialize_without_the_password():
    for cls in (GenerateConfig, EvalConfig):
        cfg = cls()
        cfg.engine_config.base_url = "http://alice:secret@host/v1"
        cfg.cluster.ray_address = "ray://bob:hunter2@head:10001"
        text = json.dumps(to_dict(cfg))
        assert "secret" not in text and "hunter2" not in text
        assert "http://host/v1" in text
        assert cfg.engine_config.base_url == "http://alice:secret@host/v1"  # the run still uses it


def test_pipeline_settings_serialize_without_the_password_in_any_stage():
    cfg = PipelineConfig(
        teacher_url="http://a:secret@t/v1", eval={"base_url": "http://a:secret@e/v1"}
    )
    assert "secret" not in json.dumps(to_dict(cfg))
