"""`rolegen filter`'s settings: the persona split, what a kept dialogue must have, the
SillyTavern export, and the checks' thresholds and the judge (checks.py, judge.py)."""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.config.checks import CheckConfig
from rolegen.config.judge import JudgeConfig
from rolegen.config.options import opt, section
from rolegen.config.shared import at_least
from rolegen.errors import RolegenError


@dataclass
class FilterConfig:
    out: str | None = opt(None, "Output folder. Default: the folder of the dialogues file.")
    test_share: float = opt(0.1, "Share of personas held out as the test split (whole personas).")
    min_turns: int = opt(2, "Fewest clean character turns a kept dialogue must have.")
    on_error: str = opt(
        "skip", "Malformed lines: skip them (reported by number) or stop.", choices=["skip", "stop"]
    )
    max_chars: int = opt(20000, "Longest message accepted, in characters.")
    seed: int = opt(0, "Seed of the persona split.")
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Character cards (name, file or folder) for SillyTavern chats: the intro and "
        "language the header lacks, matched by name (one card serves every chat). Repeatable.",
    )
    sillytavern: bool = opt(
        False,
        "Also write every dialogue as a SillyTavern chat (rejected candidates as swipes) and "
        "its character as a Character Card V2 (PNG and JSON), under <out>/sillytavern/.",
    )
    checks: CheckConfig = section(CheckConfig)
    judge: JudgeConfig = section(JudgeConfig, flat=True)

    def validate(self) -> None:
        """Fail on settings no filter can use, before anything is read."""
        if not 0 <= self.test_share < 1:
            raise RolegenError(
                f"--test-share must be at least 0 and below 1 (a share of the personas), "
                f"got {self.test_share}"
            )
        at_least(self, 0, "min_turns")
        at_least(self, 1, "max_chars")
        self.checks.validate()
        self.judge.validate()
