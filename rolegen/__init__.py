"""rolegen: roleplay datasets from persona cards, cleaned of repetition."""

__version__ = "0.1.0"
