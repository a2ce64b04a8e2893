"""The systems an eval compares: the base model or the adapter, each with optional
decoding settings ('base', 'adapter+repetition-penalty=1.05', ...).

Decoding settings are those both engines apply: repetition, frequency and presence
penalties and no-repeat n-grams. Not handled: other sampling knobs per system
(temperature and top_p are the same for every system of an eval, by design).

Under the eval's prompt axis a system is scored under each prompt; its label there is
'base @ plain', and under rolegen's own prompt the bare name ('base'), so an eval under
rolegen's prompt alone names its systems plainly, and one resumed with more prompts keeps
its dialogues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rolegen.errors import RolegenError

ROLEGEN_PROMPT = "rolegen"  # the prompt generate renders and training sees

# What a user tries first: the decoding fixes, beside the adapter alone and with a light fix.
DEFAULT_SYSTEMS = [
    "base",
    "base+repetition-penalty=1.15",
    "base+repetition-penalty=1.3",
    "base+frequency-penalty=0.5",
    "base+no-repeat-ngram=3",
    "adapter",
    "adapter+repetition-penalty=1.05",
]
_DECODING = {
    "repetition-penalty": ("repetition_penalty", float),
    "frequency-penalty": ("frequency_penalty", float),
    "presence-penalty": ("presence_penalty", float),
    "no-repeat-ngram": ("no_repeat_ngram", int),
}


@dataclass
class System:
    name: str
    adapter: bool
    sampling: dict = field(default_factory=dict)  # Request fields


def parse_system(spec: str) -> System:
    """'base', 'adapter', or either + decoding terms: 'adapter+repetition-penalty=1.05'."""
    terms = [t.strip() for t in spec.split("+") if t.strip()]
    if not terms or terms[0] not in ("base", "adapter"):
        raise RolegenError(
            f"--system '{spec}': must start with 'base' or 'adapter' (e.g. base+no-repeat-ngram=3)"
        )
    sampling = parse_decoding(terms[1:], f"--system '{spec}'")
    return System(name="+".join(terms), adapter=terms[0] == "adapter", sampling=sampling)


def parse_decoding(terms: list[str], where: str) -> dict:
    """Decoding terms ('frequency-penalty=0.5', 'no-repeat-ngram=3') -> Request fields;
    `where` names the flag in errors."""
    sampling = {}
    for term in terms:
        key, _, value = term.strip().partition("=")
        if key not in _DECODING or not value:
            raise RolegenError(
                f"{where}: unknown term '{term}' (use {', '.join(_DECODING)} with =VALUE)"
            )
        name, cast = _DECODING[key]
        try:
            number = cast(value)
        except ValueError:
            raise RolegenError(f"{where}: '{value}' is not a {cast.__name__}") from None
        if not math.isfinite(number):
            raise RolegenError(f"{where}: {key} must be a finite number, got {value}")
        if name == "no_repeat_ngram" and number < 1:
            raise RolegenError(
                f"{where}: no-repeat-ngram bans n-grams of N >= 1 words, got {value}"
            )
        if name == "repetition_penalty" and number <= 0:
            raise RolegenError(
                f"{where}: repetition-penalty must be above 0 (1 = off), got {value}"
            )
        sampling[name] = number
    return sampling


def decoding_name(sampling: dict) -> str:
    """Request fields -> their terms ('frequency-penalty=0.5'); 'plain' for none."""
    flags = {name: key for key, (name, _) in _DECODING.items()}
    terms = [f"{flags[k]}={v}" for k, v in sampling.items() if k in flags]
    return "+".join(terms) or "plain"


def label(system: str, prompt: str) -> str:
    """A system's name under a prompt: 'base @ plain'; under rolegen's own, 'base'."""
    return system if prompt == ROLEGEN_PROMPT else f"{system} @ {prompt}"


def split_label(name: str) -> tuple[str, str]:
    """(system, prompt) of a label; a bare name is under rolegen's own prompt."""
    system, sep, prompt = name.partition(" @ ")
    return (system, prompt) if sep else (name, ROLEGEN_PROMPT)


def references(names: list[str], reference: str) -> dict[str, str]:
    """Each system's reference for deltas: base under the same prompt when it was scored,
    else `reference`, so that a prompt's systems are compared within that prompt."""
    out = {}
    for name in names:
        own = label(split_label(reference)[0], split_label(name)[1])
        out[name] = own if own in names else reference
    return out
