"""What a generate run says about itself: the manifest (`manifest.json`: config, model,
adapter, versions, then timings, token counts and end reasons once it stops, however it
stops), the tally of the dialogues it wrote, and the summary the CLI prints, with advice
when most dialogues ended early on rejected replies.

Non-goals: the run folder's files and locking (`runs/folders.py`), running the dialogues
(`session.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rolegen.config import GenerateConfig
from rolegen.generation.cluster import RunStats
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.session import ModelSession
from rolegen.runs.folders import RunDir, git_commit, package_versions, timestamp


@dataclass
class Summary:
    run_dir: Path
    dialogues: int
    skipped: int
    character_turns: int
    generated_tokens: int
    engine_seconds: float
    wall_seconds: float
    end_reasons: dict
    turns: int = 0  # character turns requested per dialogue
    replies_drawn: int = 0  # character replies sampled (resamples included)
    replies_passed: int = 0  # of those, the ones the checks accepted
    advice: list[str] = field(default_factory=list)  # settings that would raise the yield
    dataset: dict | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.engine_seconds if self.engine_seconds else 0.0


@dataclass
class Tally:
    """The dialogues this session wrote: each appended to the run as it lands."""

    run: RunDir
    extra: dict  # what every record carries beside the dialogue (format, model, seed)
    varied: bool  # records name their prompt (the run draws from more than rolegen's)
    written: int = 0
    character_turns: int = 0
    end_reasons: dict[str, int] = field(default_factory=dict)

    def write(self, d: Dialogue) -> None:
        record = d.to_record({**self.extra, "prompt": d.prompt} if self.varied else self.extra)
        self.run.append(record)
        self.written += 1
        reason = record["end_reason"]
        self.end_reasons[reason] = self.end_reasons.get(reason, 0) + 1
        self.character_turns += d.character_turns


def start_manifest(
    cfg: GenerateConfig, config: dict, session: ModelSession, personas, dialogues
) -> dict:
    """The manifest a run writes before its first dialogue ('running')."""
    setup = session.setup
    return {
        "status": "running",
        "config": config,
        "model": setup.info.to_dict(),
        "format": setup.format.name,
        "adapter": session.adapter_record(),
        "templates": setup.templates.used,
        "max_context": setup.max_context,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "started": timestamp(),
        "personas": {p.name: p.source for p in personas},
        # dialogues of the whole run (resumed ones included) per prompt, in --prompts order
        "prompts": {n: sum(d.prompt == n for d in dialogues) for n in cfg.prompt_names},
    }


def finish_manifest(
    manifest: dict,
    *,
    complete: bool,
    tally: Tally,
    stats: RunStats,
    total: int,
    setup_seconds: float,
    gen_seconds: float,
    on_ray: bool,
) -> None:
    """The manifest of a run that stopped: complete or interrupted, with its timings and
    counts. `gen_seconds`: generation time, the engine's load left out."""
    engine_seconds = stats.loop.engine_seconds
    manifest.update(
        status="complete" if complete else "interrupted",
        finished=timestamp(),
        timings={
            "setup_seconds": round(setup_seconds, 3),
            "engine_load_seconds": round(stats.load_seconds, 3),
            "generate_seconds": round(gen_seconds, 3),
            "engine_seconds": round(engine_seconds, 3),  # summed over replicas on Ray
            "overhead_share": round(1 - engine_seconds / gen_seconds, 4)
            if gen_seconds > 0 and not on_ray
            else None,
        },
        tokens={
            "prompt": stats.loop.prompt_tokens,
            "prompt_cached": stats.loop.cached_prompt_tokens,
            "generated": stats.loop.generated_tokens,
            "engine_calls": stats.loop.engine_calls,
            "resamples": stats.loop.resamples,
            "rejections": stats.loop.rejections,
            "character_replies_drawn": stats.loop.replies_drawn,
            "character_replies_passed": stats.loop.replies_passed,
            "card_choices": stats.loop.card_choices,
            "card_choice_changed": stats.loop.card_changed,
        },
        dialogues={
            "written_this_session": tally.written,
            "total": total,
            "end_reasons": tally.end_reasons,
        },
        engine=stats.to_dict(),
    )


def advice(cfg: GenerateConfig, end_reasons: dict[str, int]) -> list[str]:
    """What to change when most dialogues of this session ended early on rejected replies."""
    written = sum(end_reasons.values())
    exhausted = sum(n for r, n in end_reasons.items() if r.startswith(("rejected_", "empty_")))
    if not written or exhausted * 2 < written:
        return []
    said = [
        f"--max-resamples {max(2 * cfg.max_resamples, cfg.max_resamples + 4)} "
        f"(now {cfg.max_resamples}): more samples per turn before a dialogue ends"
    ]
    if cfg.resample_temperature_step == 0:
        said.append(
            "--resample-temperature-step 0.3: each resample round samples hotter, out of "
            "the loop the last one fell into (see docs/generate.md)"
        )
    if cfg.on_exhausted == "end":
        said.append(
            "--on-exhausted keep: keep the last candidate, flagged, and go on (the filter "
            "then cuts the dialogue there)"
        )
    return said
