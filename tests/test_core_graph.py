"""Building graphs: operators, dtypes, shape inference and its errors, topological order, custom ops,
numerical stability."""

import numpy as np
import pytest

import minigraph as mg


def test_operators_build_the_matching_ops():
    a, b = mg.placeholder("a", (2,)), mg.placeholder("b", (2,))
    cases = {a + b: mg.ops.Add, a - b: mg.ops.Sub, a * b: mg.ops.Mul, a / b: mg.ops.Div, -a: mg.ops.Neg,
             a**2: mg.ops.Pow, 1 + a: mg.ops.Add, 2 - a: mg.ops.Sub, 3 * a: mg.ops.Mul, 4 / a: mg.ops.Div}
    for node, op_type in cases.items():
        assert type(node.op) is op_type
    assert (2 - a).inputs[1] is a and (mg.placeholder("m", (1, 2)) @ mg.Variable(np.ones((2, 3)))).op.name == "matmul"


def test_python_numbers_keep_the_dtype_and_numpy_arrays_defer_to_nodes():
    x32 = mg.placeholder("x", (3,), "float32")
    i64 = mg.placeholder("i", (3,), "int64")
    assert (x32 * 2.0).dtype == np.float32 and (0.5 - x32).dtype == np.float32 and (x32**2).dtype == np.float32
    assert (2.0**x32).dtype == np.float32 and (i64 + 1).dtype == np.int64 and (i64 * 0.5).dtype == np.float64
    assert (i64 / 2).dtype == np.float64 and mg.exp(i64).dtype == np.float64
    node = np.ones(3, np.float32) + x32
    assert isinstance(node, mg.Node) and node.dtype == np.float32
    value = mg.Session().run(x32 * 2.0 + np.float32(1), {x32: np.ones(3, np.float32)})
    assert value.dtype == np.float32 and np.array_equal(value, [3, 3, 3])


def test_powers_with_a_number_or_a_node_exponent():
    x, e = mg.placeholder("x", (2,)), mg.placeholder("e", (2,))
    assert type((x**np.float32(3)).op) is mg.ops.Pow and (x**np.float32(3)).op.exponent == 3
    for power in (x**e, 2.0**x, mg.pow(x, e), x ** np.ones(2, np.float32), np.ones(2) ** x):
        assert type(power.op) is mg.ops.Power
        assert power.dtype == np.result_type(np.float32, *(i.dtype for i in power.inputs))  # numpy's promotion
    with pytest.raises(TypeError, match="power: str '2' is not a number or an array of numbers"):
        x**"2"
    with pytest.raises(TypeError, match="at least one operand must be a Node"):
        mg.pow(2.0, 3.0)


def test_a_number_raised_to_a_node_is_computed_exactly():
    y = mg.placeholder("y", ())
    sess = mg.Session()
    for value in range(-3, 8):  # exp(y log 10) in float32 gives 10.000000953674316 for y = 1
        assert sess.run(10**y, {y: value}) == np.float32(10.0) ** np.float32(value)
    with np.errstate(invalid="ignore"):
        assert sess.run(10**y, {y: 1}) == 10 and np.isnan(sess.run((-2.0) ** y, {y: 0.5}))  # as numpy


def test_python_values_become_float32_or_int64_and_arrays_keep_their_dtype():
    assert mg.constant(1.5).dtype == np.float32 and mg.constant([1, 2]).dtype == np.int64
    assert mg.constant(np.zeros(2)).dtype == np.float64 and mg.Variable([[0.0]]).dtype == np.float32
    assert mg.Variable(np.zeros(2), dtype="float32").dtype == np.float32


def test_static_shapes_follow_numpy_broadcasting_with_unknown_dimensions():
    x = mg.placeholder("x", (None, 784))
    W = mg.Variable(np.zeros((784, 10), np.float32))
    logits = x @ W + mg.Variable(np.zeros(10, np.float32))
    assert logits.shape == (None, 10)
    assert mg.reduce_sum(logits, 1).shape == (None,) and mg.reduce_mean(logits, keepdims=True).shape == (1, 1)
    assert mg.softmax_cross_entropy(logits, mg.placeholder("y", (None,), "int64")).shape == (None,)
    assert mg.reshape(x, (-1, 28, 28)).shape == (None, 28, 28) and mg.transpose(x).shape == (784, None)
    assert mg.placeholder("u").shape is None and (mg.placeholder("u") + x).shape is None
    assert mg.argmax(logits, 1).shape == (None,) and mg.argmax(logits, 1).dtype == np.int64


def test_matmul_shape_error_names_op_nodes_and_shapes():
    x = mg.placeholder("x", (None, 784))
    W = mg.Variable(np.zeros((785, 10), np.float32), name="W")
    with pytest.raises(mg.ShapeError) as error:
        x @ W
    message = str(error.value)
    assert "matmul" in message and "'x' (None, 784)" in message and "'W' (785, 10)" in message
    assert "inner dimensions 784 and 785 differ" in message


@pytest.mark.parametrize("build, fragment", [
    (lambda a, b: a + b, "sizes [3, 4] do not broadcast"),
    (lambda a, b: mg.matmul(a, mg.reduce_sum(b)), "matmul needs matrices or stacks of them"),
    (lambda a, b: mg.reshape(a, (5, 5)), "cannot reshape 6 elements into (5, 5)"),
    (lambda a, b: mg.reduce_sum(a, axis=2), "axis (2,) is out of range"),
    (lambda a, b: mg.softmax_cross_entropy(a, mg.placeholder("y", (2, 3), "int64")), "integer labels need shape (2,)"),
    (lambda a, b: mg.ops.softmax_cross_entropy_grad(a, mg.placeholder("y", (2,), "int64"), mg.reduce_sum(a, 0)),
     "the gradient (3,) must be a scalar or have the shape (2,)"),
    (lambda a, b: mg.sum_to(a, (4,)), "cannot be summed to (4,)"),
    (lambda a, b: mg.sum_to(a, (None, 3)), "has an unknown (None) dimension; pass a node instead"),
    (lambda a, b: mg.broadcast_to(b, (2, 3)), "does not broadcast to (2, 3)"),
])
def test_shape_errors_are_raised_when_building(build, fragment):
    a, b = mg.placeholder("a", (2, 3)), mg.placeholder("b", (2, 4))
    with pytest.raises(mg.ShapeError, match="'a'|'b'") as error:
        build(a, b)
    assert fragment in str(error.value)


def test_axes_are_checked_against_the_rank_even_of_a_scalar():
    scalar, m = mg.placeholder("s", ()), mg.placeholder("m", (2, 3, 4))
    with pytest.raises(mg.ShapeError, match=r"'s' \(\): axes \(0,\) are not a permutation of 0 axes"):
        mg.transpose(scalar, (0,))
    with pytest.raises(mg.ShapeError, match=r"axes \(2, 0, 0\) are not a permutation of 3 axes"):
        mg.transpose(m, (2, 0, 0))
    with pytest.raises(mg.ShapeError, match=r"axis \(0,\) is out of range or repeated for rank 0"):
        mg.reduce_sum(scalar, 0)
    assert mg.transpose(m, (-1, 0, 1)).shape == (4, 2, 3) and mg.reduce_sum(m, (-1, 0)).shape == (3,)
    assert mg.expand_dims(m, (0, -1)).shape == (1, 2, 3, 4, 1)


def test_topological_sort_is_deterministic_and_puts_inputs_first():
    a, b = mg.placeholder("a"), mg.placeholder("b")
    c = a * b
    d = c + a
    e = mg.exp(d) + c
    order = mg.topological_sort([e])
    assert order == [a, b, c, d, order[4], e] and order[4].op.name == "exp"
    assert mg.topological_sort(e) == order and mg.topological_sort([c, e]) == order


def test_topological_sort_handles_deep_graphs_without_recursion():
    x = mg.placeholder("x", (), "float64")
    y = x
    for _ in range(20000):
        y = y + 1.0
    order = mg.topological_sort([y])
    assert len(order) == 40001 and order[-1] is y
    assert mg.Session().run(y, {x: 0.0}) == 20000.0


def test_generated_names_are_unique_and_given_names_are_kept():
    a = mg.placeholder("my_input")
    first, second = a + 1.0, a + 1.0
    assert a.name == "my_input" and first.name != second.name and first.name.startswith("add")
    assert mg.exp(a, name="e").name == "e"


def test_repr_is_stable_and_attrs_show_op_parameters():
    x = mg.placeholder("x", (None, 3))
    s = mg.reduce_sum(x, 1, name="total")
    assert repr(s) == "<reduce_sum 'total' shape=(None,), float32>"
    assert s.attrs == {"axis": (1,), "keepdims": False} and "0x" not in repr(s.op)


class Square(mg.Op):
    """A learner's op: x², gradient 2 x g."""

    def compute(self, node, input_values):
        return input_values[0] ** 2

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]

    def gradient(self, node, output_grad):
        return [2.0 * node.inputs[0] * output_grad]


def test_a_custom_op_builds_runs_and_differentiates():
    x = mg.placeholder("x", (3,), "float64")
    y = Square()(x)
    assert y.op.name == "square" and y.shape == (3,) and y.dtype == np.float64
    g = mg.gradients(mg.reduce_sum(y), x)
    value, grad = mg.Session().run([y, g], {x: np.array([1.0, 2.0, 3.0])})
    assert np.array_equal(value, [1, 4, 9]) and np.array_equal(grad, [2, 4, 6])
    hvp = mg.gradients(mg.reduce_sum(g), x)  # the second derivative, through ops the rule built
    assert np.array_equal(mg.Session().run(hvp, {x: np.zeros(3)}), [2, 2, 2])
    assert mg.make_node(Square(), [x], "sq").name == "sq"


def test_make_node_rejects_non_nodes_clearly():
    with pytest.raises(TypeError, match="square: input 0 is a list, not a Node"):
        mg.make_node(Square(), [[1, 2]])


def test_log_of_softmax_becomes_log_softmax_and_is_stable():
    z = mg.placeholder("z", (None, 3))
    log_p = mg.log(mg.softmax(z))
    assert isinstance(log_p.op, mg.ops.LogSoftmax) and log_p.inputs == (z,)
    value = mg.Session().run(log_p, {z: np.array([[1e4, 0, -1e4]], np.float32)})
    assert np.array_equal(value, np.array([[0, -1e4, -2e4]], np.float32))


def test_no_nan_or_inf_for_logits_of_magnitude_1e4():
    z = mg.placeholder("z", (None, 3))
    labels = mg.placeholder("y", (None,), "int64")
    one_hot = mg.placeholder("t", (None, 3))
    loss = mg.reduce_mean(mg.softmax_cross_entropy(z, labels)) + mg.reduce_mean(mg.softmax_cross_entropy(z, one_hot))
    fetches = [loss, mg.softmax(z), mg.log_softmax(z), *mg.gradients(loss, [z]), mg.sigmoid(z)]
    logits = np.array([[1e4, -1e4, 0], [-1e4, -1e4, -1e4], [1e4, 1e4, 9999]], np.float32)
    values = mg.Session().run(fetches, {z: logits, labels: [1, 0, 2], one_hot: np.eye(3)[[1, 0, 2]]})
    assert all(np.all(np.isfinite(v)) for v in values)
    per_example = [2e4, np.log(3), 1 + np.log(2 + np.exp(-1))]  # lse(z) - z[label], row by row
    assert np.isclose(values[0], 2 * np.mean(per_example), rtol=1e-6)


@pytest.mark.parametrize("operand", ["a", None, ["1", 2], object()])
def test_non_numeric_operands_are_refused_when_building(operand):
    a = mg.placeholder("a", (2,))
    for build in (lambda: a + operand, lambda: operand * a, lambda: mg.constant(operand), lambda: mg.Variable(operand)):
        with pytest.raises(TypeError, match="is not a number or an array of numbers"):
            build()
    with pytest.raises(TypeError, match=r"^add: str 'a' is not a number"):
        a + "a"


def make_cycle():
    """A cycle, possible only by editing ``.inputs`` after building: u = exp(x) + v, v = tanh(u)."""
    x = mg.placeholder("x", (2,))
    u = mg.add(mg.exp(x, name="e"), x, name="u")
    v = mg.tanh(u, name="v")
    u.inputs = (u.inputs[0], v)
    return x, u, v


def test_a_cycle_is_reported_by_the_sort_by_gradients_and_by_the_session():
    x, u, v = make_cycle()
    loss = mg.reduce_sum(v, name="loss")
    for run in (lambda: mg.topological_sort(loss), lambda: mg.gradients(loss, [x]), lambda: mg.Session().run(loss, {x: [1, 2]})):
        with pytest.raises(ValueError, match="the graph has a cycle, 'v' -> 'u' -> 'v'"):
            run()
    w = mg.placeholder("w", ())
    w_twice = w * 2
    w_twice.inputs = (w_twice, w_twice.inputs[1])  # a node that is its own input
    with pytest.raises(ValueError, match="cycle, 'mul.*' -> 'mul.*'"):
        mg.topological_sort(w_twice)


def longest_path(fetches):
    depth = {}
    for node in mg.topological_sort(fetches):
        depth[node] = 1 + max((depth[x] for x in node.inputs), default=0)
    return max(depth.values())


def test_a_deep_network_is_wide_and_an_unrolled_recurrence_is_one_long_chain():
    """What chapter 02 says about recursion depth: the longest path, not the node count, sets it."""
    rng = np.random.default_rng(0)
    layer = mg.placeholder("images", (None, 784))
    for _ in range(99):
        layer = mg.nn.dense(layer, 4, activation=mg.relu, rng=rng)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(mg.nn.dense(layer, 10, rng=rng), mg.placeholder("d", (None,), "int64")))
    step = mg.optim.SGD(0.1).minimize(loss)
    assert 1400 < len(mg.topological_sort(step)) < 1600 and 450 < longest_path(step) < 550
    state = mg.placeholder("state", (None, 2))
    for _ in range(5000):
        state = mg.tanh(state)
    assert len(mg.topological_sort(state)) == longest_path(state) == 5001  # no recursion limit in the sort
