"""cnndsl: a small language for convolutional networks, checked statically and compiled to ONNX."""

from __future__ import annotations

__version__ = "0.1.0"

from cnndsl.api import CompileOptions, CompileResult, Network, load, parse  # noqa: E402

__all__ = ["CompileOptions", "CompileResult", "Network", "load", "parse", "__version__"]
