"""Softmax, log-softmax and the fused softmax cross-entropy, all stable for large logits.

Every formula subtracts the row maximum first (the log-sum-exp trick): ``softmax(z) = softmax(z - max z)``,
so ``exp`` never overflows, even for logits of magnitude 1e4.
"""

import numpy as np

from ..graph import Node, Op, ShapeError, format_shape, shapes_compatible
from .elementwise import UnaryFloat, exp, float_dtype, ones_like
from .reduce import reduce_sum
from .shape import expand_dims


def max_along(z, axis):
    """``z.max(axis=axis, keepdims=True)``, calling the ufunc's reduction directly: ``ndarray.max`` goes
    through a Python wrapper that costs 2 µs more on a 128 × 10 array here."""
    return np.maximum.reduce(z, axis=axis, keepdims=True)


def stable_softmax(z, axis):
    """numpy: ``exp(z) / sum(exp(z))`` along ``axis``, computed on ``z - max(z)``."""
    e = np.exp(z - max_along(z, axis))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def stable_log_softmax(z, axis):
    """numpy: ``z - log(sum(exp(z)))`` along ``axis``, computed on ``z - max(z)``."""
    shifted = z - max_along(z, axis)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_vjp(probabilities, grad, axis):
    """``Jᵀ g`` for ``p = softmax(z)``: ``J = diag(p) - p pᵀ``, so ``Jᵀ g = p (g - <g, p>)``."""
    return probabilities * (grad - reduce_sum(grad * probabilities, axis, keepdims=True))


class AlongAxis(UnaryFloat):
    """Base of softmax and log_softmax: elementwise shape, normalised along ``axis``."""

    def __init__(self, axis=-1):
        self.axis = int(axis)

    def infer_shape(self, node, input_shapes):
        (shape,) = input_shapes
        if shape is not None and not -len(shape) <= self.axis < len(shape):
            raise self.shape_error(node, f"axis {self.axis} is out of range for rank {len(shape)}")
        return shape


class Softmax(AlongAxis):
    """``softmax(z)_i = exp(z_i) / sum_j exp(z_j)`` along ``axis``. Gradient: ``s (g - <g, s>)``."""

    name = "softmax"

    def compute(self, node, input_values):
        return stable_softmax(input_values[0], self.axis)

    def gradient(self, node, output_grad):
        return [softmax_vjp(node, output_grad, self.axis)]

    def tangent(self, node, input_tangents):
        return softmax_vjp(node, input_tangents[0], self.axis)  # the Jacobian is symmetric


class LogSoftmax(AlongAxis):
    """``log_softmax(z) = z - log sum_j exp(z_j)`` along ``axis``. Gradient: ``g - softmax(z) sum(g)``,
    with ``softmax(z) = exp(log_softmax(z))``, the node itself exponentiated."""

    name = "log_softmax"

    def compute(self, node, input_values):
        return stable_log_softmax(input_values[0], self.axis)

    def gradient(self, node, output_grad):
        return [output_grad - exp(node) * reduce_sum(output_grad, self.axis, keepdims=True)]

    def tangent(self, node, input_tangents):
        (t,) = input_tangents
        return t - reduce_sum(exp(node) * t, self.axis, keepdims=True)


def _integer_labels(node):
    return node.dtype.kind in "iu"


def _logits_and_labels(node):
    """The nodes of the logits and of the labels of a cross-entropy node, for its error messages: in the
    ``from_log_softmax`` form, the logits behind its ``log_softmax`` input."""
    first, labels = node.inputs[:2]
    if node.op.from_log_softmax and isinstance(first.op, LogSoftmax):
        first = first.inputs[0]
    return first, labels


def check_labels(node, logits, labels):
    """Run-time check of the labels' shape against the logits', which numpy would otherwise broadcast into
    a wrong loss: integer labels of shape ``logits.shape[:-1]``, or float labels of the logits' shape."""
    integer = labels.dtype.kind in "iu"
    expected = logits.shape[:-1] if integer else logits.shape
    if labels.shape != expected:
        logits_node, labels_node = _logits_and_labels(node)
        kind = "integer labels" if integer else "float (one-hot) labels"
        raise ShapeError(f"{node.op.name} {node.name!r}: the {kind} {labels_node.name!r} have shape "
                         f"{format_shape(labels.shape)} at run time, but the logits {logits_node.name!r} of shape "
                         f"{format_shape(logits.shape)} need labels of shape {format_shape(expected)}")


def _label_index(node, labels, values):
    """Index of ``values[..., label]`` for each row. A negative label, which numpy would count from the end
    of the row, is refused here; a too large one makes numpy raise an IndexError, which the caller turns
    into the same error, :func:`label_range_error` (so only one reduction, a minimum, is added per run)."""
    if labels.dtype.kind == "i" and labels.size and np.minimum.reduce(labels, axis=None) < 0:  # labels.min(), leaner
        raise label_range_error(node, labels, values.shape[-1])
    if values.ndim == 2:
        return np.arange(len(labels)), labels
    return (*np.indices(labels.shape, sparse=True), labels)


def label_range_error(node, labels, classes):
    """The error for labels outside ``[0, classes)``, naming the labels' and the logits' nodes."""
    logits_node, labels_node = _logits_and_labels(node)
    low = labels.min()
    bad = low if low < 0 else labels.max()
    return ValueError(f"{node.op.name} {node.name!r}: the labels {labels_node.name!r} hold {bad}, but the "
                      f"logits {logits_node.name!r} have {classes} classes: labels must lie in [0, {classes})")


class CrossEntropyOp(Op):
    """Base of the two cross-entropy ops: their first input is the logits ``z``, or, with
    ``from_log_softmax=True`` (set by chapter 05's rule ``cross_entropy_from_log_softmax``),
    ``log_softmax(z)`` itself."""

    from_log_softmax = False  # a class default: the plain op's node.attrs stay empty (CSE keys, drawings)

    def __init__(self, from_log_softmax=False):
        if from_log_softmax:
            self.from_log_softmax = True


class SoftmaxCrossEntropy(CrossEntropyOp):
    """Per-example loss ``-sum_c y_c log softmax(z)_c`` over the last axis of the logits ``z``.

    ``labels`` are class indices (integers, shape ``z.shape[:-1]``) or probabilities such as one-hot rows
    (floats, shape of ``z``). Fused and stable: computed as ``-sum_c y_c log_softmax(z)_c``. Gradient
    w.r.t. the logits: ``(softmax(z) sum_c y_c - y) g`` — ``softmax(z) - onehot(y)`` for proper labels —
    as the single op :class:`SoftmaxCrossEntropyGrad`; w.r.t. float labels: ``-log_softmax(z) g``.

    ``from_log_softmax=True`` (set by a graph pass, chapter 05): the first input is ``log_softmax(z)``
    itself, so the loss is ``-sum_c y_c L_c``, the same bits. Gradient w.r.t. ``L``: ``-y g``.
    """

    name = "softmax_cross_entropy"

    def compute(self, node, input_values):
        logits, labels = input_values
        check_labels(node, logits, labels)
        integer = labels.dtype.kind in "iu"
        if self.from_log_softmax:  # -L[label]: the bits of the logits' form below, as a - b = -(b - a)
            return -_at_labels(node, logits, labels)[1] if integer else -(labels * logits).sum(axis=-1)
        if integer:  # log sum exp(z) - z[label], on z - max(z)
            shifted = logits - max_along(logits, -1)
            return np.log(np.exp(shifted).sum(axis=-1)) - _at_labels(node, shifted, labels)[1]
        return -(labels * stable_log_softmax(logits, -1)).sum(axis=-1)

    def infer_dtype(self, node, input_dtypes):
        logits, labels = input_dtypes
        return float_dtype([logits] if labels.kind in "iu" else [logits, labels])

    def infer_shape(self, node, input_shapes):
        logits, labels = input_shapes
        if logits is not None and len(logits) == 0:
            raise self.shape_error(node, "the logits need a class axis")
        expected = None if logits is None else logits[:-1] if _integer_labels(node.inputs[1]) else logits
        if not shapes_compatible(expected, labels):
            kind = "integer labels" if _integer_labels(node.inputs[1]) else "float (one-hot) labels"
            raise self.shape_error(node, f"{kind} need shape {format_shape(expected)} for logits of shape {format_shape(logits)}")
        return None if logits is None else logits[:-1]

    def gradient(self, node, output_grad):
        logits, labels = node.inputs
        if self.from_log_softmax:
            return [self._slope(node) * expand_dims(output_grad, -1),
                    None if _integer_labels(labels) else -logits * expand_dims(output_grad, -1)]
        logits_grad = softmax_cross_entropy_grad(logits, labels, output_grad)
        if _integer_labels(labels):
            return [logits_grad, None]
        return [logits_grad, -log_softmax(logits) * expand_dims(output_grad, -1)]

    def _slope(self, node):
        """The derivative of each row's loss w.r.t. the first input, class by class. Of the logits:
        ``softmax(z) sum_c y_c - y``. Of ``L = log_softmax(z)``: ``-y`` — for integer labels ``-onehot(y)``,
        written with the ops at hand as ``(exp(L) - onehot(y)) - exp(L)``."""
        first, labels = node.inputs
        if not self.from_log_softmax:
            return softmax_cross_entropy_grad(first, labels, ones_like(node))
        if _integer_labels(labels):
            return softmax_cross_entropy_grad(first, labels, ones_like(node), from_log_softmax=True) - exp(first)
        return -labels

    def tangent(self, node, input_tangents):
        (logits, labels), (t_logits, t_labels) = node.inputs, input_tangents
        terms = []
        if t_logits is not None:
            terms.append(reduce_sum(self._slope(node) * t_logits, -1))
        if t_labels is not None:
            log_p = logits if self.from_log_softmax else log_softmax(logits)
            terms.append(-reduce_sum(log_p * t_labels, -1))
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _at_labels(node, values, labels):
    """``(index, values[index])``: where each row's label is in ``values``, and the value there; a label
    outside the class axis is :func:`label_range_error`."""
    index = _label_index(node, labels, values)
    try:
        return index, values[index]
    except IndexError:
        raise label_range_error(node, labels, values.shape[-1]) from None


class SoftmaxCrossEntropyGrad(CrossEntropyOp):
    """``(softmax(z) sum_c y_c - y) g[..., None]``: the gradient of the softmax cross-entropy w.r.t. the
    logits ``z`` as one op (for index labels: softmax minus one at the label); ``g`` has one value per row,
    or is a scalar for all of them (chapter 05's rule ``scalar_gradient_scale``). The softmax is computed as
    ``exp(log_softmax(z))`` — one exponential more than ``exp(z) / sum``, so that a loss and its gradient
    can share their ``log_softmax`` with the same bits (chapter 05). Its own gradient, for second
    derivatives: w.r.t. ``z`` the softmax VJP of ``G s g``; w.r.t. float ``y``: ``g (<G, p> - G)``; w.r.t.
    ``g``: ``sum_c G_c (p_c s - y_c)``.

    ``from_log_softmax=True`` (set by a graph pass, chapter 05): the first input is ``L = log_softmax(z)``,
    and ``p = exp(L)`` — the same bits. Its gradient w.r.t. ``L`` is then ``G p s g``.
    """

    name = "softmax_cross_entropy_grad"

    def compute(self, node, input_values):
        logits, labels, grad = input_values
        check_labels(node, logits, labels)
        p = np.exp(logits if self.from_log_softmax else stable_log_softmax(logits, -1))
        if labels.dtype.kind in "iu":
            index, at_labels = _at_labels(node, p, labels)
            p[index] = at_labels - 1
        else:
            p = p * labels.sum(axis=-1, keepdims=True) - labels
        return np.multiply(p, grad[..., None], out=p if p.dtype == node.dtype else None)  # in place if it can

    def infer_dtype(self, node, input_dtypes):
        logits, labels, grad = input_dtypes
        return float_dtype([logits, grad] if labels.kind in "iu" else [logits, labels, grad])

    def infer_shape(self, node, input_shapes):
        logits, labels, grad = input_shapes
        rows = None if logits is None else logits[:-1]
        if grad is not None and grad != () and not shapes_compatible(rows, grad):
            raise self.shape_error(node, f"the gradient {format_shape(grad)} must be a scalar or have the "
                                         f"shape {format_shape(rows)} of the logits {format_shape(logits)} without their class axis")
        return logits

    def gradient(self, node, output_grad):
        logits, labels, grad = node.inputs
        p = exp(logits) if self.from_log_softmax else softmax(logits)
        scale = expand_dims(grad, -1)
        if not _integer_labels(labels):
            scale = scale * reduce_sum(labels, -1, keepdims=True)
        if self.from_log_softmax:
            logits_grad = output_grad * scale * p  # d exp(L) = exp(L) dL
        else:
            logits_grad = softmax_vjp(p, output_grad * scale, -1)
        unit = softmax_cross_entropy_grad(logits, labels, ones_like(grad), from_log_softmax=self.from_log_softmax)
        grad_grad = reduce_sum(output_grad * unit, -1 if grad.shape != () else None)  # a scalar g scales every row
        if _integer_labels(labels):
            return [logits_grad, None, grad_grad]
        labels_grad = expand_dims(grad, -1) * (reduce_sum(output_grad * p, -1, keepdims=True) - output_grad)
        return [logits_grad, labels_grad, grad_grad]


def softmax(x, axis=-1, name=None):
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably."""
    return Softmax(axis)(x, name=name)


def log_softmax(x, axis=-1, name=None):
    """``x - log(sum(exp(x)))`` along ``axis``, computed stably."""
    return LogSoftmax(axis)(x, name=name)


def log_of_softmax(x, name=None):
    """The stable form of ``log(x)``, ``log_softmax(z)``, if ``x`` is ``softmax(z)``; else
    ``None``."""
    if isinstance(x, Node) and isinstance(x.op, Softmax):
        return log_softmax(x.inputs[0], axis=x.op.axis, name=name)
    return None


def softmax_cross_entropy(logits, labels, name=None):
    """Per-example cross-entropy of ``softmax(logits)`` (last axis) against ``labels``: class indices
    (ints, shape ``logits.shape[:-1]``) or probabilities/one-hot rows (floats, shape of ``logits``)."""
    return SoftmaxCrossEntropy()(logits, labels, name=name)


def softmax_cross_entropy_grad(logits, labels, grad, name=None, from_log_softmax=False):
    """``(softmax(logits) - onehot(labels)) * grad[..., None]`` as one op (see SoftmaxCrossEntropyGrad);
    ``from_log_softmax=True`` when ``logits`` is ``log_softmax`` of the logits already."""
    return SoftmaxCrossEntropyGrad(from_log_softmax)(logits, labels, grad, name=name)
