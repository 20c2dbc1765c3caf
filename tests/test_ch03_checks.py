"""The checks of chapter 03: right answers pass, and each typical mistake gets a report that names it.

The MNIST training of exercise 3.7 runs in the solution notebook (nbval); here only its failures that come
before any training.
"""

import functools
import operator

import numpy as np
import pytest

import minigraph as mg
import minigraph.tf as tf
from minigraph.checks.ch03 import _forward_differences as forward_gradient  # the one-sided mistake


def central_gradient(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        above = f(x)
        x[index] = saved - eps
        below = f(x)
        x[index] = saved
        grad[index] = (above - below) / (2 * eps)
    return grad


def gradient_without_float_copy(f, x, eps=1e-6):
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        above = f(x)
        x[index] = saved - eps
        below = f(x)
        x[index] = saved
        grad[index] = (above - below) / (2 * eps)
    return grad


def gradient_leaving_x_perturbed(f, x, eps=1e-6):
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        above = f(x)
        x[index] = saved - eps
        grad[index] = (above - f(x)) / (2 * eps)
    return grad


class Dual:
    def __init__(self, value, derivative=0.0):
        self.value, self.derivative = value, derivative

    @staticmethod
    def lift(other):
        return other if isinstance(other, Dual) else Dual(other)

    def __add__(self, other):
        other = Dual.lift(other)
        return type(self)(self.value + other.value, self.derivative + other.derivative)

    def __neg__(self):
        return type(self)(-self.value, -self.derivative)

    def __sub__(self, other):
        return self + -Dual.lift(other)

    def __rsub__(self, other):
        return Dual.lift(other) - self

    def __mul__(self, other):
        other = Dual.lift(other)
        return type(self)(self.value * other.value, self.value * other.derivative + self.derivative * other.value)

    def __truediv__(self, other):
        other = Dual.lift(other)
        return type(self)(self.value / other.value,
                          (self.derivative * other.value - self.value * other.derivative) / other.value**2)

    def __rtruediv__(self, other):
        return Dual.lift(other) / self

    def __pow__(self, exponent):
        return type(self)(self.value**exponent, exponent * self.value ** (exponent - 1) * self.derivative)

    def exp(self):
        return type(self)(np.exp(self.value), np.exp(self.value) * self.derivative)

    def log(self):
        return type(self)(np.log(self.value), self.derivative / self.value)

    def sin(self):
        return type(self)(np.sin(self.value), np.cos(self.value) * self.derivative)

    __radd__ = __add__
    __rmul__ = __mul__


class DualWithWrongSin(Dual):
    def sin(self):
        return DualWithWrongSin(np.sin(self.value), -np.cos(self.value) * self.derivative)

    def __mul__(self, other):
        result = Dual.__mul__(self, other)
        return DualWithWrongSin(result.value, result.derivative)

    __rmul__ = __mul__


class DualPowerWithoutChainRule(Dual):
    def __pow__(self, exponent):
        return type(self)(self.value**exponent, exponent * self.value ** (exponent - 1))


class DualExpWithoutChainRule(Dual):
    def exp(self):
        return type(self)(np.exp(self.value), np.exp(self.value))


class DualMultiplyingInPlace(Dual):
    def __mul__(self, other):
        other = Dual.lift(other)
        self.derivative = self.value * other.derivative + self.derivative * other.value
        self.value = self.value * other.value
        return self


def mul_gradient(node, output_grad):
    a, b = node.inputs
    return [mg.sum_to(output_grad * b, a), mg.sum_to(output_grad * a, b)]


def mul_gradient_without_sum_to(node, output_grad):
    a, b = node.inputs
    return [output_grad * b, output_grad * a]


def mul_gradient_swapped(node, output_grad):
    a, b = node.inputs
    return [mg.sum_to(output_grad * a, a), mg.sum_to(output_grad * b, b)]


def mul_gradient_as_one_node(node, output_grad):
    a, b = node.inputs
    return mg.sum_to(output_grad * b, a)


def matmul_gradient(node, output_grad):
    a, b = node.inputs
    return [output_grad @ b.T, a.T @ output_grad]


def matmul_gradient_transposed(node, output_grad):
    a, b = node.inputs
    return [output_grad @ b.T, output_grad.T @ a]


def matmul_gradient_without_transposes(node, output_grad):
    a, b = node.inputs
    return [output_grad @ b, a @ output_grad]


def cross_entropy_gradient(node, output_grad):
    z, t = node.inputs
    g = mg.expand_dims(output_grad, -1)
    return [(mg.softmax(z) * mg.reduce_sum(t, -1, keepdims=True) - t) * g, -mg.log_softmax(z) * g]


def cross_entropy_gradient_prediction_minus_truth(node, output_grad):
    z, t = node.inputs
    g = mg.expand_dims(output_grad, -1)
    return [(mg.softmax(z) - t) * g, -mg.log_softmax(z) * g]


def cross_entropy_gradient_without_labels(node, output_grad):
    z, t = node.inputs
    g = mg.expand_dims(output_grad, -1)
    return [(mg.softmax(z) * mg.reduce_sum(t, -1, keepdims=True) - t) * g, None]


def cross_entropy_gradient_with_unstable_softmax(node, output_grad):
    z, t = node.inputs
    g = mg.expand_dims(output_grad, -1)
    p = mg.exp(z) / mg.reduce_sum(mg.exp(z), -1, keepdims=True)
    return [(p * mg.reduce_sum(t, -1, keepdims=True) - t) * g, -mg.log_softmax(z) * g]


def reverse_mode(y, xs):
    partials, adjoints = {y: [mg.ones_like(y)]}, {}
    for node in reversed(mg.topological_sort([y])):
        if node in partials:
            adjoints[node] = functools.reduce(operator.add, partials.pop(node))
            for x, grad in zip(node.inputs, mg.gradient_rule(node.op)(node, adjoints[node])):
                if grad is not None:
                    partials.setdefault(x, []).append(grad)
    return [adjoints[x] if x in adjoints else mg.zeros_like(x) for x in xs]


def reverse_mode_overwriting_partials(y, xs):
    adjoints = {y: mg.ones_like(y)}
    for node in reversed(mg.topological_sort([y])):
        if node in adjoints:
            for x, grad in zip(node.inputs, mg.gradient_rule(node.op)(node, adjoints[node])):
                if grad is not None:
                    adjoints[x] = grad
    return [adjoints.get(x, mg.zeros_like(x)) for x in xs]


def reverse_mode_in_forward_order(y, xs):
    partials = {y: [mg.ones_like(y)]}
    for node in mg.topological_sort([y]):
        if node in partials:
            adjoint = functools.reduce(operator.add, partials[node])
            for x, grad in zip(node.inputs, mg.gradient_rule(node.op)(node, adjoint)):
                if grad is not None:
                    partials.setdefault(x, []).append(grad)
    return [functools.reduce(operator.add, partials[x]) if x in partials else mg.zeros_like(x) for x in xs]


def reverse_mode_with_none_for_unreached(y, xs):
    grads = reverse_mode(y, xs)
    reached = set(mg.topological_sort([y]))
    return [grad if x in reached else None for x, grad in zip(xs, grads)]


def softmax_regression(gradients):
    x = mg.placeholder("x", shape=(None, 784))
    y = mg.placeholder("y", shape=(None,), dtype="int64")
    W = mg.Variable(np.zeros((784, 10), np.float32), name="W")
    b = mg.Variable(np.zeros(10, np.float32), name="b")
    logits = x @ W + b
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
    return x, y, logits, loss, mg.optim.SGD(0.5, gradients=gradients).minimize(loss)


def model_ignoring_its_gradients(gradients):
    x = mg.placeholder("x", shape=(None, 784))
    y = mg.placeholder("y", shape=(None,), dtype="int64")
    W = mg.Variable(np.zeros((784, 10), np.float32), name="W")
    logits = x @ W
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
    return x, y, logits, loss, mg.optim.SGD(0.5).minimize(loss)


def model_with_float_labels(gradients):
    x = mg.placeholder("x", shape=(None, 784))
    y = mg.placeholder("y", shape=(None, 10))
    W = mg.Variable(np.zeros((784, 10), np.float32), name="W")
    logits = x @ W
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
    return x, y, logits, loss, mg.optim.SGD(0.5, gradients=gradients).minimize(loss)


def model_with_a_summed_loss(gradients):
    x = mg.placeholder("x", shape=(None, 784))
    y = mg.placeholder("y", shape=(None,), dtype="int64")
    W = mg.Variable(np.zeros((784, 10), np.float32), name="W")
    b = mg.Variable(np.zeros(10, np.float32), name="b")
    logits = x @ W + b
    loss = mg.reduce_sum(mg.softmax_cross_entropy(logits, y))
    return x, y, logits, loss, mg.optim.SGD(0.5, gradients=gradients).minimize(loss)


def unfinished(*args):
    raise NotImplementedError("Exercise 3.6")


@pytest.mark.parametrize("exercise, answer", [
    ("3.1", central_gradient),
    ("3.2", Dual),
    ("3.3", mul_gradient),
    ("3.4", matmul_gradient),
    ("3.5", cross_entropy_gradient),
    ("3.6", reverse_mode),
])
def test_a_right_answer_passes(run_check, exercise, answer):
    result, report = run_check(exercise, answer)
    assert result and report.startswith(f"✓ Exercise {exercise}"), report


def test_the_reverse_mode_check_hands_back_a_drawing_of_the_learners_gradient_graph(capsys):
    drawing = mg.checks.check("3.6", reverse_mode).value
    assert isinstance(drawing, mg.viz.Drawing)
    assert "gradients" in drawing.source and "ones_like" in drawing.source


@pytest.mark.parametrize("exercise, answer, message", [
    ("3.1", forward_gradient, "this is the one-sided difference"),
    ("3.1", gradient_without_float_copy, "wrong for an integer x"),
    ("3.1", gradient_leaving_x_perturbed, "your function changed the caller's x"),
    ("3.2", DualWithWrongSin, "the derivative of np.sin(a) is wrong; the rule is sin(a + bε) = sin(a) + cos(a) b ε"),
    ("3.2", DualPowerWithoutChainRule, "the derivative of a ** 3 is wrong; the rule is (a + bε)^p = a^p + p a^(p-1) b "
                                       "ε. Yours lacks the factor b = 3, the derivative that a carries in"),
    ("3.2", DualExpWithoutChainRule, "the derivative of np.exp(a) is wrong; the rule is exp(a + bε) = exp(a) + exp(a) "
                                     "b ε. Yours lacks the factor b = 3"),
    ("3.2", DualMultiplyingInPlace, "computing x * x changed x"),
    ("3.3", mul_gradient_without_sum_to, "returned a gradient of shape (4, 3) for 'b' (3,)"),
    ("3.3", mul_gradient_swapped, "the gradient of y w.r.t. a differs"),
    ("3.3", mul_gradient_as_one_node, "returned a Node: return a list"),
    ("3.4", matmul_gradient_transposed, "returned a gradient of shape (2, 4) for 'b' (4, 2)"),
    ("3.4", matmul_gradient_without_transposes, "your code raised ShapeError"),
    ("3.5", cross_entropy_gradient_prediction_minus_truth, "right only when every row of t sums to 1"),
    ("3.5", cross_entropy_gradient_without_labels, "the gradient of y w.r.t. t differs"),
    ("3.5", cross_entropy_gradient_with_unstable_softmax, "logits of magnitude ~1000"),
    ("3.6", reverse_mode_overwriting_partials, "the gradient of y w.r.t. x is 3, expected 7"),
    ("3.6", reverse_mode_in_forward_order, "the gradient of y w.r.t. x is 1, expected 7"),
    ("3.6", reverse_mode_with_none_for_unreached, "return mg.zeros_like(x)"),
])
def test_a_typical_mistake_is_named(run_check, exercise, answer, message):
    result, report = run_check(exercise, answer)
    assert not result and result.status == "failed"
    assert message in report, report
    assert "hint:" in report


@pytest.mark.parametrize("answer, composite", [
    (DualPowerWithoutChainRule, "the derivative of (2 * x + 1) ** 3 is wrong"),
    (DualExpWithoutChainRule, "the derivative of np.exp(x * x) is wrong"),
])
def test_compositions_catch_a_missing_chain_factor_too(run_check, monkeypatch, answer, composite):
    monkeypatch.setattr(mg.checks.ch03, "_dual_rules", lambda: [])  # the functions of x alone
    result, report = run_check("3.2", answer)
    assert not result and composite in report, report


def test_the_input_shown_is_the_callers_x_as_it_was(run_check):
    _, report = run_check("3.1", gradient_leaving_x_perturbed)
    assert "input x: [1. 2.]" in report and "input x after your call: [0.99 1.99]" in report


@pytest.mark.parametrize("exercise, answer, name", [
    ("3.1", mg.gradcheck.numerical_gradient, "mg.gradcheck.numerical_gradient"),
    ("3.1", lambda f, x, eps=1e-6: mg.gradcheck.numerical_gradient(f, x, eps), "mg.gradcheck.numerical_gradient"),
    ("3.3", lambda node, output_grad: node.op.gradient(node, output_grad), "mg.ops.Mul.gradient"),
    ("3.3", lambda node, output_grad: mg.gradient_rule(node.op)(node, output_grad), "mg.gradient_rule"),
    ("3.4", lambda node, output_grad: type(node.op).gradient(node.op, node, output_grad), "mg.ops.MatMul.gradient"),
    ("3.6", mg.gradients, "mg.gradients"),
    ("3.6", lambda y, xs: mg.gradients(y, xs), "mg.gradients"),
    ("3.6", lambda y, xs: tf.gradients(y, xs), "mg.tf.gradients"),
])
def test_the_packages_own_implementation_does_not_pass(run_check, exercise, answer, name):
    result, report = run_check(exercise, answer)
    assert not result and f"{name}" in report and "minigraph's own version of what this exercise asks you to write" in report


@pytest.mark.parametrize("model, message", [
    (model_ignoring_its_gradients, "did not call the gradients function it was given"),
    (model_with_float_labels, "y should be an int64 placeholder"),
    (model_with_a_summed_loss, "the loss is the sum of the cross-entropies of the batch, 100 times the mean"),
])
def test_the_mnist_check_names_a_model_that_cannot_be_trained_as_asked(run_check, model, message):
    result, report = run_check("3.7", model, reverse_mode)
    assert not result and message in report, report


def test_the_mnist_check_refuses_the_packages_gradients(run_check):
    result, report = run_check("3.7", softmax_regression, mg.gradients)
    assert not result and "you passed mg.gradients itself" in report


def test_the_mnist_check_waits_for_the_reverse_mode_exercise(run_check):
    result, report = run_check("3.7", softmax_regression, unfinished)
    assert result.status == "not implemented"
    assert "it needs exercise 3.6 first" in report
