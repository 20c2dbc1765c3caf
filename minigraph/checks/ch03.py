r"""Checks of chapter 03, automatic differentiation.

- 3.1 ``numerical_gradient(f, x, eps=1e-6)``: central differences,
  $\partial f/\partial x_i \approx (f(x + \varepsilon e_i) - f(x - \varepsilon e_i)) / 2\varepsilon$.
- 3.2 ``Dual``: dual numbers $a + b\epsilon$ with $\epsilon^2 = 0$; ``f(Dual(x, 1)).derivative`` is $f'(x)$.
- 3.3 ``mul_gradient``, 3.4 ``matmul_gradient``, 3.5 ``softmax_cross_entropy_gradient``: gradient rules
  ``rule(node, output_grad) -> [one node per input]``, installed with ``mg.gradient_override`` and compared
  with central differences on small float64 graphs (broadcasting, unknown batch sizes, a node used twice).
- 3.6 ``my_gradients(y, xs)``: reverse mode, compared with central differences on several graphs.
- 3.7 ``softmax_regression(gradients)``: chapter 01's model with an SGD step that differentiates with the
  learner's ``gradients``, trained for one epoch on MNIST; the history comes back as ``check(...).value``.

Every graph input is a float64 placeholder, so a gradient can be compared with central differences of
the fed value (accurate to about 1e-9 in float64).
"""

from dataclasses import dataclass

import numpy as np

from .. import autodiff, gradcheck, ops, tf
from ..graph import Node, Placeholder, describe, format_shape, placeholder, role_scope, shapes_compatible
from ..session import Session
from ..viz import draw
from .framework import CheckFailure, Passed, Text, exercise, expect_close, expect_shape, is_close, same_value
from .training import mnist_splits, record

GRADIENT_RTOL, GRADIENT_ATOL = 1e-5, 1e-7


# ---------------------------------------------------------------------------------------------- 3.1


def _forward_differences(f, x, eps):
    """What a one-sided difference gives, to recognise it in a wrong answer."""
    x = np.array(x, dtype=np.float64)
    at_x, grad = f(x), np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += eps
        grad[index] = (f(shifted) - at_x) / eps
    return grad


@exercise(
    "3.1",
    "a central-difference gradient",
    expects="numerical_gradient(f, x, eps=1e-6)",
    nudge="Perturb one entry of a float64 copy of x at a time, by +eps and by -eps, and divide the difference "
    "of f by 2 eps.",
    hint="Make x a float64 copy first (np.array(x, dtype=np.float64)): an integer array cannot hold x + eps, "
    "and the caller's x must not change. For each index of np.ndindex(x.shape): remember x[index], set it to "
    "that plus eps and evaluate f, then to that minus eps and evaluate f, put it back; the entry of the "
    "gradient is the difference of the two values divided by 2 eps.",
    unavailable=[gradcheck.numerical_gradient],
)
def _(numerical_gradient):
    cases = [
        ("sum(x**3)", lambda x: np.sum(x**3), np.array([1.0, 2.0]), 1e-2),
        ("sum(x**2)", lambda x: np.sum(x**2), np.array([1.0, -2.0, 0.5]), 1e-6),
        ("x[0, 0] * x[1, 2] + sum(sin(x))", lambda x: x[0, 0] * x[1, 2] + np.sum(np.sin(x)),
         np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]), 1e-6),
        ("sum(x**2) at integer x", lambda x: np.sum(x**2), np.array([1, 2, 3]), 1e-6),
    ]
    for description, f, x, eps in cases:
        given = {"f(x)": Text(description), "x": x, "eps": eps}
        learners_x = x.copy()
        got = numerical_gradient(f, learners_x, eps=eps)
        if not np.array_equal(learners_x, x):
            raise CheckFailure("your function changed the caller's x: perturb a float64 copy instead",
                               input={**given, "x after your call": learners_x})
        expect_shape(got, x.shape, input=given, what="the gradient")
        expected = gradcheck.numerical_gradient(f, x, eps)
        got_array = np.asarray(got, dtype=np.float64)
        if x.dtype.kind in "iu" and not np.allclose(got_array, expected, rtol=1e-6):
            raise CheckFailure(
                "wrong for an integer x: x[i] + eps rounds back to an integer in an integer array. "
                "Convert x to float64 first: x = np.array(x, dtype=np.float64)",
                input=given, expected=expected, got=got,
            )
        if np.allclose(got_array, _forward_differences(f, x, eps), rtol=1e-9) and not np.allclose(
                got_array, expected, rtol=1e-6):
            raise CheckFailure(
                "this is the one-sided difference (f(x + eps) - f(x)) / eps, whose error is O(eps); use the "
                "central difference (f(x + eps) - f(x - eps)) / (2 eps), whose error is O(eps²)",
                input=given, expected=expected, got=got,
            )
        expect_close(got, expected, input=given, rtol=1e-6, atol=1e-9, what="the gradient")
    return f"{len(cases)} functions, including eps = 0.01, a 2-D x and an integer x"


# ---------------------------------------------------------------------------------------------- 3.2


def _dual_cases():
    """(description, function, x, f(x), f'(x)) for functions written with ordinary operators and numpy."""
    return [
        ("x * x", lambda x: x * x, 3.0, 9.0, 6.0),
        ("3 * x + x * 2", lambda x: 3 * x + x * 2, 1.5, 7.5, 5.0),
        ("x / (x + 1)", lambda x: x / (x + 1), 2.0, 2 / 3, 1 / 9),
        ("1 / x", lambda x: 1 / x, 4.0, 0.25, -1 / 16),
        ("x ** 3 - 2 * x", lambda x: x**3 - 2 * x, 2.0, 4.0, 10.0),
        ("x ** 0.5", lambda x: x**0.5, 4.0, 2.0, 0.25),
        ("(2 * x + 1) ** 3", lambda x: (2 * x + 1) ** 3, 1.0, 27.0, 54.0),
        ("np.exp(x * x)", lambda x: np.exp(x * x), 1.5, np.exp(2.25), 3.0 * np.exp(2.25)),
        ("np.exp(x) * np.sin(x)", lambda x: np.exp(x) * np.sin(x), 1.0,
         np.exp(1.0) * np.sin(1.0), np.exp(1.0) * (np.sin(1.0) + np.cos(1.0))),
        ("np.log(x * x + 1)", lambda x: np.log(x * x + 1), 2.0, np.log(5.0), 0.8),
        ("np.sin(np.exp(x))", lambda x: np.sin(np.exp(x)), 0.5,
         np.sin(np.exp(0.5)), np.cos(np.exp(0.5)) * np.exp(0.5)),
    ]


_A, _B, _C, _D, _P = 2.0, 3.0, 5.0, -1.0, 3.0  # a = Dual(a, b) and c = Dual(c, d) below; b is not 1


def _dual_rules():
    """(description, function of a and c, value, derivative, the rule, unary) for each method on its own, with
    an incoming derivative b = 3: a rule without the chain-rule factor b passes with b = 1, and fails here."""
    a, b, c, d, p = _A, _B, _C, _D, _P
    return [
        ("a * c", lambda x, y: x * y, a * c, a * d + b * c, "(a + bε)(c + dε) = ac + (ad + bc)ε", False),
        ("a / c", lambda x, y: x / y, a / c, (b * c - a * d) / c**2, "(a + bε)/(c + dε) = a/c + (bc - ad)/c² ε",
         False),
        ("a ** 3", lambda x, y: x**p, a**p, p * a ** (p - 1) * b, "(a + bε)^p = a^p + p a^(p-1) b ε", True),
        ("np.exp(a)", lambda x, y: np.exp(x), np.exp(a), np.exp(a) * b, "exp(a + bε) = exp(a) + exp(a) b ε", True),
        ("np.log(a)", lambda x, y: np.log(x), np.log(a), b / a, "log(a + bε) = log(a) + (b / a) ε", True),
        ("np.sin(a)", lambda x, y: np.sin(x), np.sin(a), np.cos(a) * b, "sin(a + bε) = sin(a) + cos(a) b ε", True),
    ]


def _dual_text(value, derivative):
    def shown(number):
        try:
            return f"{float(number):.6g}"
        except (TypeError, ValueError):
            return repr(number)

    return Text(f"Dual({shown(value)}, {shown(derivative)})")


def _expect_dual(got, description, given, expected, rule=None, unary=False):
    """``got`` must be a Dual holding ``expected``, ``(value, derivative)``; ``rule``, the method's rule, explains
    a wrong derivative, and for a function of one operand (``unary``) recognises one without the factor b."""
    if not (hasattr(got, "value") and hasattr(got, "derivative")):
        raise CheckFailure(f"{description} gave a {type(got).__name__}, not a Dual: each operation and "
                           "function must return a new Dual", input=given, got=got)
    for name, value, want in (("value", got.value, expected[0]), ("derivative", got.derivative, expected[1])):
        if not is_close(value, want, rtol=1e-12, atol=1e-15):
            message = f"the {name} of {description} is wrong"
            if rule and name == "derivative":
                message += f"; the rule is {rule}"
                if unary and is_close(value, want / _B, rtol=1e-12, atol=1e-15):
                    message += (f". Yours lacks the factor b = {_B:g}, the derivative that a carries in: without it "
                                "compositions such as exp(x * x) come out wrong")
            raise CheckFailure(message, input=given, expected=_dual_text(*expected),
                               got=_dual_text(got.value, got.derivative))


@exercise(
    "3.2",
    "dual numbers",
    expects="""
        class Dual:
            def __init__(self, value, derivative=0.0): ...
            def __mul__(self, other): ...
            def __truediv__(self, other): ...
            def __pow__(self, exponent): ...
            def exp(self): ...
            def log(self): ...
            def sin(self): ...
    """,
    nudge="Each method returns a new Dual: the value is the ordinary result, the derivative comes from the "
    "chain rule, times the derivative the operand carries.",
    hint="For g(a + bε) the rule is g(a) + g'(a)·b ε: the derivative b of the operand multiplies g'(a), so "
    "that compositions like exp(x * x) come out right. A product is (a + bε)(c + dε) = ac + (ad + bc)ε and a "
    "quotient (a + bε)/(c + dε) = a/c + (bc - ad)/c² ε. Never change self or other: build a new Dual.",
)
def _(Dual):
    for description, f, value, derivative, rule, unary in _dual_rules():
        given = {"a": Text(f"Dual({_A}, {_B})")} | ({} if unary else {"c": Text(f"Dual({_C}, {_D})")})
        _expect_dual(f(Dual(_A, _B), Dual(_C, _D)), description, given, (value, derivative), rule, unary)
    for description, f, x, value, derivative in _dual_cases():
        given = {"f(x)": Text(description), "x": Text(f"Dual({x}, 1.0)")}
        dual_x = Dual(x, 1.0)
        got = f(dual_x)
        if not same_value((dual_x.value, dual_x.derivative), (x, 1.0)):
            raise CheckFailure(f"computing {description} changed x: return new Duals, never modify self",
                               input=given, got=Text(f"x = Dual({dual_x.value}, {dual_x.derivative}) afterwards"))
        _expect_dual(got, description, given, (value, derivative))
    return (f"{len(_dual_rules())} rules with an incoming derivative and {len(_dual_cases())} functions: products, "
            "quotients, powers, exp, log, sin and their compositions")


# ---------------------------------------------------------------------------------------------- graphs


@dataclass
class _Graph:
    """A small float64 graph to differentiate: ``y`` (a scalar), the inputs ``xs``, their values."""

    description: str
    y: Node
    xs: list
    feed: dict

    def shown(self):
        """The input of a failure report: the graph's formula and its inputs' values."""
        return {"graph": Text(self.description), **{x.name: self.feed[x] for x in self.feed}}


def _inputs(rng, **shapes):
    """float64 placeholders named and shaped as given, with random values: ``(nodes, feed)``.

    A shape is a tuple, or ``((None, n), batch)`` for an unknown batch size fed with ``batch`` rows."""
    nodes, feed = [], {}
    for name, shape in shapes.items():
        if shape and isinstance(shape[0], tuple):
            declared, batch = shape
            fed = (batch, *declared[1:])
        else:
            declared = fed = shape
        node = placeholder(name, shape=declared, dtype="float64")
        nodes.append(node)
        feed[node] = rng.normal(size=fed)
    return nodes, feed


def _numerical(graph, x):
    """Central differences of ``graph.y`` with respect to the fed value of ``x``."""
    sess = Session()
    return gradcheck.numerical_gradient(lambda value: sess.run(graph.y, {**graph.feed, x: value}), graph.feed[x])


def _expect_gradient_nodes(grads, nodes, who, allow_none=False):
    """``grads`` must be a list or tuple with one node per entry of ``nodes``, each shaped like it."""
    if grads is None:
        raise CheckFailure(f"{who} returned None: return a list with one gradient node per input "
                           "(does your function end with a return statement?)")
    if not isinstance(grads, (list, tuple)):
        raise CheckFailure(f"{who} returned a {type(grads).__name__}: return a list with one gradient node "
                           "per input")
    if len(grads) != len(nodes):
        raise CheckFailure(f"{who} returned {len(grads)} gradients for {len(nodes)} inputs "
                           f"({', '.join(describe(x) for x in nodes)})")
    for x, grad in zip(nodes, grads):
        if grad is None and allow_none:
            continue
        if grad is None:
            raise CheckFailure(f"{who} returned None for {describe(x)}: for an x that y does not depend on, "
                               "return mg.zeros_like(x)")
        if not isinstance(grad, Node):
            raise CheckFailure(
                f"{who} returned an object of type {type(grad).__name__} for {describe(x)}. Gradients are "
                "nodes: they are built with mg ops (on node.inputs, output_grad, the node itself) while the "
                "graph is built, before any value exists")
        if not shapes_compatible(grad.shape, x.shape):
            raise CheckFailure(
                f"{who} returned a gradient of shape {format_shape(grad.shape)} for {describe(x)}: a gradient "
                "has the shape of what it is the gradient of (where broadcasting enlarged an input, sum the "
                "gradient back to the input's shape with mg.sum_to(grad, input))")


def _validated(rule, op_name):
    """The learner's gradient rule, its result checked before minigraph uses it."""

    def validated(node, output_grad):
        grads = rule(node, output_grad)
        _expect_gradient_nodes(grads, node.inputs, f"your gradient rule of {op_name}", allow_none=True)
        return grads

    return validated


def _expect_gradients(graph, grads, references=None):
    """Run ``grads`` (one per ``graph.xs``) and compare each with central differences (or a reference)."""
    values = Session().run(list(grads), graph.feed)
    for index, (x, got) in enumerate(zip(graph.xs, values)):
        expected = references[index] if references is not None else _numerical(graph, x)
        expect_close(got, expected, input=graph.shown(), rtol=GRADIENT_RTOL, atol=GRADIENT_ATOL,
                     what=f"the gradient of y w.r.t. {x.name}")


def _check_rule(op_type, rule, graphs):
    checked = _validated(rule, op_type.name)
    for graph in graphs:
        with autodiff.gradient_override({op_type: checked}):
            grads = autodiff.gradients(graph.y, graph.xs)
        _expect_gradients(graph, grads)


# ---------------------------------------------------------------------------------------------- 3.3


def _mul_graphs():
    rng = np.random.default_rng(3)
    graphs = []
    for description, shapes in [
        ("y = sum(tanh(a * b)), same shapes", {"a": (2, 3), "b": (2, 3)}),
        ("y = sum(tanh(a * b)), b broadcast over the rows of a", {"a": (4, 3), "b": (3,)}),
        ("y = sum(tanh(a * b)), a with an unknown batch size", {"a": ((None, 3), 5), "b": (3,)}),
        ("y = sum(tanh(a * b)), a column times a row", {"a": (4, 1), "b": (1, 5)}),
        ("y = sum(tanh(a * b)), a scalar times a matrix", {"a": (), "b": (2, 3)}),
    ]:
        (a, b), feed = _inputs(rng, **shapes)
        graphs.append(_Graph(description, ops.reduce_sum(ops.tanh(a * b)), [a, b], feed))
    (a,), feed = _inputs(rng, a=(3,))
    graphs.append(_Graph("y = sum(tanh(a * a)), a node used twice", ops.reduce_sum(ops.tanh(a * a)), [a], feed))
    return graphs


@exercise(
    "3.3",
    "the gradient rule of mul",
    expects="mul_gradient(node, output_grad)",
    nudge="Each input's partial adjoint is the adjoint times the other input, summed back to the input's own "
    "shape where broadcasting enlarged it.",
    hint="For c = a * b, dc/da = b and dc/db = a elementwise, so the partial adjoints are output_grad * b for a "
    "and output_grad * a for b. When a was broadcast (a scalar, a row), its adjoint must be summed over the "
    "broadcast axes back to a's shape: mg.sum_to(node_to_sum, a) does that for whatever shape a has at run "
    "time. Return a list of two nodes.",
    unavailable=[ops.Mul.gradient, autodiff.gradient_rule],
)
def _(mul_gradient):
    graphs = _mul_graphs()
    _check_rule(ops.Mul, mul_gradient, graphs)
    return f"{len(graphs)} graphs: same shapes, broadcasting (rows, an unknown batch, outer product, scalar), a * a"


# ---------------------------------------------------------------------------------------------- 3.4


def _matmul_graphs():
    rng = np.random.default_rng(4)
    graphs = []
    (a, b), feed = _inputs(rng, a=(3, 4), b=(4, 2))
    graphs.append(_Graph("y = sum(tanh(a @ b))", ops.reduce_sum(ops.tanh(a @ b)), [a, b], feed))
    (x, w), feed = _inputs(rng, x=((None, 5), 6), w=(5, 3))
    graphs.append(_Graph("y = sum(tanh(x @ w)), x with an unknown batch size", ops.reduce_sum(ops.tanh(x @ w)),
                         [x, w], feed))
    (a, b), feed = _inputs(rng, a=(4, 3), b=(4, 2))
    graphs.append(_Graph("y = sum(tanh(a.T @ b))", ops.reduce_sum(ops.tanh(a.T @ b)), [a, b], feed))
    (a, b), feed = _inputs(rng, a=(2, 3), b=(5, 3))
    graphs.append(_Graph("y = sum(tanh(a @ b.T))", ops.reduce_sum(ops.tanh(a @ b.T)), [a, b], feed))
    (a,), feed = _inputs(rng, a=(3, 3))
    graphs.append(_Graph("y = sum(tanh(a @ a)), a node used twice", ops.reduce_sum(ops.tanh(a @ a)), [a], feed))
    (a, b, c), feed = _inputs(rng, a=(2, 3), b=(3, 4), c=(4, 1))
    graphs.append(_Graph("y = sum(tanh((a @ b) @ c))", ops.reduce_sum(ops.tanh((a @ b) @ c)), [a, b, c], feed))
    return graphs


@exercise(
    "3.4",
    "the gradient rule of matmul",
    expects="matmul_gradient(node, output_grad)",
    nudge="Each adjoint is a matrix product of the output's adjoint with the other input, one of them "
    "transposed; match the shapes.",
    hint="For C = A B (n×k times k×m) with adjoint G (n×m): the adjoint of A is G Bᵀ (n×k) and that of B is "
    "Aᵀ G (k×m). Node.T transposes a node, and mg.matmul has transpose_a= and transpose_b= arguments. If "
    "your shapes do not fit, write them down: an adjoint has the shape of its input.",
    unavailable=[ops.MatMul.gradient, autodiff.gradient_rule],
)
def _(matmul_gradient):
    graphs = _matmul_graphs()
    _check_rule(ops.MatMul, matmul_gradient, graphs)
    return f"{len(graphs)} graphs, including an unknown batch size, transposed inputs, a @ a and a chain"


# ---------------------------------------------------------------------------------------------- 3.5


def _soft_labels(rng, shape):
    """Rows of probabilities (positive, summing to 1)."""
    e = np.exp(rng.normal(size=shape))
    return e / e.sum(axis=-1, keepdims=True)


def _cross_entropy_graph(description, rng, shape, labels, unknown_batch=False, scale=1.0):
    """y = sum(w * softmax_cross_entropy(z, t)) with per-example weights w, so that the adjoint of the
    per-example losses is uneven; ``unknown_batch`` declares the first axis as None."""
    declared = (None, *shape[1:]) if unknown_batch else shape
    z = placeholder("z", shape=declared, dtype="float64")
    t = placeholder("t", shape=declared, dtype="float64")
    weights = rng.uniform(0.5, 1.5, size=shape[:-1])
    y = ops.reduce_sum(ops.softmax_cross_entropy(z, t) * weights)
    return _Graph(description, y, [z, t], {z: scale * rng.normal(size=shape), t: labels}), weights


def _expect_not_the_shortcut(graph, weights, got_logits_grad):
    """Recognise softmax(z) - t, which is the gradient only when each row of t sums to 1."""
    z, t = (graph.feed[node] for node in graph.xs)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    shortcut = (p - t) * np.expand_dims(weights, -1)
    if np.allclose(got_logits_grad, shortcut, rtol=1e-6) and not np.allclose(t.sum(axis=-1), 1):
        raise CheckFailure(
            "your gradient w.r.t. the logits is (softmax(z) - t) * output_grad, which is right only when every "
            "row of t sums to 1; here the rows sum to " + np.array2string(t.sum(axis=-1), precision=3)
            + ". Differentiate -sum_c t_c log softmax(z)_c again: the softmax term is multiplied by sum_c t_c",
            input=graph.shown(), got=got_logits_grad)


@exercise(
    "3.5",
    "the gradient rule of softmax cross-entropy",
    expects="softmax_cross_entropy_gradient(node, output_grad)",
    nudge="Differentiate l = -sum_c t_c z_c + (sum_c t_c) log sum_j exp(z_j) with respect to z and to t, and "
    "give output_grad (one number per example) a class axis.",
    hint="With s = sum_c t_c (one per example), dl/dz = s · softmax(z) - t — which is softmax(z) - t only "
    "when the labels of a row sum to 1 — and dl/dt = -log_softmax(z). output_grad has one entry per example: "
    "mg.expand_dims(output_grad, -1) adds the class axis, so that it broadcasts; multiply both by it. "
    "mg.log_softmax and mg.softmax are stable for large logits.",
    unavailable=[ops.SoftmaxCrossEntropy.gradient, autodiff.gradient_rule],
)
def _(softmax_cross_entropy_gradient):
    rng = np.random.default_rng(5)
    cases = [
        _cross_entropy_graph("one-hot labels", rng, (4, 5), np.eye(5)[[2, 0, 4, 2]]),
        _cross_entropy_graph("soft labels (each row sums to 1)", rng, (3, 4), _soft_labels(rng, (3, 4))),
        _cross_entropy_graph("labels whose rows do not sum to 1", rng, (3, 4), rng.uniform(0.0, 1.0, (3, 4))),
        _cross_entropy_graph("an unknown batch size", rng, (3, 6), _soft_labels(rng, (3, 6)), unknown_batch=True),
        _cross_entropy_graph("a single example: z and t of shape (5,)", rng, (5,), _soft_labels(rng, (5,))),
    ]
    checked = _validated(softmax_cross_entropy_gradient, "softmax_cross_entropy")
    for graph, weights in cases:
        with autodiff.gradient_override({ops.SoftmaxCrossEntropy: checked}):
            grads = autodiff.gradients(graph.y, graph.xs)
        _expect_not_the_shortcut(graph, weights, Session().run(grads[0], graph.feed))
        _expect_gradients(graph, grads)
    graph, _ = _cross_entropy_graph("logits of magnitude ~1000: the softmax must be computed stably", rng, (3, 4),
                                    _soft_labels(rng, (3, 4)), scale=1000.0)
    references = Session().run(autodiff.gradients(graph.y, graph.xs), graph.feed)  # minigraph's own rule
    with autodiff.gradient_override({ops.SoftmaxCrossEntropy: checked}):
        grads = autodiff.gradients(graph.y, graph.xs)
    _expect_gradients(graph, grads, references)
    return f"{len(cases) + 1} cases: one-hot, soft and unnormalised labels, an unknown batch, one example, large logits"


# ---------------------------------------------------------------------------------------------- 3.6


def _reverse_mode_graphs(rng):
    """Graphs whose gradients are compared with central differences."""
    graphs = []
    (x,), feed = _inputs(rng, x=())
    feed[x] = np.array(3.0)
    graphs.append(_Graph("y = x * x + x: x is used three times, so its partial adjoints are summed", x * x + x,
                         [x], feed))
    (x, w, b), feed = _inputs(rng, x=((None, 4), 5), w=(4, 3), b=(3,))
    labels = placeholder("labels", shape=(None,), dtype="int64")
    feed[labels] = rng.integers(0, 3, size=5)
    y = ops.reduce_mean(ops.softmax_cross_entropy(x @ w + b, labels))
    graphs.append(_Graph("y = mean(softmax_cross_entropy(x @ w + b, labels)), b broadcast over the batch", y,
                         [w, b, x], feed))
    (x, w), feed = _inputs(rng, x=(3, 4), w=(4, 2))
    h = ops.tanh(x @ w)
    graphs.append(_Graph("h = tanh(x @ w); y = sum(h * h + sigmoid(h)), h used three times",
                         ops.reduce_sum(h * h + ops.sigmoid(h)), [w, x], feed))
    (a, c), feed = _inputs(rng, a=(2, 2), c=(3,))
    graphs.append(_Graph("y = sum(exp(a)); c, which y does not depend on", ops.reduce_sum(ops.exp(a)), [a, c], feed))
    return graphs


def _expect_reverse_mode(my_gradients, graph, references=None):
    grads = my_gradients(graph.y, list(graph.xs))
    _expect_gradient_nodes(grads, graph.xs, "my_gradients")
    _expect_gradients(graph, grads, references)


@exercise(
    "3.6",
    "reverse-mode automatic differentiation",
    expects="my_gradients(y, xs)",
    nudge="Visit the nodes from y back to the inputs (reverse topological order), summing all the partial "
    "adjoints a node receives before passing its adjoint on.",
    hint="Keep a dict node -> list of partial adjoints, starting with y's own: mg.ones_like(y). Walk "
    "reversed(mg.topological_sort([y])), skipping nodes with no partial adjoints. A node's adjoint is the "
    "sum of its list; mg.gradient_rule(node.op)(node, adjoint) turns it into one partial adjoint per input "
    "(None for an input without a gradient), to append to that input's list. For an x that y does not "
    "reach, the gradient is mg.zeros_like(x).",
    unavailable=[autodiff.gradients, tf.gradients],
)
def _(my_gradients):
    rng = np.random.default_rng(6)
    graphs = _reverse_mode_graphs(rng)
    for graph in graphs:
        _expect_reverse_mode(my_gradients, graph)
    (a, b), feed = _inputs(rng, a=(2, 3), b=(2, 3))
    h = a * b
    graph = _Graph("h = a * b; y = sum(tanh(h)), differentiated w.r.t. the intermediate node h and a",
                   ops.reduce_sum(ops.tanh(h)), [h, a], feed)
    references = Session().run(autodiff.gradients(graph.y, graph.xs), feed)  # minigraph's own reverse mode
    _expect_reverse_mode(my_gradients, graph, references)
    (x, v), feed = _inputs(rng, x=(3,), v=(3,))
    gradient = my_gradients(ops.reduce_sum(x**3), [x])
    _expect_gradient_nodes(gradient, [x], "my_gradients")
    graph = _Graph("y = sum(gx * v) with gx = my_gradients(sum(x ** 3), [x])[0]: a gradient of a gradient",
                   ops.reduce_sum(gradient[0] * v), [x], feed)
    _expect_reverse_mode(my_gradients, graph, [6 * feed[x] * feed[v]])
    return Passed(f"{len(graphs) + 2} graphs: a node used twice, broadcasting, an unused input, an intermediate "
                  "node, a gradient of a gradient", value=_drawing_of(my_gradients))


def _drawing_of(my_gradients):
    """y = x * x + x and the gradient graph the learner's function builds for it, drawn together."""
    x = placeholder("x", shape=())
    y = x * x + x
    with role_scope("gradient"):
        (dy_dx,) = my_gradients(y, [x])
    return draw([y, dy_dx], rankdir="LR")


# ---------------------------------------------------------------------------------------------- 3.7

EPOCH_STEPS, BATCH_SIZE, RECORD_EVERY, ACCURACY_FLOOR = 600, 100, 50, 0.90


def _expect_model(built):
    """``(x, labels, logits, loss, train_step)``, each a node of the expected kind and shape."""
    names = "(x, y, logits, loss, train_step)"
    if not isinstance(built, (tuple, list)) or len(built) != 5:
        raise CheckFailure(f"softmax_regression should return the five nodes {names}", got=built)
    for name, node in zip(names.strip("()").split(", "), built):
        if not isinstance(node, Node):
            raise CheckFailure(f"softmax_regression returned a {type(node).__name__} as {name}; expected a node",
                               got=built)
    x, labels, logits, loss, _ = built
    requirements = [
        (isinstance(x, Placeholder) and shapes_compatible(x.shape, (None, 784)),
         f"x should be a placeholder of shape (None, 784), got {x!r}"),
        (isinstance(labels, Placeholder) and labels.dtype.kind in "iu" and shapes_compatible(labels.shape, (None,)),
         f"y should be an int64 placeholder of shape (None,) for the labels, got {labels!r}"),
        (shapes_compatible(logits.shape, (None, 10)), f"logits should have shape (None, 10), got {logits!r}"),
        (loss.shape == (), f"loss should be a scalar (the mean over the batch), got {loss!r}"),
    ]
    for fine, problem in requirements:
        if not fine:
            raise CheckFailure(problem)
    return built


def _expect_mean_loss(loss, x, labels, images, digits):
    """At W = 0 and b = 0 every class has probability 1/10: the mean loss is ln 10, whatever the batch."""
    given = {"batch": Text(f"the first {BATCH_SIZE} MNIST training images, before any training step")}
    start = _run(Session(), loss, {x: images[:BATCH_SIZE], labels: digits[:BATCH_SIZE]})
    if is_close(start, BATCH_SIZE * np.log(10), rtol=1e-4):
        raise CheckFailure(f"the loss is the sum of the cross-entropies of the batch, {BATCH_SIZE} times the mean: "
                           "average it over the batch (mg.reduce_mean), so that the step size does not grow with "
                           "the batch size", input=given, expected=np.log(10), got=start)
    expect_close(start, np.log(10), input=given, rtol=1e-4,
                 what="the loss before training (at W = 0 and b = 0 every class has probability 1/10)")


def _run(sess, fetches, feed):
    """``sess.run`` on the learner's graph; an error there is reported as a failure of their graph."""
    try:
        return sess.run(fetches, feed)
    except Exception as error:
        raise CheckFailure(f"running your graph raised {type(error).__name__}: {error}") from None


@exercise(
    "3.7",
    "MNIST trained with your own gradients",
    expects=("softmax_regression(gradients)", "my_gradients(y, xs)"),
    nudge="Build chapter 02's model as a graph, with the mean loss over the batch, and give the function you "
    "receive to the optimizer, which then differentiates with it.",
    hint="Placeholders x (None, 784) and y (None,) of dtype int64; Variables W (784, 10) and b (10,) of "
    "float32 zeros; logits = x @ W + b; the loss is the batch mean of mg.softmax_cross_entropy(logits, y). "
    "mg.optim.SGD takes the learning rate (0.5) and gradients=, the function used to differentiate; its "
    "minimize(loss) is the training step.",
    unavailable=[autodiff.gradients, tf.gradients],
    time_limit=90,
)
def _(softmax_regression, gradients):
    from ..datasets import batches

    calls = []

    def counted_gradients(y, xs):
        calls.append(y)
        return gradients(y, xs)

    x, labels, logits, loss, train_step = _expect_model(softmax_regression(counted_gradients))
    if not calls:
        raise CheckFailure("softmax_regression did not call the gradients function it was given: pass it on, "
                           "as in mg.optim.SGD(0.5, gradients=gradients).minimize(loss)")
    accuracy = ops.reduce_mean(ops.cast(ops.equal(ops.argmax(logits, axis=1), labels), "float32"))
    data = mnist_splits()
    _expect_mean_loss(loss, x, labels, *data["train"])
    history = {"step": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    sess = Session()
    for step, (images, digits) in enumerate(batches(*data["train"], BATCH_SIZE, np.random.default_rng(0)), 1):
        _run(sess, train_step, {x: images, labels: digits})
        if step % RECORD_EVERY == 0:
            history["step"].append(step)
            record(history, lambda images, digits: _run(sess, [loss, accuracy], {x: images, labels: digits}), data)
    final = history["test_acc"][-1]
    if not final >= ACCURACY_FLOOR:
        raise CheckFailure(
            f"after one epoch ({EPOCH_STEPS} steps) the test accuracy is {final:.4f}; softmax regression trained "
            f"with correct gradients reaches more than {ACCURACY_FLOOR}. Below: the test accuracy every "
            f"{RECORD_EVERY} steps",
            got=[round(value, 4) for value in history["test_acc"]])
    return Passed(f"one epoch ({EPOCH_STEPS} minibatches of {BATCH_SIZE}) with your gradients: test accuracy "
                  f"{final:.2f}", value=history)
