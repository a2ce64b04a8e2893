"""How long vLLM's processes busy-wait for each other: a vLLM plugin, loaded in every
vLLM process (entry point `vllm.general_plugins`, `rolegen-spin`).

vLLM's engine core and its worker pass every step through a shared-memory queue. After
each read, the reader spins on `sched_yield` for one second (`SpinCondition`) before it
sleeps on a socket. On a GPU the spinning process has a core to itself. On a CPU the
worker's OpenMP threads use every core, and the engine core spinning beside them takes
their time: profiled here (2 cores, `bench/generate_profile.py`), the two spinning
readers took 0.38 of all CPU time during a generate. vLLM has no setting for it.

`register` shortens the busy-wait to `ROLEGEN_VLLM_SPIN_S` seconds when that variable is
set, and does nothing when it is not. `VLLMEngine` sets it on a CPU
(`bench/preload_bench.py` measures it on and off). A vLLM whose queue has changed
shape is left as it is, with a warning.
"""

from __future__ import annotations

import os
import warnings

ENV = "ROLEGEN_VLLM_SPIN_S"


def spin_seconds() -> float | None:
    """The busy-wait asked for in the environment, or None for vLLM's own."""
    value = os.environ.get(ENV)
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{ENV}={value!r} is not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"{ENV}={value!r} must be 0 or more")
    return seconds


def register() -> None:
    """Cap every shared-memory reader's busy-wait at `ROLEGEN_VLLM_SPIN_S` seconds."""
    seconds = spin_seconds()
    if seconds is None:
        return
    try:
        from vllm.distributed.device_communicators.shm_broadcast import SpinCondition
    except ImportError:
        warnings.warn(f"{ENV} is set but this vLLM has no SpinCondition; left as is", stacklevel=1)
        return
    wait = SpinCondition.wait
    if getattr(wait, "_rolegen_spin", None) is not None:
        wait = wait.__wrapped__

    def capped_wait(self, *args, **kwargs):
        # readers built before this plugin loaded are capped as well
        if self.busy_loop_s > seconds:
            self.busy_loop_s = seconds
        return wait(self, *args, **kwargs)

    capped_wait.__wrapped__ = wait
    capped_wait._rolegen_spin = seconds
    SpinCondition.wait = capped_wait
