"""Triton Inference Server model configuration: options -> config.pbtxt text (pure, no I/O).

The text is protobuf text format for Triton's ``ModelConfig`` message, written field by field in a
fixed order, so the same model and options always give the same file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cnndsl.errors import ExportError

DEFAULT_MAX_BATCH = 64
DEFAULT_QUEUE_DELAY_US = 100

# Triton's data type for each ONNX element type name (onnx.TensorProto.DataType.Name).
TRITON_TYPES = {
    "FLOAT": "TYPE_FP32", "FLOAT16": "TYPE_FP16", "BFLOAT16": "TYPE_BF16", "DOUBLE": "TYPE_FP64",
    "INT8": "TYPE_INT8", "INT16": "TYPE_INT16", "INT32": "TYPE_INT32", "INT64": "TYPE_INT64",
    "UINT8": "TYPE_UINT8", "UINT16": "TYPE_UINT16", "UINT32": "TYPE_UINT32", "UINT64": "TYPE_UINT64",
    "BOOL": "TYPE_BOOL", "STRING": "TYPE_STRING",
}

# The instance groups for each --instances choice, as Triton kinds.
INSTANCE_KINDS = {
    "auto": ("KIND_AUTO",),  # on the GPUs when Triton sees any, otherwise on the CPU
    "gpu": ("KIND_GPU",),  # fails to load on a machine without a GPU
    "cpu": ("KIND_CPU",),
    "both": ("KIND_GPU", "KIND_CPU"),  # also fails to load without a GPU
}

_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class Token(str):
    """An enum value, written bare (``TYPE_FP32``), not quoted."""


@dataclass(frozen=True)
class Tensor:
    """One input or output at Triton's interface; ``dims`` leave out the batch axis when batching."""

    name: str
    data_type: str  # a Triton TYPE_* name
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ServeOptions:
    """How Triton serves the model: batching, queueing and instances."""

    max_batch: int = DEFAULT_MAX_BATCH
    preferred: tuple[int, ...] | None = None  # None: derived from max_batch
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instances: str = "auto"
    count: int = 1


def check_model_name(name: str) -> str:
    """The name Triton serves the model under (also its folder's name); refuse what cannot be one."""
    if not _MODEL_NAME.fullmatch(name):
        raise ExportError(f"'{name}' cannot name a Triton model (it is the model's folder name)",
                          hint="use letters, digits, '_', '-' and '.', not starting with '.' or '-': --name NAME")
    return name


def triton_type(onnx_type: str) -> str:
    """Triton's TYPE_* for an ONNX element type name (``FLOAT`` -> ``TYPE_FP32``)."""
    if onnx_type not in TRITON_TYPES:
        raise ExportError(f"Triton has no data type for ONNX {onnx_type} tensors")
    return TRITON_TYPES[onnx_type]


def default_preferred(max_batch: int) -> tuple[int, ...]:
    """The full batch, its half and its quarter: 64 -> (16, 32, 64); none without batching."""
    if max_batch < 2:
        return ()
    sizes = {max_batch, max_batch // 2, max_batch // 4}
    return tuple(sorted(s for s in sizes if s >= 1))


def parse_preferred(text: str | None) -> tuple[int, ...] | None:
    """``--preferred-batch`` text: ``8,16,32``, ``none`` (leave it to Triton), or None for the default."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ExportError(f"--preferred-batch: '{part}' is not a batch size",
                              hint="give positive integers separated by commas (8,16,32), or none")
        sizes.append(int(part))
    return tuple(sorted(set(sizes)))


INT32_MAX, UINT64_MAX = 2 ** 31 - 1, 2 ** 64 - 1  # the config's field types


def check_options(opts: ServeOptions) -> tuple[int, ...]:
    """Check the serving options against each other; returns the preferred batch sizes to write."""
    if opts.max_batch < 0:
        raise ExportError(f"--max-batch {opts.max_batch} is negative", hint="use 0 for no batching, or 1 or more")
    if opts.instances not in INSTANCE_KINDS:
        raise ExportError(f"unknown --instances '{opts.instances}'", hint=f"use one of {', '.join(INSTANCE_KINDS)}")
    if opts.count < 1:
        raise ExportError(f"--instance-count {opts.count} must be at least 1")
    if opts.queue_delay_us < 0:
        raise ExportError(f"--max-queue-delay-us {opts.queue_delay_us} is negative")
    for option, value, limit in (("--max-batch", opts.max_batch, INT32_MAX), ("--instance-count", opts.count,
                                 INT32_MAX), ("--max-queue-delay-us", opts.queue_delay_us, UINT64_MAX)):
        if value > limit:
            raise ExportError(f"{option} {value} is beyond what Triton's model config holds ({limit:,})")
    preferred = default_preferred(opts.max_batch) if opts.preferred is None else opts.preferred
    too_big = [s for s in preferred if s > opts.max_batch]
    if opts.max_batch < 2 and opts.preferred:
        raise ExportError(f"--preferred-batch needs dynamic batching, which needs --max-batch 2 or more "
                          f"(got {opts.max_batch})", hint="raise --max-batch, or leave out --preferred-batch")
    if too_big:
        raise ExportError(f"preferred batch size {too_big[0]} exceeds --max-batch {opts.max_batch}",
                          hint=f"give sizes from 1 to {opts.max_batch}, or raise --max-batch")
    return preferred


def config_fields(name: str, inputs: list[Tensor], outputs: list[Tensor], opts: ServeOptions) -> list:
    """The ModelConfig as (field, value) pairs, in the order they are written.

    Values: str (quoted), Token (bare), int, tuple of ints (a list), list of (field, value) pairs
    (a message), or a list of such lists (repeated messages). A None field is a comment line.
    """
    preferred = check_options(opts)
    batched = opts.max_batch > 0
    fields: list = [
        (None, f"Triton model configuration for {name}, written by `cnndsl export --triton`."),
        (None, "Each version is a numbered folder beside this file: 1/model.onnx, 2/model.onnx, ..."),
        ("name", name),
        ("backend", "onnxruntime"),
        ("platform", "onnxruntime_onnx"),
        ("max_batch_size", opts.max_batch),
        ("input", [_tensor(t, batched) for t in inputs]),
        ("output", [_tensor(t, batched) for t in outputs]),
    ]
    if opts.max_batch >= 2:
        batching: list = [("preferred_batch_size", preferred)] if preferred else []
        batching.append(("max_queue_delay_microseconds", opts.queue_delay_us))
        fields.append(("dynamic_batching", batching))
    fields.append((None, _INSTANCE_NOTES[opts.instances]))
    fields.append(("instance_group", [[("count", opts.count), ("kind", Token(kind))]
                                      for kind in INSTANCE_KINDS[opts.instances]]))
    return fields


_INSTANCE_NOTES = {
    "auto": "KIND_AUTO: instances on each GPU Triton can see, or on the CPU where it sees none.",
    "gpu": "KIND_GPU: instances on each GPU; Triton cannot load this model on a machine without one.",
    "cpu": "KIND_CPU: instances on the CPU only.",
    "both": "Instances on each GPU and on the CPU; Triton cannot load this model on a machine without a GPU.",
}


def _tensor(t: Tensor, batched: bool) -> list:
    dims = t.dims if batched else (-1, *t.dims)  # without batching the batch axis is a variable dim
    return [("name", t.name), ("data_type", Token(t.data_type)), ("dims", tuple(dims))]


def render(fields: list, indent: int = 0) -> str:
    """Protobuf text format for (field, value) pairs (see config_fields), two spaces per level."""
    pad = "  " * indent
    lines = []
    for key, value in fields:
        if key is None:
            lines.append(f"{pad}# {value}")
        elif isinstance(value, list) and value and isinstance(value[0], list):
            items = [f"{pad}  {{\n{render(item, indent + 2)}{pad}  }}" for item in value]
            lines.append(f"{pad}{key} [\n" + ",\n".join(items) + f"\n{pad}]")
        elif isinstance(value, list):
            lines.append(f"{pad}{key} {{\n{render(value, indent + 1)}{pad}}}")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "".join(line + "\n" for line in lines)


def _scalar(value) -> str:
    if isinstance(value, Token):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[ " + ", ".join(str(v) for v in value) + " ]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"no text format for {value!r}")
    return str(value)


def config_text(name: str, inputs: list[Tensor], outputs: list[Tensor], opts: ServeOptions) -> str:
    """The whole config.pbtxt for a model served by Triton's onnxruntime backend."""
    return render(config_fields(check_model_name(name), inputs, outputs, opts))
