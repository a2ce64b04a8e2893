"""`rolegen generate`'s settings: which characters meet which users, the dialogues'
shape, how a rejected reply is resampled and what is exported, over the shared model,
engine, sampling, checks and cluster sections (shared.py, checks.py)."""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.config.checks import CheckConfig
from rolegen.config.options import opt, section
from rolegen.config.shared import (
    ClusterConfig,
    EngineConfig,
    ModelConfig,
    SamplingConfig,
    at_least,
    at_most,
    check_prompt_names,
    prompt_names,
)
from rolegen.config.systems import ROLEGEN_PROMPT, parse_decoding
from rolegen.errors import RolegenError


@dataclass
class GenerateConfig:
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Character: a shipped persona name, a card file (.yaml, .json, .png) or a folder. "
        "Repeatable.",
    )
    user_personas: list[str] = opt(
        factory=list,
        flag="user-persona",
        help="User persona the simulator plays (shipped name or YAML file). Repeatable; "
        "dialogues cycle through them. Default: all shipped user personas.",
    )
    user_scripts: list[str] = opt(
        factory=list,
        flag="user-script",
        help="File of scripted user turns, one per line, instead of the user simulator. "
        "Repeatable: a persona's dialogues cycle through the scripts.",
    )
    dialogues: int = opt(4, "Dialogues per persona.")
    turns: int = opt(6, "Character turns per dialogue (each answers one user turn).")
    prompts: list[str] = opt(
        factory=lambda: [ROLEGEN_PROMPT],
        help="Prompts the character's side is rendered with (comma-separated or repeated): "
        "each dialogue draws one, from a hash of the seed and its id, and its record names "
        "it. rolegen (rolegen's template, the greeting, the examples), tavern-greeting "
        "(SillyTavern's default prompt, the greeting), sheet-examples (a character sheet "
        "and the examples, no greeting), or any prompts/NAME.jinja of --templates in the "
        "run's format. Varied prompts teach the adapter the habit, not the template; keep "
        "one out (plain) to measure that with `rolegen eval --prompts`.",
    )
    model_config: ModelConfig = section(ModelConfig, flat=True)
    engine_config: EngineConfig = section(EngineConfig, flat=True)
    seed: int = opt(0, "Run seed; every request's seed derives from it.")
    out: str | None = opt(None, "Run folder. Default: outputs/<date>-<time>.")
    resume: bool = opt(
        False, "Continue the run in --out: keep finished dialogues, generate the rest."
    )
    batch_size: int = opt(64, "Dialogues generated together; each finished batch is written.")
    max_resamples: int = opt(
        3,
        "Resamples of an empty or rejected reply before the dialogue "
        "ends early (or keeps it, see --on-exhausted).",
    )
    asked_resamples: int = opt(
        15,
        "Resamples, in place of --max-resamples, on a checked turn where the user asked who "
        "the character is: a small base model names itself in few samples (9% seen on the "
        "embedded model), so the reply that does is found only with a wider draw.",
    )
    distill: str | None = opt(
        None,
        "Decoding-fix distillation: draw the character's replies with this fix on, e.g. "
        "'frequency-penalty=0.5' or 'no-repeat-ngram=3' ('+' joins terms), and beside each "
        "accepted one --plain-negatives replies with plain sampling from the same context, "
        "kept as its rejected side: the adapter learns what the flag does, without the flag.",
    )
    plain_negatives: int = opt(
        1, "With --distill: plain-sampled replies per accepted turn, each a preference pair."
    )
    cross_card_negatives: int = opt(
        0,
        "Replies per accepted turn drawn from the same context under another card's prompt "
        "(another persona of the batch), each a preference pair against the accepted reply: "
        "the adapter learns to answer from its own card. 0 = off.",
    )
    card_choice: bool = opt(
        False,
        "Of a round's candidates that pass the checks, keep the one nearest its own card "
        "against the batch's other cards (sentence embedder, names masked), not the first "
        "drawn: training data that answers from its card. Needs --check.",
    )
    check: bool = opt(
        True,
        "Run the repetition checks on each new character turn and resample "
        "a rejected one (up to --max-resamples).",
    )
    on_exhausted: str = opt(
        "end",
        "When the resamples run out: end the dialogue at its last "
        "good turn, or keep the last candidate and flag it.",
        choices=["end", "keep"],
    )
    candidates: int = opt(
        4,
        "Character replies drawn per turn at once when checking (sharing the prompt's cache); "
        "the first that passes is kept (see --card-choice). 1 = draw one and resample only "
        "if it is rejected (fewer tokens; slower on CPU, see docs/generate.md).",
    )
    resample_temperature_step: float = opt(
        0.0,
        "Raise the character's temperature by this much in each resample round after the "
        "first (at most 1.5): a resample at the same temperature tends to loop the same way.",
    )
    sampling: SamplingConfig = section(SamplingConfig)
    export: bool = opt(
        True,
        "After generating, check and export the dataset into the run "
        "folder (as `rolegen filter` does).",
    )
    sillytavern: bool = opt(
        False,
        "With the export, also write every dialogue as a SillyTavern chat (rejected "
        "candidates as swipes) and each character's card, under <run>/sillytavern/.",
    )
    checks: CheckConfig = section(CheckConfig)
    cluster: ClusterConfig = section(ClusterConfig)

    def validate(self) -> None:
        """Fail on settings no run can use, before anything loads."""
        if not self.personas:
            raise RolegenError("no persona given: pass --persona NAME (see `rolegen personas`)")
        if self.user_scripts and self.user_personas:
            raise RolegenError(
                "--user-script and --user-persona conflict: a scripted user plays no persona"
            )
        if self.resume and not self.out:
            raise RolegenError("--resume needs --out: the run folder to continue")
        at_least(self, 1, "dialogues", "turns", "batch_size", "candidates")
        at_most(self, 1_000_000, "dialogues", "batch_size")
        at_most(self, 10_000, "turns", "candidates")
        at_least(
            self, 0, "max_resamples", "asked_resamples", "plain_negatives", "cross_card_negatives"
        )
        check_prompt_names(self.prompt_names)
        distill = self.distill_sampling
        if distill.get("no_repeat_ngram") and self.engine_config.engine == "openai":
            raise RolegenError(
                "--distill no-repeat-ngram needs a logits processor inside the engine, which "
                "a server does not have (use frequency-penalty=X)"
            )
        if self.card_choice and not self.check:
            raise RolegenError(
                "--card-choice picks among the replies that pass the checks: it needs --check"
            )
        if self.resample_temperature_step < 0:
            raise RolegenError("--resample-temperature-step must be 0 or more")
        self.engine_config.validate()
        self.sampling.validate()
        self.checks.validate()
        self.cluster.validate()

    @property
    def prompt_names(self) -> list[str]:
        return prompt_names(self.prompts)

    @property
    def distill_sampling(self) -> dict:
        """--distill as Request fields ({} when off)."""
        if not self.distill:
            return {}
        return parse_decoding(self.distill.split("+"), f"--distill '{self.distill}'")
