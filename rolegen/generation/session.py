"""The run set-up that generate and eval share, written once: the model resolved and
described, the adapter loaded and how it is served, the engines a run's dialogues need,
and the batches run under a progress bar that writes each dialogue as its batch lands.

Non-goals: which dialogues run (`plan.py` for generate, `evaluation/suite.py` for eval),
what a record holds (the caller's `write`), where the engine runs (`cluster.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rolegen.config import ClusterConfig, EngineConfig, ModelConfig
from rolegen.generation.cluster import RunStats, run_batches
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.engines import resolve_engine
from rolegen.generation.replicas import ModelSetup, ReplicaSpec, adapter_serving, setup_model
from rolegen.models.adapters import Adapter, load_adapter, merged_model


@dataclass
class ModelSession:
    """A run's model, engine and adapter, resolved before any engine loads."""

    setup: ModelSetup
    engine: str  # resolved: vllm, hf or openai
    adapter: Adapter | None = None
    serving: str | None = None  # how the adapter is served: lora or merged

    def adapter_record(self) -> dict | None:
        """The adapter as a manifest or results.json records it."""
        return {**self.adapter.to_dict(), "serving": self.serving} if self.adapter else None


def open_model(
    model_config: ModelConfig,
    engine_config: EngineConfig,
    max_new_tokens: int,
    *,
    need_weights: bool = True,
    echo=print,
) -> ModelSession:
    """Resolve the model, the engine and the adapter, and say what was found; nothing
    heavy loads. `need_weights=False`: a server runs the model, whose folder only lends
    its tokenizer and config."""
    setup = setup_model(model_config, max_new_tokens, need_weights=need_weights)
    info = setup.info
    echo(
        f"model: {info.path} ({info.architecture}, vocab {info.vocab_size}, tokenizer "
        f"{info.tokenizer_size}, context {info.context_length}, eos {info.eos_token_ids})"
    )
    for w in info.warnings:
        echo(f"  note: {w}")
    session = ModelSession(setup, resolve_engine(engine_config.engine))
    if engine_config.adapter:
        session.adapter = load_adapter(engine_config.adapter, setup.path, info)
        session.serving = adapter_serving(session.engine, engine_config.adapter_serving)
        echo(
            f"adapter: {session.adapter.path} (r={session.adapter.r}), served as {session.serving}"
        )
    return session


@dataclass
class EngineGroup:
    """Dialogues that one engine serves: what it loads (None: the base model) and the
    adapter it serves beside the base (LoRA requests), if any."""

    engine_model: Path | None
    lora: Adapter | None
    dialogues: list[Dialogue]


def engine_groups(
    session: ModelSession, dialogues: list[Dialogue], echo=print
) -> list[EngineGroup]:
    """One engine for base and adapter dialogues (`Dialogue.lora`) when it serves both;
    with a merged adapter, the base's dialogues and then the adapter's on a merged copy,
    built only when an adapter dialogue is left to run. Empty groups are left out."""
    if session.serving == "merged":
        tuned = [d for d in dialogues if d.lora]
        merged = merged_model(session.adapter, session.setup.path, echo=echo) if tuned else None
        groups = [
            EngineGroup(None, None, [d for d in dialogues if not d.lora]),
            EngineGroup(merged, None, tuned),
        ]
    else:
        groups = [EngineGroup(None, session.adapter, dialogues)]
    return [g for g in groups if g.dialogues]


def run_dialogues(
    spec: ReplicaSpec,
    dialogues: list[Dialogue],
    write: Callable[[Dialogue], None],
    *,
    batch_size: int,
    cluster: ClusterConfig,
    planned_turns: Callable[[Dialogue], int],
    desc: str,
    stats: RunStats | None = None,
    echo=print,
) -> RunStats:
    """Run `dialogues` in batches of `batch_size`, in their order (on Ray too: see
    cluster.py), calling `write` on each as its batch lands. The bar counts character
    turns: a batch's dialogues all finish at its last turn, so a bar of dialogues would sit
    at 0 for the whole batch; one that ended early still counts its planned turns."""
    stats = stats or RunStats()
    batches = [dialogues[i : i + batch_size] for i in range(0, len(dialogues), batch_size)]
    total = sum(planned_turns(d) for d in dialogues)
    with tqdm(total=total, unit="turn", desc=desc, dynamic_ncols=True) as bar:
        done = 0

        def on_batch(batch: list[Dialogue]) -> None:
            nonlocal done
            for d in batch:
                write(d)
            done += sum(planned_turns(d) for d in batch)
            bar.update(done - bar.n)
            if not cluster.on_ray:  # a Ray run's figures come back with its stats
                tok_s = stats.loop.generated_tokens / max(stats.loop.engine_seconds, 1e-9)
                bar.set_postfix(tok_s=f"{tok_s:.0f}")

        return run_batches(
            spec, batches, on_batch, cluster, stats=stats, on_turn=bar.update, echo=echo
        )
