"""The eval suite and the plan of an eval's dialogues.

The suite: held-out persona cards and scripted user turns, the shipped `evals/` folder
(`personas/`, `scripts/*.txt`) or any cards and scripts given. The plan: every system
under every prompt, each persona with each script, `--dialogues` times; a dialogue's seed
key (persona, script, number) leaves the system and the prompt out, so every system sees
the same user turns and request seeds.

Non-goals: running the dialogues (`recipes/evaluate.py`), scoring them (`scoring.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rolegen.cards.files import load_personas, persona_folders
from rolegen.cards.personas import UserPersona, load_user_script
from rolegen.config import EvalConfig
from rolegen.config.systems import System, label
from rolegen.errors import RolegenError
from rolegen.generation.dialogue import Dialogue
from rolegen.generation.prompts import resolve_persona
from rolegen.resources import evals_dir
from rolegen.runs.folders import input_hashes


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
    personas = [p for source in sources for p in load_personas(source)]
    folders = persona_folders(sources)
    if cfg.user_scripts:
        files = [Path(s).expanduser() for s in cfg.user_scripts]
    else:
        files = sorted((root / "scripts").glob("*.txt")) if (root / "scripts").is_dir() else []
        if not files:
            raise RolegenError(f"eval suite {root}: no scripts/*.txt (or pass --user-script)")
        folders[str(root / "scripts")] = files
    scripts = {f.stem: load_user_script(f) for f in files}
    cards = [p.source for p in personas if p.source and Path(p.source).is_file()]
    inputs = input_hashes(cards + [str(f) for f in files], folders)
    return Suite(personas=personas, scripts=scripts, inputs=inputs)


def plan(
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
