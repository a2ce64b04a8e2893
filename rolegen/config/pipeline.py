"""`rolegen pipeline`'s settings: the run folder, the rounds, the student and teacher
models, the training and eval data's size, and each stage's further settings as YAML
mappings (the stages' own configs read them)."""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.config.options import opt
from rolegen.config.shared import at_most
from rolegen.errors import RolegenError


@dataclass
class PipelineConfig:
    out: str = opt(
        "outputs/pipeline",
        "Run folder: data/, adapter/ and eval/ go inside it (later rounds in round<k>/).",
    )
    rounds: int = opt(
        1,
        "On-policy rounds: round k >= 2 generates with round k-1's adapter (new seeds), so "
        "its rejected replies are the adapter's own, and trains on from that adapter; the "
        "eval runs once, on the last round's adapter.",
    )
    model: str | None = opt(
        None,
        "The student: the model trained and evaluated (local HF checkpoint or cached hub id). "
        "Default: the embedded model.",
    )
    teacher_model: str | None = opt(
        None,
        "The teacher: a stronger model that writes the training dialogues (in-process, or its "
        "tokenizer and templates when --teacher-url serves it). Default: the student.",
    )
    teacher_url: str | None = opt(
        None,
        "The teacher behind an OpenAI-compatible server (its API root, e.g. "
        "http://127.0.0.1:8000/v1): completions with --teacher-model's templates, or chat "
        "messages (the server's chat template) without it.",
    )
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Training personas (names, cards or folders). Repeatable. Default: every shipped "
        "persona (the eval's personas are separate: evals/).",
    )
    user_scripts: list[str] = opt(
        factory=list,
        flag="user-script",
        help="User scripts for the training dialogues. Repeatable. Default: the shipped "
        "personas/scripts/.",
    )
    dialogues: int = opt(1, "Training dialogues per persona and script.")
    turns: int = opt(12, "Character turns per training dialogue.")
    eval_dialogues: int = opt(1, "Eval dialogues per held-out persona and script.")
    seed: int = opt(0, "Seed of every stage.")
    generate: dict = opt(
        factory=dict, help="More `rolegen generate` settings (YAML mapping; config file only)."
    )
    train: dict = opt(
        factory=dict, help="More `rolegen train` settings (YAML mapping; config file only)."
    )
    eval: dict = opt(
        factory=dict, help="More `rolegen eval` settings (YAML mapping; config file only)."
    )

    def validate(self) -> None:
        if self.dialogues < 1 or self.turns < 1 or self.eval_dialogues < 1:
            raise RolegenError("--dialogues, --turns and --eval-dialogues must be at least 1")
        at_most(self, 100, "rounds")
        if self.rounds < 1:
            raise RolegenError(
                f"--rounds must be at least 1 (1: no on-policy round), got {self.rounds}"
            )
