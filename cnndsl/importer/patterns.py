"""Activations an exporter writes as arithmetic: GELU as x * 0.5 * (1 + erf(x / sqrt 2)) (torch.onnx
below opset 20, in either order of its products), and views an exporter writes as a gather (a
permute of a 1x1 map, which torch.export writes as as_strided: a Gather of the flattened tensor at
every index in order)."""

from __future__ import annotations

import math

import numpy as np

from cnndsl.importer.load import Op

SQRT2 = math.sqrt(2.0)


class ArithmeticOps:
    """Patterns for ``lift._Lifter`` (a mixin: it uses the lifter's ``producer``, ``only_use``,
    ``absorbed``, ``s`` and ``passes``)."""

    def scalar(self, name: str) -> float | None:
        if not name or not self.s.is_constant(name):
            return None
        v = self.s.value(name)
        return float(v.reshape(-1)[0]) if v.size == 1 else None

    def split_const(self, op: Op) -> tuple[str, float] | None:
        """(the data input, the scalar) of a binary op with one scalar constant input."""
        a, b = op.inputs[0], op.inputs[1]
        for x, c in ((a, b), (b, a)):
            value = self.scalar(c)
            if value is not None and not self.s.is_constant(x):
                return x, value
        return None

    def made_by(self, name: str, kind: str, reader: Op) -> Op | None:
        op = self.producer.get(name)
        return op if op is not None and op.op == kind and self.only_use(name, reader) else None

    def erf_term(self, name: str, reader: Op) -> tuple[str, list[Op]] | None:
        """(x, ops) where ``name`` is 1 + erf(x / sqrt 2) (or x * (1 / sqrt 2))."""
        add = self.made_by(name, "Add", reader)
        split = self.split_const(add) if add is not None else None
        if split is None or not np.isclose(split[1], 1.0):
            return None
        erf = self.made_by(split[0], "Erf", add)
        scaled = self.producer.get(erf.inputs[0]) if erf is not None else None
        if scaled is None or not self.only_use(erf.inputs[0], erf) or scaled.op not in ("Div", "Mul"):
            return None
        inner = self.split_const(scaled)
        want = SQRT2 if scaled.op == "Div" else 1 / SQRT2
        if inner is None or not np.isclose(inner[1], want, rtol=1e-6) or (
                scaled.op == "Div" and scaled.inputs[0] != inner[0]):
            return None
        return inner[0], [add, erf, scaled]

    def decomposed_gelu(self, op: Op) -> str | None:
        """x where ``op`` (a Mul) computes gelu(x) exactly; the other ops of the pattern are absorbed."""
        found = None
        split = self.split_const(op)
        if split is not None and np.isclose(split[1], 0.5):  # (x * (1 + erf)) * 0.5
            product = self.made_by(split[0], "Mul", op)
            if product is not None:
                for x, term in ((product.inputs[0], product.inputs[1]), (product.inputs[1], product.inputs[0])):
                    got = self.erf_term(term, product)
                    if got is not None and got[0] == x:
                        found = x, [product, *got[1]]
        else:  # x * (0.5 * (1 + erf))
            for x, half in ((op.inputs[0], op.inputs[1]), (op.inputs[1], op.inputs[0])):
                scale = self.made_by(half, "Mul", op)
                inner = self.split_const(scale) if scale is not None else None
                if inner is not None and np.isclose(inner[1], 0.5):
                    got = self.erf_term(inner[0], scale)
                    if got is not None and got[0] == x:
                        found = x, [scale, *got[1]]
        if found is None:
            return None
        self.absorbed.update(o.index for o in found[1])
        return found[0]

    def op_Gather(self, op: Op):
        flat, index = op.inputs[0], op.inputs[1] if len(op.inputs) > 1 else ""
        reshape = self.producer.get(flat)
        if reshape is not None and reshape.op == "Reshape" and self.only_use(flat, op) and index \
                and self.s.is_constant(index) and int(op.attrs.get("axis", 0)) == 0:
            shape = self.s.shape(reshape.inputs[0])
            flat_shape = self.s.shape(flat)
            if shape is not None and all(isinstance(d, int) for d in shape) and flat_shape is not None \
                    and len(flat_shape) == 1:
                at = self.s.value(index)
                if at.shape == tuple(shape) and np.array_equal(at.reshape(-1), np.arange(at.size)):
                    self.absorbed.add(reshape.index)
                    self.passes[op.index] = reshape.inputs[0]
                    return None  # every element in order: the tensor itself
        raise self.fail(op, "no cnndsl statement computes Gather",
                        "see the layer table in the README for what the language has")
