"""The commands, as recipes: short, linear wiring of the stages' components
(`cards`, `generation`, `checks`, `training`, `evaluation`, `runs`, over `config` and
`models`). One module per command: generate, filter, train, evaluate, pipeline. Only the
CLI imports them (import-linter's contracts in pyproject.toml)."""
