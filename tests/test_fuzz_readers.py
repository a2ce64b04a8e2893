"""Every reader a user's file reaches, fed generated input (hypothesis): character cards
(JSON, PNG text chunks, YAML, their lorebooks, scanned), SillyTavern chats,
dialogues.jsonl records, run configs (YAML, validated as a command would), user
scripts, and a server's answers. The property: a valid result or a `RolegenError`
with a message; never another exception, and no input takes long.

The inputs are built near the formats (the right field names holding values of any
JSON/YAML type, nested, NaN and infinities included) and also as raw bytes, so the
fuzzer reaches past the first type check. `make test` runs the "rolegen" profile (a
fixed seed, about 40 examples per reader); `make fuzz` runs the "fuzz" profile
(tests/conftest.py) and, with ROLEGEN_FUZZ_STATS=FILE, writes per reader the examples
tried and the longest time one input took, and the peak memory."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import resource
import struct
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rolegen.cards.files import load_card
from rolegen.cards.personas import load_persona_yaml, load_user_script
from rolegen.config import EvalConfig, FilterConfig, GenerateConfig, PipelineConfig, TrainConfig
from rolegen.config.options import field_types, load_config
from rolegen.errors import RolegenError
from rolegen.generation.engines.answers import parse_answer, parse_models
from rolegen.runs.records import read_dialogues

# One input may take this long at most: a lorebook scan's regex budget is 2 s.
MAX_SECONDS = 15.0
STATS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def _stats():
    yield
    target = os.environ.get("ROLEGEN_FUZZ_STATS")
    if target:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        Path(target).write_text(json.dumps({"readers": STATS, "peak_rss_mb": peak_mb}, indent=2))


@contextmanager
def _reader(name: str):
    """Runs one input through a reader: a RolegenError with a message passes, any other
    exception fails the test; the time it took is checked and counted."""
    start = time.perf_counter()
    try:
        yield
    except RolegenError as e:
        assert str(e).strip(), "a RolegenError without a message"
    seconds = time.perf_counter() - start
    entry = STATS.setdefault(name, {"examples": 0, "longest_seconds": 0.0})
    entry["examples"] += 1
    entry["longest_seconds"] = round(max(entry["longest_seconds"], seconds), 4)
    assert seconds < MAX_SECONDS, f"{name}: one input took {seconds:.1f} s"


# ---------------------------------------------------------------- building blocks

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
ANY = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TEXT = st.text(max_size=60)
NAME = st.text(alphabet="AbcXyz éß李-' ", min_size=1, max_size=12)
# counts: integers, and floats with the values that break int() and comparisons
NUMBER = (
    st.integers()
    | st.floats()
    | st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 2**64])
)
# keys that are sometimes regular expressions: some do not compile, some backtrack
KEYS = st.lists(st.text(alphabet="ab()|+*?[]{}\\.^$ 0123,", max_size=10), max_size=3)


def _fields(values: dict, required: tuple[str, ...] = ()) -> st.SearchStrategy[dict]:
    """A mapping of some of `values`' keys (always the `required` ones), each holding
    its strategy's value, or now and then any value at all: mostly well typed, so that
    the reader gets past its first check."""

    def value(v):
        return st.integers(0, 7).flatmap(lambda i: ANY if i == 0 else v)

    return st.fixed_dictionaries(
        {k: value(values[k]) for k in required},
        optional={k: value(v) for k, v in values.items() if k not in required},
    )


def _json(value) -> str:
    return json.dumps(value, allow_nan=True)  # NaN and Infinity are read by json.loads


def _write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


# ---------------------------------------------------------------- cards and lorebooks

ENTRY = _fields(
    {
        "keys": KEYS,
        "secondary_keys": KEYS,
        "content": TEXT,
        "use_regex": st.booleans(),
        "selective": st.booleans(),
        "constant": st.booleans(),
        "enabled": st.booleans(),
        "case_sensitive": st.booleans(),
        "insertion_order": NUMBER,
        "name": TEXT,
        "comment": TEXT,
    }
)
BOOK = _fields(
    {
        "entries": st.lists(ENTRY, max_size=4),
        "scan_depth": NUMBER,
        "token_budget": NUMBER,
    }
)
CARD_DATA = _fields(
    {
        "name": NAME,
        "nickname": TEXT,
        "description": TEXT,
        "personality": TEXT,
        "scenario": TEXT,
        "first_mes": TEXT,
        "mes_example": st.text(alphabet="<START>ab \n", max_size=40),
        "system_prompt": TEXT,
        "post_history_instructions": TEXT,
        "alternate_greetings": st.lists(TEXT, max_size=2),
        "tags": st.lists(TEXT, max_size=3),
        "character_book": BOOK,
    },
    required=("name",),
)
CARD = CARD_DATA | _fields(
    {"spec": st.sampled_from(["chara_card_v2", "chara_card_v3"]), "data": CARD_DATA},
    required=("spec", "data"),
)
SCAN = st.lists(TEXT, max_size=5)


def _scan(persona, messages) -> None:
    """A loaded card's lorebook is scanned the way a prompt scans it."""
    if persona.lorebook:
        persona.lorebook.active(messages, card=persona.source)


@given(card=CARD | ANY, messages=SCAN)
def test_a_json_card_loads_or_is_refused_in_one_line(folder, card, messages):
    path = _write(folder, "card.json", _json(card))
    with _reader("card JSON"):
        _scan(load_card(path), messages)


@given(raw=st.binary(max_size=300))
def test_json_card_bytes_load_or_are_refused_in_one_line(folder, raw):
    path = _write(folder, "raw.json", raw)
    with _reader("card JSON bytes"):
        load_card(path)


def _chunk(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return (
        struct.pack(">I", len(body) if length is None else length)
        + kind
        + body
        + struct.pack(">I", crc)
    )


@st.composite
def _png_chunk(draw) -> bytes:
    """A tEXt, zTXt or iTXt chunk holding a card (or anything) under a card keyword, or
    another chunk; sometimes with a wrong length."""
    kind = draw(
        st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"IHDR", b"IEND"])
        | st.binary(min_size=4, max_size=4)
    )
    keyword = draw(st.sampled_from([b"chara", b"ccv3", b"CHARA", b"other"]))
    card = _json(draw(CARD | ANY)).encode()
    payload = draw(st.sampled_from([base64.b64encode(card), card]) | st.binary(max_size=40))
    if kind == b"zTXt":
        payload = b"\x00" + draw(st.sampled_from([zlib.compress(payload), payload[:5]]))
    elif kind == b"iTXt":
        compressed = draw(st.booleans())
        text = zlib.compress(payload) if compressed else payload
        payload = bytes([compressed, 0]) + b"en\x00\x00" + text
    body = keyword + b"\x00" + payload
    length = draw(st.none() | st.integers(min_value=0, max_value=2**32 - 1))
    return _chunk(kind, body, length)


@given(chunks=st.lists(_png_chunk(), max_size=3), tail=st.binary(max_size=12), messages=SCAN)
def test_a_png_card_loads_or_is_refused_in_one_line(folder, chunks, tail, messages):
    path = _write(folder, "card.png", b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + tail)
    with _reader("card PNG"):
        _scan(load_card(path), messages)


YAML_BOOK = _fields(
    {
        "entries": st.lists(ENTRY.map(lambda e: {k: v for k, v in e.items() if k != "comment"})),
        "scan_depth": NUMBER,
        "token_budget": NUMBER,
    }
)
YAML_CARD = _fields(
    {
        "name": NAME,
        "description": TEXT,
        "personality": TEXT,
        "scenario": TEXT,
        "greeting": TEXT,
        "example_dialogues": st.lists(TEXT, max_size=2),
        "intro": TEXT,
        "style": TEXT,
        "language": TEXT,
        "system_prompt": TEXT,
        "tags": st.lists(TEXT, max_size=2),
        "lorebook": YAML_BOOK,
    },
    required=("name",),
)


@given(card=YAML_CARD | ANY, messages=SCAN)
def test_a_yaml_card_loads_or_is_refused_in_one_line(folder, card, messages):
    path = _write(folder, "card.yaml", yaml.safe_dump(card, allow_unicode=True))
    with _reader("card YAML"):
        _scan(load_persona_yaml(path), messages)


@given(text=st.text(alphabet="ab:-[]{}&*!|>'\"\n #%@,.", max_size=80) | st.binary(max_size=80))
def test_yaml_card_text_loads_or_is_refused_in_one_line(folder, text):
    path = _write(folder, "text.yaml", text)
    with _reader("card YAML text"):
        load_persona_yaml(path)


# ---------------------------------------------------------------- chats and records

ST_HEADER = _fields(
    {
        "user_name": TEXT,
        "character_name": TEXT,
        "create_date": TEXT,
        "chat_metadata": _fields({"rolegen": _fields({"record": ANY, "with_meta": st.booleans()})}),
    },
    required=("user_name", "character_name"),
)
ST_MESSAGE = _fields(
    {
        "name": TEXT,
        "is_user": st.booleans(),
        "is_system": st.booleans(),
        "mes": TEXT,
        "send_date": TEXT,
        "swipes": st.lists(TEXT, max_size=3),
        "swipe_id": st.integers(min_value=-2, max_value=4),
        "swipe_info": st.lists(_fields({"extra": ANY, "content": TEXT}), max_size=3),
        "extra": _fields(
            {
                "type": st.sampled_from(["narrator", "other"]),
                "rolegen": _fields(
                    {
                        "role": st.sampled_from(["system", "user", "assistant"]),
                        "meta": _fields({"rejected": ANY, "reasons": ANY}),
                    }
                ),
            }
        ),
    },
    required=("is_user", "mes"),
)


@given(header=ST_HEADER | ANY, messages=st.lists(ST_MESSAGE | ANY, min_size=1, max_size=5))
def test_a_sillytavern_chat_is_read_or_refused_in_one_line(folder, header, messages):
    lines = [_json(x) for x in [header, *messages]]
    path = _write(folder, "chat.jsonl", "\n".join(lines) + "\n")
    with _reader("SillyTavern chat"):
        read_dialogues(path)


# a well-formed exchange: an optional system message, then assistant and user by turns
ALTERNATING = st.tuples(st.booleans(), st.lists(TEXT, min_size=1, max_size=5)).map(
    lambda p: (
        [{"role": "system", "content": "S"}] * p[0]
        + [{"role": ("assistant", "user")[i % 2], "content": t} for i, t in enumerate(p[1])]
    )
)
MESSAGE = _fields(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": TEXT},
    required=("role", "content"),
)
RECORD = _fields(
    {
        "id": TEXT | st.integers(),
        "system": TEXT,
        "persona": TEXT,
        "persona_name": TEXT,
        "messages": st.lists(MESSAGE, min_size=1, max_size=5) | ALTERNATING,
        "meta": st.lists(
            _fields({"rejected": st.lists(_fields({"content": TEXT, "reasons": ANY}))})
        ),
        "end_reason": st.sampled_from(["completed", "context_overflow"]),
    },
    required=("messages",),
)


@given(records=st.lists(RECORD | ANY, min_size=1, max_size=4), tail=st.binary(max_size=20))
def test_dialogues_jsonl_is_read_or_refused_in_one_line(folder, records, tail):
    text = ("\n".join(_json(r) for r in records) + "\n").encode("utf-8", "surrogatepass")
    path = _write(folder, "dialogues.jsonl", text + tail)
    with _reader("dialogues.jsonl"):
        read_dialogues(path)


# ---------------------------------------------------------------- configs and scripts

CONFIGS = {
    "generate": GenerateConfig,
    "filter": FilterConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "pipeline": PipelineConfig,
}
_NUMBERS = st.integers(min_value=-3, max_value=10**12) | st.floats(allow_nan=True)
CONFIG_VALUES = _NUMBERS | st.booleans() | TEXT | st.lists(TEXT, max_size=2) | st.none() | ANY


def _config(cls) -> st.SearchStrategy[dict]:
    """A mapping of some of the command's own field names (and flat section fields) with
    values of any YAML type; the pipeline's stage sections hold the same of theirs."""
    names = sorted(_field_names(cls))
    config = st.dictionaries(st.sampled_from(names), CONFIG_VALUES, max_size=6)
    if "personas" in names:  # else most configs stop at "no persona given"
        config = st.tuples(config, st.booleans()).map(
            lambda p: {"personas": ["chef-pip"], **p[0]} if p[1] else p[0]
        )
    if cls is PipelineConfig:
        stages = (("generate", GenerateConfig), ("train", TrainConfig), ("eval", EvalConfig))
        stage = {
            s: st.dictionaries(st.sampled_from(sorted(_field_names(c))), CONFIG_VALUES, max_size=4)
            for s, c in stages
        }
        config = st.tuples(config, _fields(stage)).map(lambda pair: {**pair[0], **pair[1]})
    return config


def _field_names(cls) -> set[str]:
    """A config's field names, and those of its sections (which may be written flat)."""
    names = set()
    for name, tp in field_types(cls).items():
        names.add(name)
        if dataclasses.is_dataclass(tp):
            names |= _field_names(tp)
    return names


def _validate(name: str, cfg, folder: Path) -> None:
    """What the command does with its config before any work: `validate()`, and for the
    pipeline every stage's settings built and validated."""
    cfg.validate()
    if name == "pipeline":
        from rolegen.config.pipeline_stages import plan_round

        rounds = min(cfg.rounds, 3)
        for k in range(1, rounds + 1):
            r = plan_round(cfg, folder / "pipeline", k)
            r.generate.validate()
            r.train.validate()


@given(name=st.sampled_from(sorted(CONFIGS)), data=st.data())
def test_a_run_config_is_read_or_refused_in_one_line(folder, name, data):
    config = data.draw(_config(CONFIGS[name]) | ANY)
    path = _write(folder, "config.yaml", yaml.safe_dump(config, allow_unicode=True))
    with _reader(f"config YAML ({name})"):
        _validate(name, load_config(CONFIGS[name], str(path), {}), folder)


@given(
    text=st.text(alphabet="ab:-[]{}&*!|>'\"\n #.0123456789", max_size=120) | st.binary(max_size=80)
)
def test_config_text_is_read_or_refused_in_one_line(folder, text):
    path = _write(folder, "text-config.yaml", text)
    with _reader("config YAML text"):
        load_config(GenerateConfig, str(path), {}).validate()


@given(
    suffix=st.sampled_from([".txt", ".yaml", ".json"]),
    content=st.text(max_size=100) | st.binary(max_size=100) | ANY.map(_json),
)
def test_a_user_script_is_read_or_refused_in_one_line(folder, suffix, content):
    path = _write(folder, f"script{suffix}", content)
    with _reader("user script"):
        turns = load_user_script(path)
        assert turns and all(isinstance(t, str) and t for t in turns)


# ---------------------------------------------------------------- server answers

CHOICE = _fields(
    {
        "text": TEXT,
        "message": _fields({"role": TEXT, "content": TEXT}),
        "finish_reason": st.sampled_from(["stop", "length"]),
        "index": st.integers(),
    }
)
ANSWER = _fields(
    {
        "choices": st.lists(CHOICE, min_size=1, max_size=2),
        "usage": _fields(
            {
                "completion_tokens": st.integers(),
                "prompt_tokens_details": _fields({"cached_tokens": st.integers()}) | ANY,
            }
        ),
        "model": TEXT,
        "error": _fields({"message": TEXT}),
    },
    required=("choices",),
)
MODELS = _fields({"data": st.lists(_fields({"id": TEXT, "object": TEXT}), max_size=3)})


def _body(value) -> st.SearchStrategy[bytes]:
    return value.map(lambda v: _json(v).encode("utf-8", "surrogatepass")) | st.binary(max_size=80)


@given(
    raw=_body(ANSWER | ANY), mode=st.sampled_from(["chat", "completions"]), cap=st.integers(0, 50)
)
def test_a_server_answer_is_parsed_or_refused_in_one_line(raw, mode, cap):
    with _reader("server answer"):
        answer = parse_answer(raw, "http://127.0.0.1:9/v1", mode, max_chars=cap)
        assert isinstance(answer.text, str) and len(answer.text) <= cap
        assert answer.completion_tokens is None or answer.completion_tokens >= 0
        assert isinstance(answer.cached_tokens, int) and answer.cached_tokens >= 0


@pytest.mark.parametrize(
    ("details", "cached"),
    [({"cached_tokens": 7}, 7), ({"cached_tokens": True}, 0), ({"cached_tokens": -1}, 0),
     ({"cached_tokens": "7"}, 0), (None, 0), ([], 0)],
)  # fmt: skip
def test_a_server_answers_cached_prompt_tokens_are_read_or_taken_as_none(details, cached):
    body = {
        "choices": [{"text": "Aye.", "finish_reason": "stop"}],
        "usage": {"completion_tokens": 2, "prompt_tokens_details": details},
    }
    raw = json.dumps(body).encode()
    assert parse_answer(raw, "http://127.0.0.1:9/v1", "completions", 100).cached_tokens == cached


@given(raw=_body(MODELS | ANY))
def test_a_server_model_list_is_parsed_or_refused_in_one_line(raw):
    with _reader("server models"):
        models = parse_models(raw, "http://127.0.0.1:9/v1")
        assert models and all(isinstance(m["id"], str) for m in models)
