"""How much memory this machine can give, and refusing an allocation that would not fit."""

from __future__ import annotations

from collections.abc import Callable

HEADROOM = 64 << 20  # left for the interpreter and the libraries around an allocation


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None if unknown: the machine's (Linux
    MemAvailable), or less where a container's memory limit (cgroup v2 memory.max) or an address
    space limit (ulimit -v) leaves less."""
    limits = [_meminfo(), _cgroup_room(), _address_space_room()]
    known = [n for n in limits if n is not None]
    return min(known) if known else None


def _meminfo() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), or None without a limit."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as fh:
            path = next((line.split(":", 2)[2].strip() for line in fh if line.startswith("0::")), None)
        if path is None:
            return None
        folder = "/sys/fs/cgroup" + path.rstrip("/")
        with open(folder + "/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open(folder + "/memory.current", encoding="ascii") as fh:
            used = int(fh.read().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError, IndexError):
        return None


def _address_space_room() -> int | None:
    """What ulimit -v leaves beyond the address space already mapped, or None without a limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm", encoding="ascii") as fh:
            mapped = int(fh.read().split()[0]) * resource.getpagesize()
        return max(0, soft - mapped)
    except (OSError, ValueError, IndexError, ImportError):
        return None


def ensure_fits(nbytes: int, error: Callable[[str], Exception]) -> None:
    """Raise ``error(reason)`` unless ``nbytes`` can be allocated here (checked before allocating)."""
    from cnndsl.lang.show import human_bytes

    free = available_memory()
    if free is not None and nbytes + HEADROOM > free:
        raise error(f"it needs {human_bytes(nbytes)} of memory, but this machine has {human_bytes(free)} available")
