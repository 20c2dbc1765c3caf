"""Eager tensors: the same ops computed at once, the tape and backward, against the static graph (values,
shapes, errors, gradients) and central differences; no_grad, accumulation, in-place updates, memory."""

import gc
import re
import weakref

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minigraph as mg
from minigraph.eager import Tensor, no_grad
from minigraph.gradcheck import numerical_gradient
from test_core_ops_gradients import COMPOSABLE as GRAPH_COMPOSABLE

seeds = st.integers(0, 2**32 - 1)

# Functions of two (n, n) values that work alike on graph nodes and on eager tensors: chapter 03's, and more.
COMPOSABLE = GRAPH_COMPOSABLE + [
    lambda a, b: mg.relu(a) - b ** 2, lambda a, b: mg.log(a * a + 1.0) * 0.5 - b,
    lambda a, b: mg.reshape(mg.reshape(mg.transpose(a), (-1,)) * 2.0, a.shape) * b,
    lambda a, b: 2.0 ** a + mg.broadcast_to(mg.reduce_sum(b), (1,)), lambda a, b: -a * mg.cast(b, "float64"),
    lambda a, b: mg.expand_dims(mg.reduce_sum(a, -1), 0) - mg.reduce_mean(b, keepdims=True),
]


@st.composite
def compositions(draw):
    """A random DAG over two inputs: each step combines two earlier values with one of COMPOSABLE."""
    return draw(st.lists(st.tuples(st.integers(0, len(COMPOSABLE) - 1), st.integers(0, 100), st.integers(0, 100)),
                         min_size=1, max_size=6))


def build(steps, a, b):
    """The composition on graph nodes or on Tensors alike, summed against fixed weights into a scalar."""
    values = [a, b]
    for op_index, i, j in steps:
        values.append(COMPOSABLE[op_index](values[i % len(values)], values[j % len(values)]))
    out = values[-1]
    weights = np.cos(np.arange(int(np.prod(out.shape)))).reshape(out.shape)
    return mg.reduce_sum(out * weights)


def builds(steps, n):
    """Whether the composition is well shaped for two (n, n) inputs (a row times a square is not)."""
    try:
        build(steps, mg.placeholder("a", (n, n), "float64"), mg.placeholder("b", (n, n), "float64"))
    except mg.ShapeError:
        return False
    return True


def static_value_and_gradients(steps, a, b):
    pa, pb = mg.placeholder("a", a.shape, "float64"), mg.placeholder("b", b.shape, "float64")
    y = build(steps, pa, pb)
    return mg.Session().run([y, *mg.gradients(y, [pa, pb])], {pa: a, pb: b})


@settings(max_examples=40, deadline=None)
@given(steps=compositions(), n=st.integers(1, 3), seed=seeds)
@example(steps=[(19, 0, 0), (10, 0, 8), (10, 0, 3)], n=2, seed=0)  # a row times a square: refused both ways
def test_eager_values_and_gradients_equal_the_static_graphs(steps, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    try:
        value, grad_a, grad_b = static_value_and_gradients(steps, a, b)
    except mg.ShapeError as refused:  # a product of a row and a square, say: eager refuses it alike
        with pytest.raises(mg.ShapeError, match=re.escape(str(refused).rsplit(": ", 1)[-1])):
            build(steps, ta, tb)
        return

    y = build(steps, ta, tb)
    assert y.dtype == np.float64 and y.item() == value  # the same ops on the same values: the same bits
    eager_a, eager_b = mg.gradients(y, [ta, tb])  # chapter 03's reverse mode, run on the tape
    np.testing.assert_array_equal(eager_a.numpy(), grad_a)
    np.testing.assert_array_equal(eager_b.numpy(), grad_b)
    y.backward()  # the tape's own walk, accumulating into .grad (None for an input y does not use)
    np.testing.assert_array_equal(grad_or_zeros(ta), grad_a)
    np.testing.assert_array_equal(grad_or_zeros(tb), grad_b)


def grad_or_zeros(tensor):
    return np.zeros(tensor.shape) if tensor.grad is None else tensor.grad


@settings(max_examples=25, deadline=None)
@given(steps=compositions(), n=st.integers(1, 3), seed=seeds)
def test_backward_matches_central_differences(steps, n, seed):
    assume(builds(steps, n))
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    build(steps, ta, tb).backward()
    numerical_a = numerical_gradient(lambda v: build(steps, Tensor(v), Tensor(b)).item(), a)
    numerical_b = numerical_gradient(lambda v: build(steps, Tensor(a), Tensor(v)).item(), b)
    np.testing.assert_allclose(grad_or_zeros(ta), numerical_a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad_or_zeros(tb), numerical_b, rtol=1e-5, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=seeds,
       op=st.sampled_from([mg.add, mg.sub, mg.mul, mg.div]))
def test_broadcasting_gradients_sum_back_to_each_input(shapes, seed, op):
    rng = np.random.default_rng(seed)
    a, b = (rng.uniform(0.5, 2.0, s) for s in shapes.input_shapes)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    mg.reduce_sum(op(ta, tb) * 1.5).backward()
    pa, pb = mg.placeholder("a", a.shape, "float64"), mg.placeholder("b", b.shape, "float64")
    grad_a, grad_b = mg.Session().run(mg.gradients(mg.reduce_sum(op(pa, pb) * 1.5), [pa, pb]), {pa: a, pb: b})
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    np.testing.assert_array_equal(ta.grad, grad_a)
    np.testing.assert_array_equal(tb.grad, grad_b)



def test_every_op_function_accepts_tensors_mixed_with_numbers_and_arrays():
    rng = np.random.default_rng(0)
    x_value, labels = rng.standard_normal((3, 4)).astype(np.float32), np.array([0, 3, 1])
    x = Tensor(x_value)
    cases = {
        "add": lambda v: mg.add(v, 1), "sub": lambda v: mg.sub(2.0, v), "mul": lambda v: mg.mul(v, x_value),
        "div": lambda v: mg.div(v, 3), "neg": mg.neg, "pow": lambda v: mg.pow(v, 3), "exp": mg.exp,
        "log": lambda v: mg.log(v * v + 1), "sqrt": lambda v: mg.sqrt(v * v), "tanh": mg.tanh,
        "sigmoid": mg.sigmoid, "relu": mg.relu, "equal": lambda v: mg.equal(v, v),
        "cast": lambda v: mg.cast(v, "float64"), "zeros_like": mg.zeros_like, "ones_like": mg.ones_like,
        "matmul": lambda v: mg.matmul(v, x_value, transpose_b=True), "transpose": mg.transpose,
        "reshape": lambda v: mg.reshape(v, (2, 6)), "expand_dims": lambda v: mg.expand_dims(v, 0),
        "broadcast_to": lambda v: mg.broadcast_to(v, (2, 3, 4)), "sum_to": lambda v: mg.sum_to(v, (1, 4)),
        "reduce_sum": lambda v: mg.reduce_sum(v, 1), "reduce_mean": lambda v: mg.reduce_mean(v, 0, keepdims=True),
        "argmax": mg.argmax, "softmax": mg.softmax, "log_softmax": mg.log_softmax,
        "softmax_cross_entropy": lambda v: mg.softmax_cross_entropy(v, labels),
    }
    placeholder = mg.placeholder("x", (3, 4))
    sess = mg.Session()
    for name, f in cases.items():
        static = f(placeholder)
        result = f(x)
        assert isinstance(result, Tensor), name
        assert (result.shape, result.dtype) == (static.shape, static.dtype), name
        np.testing.assert_array_equal(result.numpy(), sess.run(static, {placeholder: x_value}), err_msg=name)


@pytest.mark.parametrize("build", [
    lambda a, b: a @ b,                                       # inner dimensions differ
    lambda a, b: a + mg.transpose(b),                         # (2, 3) and (2, 3) transposed: no broadcast
    lambda a, b: mg.softmax_cross_entropy(a, mg.cast(mg.reduce_sum(b, 1) * 0.0, "int64")),  # labels (2,) fine
    lambda a, b: mg.softmax_cross_entropy(a, b * 1.0 + mg.reduce_sum(a)),                # one-hot (2, 3) fine
    lambda a, b: mg.softmax_cross_entropy(a, mg.cast(mg.reduce_sum(mg.transpose(b), 1), "int64")),  # (3,) not
    lambda a, b: mg.reduce_sum(a, axis=2),
    lambda a, b: mg.reshape(a, (4, 2)),
])
def test_shape_errors_are_the_graphs(build):
    """The eager path runs the ops' own infer_shape: the same inputs give the same error (or none)."""
    a_value, b_value = np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)
    pa, pb = mg.placeholder("a", (2, 3)), mg.placeholder("b", (2, 3))
    try:
        build(pa, pb)
        static_error = None
    except mg.ShapeError as error:
        static_error = str(error)
    try:
        build(Tensor(a_value, name="a"), Tensor(b_value, name="b"))
        eager_error = None
    except mg.ShapeError as error:
        eager_error = str(error)
    unique_suffix = re.compile(r"'(\w+?)_\d+'")  # graph names are made unique (add_3), eager ones are not
    assert [unique_suffix.sub(r"'\1'", e) if e else e for e in (static_error, eager_error)] == [eager_error] * 2


def test_numbers_take_the_dtype_of_the_tensor_beside_them_as_in_a_graph():
    for dtype in ("float32", "float64", "int64", "int32"):
        x, p = Tensor(np.arange(3, dtype=dtype)), mg.placeholder("p", (3,), dtype)
        for f in (lambda v: v * 2, lambda v: v * 0.5, lambda v: 1 - v, lambda v: v / 3, lambda v: v ** 2,
                  lambda v: v ** 2.0):  # the signature cache tells Pow(2) from Pow(2.0)
            assert f(x).dtype == f(p).dtype


def test_gradients_accumulate_across_backward_calls_and_can_be_zeroed():
    x = Tensor([1.0, -2.0], requires_grad=True)
    mg.reduce_sum(x * x).backward()
    mg.reduce_sum(x * 3.0).backward()
    np.testing.assert_array_equal(x.grad, [2.0 + 3.0, -4.0 + 3.0])
    x.zero_grad()
    assert x.grad is None
    mg.reduce_sum(x).backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    x.grad = None
    assert x.grad is None
    with pytest.raises(ValueError, match="must have its shape"):
        x.grad = np.zeros(3)


def test_backward_with_an_output_gradient_and_retain_graph():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(np.array([1.0, 0.0, -1.0]), retain_graph=True)
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, -6.0])
    y.backward(Tensor([1.0, 1.0, 1.0]))  # the tape was kept once; now it is freed
    np.testing.assert_array_equal(x.grad, [4.0, 4.0, 0.0])
    with pytest.raises(RuntimeError, match="backward through a freed tape"):
        y.backward(np.ones(3))


def test_clear_errors():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="is not a scalar; pass grad="):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(TypeError, match="only floating-point tensors can require a gradient; this one is int64"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="is not on a tape"):
        Tensor([1.0, 2.0]).backward(np.ones(2))
    with no_grad():
        y = mg.reduce_sum(x * x)
    with pytest.raises(RuntimeError, match="is not on a tape"):
        y.backward()
    with pytest.raises(ValueError, match="is not on a tape"):
        mg.gradients(y, x)
    with pytest.raises(ValueError, match="is not on a tape"):
        mg.gradients(mg.reduce_sum(x * x), Tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="jvp: the eager tensor .* is not on a tape"):
        mg.jvp(y, x, np.ones(2))  # y computed under no_grad(): zeros would be a silent wrong answer
    with pytest.raises(ValueError, match="jvp: the eager tensor .* is not on a tape"):
        mg.jvp(mg.reduce_sum(x * x), Tensor([1.0, 2.0]), np.ones(2))
    with pytest.raises(TypeError, match="cannot mix eager Tensors with the graph node 'p'"):
        x + mg.placeholder("p", (2,))
    with pytest.raises(TypeError, match="not the graph node"):
        Tensor(mg.placeholder("q", (2,)))
    with pytest.raises(TypeError, match="add: str 'a' is not a number"):
        x + "a"
    with pytest.raises(RuntimeError, match="requires a gradient, and an update in place"):
        x -= 1.0
    mg.argmax(x)  # an integer result is simply not on the tape
    with pytest.raises(RuntimeError, match="is not on a tape"):
        mg.cast(mg.argmax(x * 1.0), "float32").backward()


def test_backward_twice_through_a_freed_tape_and_shared_parts():
    x = Tensor([0.5, 1.5], requires_grad=True)
    h = mg.tanh(x)
    first, second = mg.reduce_sum(h), mg.reduce_sum(h * h)
    first.backward()
    with pytest.raises(RuntimeError, match="backward through a freed tape: 'reduce_sum'"):
        first.backward()
    with pytest.raises(RuntimeError, match="backward through a freed tape: 'tanh'"):
        second.backward()  # shares h, whose part of the tape the first backward freed
    with pytest.raises(RuntimeError, match="freed tape"):
        mg.gradients(second, x)


def test_a_leaf_updated_in_place_after_use_is_refused_by_backward():
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = mg.reduce_sum(w * w)
    with no_grad():
        w -= 0.5
    with pytest.raises(RuntimeError, match="was updated in place after mul used it"):
        loss.backward()
    loss = mg.reduce_sum(w * w)  # computed again: fine
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 3.0])


def test_in_place_operators_update_leaves_and_rebind_other_tensors():
    w = Tensor([1.0, 2.0])
    view = w.numpy()
    same = w
    w += 1.0
    w -= np.array([0.5, 0.5])
    w *= 2.0
    w /= 4.0
    assert w is same and w.is_leaf and w.dtype == np.float32
    np.testing.assert_array_equal(view, [0.75, 1.25])  # the view shows the update
    mg.assign(w, [3.0, 4.0])
    np.testing.assert_array_equal(w.numpy(), [3.0, 4.0])
    h = w * 1.0
    total = h
    total += 1.0  # not a leaf: a new tensor, h unchanged
    np.testing.assert_array_equal(h.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(total.numpy(), [4.0, 5.0])
    with pytest.raises(TypeError, match="only leaf tensors"):
        mg.assign_add(h, 1.0)
    with pytest.raises(TypeError, match="cannot write float32 values into int64"):
        mg.assign(Tensor([1, 2]), [0.5, 0.5])
    with pytest.raises(ValueError, match="read-only"):
        w.numpy()[0] = 1.0


def test_no_grad_records_nothing_and_works_as_a_decorator():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = x * x
    assert not y.requires_grad and y.inputs == ()

    @no_grad()
    def evaluate(v):
        return mg.tanh(v)

    assert not evaluate(x).requires_grad
    assert (x * x).requires_grad and (x * x).inputs[0] is x


def test_higher_order_gradients_through_mg_gradients():
    """mg.gradients on the tape returns tensors on the tape: differentiate again (here H v = 6 x v)."""
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True, dtype="float64")
    v = np.array([1.0, -1.0, 2.0])
    (g,) = mg.gradients(mg.reduce_sum(x ** 3), [x])
    assert g.requires_grad
    (hvp,) = mg.gradients(g, [x], grad_y=v)
    np.testing.assert_allclose(hvp.numpy(), 6 * np.array([1.0, 2.0, 3.0]) * v)
    mg.reduce_sum(g * v).backward()
    np.testing.assert_allclose(x.grad, 6 * np.array([1.0, 2.0, 3.0]) * v)


def test_forward_mode_on_the_tape():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True, dtype="float64")
    t = np.array([1.0, 0.5, -1.0])
    y = mg.softmax(x * x)
    p = mg.placeholder("x", (3,), "float64")
    static = mg.Session().run(mg.jvp(mg.softmax(p * p), p, t), {p: x.numpy()})
    np.testing.assert_allclose(mg.jvp(y, x, t).numpy(), static, rtol=1e-12)


def test_gradient_overrides_apply_to_backward():
    x = Tensor([3.0], requires_grad=True)
    with mg.gradient_override({mg.ops.Mul: lambda node, g: [g * 0.0 + 1.0, g * 0.0 + 1.0]}):
        mg.reduce_sum(x * x).backward()
    np.testing.assert_array_equal(x.grad, [2.0])


class Cube(mg.Op):
    """A new op, defined as chapter 02 and 03 define ops: x³, gradient 3x²g."""

    name = "cube"

    def compute(self, node, input_values):
        return input_values[0] ** 3

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]

    def gradient(self, node, output_grad):
        return [output_grad * 3.0 * node.inputs[0] * node.inputs[0]]


class Scaled(mg.Op):
    """An op with an unhashable parameter (a list): its signature is not cached, and it still works."""

    def __init__(self, factors):
        self.factors = list(factors)

    def compute(self, node, input_values):
        return input_values[0] * self.factors[0]

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]

    def gradient(self, node, output_grad):
        return [output_grad * self.factors[0]]


class WrongShape(Cube):
    def infer_shape(self, node, input_shapes):
        return (1, *input_shapes[0])


def test_a_new_op_runs_eagerly_with_its_own_gradient():
    x = Tensor([1.0, -2.0], requires_grad=True)
    y = mg.reduce_sum(Cube()(x) + Scaled([2.0])(x))
    assert y.item() == 1.0 - 8.0 + 2.0 * (1.0 - 2.0)
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0 + 2.0, 12.0 + 2.0])
    with pytest.raises(TypeError, match=r"cube: compute returned ndarray of shape \(2,\) .* say \(1, 2\)"):
        WrongShape()(x)


def test_the_tape_keeps_intermediates_alive_until_backward_frees_them():
    x = Tensor(np.ones(1000), requires_grad=True)
    h = mg.tanh(x)
    alive = weakref.ref(h)
    loss = mg.reduce_sum(h * h)
    del h
    gc.collect()
    assert alive() is not None  # the tape holds it: backward needs it
    loss.backward()
    gc.collect()
    assert alive() is None  # freed by backward
    with no_grad():
        h = mg.tanh(x)
        alive = weakref.ref(h)
        loss = mg.reduce_sum(h * h)
    del h
    gc.collect()
    assert alive() is None  # nothing was recorded


def test_values_reach_python_as_numbers_and_arrays():
    t = Tensor(2.5)
    assert t.item() == 2.5 and float(t) == 2.5 and int(t) == 2 and bool(t)
    assert list(range(Tensor(3))) == [0, 1, 2]
    assert f"{Tensor(2.5):.2f}" == "2.50" and f"{Tensor(2.5)}" == "tensor(2.5, dtype=float32)"
    np.testing.assert_array_equal(np.asarray(Tensor([1.0, 2.0])), [1.0, 2.0])
    assert repr(Tensor([1.0, 2.0], requires_grad=True)) == "tensor([1., 2.], dtype=float32, requires_grad=True)"
    assert Tensor(np.float64(1.0)).dtype == np.float64 and Tensor(1.0).dtype == np.float32
    assert Tensor([1, 2], dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_mg_draw_draws_the_tape():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    drawing = mg.draw(mg.reduce_sum(mg.tanh(x) * x))
    assert drawing.node_count == 4 and "tanh" in drawing.source


def test_grad_mode_switches():
    assert mg.eager.is_grad_enabled()
    previous = mg.eager.set_grad_enabled(False)
    try:
        assert previous is True and not mg.eager.is_grad_enabled()
        assert not (Tensor([1.0], requires_grad=True) * 2.0).requires_grad
    finally:
        mg.eager.set_grad_enabled(previous)
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert mg.eager.is_grad_enabled()  # restored after an exception
    assert Tensor([1.0]).is_leaf and not (Tensor([1.0], requires_grad=True) * 2.0).is_leaf


def test_a_negative_zero_is_not_the_cached_positive_zero():
    x = Tensor([1.0, -2.0])
    assert np.array_equal(np.signbit((x * 0.0).numpy()), [False, True])
    assert np.array_equal(np.signbit((x * -0.0).numpy()), [True, False])  # not the constant 0.0 cached above


def test_an_array_operand_makes_no_graph_node():
    """An array next to a tensor becomes a constant tensor directly: no graph Constant is made (whose name
    would count as one of the graph's), and numpy's rules for its dtype hold as for graph nodes."""
    def number_of(name):
        return int(name.rpartition("_")[2]) if "_" in name else 0

    x = Tensor(np.array([1.0, 2.0], np.float32))
    before = number_of(mg.constant(1.0).name)
    products = [x * np.array([2.0, 3.0], np.float32) for _ in range(3)]
    assert number_of(mg.constant(1.0).name) == before + 1
    assert products[0].dtype == np.float32 and np.array_equal(products[0].numpy(), [2.0, 6.0])
    assert (x * np.float64(2.0)).dtype == np.result_type(np.float32, np.float64(2.0))  # as in a graph
    with pytest.raises(TypeError, match="mul: str 'a' is not a number"):
        x * "a"
