"""Matrix product with numpy's semantics — of matrices, or of stacks of matrices with broadcast batch
dimensions — and transpose flags, so gradients need no transposed copies."""

import numpy as np

from ..graph import Node, Op, format_shape
from .shape import shape_like, static_broadcast, sum_to

NUMBERS = (int, float, complex, np.number)


def matrix_transpose(x):
    """numpy: ``x`` with its last two axes swapped (``x.T`` for a matrix)."""
    return x.T if x.ndim == 2 else np.swapaxes(x, -1, -2)


class MatMul(Op):
    """``C = op(A) @ op(B)`` where ``op`` transposes (the last two axes) when ``transpose_a``/``transpose_b``
    is set. Inputs of more than 2 dimensions are stacks of matrices, multiplied pairwise, with their batch
    dimensions (all but the last two) broadcast as numpy's ``@`` does.

    Gradient for ``C = A B``: ``dA = G Bᵀ``, ``dB = Aᵀ G`` — written as matmuls with transpose flags
    (numpy hands a transposed view straight to BLAS, so nothing is copied); the other flag combinations
    follow by transposing these identities. Where the batch dimensions of an input were broadcast, its
    gradient is summed back to its shape, as for any broadcast input.
    """

    name = "matmul"
    writes_into = True  # into an array the memory plan gives it, but not in place: BLAS needs a separate output
    transpose_a = transpose_b = False  # a plain product has no parameters: eager execution keys it by class

    def __init__(self, transpose_a=False, transpose_b=False):
        if transpose_a or transpose_b:
            self.transpose_a, self.transpose_b = bool(transpose_a), bool(transpose_b)

    def compute(self, node, input_values):
        a, b = input_values
        if self.transpose_a or self.transpose_b:
            return self.compute_into(node, (a, b, None))
        return a @ b  # the plain product at once: an eager product pays for every call in between

    @property
    def expression(self):
        """``np.matmul({0}, {1})``, a transposed operand written ``x.swapaxes(-1, -2)``: the same
        call, on the same views, as ``compute``."""
        a, b = (f"{{{i}}}.swapaxes(-1, -2)" if flag else f"{{{i}}}"
                for i, flag in enumerate((self.transpose_a, self.transpose_b)))
        return f"np.matmul({a}, {b})"

    def compute_into(self, node, values):
        a, b, out = values
        if self.transpose_a:
            a = matrix_transpose(a)
        return np.matmul(a, matrix_transpose(b) if self.transpose_b else b, out=out)

    def infer_shape(self, node, input_shapes):
        a, b = input_shapes
        for name, shape in (("first", a), ("second", b)):
            if shape is not None and len(shape) < 2:
                why = (f"the {name} input has shape {format_shape(shape)}; matmul needs "
                       "matrices or stacks of them (a vector v as a row: reshape(v, (1, -1)))")
                raise self.shape_error(node, why)
        if a is None or b is None:
            return None
        n, k_a = _matrix_dims(a, self.transpose_a)
        k_b, m = _matrix_dims(b, self.transpose_b)
        if k_a is not None and k_b is not None and k_a != k_b:
            raise self.shape_error(node, f"inner dimensions {k_a} and {k_b} differ")
        return (*static_broadcast(self, node, [a[:-2], b[:-2]]), n, m)

    def gradient(self, node, output_grad):
        a, b, g = *node.inputs, output_grad
        if not self.transpose_a and not self.transpose_b:  # C = A B
            grads = [matmul(g, b, transpose_b=True), matmul(a, g, transpose_a=True)]
        elif self.transpose_a and not self.transpose_b:  # C = Aᵀ B
            grads = [matmul(b, g, transpose_b=True), matmul(a, g)]
        elif not self.transpose_a and self.transpose_b:  # C = A Bᵀ
            grads = [matmul(g, b), matmul(g, a, transpose_a=True)]
        else:  # C = Aᵀ Bᵀ
            grads = [matmul(b, g, True, True), matmul(g, a, True, True)]
        return [_sum_batch(grad, x, node) for grad, x in zip(grads, node.inputs)]

    def tangent(self, node, input_tangents):
        (a, b), (ta, tb) = node.inputs, input_tangents
        flags = (self.transpose_a, self.transpose_b)
        if tb is None:
            return matmul(ta, b, *flags)
        if ta is None:
            return matmul(a, tb, *flags)
        return matmul(ta, b, *flags) + matmul(a, tb, *flags)


def _matrix_dims(shape, transposed):
    """The (rows, columns) of the matrices of static ``shape``, after the transpose flag."""
    return shape[:-3:-1] if transposed else shape[-2:]


def _sum_batch(grad, x, node):
    """``grad`` (with the batch dimensions of ``node``) summed to input ``x``'s shape where the batch
    dimensions were broadcast; as it is when they are known to be the same (always for matrices)."""
    if x.shape is not None and node.shape is not None and x.shape[:-2] == node.shape[:-2] and None not in x.shape[:-2]:
        return grad
    return sum_to(grad, shape_like(x))


def matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    """Matrix product of nodes, optionally transposing either: ``matmul(a, b, transpose_b=True) = a @ bᵀ``.
    Inputs of more than 2 dimensions are stacks of matrices, with batch dimensions broadcast (numpy's ``@``)."""
    two_nodes = isinstance(a, Node) and isinstance(b, Node)  # the usual case, tested first: 0.3 µs less per product
    if not two_nodes and (isinstance(a, NUMBERS) or isinstance(b, NUMBERS)):
        raise TypeError("matmul: both operands must be matrices, not numbers (use * to scale)")
    return MatMul(transpose_a, transpose_b)(a, b, name=name)
