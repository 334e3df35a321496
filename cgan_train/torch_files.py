"""Reading the torch files this project writes (checkpoints, the judge) without trusting them.

torch.load checks neither the zip archive's CRCs (a flipped bit in a weight loads as a quietly wrong
number) nor, beyond weights_only=True, what the file holds: every record's CRC is verified first,
then the file is loaded without running any code from it.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from cgan_runtime.streams import first_line


class UnreadableTorchFile(Exception):
    """The file is not a sound torch archive; the message says why, in a few words."""


def load_verified(path: Path) -> object:
    """What torch.save wrote to path, once every record of its archive passes its CRC check (read
    through one open file, so that a file replaced meanwhile is not loaded unchecked)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below, on every path)
    except OSError as error:
        raise UnreadableTorchFile(f"cannot be read ({error.strerror or error})") from error
    with handle:
        try:
            with zipfile.ZipFile(handle) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as error:
            raise UnreadableTorchFile(f"truncated or corrupt ({first_line(error)})") from error
        if damaged is not None:
            raise UnreadableTorchFile(f"corrupt: record {damaged} fails its CRC check")
        handle.seek(0)
        try:
            return torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise UnreadableTorchFile(
                "holds objects that safe loading (weights_only=True) refuses"
            ) from error
        except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise UnreadableTorchFile(f"truncated or corrupt ({first_line(error)})") from error
