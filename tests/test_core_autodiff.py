"""Reverse and forward mode: exact small cases, higher derivatives, the gradient-rule extension points,
the leanness of gradient graphs, and the gradient checker."""

import numpy as np
import pytest

import minigraph as mg
from minigraph.gradcheck import check_gradients, numerical_gradient


def run(fetches, feed=None):
    return mg.Session().run(fetches, feed)


def test_partial_adjoints_are_summed():
    x = mg.placeholder("x", (), "float64")
    y = x * x + 3.0 * x  # x is used three times
    assert run(mg.gradients(y, x), {x: 2.0}) == 7.0


def test_matmul_and_bias_gradients_match_the_formulas():
    rng = np.random.default_rng(0)
    x_value, W_value = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    x = mg.placeholder("x", (None, 3), "float64")
    W, b = mg.Variable(W_value), mg.Variable(np.zeros(2))
    upstream = rng.standard_normal((4, 2))
    gx, gW, gb = run(mg.gradients(x @ W + b, [x, W, b], grad_y=mg.constant(upstream)), {x: x_value})
    assert np.allclose(gx, upstream @ W_value.T) and np.allclose(gW, x_value.T @ upstream)
    assert np.allclose(gb, upstream.sum(axis=0))


def test_non_scalar_y_gives_the_gradient_of_its_sum():
    x = mg.placeholder("x", (3,), "float64")
    assert np.array_equal(run(mg.gradients(x * x, x), {x: np.array([1.0, 2.0, 3.0])}), [2.0, 4.0, 6.0])


def test_softmax_cross_entropy_gradient_is_softmax_minus_one_hot():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    z = mg.placeholder("z", (None, 3), "float64")
    loss = mg.reduce_mean(mg.softmax_cross_entropy(z, mg.constant(np.array([2, 0]))))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = (p - np.eye(3)[[2, 0]]) / 2
    assert np.allclose(run(mg.gradients(loss, z), {z: logits}), expected)


def test_unconnected_inputs_get_zeros_and_integer_outputs_are_refused():
    x, u = mg.placeholder("x", (2,), "float64"), mg.placeholder("u", (2,), "float64")
    assert np.array_equal(run(mg.gradients(x * 2.0, [u])[0], {u: np.ones(2)}), [0.0, 0.0])
    with pytest.raises(TypeError, match="only floating-point values have gradients"):
        mg.gradients(mg.argmax(x), [x])


def test_hessian_vector_product():
    """For f(x) = sum(x³), H = diag(6x), so H v = 6 x v."""
    x = mg.placeholder("x", (3,), "float64")
    v = mg.constant(np.array([1.0, -1.0, 2.0]))
    (g,) = mg.gradients(mg.reduce_sum(x**3), [x])
    (hvp,) = mg.gradients(g, [x], grad_y=v)
    assert np.allclose(run(hvp, {x: np.array([1.0, 2.0, 3.0])}), [6.0, -12.0, 36.0])


def test_hessian_vector_product_of_softmax_regression_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = mg.constant(rng.standard_normal((5, 4)))
    W = mg.Variable(rng.standard_normal((4, 3)) * 0.1)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(x @ W, mg.constant(rng.integers(0, 3, 5))))
    v = rng.standard_normal((4, 3))
    (g,) = mg.gradients(loss, [W])
    (hvp,) = mg.gradients(g, [W], grad_y=mg.constant(v))
    sess = mg.Session()
    eps = 1e-5
    sess.set_value(W, W.initial_value + eps * v)
    above = sess.run(g)
    sess.set_value(W, W.initial_value - eps * v)
    below = sess.run(g)
    sess.set_value(W, W.initial_value)
    assert np.allclose(sess.run(hvp), (above - below) / (2 * eps), atol=1e-8)


def test_jvp_refuses_what_it_cannot_differentiate():
    x = mg.placeholder("x", (3,))
    with pytest.raises(TypeError, match="jvp: expected nodes, got a ndarray"):
        mg.jvp(x * 2, [np.ones(3)], [np.ones(3)])
    with pytest.raises(TypeError, match="jvp: y .* has dtype int64; only floating-point"):
        mg.jvp(mg.cast(x, "int64"), x, np.ones(3))


def test_jvp_exact_and_through_an_op_without_a_tangent_rule():
    x = mg.placeholder("x", (3,), "float64")
    t = mg.constant(np.array([1.0, 0.5, -1.0]))
    value = np.array([1.0, 2.0, 3.0])
    assert np.allclose(run(mg.jvp(x**2, [x], [t]), {x: value}), 2 * value * [1.0, 0.5, -1.0])
    relu_grad_node = mg.ops.relu_grad(x * x, x)  # ReluGrad has a tangent rule; SoftmaxCrossEntropyGrad has none
    assert np.allclose(run(mg.jvp(relu_grad_node, x, t), {x: value}), 2 * value * [1.0, 0.5, -1.0])
    z = mg.placeholder("z", (2, 3), "float64")
    grad_node = mg.ops.softmax_cross_entropy_grad(z, mg.constant(np.array([0, 2])), mg.constant(np.ones(2)))
    tz = np.arange(6.0).reshape(2, 3) / 10
    forward = run(mg.jvp(grad_node, z, mg.constant(tz)), {z: np.ones((2, 3))})
    numerical = np.array([numerical_gradient(lambda zz: run(grad_node, {z: zz})[i, j], np.ones((2, 3))).ravel() @ tz.ravel()
                          for i in range(2) for j in range(3)]).reshape(2, 3)
    assert np.allclose(forward, numerical, atol=1e-8)


def test_gradient_and_tangent_nodes_are_marked():
    x = mg.placeholder("x", (2,), "float64")
    y = mg.reduce_sum(mg.exp(x))
    g = mg.gradients(y, x)
    assert y.role is None and g.role == "gradient"
    assert all(n.role == "gradient" for n in mg.topological_sort(g) if n not in mg.topological_sort(y) and n is not x)
    assert mg.jvp(y, x, mg.constant(np.ones(2))).role == "tangent"


def wrong_mul_rule(node, grad):
    a, b = node.inputs
    return [grad * b * 2.0, grad * a * 2.0]


def test_register_gradient_and_gradient_override_replace_rules():
    x = mg.placeholder("x", (), "float64")
    y = x * x
    assert run(mg.gradients(y, x), {x: 3.0}) == 6.0
    with mg.gradient_override({mg.ops.Mul: wrong_mul_rule}):
        assert run(mg.gradients(y, x), {x: 3.0}) == 12.0
        with mg.gradient_override({"Mul": lambda node, g: [g, g]}):
            assert run(mg.gradients(y, x), {x: 3.0}) == 2.0
    assert run(mg.gradients(y, x), {x: 3.0}) == 6.0
    mg.register_gradient("mul", wrong_mul_rule)
    try:
        assert mg.gradient_rule(y.op) is wrong_mul_rule and run(mg.gradients(y, x), {x: 3.0}) == 12.0
    finally:
        mg.register_gradient("mul", None)
    assert mg.gradient_rule(y.op) == y.op.gradient


def test_bad_gradient_rules_get_clear_errors():
    x = mg.placeholder("x", (2, 3), "float64")
    y = mg.reduce_sum(mg.exp(x))
    with mg.gradient_override({mg.ops.Exp: lambda node, g: [g, g]}):
        with pytest.raises(ValueError, match="the gradient rule of exp returned 2 gradients for 1 inputs"):
            mg.gradients(y, x)
    with mg.gradient_override({mg.ops.Exp: lambda node, g: [mg.transpose(g)]}):
        with pytest.raises(mg.ShapeError, match=r"returned .* \(3, 2\) for input 'x' \(2, 3\)"):
            mg.gradients(y, x)


def test_gradient_graph_of_an_mlp_is_lean():
    x = mg.placeholder("x", (None, 784))
    y = mg.placeholder("y", (None,), "int64")
    W1, b1 = mg.Variable(np.zeros((784, 256), np.float32)), mg.Variable(np.zeros(256, np.float32))
    W2, b2 = mg.Variable(np.zeros((256, 10), np.float32)), mg.Variable(np.zeros(10, np.float32))
    loss = mg.reduce_mean(mg.softmax_cross_entropy(mg.relu(x @ W1 + b1) @ W2 + b2, y))
    grads = mg.gradients(loss, [W1, b1, W2, b2])
    ops = [type(n.op).__name__ for n in mg.topological_sort(grads) if n.role == "gradient"]
    assert "Transpose" not in ops and ops.count("MatMul") == 3 and ops.count("ReluGrad") == 1
    assert ops.count("SoftmaxCrossEntropyGrad") == 1 and ops.count("SumTo") == 2 and len(ops) <= 12
    assert all(n.dtype == np.float32 for n in grads)


def test_numerical_gradient_and_check_gradients():
    assert np.allclose(numerical_gradient(lambda v: v**3, np.array([1.0, 2.0])), [3.0, 12.0])
    x = mg.placeholder("x", (3,), "float64")
    W = mg.Variable(np.array([0.5, -1.0, 2.0]))
    y = mg.reduce_sum(mg.tanh(x * W))
    errors = check_gradients(y, [x, W], {x: np.array([0.1, 0.2, 0.3])})
    assert len(errors) == 2 and max(errors) < 1e-8
    with mg.gradient_override({mg.ops.Tanh: lambda node, g: [g * 1.0]}):
        with pytest.raises(AssertionError, match=r"gradient of .* w.r.t. 'x' \(3,\) is wrong at index"):
            check_gradients(y, [x, W], {x: np.array([0.1, 0.2, 0.3])})


def test_check_gradients_refuses_float32_inputs_and_reports_plain_numbers():
    x32 = mg.placeholder("x32", (3,))
    with pytest.raises(TypeError, match=r"'x32' \(3,\) is float32; finite differences need float64"):
        check_gradients(mg.reduce_sum(x32 * x32), [x32], {x32: np.ones(3, np.float32)})
    x = mg.placeholder("x", (3,), "float64")
    with mg.gradient_override({mg.ops.Mul: lambda node, g: [g * node.inputs[1] * 2.0, g * node.inputs[0]]}):
        with pytest.raises(AssertionError, match=r"at index \(0,\): autodiff gives 3, finite differences 2 "):
            check_gradients(mg.reduce_sum(x * x), [x], {x: np.ones(3)})


def test_the_gradient_of_x_to_the_zero_is_zero_even_at_zero():
    x = mg.placeholder("x", (2,), "float64")
    (grad,) = mg.gradients(mg.reduce_sum(x ** 0), [x])
    assert mg.Session().run(grad, {x: np.array([0.0, 3.0])}).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("labels, dtype, fragment", [
    ([2], "int64", r"the integer labels 'labels' have shape \(1,\) at run time, but the logits 'logits' of shape \(2, 3\) need labels of shape \(2,\)"),
    ([[0], [2]], "int64", r"integer labels 'labels' have shape \(2, 1\)"),
    ([[0.0, 1.0, 0.0]], "float32", r"the float \(one-hot\) labels 'labels' have shape \(1, 3\) at run time, .* need labels of shape \(2, 3\)"),
])
def test_softmax_cross_entropy_refuses_labels_that_numpy_would_broadcast(labels, dtype, fragment):
    """Labels that do not match the logits gave a wrong loss and gradient without a word (e.g. labels [2]
    for two rows of logits gave [0.0134, 0.0134] instead of [0.0134, 5.0134])."""
    logits = mg.placeholder("logits", (None, 3))
    y = mg.placeholder("labels", None, dtype)  # unknown rank: only the run-time check can see the mismatch
    loss = mg.softmax_cross_entropy(logits, y, name="ce")
    feed = {logits: [[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]], y: np.array(labels, dtype)}
    for fetch in (loss, mg.gradients(mg.reduce_sum(loss), logits)):
        with pytest.raises(mg.ShapeError, match=fragment):
            mg.Session().run(fetch, feed)
    indices = mg.placeholder("indices", None, "int64")
    right = mg.Session().run(mg.softmax_cross_entropy(logits, indices), {logits: feed[logits], indices: [2, 0]})
    assert np.allclose(right, [0.0134, 5.0134], atol=1e-4)


def test_softmax_cross_entropy_labels_known_when_building_are_checked_then():
    logits = mg.placeholder("logits", (2, 3))
    for labels in (mg.constant([2]), mg.constant([[0], [2]]), mg.constant(np.eye(3, dtype=np.float32)[:1])):
        with pytest.raises(mg.ShapeError, match=r"softmax_cross_entropy: cannot build .* from 'logits' \(2, 3\), 'constant.*' .* labels need shape"):
            mg.softmax_cross_entropy(logits, labels)
