"""Run configuration as typed dataclasses: settings only.

A whole run can live in one YAML file (`--config run.yaml`); command-line flags
override it (options.py reads both). Each field's `help` is also its `--flag`'s
help text, so the CLI and the config file cannot drift apart. Settings that
several commands share are one section each, combined per command the way TRL
combines `ScriptArguments`, `DPOConfig` and `ModelConfig`: `ModelConfig` (which
model, how its prompts are rendered) and `EngineConfig` (what runs it) go into
both `generate` and `eval`, flat, so their flags and YAML keys are plain
(`--model`, `engine:`). The sections are in shared.py, the commands' configs in
commands.py; each config checks itself (`validate()`) before anything loads.
"""

from rolegen.config.commands import (
    EvalConfig,
    FilterConfig,
    GenerateConfig,
    LoraSettings,
    PipelineConfig,
    TrainConfig,
)
from rolegen.config.shared import ClusterConfig, EngineConfig, ModelConfig, SamplingConfig

__all__ = [
    "ClusterConfig",
    "EngineConfig",
    "EvalConfig",
    "FilterConfig",
    "GenerateConfig",
    "LoraSettings",
    "ModelConfig",
    "PipelineConfig",
    "SamplingConfig",
    "TrainConfig",
]
