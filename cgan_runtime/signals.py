"""The signals that ask a run to stop, all handled like Ctrl-C: whatever is half-written is removed
(and training saves its part-done epoch) instead of the process dying mid-write."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Ctrl-C, a polite kill (what schedulers and container stops send), and the terminal closing.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_received: list[int] = []  # the stop signals received, in order


def handle_stop_signals(handler: Callable) -> dict:
    """Give the stop signals to handler, all but those ignored (a run under nohup keeps ignoring
    SIGHUP); return the handlers they had, for restore_handlers."""
    return {
        stop: signal.signal(stop, handler)
        for stop in STOP_SIGNALS
        if signal.getsignal(stop) is not signal.SIG_IGN
    }


def restore_handlers(previous: dict) -> None:
    for stop, handler in previous.items():
        signal.signal(stop, handler)


def stop_like_ctrl_c() -> None:
    """From now on every stop signal not ignored raises KeyboardInterrupt, as Ctrl-C does."""
    handle_stop_signals(_raise_keyboard_interrupt)


@contextmanager
def stop_signals_held() -> Iterator[Callable[[], bool]]:
    """Hold the stop signals back for a short step that must not be cut in two, yielding whether
    one has arrived meanwhile; at the end the first one takes effect as usual.

    Python runs signal handlers in the main thread whichever thread the signal reaches, so the
    handlers are swapped for one that only takes note (masking the signal in this thread would let
    another thread take it). Elsewhere than in the main thread nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []
    previous = handle_stop_signals(lambda number, frame: received.append(number))
    try:
        yield lambda: bool(received) or stop_requested()
    finally:
        restore_handlers(previous)
        if received:
            signal.raise_signal(received[0])


def stop_requested() -> bool:
    """Whether a stop signal has been received since stop_like_ctrl_c: true even where the
    KeyboardInterrupt it raised was swallowed (raised inside a finaliser, Python only prints it)."""
    return bool(_received)


def stopped_exit_code() -> int:
    """The shell's code for a process stopped by the last stop signal received: 128 + its number
    (130 for Ctrl-C, also when KeyboardInterrupt came without a signal)."""
    return 128 + (_received[-1] if _received else signal.SIGINT)


def _raise_keyboard_interrupt(signum, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt
