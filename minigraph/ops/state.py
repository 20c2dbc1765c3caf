"""Ops with effects: assign a Variable (in place, into its buffer in the Session) and group updates.

Within one ``Session.run`` every plain read of a variable sees the value it had when the run started
(the executor runs readers before writers); the output of an assign node is the new value.
"""

import numpy as np

from ..graph import Op, Variable, format_shape
from .shape import static_broadcast


class Assign(Op):
    """``assign(var, value)``: write ``value`` into ``var``'s buffer; the node's value is the new value.

    ``value`` must broadcast to the variable's shape and cast to its dtype within a kind (float64 into
    float32 is fine, float into int is not). Assign ops have no gradient.
    """

    name = "assign"
    mutates = True
    returns_view = True  # the result is the variable's own buffer
    stateful = True

    def compute(self, node, input_values):
        buffer, value = input_values
        np.copyto(buffer, value, casting="same_kind")
        return buffer

    def infer_dtype(self, node, input_dtypes):
        var, value = node.inputs
        if not (isinstance(var, Variable) or var.eager):  # an eager leaf Tensor is updated in place too
            raise TypeError(f"{self.name}: the first input must be a Variable, got {var!r}")
        if not np.can_cast(value.dtype, var.dtype, "same_kind"):
            raise TypeError(f"{self.name}: cannot write {value.dtype} values into {var.dtype} variable {var.name!r}")
        return var.dtype

    def infer_shape(self, node, input_shapes):
        var, value = input_shapes
        if value is not None and (len(value) > len(var) or static_broadcast(self, node, [var, value]) != var):
            raise self.shape_error(node, f"a value of shape {format_shape(value)} does not fit variable shape {format_shape(var)}")
        return var

    def gradient(self, node, output_grad):
        return [None, None]


class AssignAdd(Assign):
    """``assign_add(var, delta)``: ``var += delta`` in place; the node's value is the new value."""

    name = "assign_add"

    def compute(self, node, input_values):
        buffer, delta = input_values
        return np.add(buffer, delta, out=buffer, casting="same_kind")


class AssignSub(Assign):
    """``assign_sub(var, delta)``: ``var -= delta`` in place (the SGD update); the value is the new value."""

    name = "assign_sub"

    def compute(self, node, input_values):
        buffer, delta = input_values
        return np.subtract(buffer, delta, out=buffer, casting="same_kind")


class Group(Op):
    """``group(*nodes)``: one node that runs all ``nodes`` (e.g. the updates of a training step).
    Its value is ``None``."""

    name = "group"

    def compute(self, node, input_values):
        return None

    def infer_dtype(self, node, input_dtypes):
        return None

    def gradient(self, node, output_grad):
        return [None] * len(node.inputs)


# Chapter 05's fusion: an assign can end a fused kernel, which then writes into the variable's buffer, ``{out}``
# (also input ``{0}``), the value computed in ``{1}`` — as ``compute`` does.
Assign.kernel = "np.copyto({out}, {1}, casting='same_kind')"
AssignAdd.kernel = "np.add({out}, {1}, out={out}, casting='same_kind')"
AssignSub.kernel = "np.subtract({out}, {1}, out={out}, casting='same_kind')"


def assign(var, value, name=None):
    """Write ``value`` into Variable ``var`` when run; the node's value is the new value."""
    return Assign()(var, value, name=name)


def assign_add(var, delta, name=None):
    """``var += delta`` in place when run."""
    return AssignAdd()(var, delta, name=name)


def assign_sub(var, delta, name=None):
    """``var -= delta`` in place when run."""
    return AssignSub()(var, delta, name=name)


def group(*nodes, name=None):
    """A node that runs all ``nodes`` (lists are flattened); its value is ``None``."""
    flat = [n for item in nodes for n in (item if isinstance(item, (list, tuple)) else [item])]
    return Group()(*flat, name=name)
