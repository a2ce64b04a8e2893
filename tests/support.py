"""Builders and constants that several test files share (not a test file: pytest does not
collect it). Fixtures built from these live in conftest.py.

- `DIALOGUE`: one short chat (system, greeting, two exchanges) for rendering and losses.
- `PERSONAS`, `dialogue_record`, `preference_pair`: the rows of a tiny filtered run
  (three characters, the same sailing story) that `train_adapter` and the training
  tests export and train on.
- `train_adapter`: a few SFT steps on such a run; the folder of the adapter it writes.
- `EVAL_SCRIPT`, `run_eval`: `rolegen eval` on two suite cards with the transformers
  engine, through the CLI.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from rolegen.checks.dataset import FilterResult, export
from rolegen.cli import main
from rolegen.config import TrainConfig
from rolegen.config.options import load_config
from rolegen.recipes.train import run_train

DIALOGUE = [
    {"role": "system", "content": "You are Mara, captain of the Gale."},
    {"role": "assistant", "content": "Welcome aboard the Gale!"},
    {"role": "user", "content": "Hi there."},
    {"role": "assistant", "content": "Hello, traveler."},
    {"role": "user", "content": "Where are we headed?"},
    {"role": "assistant", "content": "North, into the storm."},
]

PERSONAS = {"mara": "Captain Mara Vell", "orla": "Orla Finch", "pip": "Pip Okonkwo"}


def dialogue_record(i: int, slug: str) -> dict:
    """Dialogue `i` of character `slug`: a greeting and three exchanges."""
    name = PERSONAS[slug]
    msgs = [
        {"role": "system", "content": f"You are {name}. Stay in character."},
        {"role": "assistant", "content": f"Welcome, friend. I am {name}."},
    ]
    for t in range(3):
        msgs.append({"role": "user", "content": f"Tell me about day {t} of trip {i}."})
        msgs.append(
            {"role": "assistant", "content": f"On day {t} the wind turned west and we sailed on."}
        )
    return {
        "id": f"{slug}-{i:04d}",
        "persona": slug,
        "persona_name": name,
        "user_persona": "Ann",
        "messages": msgs,
    }


def preference_pair(i: int, slug: str) -> dict:
    """A pair on dialogue `i`'s third turn: a fresh reply chosen over a name echo."""
    d = dialogue_record(i, slug)
    return {
        "id": f"{slug}-{i}-t2-s0",
        "persona": slug,
        "persona_name": PERSONAS[slug],
        "user_name": "Ann",
        "prompt": d["messages"][:5],
        "chosen": [{"role": "assistant", "content": "The harbour lights came into view at dusk."}],
        "rejected": [
            {"role": "assistant", "content": f"I am {PERSONAS[slug]}. I am {PERSONAS[slug]}."}
        ],
        "reasons": ["echo"],
    }


def train_adapter(model: Path, root: Path, steps: int, lr: float = 5e-2) -> Path:
    """`steps` SFT steps (rank 16, float32) on a 9-dialogue run exported under `root`."""
    records = [dialogue_record(i, slug) for slug in PERSONAS for i in range(3)]
    pairs = [preference_pair(i, slug) for slug in PERSONAS for i in range(3)]
    export(FilterResult(records, [], pairs, Counter(), 27), root / "run", 0.34, 0, {})
    cfg = load_config(
        TrainConfig,
        None,
        {
            "data": str(root / "run"),
            "model": str(model),
            "out": str(root / "adapter"),
            "method": "sft",
            "max_steps": steps,
            "learning_rate": lr,
            "dtype": "float32",
            "eval_steps": 0,
            "save_steps": 0,
            "gradient_accumulation": 1,
            "max_length": 512,
        },
    )
    run_train(cfg, echo=lambda s: None)
    return root / "adapter"


EVAL_SCRIPT = "Hi there.\nWhat's your name again?\nTell me about this place."


def run_eval(model: Path, out: Path, script: Path, *extra: str):
    """`rolegen eval --engine hf` of barista-leo and mechanic-juno on `script`, 12 new
    tokens a reply; `extra` adds or overrides flags. The click result."""
    return CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            str(model),
            "--engine",
            "hf",
            "--persona",
            "evals/personas/barista-leo.yaml",
            "--persona",
            "evals/personas/mechanic-juno.yaml",
            "--user-script",
            str(script),
            "--max-new-tokens",
            "12",
            "--bootstrap",
            "50",
            "--out",
            str(out),
            *extra,
        ],
    )
