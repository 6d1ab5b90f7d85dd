"""The cases of tools/hostile.py: hostile files, environments and signals, family by family.

Each family is a generator of `Case`s: first a fixed list (the attacks of issue 14 and their
siblings), then random variants for ever, so `--minutes` decides how far a run gets. A case's files
are made only when it runs (`Case.build`), from a random.Random seeded by the session's seed and the
case's name, so one case can be rebuilt alone (`--only NAME`). Nothing here touches the network;
big files are sparse (truncate) or compressed, never written out in full.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
import signal
import stat
import struct
import subprocess
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
MiB, GiB = 1 << 20, 1 << 30
OK_CODES = frozenset({0, 1, 2})
SIGNAL_CODES = frozenset({0, 1, 2, 129, 130, 143})  # finished first, refused, or stopped by the signal
PIPE_CODES = frozenset({0, 1, 2, 141, -signal.SIGPIPE})  # a reader that went away may end it quietly
LENET = str(SPECS / "lenet5.cnn")
SMALL_SPECS = ("lenet5", "mlp_mnist", "conv_example", "filters", "googlenet", "resnet18")  # compiled when mutated
FAMILIES = ("specs", "weights", "inputs", "models", "env", "signals")
BLOCKING = 10.0  # seconds for a case that may block (a FIFO, /dev/zero): a hang shows within this

Build = Callable[[Path, random.Random], None]


@dataclass
class Case:
    """One command to run against hostile input, and what it may leave behind."""

    family: str
    name: str
    args: list[str]  # after `python -m cnndsl`; relative paths are in the work folder (the cwd)
    build: Build | None = None  # writes the inputs into the work folder
    outputs: tuple[str, ...] = ()  # glob patterns a success may leave in the work folder
    required: tuple[str, ...] = ()  # what a success must leave
    baseline: str | None = None  # a key of baselines(): their peak memory bounds this case's
    env: dict[str, str | None] = field(default_factory=dict)  # None unsets; "{root}" is the case folder
    stdout: str = "file"  # file, full (/dev/full), pipe (nobody reads it), closed, tty (a pty, stderr too)
    signals: tuple[tuple[float, int, bool], ...] = ()  # (seconds after the start, signal, to the group)
    grace: float = 10.0  # seconds the command may take to exit after its last signal
    codes: frozenset[int] = OK_CODES
    timeout: float | None = None  # at most this, and at most --timeout
    fsize: int = GiB  # RLIMIT_FSIZE: no case writes a bigger file
    locked: tuple[str, ...] = ()  # folders, relative to the case folder, made immutable while it runs
    pre: tuple[tuple[list[str], float], ...] = ()  # commands run first and SIGKILLed after t s (unchecked)
    complete: str | None = None  # a baseline key: a success must write outputs of the same sizes
    text_stdout: bool = False  # stdout is the spec's own text (fmt --stdout): control bytes are no finding
    refuse: bool = False  # the input breaks its format's rules: exit 0 (accepting it silently) is a finding


# -- shared artefacts ------------------------------------------------------------------------


class Artefacts:
    """Files several cases share, made once per session in ``folder``: legitimate weights, compiled
    models and the zip bomb. ``python`` is the command that runs cnndsl's module."""

    def __init__(self, folder: Path, python: list[str], seed: int) -> None:
        self.folder, self.python, self.seed = folder, python, seed
        folder.mkdir(parents=True, exist_ok=True)
        self._memo: dict = {}

    def _once(self, key, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def cnndsl(self, *args: str) -> str:
        proc = subprocess.run([*self.python, "-m", "cnndsl", *args], capture_output=True, text=True, timeout=300,
                              cwd=self.folder, stdin=subprocess.DEVNULL, env=dict(os.environ, TMPDIR=str(self.folder)))
        if proc.returncode:
            raise RuntimeError(f"cnndsl {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-500:]}")
        return proc.stdout

    def shapes(self, spec: str) -> list[tuple[str, tuple[int, ...]]]:
        return self._once(("shapes", spec), lambda: [(w["name"], tuple(w["shape"])) for w in json.loads(
            self.cnndsl("weights", "--json", str(SPECS / f"{spec}.cnn")))])

    def tensors(self, spec: str) -> dict[str, np.ndarray]:
        """Legitimate float32 weights for ``spec`` (positive variances for batchnorm)."""
        def make():
            rng = np.random.default_rng(self.seed)
            out = {}
            for name, shape in self.shapes(spec):
                a = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)
                out[name] = np.abs(a) + np.float32(0.5) if name.endswith("running_var") else a
            return out
        return self._once(("tensors", spec), make)

    def model(self, spec: str) -> Path:
        """``spec`` compiled with seeded weights (a legitimate .onnx model)."""
        def make():
            path = self.folder / f"{spec}.onnx"
            self.cnndsl("compile", str(SPECS / f"{spec}.cnn"), "-o", str(path))
            return path
        return self._once(("model", spec), make)

    def bomb(self, name: str, gib: int) -> Member:
        """A zip member ``name`` holding an .npy of ``gib`` GiB of float32 zeros, a few MB deflated."""
        return self._once(("bomb", name, gib), lambda: deflated_zeros(name, npy_header("<f4", (gib * GiB // 4,)),
                                                                      gib * GiB))


def copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


# -- file formats, written by hand where a hostile file needs what the libraries refuse ---------


def npy_header(descr: str, shape: tuple, fortran: bool = False, text: str | None = None,
               version: tuple[int, int] = (1, 0)) -> bytes:
    """The .npy preamble: magic, version, header length, then the header dict (or ``text``), padded."""
    head = (text if text is not None else repr({"descr": descr, "fortran_order": fortran, "shape": shape})).encode(
        "utf-8" if version[0] >= 3 else "latin-1")
    size_bytes = 2 if version[0] == 1 else 4
    pad = -(6 + 2 + size_bytes + len(head) + 1) % 64
    head += b" " * pad + b"\n"
    size = struct.pack("<H" if size_bytes == 2 else "<I", len(head))
    return b"\x93NUMPY" + bytes(version) + size + head


def npy(a: np.ndarray) -> bytes:
    a = np.asarray(a)
    descr = np.lib.format.dtype_to_descr(a.dtype)
    return npy_header(descr, a.shape) + np.ascontiguousarray(a).tobytes()


@dataclass
class Member:
    """One zip member as stored: its name, its bytes on disk, CRC, declared size, method and flags."""

    name: str
    data: bytes
    crc: int
    size: int
    method: int = 0
    flags: int = 0


def stored(name: str, data: bytes, method: int = 0, flags: int = 0) -> Member:
    return Member(name, data, zlib.crc32(data), len(data), method, flags)


def deflated_zeros(name: str, header: bytes, zeros: int, declared: int | None = None) -> Member:
    """``header`` then ``zeros`` zero bytes, deflated from one 16 MiB block repeated (each block
    ends in a full flush, so copies of it are a valid stream): megabytes for gigabytes."""
    block = 16 * MiB
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(header) + head.flush(zlib.Z_FULL_FLUSH)
    again = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = again.compress(bytes(block)) + again.flush(zlib.Z_FULL_FLUSH)
    n = zeros // block
    crc = zlib.crc32(header)
    zero_block = bytes(block)
    for _ in range(n):
        crc = zlib.crc32(zero_block, crc)
    size = len(header) + n * block
    return Member(name, first + one * n + b"\x03\x00", crc, size if declared is None else declared, 8)


def zip_bytes(members: list[Member]) -> bytes:
    """A zip (zip64 sizes) of ``members`` exactly as given: lying sizes, odd methods and duplicate names too."""
    out, central = bytearray(), bytearray()
    for m in members:
        name = m.name.encode("utf-8", "surrogateescape")
        extra = struct.pack("<HHQQ", 1, 16, m.size, len(m.data))
        offset = len(out)
        out += struct.pack("<I5H3I2H", 0x04034B50, 45, m.flags, m.method, 0, 0x21, m.crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(name), len(extra)) + name + extra + m.data
        central += struct.pack("<I6H3I5H2I", 0x02014B50, 45, 45, m.flags, m.method, 0, 0x21, m.crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, offset) + name + extra
    n = len(members)
    eocd = struct.pack("<I4H2IH", 0x06054B50, 0, 0, n, n, len(central), len(out), 0)
    return bytes(out + central + eocd)


def npz(arrays: dict[str, bytes]) -> bytes:
    """An .npz of members already serialised (``name`` without .npy is kept as given)."""
    return zip_bytes([stored(name, data) for name, data in arrays.items()])


ST_CODES = {"float32": "F32", "float16": "F16", "float64": "F64", "int64": "I64", "int8": "I8", "uint8": "U8"}


def safetensors(tensors: dict[str, np.ndarray], edit: Callable[[dict], None] | None = None,
                text: Callable[[str], str] | None = None, size: int | None = None, tail: bytes = b"") -> bytes:
    """A safetensors file: ``edit`` changes the header dict, ``text`` its JSON text (for what json
    cannot say: duplicate keys, deep nesting), ``size`` overrides the header length field."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        data = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": ST_CODES[a.dtype.name], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if edit:
        edit(header)
    raw = json.dumps(header)
    raw = (text(raw) if text else raw).encode("utf-8", "surrogateescape")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if size is None else size) + raw + b"".join(blobs) + tail


class _Canary:
    """Unpickling this runs `touch PWNED` in the current folder: the proof of code execution."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def canary_pickle() -> bytes:
    return pickle.dumps(_Canary(), protocol=2)


def canary_npy() -> bytes:
    """An object-array .npy whose pickle runs the canary."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([_Canary(), 1], dtype=object), allow_pickle=True)
    return buf.getvalue()


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def pb(field_no: int, value: bytes | int) -> bytes:
    """One protobuf field: a varint, or length-delimited bytes."""
    if isinstance(value, int):
        return varint(field_no << 3) + varint(value)
    return varint(field_no << 3 | 2) + varint(len(value)) + value


def deep_onnx(depth: int) -> bytes:
    """A ModelProto whose graph nests If subgraphs ``depth`` deep (raw wire format)."""
    graph = b""
    for _ in range(depth):
        attr = pb(1, b"then_branch") + pb(6, graph) + pb(20, 5)
        graph = pb(1, pb(4, b"If") + pb(5, attr))
    return pb(1, 10) + pb(7, graph) + pb(8, pb(2, 21))


def onnx_model(nodes, inputs, outputs, inits=(), opset: int = 21, ir: int = 10, domain: str = "") -> bytes:
    from onnx import helper

    graph = helper.make_graph(list(nodes), "hostile", list(inputs), list(outputs), list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, opset)], ir_version=ir)
    return model.SerializeToString()


def vi(name: str, shape, elem: int = 1):
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, shape)


def tensor_proto(name: str, dims: list[int], data_type: int = 1, raw: bytes | None = None):
    """A TensorProto as given, unchecked (onnx.helper refuses sizes that do not add up)."""
    from onnx import TensorProto

    t = TensorProto(name=name, data_type=data_type)
    t.dims.extend(dims)
    if raw is not None:
        t.raw_data = raw
    return t


def external(name: str, dims: list[int], location: str, offset: int = 0, length: int | None = None):
    """A float32 initializer whose data lives in ``location`` (ONNX external data)."""
    from onnx import TensorProto

    t = tensor_proto(name, dims)
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        e = t.external_data.add()
        e.key, e.value = key, value
    return t


def weights_onnx(tensors: dict[str, np.ndarray], extra=()) -> bytes:
    """A model whose initializers are ``tensors`` (and ``extra`` TensorProtos): --weights FILE.onnx."""
    from onnx import numpy_helper

    inits = [numpy_helper.from_array(a, name) for name, a in tensors.items()] + list(extra)
    return onnx_model([], [], [vi("y", [1])], inits)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def sparse(path: Path, size: int, head: bytes = b"") -> None:
    """A file of ``size`` bytes that takes no disk: ``head``, then a hole."""
    path.write_bytes(head)
    os.truncate(path, size)


def files(**made: Callable[[], bytes] | bytes | str) -> Build:
    """A build step making each file (a keyword, '__' for '.': w__npz is w.npz) from bytes, a callable
    giving bytes, or a special: 'fifo', 'dir', 'link:TARGET', 'sparse:SIZE[:HEAD]'."""
    def build(work: Path, rng: random.Random) -> None:
        for name, what in made.items():
            path = work / name.replace("__", ".")
            if callable(what):
                what = what()
            if isinstance(what, bytes):
                write(path, what)
            elif what == "fifo":
                os.mkfifo(path)
            elif what == "dir":
                path.mkdir()
            elif what.startswith("link:"):
                path.symlink_to(what[5:])
            elif what.startswith("sparse:"):
                _, size, *head = what.split(":", 2)
                sparse(path, int(size), head[0].encode() if head else b"")
    return build


def chain(*steps: Build | None) -> Build:
    def build(work: Path, rng: random.Random) -> None:
        for step in steps:
            if step:
                step(work, rng)
    return build


def spec_bytes(name: str) -> bytes:
    return (SPECS / f"{name}.cnn").read_bytes()


def shipped() -> list[str]:
    return sorted(p.stem for p in SPECS.glob("*.cnn"))


# -- family 1: specs --------------------------------------------------------------------------

HUGE = ["0", "-1", "-0", "999999999999999999", "1000000000000000000", "18446744073709551616", "2147483648",
        "1e309", "-1e309", "1e-400", "nan", "inf", "1" * 400, "9" * 5000, "0x10", "1_000", "00000000000000000007"]
TITLES = [b"\x1b[2J\x1b[Hcleared", b"\x1b]0;owned\x07", b"\x1b]52;c;cHduZWQ=\x07", b"ok\rfake: ok",
          b"\r\nfake.cnn: ok: 1 layer", b"\x9b31mraw C1", "\u009b31m C1 in UTF-8".encode(), "\u202eevil".encode(),
          b"bell\x07\x07", b"nul\x00here", b"back\x08\x08\x08space", b"\x1bP+q\x1b\\dcs", b"tab\there\x0bvt\x0cff",
          "\u2028line\u2029para\x85nel".encode(), "G\u00f6\u00dfe".encode("latin-1")]
CONTROL = [bytes([c]) for c in (*range(0, 9), 11, 12, *range(14, 32), 127)] + [
    "\u0085".encode(), "\u009b".encode(), "\u2028".encode(), "\u202e".encode(), "\u200b".encode(), "\ufeff".encode()]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80"]
REPEATS = ["20000", "1000000", "1000000000", "999999999999999999", "1000000000000000000", "9223372036854775808"]
NESTING = [49, 50, 51, 200, 5000, 30000]


def _lines(b: bytes) -> list[bytes]:
    return b.split(b"\n")


def _after_input(b: bytes, line: bytes) -> bytes:
    """``line`` inserted after the `input` line (so it has an input), else at the end."""
    lines = _lines(b)
    at = next((i + 1 for i, text in enumerate(lines) if text.lstrip().startswith(b"input")), len(lines))
    return b"\n".join(lines[:at] + [line] + lines[at:])


def _retitle(b: bytes, title: bytes) -> bytes:
    m = re.search(rb'^network[ \t]+(\w+)([ \t]+"[^"\n]*")?', b, re.M)
    new = b'network hostile "' + title + b'"'
    return b[:m.start()] + new + b[m.end():] if m else new + b"\n" + b


def _renumber(b: bytes, rng: random.Random, value: str) -> bytes:
    runs = [m for m in re.finditer(rb"(?<![\w.])\d+(?![\w.])", b) if b.rfind(b"#", 0, m.start()) < b.rfind(
        b"\n", 0, m.start())]
    if not runs:
        return b + b"\nconv " + value.encode() + b" 3x3\n"
    m = rng.choice(runs)
    return b[:m.start()] + value.encode() + b[m.end():]


NEST_KINDS = ("parens", "groups", "lists", "minus")


def _nest(kind: int, n: int) -> bytes:
    """``n`` levels of one kind of nesting (NEST_KINDS), as one statement."""
    if kind == 0:
        return b"conv " + b"(" * n + b"4" + b")" * n + b" 1x1"
    if kind == 1:
        return b"{ " * n + b"relu" + b" }" * n
    if kind == 2:
        return b"fixedconv " + b"[" * n + b"1" + b"]" * n
    return b"identity pad=" + b"-" * n + b"1"


def _blocks(rng: random.Random) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:  # a chain deeper than the block limit
        n = rng.choice([50, 51, 60, 500])
        return b"\n".join(b"block b%d() { b%d }" % (i, i + 1) for i in range(n)) + b"\nblock b%d() { relu }\nb0" % n
    if kind == 1:  # recursion, direct and mutual
        return rng.choice([b"block a() { a }\na", b"block a() { b }\nblock b() { a }\na"])
    n = rng.choice([1000, 5000])  # many parameters, defaults referring to later ones
    params = b", ".join(b"p%d=p%d" % (i, i + 1) for i in range(n))
    return b"block wide(" + params + b", p%d=1) { relu }\nwide" % n


def mutate(b: bytes, rng: random.Random, op: str) -> bytes:
    """One mutation of spec text ``b`` (see SPEC_OPS)."""
    n = len(b)
    if op == "flip":
        out = bytearray(b)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(max(n, 1))
            if i < n:
                out[i] ^= rng.randint(1, 255)
        return bytes(out)
    if op == "truncate":
        return b[:rng.randrange(max(n, 1))]
    if op == "number":
        return _renumber(b, rng, rng.choice(HUGE))
    if op == "nesting":
        return _after_input(b, _nest(rng.randrange(len(NEST_KINDS)), rng.choice(NESTING)))
    if op == "title":
        return _retitle(b, rng.choice(TITLES))
    if op == "control":
        i = rng.randrange(n + 1)
        return b[:i] + rng.choice(CONTROL) + b[i:]
    if op == "bom":
        return rng.choice([b"\xef\xbb\xbf" + b, b"\xef\xbb\xbf\xef\xbb\xbf" + b, b.replace(b"\n", b"\n\xef\xbb\xbf", 1),
                           "\ufeff".encode("utf-16-le") + b.decode("utf-8", "replace").encode("utf-16-le")])
    if op == "newlines":
        return b.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\r", b"\x0b", "\u2028".encode(), b"\r\r\n",
                                            "\x85".encode()]))
    if op == "nul":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b) + 1)
            b = b[:i] + b"\x00" + b[i:]
        return b
    if op == "long-line":
        size = rng.choice([1000, 20000, 63000, 70000, 1_000_000])
        line = rng.choice([b"# " + b"x" * size, b"a" * size + b": relu", b"conv " + b"1" * size + b" 3x3",
                           b"relu " + b"x=1 " * (size // 4), b'network n "' + b"t" * size + b'"'])
        return _after_input(b, line)
    if op == "repeat":
        count = rng.choice(REPEATS).encode()
        return _after_input(b, rng.choice([b"repeat " + count + b" relu", b"repeat " + count + b" { relu; identity }",
                                           b"repeat 1000 { repeat 1000 { repeat 1000 { relu } } }",
                                           b"repeat " + count + b" repeat " + count + b" relu"]))
    if op == "concat":
        k = rng.choice([2, 100, 2500, 5000, 6000])
        branch = rng.choice([b"identity", b"relu", b"{ identity }"])
        return _after_input(b, b"concat { " + b"; ".join([branch] * k) + b" }")
    if op == "blocks":
        return b + b"\n" + _blocks(rng) + b"\n"
    if op == "bad-utf8":
        i = rng.randrange(n + 1)
        return b[:i] + rng.choice(BAD_UTF8) + b[i:]
    if op == "lines":
        lines = _lines(b)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        kind = rng.randrange(3)
        if kind == 0:
            lines.insert(j, lines[i])
        elif kind == 1:
            del lines[i]
        else:
            lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    raise ValueError(op)


SPEC_OPS = ("flip", "truncate", "number", "nesting", "title", "control", "bom", "newlines", "nul", "long-line",
            "repeat", "concat", "blocks", "bad-utf8", "lines")
SPEC_COMMANDS = {  # name -> (args before the spec, args after, outputs)
    "check": (["check"], [], ()),
    "params": (["params"], [], ()),
    "summary": (["summary"], [], ()),
    "fmt-check": (["fmt", "--check"], [], ()),
    "graph-dot": (["graph"], ["-o", "x.dot"], ("x.dot",)),
    "compile": (["compile"], ["-o", "out.onnx"], ("out.onnx", "out.onnx.data")),
    "weights": (["weights"], [], ()),
    "check-json": (["check", "--json"], [], ()),
    "plot": (["plot"], ["-o", "x.png"], ("x.png",)),
}
LIMIT_SPEC = (b"# a legitimate spec at the limits: 19,990 layers and a file of ~63 KB\n" + b"#" + b"x" * 62000 +
              b"\nnetwork limits\ninput 3x8x8\nrepeat 19990 relu\nflatten\ndense 10\n")


def spec_case(name: str, cmd: str, build: Build, spec: str = "x.cnn", timeout: float | None = None) -> Case:
    if cmd == "check-tty":  # on a terminal, where click does not strip escape sequences
        return Case("specs", f"{name}:{cmd}", ["check", spec], build, stdout="tty", timeout=timeout)
    before, after, outputs = SPEC_COMMANDS[cmd]
    fsize = 256 * MiB if cmd == "compile" else GiB  # a mutation may ask for GBs of weights: the disk is spared
    return Case("specs", f"{name}:{cmd}", [*before, spec, *after], build, outputs,
                outputs[:1] if cmd in ("compile", "graph-dot") else (), f"spec:{cmd}", timeout=timeout, fsize=fsize,
                refuse=name == "float32-overflow" and cmd == "compile")


def spec_cases(name: str, build: Build, compile_ok: bool, commands=None, timeout=None) -> list[Case]:
    base = ["check", "params", "summary", "fmt-check", "graph-dot"]
    commands = commands or base + (["compile"] if compile_ok else [])
    return [spec_case(name, cmd, build, timeout=timeout) for cmd in commands]


def text_file(data: bytes, name: str = "x.cnn") -> Build:
    return files(**{name.replace(".", "__"): data})


def specs_family(art: Artefacts) -> Iterator[Case]:
    lenet = spec_bytes("lenet5")
    for what, build in [
        ("dev-zero", files(x__cnn="link:/dev/zero")), ("dev-urandom", files(x__cnn="link:/dev/urandom")),
        ("fifo", files(x__cnn="fifo")), ("directory", files(x__cnn="dir")),
        ("sparse-3GB-after-a-spec", files(x__cnn=f"sparse:{3 * GiB}:{lenet.decode()}")),
        ("sparse-3GB-nul", files(x__cnn=f"sparse:{3 * GiB}")), ("symlink-loop", files(x__cnn="link:x.cnn")),
        ("dangling-symlink", files(x__cnn="link:missing.cnn")),
    ]:
        yield from spec_cases(what, build, True, ["check", "fmt-check", "compile"], timeout=BLOCKING)
    all5 = ["check", "summary", "fmt-check", "graph-dot", "compile"]
    for what, data, commands in [
        ("latin-1", _retitle(lenet, "Gr\u00f6\u00dfe \u00e9t\u00e9".encode("latin-1")), all5),
        ("utf-16", "\ufeff".encode("utf-16-le") + lenet.decode().encode("utf-16-le"), all5),
        ("empty", b"", all5), ("bom-only", b"\xef\xbb\xbf", all5),
        ("limit-64000", lenet + b"#" * (64000 - len(lenet) - 1) + b"\n", all5),
        ("limit-64001", lenet + b"#" * (64001 - len(lenet) - 1) + b"\n", all5), ("limits-legit", LIMIT_SPEC, all5),
        ("output-2e18", b"network big\ninput 1x1x1\nconv 2 1x1 pad=999999999999999999\n", [*all5, "plot"]),
        ("block-depth", b"network d\ninput 1x8x8\n" + _blocks(random.Random(0)), all5),
        ("wide-concat-2500", _after_input(lenet, b"concat { " + b"; ".join([b"identity"] * 2500) + b" }"), all5),
        ("float32-overflow", b"network f\ninput 1x4x4\nfixedconv [[1e39]]\n", all5),
    ] + [(f"title-{i}", _retitle(lenet, t), ["check", "check-tty", "summary", "graph-dot", "compile"])
         for i, t in enumerate(TITLES)] + [
        (f"number-{i}", _renumber(lenet, random.Random(i), v), ["check", "summary", "compile"])
        for i, v in enumerate(HUGE)] + [
        (f"repeat-{v}", _after_input(lenet, b"repeat " + v.encode() + b" relu"), ["check", "summary", "compile"])
        for v in REPEATS] + [
        (f"nesting-{NEST_KINDS[k]}-{n}", _after_input(lenet, _nest(k, n)), ["check", "fmt-check", "compile"])
        for n in (50, 51, 30000) for k in range(len(NEST_KINDS))]:
        yield from spec_cases(what, text_file(data), True, commands)
    rng = random.Random(f"{art.seed}/specs")
    names = shipped()
    for i in range(10 ** 9):
        source = rng.choice(names)
        ops = [rng.choice(SPEC_OPS) for _ in range(rng.choice([1, 1, 2, 3]))]
        sub = rng.randrange(2 ** 32)

        def build(work: Path, _rng: random.Random, source=source, ops=ops, sub=sub) -> None:
            r = random.Random(sub)
            data = spec_bytes(source)
            for op in ops:
                data = mutate(data, r, op)
            write(work / "x.cnn", data)

        extra = [rng.choice(["weights", "check-json", "plot"])] if rng.random() < 0.25 else []
        if {"title", "control"} & set(ops):
            extra.append("check-tty")
        base = ["check", "params", "summary", "fmt-check", "graph-dot"] + (["compile"] if source in SMALL_SPECS else [])
        yield from spec_cases(f"mut{i:04d}-{source}-{'+'.join(ops)}", build, False, base + extra)


# -- family 2: weights files ------------------------------------------------------------------


REFUSE = {"st-overlapping-offsets", "st-duplicate-keys", "st-trailing-garbage", "st-offsets-float",
          "st-offsets-strings", "st-shape-floats", "st-metadata-not-strings", "st-metadata-list",
          "npz-duplicate-members"}  # what the safetensors library and zip readers refuse; cnndsl should too


def weights_case(name: str, file: str, build: Build, spec: str = "lenet5", extra: tuple[str, ...] = (),
                 timeout: float | None = None) -> Case:
    return Case("weights", name, ["compile", str(SPECS / f"{spec}.cnn"), "--weights", file, "-o", "out.onnx", *extra],
                build, ("out.onnx",), ("out.onnx",), "weights", timeout=timeout, refuse=name in REFUSE)


def _st_edits(art: Artefacts) -> list[tuple[str, dict]]:
    """Hostile safetensors: name -> keyword arguments of safetensors()."""
    first = "features.0.weight"

    def entry(**kv):
        return lambda h: h[first].update(kv)

    def both(h, key="features.0.bias"):
        h[key]["data_offsets"] = list(h[first]["data_offsets"][:1]) + [h[first]["data_offsets"][0] + 24]

    return [
        ("dtype-list", {"edit": entry(dtype=["F32"])}), ("dtype-dict", {"edit": entry(dtype={"F32": 1})}),
        ("dtype-null", {"edit": entry(dtype=None)}), ("dtype-int", {"edit": entry(dtype=4)}),
        ("dtype-unknown", {"edit": entry(dtype="F8_E4M3")}), ("dtype-int64", {"edit": entry(dtype="I64")}),
        ("offsets-infinity", {"edit": entry(data_offsets=[0, float("inf")])}),
        ("offsets-nan", {"edit": entry(data_offsets=[float("nan"), 600])}),
        ("offsets-negative", {"edit": entry(data_offsets=[-600, 0])}),
        ("offsets-5000-digits", {"edit": entry(data_offsets=[0, 10 ** 4999])}),
        ("offsets-float", {"edit": entry(data_offsets=[0.5, 600.5])}),
        ("offsets-strings", {"edit": entry(data_offsets=["0", "600"])}),
        ("offsets-three", {"edit": entry(data_offsets=[0, 300, 600])}), ("offsets-reversed", {"edit": entry(
            data_offsets=[600, 0])}), ("offsets-2**64", {"edit": entry(data_offsets=[2 ** 64, 2 ** 64 + 600])}),
        ("offsets-missing", {"edit": lambda h: h[first].pop("data_offsets")}),
        ("shape-2**62x4", {"edit": entry(shape=[2 ** 62, 4], data_offsets=[0, 0])}),
        ("shape-2**64", {"edit": entry(shape=[2 ** 64], data_offsets=[0, 0])}),
        ("shape-2**31x2**33", {"edit": entry(shape=[2 ** 31, 2 ** 33], data_offsets=[0, 0])}),
        ("shape-negative", {"edit": entry(shape=[-6, -25], data_offsets=[0, 600])}),
        ("shape-string", {"edit": entry(shape="6,1,5,5")}), ("shape-nested", {"edit": entry(shape=[[6], 1, 5, 5])}),
        ("shape-floats", {"edit": entry(shape=[6.0, 1.0, 5.0, 5.0])}),
        ("shape-100000-dims", {"edit": entry(shape=[1] * 100000)}),
        ("deep-nesting", {"edit": entry(shape="@DEEP@"), "text": lambda t: t.replace('"@DEEP@"', "[" * 100000 + "]"
                                                                                         * 100000)}),
        ("overlapping-offsets", {"edit": both}),
        ("duplicate-keys", {"text": lambda t: t[:-1] + ', "features.0.bias": {"dtype": "F32", "shape": [6], '
                                                       '"data_offsets": [0, 24]}}'}),
        ("entry-not-object", {"edit": lambda h: h.__setitem__(first, [1, 2])}),
        ("header-list", {"text": lambda t: "[" + t + "]"}), ("header-null", {"text": lambda t: "null"}),
        ("header-nan", {"text": lambda t: "NaN"}), ("header-bad-utf8", {"text": lambda t: t[:-1] + ', "\udcff": 1}'}),
        ("header-nul", {"text": lambda t: t.replace(",", ",\x00", 1)}),
        ("metadata-not-strings", {"edit": lambda h: h.__setitem__("__metadata__", {"a": [1, {"b": None}]})}),
        ("metadata-list", {"edit": lambda h: h.__setitem__("__metadata__", [1, 2, 3])}),
        ("name-escapes", {"edit": lambda h: h.__setitem__("features.0.weight\x1b]0;owned\x07\r\nfake: ok",
                                                          h.pop(first))}),
        ("name-1MB", {"edit": lambda h: h.__setitem__("n" * MiB, h.pop(first))}),
        ("name-empty", {"edit": lambda h: h.__setitem__("", h.pop(first))}),
        ("header-size-beyond-file", {"size": 10 ** 6}), ("header-size-2**64-1", {"size": 2 ** 64 - 1}),
        ("header-size-0", {"size": 0}), ("header-size-odd", {"size": 9}),
        ("trailing-garbage", {"tail": os.urandom(0) + b"\xde\xad\xbe\xef" * 1000}),
    ]


def weights_family(art: Artefacts) -> Iterator[Case]:
    lt = lambda: art.tensors("lenet5")  # noqa: E731 - made lazily, when the first case runs
    for name, kwargs in _st_edits(art):
        make = lambda kw=kwargs: safetensors(lt(), **kw)  # noqa: E731
        yield weights_case(f"st-{name}", "w.safetensors", files(w__safetensors=make))
        if name == "name-escapes":  # on a terminal, where click does not strip escape sequences
            case = weights_case(f"st-{name}-tty", "w.safetensors", files(w__safetensors=make))
            case.stdout, case.baseline = "tty", None
            yield case

    def truncated(frac):
        return lambda: safetensors(lt())[:int(len(safetensors(lt())) * frac)]

    def huge_header(kind):
        def make():
            if kind == "padding":
                return safetensors(lt(), text=lambda t: t[:-1] + "," + " " * (60 * MiB) + '"pad": {}}')
            if kind == "metadata":
                return safetensors(lt(), edit=lambda h: h.__setitem__("__metadata__", {"x": "y" * (55 * MiB)}))
            if kind == "entries":  # 700,000 unexpected zero-size tensors
                return safetensors(lt(), edit=lambda h: h.update({f"extra.{i}": {"dtype": "F32", "shape": [0],
                                                                                 "data_offsets": [0, 0]}
                                                                  for i in range(700_000)}))
            return safetensors(lt(), text=lambda t: t[:-1] + ', "n": [' + ",".join(["1e308"] * (94 * MiB // 6)) + "]}")
        return make

    for name, make in [("truncated-data", truncated(0.7)), ("truncated-header", truncated(0.05)),
                       ("header-60MB-padding", huge_header("padding")),
                       ("header-55MB-metadata", huge_header("metadata")),
                       ("header-56MB-700k-entries", huge_header("entries")),
                       ("header-94MB-numbers", huge_header("n")),
                       ("empty", lambda: b""), ("7-bytes", lambda: b"\x08\x00\x00\x00\x00\x00\x00"),
                       ("pickle-inside", canary_pickle)]:
        yield weights_case(f"st-{name}", "w.safetensors", files(w__safetensors=make), timeout=None)
    yield weights_case("st-sparse-4GB-unexpected", "w.safetensors", lambda w, r: sparse(
        w / "w.safetensors", 4 * GiB + 4096, safetensors(lt(), edit=lambda h: h.update(
            {"huge": {"dtype": "F32", "shape": [GiB], "data_offsets": [4096, 4096 + 4 * GiB]}}))))
    yield weights_case("st-sparse-4GB-expected-name", "w.safetensors", lambda w, r: sparse(
        w / "w.safetensors", 4 * GiB + 4096, safetensors({}, edit=lambda h: h.update(
            {"features.0.weight": {"dtype": "F32", "shape": [GiB], "data_offsets": [0, 4 * GiB]}}))))
    for what in ("dev-zero", "fifo", "dir", "dangling"):
        special = {"dev-zero": "link:/dev/zero", "fifo": "fifo", "dir": "dir", "dangling": "link:nothing"}[what]
        for ext in ("safetensors", "npz", "onnx"):
            yield weights_case(f"{ext}-{what}", f"w.{ext}", files(**{f"w__{ext}": special}), timeout=BLOCKING)
    for ext in ("pt", "pth", "bin", "ckpt", "pkl"):
        yield weights_case(f"pickle-{ext}", f"w.{ext}", files(**{f"w__{ext}": canary_pickle}))
    yield from _npz_cases(art, lt)
    yield from _onnx_weight_cases(art, lt)
    rng = random.Random(f"{art.seed}/weights")
    for i in range(10 ** 9):  # random corruptions of legitimate files
        kind, sub = rng.choice(["safetensors", "npz", "onnx"]), rng.randrange(2 ** 32)
        how = rng.choice(["flip", "truncate", "header-value"] if kind == "safetensors" else ["flip", "truncate"])

        def build(work: Path, _r: random.Random, kind=kind, sub=sub, how=how) -> None:
            r = random.Random(sub)
            if how == "header-value":
                name = r.choice(list(lt()))
                key = r.choice(["dtype", "shape", "data_offsets"])
                value = r.choice([float("inf"), float("nan"), -1, 2 ** 64, [], {}, None, "x", 1.5, True, [2 ** 63],
                                  [[0]], [0, -1], "F32", [0, 2 ** 40]])
                data = safetensors(lt(), edit=lambda h: h[name].__setitem__(key, value))
            else:
                data = (safetensors(lt()) if kind == "safetensors" else
                        npz({n: npy(a) for n, a in lt().items()}) if kind == "npz" else weights_onnx(lt()))
                data = mutate(data, r, how)
            write(work / f"w.{kind}", data)

        yield weights_case(f"rand{i:04d}-{kind}-{how}", f"w.{kind}", build)


def _npz_cases(art: Artefacts, lt) -> Iterator[Case]:
    def legit(skip: str = "") -> dict[str, bytes]:
        return {f"{n}.npy": npy(a) for n, a in lt().items() if n != skip}

    w0 = "features.0.weight"
    odd = {
        "nested-npz": lambda: npz({**legit(w0), f"{w0}.npy": npz(legit())}),
        "member-without-npy-suffix": lambda: npz({**legit(w0), w0: npy(lt()[w0])}),
        "npy-renamed": lambda: npy(lt()[w0]),
        "header-not-literal": lambda: npz({**legit(w0), f"{w0}.npy": npy_header("", (), text="{'descr': __import__("
                                                                                 "'os').getcwd(), 'shape': (6,)}")}),
        "header-unbalanced": lambda: npz({**legit(w0), f"{w0}.npy": npy_header("", (), text="{'descr': '<f4', ((((")}),
        "header-2e10-elements": lambda: npz({**legit(w0), f"{w0}.npy": npy_header("<f4", (2 * 10 ** 10,)) + bytes(64)}),
        "header-2e10-unexpected": lambda: npz({**legit(), "extra.npy": npy_header("<f4", (20_000_000_000,))}),
        "header-negative-shape": lambda: npz({**legit(w0), f"{w0}.npy": npy_header("<f4", (-6, 1, 5, 5))}),
        "header-v2-4GB-length": lambda: npz({**legit(w0), f"{w0}.npy": b"\x93NUMPY\x02\x00\xff\xff\xff\xff{"}),
        "header-v3-utf8": lambda: npz({**legit(w0), f"{w0}.npy": npy_header("<f4", (6, 1, 5, 5), version=(3, 0)) +
                                       lt()[w0].tobytes()}),
        "header-v9": lambda: npz({**legit(w0), f"{w0}.npy": npy_header("<f4", (6, 1, 5, 5), version=(9, 9))}),
        "object-array-canary": lambda: npz({**legit(w0), f"{w0}.npy": canary_npy()}),
        "strings": lambda: npz({**legit(w0), f"{w0}.npy": npy(np.full((6, 1, 5, 5), "abc"))}),
        "complex": lambda: npz({**legit(w0), f"{w0}.npy": npy(lt()[w0].astype(np.complex64))}),
        "structured": lambda: npz({**legit(w0), f"{w0}.npy": npy(np.zeros((6, 1, 5, 5), "f4,i4"))}),
        "datetime": lambda: npz({**legit(w0), f"{w0}.npy": npy(np.zeros((6, 1, 5, 5), "M8[s]"))}),
        "big-endian": lambda: npz({**legit(w0), f"{w0}.npy": npy(lt()[w0].astype(">f4"))}),
        "fortran-short-data": lambda: npz({**legit(w0), f"{w0}.npy": npy_header("<f4", (6, 1, 5, 5), True) + bytes(8)}),
        "nan-and-inf": lambda: npz({n: npy(np.full_like(a, np.nan if i % 2 else np.inf)) for i, (n, a) in
                                    enumerate(lt().items())}),
        "zero-d": lambda: npz({**legit(w0), f"{w0}.npy": npy(np.float32(1))}),
        "truncated": lambda: npz(legit())[:3000], "empty-zip": lambda: zip_bytes([]), "empty-file": lambda: b"",
        "random-bytes": lambda: random.Random(1).randbytes(5000), "pickle": canary_pickle,
        "encrypted-flag": lambda: zip_bytes([stored(f"{n}", d, flags=1) for n, d in legit().items()]),
        "method-99": lambda: zip_bytes([stored(f"{n}", d, method=99) for n, d in legit().items()]),
        "bzip2-bomb-method": lambda: zip_bytes([stored(f"{n}", d, method=12) for n, d in legit().items()]),
        "bad-crc": lambda: zip_bytes([Member(n, d, 1234, len(d)) for n, d in legit().items()]),
        "lying-sizes-2**40": lambda: zip_bytes([deflated_zeros(f"{w0}.npy", npy_header("<f4", (6, 1, 5, 5)), 16 * MiB,
                                                               declared=2 ** 40)]),
        "60k-members": lambda: zip_bytes([stored(f"m{i}.npy", b"") for i in range(60_000)]),
        "member-names-escapes": lambda: npz({**legit(), "../../\x1b]0;owned\x07\r\nfake: ok.npy": npy(np.ones(3))}),
        "duplicate-members": lambda: zip_bytes([stored(n, d) for n, d in legit().items()] +
                                               [stored(f"{w0}.npy", npy(np.ones(3, np.float32)))]),
    }
    for name, make in odd.items():
        yield weights_case(f"npz-{name}", "w.npz", files(w__npz=make))
    for name, others in [(w0, False), ("unexpected", True), ("unexpected-first", True)]:
        def build(work: Path, _r, name=name, others=others) -> None:  # the bomb alone, or beside the legitimate
            bomb = art.bomb(f"{name}.npy", 2)
            members = [stored(n, d) for n, d in legit().items()] if others else []
            write(work / "w.npz", zip_bytes([bomb, *members] if name.endswith("first") else [*members, bomb]))
        yield weights_case(f"npz-zip-bomb-2GiB-{name}", "w.npz", build)


def _onnx_weight_cases(art: Artefacts, lt) -> Iterator[Case]:
    from onnx import TensorProto

    def with_external(location: str, dims=(6, 1, 5, 5), length=None, offset=0):
        rest = {n: a for n, a in lt().items() if n != "features.0.weight"}
        return weights_onnx(rest, [external("features.0.weight", list(dims), location, offset, length)])

    ext = {
        "external-absolute": (lambda: with_external("/etc/passwd"), None),
        "external-dotdot": (lambda: with_external("../../../../../../etc/passwd"), None),
        "external-symlink": (lambda: with_external("w.data"), "link:/etc/passwd"),
        "external-dev-zero": (lambda: with_external("/dev/zero", (GiB,), 4 * GiB), None),
        "external-dev-zero-link": (lambda: with_external("w.data", (GiB,), 4 * GiB), "link:/dev/zero"),
        "external-proc": (lambda: with_external("/proc/self/environ"), None),
        "external-sparse-6GiB": (lambda: with_external("w.data", (6 * GiB // 4,), 6 * GiB), f"sparse:{6 * GiB}"),
        "external-offset-beyond": (lambda: with_external("w.data", offset=10 ** 12), "sparse:600"),
        "external-negative-length": (lambda: with_external("w.data", length=-600), "sparse:600"),
        "external-self": (lambda: with_external("w.onnx"), None),
        "external-directory": (lambda: with_external("."), None),
        "external-empty-location": (lambda: with_external(""), None),
        "external-fifo": (lambda: with_external("w.data"), "fifo"),
    }
    for name, (make, data) in ext.items():
        build = files(w__onnx=make, **({"w__data": data} if data else {}))
        yield weights_case(f"onnx-{name}", "w.onnx", build, timeout=20)

    def odd_init(**kw):
        def make():
            t = tensor_proto("features.0.weight", kw.get("dims", [6, 1, 5, 5]), kw.get("data_type", TensorProto.FLOAT),
                             kw.get("raw", b"\0" * 600))
            rest = {n: a for n, a in lt().items() if n != "features.0.weight"}
            return weights_onnx(rest, [t])
        return make

    odd = {
        "dims-2**62x4": odd_init(dims=[2 ** 62, 4], raw=b""), "dims-negative": odd_init(dims=[-6, 1, 5, 5]),
        "dims-100000": odd_init(dims=[1] * 100000, raw=b"\0" * 4),
        "dtype-string": odd_init(data_type=TensorProto.STRING, raw=b""),
        "dtype-undefined": odd_init(data_type=0), "dtype-complex": odd_init(data_type=TensorProto.COMPLEX64),
        "dtype-bfloat16": odd_init(data_type=TensorProto.BFLOAT16, raw=b"\0" * 300),
        "dtype-float8": odd_init(data_type=TensorProto.FLOAT8E4M3FN, raw=b"\0" * 150),
        "raw-short": odd_init(raw=b"\0" * 7),
        "deep-subgraphs": lambda: deep_onnx(5000),
        "empty": lambda: b"", "random": lambda: random.Random(2).randbytes(4000),
        "huge-length-field": lambda: pb(7, b"")[:1] + varint(2 ** 62) + b"\0" * 16,
        "name-escapes": lambda: weights_onnx({"\x1b]0;owned\x07\r\nfake: ok": np.ones(3, np.float32)}),
    }
    for name, make in odd.items():
        yield weights_case(f"onnx-{name}", "w.onnx", files(w__onnx=make))
    for frac in (0.01, 0.5, 0.99):
        yield weights_case(f"onnx-truncated-{frac}", "w.onnx", files(
            w__onnx=lambda f=frac: (lambda d: d[:int(len(d) * f)])(weights_onnx(lt()))))


# -- family 3: inputs for run and for calibration ---------------------------------------------

INPUT_COMMANDS = {
    "run-spec": (["run", LENET, "--input"], (), "run-spec"),
    "run-onnx": (["run", "lenet5.onnx", "--input"], (), "run-onnx"),
    "calibrate": (["compile", LENET, "--quantize", "int8", "-o", "q.onnx", "--calibration"], ("q.onnx",), "int8"),
}


def input_cases(art: Artefacts, name: str, file: str, build: Build, timeout=None) -> list[Case]:
    out = []
    for cmd, (args, outputs, baseline) in INPUT_COMMANDS.items():
        step = chain(build, (lambda w, r: copy(art.model("lenet5"), w / "lenet5.onnx")) if cmd == "run-onnx" else None)
        out.append(Case("inputs", f"{name}:{cmd}", [*args, file], step, outputs, outputs,
                        baseline, timeout=timeout))
    return out


def _inputs() -> dict[str, tuple[str, Callable[[], bytes] | str]]:
    f4 = np.float32
    sample = np.random.default_rng(0).random((1, 1, 32, 32), dtype=f4)
    arrays = {
        "valid": sample, "valid-batch-8": np.repeat(sample, 8, axis=0), "shape-1x28x28": sample[0, :, :28, :28],
        "shape-3x32x32": np.repeat(sample[0], 3, axis=0), "shape-32x32": sample[0, 0], "scalar": f4(1),
        "shape-1024": sample.ravel(), "shape-5d": sample[None], "empty-batch": sample[:0],
        "zero-width": sample[..., :0], "nan": np.full_like(sample, np.nan), "inf": np.full_like(sample, np.inf),
        "one-nan": np.where(np.arange(1024).reshape(sample.shape) == 5, np.nan, sample).astype(f4),
        "huge-values": np.full_like(sample, 3e38), "float16": sample.astype(np.float16),
        "float64": sample.astype(np.float64), "int64-huge": np.full(sample.shape, 2 ** 62, np.int64),
        "uint8": (sample * 255).astype(np.uint8), "bool": sample > 0.5, "complex": sample.astype(np.complex64),
        "strings": np.full(sample.shape, "abc"), "structured": np.zeros(sample.shape, "f4,i4"),
        "datetime": np.zeros(sample.shape, "M8[s]"), "big-endian": sample.astype(">f4"),
        "fortran": np.asfortranarray(np.repeat(sample, 3, axis=0)),
    }
    out: dict[str, tuple[str, Callable[[], bytes] | str]] = {
        f"npy-{k}": ("x.npy", lambda a=a: npy(a)) for k, a in arrays.items()}
    out.update({
        "npy-zero-bytes": ("x.npy", lambda: b""), "npy-object-canary": ("x.npy", canary_npy),
        "npy-header-2e10": ("x.npy", lambda: npy_header("<f4", (20_000_000_000, 1, 32, 32)) + bytes(4096)),
        "npy-header-not-literal": ("x.npy", lambda: npy_header("", (), text="{'descr': os.system('touch PWNED')}")),
        "npy-truncated": ("x.npy", lambda: npy(sample)[:300]), "npy-v3": ("x.npy", lambda: npy_header(
            "<f4", (1, 1, 32, 32), version=(3, 0)) + sample.tobytes()),
        "npy-pickle": ("x.npy", canary_pickle), "npz-empty": ("x.npz", lambda: zip_bytes([])),
        "npz-object-first": ("x.npz", lambda: npz({"a.npy": canary_npy(), "b.npy": npy(sample)})),
        "npz-nested": ("x.npz", lambda: npz({"a.npy": npz({"b.npy": npy(sample)})})),
        "npz-header-2e10": ("x.npz", lambda: npz({"a.npy": npy_header("<f4", (20_000_000_000,)) + bytes(64)})),
        "npz-bomb-member": ("x.npz", lambda: zip_bytes([deflated_zeros("a.npy", npy_header("<f4", (GiB // 2,)),
                                                                       2 * GiB)])),
        "txt-empty": ("x.txt", lambda: b""), "txt-garbage": ("x.txt", lambda: b"hello world\x00\xff\x1b[2J"),
        "txt-1e400": ("x.txt", lambda: b"1e400 " * 1024), "txt-nan": ("x.txt", lambda: b"nan " * 1024),
        "txt-1023-numbers": ("x.txt", lambda: b"0.5 " * 1023), "txt-not-utf8": ("x.txt", lambda: b"\xff\xfe" * 1024),
        "txt-valid": ("x.txt", lambda: b"0.5\n" * 1024), "csv-hex": ("x.csv", lambda: b"0x10," * 1024),
        "txt-huge-ints": ("x.txt", lambda: (b"9" * 400 + b" ") * 1024), "unknown-ext": ("x.bin", lambda: npy(sample)),
        "png-as-input": ("x.png", lambda: b"\x89PNG\r\n\x1a\n" + bytes(64)),
        "fifo": ("x.npy", "fifo"), "directory": ("x.npy", "dir"), "dev-zero-npy": ("x.npy", "link:/dev/zero"),
        "dev-zero-txt": ("x.txt", "link:/dev/zero"), "dev-urandom-txt": ("x.txt", "link:/dev/urandom"),
        "sparse-3GB-txt": ("x.txt", f"sparse:{3 * GiB}:0.5 "),
    })
    return out


def inputs_family(art: Artefacts) -> Iterator[Case]:
    for name, (file, make) in _inputs().items():
        special = isinstance(make, str)
        yield from input_cases(art, name, file, files(**{file.replace(".", "__"): make}), BLOCKING if special else None)
    rng = random.Random(f"{art.seed}/inputs")
    shapes = [(1, 1, 32, 32), (4, 1, 32, 32), (1, 32, 32), (1, 1, 32, 31), (0, 1, 32, 32), (1,), (), (2, 1, 1, 32, 32),
              (1, 2, 32, 32), (1024,), (1, 1024)]
    dtypes = ["<f4", "<f2", "<f8", "<i1", "<u2", "<i8", "|b1", ">f4", "<c8"]
    values = [0.0, np.nan, np.inf, -np.inf, 1e38, 1e-45, -0.0, 2 ** 31]
    for i in range(10 ** 9):
        shape, dtype, value = rng.choice(shapes), rng.choice(dtypes), rng.choice(values)
        fmt = rng.choice(["npy", "npy", "npz", "txt"])
        cmd = rng.choice(list(INPUT_COMMANDS))

        def build(work: Path, _r, shape=shape, dtype=dtype, value=value, fmt=fmt) -> None:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = np.full(shape, value).astype(dtype)
            if fmt == "npy":
                write(work / "x.npy", npy(a))
            elif fmt == "npz":
                write(work / "x.npz", npz({"x.npy": npy(a)}))
            else:
                write(work / "x.txt", " ".join(map(str, a.ravel().tolist())).encode())

        step = chain(build, (lambda w, r: copy(art.model("lenet5"), w / "lenet5.onnx")) if cmd == "run-onnx" else None)
        args, outputs, baseline = INPUT_COMMANDS[cmd]
        shown = "x".join(map(str, shape)) or "scalar"
        yield Case("inputs", f"rand{i:04d}-{fmt}-{dtype}-{shown}-{value}:{cmd}", [*args, f"x.{fmt}"], step, outputs,
                   outputs, baseline)


# -- family 4: ONNX models for run and bench --------------------------------------------------


def unary(op: str, shape, elem: int = 1) -> bytes:
    """A model of one node ``op``: input x and output y of ``shape``."""
    from onnx import helper

    return onnx_model([helper.make_node(op, ["x"], ["y"])], [vi("x", shape, elem)], [vi("y", shape, elem)])


def _models() -> dict[str, Callable[[], bytes]]:
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT

    def loop():
        body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"]),
                                  helper.make_node("Identity", ["v"], ["v_out"])], "body",
                                 [vi("i", [], TensorProto.INT64), vi("c", [], TensorProto.BOOL), vi("v", ["N", 1])],
                                 [vi("c_out", [], TensorProto.BOOL), vi("v_out", ["N", 1])])
        inits = [numpy_helper.from_array(np.array(10 ** 15, np.int64), "trips"),
                 numpy_helper.from_array(np.array(True), "cond")]
        return onnx_model([helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)],
                          [vi("x", ["N", 1])], [vi("y", ["N", 1])], inits)

    def big(op):
        shape = numpy_helper.from_array(np.array([GiB], np.int64), "shape")
        if op == "ConstantOfShape":
            one = helper.make_tensor("v", f, [1], [1.0])
            nodes = [helper.make_node("ConstantOfShape", ["shape"], ["y"], value=one)]
            inits = [shape]
        else:
            nodes = [helper.make_node("Tile", ["x", "reps"], ["y"])]
            inits = [numpy_helper.from_array(np.array([GiB // 4, 1], np.int64), "reps")]
        return onnx_model(nodes + [helper.make_node("Identity", ["x"], ["x_out"])], [vi("x", ["N", 4])],
                          [vi("y", None), vi("x_out", ["N", 4])], inits)

    return {
        "no-inputs": lambda: onnx_model([helper.make_node("Constant", [], ["y"], value=helper.make_tensor(
            "c", f, [1, 3], [1, 2, 3]))], [], [vi("y", [1, 3])]),
        "scalar-input": lambda: unary("Relu", []),
        "no-rank-input": lambda: unary("Relu", None),
        "symbolic-dims": lambda: unary("Relu", ["N", "C", "H", "W"]),
        "fixed-1x3x100000x100000": lambda: unary("Relu", [1, 3, 100000, 100000]),
        "dim-2**62": lambda: unary("Relu", ["N", 2 ** 62]),
        "dim-zero": lambda: unary("Relu", ["N", 0, 32]),
        "dim-negative": lambda: unary("Relu", ["N", -5]),
        "int64-input": lambda: unary("Neg", ["N", 4], TensorProto.INT64),
        "string-input": lambda: unary("Identity", ["N", 4], TensorProto.STRING),
        "bool-input": lambda: unary("Not", ["N", 4], TensorProto.BOOL),
        "float16-input": lambda: unary("Relu", ["N", 4], TensorProto.FLOAT16),
        "two-inputs": lambda: onnx_model([helper.make_node("Add", ["x", "z"], ["y"])],
                                         [vi("x", ["N", 4]), vi("z", ["N", 4])], [vi("y", ["N", 4])]),
        "sequence-output": lambda: onnx_model([helper.make_node("SequenceConstruct", ["x"], ["y"])],
                                              [vi("x", ["N", 4])],
                                              [helper.make_tensor_sequence_value_info("y", f, ["N", 4])]),
        "loop-10**15": loop,
        "constantofshape-4GiB": lambda: big("ConstantOfShape"), "tile-4GiB": lambda: big("Tile"),
        "custom-domain": lambda: onnx_model([helper.make_node("Evil", ["x"], ["y"], domain="evil.ops")],
                                            [vi("x", ["N", 4])], [vi("y", ["N", 4])], domain="evil.ops", opset=1),
        "opset-10000": lambda: onnx_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 4])],
                                          [vi("y", ["N", 4])], opset=10000),
        "ir-version-99": lambda: onnx_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 4])],
                                            [vi("y", ["N", 4])], ir=99),
        "external-absolute": lambda: onnx_model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 4])],
                                                [vi("y", ["N", 4])], [external("w", [4], "/etc/passwd")]),
        "external-dotdot": lambda: onnx_model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 4])],
                                              [vi("y", ["N", 4])], [external("w", [4], "../../../etc/passwd")]),
        "external-dev-zero": lambda: onnx_model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", GiB])],
                                                [vi("y", ["N", GiB])], [external("w", [GiB], "/dev/zero", 0, 4 * GiB)]),
        "deep-subgraphs": lambda: deep_onnx(5000), "empty": lambda: b"",
        "random-bytes": lambda: random.Random(3).randbytes(5000),
        "huge-output": lambda: onnx_model([helper.make_node("Tile", ["x", "reps"], ["y"])], [vi("x", ["N", 1])],
                                          [vi("y", ["N", 10 ** 7])],
                                          [numpy_helper.from_array(np.array([1, 10 ** 7], np.int64), "reps")]),
    }


def model_cases(art: Artefacts, name: str, build: Build, extra=(), timeout=None, model="m.onnx") -> list[Case]:
    return [Case("models", f"{name}:run", ["run", model, *extra], build, (), (), "run-onnx", timeout=timeout),
            Case("models", f"{name}:bench", ["bench", model, "--runs", "2", *extra], build, (), (), "bench-onnx",
                 timeout=timeout),
            Case("models", f"{name}:import", ["import", model, "-o", "i.cnn", "--weights-out", "i.safetensors"],
                 build, ("i.cnn", "i.safetensors"), (), "import-onnx", timeout=timeout)]


def models_family(art: Artefacts) -> Iterator[Case]:
    lenet = lambda w, r: copy(art.model("lenet5"), w / "lenet5.onnx")  # noqa: E731
    made = _models()
    for name, make in made.items():
        yield from model_cases(art, name, files(m__onnx=make), timeout=30 if name == "loop-10**15" else None)
    yield Case("models", "loop-10**15:run+SIGINT", ["run", "m.onnx"], files(m__onnx=made["loop-10**15"]),
               baseline="run-onnx", signals=((2.0, signal.SIGINT, True),), grace=5.0, codes=SIGNAL_CODES)
    for name, special in [("fifo", "fifo"), ("directory", "dir"), ("dev-zero", "link:/dev/zero")]:
        yield from model_cases(art, name, files(m__onnx=special), timeout=BLOCKING)
    for frac in (0.01, 0.5, 0.99):
        yield from model_cases(art, f"truncated-{frac}", lambda w, r, f=frac: write(
            w / "m.onnx", (lambda d: d[:int(len(d) * f)])(art.model("lenet5").read_bytes())))
    for args in (["--batch", "1000000000"], ["--batch", "5000000"], ["--top", "1000000000"],
                 ["--seed", "99999999999999999999999"]):
        what = "=".join(a.lstrip("-") for a in args)
        yield from model_cases(art, f"lenet5.onnx-{what}", lenet, args, model="lenet5.onnx")
        if args[0] == "--batch":
            yield Case("models", f"lenet5.cnn-{what}:run", ["run", LENET, *args], None, (), (), "run-spec")
    rng = random.Random(f"{art.seed}/models")
    for i in range(10 ** 9):
        how, sub = rng.choice(["flip", "truncate", "field"]), rng.randrange(2 ** 32)

        def build(work: Path, _r, how=how, sub=sub) -> None:
            r = random.Random(sub)
            data = art.model("lenet5").read_bytes()
            if how != "field":
                write(work / "m.onnx", mutate(data, r, how))
                return
            import onnx

            m = onnx.load_from_string(data)
            target = r.choice(["dim", "elem", "op", "drop-input", "opset"])
            dims = m.graph.input[0].type.tensor_type.shape.dim
            if target == "dim":
                r.choice(list(dims)).dim_value = r.choice([0, 2 ** 62, 2 ** 31, 100000, 1])
            elif target == "elem":
                m.graph.input[0].type.tensor_type.elem_type = r.randrange(0, 24)
            elif target == "op":
                r.choice(list(m.graph.node)).op_type = r.choice(["Loop", "Evil", "", "Relu", "Conv"])
            elif target == "drop-input":
                del m.graph.input[:]
            else:
                m.opset_import[0].version = r.choice([1, 7, 99, 2 ** 40])
            write(work / "m.onnx", m.SerializeToString())

        yield from model_cases(art, f"rand{i:04d}-{how}", build)


# -- family 5: environments -------------------------------------------------------------------

BAD_SPEC = b"network bad\ninput 1x8x8\nconv 4 9x9\n"


def env_family(art: Artefacts) -> Iterator[Case]:
    spec = files(x__cnn=spec_bytes("lenet5"))
    q = ("q.onnx",)
    tmp_commands = [("int8", ["compile", "x.cnn", "--quantize", "int8", "-o", "q.onnx"], q, "int8"),
                    ("run-spec", ["run", "x.cnn"], (), "run-spec"), ("graph-svg", ["graph", "x.cnn", "-o", "x.svg"],
                                                                       ("x.svg",), "spec:graph-dot"),
                    ("plot", ["plot", "x.cnn", "-o", "x.png"], ("x.png",), "spec:plot"),
                    ("compile", ["compile", "x.cnn", "-o", "out.onnx"], ("out.onnx",), "spec:compile")]
    tmps = [("missing", "{root}/missing", None), ("file", "{root}/tmpfile", "file"),
            ("immutable", "{root}/ro-tmp", "locked")]
    for tname, value, kind in tmps:
        for cname, args, outputs, baseline in tmp_commands:
            def build(work, r, kind=kind):
                spec(work, r)
                if kind == "file":
                    write(work.parent / "tmpfile", b"x")
                elif kind == "locked":
                    (work.parent / "ro-tmp").mkdir()
            yield Case("env", f"TMPDIR-{tname}:{cname}", args, build, outputs, outputs, baseline,
                       env={"TMPDIR": value}, locked=("ro-tmp",) if kind == "locked" else ())
    for cname, args, outputs, baseline in tmp_commands:
        yield Case("env", f"HOME-unset:{cname}", args, spec, outputs, outputs, baseline,
                   env={"HOME": None, "MPLCONFIGDIR": None, "XDG_CACHE_HOME": None, "XDG_CONFIG_HOME": None})
    bad = files(x__cnn=BAD_SPEC)
    for var, value in [("NO_COLOR", "1"), ("TERM", "dumb")]:
        for cname, args in [("check", ["check", "x.cnn"]), ("compile", ["compile", "x.cnn"]),
                            ("weights", ["compile", LENET, "--weights", "w.npz"])]:
            yield Case("env", f"{var}={value}-tty:{cname}", args, chain(bad, files(w__npz=b"junk")), env={var: value},
                       stdout="tty", baseline=None)
    ro = lambda w, r: (w / "ro").mkdir()  # noqa: E731
    for cname, args in [("compile", ["compile", "x.cnn", "-o", "ro/out.onnx"]),
                        ("graph", ["graph", "x.cnn", "-o", "ro/x.dot"]), ("plot", ["plot", "x.cnn", "-o", "ro/x.png"]),
                        ("export", ["export", "--triton", "ro/repo", "x.cnn"]),
                        ("save-maps", ["run", str(SPECS / "filters.cnn"), "--save-maps", "ro/maps"]),
                        ("int8", ["compile", "x.cnn", "--quantize", "int8", "-o", "ro/q.onnx"]),
                        ("fmt-in-place", ["fmt", "ro/x.cnn"])]:
        def build(work, r, fmt=cname == "fmt-in-place"):
            ro(work, r)
            spec(work / "ro" if fmt else work, r)
            if fmt:
                write(work / "ro" / "x.cnn", b"network   messy\ninput 1x8x8\nconv  4 3x3\n")
        yield Case("env", f"read-only-folder:{cname}", args, build, ("ro/x.cnn",) if cname == "fmt-in-place" else (),
                   locked=("work/ro",))
    yield Case("env", "read-only-cwd:compile-default-output", ["compile", "x.cnn"], spec, locked=("work",))
    for cname, args, text in [("summary", ["summary", "x.cnn"], False), ("check", ["check", "x.cnn"], False),
                              ("params-json", ["params", "--json", "x.cnn"], False),
                              ("fmt-stdout", ["fmt", "--stdout", "x.cnn"], True),
                              ("graph-stdout", ["graph", "x.cnn", "-o", "-"], False), ("weights", ["weights", "x.cnn"],
                                                                                       False),
                              ("compile", ["compile", "x.cnn", "-o", "out.onnx"], False),
                              ("run", ["run", "x.cnn"], False), ("bench", ["bench", "x.cnn", "--runs", "2"], False)]:
        outputs = ("out.onnx",) if cname == "compile" else ()
        yield Case("env", f"stdout-dev-full:{cname}", args, spec, outputs, stdout="full", text_stdout=text)
    big = files(x__cnn=spec_bytes("resnet152"))
    for cname, args in [("summary", ["summary", "x.cnn"]), ("graph-stdout", ["graph", "x.cnn", "-o", "-"]),
                        ("fmt-stdout", ["fmt", "--stdout", "x.cnn"]), ("weights", ["weights", "x.cnn"]),
                        ("check-all", ["check", *map(str, sorted(SPECS.glob("*.cnn")))])]:
        yield Case("env", f"stdout-closed-pipe:{cname}", args, big, stdout="pipe", codes=PIPE_CODES, text_stdout=True)
        yield Case("env", f"stdout-closed-fd:{cname}", args, big, stdout="closed", text_stdout=True)
    for cname, args in [("compile", ["compile", "x.cnn", "-o", "x.cnn"]),
                        ("compile-symlink", ["compile", "x.cnn", "-o", "link.cnn"]),
                        ("compile-hardlink", ["compile", "x.cnn", "-o", "hard.cnn"]),
                        ("compile-over-weights", ["compile", "x.cnn", "--weights", "w.npz", "-o", "w.npz"]),
                        ("int8-over-calibration", ["compile", "x.cnn", "--quantize", "int8", "--calibration", "c.npy",
                                                   "-o", "c.npy"]),
                        ("graph", ["graph", "x.cnn", "-o", "x.cnn"]), ("plot", ["plot", "x.cnn", "-o", "x.cnn"]),
                        ("compile-dot-slash", ["compile", "x.cnn", "-o", "./sub/../x.cnn"])]:
        def build(work, r):
            spec(work, r)
            (work / "link.cnn").symlink_to("x.cnn")
            os.link(work / "x.cnn", work / "hard.cnn")
            (work / "sub").mkdir()
            write(work / "w.npz", npz({f"{n}.npy": npy(a) for n, a in art.tensors("lenet5").items()}))
            write(work / "c.npy", npy(np.zeros((4, 1, 32, 32), np.float32)))
        yield Case("env", f"output-is-input:{cname}", args, build)
    odd_outputs = [("missing-folder", ["compile", "x.cnn", "-o", "missing/out.onnx"]),
                   ("output-is-folder", ["compile", "x.cnn", "-o", "adir"]),
                   ("output-is-fifo", ["compile", "x.cnn", "-o", "f.onnx"]),
                   ("output-devnull-link", ["compile", "x.cnn", "-o", "null.onnx"]),
                   ("output-char-device", ["compile", "x.cnn", "-o", "null.dev"]),  # -o /dev/null, as root
                   ("output-name-too-long", ["compile", "x.cnn", "-o", "n" * 300 + ".onnx"]),
                   ("output-empty-name", ["compile", "x.cnn", "-o", ""]),
                   ("graph-into-folder", ["graph", "x.cnn", "-o", "adir"]),
                   ("export-over-file", ["export", "--triton", "afile", "x.cnn"])]
    for cname, args in odd_outputs:
        def build(work, r):
            spec(work, r)
            (work / "adir").mkdir()
            os.mkfifo(work / "f.onnx")
            (work / "null.onnx").symlink_to("/dev/null")
            try:  # a twin of /dev/null in the work folder (character device 1,3), where root may make one
                os.mknod(work / "null.dev", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            except OSError:
                (work / "null.dev").symlink_to("/dev/null")
            write(work / "afile", b"keep me")
        yield Case("env", f"odd-output:{cname}", args, build, timeout=20)
    for var, value in [("CNNDSL_MAX_SPEC_BYTES", "abc"), ("CNNDSL_MAX_SPEC_BYTES", "-1"),
                       ("CNNDSL_MAX_SPEC_BYTES", "99999999999999999999999999"), ("CNNDSL_MAX_SPEC_BYTES", "1e3"),
                       ("CNNDSL_MAX_SPEC_BYTES", ""), ("CNNDSL_MAX_LAYERS", "-5"), ("CNNDSL_MAX_INPUT", "0"),
                       ("CNNDSL_MAX_BLOCK_DEPTH", "\x1b[2J"), ("CNNDSL_MAX_OPERATORS", "1_000")]:
        yield Case("env", f"{var}={value!r}:check", ["check", "x.cnn"], spec, env={var: value})
    deep = files(x__cnn=b"network deep\ninput 1x8x8\nconv " + b"(" * 20000 + b"4" + b")" * 20000 + b" 1x1\n")
    for cmd in ("check", "fmt-check"):
        before, after, _ = SPEC_COMMANDS[cmd]
        yield Case("env", f"CNNDSL_MAX_NESTING=1000000-deep-spec:{cmd}", [*before, "x.cnn", *after], deep,
                   env={"CNNDSL_MAX_NESTING": "1000000", "CNNDSL_MAX_SPEC_BYTES": "10000000"})
    yield Case("env", "CNNDSL_MAX_INPUT-raised:run", ["run", "x.cnn", "--batch", "64"], files(
        x__cnn=b"network big\ninput 3x60000x60000\nrelu\n"), env={"CNNDSL_MAX_INPUT": str(10 ** 12)},
        baseline="run-spec")
    ascii_title = files(x__cnn=_retitle(spec_bytes("lenet5"), "G\u00f6\u00dfe \u2192 \u6f22".encode()))
    for cname, args in [("summary", ["summary", "x.cnn"]), ("check-error", ["check", "x.cnn"])]:
        yield Case("env", f"PYTHONIOENCODING=ascii:{cname}", args,
                   chain(ascii_title, (lambda w, r: write(w / "x.cnn", (w / "x.cnn").read_bytes() + b"conv 4 99x99\n"))
                         if "error" in cname else None), env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C"})
    yield Case("env", "ulimit-f-100KB:compile", ["compile", "x.cnn", "-o", "out.onnx"], spec, ("out.onnx",),
               fsize=100 * 1024)
    yield Case("env", "ulimit-f-100KB:export", ["export", "--triton", "repo", "x.cnn"], spec, ("repo/**",),
               fsize=100 * 1024)
    rng = random.Random(f"{art.seed}/env")
    made = list(_env_randoms())
    for i in range(10 ** 9):  # random combinations of the odd environments above with the commands
        env_name, env, stdout = rng.choice(made)
        cname, args, outputs, baseline = rng.choice(tmp_commands + [
            ("summary", ["summary", "x.cnn"], (), "spec:summary"), ("check", ["check", "x.cnn"], (), "spec:check"),
            ("fmt-stdout", ["fmt", "--stdout", "x.cnn"], (), None)])
        yield Case("env", f"rand{i:04d}-{env_name}:{cname}", args, spec, outputs, (), baseline, env=env,
                   stdout=stdout, codes=PIPE_CODES if stdout == "pipe" else OK_CODES, text_stdout=cname == "fmt-stdout")


def _env_randoms():
    yield "TMPDIR-missing", {"TMPDIR": "{root}/missing"}, "file"
    yield "HOME-unset", {"HOME": None, "MPLCONFIGDIR": None}, "file"
    yield "NO_COLOR-tty", {"NO_COLOR": "1"}, "tty"
    yield "TERM-dumb-tty", {"TERM": "dumb"}, "tty"
    yield "stdout-full", {}, "full"
    yield "stdout-pipe", {}, "pipe"
    yield "stdout-closed", {}, "closed"
    yield "LC_ALL-C", {"LC_ALL": "C", "LANG": "C"}, "file"


# -- family 6: signals ------------------------------------------------------------------------

SIGNALS = [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGHUP, True)]


def signals_family(art: Artefacts) -> Iterator[Case]:
    rng = random.Random(f"{art.seed}/signals")
    vgg = ["compile", str(SPECS / "vgg16.cnn"), "-o", "out.onnx"]
    for i in range(10 ** 9):
        sig, group = SIGNALS[i % 3] if i < 9 else rng.choice(SIGNALS)
        when = round(rng.uniform(0.3, 4.5), 2)
        what = rng.choice(["vgg16", "vgg16", "vgg16", "export", "int8", "double", "kill-then-rerun"]) if i >= 9 else \
            "vgg16"
        name = f"{i:04d}-{signal.Signals(sig).name}@{when}s"
        if what == "vgg16":
            yield Case("signals", f"{name}:compile-vgg16", vgg, None, ("out.onnx",), ("out.onnx",), "compile-vgg16",
                       signals=((when, sig, group),), codes=SIGNAL_CODES, complete="compile-vgg16")
        elif what == "double":
            yield Case("signals", f"{name}-twice:compile-vgg16", vgg, None, ("out.onnx",), ("out.onnx",),
                       "compile-vgg16", signals=((when, sig, group), (when + 0.2, sig, group)), codes=SIGNAL_CODES,
                       complete="compile-vgg16")
        elif what == "export":
            yield Case("signals", f"{name}:export-vgg16", ["export", "--triton", "repo", str(SPECS / "vgg16.cnn")],
                       None, ("repo/**",), (), "compile-vgg16", signals=((when, sig, group),), codes=SIGNAL_CODES)
        elif what == "int8":
            args = ["compile", str(SPECS / "resnet18.cnn"), "--quantize", "int8", "-o", "q.onnx",
                    "--calibration-samples", "4"]
            yield Case("signals", f"{name}:int8-resnet18", args, None, ("q.onnx",), ("q.onnx",), None,
                       signals=((when / 2, sig, group),), codes=SIGNAL_CODES)
        else:  # a compile killed outright leaves its staging folder: the next run into the folder should sweep it
            yield Case("signals", f"{i:04d}-SIGKILL@{when}s-then-rerun:compile", ["compile", LENET, "-o", "out.onnx"],
                       None, ("out.onnx",), ("out.onnx",), "spec:compile", pre=((vgg, when),))


GENERATORS: dict[str, Callable[[Artefacts], Iterator[Case]]] = {
    "specs": specs_family, "weights": weights_family, "inputs": inputs_family, "models": models_family,
    "env": env_family, "signals": signals_family}


def baselines(art: Artefacts) -> dict[str, list[Case]]:
    """The legitimate runs per command family: a hostile case may use at most 2x their peak memory."""
    lim = files(x__cnn=LIMIT_SPEC)
    big = files(x__cnn=spec_bytes("resnet152"))
    lenet = lambda w, r: copy(art.model("lenet5"), w / "lenet5.onnx")  # noqa: E731
    valid_input = files(x__npy=lambda: npy(np.random.default_rng(0).random((1, 1, 32, 32), dtype=np.float32)))
    out: dict[str, list[Case]] = {}
    for cmd, (before, after, outputs) in SPEC_COMMANDS.items():  # fmt --check: 1 says "would reformat"
        out[f"spec:{cmd}"] = [Case("baseline", f"{cmd}-{n}", [*before, "x.cnn", *after], b, outputs, outputs[:1],
                                   codes=frozenset({0, 1} if cmd == "fmt-check" else {0})) for n, b in
                              (("limits", lim), ("resnet152", big))]
    out["spec:compile"] = [Case("baseline", f"compile-{n}", ["compile", "x.cnn", "-o", "out.onnx"], b, ("out.onnx",))
                           for n, b in (("limits", lim), ("resnet18", files(x__cnn=spec_bytes("resnet18"))))]
    lt = lambda: art.tensors("lenet5")  # noqa: E731
    out["weights"] = [
        weights_case("lenet5-safetensors", "w.safetensors", files(w__safetensors=lambda: safetensors(lt()))),
        weights_case("lenet5-npz", "w.npz", files(w__npz=lambda: npz({f"{n}.npy": npy(a) for n, a in lt().items()}))),
        weights_case("lenet5-onnx", "w.onnx", files(w__onnx=lambda: weights_onnx(lt()))),
        weights_case("resnet18-safetensors", "w.safetensors",
                     files(w__safetensors=lambda: safetensors(art.tensors("resnet18"))), spec="resnet18")]
    out["run-spec"] = [Case("baseline", "run-lenet5-input", ["run", LENET, "--input", "x.npy"], valid_input)]
    out["run-onnx"] = [Case("baseline", "run-lenet5.onnx-input", ["run", "lenet5.onnx", "--input", "x.npy"],
                            chain(lenet, valid_input))]
    out["bench-onnx"] = [Case("baseline", "bench-lenet5.onnx", ["bench", "lenet5.onnx", "--runs", "2"], lenet)]
    out["import-onnx"] = [Case("baseline", "import-lenet5.onnx", ["import", "lenet5.onnx", "-o", "i.cnn",
                                                                  "--weights-out", "i.safetensors"], lenet,
                               ("i.cnn", "i.safetensors"), ("i.cnn", "i.safetensors"))]
    out["int8"] = [Case("baseline", "int8-lenet5", ["compile", LENET, "--quantize", "int8", "-o", "q.onnx",
                                                    "--calibration", "x.npy"], valid_input, ("q.onnx",), ("q.onnx",))]
    out["compile-vgg16"] = [Case("baseline", "compile-vgg16", ["compile", str(SPECS / "vgg16.cnn"), "-o", "out.onnx"],
                                 None, ("out.onnx",), ("out.onnx",))]
    for case in (c for cases in out.values() for c in cases):
        case.family = "baseline"
        if case.codes is OK_CODES:  # a legitimate run succeeds
            case.codes = frozenset({0})
    return out

