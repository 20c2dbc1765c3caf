"""Elementwise ops with numpy broadcasting: arithmetic, exp/log/sqrt, activations, comparisons, casts.

Gradients of binary ops pass through :func:`unbroadcast`: where numpy broadcast an input (a bias of shape
``(10,)`` added to ``(N, 10)``), the adjoint sums the gradient back down to the input's shape.
"""

import numbers

import numpy as np

from ..graph import Node, Op, as_node
from .shape import broadcast_keeps_shape, broadcast_to, shape_like, static_broadcast, sum_to


def unbroadcast(grad, x, node):
    """``grad`` (shaped like ``node``) summed down to input ``x``'s shape where broadcasting
    enlarged it."""
    return grad if broadcast_keeps_shape(x, node) else sum_to(grad, shape_like(x))


def float_dtype(dtypes):
    """The dtype of a floating-point result: numpy's promotion, with integers promoted to float64."""
    dtype = np.result_type(*dtypes)
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


class Elementwise(Op):
    """Base of elementwise ops: the output has the broadcast shape of the inputs.

    An op whose compute is one numpy ufunc names it in ``ufunc`` (see the end of this module); the memory
    planner may then hand it an output array, even one of its inputs: numpy computes element by element,
    so ``ufunc(a, b, out=a)`` is safe.
    """

    ufunc = None

    @property
    def writes_into(self):
        return self.ufunc is not None

    in_place = writes_into

    @property
    def kernel(self):
        """The call of the ufunc with ``out=``, as chapter 05's fused kernels write it: ``np.add({0}, {1}, out={out})``."""
        if self.ufunc is None:
            return None
        return f"np.{self.ufunc.__name__}({', '.join(f'{{{i}}}' for i in range(self.ufunc.nin))}, out={{out}})"

    def infer_shape(self, node, input_shapes):
        return static_broadcast(self, node, input_shapes)

    def compute_into(self, node, values):
        return self.ufunc(*values)  # the last value is the output array: ufunc(a, b, out)


class UnaryFloat(Elementwise):
    """Base of ``f(x)`` for a real function ``f``: float32 stays float32, integers become float64."""

    def infer_dtype(self, node, input_dtypes):
        return float_dtype(input_dtypes)


# ---------------------------------------------------------------------------------------------- arithmetic


class Add(Elementwise):
    """``a + b``. Gradient: ``g`` to both, unbroadcast."""

    name = "add"

    def compute(self, node, input_values):
        a, b = input_values
        return a + b

    def gradient(self, node, output_grad):
        a, b = node.inputs
        return [unbroadcast(output_grad, a, node), unbroadcast(output_grad, b, node)]

    def tangent(self, node, input_tangents):
        ta, tb = input_tangents
        if ta is not None and tb is not None:
            return ta + tb
        return broadcast_to(ta if tb is None else tb, shape_like(node))


class Sub(Elementwise):
    """``a - b``. Gradient: ``g`` and ``-g``, unbroadcast."""

    name = "sub"

    def compute(self, node, input_values):
        a, b = input_values
        return a - b

    def gradient(self, node, output_grad):
        a, b = node.inputs
        return [unbroadcast(output_grad, a, node), unbroadcast(-output_grad, b, node)]

    def tangent(self, node, input_tangents):
        ta, tb = input_tangents
        if ta is not None and tb is not None:
            return ta - tb
        return broadcast_to(ta if tb is None else -tb, shape_like(node))


class Mul(Elementwise):
    """``a * b``. Gradient: ``g b`` and ``g a``, unbroadcast."""

    name = "mul"

    def compute(self, node, input_values):
        a, b = input_values
        return a * b

    def gradient(self, node, output_grad):
        a, b = node.inputs
        return [unbroadcast(output_grad * b, a, node), unbroadcast(output_grad * a, b, node)]

    def tangent(self, node, input_tangents):
        (a, b), (ta, tb) = node.inputs, input_tangents
        if tb is None:
            return ta * b
        return a * tb if ta is None else ta * b + a * tb


class Div(Elementwise):
    """``a / b`` (true division). Gradient: ``g / b`` and ``-g a / b^2 = -g (a/b) / b``, unbroadcast."""

    name = "div"

    def compute(self, node, input_values):
        a, b = input_values
        return a / b

    def infer_dtype(self, node, input_dtypes):
        return float_dtype(input_dtypes)

    def gradient(self, node, output_grad):
        a, b = node.inputs
        return [unbroadcast(output_grad / b, a, node), unbroadcast(-output_grad * node / b, b, node)]

    def tangent(self, node, input_tangents):
        (a, b), (ta, tb) = node.inputs, input_tangents
        if tb is None:
            return ta / b
        tb_term = tb * node / b
        return -tb_term if ta is None else ta / b - tb_term


class Neg(Elementwise):
    """``-x``. Gradient: ``-g``."""

    name = "neg"

    def compute(self, node, input_values):
        return -input_values[0]

    def gradient(self, node, output_grad):
        return [-output_grad]

    def tangent(self, node, input_tangents):
        return -input_tangents[0]


class Pow(Elementwise):
    """``x ** p`` for a number ``p`` (a node exponent builds :class:`Power`). Gradient: ``g p x^(p-1)``."""

    name = "pow"

    def __init__(self, exponent):
        self.exponent = exponent

    def compute(self, node, input_values):
        return input_values[0] ** self.exponent

    def infer_dtype(self, node, input_dtypes):
        return np.result_type(input_dtypes[0], self.exponent)

    def gradient(self, node, output_grad):
        return [output_grad * self._derivative(node)]

    def tangent(self, node, input_tangents):
        return input_tangents[0] * self._derivative(node)

    def _derivative(self, node):
        (x,) = node.inputs
        if self.exponent == 0:
            return zeros_like(x)  # not 0 * x ** -1, which is NaN at x = 0
        if self.exponent == 2:
            return 2 * x
        return self.exponent * x ** (self.exponent - 1)


class Power(Elementwise):
    """``a ** b`` elementwise, for a node exponent ``b`` (or a number base ``a``). Gradients, unbroadcast:
    ``g b a^(b-1)`` for ``a`` and ``g a^b log a`` for ``b``. Two points where the formulas give NaN are
    written out: at ``b = 0``, ``a^0 = 1`` is constant in ``a`` (not ``0 · 0^-1``), and at ``a = 0``,
    ``0^b = 0`` is constant in ``b`` (not ``0 · log 0``); for ``a < 0``, ``a^b`` is not real-differentiable
    in ``b``: NaN."""

    name = "power"

    def compute(self, node, input_values):
        a, b = input_values
        return a**b

    def gradient(self, node, output_grad):
        a, b = node.inputs
        base_grad = output_grad * b * a ** where(equal(b, 0), 1, b - 1)
        exponent_grad = output_grad * node * log(where(equal(a, 0), 1, a))
        return [unbroadcast(base_grad, a, node), unbroadcast(exponent_grad, b, node)]


class Where(Elementwise):
    """``where(condition, a, b)``: ``a`` where ``condition`` is true, else ``b`` (numpy broadcasting).
    Gradient: ``g`` masked by the condition for ``a``, by its negation for ``b``; none for the condition."""

    name = "where"

    def compute(self, node, input_values):
        return np.where(*input_values)

    def infer_dtype(self, node, input_dtypes):
        return np.result_type(*input_dtypes[1:])

    def gradient(self, node, output_grad):
        condition, a, b = node.inputs
        zero = zeros_like(output_grad)
        return [None, unbroadcast(where(condition, output_grad, zero), a, node),
                unbroadcast(where(condition, zero, output_grad), b, node)]


# ---------------------------------------------------------------------------------------------- functions


class Exp(UnaryFloat):
    """``exp(x)``. Gradient: ``g exp(x)``, which is ``g`` times the node itself."""

    name = "exp"

    def compute(self, node, input_values):
        return np.exp(input_values[0])

    def gradient(self, node, output_grad):
        return [output_grad * node]

    def tangent(self, node, input_tangents):
        return input_tangents[0] * node


class Log(UnaryFloat):
    """``log(x)``. Gradient: ``g / x``."""

    name = "log"

    def compute(self, node, input_values):
        return np.log(input_values[0])

    def gradient(self, node, output_grad):
        return [output_grad / node.inputs[0]]

    def tangent(self, node, input_tangents):
        return input_tangents[0] / node.inputs[0]


class Sqrt(UnaryFloat):
    """``sqrt(x)``. Gradient: ``g / (2 sqrt(x))``, with ``sqrt(x)`` the node itself."""

    name = "sqrt"

    def compute(self, node, input_values):
        return np.sqrt(input_values[0])

    def gradient(self, node, output_grad):
        return [output_grad * 0.5 / node]

    def tangent(self, node, input_tangents):
        return input_tangents[0] * 0.5 / node


class Tanh(UnaryFloat):
    """``tanh(x)``. Gradient: ``g (1 - tanh(x)^2)``."""

    name = "tanh"

    def compute(self, node, input_values):
        return np.tanh(input_values[0])

    def gradient(self, node, output_grad):
        return [output_grad * (1 - node * node)]

    def tangent(self, node, input_tangents):
        return input_tangents[0] * (1 - node * node)


class Sigmoid(UnaryFloat):
    """``sigmoid(x) = 1 / (1 + exp(-x))``, computed stably as ``(1 + tanh(x/2)) / 2``.
    Gradient: ``g s (1 - s)`` with ``s`` the node itself."""

    name = "sigmoid"

    def compute(self, node, input_values):
        return 0.5 * (1 + np.tanh(0.5 * input_values[0]))

    def gradient(self, node, output_grad):
        return [output_grad * node * (1 - node)]

    def tangent(self, node, input_tangents):
        return input_tangents[0] * node * (1 - node)


class Relu(Elementwise):
    """``relu(x) = max(x, 0)``. Gradient: ``relu_grad(g, x)``, the mask ``g [x > 0]`` as one op.

    numpy's ``maximum`` runs its vectorized (SIMD) loop on two arrays, but a scalar loop against the number 0:
    2.5–3× slower on this course's machine, for the same bits. So a new output is made as zeros and the
    maximum taken into it; in place (the memory plan's choice), ``x`` is compared with the number 0."""

    name = "relu"
    writes_into = in_place = True

    def compute(self, node, input_values):
        return self.compute_into(node, (*input_values, None))

    def compute_into(self, node, values):
        x, out = values
        if out is None:
            out = np.zeros(x.shape, x.dtype)  # not np.zeros_like, whose Python wrapper costs ~3 µs more here
            return np.maximum(x, out, out=out)
        return np.maximum(x, 0, out=out)

    def gradient(self, node, output_grad):
        return [relu_grad(output_grad, node.inputs[0])]

    def tangent(self, node, input_tangents):
        return relu_grad(input_tangents[0], node.inputs[0])


class ReluGrad(Elementwise):
    """``relu_grad(g, x) = g [x > 0]``: ``g`` where ``x`` is positive, else 0.
    Gradient: the same mask for ``g``; none for ``x`` (the mask is piecewise constant)."""

    name = "relu_grad"
    writes_into = in_place = True

    def compute(self, node, input_values):
        return self.compute_into(node, (*input_values, None))

    def compute_into(self, node, values):
        grad, x, out = values
        return np.multiply(grad, x > 0, out=out)

    def infer_dtype(self, node, input_dtypes):
        return input_dtypes[0]

    def gradient(self, node, output_grad):
        return [relu_grad(output_grad, node.inputs[1]), None]

    def tangent(self, node, input_tangents):
        return None if input_tangents[0] is None else relu_grad(input_tangents[0], node.inputs[1])


# ---------------------------------------------------------------------------------------------- no gradient


class NoGradient(Op):
    """Base of ops whose output is piecewise constant in the inputs (or not real): no gradient flows."""

    def gradient(self, node, output_grad):
        return [None] * len(node.inputs)

    def tangent(self, node, input_tangents):
        return None


class Equal(NoGradient, Elementwise):
    """``a == b`` elementwise, a bool array."""

    name = "equal"

    def compute(self, node, input_values):
        a, b = input_values
        return np.equal(a, b)

    def infer_dtype(self, node, input_dtypes):
        return np.bool_


class ZerosLike(NoGradient):
    """An array of zeros with the shape and dtype of ``x``."""

    name = "zeros_like"

    def compute(self, node, input_values):
        return np.zeros_like(input_values[0])

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]


class OnesLike(NoGradient):
    """An array of ones with the shape and dtype of ``x``."""

    name = "ones_like"

    def compute(self, node, input_values):
        return np.ones_like(input_values[0])

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]


class Cast(Op):
    """``x`` converted to ``dtype``. Gradient: ``g`` cast back, between floating types only."""

    name = "cast"

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def compute(self, node, input_values):
        return input_values[0].astype(self.dtype)

    def infer_dtype(self, node, input_dtypes):
        return self.dtype

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]

    def gradient(self, node, output_grad):
        return [cast(output_grad, node.inputs[0].dtype) if self._between_floats(node) else None]

    def tangent(self, node, input_tangents):
        return cast(input_tangents[0], self.dtype) if self._between_floats(node) else None

    def _between_floats(self, node):
        """Only a cast from floats to floats is differentiable (to or from integers, it is piecewise constant)."""
        return node.inputs[0].dtype.kind == "f" and self.dtype.kind == "f"


# ---------------------------------------------------------------------------------------------- ufuncs

# The numpy ufunc each op's compute applies (a + b is np.add(a, b)). The memory planner (chapter 06) calls
# it with an output array to compute in place: np.add(a, b, out).
Add.ufunc, Sub.ufunc, Mul.ufunc, Div.ufunc, Neg.ufunc = np.add, np.subtract, np.multiply, np.divide, np.negative
Exp.ufunc, Log.ufunc, Sqrt.ufunc, Tanh.ufunc = np.exp, np.log, np.sqrt, np.tanh
Power.ufunc = np.power

# The other elementwise ops' kernels for chapter 05's fusion: numpy source that writes the value into a buffer
# ``{out}`` from the inputs ``{0}``, ``{1}``, ... — the steps of ``compute``, in its order, so that a fused
# kernel gives the same bits.
Relu.kernel = "np.maximum({0}, np.zeros({0}.shape, {0}.dtype), out={out})"  # two arrays: numpy's fast loop (see Relu)
ReluGrad.kernel = "np.multiply({0}, np.greater({1}, 0), out={out})"
Pow.kernel = property(lambda op: f"np.power({{0}}, {op.exponent!r}, out={{out}})")
Sigmoid.kernel = "\n".join(["np.multiply({0}, 0.5, out={out})", "np.tanh({out}, out={out})",
                            "np.add({out}, 1, out={out})", "np.multiply({out}, 0.5, out={out})"])


# ---------------------------------------------------------------------------------------------- builders


def _binary(op, a, b, name):
    if not isinstance(a, Node) and not isinstance(b, Node):
        raise TypeError(f"{op.name}: at least one operand must be a Node, got {type(a).__name__} and {type(b).__name__}")
    return op(a, b, name=name)  # Op.__call__ makes the number a constant of the node's dtype


def add(a, b, name=None):
    """``a + b`` with numpy broadcasting; numbers are allowed on either side."""
    return _binary(Add(), a, b, name)


def sub(a, b, name=None):
    """``a - b`` with numpy broadcasting."""
    return _binary(Sub(), a, b, name)


def mul(a, b, name=None):
    """``a * b`` with numpy broadcasting."""
    return _binary(Mul(), a, b, name)


def div(a, b, name=None):
    """``a / b`` with numpy broadcasting (true division)."""
    return _binary(Div(), a, b, name)


def equal(a, b, name=None):
    """``a == b`` elementwise (bool)."""
    return _binary(Equal(), a, b, name)


def neg(x, name=None):
    """``-x``."""
    return Neg()(x, name=name)


def pow(x, exponent, name=None):
    """``x ** exponent``: :class:`Pow` for a node ``x`` and a number ``exponent``, else :class:`Power` (a node
    exponent, or a number raised to a node: ``10 ** y`` is computed as ``np.power``, exactly)."""
    if isinstance(x, Node) and isinstance(exponent, numbers.Number):
        return Pow(exponent)(x, name=name)
    return _binary(Power(), x, exponent, name)


def where(condition, a, b, name=None):
    """``a`` where ``condition`` (a bool node) is true, else ``b``, elementwise with numpy broadcasting."""
    if not isinstance(condition, Node) or condition.dtype != np.bool_:
        raise TypeError(f"where: the condition must be a bool node, got {condition!r}")
    like = a if isinstance(a, Node) else b if isinstance(b, Node) else None  # a number takes the other's dtype
    return Where()(condition, as_node(a, like), as_node(b, like), name=name)


def exp(x, name=None):
    """``exp(x)``."""
    return Exp()(x, name=name)


def log(x, name=None):
    """``log(x)``. Rewrite: ``log(softmax(z))`` builds ``log_softmax(z)``, which is stable for large logits
    (the classic TensorFlow-1 tutorial writes ``log(softmax(...))``); chapter 05's ``simplify`` applies the
    same rewrite, :func:`~minigraph.ops.logits.log_of_softmax`, to graphs already built."""
    from .logits import log_of_softmax

    eager = isinstance(x, Node) and x.eager  # eager code runs op by op, as written
    rewritten = None if eager else log_of_softmax(x, name=name)
    return Log()(x, name=name) if rewritten is None else rewritten


def sqrt(x, name=None):
    """``sqrt(x)``."""
    return Sqrt()(x, name=name)


def tanh(x, name=None):
    """``tanh(x)``."""
    return Tanh()(x, name=name)


def sigmoid(x, name=None):
    """``1 / (1 + exp(-x))``."""
    return Sigmoid()(x, name=name)


def relu(x, name=None):
    """``max(x, 0)``."""
    return Relu()(x, name=name)


def relu_grad(grad, x, name=None):
    """``grad`` where ``x > 0``, else 0 (the gradient of relu as one op)."""
    return ReluGrad()(grad, x, name=name)


def cast(x, dtype, name=None):
    """``x`` converted to ``dtype`` (e.g. ``"float32"``)."""
    return Cast(dtype)(x, name=name)


def zeros_like(x, name=None):
    """Zeros shaped like ``x``."""
    return ZerosLike()(x, name=name)


def ones_like(x, name=None):
    """Ones shaped like ``x``."""
    return OnesLike()(x, name=name)
