"""Every differentiable op against central finite differences (float64), over random shapes — broadcasting
and run-time (None) dimensions included — and random values; gradients of gradients too."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import minigraph as mg
from minigraph.gradcheck import check_gradients
from minigraph.ops import SoftmaxCrossEntropy

FAST = settings(max_examples=12, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def declared(shape, unknown):
    """The static shape of a placeholder: ``shape`` with the dims flagged in ``unknown`` set to None."""
    return tuple(None if flag else d for d, flag in zip(shape, unknown))


def weighted_sum(out, rng, sess, feed):
    """``sum(out * w)`` for a random ``w``: a scalar whose gradient exercises every output entry."""
    shape = np.shape(sess.run(out, feed))
    return mg.reduce_sum(out * mg.constant(rng.standard_normal(shape)))


def check_op(build, arrays, seed, unknown=None, second_order=True):
    """Check the first (and second) derivatives of ``build(*placeholders)`` at ``arrays``."""
    rng = np.random.default_rng(seed)
    unknown = unknown or [[False] * a.ndim for a in arrays]
    xs = [mg.placeholder(f"x{i}", declared(a.shape, u), "float64") for i, (a, u) in enumerate(zip(arrays, unknown))]
    feed = dict(zip(xs, arrays))
    sess = mg.Session()
    y = weighted_sum(build(*xs), rng, sess, feed)
    check_gradients(y, xs, feed)
    if second_order:
        grads = mg.gradients(y, xs)
        z = sum_nodes([mg.reduce_sum(g * mg.constant(rng.standard_normal(a.shape))) for g, a in zip(grads, arrays)])
        check_gradients(z, xs, feed)


def sum_nodes(nodes):
    total = nodes[0]
    for node in nodes[1:]:
        total = total + node
    return total


def away_from_zero(rng, shape, low=0.3):
    values = rng.uniform(low, 2.0, size=shape)
    return values * rng.choice([-1.0, 1.0], size=shape)


UNARY = {
    "neg": (lambda x: -x, "any"),
    "exp": (mg.exp, "any"),
    "log": (mg.log, "positive"),
    "sqrt": (mg.sqrt, "positive"),
    "tanh": (mg.tanh, "any"),
    "sigmoid": (mg.sigmoid, "any"),
    "relu": (mg.relu, "nonzero"),
    "square": (lambda x: x**2, "any"),
    "cube": (lambda x: x**3, "any"),
    "pow_half": (lambda x: x**0.5, "positive"),
    "reciprocal": (lambda x: x**-1, "positive"),
    "scalar_ops": (lambda x: (2.0 - x) * 3 / 4 + 1, "any"),
    "rpow": (lambda x: 2.0**x, "any"),
}


def sample(rng, shape, kind):
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "nonzero":
        return away_from_zero(rng, shape)
    return rng.uniform(-2.0, 2.0, size=shape)


@pytest.mark.parametrize("op_name", sorted(UNARY))
@FAST
@given(shape=array_shapes(min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_unary_ops(op_name, shape, seed):
    build, kind = UNARY[op_name]
    check_op(build, [sample(np.random.default_rng(seed), shape, kind)], seed)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "chain": lambda a, b: (a - b) * (a + 1.0) / b,
}


@pytest.mark.parametrize("op_name", sorted(BINARY))
@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       unknown=st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=2, max_size=2), seed=seeds)
def test_binary_ops_with_broadcasting(op_name, shapes, unknown, seed):
    rng = np.random.default_rng(seed)
    a, b = (away_from_zero(rng, s) for s in shapes.input_shapes)
    check_op(BINARY[op_name], [a, b], seed, unknown=[u[: x.ndim] for u, x in zip(unknown, (a, b))])


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@FAST
@given(n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), batch_unknown=st.booleans(), seed=seeds)
def test_matmul(transpose_a, transpose_b, n, k, m, batch_unknown, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, n) if transpose_a else (n, k))
    b = rng.standard_normal((m, k) if transpose_b else (k, m))
    unknown = [[batch_unknown, False], [False, batch_unknown]]
    check_op(lambda x, y: mg.matmul(x, y, transpose_a, transpose_b), [a, b], seed, unknown=unknown)


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@FAST
@given(batches=mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=2, max_side=3),
       n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), unknown=st.booleans(), seed=seeds)
def test_batched_matmul_broadcasts_batch_dimensions(transpose_a, transpose_b, batches, n, k, m, unknown, seed):
    """Stacks of matrices (numpy's ``@``): the gradient of a broadcast stack is summed over the batch."""
    rng = np.random.default_rng(seed)
    batch_a, batch_b = batches.input_shapes
    a = rng.standard_normal((*batch_a, *((k, n) if transpose_a else (n, k))))
    b = rng.standard_normal((*batch_b, *((m, k) if transpose_b else (k, m))))
    flags = [[unknown] * len(batch_a) + [False, False], [unknown] * len(batch_b) + [False, False]]
    build = lambda x, y: mg.matmul(x, y, transpose_a, transpose_b)
    check_op(build, [a, b], seed, unknown=flags)
    xs = [mg.placeholder(f"x{i}", declared(v.shape, u), "float64") for i, (v, u) in enumerate(zip((a, b), flags))]
    expected = np.swapaxes(a, -1, -2) if transpose_a else a
    expected = expected @ (np.swapaxes(b, -1, -2) if transpose_b else b)
    assert np.allclose(mg.Session().run(build(*xs), dict(zip(xs, (a, b)))), expected)
    tangents = [rng.standard_normal(a.shape), rng.standard_normal(b.shape)]
    check_jvp(build, [a, b], tangents, seed)


def check_jvp(build, arrays, tangents, seed):
    """``<u, J t> = <Jᵀ u, t>``: the forward-mode tangent of ``build`` against its gradients."""
    rng = np.random.default_rng(seed)
    xs = [mg.placeholder(f"x{i}", a.shape, "float64") for i, a in enumerate(arrays)]
    feed, sess = dict(zip(xs, arrays)), mg.Session()
    y = build(*xs)
    u = mg.constant(rng.standard_normal(np.shape(sess.run(y, feed))))
    forward = sess.run(mg.reduce_sum(u * mg.jvp(y, xs, [mg.constant(t) for t in tangents])), feed)
    grads = sess.run(mg.gradients(y, xs, grad_y=u), feed)
    assert np.isclose(forward, sum(np.sum(g * t) for g, t in zip(grads, tangents)), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("base_kind", ["positive", "number"])
@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       unknown=st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=2, max_size=2), seed=seeds)
def test_power_with_a_node_exponent(base_kind, shapes, unknown, seed):
    """``a ** b`` with gradients for the base and the exponent; ``number ** node`` too."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 2.0, size=shapes.input_shapes[0]), rng.uniform(-2.0, 2.0, size=shapes.input_shapes[1])
    if base_kind == "number":
        check_op(lambda e: 1.7**e, [b], seed, unknown=[unknown[1][: b.ndim]])
        check_jvp(lambda e: 1.7**e, [b], [rng.standard_normal(b.shape)], seed)
        return
    check_op(lambda x, e: x**e, [a, b], seed, unknown=[u[: v.ndim] for u, v in zip(unknown, (a, b))])
    check_jvp(lambda x, e: x**e, [a, b], [rng.standard_normal(a.shape), rng.standard_normal(b.shape)], seed)


def test_power_gradients_at_a_zero_base_and_a_zero_exponent_are_the_limits_not_nan():
    x, e = mg.placeholder("x", (4,), "float64"), mg.placeholder("e", (4,), "float64")
    with np.errstate(invalid="ignore"):  # log(-2): x^e is not differentiable in e for x < 0
        grads = mg.Session().run(mg.gradients(mg.reduce_sum(x**e), [x, e]), {x: [0, 0, 2, -2], e: [2, 0, 0, 2]})
    assert np.array_equal(grads[0], [0, 0, 0, -4]) and np.array_equal(grads[1], [0, 0, np.log(2), np.nan], equal_nan=True)


@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_where(shapes, seed):
    rng = np.random.default_rng(seed)
    condition = mg.constant(rng.random(shapes.input_shapes[0]) < 0.5)
    a, b = (rng.standard_normal(shape) for shape in shapes.input_shapes[1:])
    check_op(lambda x, y: mg.where(condition, x, y), [a, b], seed)


@st.composite
def shape_and_axis(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=3, max_side=3))
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=len(shape), unique_by=lambda a: a % len(shape)))
    axis = draw(st.sampled_from([None, tuple(axes)] + ([axes[0]] if axes else [])))
    return shape, axis


@pytest.mark.parametrize("reduce", [mg.reduce_sum, mg.reduce_mean])
@FAST
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), unknown=st.lists(st.booleans(), min_size=3, max_size=3), seed=seeds)
def test_reductions(reduce, shape_axis, keepdims, unknown, seed):
    shape, axis = shape_axis
    x = np.random.default_rng(seed).standard_normal(shape)
    check_op(lambda v: reduce(v, axis, keepdims), [x], seed, unknown=[unknown[: len(shape)]])


@FAST
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=3), unknown=st.lists(st.booleans(), min_size=3, max_size=3), seed=seeds)
def test_shape_ops(shape, unknown, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    axes = tuple(int(a) for a in rng.permutation(len(shape)))
    check_op(lambda v: mg.transpose(v, axes) * 1.0, [x], seed)
    check_op(lambda v: mg.reshape(v, (-1,)), [x], seed, unknown=[unknown[: len(shape)]])
    check_op(lambda v: mg.expand_dims(v, (0, -1)), [x], seed, unknown=[unknown[: len(shape)]])
    check_op(lambda v: mg.broadcast_to(v, (2, *shape)), [x], seed)
    check_op(lambda v: mg.sum_to(v, (1,) * (len(shape) - 1) + shape[-1:]), [x], seed)
    check_op(lambda v: mg.reshape(mg.transpose(v), v), [x], seed, unknown=[unknown[: len(shape)]])


@pytest.mark.parametrize("op", [mg.softmax, mg.log_softmax])
@FAST
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=4), axis_index=st.integers(0, 2), seed=seeds)
def test_softmax_family(op, shape, axis_index, seed):
    axis = -1 - axis_index % len(shape)
    check_op(lambda v: op(v, axis), [np.random.default_rng(seed).standard_normal(shape) * 2], seed)


@pytest.mark.parametrize("from_log_softmax", [False, True])
@pytest.mark.parametrize("label_kind", ["int", "one_hot", "soft"])
@FAST
@given(batch=st.integers(1, 3), classes=st.integers(1, 4), seed=seeds)
def test_softmax_cross_entropy(label_kind, from_log_softmax, batch, classes, seed):
    """The loss and its gradient op, on logits or (``from_log_softmax``, chapter 05's rewrite) on
    log-probabilities — perturbed freely here, not only along log_softmax's range."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((batch, classes)) * 2
    if from_log_softmax:
        logits = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    grad = rng.standard_normal(batch)
    labels = rng.integers(0, classes, size=batch)
    loss = SoftmaxCrossEntropy(from_log_softmax)
    if label_kind == "int":
        y = mg.constant(labels)
        check_op(lambda z: loss(z, y), [logits], seed)
        check_jvp(lambda z: loss(z, y), [logits], [rng.standard_normal(logits.shape)], seed)
        for g in (grad, np.array(grad[0])):  # a gradient per row, or a scalar for all (chapter 05's rule)
            check_op(lambda z, g: mg.ops.softmax_cross_entropy_grad(z, y, g, from_log_softmax=from_log_softmax),
                     [logits, g], seed)
        return
    targets = np.eye(classes)[labels] if label_kind == "one_hot" else rng.dirichlet(np.ones(classes), size=batch)
    check_op(lambda z, t: loss(z, t), [logits, targets], seed)
    check_jvp(lambda z, t: loss(z, t), [logits, targets], [rng.standard_normal(logits.shape), rng.standard_normal(targets.shape)], seed)
    for g in (grad, np.array(grad[0])):
        check_op(lambda z, t, g: mg.ops.softmax_cross_entropy_grad(z, t, g, from_log_softmax=from_log_softmax),
                 [logits, targets, g], seed)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 5), (4000, 3)])
def test_relu_against_an_array_of_zeros_gives_the_bits_of_maximum_with_0(dtype, shape):
    """relu takes the maximum with an array of zeros, for speed: the bits of np.maximum(x, 0), -0.0, nan and
    inf included — op by op (a new output, or in place), fused, and eager."""
    rng = np.random.default_rng(0)
    value = np.asarray(rng.standard_normal(shape) * 3).astype(dtype)
    if dtype != "int64" and value.size >= 4:
        value.flat[:4] = [-0.0, np.nan, np.inf, -np.inf]
    expected = np.maximum(value, 0)
    x = mg.placeholder("x", shape, dtype)
    in_place = value.copy()
    results = [mg.Session().run(mg.relu(x), {x: value}), mg.relu(mg.eager.constant(value)).numpy(),
               mg.ops.Relu().compute_into(None, (in_place, in_place))]
    if dtype != "int64":
        results.append(mg.Session(optimize=True).run(mg.relu(x * 1.5), {x: value / 1.5}))
        expected_fused = np.maximum(value / 1.5 * 1.5, 0)
    for number, got in enumerate(results):
        want = expected_fused if number == 3 else expected
        assert np.shape(got) == want.shape and got.dtype == want.dtype
        assert np.asarray(got).tobytes() == want.tobytes()
    assert results[2] is in_place


def test_cast_passes_gradients_between_float_types():
    x = mg.placeholder("x", (3,), "float64")
    y = mg.reduce_sum(mg.cast(mg.cast(x, "float32") * 2.0, "float64"))
    (g,) = mg.Session().run(mg.gradients(y, [x]), {x: np.arange(3.0)})
    assert g.dtype == np.float64 and np.array_equal(g, [2.0, 2.0, 2.0])


COMPOSABLE = [
    lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / (b * b + 1.0),
    lambda a, b: mg.tanh(a) * b, lambda a, b: mg.exp(a * 0.3) + b, lambda a, b: mg.sigmoid(a - b),
    lambda a, b: mg.softmax(a) * b, lambda a, b: mg.log_softmax(a + b), lambda a, b: mg.sqrt(a * a + 1.0),
    lambda a, b: a @ mg.transpose(b), lambda a, b: mg.matmul(a, b, transpose_b=True),
    lambda a, b: a + mg.reduce_mean(b, 0), lambda a, b: a * mg.reduce_sum(b, 1, keepdims=True),
]


@st.composite
def compositions(draw):
    """A random DAG over two inputs of shape (n, n): each step combines two earlier nodes."""
    steps = draw(st.lists(st.tuples(st.integers(0, len(COMPOSABLE) - 1), st.integers(0, 100), st.integers(0, 100)), min_size=1, max_size=6))
    return steps


def build_composition(steps, a, b):
    nodes = [a, b]
    for op_index, i, j in steps:
        nodes.append(COMPOSABLE[op_index](nodes[i % len(nodes)], nodes[j % len(nodes)]))
    return nodes[-1]


@settings(max_examples=30, deadline=None)
@given(steps=compositions(), n=st.integers(1, 3), seed=seeds)
def test_random_compositions(steps, n, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))]
    check_op(lambda a, b: build_composition(steps, a, b), arrays, seed, unknown=[[True, False], [True, False]])


@settings(max_examples=30, deadline=None)
@given(steps=compositions(), n=st.integers(1, 3), seed=seeds)
def test_jvp_agrees_with_gradients(steps, n, seed):
    """``<u, J t> = <Jᵀ u, t>``: forward mode against reverse mode on random graphs."""
    rng = np.random.default_rng(seed)
    a, b = mg.placeholder("a", (None, n), "float64"), mg.placeholder("b", (None, n), "float64")
    y = build_composition(steps, a, b)
    feed = {a: rng.uniform(-1, 1, (n, n)), b: rng.uniform(-1, 1, (n, n))}
    sess = mg.Session()
    u = mg.constant(rng.standard_normal(np.shape(sess.run(y, feed))))
    ta, tb = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    forward = sess.run(mg.reduce_sum(u * mg.jvp(y, [a, b], [mg.constant(ta), mg.constant(tb)])), feed)
    ga, gb = sess.run(mg.gradients(y, [a, b], grad_y=u), feed)
    assert np.isclose(forward, np.sum(ga * ta) + np.sum(gb * tb), rtol=1e-9, atol=1e-9)
