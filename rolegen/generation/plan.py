"""The plan of a generate run: who talks to whom, under which prompt, in a fixed order
with stable ids, and its prompts rendered once before any engine loads.

Every dialogue cycles through the user personas (or the user scripts) and draws its
prompt (`--prompts`, templates.py's `PromptStyle`) by a hash of the run seed and its id,
so a resumed or larger run draws the same for the dialogues it already had. Prompts in
another format than the run's are refused: training renders a dataset in one format.

Non-goals: running the dialogues (`session.py`), the eval's plan (`evaluation/suite.py`).
"""

from __future__ import annotations

import hashlib

from rolegen.cards.personas import (
    UserPersona,
    available_user_personas,
    load_user_persona,
    load_user_script,
)
from rolegen.config import GenerateConfig
from rolegen.errors import RolegenError
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.loop_settings import LoopSettings
from rolegen.generation.prompts import PromptBuilder, resolve_persona
from rolegen.generation.replicas import ModelSetup


def users_and_scripts(cfg: GenerateConfig) -> tuple[list[UserPersona], list[list[str]]]:
    """The user side: scripted turns (`--user-script`, played by a scripted user), else
    the user personas the model plays (`--user-persona`, else every shipped one)."""
    scripts = [load_user_script(path) for path in cfg.user_scripts]
    if scripts:
        return [UserPersona(name="User", source="script")], scripts
    names = cfg.user_personas or available_user_personas()
    return [load_user_persona(n) for n in names] or [UserPersona()], scripts


def _unique_slugs(personas):
    seen: dict[str, int] = {}
    for p in personas:
        n = seen.get(p.slug, 0)
        seen[p.slug] = n + 1
        yield p, p.slug if n == 0 else f"{p.slug}-{n + 1}"


def draw_prompt(seed: int, dialogue_id: str, prompts: list[str]) -> str:
    """The prompt a dialogue is rendered with, drawn from `prompts` by a hash of the run
    seed and the dialogue's id alone: a resumed run, or one with more dialogues, draws
    the same for every dialogue it already had, whatever else is planned beside it."""
    if len(prompts) == 1:
        return prompts[0]
    digest = hashlib.sha256(f"{seed}/{dialogue_id}/prompt".encode()).digest()
    return prompts[int.from_bytes(digest[:8], "big") % len(prompts)]


def plan_dialogues(
    cfg: GenerateConfig, personas, users: list[UserPersona], scripts: list[list[str]]
) -> list[Dialogue]:
    """Every dialogue of the run, in a fixed order with stable ids; dialogues cycle
    through the user personas (or the user scripts) and draw their prompt."""
    dialogues = []
    for persona, slug in _unique_slugs(personas):
        for i in range(cfg.dialogues):
            user = users[i % len(users)]
            dialogue_id = f"{slug}-{i:04d}"
            dialogues.append(
                Dialogue(
                    id=dialogue_id,
                    persona=resolve_persona(persona, user.name),
                    user=user,
                    script=scripts[i % len(scripts)] if scripts else None,
                    prompt=draw_prompt(cfg.seed, dialogue_id, cfg.prompt_names),
                    sampling=cfg.distill_sampling,  # the character's decoding fix, if any
                )
            )
    return dialogues


def prompt_builders(setup: ModelSetup, cfg: GenerateConfig) -> dict[str, PromptBuilder]:
    """A builder per --prompts name; unknown names and prompts in another format than
    the run's are refused (training renders the whole dataset in the run's format)."""
    builders = {}
    for name in cfg.prompt_names:
        builder = setup.prompt_builder(
            cfg.sampling.max_new_tokens, setup.templates.prompt_style(name)
        )
        if builder.format.name != setup.format.name:
            raise RolegenError(
                f"--prompts {name}: the prompt renders in format '{builder.format.name}', the "
                f"run in '{setup.format.name}', and training renders a dataset in one format; "
                f"pass --format {builder.format.name}, or leave the prompt out"
            )
        builders[name] = builder
    return builders


def check_first_prompts(
    builders: dict[str, PromptBuilder], dialogues: list[Dialogue], scripted: bool, turns: int
):
    """Render every persona's first prompts under each prompt it drew now: a broken card
    or template fails before the engine spends a minute loading."""
    for d in {(d.persona.name, d.prompt): d for d in dialogues}.values():
        builder = builders[d.prompt]
        opening = builder.greeting(d.persona)
        builder.character_system(d.persona, d.user, [])
        builder.first_prompt(d.persona, d.user)  # refuses a card too large for the context
        if not scripted:
            prompt = builder.user_prompt(d.persona, d.user, [opening] if opening else [], 1, turns)
            builder.require_fit(prompt, d.persona, d.user)


def loop_settings(cfg: GenerateConfig) -> LoopSettings:
    """The turn loop's settings: turns, sampling, resamples and the negatives it keeps."""
    return LoopSettings(
        turns=cfg.turns,
        seed=cfg.seed,
        temperature=cfg.sampling.temperature,
        top_p=cfg.sampling.top_p,
        repetition_penalty=cfg.sampling.repetition_penalty,
        max_new_tokens=cfg.sampling.max_new_tokens,
        user_max_new_tokens=cfg.sampling.user_max_new_tokens,
        max_resamples=cfg.max_resamples,
        asked_resamples=cfg.asked_resamples,
        on_exhausted=cfg.on_exhausted,
        candidates=cfg.candidates,
        resample_temperature_step=cfg.resample_temperature_step,
        plain_negatives=cfg.plain_negatives if cfg.distill else 0,
        cross_card_negatives=cfg.cross_card_negatives,
        card_choice=cfg.card_choice,
    )
