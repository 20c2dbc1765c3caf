"""Matrix product of 2-D arrays, with transpose flags so gradients need no transposed copies."""

import numpy as np

from ..graph import Op, format_shape


class MatMul(Op):
    """``C = op(A) @ op(B)`` where ``op`` transposes when ``transpose_a``/``transpose_b`` is set.

    Gradient for ``C = A B``: ``dA = G Bᵀ``, ``dB = Aᵀ G`` — written as matmuls with transpose flags
    (numpy hands a transposed view straight to BLAS, so nothing is copied); the other flag combinations
    follow by transposing these identities.
    """

    name = "matmul"
    writes_into = True  # into an array the memory plan gives it, but not in place: BLAS needs a separate output

    def __init__(self, transpose_a=False, transpose_b=False):
        self.transpose_a = bool(transpose_a)
        self.transpose_b = bool(transpose_b)

    def compute(self, node, input_values):
        return self.compute_into(node, (*input_values, None))

    def compute_into(self, node, values):
        a, b, out = values
        return np.matmul(a.T if self.transpose_a else a, b.T if self.transpose_b else b, out=out)

    def infer_shape(self, node, input_shapes):
        a, b = input_shapes
        for name, shape in (("first", a), ("second", b)):
            if shape is not None and len(shape) != 2:
                raise self.shape_error(node, f"the {name} input has shape {format_shape(shape)}; matmul needs 2-D inputs")
        if a is None or b is None:
            return None
        (n, k_a), (k_b, m) = (a[::-1] if self.transpose_a else a), (b[::-1] if self.transpose_b else b)
        if k_a is not None and k_b is not None and k_a != k_b:
            raise self.shape_error(node, f"inner dimensions {k_a} and {k_b} differ")
        return (n, m)

    def gradient(self, node, output_grad):
        a, b, g = *node.inputs, output_grad
        if not self.transpose_a and not self.transpose_b:  # C = A B
            return [matmul(g, b, transpose_b=True), matmul(a, g, transpose_a=True)]
        if self.transpose_a and not self.transpose_b:  # C = Aᵀ B
            return [matmul(b, g, transpose_b=True), matmul(a, g)]
        if not self.transpose_a and self.transpose_b:  # C = A Bᵀ
            return [matmul(g, b), matmul(g, a, transpose_a=True)]
        return [matmul(b, g, True, True), matmul(g, a, True, True)]  # C = Aᵀ Bᵀ

    def tangent(self, node, input_tangents):
        (a, b), (ta, tb) = node.inputs, input_tangents
        flags = (self.transpose_a, self.transpose_b)
        if tb is None:
            return matmul(ta, b, *flags)
        if ta is None:
            return matmul(a, tb, *flags)
        return matmul(ta, b, *flags) + matmul(a, tb, *flags)


def matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    """Matrix product of 2-D nodes, optionally transposing either: ``matmul(a, b, transpose_b=True) = a @ bᵀ``."""
    if np.isscalar(a) or np.isscalar(b):
        raise TypeError("matmul: both operands must be matrices, not numbers (use * to scale)")
    return MatMul(transpose_a, transpose_b)(a, b, name=name)
