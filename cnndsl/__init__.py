"""cnndsl: a small language for convolutional networks, checked statically and compiled to ONNX.

The public names are imported on first use (PEP 562), so that `import cnndsl.cli` (the console
script) stays light until it has installed its signal handlers."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["CompileOptions", "CompileResult", "Network", "import_onnx", "load", "parse", "__version__"]

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str):
    if name in _API:
        from cnndsl import api

        value = getattr(api, name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API only (``help(cnndsl)`` and tab completion show what a user may rely on)."""
    return sorted(__all__)
