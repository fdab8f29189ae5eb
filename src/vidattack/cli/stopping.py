"""Ctrl-C during a black-box attack: the first one ends it with what it has, a second one aborts.

A long attack (minutes per clip on a CPU, hours against a slow remote model) should not lose the best
adversarial video it found because the user stopped it. The first SIGINT sets the event of
:func:`vidattack.threat.graceful_stop`: every oracle then answers no more queries, so the attack ends as
it does when its budget runs out, and the command writes its result as usual, marked as interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["first_interrupt_stops"]


@contextmanager
def first_interrupt_stops(event: threading.Event) -> Iterator[None]:
    """Inside the block the first Ctrl-C sets ``event`` (and says so on stderr); a second raises
    ``KeyboardInterrupt``. Outside the main thread, where signals cannot be handled, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: object) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print("\nstopping: the attack ends with the best result it has (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
