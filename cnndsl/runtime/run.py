"""Stage 4, run: onnxruntime sessions on CUDA when it really loads, else CPU; inputs; outputs."""

from __future__ import annotations

import ctypes
import math
import os
import threading
from collections.abc import Callable

import numpy as np

from cnndsl.errors import RunError
from cnndsl.lang.show import printable
from cnndsl.memory import ensure_fits

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def onnxruntime():
    """The onnxruntime module, imported with TMPDIR pointing at a private folder of our own,
    removed afterwards: its native library writes a predictably named file (``.ses``) into the
    temp folder when it loads, and a shared /tmp is no place for that (another user could plant a
    symbolic link there)."""
    with _IMPORTING:  # a second thread must not see the module half imported (the playground runs two)
        if _ORT:
            return _ORT[0]
        import shutil
        import tempfile

        private = tempfile.mkdtemp(prefix="cnndsl-ort-")  # 0700, ours
        before = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = private
        try:
            import onnxruntime as ort
        finally:
            if before is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = before
            shutil.rmtree(private, ignore_errors=True)
        _ORT.append(ort)
        return ort


_IMPORTING = threading.Lock()
_ORT: list = []  # the module, once imported whole


def cuda_problem() -> str | None:
    """Why CUDA cannot run here (naming the missing driver or library), or None if it may."""
    ort = onnxruntime()

    if CUDA not in ort.get_available_providers():
        return "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver: libcuda.so.1 cannot be loaded"
    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from pip's nvidia-* packages, if installed
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                ort.preload_dlls(directory="")
            except Exception:  # noqa: BLE001 - optional helper; the checks below say what is missing
                pass
    capi = os.path.join(os.path.dirname(ort.__file__), "capi")
    try:
        ctypes.CDLL(os.path.join(capi, "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(os.path.join(capi, "libonnxruntime_providers_cuda.so"))
    except OSError as exc:
        text = str(exc)
        if "cannot open shared object" in text:
            missing = text.split(":")[0].strip()
            return f"the CUDA provider needs {missing}, which cannot be loaded (CUDA/cuDNN libraries missing)"
    return None


STOP_WAIT_S = 30  # how long an interrupted run may take to stop (onnxruntime checks between nodes)
ABANDONED = threading.Event()  # native work was still running when an interrupt went on: see in_worker


def in_worker(fn: Callable[[], object], name: str):
    """``fn()``, run in a daemon thread while the main thread waits, so that Ctrl-C or SIGTERM
    reaches Python at once even while onnxruntime's native code runs (it defers signal handlers
    until it returns, which a quantization can take many seconds to do). On an interrupt the work
    is abandoned, ABANDONED is set, and the interrupt goes on: the process is stopping."""
    result: list = []
    done = threading.Event()  # not Thread.join: an interrupted join can leave it unusable

    def work() -> None:
        try:
            result.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            result.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        while not done.wait(0.05):
            pass
    except BaseException:
        if not done.is_set():
            ABANDONED.set()
        raise
    ok, value = result[0]
    if ok:
        return value
    raise value


class Runner:
    """One onnxruntime session and the provider that actually runs it."""

    def __init__(self, session, provider: str, note: str | None) -> None:
        self.session = session
        self.provider = provider
        self.note = note
        meta = _one_input(session)
        self.input_name = meta.name
        self.input_shape = tuple(meta.shape)

    @classmethod
    def from_model(cls, model, device: str = "auto", threads: int | None = None) -> Runner:
        """``model`` is a path or serialised bytes; ``device`` is auto, cpu or cuda."""
        ort = onnxruntime()

        ort.set_default_logger_severity(4)
        options = ort.SessionOptions()
        options.log_severity_level = 4
        if threads:
            options.intra_op_num_threads = threads
        note = None
        if device in ("auto", "cuda"):
            problem = cuda_problem()
            if problem is None:
                session = _session(ort, model, options, [CUDA, CPU])
                if session.get_providers()[0] == CUDA:
                    return cls(session, CUDA, None)
                problem = "onnxruntime could not enable the CUDA provider"
            if device == "cuda":
                raise RunError(f"CUDA is not usable: {problem}",
                               hint="use --device cpu, or --device auto to fall back to the CPU")
            note = f"CUDA is not usable ({problem}); running on CPU"
        elif device != "cpu":
            raise RunError(f"unknown device '{device}'", hint="use auto, cpu or cuda")
        return cls(_session(ort, model, options, [CPU]), CPU, note)

    @property
    def on_gpu(self) -> bool:
        return self.provider != CPU

    def check_input(self, x: np.ndarray) -> np.ndarray:
        """The input as float32 NxCxHxW, or a RunError that says exactly what differs."""
        x = np.asarray(x)
        want = self.input_shape[1:]
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise RunError(f"the input has dtype {x.dtype}; it needs real numbers")
        if x.shape == tuple(want):
            x = x[None]
        problem = shape_problem(x.shape, self.input_shape)
        if problem:
            raise RunError(problem)
        return np.ascontiguousarray(x, dtype=np.float32)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The model's first output for the batch ``x`` (see run_all)."""
        return self.run_all(x)[0][1]

    def run_all(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Every output of the model for the batch ``x``, as (name, values), in the model's order.
        onnxruntime runs in a worker thread so that Ctrl-C (or SIGTERM) stops it: the session is
        told to terminate, then the interrupt goes on."""
        ort = onnxruntime()

        x = self.check_input(np.asarray(x))
        options = ort.RunOptions()
        names = [o.name for o in self.session.get_outputs()]
        result: list = []
        done = threading.Event()  # not Thread.join: an interrupted join can leave it unusable

        def work() -> None:
            try:
                result.append(self.session.run(names, {self.input_name: x}, options))
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
                result.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name="cnndsl-run", daemon=True).start()
        try:
            while not done.wait(0.05):
                pass
        except BaseException:
            options.terminate = True
            if not done.wait(STOP_WAIT_S):
                ABANDONED.set()  # a loop onnxruntime does not check: the process must not wait for it
            raise
        if isinstance(result[0], Exception):
            raise RunError(f"onnxruntime failed: {_first_line(result[0])}") from None
        return list(zip(names, result[0], strict=True))

    def bound(self, x: np.ndarray):
        """A callable that runs the model once on ``x``, for timing. On CUDA the input is copied to
        the GPU once and the output stays there (onnxruntime I/O binding), so a benchmark times the
        model rather than host-device copies; on CPU it is a plain run."""
        x = self.check_input(np.asarray(x))
        if self.provider != CUDA:
            feeds = {self.input_name: x}
            return lambda: self.session.run(None, feeds)
        ort = onnxruntime()

        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
        for output in self.session.get_outputs():
            binding.bind_output(output.name, "cuda")

        def once():
            self.session.run_with_iobinding(binding)
            binding.synchronize_outputs()

        return once


def _one_input(session):
    """The model's one input, which cnndsl can feed: a tensor with a batch axis and known rank."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if outputs and not str(outputs[0].type).startswith("tensor("):
        raise RunError(f"the model's first output is {printable(str(outputs[0].type))}; cnndsl shows tensors")
    if len(inputs) != 1:
        raise RunError(f"the model has {len(inputs)} inputs; cnndsl runs models with exactly one (a batch of images "
                       "or feature vectors)" if inputs else "the model has no inputs: there is nothing to feed it")
    if not outputs:
        raise RunError("the model has no outputs")
    shape = inputs[0].shape
    if not isinstance(shape, (list, tuple)) or len(shape) < 2:
        what = "has only a batch axis" if isinstance(shape, (list, tuple)) and shape else \
            "is a scalar or of unknown rank"
        raise RunError(f"the model's input '{printable(inputs[0].name)}' {what}; cnndsl feeds a batch axis and at "
                       "least one more")
    if not str(inputs[0].type).startswith("tensor(float"):
        raise RunError(f"the model's input is {printable(str(inputs[0].type))}; cnndsl feeds float tensors")
    return inputs[0]


def _session(ort, model, options, providers):
    try:
        return ort.InferenceSession(model, options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - a malformed or unsupported model
        raise RunError(f"onnxruntime cannot load the model: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_input(path: str, shape: tuple) -> np.ndarray:
    """Read an input from .npy, .npz (its first array) or .txt/.csv (numbers, reshaped to ``shape``).
    Untrusted: array headers are checked, and every size against memory, before reading."""
    from cnndsl.io import input_kind, reading
    from cnndsl.weights import arrays

    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".npz", ".txt", ".csv", ".tsv"):
        raise RunError(f"unknown input format '{ext}'", path=path, hint="use .npy, .npz, .txt or .csv")
    kind = input_kind(path)
    if kind is not None:
        raise RunError(f"the input is {kind}, not a file", path=path)
    reading(path)
    try:
        if ext == ".npy":
            return _declared(arrays.npy(path), shape, path).load()
        if ext == ".npz":
            stored = arrays.npz(path)
            if not stored:
                raise RunError("the .npz file holds no arrays", path=path)
            return _declared(next(iter(stored.values())), shape, path).load()
        return _numbers(path, shape)
    except arrays.ArrayFileError as exc:
        raise RunError(f"cannot read the input: {exc}", path=path) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read the input: {_first_line(exc)}", path=path) from None


def shape_problem(shape: tuple, input_shape: tuple) -> str | None:
    """What is wrong with an input of ``shape`` (its batch axis first) for a model taking
    ``input_shape`` (batch first, dimensions an int or a name), or None."""
    want = tuple(input_shape[1:])
    if len(shape) != len(input_shape):
        return (f"the input has {len(shape)} axes {tuple(shape)}; the model needs {len(input_shape)} "
                f"(batch x {'x'.join(map(str, want))})")
    for axis, (got, need) in enumerate(zip(shape[1:], want, strict=True), 1):
        if isinstance(need, int) and got != need:
            what = ["channels", "height", "width"][axis - 1] if len(want) == 3 else "features"
            return (f"the input's {what} is {got}; the model needs {need} "
                    f"(input shape {tuple(shape)}, model batch x {'x'.join(map(str, want))})")
    return None


def _declared(stored, shape: tuple, path: str):
    """``stored``, once its header's dtype and shape are ones the model takes (one sample, or a
    batch of them): another array is refused before a byte of it is read or decompressed."""
    if stored.dtype.kind not in "biuf":
        raise RunError(f"the input has dtype {stored.dtype}; it needs real numbers", path=path)
    got = tuple(stored.shape)
    problem = shape_problem((1, *got) if got == tuple(shape[1:]) else got, shape)
    if problem:
        raise RunError(problem, path=path, hint="save one sample, or a batch N x the sample's shape")
    return stored


def _numbers(path: str, shape: tuple) -> np.ndarray:
    """Numbers separated by blanks, commas or lines, reshaped to batches of ``shape``[1:]."""
    from cnndsl.memory import ensure_fits

    ensure_fits(os.path.getsize(path) * 16, lambda why: RunError(f"the input cannot be read: {why}", path=path))
    with open(path, encoding="utf-8") as fh:
        text = fh.read().replace(",", " ")
    values = np.array(text.split(), dtype=np.float64)
    per_sample = math.prod(d for d in shape[1:] if isinstance(d, int))
    if per_sample and values.size % per_sample == 0 and values.size:
        return values.reshape((-1, *shape[1:]))
    raise RunError(f"the file holds {values.size} numbers; one input needs {per_sample}", path=path)


def check_model_file(path: str, batch: int | None = None) -> str:
    """``path``, once it is known to hold an ONNX model (its graph; external data is read later),
    and, given ``batch``, once its activations for that batch are known to fit in memory here."""
    import onnx

    from cnndsl.io import input_kind, reading

    kind = input_kind(path)
    if kind is not None:
        raise RunError(f"the model is {kind}, not a file", path=path)
    reading(path)
    try:
        model = onnx.load_model(path, load_external_data=False)
    except FileNotFoundError:
        raise RunError("no such file", path=path) from None
    except Exception as exc:  # noqa: BLE001 - any malformed file
        raise RunError(f"not a valid ONNX model ({type(exc).__name__})", path=path) from None
    if batch is not None:
        need = widest_activation_bytes(model, batch)
        ensure_fits(need, lambda why: RunError(
            f"running this model on a batch of {batch} cannot fit: its widest layer's inputs and outputs "
            f"need about {why.removeprefix('it needs ')}", path=path, hint="use a smaller --batch"))
    return path


def widest_activation_bytes(model, batch: int) -> int:
    """Bytes of the inputs and outputs of the model's widest node for ``batch`` samples, from ONNX
    shape inference (a symbolic dimension counts as the batch). 0 where shapes cannot be inferred:
    onnxruntime is then the judge, as for any model."""
    import onnx
    from onnx import helper

    try:
        # Not data_prop=True: it would compute a constant such as a 4 GiB ConstantOfShape to learn its shape.
        graph = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - a model ONNX cannot infer: nothing to estimate
        return 0
    sizes = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        count = 1
        for d in t.shape.dim:
            count *= d.dim_value if d.HasField("dim_value") else batch
        try:
            item = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).itemsize
        except (KeyError, TypeError, ValueError):
            item = 4
        sizes[vi.name] = count * item
    weights = {t.name for t in graph.initializer}
    return max((sum(sizes.get(v, 0) for v in node.input if v not in weights) + sum(sizes.get(v, 0) for v in node.output)
                for node in graph.node), default=0)


def make_input(input_shape: tuple, input_path: str | None, image: str | None, resize: bool | str, seed: int,
               batch: int, normalize: str | None = None) -> tuple[np.ndarray, str, list[str]]:
    """(the input batch, where it came from, notes) for a model taking ``input_shape``: from an
    image file (its pixels normalised per channel with ``normalize``, image.parse_normalize), an array
    file, or seeded N(0, 1) values for a batch of ``batch``."""
    if image:
        from cnndsl.runtime.image import MODES, load_image, parse_normalize

        x, notes = load_image(image, input_shape, resize)
        how = "pixels scaled to 0..1"
        if normalize:
            mean, std = parse_normalize(normalize, x.shape[1])
            x = ((x - mean) / std).astype(np.float32)
            how += f", then normalised ({normalize})" if normalize != "imagenet" else \
                ", then normalised with ImageNet's mean and std"
        return x, f"{image} ({MODES[x.shape[1]][1]}, {how})", notes
    if input_path:
        return load_input(input_path, input_shape), input_path, []
    dims = [d if isinstance(d, int) else batch for d in input_shape]
    dims[0] = batch
    ensure_fits(math.prod(dims) * 4, lambda why: RunError(
        f"a random input of {'x'.join(map(str, dims))} cannot be made: {why}", hint="use a smaller --batch"))
    return np.random.default_rng(seed).standard_normal(dims, dtype=np.float32), f"seeded random (seed {seed})", []
