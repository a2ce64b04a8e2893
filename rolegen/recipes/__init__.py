"""The commands, as recipes: short, linear wiring of the components beside this package
(`rolegen/*.py`). One module per command: generate, filter, train, evaluate, pipeline."""
