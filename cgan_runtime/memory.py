"""Refusing an allocation this machine cannot hold, before making it."""

from __future__ import annotations

import os


def check_fits_in_memory(count: int, bytes_per_item: int, advice: str) -> None:
    """ValueError, before anything is allocated, when count images cannot fit in this machine's RAM."""
    needed, memory = count * bytes_per_item, physical_memory()
    if memory and needed > memory:
        raise ValueError(
            f"{count:,} images need {needed / 1e9:.1f} GB, more than this machine's "
            f"{memory / 1e9:.1f} GB of memory; {advice}"
        )


def physical_memory() -> int:
    """Bytes of RAM, or 0 where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 0
