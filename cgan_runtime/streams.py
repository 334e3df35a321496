"""Terminal output that can never cost the work it reports on.

A progress bar or a note is best effort: when stderr is closed, full or gone (a closed terminal, a
reader that quit, `2>/dev/full`), writing falls silent instead of raising in the middle of a run.
"""

from __future__ import annotations

import os
import sys


class BestEffortStream:
    """A text stream for tqdm and notes whose write and flush never raise."""

    def __init__(self, stream=None):
        self._stream = stream

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                self._stream.write(text)
            except (OSError, ValueError):  # closed (ValueError), full or broken (OSError)
                self._stream = None
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._stream = None

    def fileno(self) -> int:
        """The stream's descriptor, which tqdm asks the terminal's width of (OSError when gone)."""
        if self._stream is None:
            raise OSError("the stream is closed")
        return self._stream.fileno()


def stderr() -> BestEffortStream:
    return BestEffortStream(sys.stderr)


def note(text: str) -> None:
    """One line on stderr, if it can be written."""
    stream = stderr()
    stream.write(text + "\n")
    stream.flush()


def print_result(text: str) -> str | None:
    """Print one line on stdout; the reason when that fails (the line is lost, nothing else is).

    On failure stdout is pointed at the null device, so that the interpreter's own flush at exit
    does not fail a second time with a traceback.
    """
    stream = sys.stdout
    if stream is None:  # started with stdout closed: there is nowhere to print, and no one to read it
        return None
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError) as error:
        _silence(stream)
        return getattr(error, "strerror", None) or str(error)
    return None


def print_or_exit(text: str, done: str, what: str) -> None:
    """Print the result of work that is done; when it cannot be printed, say so (the work stays
    done) and exit 1, as a tool whose output was lost does."""
    failure = print_result(text)
    if failure:
        note(f"Error: {done}, but cannot print {what}: {failure}")
        sys.exit(1)


def silence_stdout() -> None:
    """Point stdout at the null device, after a write to it failed."""
    if sys.stdout is not None:
        _silence(sys.stdout)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (or its type's name), for a one-line report."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _silence(stream) -> None:
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError):
        sys.stdout = None
