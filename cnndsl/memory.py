"""How much memory this machine can give, and refusing an allocation that would not fit."""

from __future__ import annotations

from collections.abc import Callable

HEADROOM = 64 << 20  # left for the interpreter and the libraries around an allocation


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def ensure_fits(nbytes: int, error: Callable[[str], Exception]) -> None:
    """Raise ``error(reason)`` unless ``nbytes`` can be allocated here (checked before allocating)."""
    from cnndsl.lang.show import human_bytes

    free = available_memory()
    if free is not None and nbytes + HEADROOM > free:
        raise error(f"it needs {human_bytes(nbytes)} of memory, but this machine has {human_bytes(free)} available")
