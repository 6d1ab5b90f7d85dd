"""Round-trip every shipped spec through `cnndsl import` (issue 13): compile with seed 0, import,
compile the imported spec with the imported weights, and compare outputs with onnxruntime.

Prints one row per spec: equal outputs (bit for bit), parameters, lines of the imported spec vs
ours, whether the weight names were kept, and the import time; a spec that uses what import does
not read yet shows the error. CI runs the smaller specs (tests/test_import.py); this runs all.

    python tools/import_roundtrip.py [SPEC ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    import onnxruntime as ort

    import cnndsl
    from cnndsl.api import CompileOptions
    from cnndsl.errors import CnnDslError
    from cnndsl.importer import import_onnx

    names = sys.argv[1:] or sorted(p.stem for p in (ROOT / "specs").glob("*.cnn"))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    same = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            net = cnndsl.load(ROOT / "specs" / f"{name}.cnn")
            path = Path(tmp) / f"{name}.onnx"
            try:
                net.compile(CompileOptions(output=path))
            except CnnDslError as exc:
                print(f"{name:28s} not compiled here: {exc.message[:100]}")
                continue
            start = time.perf_counter()
            try:
                imported = import_onnx(path)
            except CnnDslError as exc:
                print(f"{name:28s} not imported: {exc.message[:150]}")
                continue
            seconds = time.perf_counter() - start
            again = cnndsl.parse(imported.spec)
            model = again.compile(CompileOptions(weights=dict(imported.arrays()))).model
            x = np.random.default_rng(0).standard_normal((2, *net.input_shape)).astype(np.float32)
            a = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            b = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            equal = np.array_equal(a.run(None, {"input": x})[0], b.run(None, {b.get_inputs()[0].name: x})[0])
            same += equal and again.totals.params == net.totals.params
            lines = [_code_lines(imported.spec), _code_lines((ROOT / "specs" / f"{name}.cnn").read_text())]
            print(f"{name:28s} {'equal' if equal else 'DIFFERENT'}  params {again.totals.params:>12,} "
                  f"({'same' if again.totals.params == net.totals.params else 'DIFFERENT'})  lines {lines[0]:>4}/"
                  f"{lines[1]:<4} names {'kept' if imported.names_kept else 'made'}  {seconds:.2f}s")
            path.unlink()
    print(f"{same} of {len(names)} specs round-trip exactly")
    return 0


def _code_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


if __name__ == "__main__":
    sys.exit(main())
