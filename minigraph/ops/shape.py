"""Shape ops: reshape, transpose, expand_dims, broadcast_to and its adjoint sum_to.

Where a target shape is needed it is either a tuple of ints or a node whose run-time shape is used
("shape like this node") — the latter when the static shape has unknown (``None``) dimensions, as
gradients of batch-sized values do.
"""

import math

import numpy as np

from ..graph import Node, Op, ShapeError, describe, format_shape


def shape_like(x):
    """``x.shape`` if fully known, else ``x`` itself, meaning "``x``'s shape at run time"."""
    return x.shape if x.shape is not None and None not in x.shape else x


def static_broadcast(op, node, shapes):
    """numpy broadcasting of static shapes; ``None`` dims broadcast against 1 and stay ``None``."""
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    result = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise op.shape_error(node, f"sizes {sorted(known)} do not broadcast (axis {axis} of the result)")
        result.append(known.pop() if known else None if None in dims else 1)
    return tuple(result)


def valid_axes(axes, rank):
    """True if each axis lies in ``[-rank, rank)`` (negative ones count from the end) and none repeats."""
    return all(-rank <= a < rank for a in axes) and len({a % rank for a in axes}) == len(axes)


def may_broadcast(source, target):
    """True if an array of static shape ``source`` may broadcast to static shape ``target``."""
    if len(source) > len(target):
        return False
    aligned = zip(source, target[len(target) - len(source):])
    return all(s is None or t is None or s == 1 or s == t for s, t in aligned)


def broadcast_keeps_shape(x, node):
    """True when broadcasting in ``node`` cannot have enlarged its input ``x`` (so ``x``'s gradient needs
    no ``sum_to``): same static shape, and no other input shares one of ``x``'s unknown dimensions."""
    if x.shape is None or x.shape != node.shape:
        return False
    for other in node.inputs:
        if other is x:
            continue
        if other.shape is None:
            return False
        offset = len(x.shape) - len(other.shape)
        if any(d is None and axis >= offset and other.shape[axis - offset] is None for axis, d in enumerate(x.shape)):
            return False
    return True


def _shape_node(op_class, x, shape, name):
    """``op_class(shape)(x)`` for a tuple, ``op_class(None)(x, shape)`` for a node giving the shape."""
    if isinstance(shape, Node):
        return op_class(None)(x, shape, name=name)
    if any(d is None for d in shape):
        raise ShapeError(f"{op_class.__name__}: the shape {format_shape(tuple(shape))} for {describe(x)} has an "
                         "unknown (None) dimension; pass a node instead, whose run-time shape is used")
    return op_class(tuple(int(d) for d in shape))(x, name=name)


class ToShape(Op):
    """Base of broadcast_to, sum_to and reshape, whose parameter is a target ``shape``: a tuple of ints, or
    ``None`` for "the run-time shape of input 1" — a node that gives only its shape and gets no gradient."""

    def __init__(self, shape):
        self.shape = shape

    def static_target(self, input_shapes):
        """The target shape as far as it is known when the node is built."""
        return self.shape if self.shape is not None else input_shapes[1]

    def target(self, input_values):
        """The target shape at run time."""
        return self.shape if self.shape is not None else input_values[1].shape

    def input_gradients(self, node, grad):
        """``grad`` for ``x``, and ``None`` for a shape-giving input."""
        return [grad] + [None] * (len(node.inputs) - 1)


class BroadcastTo(ToShape):
    """``broadcast_to(x, shape)``: numpy broadcasting made explicit. Gradient: ``sum_to(g, shape of x)``."""

    name = "broadcast_to"

    def compute(self, node, input_values):
        x = input_values[0]
        result = np.empty(self.target(input_values), x.dtype)
        np.copyto(result, x)  # a new array: for the small arrays of gradients, faster than np.broadcast_to
        return result

    def infer_shape(self, node, input_shapes):
        source, target = input_shapes[0], self.static_target(input_shapes)
        if source is not None and target is not None and not may_broadcast(source, target):
            raise self.shape_error(node, f"{format_shape(source)} does not broadcast to {format_shape(target)}")
        return target

    def gradient(self, node, output_grad):
        return self.input_gradients(node, sum_to(output_grad, shape_like(node.inputs[0])))

    def tangent(self, node, input_tangents):
        return None if input_tangents[0] is None else broadcast_to(input_tangents[0], shape_like(node))


class SumTo(ToShape):
    """``sum_to(x, shape)``: sum ``x`` down to ``shape`` — over the leading axes broadcasting added and the
    axes where ``shape`` has size 1. The adjoint of ``broadcast_to``: its gradient is ``broadcast_to``."""

    name = "sum_to"
    returns_view = True  # returns x itself when it already has the shape

    def compute(self, node, input_values):
        return sum_to_shape(input_values[0], self.target(input_values))

    def infer_shape(self, node, input_shapes):
        source, target = input_shapes[0], self.static_target(input_shapes)
        if source is not None and target is not None and not may_broadcast(target, source):
            raise self.shape_error(node, f"{format_shape(source)} cannot be summed to {format_shape(target)}")
        return target

    def gradient(self, node, output_grad):
        return self.input_gradients(node, broadcast_to(output_grad, shape_like(node.inputs[0])))

    def tangent(self, node, input_tangents):
        return None if input_tangents[0] is None else sum_to(input_tangents[0], shape_like(node))


def sum_to_shape(value, shape):
    """numpy: sum ``value`` to ``shape`` (the reverse of broadcasting ``shape`` to
    ``value.shape``): over the leading axes broadcasting added, and where ``shape`` has a 1."""
    shape = tuple(shape)
    if value.shape == shape:
        return value
    extra = value.ndim - len(shape)
    stretched = [extra + i for i, d in enumerate(shape)
                 if d == 1 and value.shape[extra + i] != 1]
    return value.sum(axis=(*range(extra), *stretched), keepdims=True).reshape(shape)


class Reshape(ToShape):
    """``reshape(x, shape)``; one entry of ``shape`` may be -1. Gradient: ``g`` reshaped back to ``x``'s shape."""

    name = "reshape"
    returns_view = True

    def compute(self, node, input_values):
        return np.reshape(input_values[0], self.target(input_values))

    def infer_shape(self, node, input_shapes):
        if self.shape is None:
            return self.static_target(input_shapes)
        target, source = self.shape, input_shapes[0]
        if sum(d == -1 for d in target) > 1 or any(d < -1 for d in target):
            raise self.shape_error(node, f"target {target} may hold at most one -1 and no other negative size")
        if source is None or None in source:
            return tuple(None if d == -1 else d for d in target)
        size, known = math.prod(source), math.prod(d for d in target if d != -1)
        if (-1 in target and (known == 0 or size % known)) or (-1 not in target and known != size):
            raise self.shape_error(node, f"cannot reshape {size} elements into {target}")
        return tuple(size // known if d == -1 else d for d in target)

    def gradient(self, node, output_grad):
        return self.input_gradients(node, reshape(output_grad, shape_like(node.inputs[0])))

    def tangent(self, node, input_tangents):
        return None if input_tangents[0] is None else reshape(input_tangents[0], shape_like(node))


class Transpose(Op):
    """``transpose(x, axes)`` (default: reverse the axes). Gradient: transpose by the inverse permutation."""

    name = "transpose"
    returns_view = True

    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(int(a) for a in axes)

    def compute(self, node, input_values):
        return np.transpose(input_values[0], self.axes)

    def infer_shape(self, node, input_shapes):
        (shape,) = input_shapes
        if shape is None:
            return None
        if self.axes is None:
            return shape[::-1]
        if len(self.axes) != len(shape) or not valid_axes(self.axes, len(shape)):
            raise self.shape_error(node, f"axes {self.axes} are not a permutation of {len(shape)} axes")
        return tuple(shape[a] for a in self.axes)

    def gradient(self, node, output_grad):
        inverse = None if self.axes is None else tuple(int(i) for i in np.argsort([a % len(self.axes) for a in self.axes]))
        return [transpose(output_grad, inverse)]

    def tangent(self, node, input_tangents):
        return transpose(input_tangents[0], self.axes)


class ExpandDims(Op):
    """``expand_dims(x, axis)``: insert size-1 axes (numpy semantics). Gradient: reshape back to ``x``."""

    name = "expand_dims"
    returns_view = True

    def __init__(self, axis):
        self.axis = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)

    def compute(self, node, input_values):
        return np.expand_dims(input_values[0], self.axis)

    def infer_shape(self, node, input_shapes):
        (shape,) = input_shapes
        if shape is None:
            return None
        rank = len(shape) + len(self.axis)
        if not valid_axes(self.axis, rank):
            raise self.shape_error(node, f"axis {self.axis} is out of range or repeated for a result of rank {rank}")
        axes = {a % rank for a in self.axis}
        dims = iter(shape)
        return tuple(1 if i in axes else next(dims) for i in range(rank))

    def gradient(self, node, output_grad):
        return [reshape(output_grad, shape_like(node.inputs[0]))]

    def tangent(self, node, input_tangents):
        return expand_dims(input_tangents[0], self.axis)


def broadcast_to(x, shape, name=None):
    """Broadcast ``x`` to ``shape`` (a tuple, or a node whose run-time shape is used)."""
    return _shape_node(BroadcastTo, x, shape, name)


def sum_to(x, shape, name=None):
    """Sum ``x`` down to ``shape`` (a tuple, or a node whose run-time shape is used); adjoint of broadcast_to."""
    return _shape_node(SumTo, x, shape, name)


def reshape(x, shape, name=None):
    """Reshape ``x`` to ``shape`` (a tuple with at most one -1, or a node whose run-time shape is used)."""
    return _shape_node(Reshape, x, shape, name)


def transpose(x, axes=None, name=None):
    """Permute the axes of ``x`` (default: reverse them, the matrix transpose for 2-D)."""
    return Transpose(axes)(x, name=name)


def expand_dims(x, axis, name=None):
    """Insert size-1 axes at ``axis`` (an int or a tuple), as ``np.expand_dims``."""
    return ExpandDims(axis)(x, name=name)
