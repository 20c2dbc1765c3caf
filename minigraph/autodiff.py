"""Automatic differentiation as graph transformations.

Reverse mode, :func:`gradients`: walk the graph from ``y`` back to the ``xs`` in reverse topological order.
Each node's *adjoint* ``dy/dnode`` is the sum of the partial adjoints its consumers sent it; the node's
gradient rule (a vector-Jacobian product built from ordinary ops) turns its adjoint into partial adjoints
for its inputs. The result is more graph, so it can be run, drawn and differentiated again.

Forward mode, :func:`jvp`: walk forward from the ``xs``, building each node's *tangent* (the directional
derivative along the given tangents) from its inputs' tangents.

Extension points: :func:`register_gradient` and :func:`gradient_override` replace the gradient rule of an
op type; ``gradients`` consults them before the op's own ``gradient`` method.
"""

import contextlib
import functools
import operator

import numpy as np

from .graph import Node, ShapeError, as_node, constant, describe, role_scope, shapes_compatible, topological_sort
from .ops import ones_like, zeros_like

# ---------------------------------------------------------------------------------------------- rules

_registered_rules = {}
_override_stack = []


def register_gradient(op_type, rule):
    """Use ``rule(node, output_grad) -> list`` as the gradient of every op of ``op_type`` (an Op class or
    its name, e.g. ``mg.ops.Mul`` or ``"Mul"``). ``rule=None`` restores the op's own ``gradient``."""
    if rule is None:
        _registered_rules.pop(op_type, None)
    else:
        _registered_rules[op_type] = rule


@contextlib.contextmanager
def gradient_override(rules):
    """``with gradient_override({mg.ops.Mul: my_rule}):`` — the rules apply inside the block only."""
    _override_stack.append(dict(rules))
    try:
        yield
    finally:
        _override_stack.pop()


def gradient_rule(op):
    """The gradient rule for ``op``: an override, else a registered rule, else ``op.gradient``."""
    keys = (type(op), type(op).__name__, op.name)
    for rules in [*reversed(_override_stack), _registered_rules]:
        for key in keys:
            if key in rules:
                return rules[key]
    return op.gradient


# ---------------------------------------------------------------------------------------------- reverse mode


def gradients(y, xs, grad_y=None, checkpoints=None):
    """Nodes for ``dy/dx`` for each ``x`` in ``xs`` (reverse-mode autodiff as a graph
    transformation).

    For a non-scalar ``y`` this is the gradient of ``sum(y)``, or the vector-Jacobian product
    with ``grad_y`` (shaped like ``y``) if given. ``xs`` is a list (a list is returned) or a
    single node (a node is returned); an ``x`` that ``y`` does not depend on gets
    ``zeros_like(x)``. New nodes have ``role == "gradient"``. Gradient rules are looked up with
    :func:`gradient_rule`. ``checkpoints`` (``"sqrt"`` or a list of nodes) keeps only those
    forward values for the backward pass and recomputes the others: chapter 06's
    :func:`minigraph.memory.checkpointed_gradients`.
    """
    if checkpoints is not None:
        from .memory import checkpointed_gradients  # imported here: memory is built on this module

        return checkpointed_gradients(y, xs, checkpoints, grad_y)
    single = isinstance(xs, Node)
    xs = [xs] if single else list(xs)
    _check_differentiable(y, xs)
    order = topological_sort([y])
    depends_on_xs = _nodes_depending_on(order, xs)
    with role_scope("gradient"):
        seed = _seed(y, grad_y)
        partials = {y: [seed]}
        grads = {}
        for node in reversed(order):
            if node not in partials or node not in depends_on_xs:
                continue
            grads[node] = functools.reduce(operator.add, partials.pop(node))
            input_grads = _apply_rule(node, grads[node])
            for x, g in zip(node.inputs, input_grads):
                if g is not None and x in depends_on_xs:
                    partials.setdefault(x, []).append(g)
        result = [grads[x] if x in grads else zeros_like(x) for x in xs]
    return result[0] if single else result


def _check_differentiable(y, xs, caller="gradients"):
    for node in [y, *xs]:
        if not isinstance(node, Node):
            raise TypeError(f"{caller}: expected nodes, got a {type(node).__name__}")
        if node.eager and not node.requires_grad:  # chapter 08: a Tensor without a tape has no history
            raise ValueError(f"{caller}: the eager tensor {describe(node)} is not on a tape; create the tensors "
                             "to differentiate with requires_grad=True, and compute from them outside no_grad()")
    if y.dtype is None or y.dtype.kind not in "fc":
        raise TypeError(f"{caller}: y {describe(y)} has dtype {y.dtype}; only floating-point values have gradients")


def _nodes_depending_on(order, xs):
    """The nodes of ``order`` (topological) that are some ``x`` or depend on one."""
    reached = set(xs)
    for node in order:
        if any(x in reached for x in node.inputs):
            reached.add(node)
    return reached


def _seed(y, grad_y):
    """The adjoint of ``y`` itself: ``grad_y``, or ones (the gradient of ``sum(y)``)."""
    if grad_y is None:
        return ones_like(y) if y.eager or y.shape is None or None in y.shape else constant(np.ones(y.shape, y.dtype))
    grad_y = as_node(grad_y, y)
    if not shapes_compatible(grad_y.shape, y.shape):
        raise ShapeError(f"gradients: grad_y {describe(grad_y)} does not match y {describe(y)}")
    return ones_like(y) * grad_y if y.eager and not grad_y.eager else grad_y  # an eager y needs a Tensor seed


def _apply_rule(node, output_grad):
    """The node's gradient rule applied to its adjoint, checked: one gradient per input, shaped like it."""
    input_grads = list(gradient_rule(node.op)(node, output_grad))
    if len(input_grads) != len(node.inputs):
        raise ValueError(f"the gradient rule of {node.op.name} returned {len(input_grads)} gradients for "
                         f"{len(node.inputs)} inputs (node {node.name!r})")
    for x, g in zip(node.inputs, input_grads):
        if g is not None and not (isinstance(g, Node) and shapes_compatible(g.shape, x.shape)):
            got = describe(g) if isinstance(g, Node) else type(g).__name__
            raise ShapeError(f"the gradient rule of {node.op.name} returned {got} for input {describe(x)} "
                             f"(node {node.name!r}); a gradient must be a node shaped like its input")
    return input_grads


# ---------------------------------------------------------------------------------------------- forward mode


def jvp(y, xs, tangents):
    """The Jacobian-vector product ``sum_i (dy/dx_i) t_i`` as a node (forward-mode autodiff as a
    graph).

    Each node's tangent is built from its inputs' tangents by the op's ``tangent`` rule; an op
    without one gets it from its gradient rule (see :func:`tangent_from_gradient`). New nodes
    have ``role == "tangent"``.
    """
    xs, tangents = ([xs], [tangents]) if isinstance(xs, Node) else (list(xs), list(tangents))
    if len(xs) != len(tangents):
        raise ValueError(f"jvp: {len(xs)} inputs but {len(tangents)} tangents")
    _check_differentiable(y, xs, "jvp")
    tangent = {}
    with role_scope("tangent"):
        for x, t in zip(xs, tangents):
            t = as_node(t, x)
            if not shapes_compatible(t.shape, x.shape):
                raise ShapeError(f"jvp: tangent {describe(t)} does not match input "
                                 f"{describe(x)}")
            tangent[x] = t
        for node in topological_sort([y]):
            if node in tangent or not any(x in tangent for x in node.inputs):
                continue
            input_tangents = [tangent.get(x) for x in node.inputs]
            result = node.op.tangent(node, input_tangents)
            if result is NotImplemented:
                result = tangent_from_gradient(node, input_tangents)
            if result is not None:
                tangent[node] = result
        return tangent[y] if y in tangent else zeros_like(y)


def tangent_from_gradient(node, input_tangents):
    """Forward mode from reverse mode: the gradient rule ``u -> J_iᵀ u`` is linear in ``u``, so
    differentiating it w.r.t. ``u`` along ``t_i`` gives ``J_i t_i`` (``u``'s value is irrelevant)."""
    u = zeros_like(node)
    terms = [gradients(g, u, grad_y=t)
             for g, t in zip(_apply_rule(node, u), input_tangents) if g is not None and t is not None]
    return functools.reduce(operator.add, terms) if terms else None
