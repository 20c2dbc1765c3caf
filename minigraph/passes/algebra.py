"""Algebraic simplification: rewrite rules such as ``x * 1 -> x``, kept in a table you can read and extend.

``RULES`` maps an op type to its rules. A rule is a function ``rule(node) -> node or None``: given a node
of that type (whose inputs are already simplified), it returns a node that computes the same value — an
existing node, or one it builds — or ``None`` when it does not apply. The replacement must have the node's
dtype and static shape: ``x * ones((3, 4))`` is not ``x`` when ``x`` has shape ``(4,)``, so each rule
checks that with :func:`fits`. To add a rule: ``RULES.setdefault(mg.ops.Relu, []).append(relu_of_relu)``.

Every rule here is exact in real arithmetic, and most give the same bits. Three do not: ``x + 0 -> x``
returns ``-0.0`` where ``-0.0 + 0`` gave ``+0.0``; ``log(exp(x)) -> x`` and ``log(softmax(z)) ->
log_softmax(z)`` remove roundings, and overflows (``exp(100)`` is ``inf`` in float32). The last two rules
do not simplify by themselves: they rewrite a graph so that fusion can do more. Nor does
``cross_entropy_from_log_softmax``, which gives the loss and its gradient one ``log_softmax`` to share.
"""

import numpy as np

from ..graph import Constant, Node, role_scope
from ..ops import (Add, BroadcastTo, Div, Exp, Log, Mul, Neg, Relu, ReluGrad, Reshape, SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad,
                   Sub, SumTo, Transpose, log_of_softmax, log_softmax, reduce_sum, relu, relu_grad, transpose)
from .core import check_fetches, rebuild, rewrite

MAX_REWRITES_PER_NODE = 100  # a rule that keeps rewriting its own result is a bug, not a simplification


def fits(candidate, node):
    """True if ``candidate`` can stand for ``node``: the same dtype and the same, known-rank static shape."""
    return candidate.shape is not None and candidate.shape == node.shape and candidate.dtype == node.dtype


def is_filled_with(node, number):
    """True if ``node`` is a constant whose every entry equals ``number``."""
    return isinstance(node, Constant) and node.constant.size > 0 and bool(np.all(node.constant == number))


def identity_operand(node, neutral, sides=(0, 1)):
    """For ``a op b``: the operand that ``node`` equals when the other, at a position in
    ``sides``, is a constant full of ``neutral`` (``x * 1``, ``1 * x``, ``x - 0``, ...), or
    ``None``."""
    a, b = node.inputs
    if 1 in sides and is_filled_with(b, neutral) and fits(a, node):
        return a
    if 0 in sides and is_filled_with(a, neutral) and fits(b, node):
        return b
    return None


def times_one(node):
    """``x * 1 -> x``, ``1 * x -> x``."""
    return identity_operand(node, 1)


def plus_zero(node):
    """``x + 0 -> x``, ``0 + x -> x``."""
    return identity_operand(node, 0)


def minus_zero(node):
    """``x - 0 -> x``."""
    return identity_operand(node, 0, sides=(1,))


def divided_by_one(node):
    """``x / 1 -> x``."""
    return identity_operand(node, 1, sides=(1,))


def double_negation(node):
    """``-(-x) -> x``."""
    (inner,) = node.inputs
    return inner.inputs[0] if isinstance(inner.op, Neg) else None


def transpose_of_transpose(node):
    """``transpose(transpose(x, p), q) -> transpose(x, p∘q)``, or just ``x`` when ``p∘q`` leaves
    every axis in place."""
    (inner,) = node.inputs
    if not isinstance(inner.op, Transpose) or inner.shape is None:
        return None
    x, rank = inner.inputs[0], len(inner.shape)
    first = inner.op.axes or tuple(reversed(range(rank)))
    second = node.op.axes or tuple(reversed(range(rank)))
    axes = tuple(first[a % rank] % rank for a in second)  # output axis i is axis axes[i] of x
    return x if axes == tuple(range(rank)) else transpose(x, axes)


def reshape_of_reshape(node):
    """``reshape(reshape(x, s), t) -> reshape(x, t)``, and ``reshape(x, t) -> x`` when ``x`` has shape ``t``."""
    x = node.inputs[0]
    if isinstance(x.op, Reshape):
        return rebuild(node, [x.inputs[0], *node.inputs[1:]])
    return x if fits(x, node) and sum(d is None for d in x.shape) <= 1 else None  # one unknown size is implied


def log_of_exp(node):
    """``log(exp(x)) -> x``."""
    (inner,) = node.inputs
    return inner.inputs[0] if isinstance(inner.op, Exp) and fits(inner.inputs[0], node) else None


def log_of_softmax_rule(node):
    """``log(softmax(z)) -> log_softmax(z)``: the stable form (``mg.log`` applies it when it builds a node)."""
    return log_of_softmax(node.inputs[0])


def sum_to_as_reduce_sum(node):
    """``sum_to(x, shape) -> reduce_sum(x, leading axes)`` when ``shape`` has no size-1 axis (a bias's
    gradient): the axes are known from the static shapes, where ``sum_to`` works them out at every run."""
    x, shape = node.inputs[0], node.op.shape
    if shape is None or x.shape is None or 1 in shape:
        return None
    leading = tuple(range(len(x.shape) - len(shape)))
    if not leading:
        return x if fits(x, node) else None  # the same shape, fully known: nothing to sum
    return reduce_sum(x, leading)


def relu_grad_of_relu(node):
    """``relu_grad(g, x) -> relu_grad(g, relu(x))``: the same mask, since ``relu(x) > 0`` exactly where
    ``x > 0``. Not simpler on its own: in a training step ``relu(x)`` is computed already (CSE merges the
    two), and ``x``, often ``h @ W + b``, is then used by ``relu`` alone, so that it fuses into it."""
    grad, x = node.inputs
    return None if isinstance(x.op, Relu) else relu_grad(grad, relu(x))


def cross_entropy_from_log_softmax(node):
    """``softmax_cross_entropy(z, y) -> softmax_cross_entropy(log_softmax(z), y)`` on log-probabilities (the
    op's ``from_log_softmax``), and the same for its gradient op: the same bits, as both ops compute through
    ``log_softmax``. Not simpler on its own: in a training step the loss and its gradient then read one
    ``log_softmax(z)`` (CSE merges the two), computed once instead of once in each — as TensorFlow's fused
    kernel returns the loss and its gradient from one pass over the logits."""
    if node.op.from_log_softmax:
        return None
    logits, *others = node.inputs
    return type(node.op)(from_log_softmax=True)(log_softmax(logits), *others, name=node.name)


def scalar_gradient_scale(node):
    """``softmax_cross_entropy_grad(L, y, broadcast_to(s, rows)) -> softmax_cross_entropy_grad(L, y, s)`` for a
    scalar ``s``: the gradient of a mean loss scales every row by the same ``1 / n``, which the op broadcasts
    by itself — the same bits, without building an array of ``n`` copies of ``s`` at every step."""
    logits, labels, grad = node.inputs
    if not isinstance(grad.op, BroadcastTo) or grad.inputs[0].shape != ():
        return None
    return rebuild(node, [logits, labels, grad.inputs[0]])


RULES = {
    Mul: [times_one],
    Add: [plus_zero],
    Sub: [minus_zero],
    Div: [divided_by_one],
    Neg: [double_negation],
    Transpose: [transpose_of_transpose],
    Reshape: [reshape_of_reshape],
    Log: [log_of_exp, log_of_softmax_rule],
    ReluGrad: [relu_grad_of_relu],
    SumTo: [sum_to_as_reduce_sum],
    SoftmaxCrossEntropy: [cross_entropy_from_log_softmax],
    SoftmaxCrossEntropyGrad: [cross_entropy_from_log_softmax, scalar_gradient_scale],
}


def simplify(fetches, rules=None):
    """The fetches, with the rules of ``rules`` (default :data:`RULES`) applied bottom-up until none fires."""
    fetches = check_fetches(fetches, "simplify")
    rules = RULES if rules is None else rules

    def replace(node, inputs):
        node = rebuild(node, inputs)
        for _ in range(MAX_REWRITES_PER_NODE):
            new = first_rewrite(rules.get(type(node.op), ()), node)
            if new is None:
                return node
            node = new
        raise RuntimeError(f"simplify: the rules rewrote {node!r} {MAX_REWRITES_PER_NODE} times without end")

    return rewrite(fetches, replace)


def first_rewrite(rules, node):
    """The result of the first rule that applies to ``node``, checked, or ``None``."""
    for rule in rules:
        with role_scope(node.role):
            new = rule(node)
        if new is None or new is node:
            continue
        if not (isinstance(new, Node) and new.dtype == node.dtype and new.shape == node.shape):
            raise ValueError(f"simplify: rule {rule.__name__} replaced {node!r} by {new!r}; a rule must return "
                             "a node of the same dtype and shape, or None")
        return new
    return None
