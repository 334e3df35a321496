"""The signals that ask a run to stop, all handled like Ctrl-C: whatever is half-written is removed
(and training saves its part-done epoch) instead of the process dying mid-write."""

from __future__ import annotations

import signal

# Ctrl-C, a polite kill (what schedulers and container stops send), and the terminal closing.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


_received: list[int] = []  # the stop signals received, in order


def stop_like_ctrl_c() -> None:
    """From now on every stop signal raises KeyboardInterrupt, as Ctrl-C does."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, _raise_keyboard_interrupt)


def stopped_exit_code() -> int:
    """The shell's code for a process stopped by the last stop signal received: 128 + its number
    (130 for Ctrl-C, also when KeyboardInterrupt came without a signal)."""
    return 128 + (_received[-1] if _received else signal.SIGINT)


def _raise_keyboard_interrupt(signum, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt
