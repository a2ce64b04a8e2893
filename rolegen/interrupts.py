"""The signals a command has received, and a check that no stop is lost.

The CLI turns SIGINT and SIGTERM into a KeyboardInterrupt in the main thread
(`cli._interrupts`). Python runs a signal handler wherever the main thread happens to
be, and an exception raised inside a finalizer or a weakref callback is printed and
dropped ("Exception ignored in ..."): numba and torch run such callbacks all the time,
so a stop could be lost and the run go on to its end. The long loops (each turn of the
dialogue loop, each training step) call `check`, which raises the KeyboardInterrupt
again when a signal came in and the run is still going.
"""

from __future__ import annotations

received: list[int] = []  # the signals of the running command, in order


def check() -> None:
    """Raise KeyboardInterrupt if the command has received a signal."""
    if received:
        raise KeyboardInterrupt
