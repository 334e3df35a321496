"""The signals that ask a run to stop, all handled like Ctrl-C: whatever is half-written is removed
(and training saves its part-done epoch) instead of the process dying mid-write."""

from __future__ import annotations

import signal

# Ctrl-C, a polite kill (what schedulers and container stops send), and the terminal closing.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def stop_like_ctrl_c() -> None:
    """From now on every stop signal raises KeyboardInterrupt, as Ctrl-C does."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
