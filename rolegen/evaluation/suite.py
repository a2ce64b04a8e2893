"""The eval suite and the plan of an eval's dialogues.

The suite: held-out persona cards and scripted user turns, the shipped `evals/` folder
(`personas/`, `scripts/*.txt`) or any cards and scripts given. The plan: every system
under every prompt, each persona with each script, `--dialogues` times.

Fairness: every system sees the same scripted user turns, and a dialogue's request
seeds derive from its `seed_key` (persona, script, dialogue number), not from the
system or the prompt, so the systems differ only in the model and decoding. A reply that
cleans to nothing is resampled as generate does (`--max-resamples`; no other reply is
judged): the k-th resample of a turn has the same seed in every system.

The prompt axis (`--prompts rolegen,plain,alpaca-roleplay`; default rolegen alone): users
deploy with their own system prompt, so a fix that holds only under rolegen's template
has not won. A system under a prompt other than rolegen's is its own system in every
file, named 'base @ plain' (`config/systems.py`'s `label`); under rolegen's it keeps its
bare name. Why flat names and not a nested `prompts` level in results.json: the figures,
the pairwise intervals, the report's tables, `endings` and `--data` all key on a record's
`system` and need no level of their own, an eval under rolegen's prompt alone names its
systems plainly, and one resumed with more prompts keeps its dialogues. 'base' and
'base @ plain' share seeds and user turns as 'base' and 'adapter' do, so the bootstrap
pairs within a prompt and across; deltas compare within a prompt (results.json's
`references`).

Non-goals: running the dialogues (`generation/session.py`), scoring them (`scoring.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rolegen.cards.files import card_paths, load_cards, persona_folders
from rolegen.cards.personas import UserPersona, load_user_script
from rolegen.config import EvalConfig
from rolegen.config.systems import System, label, parse_system
from rolegen.errors import RolegenError
from rolegen.generation.dialogue import Dialogue
from rolegen.generation.loop_settings import LoopSettings
from rolegen.generation.prompts import resolve_persona
from rolegen.resources import evals_dir
from rolegen.runs.folders import input_hashes

# Settings that change what a dialogue says: a resumed eval must keep them. More
# dialogues or other systems may be added on a resume.
EVAL_CONTENT_FIELDS = (
    "model",
    "adapter",
    "suite",
    "personas",
    "user_scripts",
    "turns",
    "seed",
    "temperature",
    "top_p",
    "max_new_tokens",
    "max_resamples",
    "format",
    "templates",
    "max_context",
    "context_budget",
    "authors_note",
    "authors_note_depth",
)


@dataclass
class Suite:
    """The held-out cards and the scripted user turns an eval runs on."""

    personas: list  # Persona
    scripts: dict[str, list[str]]  # name -> user turns
    # what a resume compares: its cards and scripts, and the folders they came from
    inputs: dict[str, str] = field(default_factory=dict)


def load_suite(cfg: EvalConfig) -> Suite:
    """`--persona` cards (else the suite's personas/) and `--user-script` files (else its
    scripts/*.txt), with their hashes for a resume to compare."""
    root = Path(cfg.suite).expanduser() if cfg.suite else evals_dir()
    sources = cfg.personas or [str(root / "personas")]
    if not cfg.personas and not (root / "personas").is_dir():
        raise RolegenError(f"eval suite {root}: no personas/ folder (or pass --persona)")
    personas = load_cards(sources)
    folders = persona_folders(sources)
    if cfg.user_scripts:
        files = [Path(s).expanduser() for s in cfg.user_scripts]
    else:
        files = sorted((root / "scripts").glob("*.txt")) if (root / "scripts").is_dir() else []
        if not files:
            raise RolegenError(f"eval suite {root}: no scripts/*.txt (or pass --user-script)")
        folders[str(root / "scripts")] = files
    scripts = {f.stem: load_user_script(f) for f in files}
    inputs = input_hashes(card_paths(personas) + [str(f) for f in files], folders)
    return Suite(personas=personas, scripts=scripts, inputs=inputs)


def eval_dialogues(
    cfg: EvalConfig, suite: Suite, systems: list[System], prompts: list[str]
) -> list[Dialogue]:
    """Every system under every prompt; a dialogue's seed key (persona, script, number)
    is the same under all of them."""
    user = UserPersona(name="User", source="script")
    dialogues = []
    slugs = [p.slug for p in suite.personas]
    if len(set(slugs)) != len(slugs):
        raise RolegenError("eval personas must have distinct names (two cards share a slug)")
    for prompt in prompts:
        for system in systems:
            for persona in suite.personas:
                for script_name, script in suite.scripts.items():
                    turns = script[: cfg.turns] if cfg.turns else script
                    for i in range(cfg.dialogues):
                        key = f"{persona.slug}/{script_name}/{i}"
                        dialogues.append(
                            Dialogue(
                                id=f"{label(system.name, prompt)}/{key}",
                                persona=resolve_persona(persona, user.name),
                                user=user,
                                script=turns,
                                seed_key=key,
                                sampling=dict(system.sampling),
                                lora=system.adapter,
                                prompt=prompt,
                            )
                        )
    return dialogues


def eval_systems(cfg: EvalConfig, echo=print) -> list[System]:
    """The `--system` values parsed; adapter systems are left out, said so, when no
    --adapter is given."""
    systems = [parse_system(s) for s in cfg.systems]
    if not cfg.engine_config.adapter:
        skipped = [s.name for s in systems if s.adapter]
        systems = [s for s in systems if not s.adapter]
        if skipped:
            echo(f"no --adapter: skipping {', '.join(skipped)}")
    if not systems:
        raise RolegenError("no system to evaluate: add --system base (or give --adapter)")
    return systems


def describe(cfg: EvalConfig, suite: Suite, systems: list[System], builders: dict) -> dict:
    """What results.json says of the plan: each system's settings under each prompt, the
    prompts (`builders`: name -> PromptBuilder), the suite and its cards and scripts."""
    return {
        "system_settings": {
            label(s.name, p): {"adapter": s.adapter, **s.sampling, "prompt": p}
            for p in builders
            for s in systems
        },
        "prompts": {
            name: {"system": b.style.system, "greeting": b.style.greeting, "format": b.format.name}
            for name, b in builders.items()
        },
        "suite": "--persona cards" if cfg.personas else str(cfg.suite or evals_dir()),
        "personas": {p.name: p.source for p in suite.personas},
        "scripts": {k: len(v) for k, v in suite.scripts.items()},
    }


def check_first_prompts(suite: Suite, builders: dict) -> None:
    """Render every card's first prompt under each prompt: a broken or too large card
    fails now, not after the engine loads."""
    for p in suite.personas:
        for builder in builders.values():
            builder.first_prompt(resolve_persona(p, "User"), UserPersona())


def loop_settings(cfg: EvalConfig, suite: Suite) -> LoopSettings:
    """The turn loop of an eval: the suite's longest script, the eval's sampling, and
    resamples of empty replies only (no judge in the eval)."""
    return LoopSettings(
        turns=max(len(s) for s in suite.scripts.values()),
        seed=cfg.seed,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        repetition_penalty=1.0,
        max_new_tokens=cfg.max_new_tokens,
        user_max_new_tokens=8,
        max_resamples=cfg.max_resamples,
    )
