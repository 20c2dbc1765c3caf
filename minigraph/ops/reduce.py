"""Reductions: reduce_sum, reduce_mean (``axis``, ``keepdims``) and argmax."""

import math

import numpy as np

from ..graph import Op
from .elementwise import NoGradient, float_dtype
from .shape import broadcast_to, expand_dims, shape_like, valid_axes


def _axis_tuple(axis):
    if axis is None:
        return None
    return tuple(int(a) for a in axis) if isinstance(axis, (tuple, list)) else (int(axis),)


def element_count(x, axis):
    """numpy: the number of elements of ``x`` along the axes ``axis`` (a tuple; ``None`` for all)."""
    return x.size if axis is None else math.prod(x.shape[a] for a in axis)


class Reduce(Op):
    """Base of reductions over ``axis`` (an int, a tuple, or ``None`` for all axes)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis = _axis_tuple(axis)
        self.keepdims = bool(keepdims)

    def reduced_axes(self, node, shape):
        """The reduced axes as non-negative ints (checked against the rank of ``shape``)."""
        if self.axis is None:
            return tuple(range(len(shape)))
        rank = len(shape)
        if not valid_axes(self.axis, rank):
            raise self.shape_error(node, f"axis {self.axis} is out of range or repeated for rank {rank}")
        return tuple(sorted(a % rank for a in self.axis))

    def infer_shape(self, node, input_shapes):
        (shape,) = input_shapes
        if shape is None:
            return () if self.axis is None and not self.keepdims else None
        axes = self.reduced_axes(node, shape)
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def expand(self, grad):
        """``grad`` with the reduced axes put back as size 1, so it broadcasts against the input."""
        if self.keepdims or self.axis is None:
            return grad
        return expand_dims(grad, self.axis)


class ReduceSum(Reduce):
    """``sum(x, axis)``. Gradient: ``g`` broadcast back over the summed axes."""

    name = "reduce_sum"

    def compute(self, node, input_values):
        return input_values[0].sum(axis=self.axis, keepdims=self.keepdims)

    @property
    def expression(self):
        return f"{{0}}.sum(axis={self.axis}, keepdims={self.keepdims})"

    def gradient(self, node, output_grad):
        (x,) = node.inputs
        return [broadcast_to(self.expand(output_grad), shape_like(x))]

    def tangent(self, node, input_tangents):
        return reduce_sum(input_tangents[0], self.axis, self.keepdims)


class ReduceMean(Reduce):
    """``mean(x, axis)`` over ``n`` elements. Gradient: ``g / n`` broadcast back over the averaged axes."""

    name = "reduce_mean"

    def compute(self, node, input_values):
        (x,) = input_values
        return x.sum(axis=self.axis, keepdims=self.keepdims) / element_count(x, self.axis)  # np.mean, leaner

    def infer_dtype(self, node, input_dtypes):
        return float_dtype(input_dtypes)

    def gradient(self, node, output_grad):
        (x,) = node.inputs
        return [broadcast_to(self.expand(output_grad) / self.count(node), shape_like(x))]

    def tangent(self, node, input_tangents):
        return reduce_mean(input_tangents[0], self.axis, self.keepdims)

    def count(self, node):
        """``n``, the number of averaged elements: a number when the static shape tells, else a node."""
        (x,) = node.inputs
        if x.shape is not None:
            sizes = [x.shape[a] for a in self.reduced_axes(node, x.shape)]
            if None not in sizes:
                return math.prod(sizes)
        return Count(self.axis)(x)


class Count(NoGradient):
    """The number of elements of ``x`` along ``axis`` (all axes if ``None``), as a scalar of x's float dtype."""

    name = "count"

    def __init__(self, axis=None):
        self.axis = axis

    def compute(self, node, input_values):
        return np.asarray(element_count(input_values[0], self.axis), dtype=node.dtype)

    def infer_dtype(self, node, input_dtypes):
        return float_dtype(input_dtypes)

    def infer_shape(self, node, input_shapes):
        return ()


class Argmax(NoGradient, Reduce):
    """Index of the largest entry along ``axis`` (int64); ``axis=None`` indexes the flattened array."""

    name = "argmax"

    def __init__(self, axis=-1):
        super().__init__(axis, keepdims=False)

    def compute(self, node, input_values):
        return np.argmax(input_values[0], axis=None if self.axis is None else self.axis[0])

    def infer_dtype(self, node, input_dtypes):
        return np.int64

    def infer_shape(self, node, input_shapes):
        if self.axis is not None and len(self.axis) != 1:
            raise self.shape_error(node, f"argmax takes one axis, got {self.axis}")
        return super().infer_shape(node, input_shapes)


def reduce_sum(x, axis=None, keepdims=False, name=None):
    """Sum of ``x`` over ``axis`` (int, tuple, or None for all), keeping size-1 axes if ``keepdims``."""
    return ReduceSum(axis, keepdims)(x, name=name)


def reduce_mean(x, axis=None, keepdims=False, name=None):
    """Mean of ``x`` over ``axis`` (int, tuple, or None for all), keeping size-1 axes if ``keepdims``."""
    return ReduceMean(axis, keepdims)(x, name=name)


def argmax(x, axis=-1, name=None):
    """Index of the maximum along ``axis`` (default: the last axis; ``None``: the flattened array)."""
    return Argmax(axis)(x, name=name)
