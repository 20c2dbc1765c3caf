"""mg.function: traced graphs give the eager results (bit for bit), retrace exactly when the signature
changes, read and update the eager parameters, and refuse Python decisions on traced values."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigraph as mg
from minigraph.eager import Tensor, no_grad

from test_eager import build, builds, compositions, seeds


@settings(max_examples=30, deadline=None)
@given(steps=compositions(), n=st.integers(1, 3), seed=seeds)
def test_traced_results_equal_eager_results(steps, n, seed):
    assume(builds(steps, n))
    rng = np.random.default_rng(seed)

    def f(a, b):
        return build(steps, a, b)

    traced = mg.function(f)
    for _ in range(3):  # the first call traces, the others run the graph
        a, b = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))
        assert traced(a, b).item() == f(Tensor(a), Tensor(b)).item()
    assert len(traced.traces) == 1


def make_model(seed=0):
    """A 4-8-3 tanh network's parameters, and zero momentum buffers (state updated in place, not trained)."""
    rng = np.random.default_rng(seed)
    params = [Tensor(rng.standard_normal((4, 8)) * 0.5, requires_grad=True, dtype="float32", name="W1"),
              Tensor(np.zeros(8), requires_grad=True, dtype="float32", name="b1"),
              Tensor(rng.standard_normal((8, 3)) * 0.5, requires_grad=True, dtype="float32", name="W2"),
              Tensor(np.zeros(3), requires_grad=True, dtype="float32", name="b2")]
    return params, [Tensor(np.zeros(p.shape), dtype="float32", name=f"v_{p.name}") for p in params]


def momentum_step_for(params, velocities, lr=0.5, momentum=0.9):
    def momentum_step(x, y):
        W1, b1, W2, b2 = params
        loss = mg.reduce_mean(mg.softmax_cross_entropy(mg.tanh(x @ W1 + b1) @ W2 + b2, y))
        with no_grad():
            for p, v, g in zip(params, velocities, mg.gradients(loss, params)):
                v *= momentum  # three updates in place, each reading the one before
                v += g
                p -= lr * v
        return loss
    return momentum_step


@pytest.mark.parametrize("optimize", [False, True], ids=["as traced", "optimized"])
@pytest.mark.parametrize("memory", ["plan", "naive"])
def test_training_eagerly_and_traced_gives_the_same_bits(memory, optimize):
    rng = np.random.default_rng(1)
    data = [(rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 3, 5)) for _ in range(6)]
    (eager_params, eager_state), (traced_params, traced_state) = make_model(), make_model()
    eager_step = momentum_step_for(eager_params, eager_state)
    traced_step = mg.function(momentum_step_for(traced_params, traced_state), memory=memory,
                              optimize=optimize)  # Session options
    for x, y in data:
        assert eager_step(x, y).item() == traced_step(x, y).item()
    for p, q in zip(eager_params + eager_state, traced_params + traced_state):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert len(traced_step.traces) == 1
    trace = traced_step.traces[0]
    assert [p.name for p in trace.placeholders] == ["x", "y"]
    assert sorted(v.name for v in trace.variables if v.trainable) == ["W1", "W2", "b1", "b2"]
    assert len(trace.variables) == 8 and len(trace.updates) == 8  # one assign per updated tensor
    assert traced_step.session.memory == memory
    (executor,) = traced_step.session._executors.values()  # one graph, compiled once
    fused = [n for n in mg.topological_sort(executor.computed) if isinstance(n.op, mg.passes.FusedElementwise)]
    assert len(fused) >= 8 if optimize else not fused  # the momentum updates run as fused kernels


def test_a_new_signature_retraces_and_the_same_one_does_not():
    calls = []

    @mg.function
    def f(x, scale=1.0):
        calls.append(x.shape)  # a Python side effect: runs only while tracing
        return mg.reduce_sum(x) * scale

    f(np.ones((2, 3), np.float32))
    f(np.zeros((2, 3), np.float32))
    f(Tensor(np.ones((2, 3), np.float32)))  # a Tensor of that shape and dtype is another signature
    assert len(f.traces) == 2
    f(np.ones((4, 3), np.float32))  # new shape
    f(np.ones((2, 3), np.float64))  # new dtype
    f(np.ones((2, 3), np.float32), scale=2.0)  # new Python value
    f(np.ones((2, 3), np.float32), scale=2.0)
    assert len(f.traces) == 5 and calls == [(2, 3), (2, 3), (4, 3), (2, 3), (2, 3)]
    assert f(np.ones((2, 3), np.float32), scale=2.0).item() == 12.0
    assert f(scale=3.0, x=np.ones((4, 3), np.float32)).item() == 36.0  # keywords, in any order


def test_parameters_are_read_by_reference_and_updated_in_place():
    w = Tensor([1.0, 2.0], name="w")

    @mg.function
    def f(x):
        return mg.reduce_sum(x * w)

    assert f(np.ones(2, np.float32)).item() == 3.0
    w += 10.0  # changed outside: the graph reads the tensor's current value
    assert f(np.ones(2, np.float32)).item() == 23.0

    @mg.function
    def decay(factor):
        w.__imul__(factor)  # w *= factor, in place on the tensor from outside
        return mg.reduce_sum(w)

    assert decay(np.float32(0.5)).item() == 11.5 and decay(np.float32(0.5)).item() == 5.75
    np.testing.assert_array_equal(w.numpy(), [2.75, 3.0])
    assert len(decay.traces) == 1 and mg.draw(decay.traces[0].fetches).node_count > 3


def test_reads_after_an_update_see_the_new_value_as_eagerly():
    w = Tensor([1.0, 2.0])

    def f(x):
        before = mg.reduce_sum(w * x)
        w.__isub__(x)
        after = mg.reduce_sum(w * x)
        return before, after

    eager_results = [t.item() for t in f(np.ones(2, np.float32))]
    w -= -1.0  # back to [1, 2]
    traced = mg.function(f)
    assert [t.item() for t in traced(np.ones(2, np.float32))] == eager_results == [3.0, 1.0]
    w -= -1.0
    assert [t.item() for t in traced(np.ones(2, np.float32))] == eager_results


def test_backward_after_a_traced_update_is_refused():
    w = Tensor([1.0, 2.0], requires_grad=True)

    @mg.function
    def step(lr):
        with no_grad():
            w.__isub__(lr * w)
        return None

    assert step(np.float32(0.5)) is None  # traced (and run eagerly once)
    loss = mg.reduce_sum(w * w)
    assert step(np.float32(0.5)) is None  # run by the graph: w changes under the tape of loss
    np.testing.assert_array_equal(w.numpy(), [0.25, 0.5])
    with pytest.raises(RuntimeError, match="was updated in place after mul used it"):
        loss.backward()


@pytest.mark.parametrize("body", [
    lambda x: x * 2 if float(mg.reduce_sum(x)) > 0 else x,
    lambda x: x * 2 if mg.reduce_sum(x).item() > 0 else x,
    lambda x: x * 2 if mg.equal(mg.reduce_sum(x), 0.0) else x,
    lambda x: x * 2 if np.asarray(x)[0] > 0 else x,
    lambda x: x * 2 if x.numpy()[0] > 0 else x,
    lambda x: mg.reduce_sum(x) * len(range(mg.cast(mg.reduce_sum(x), "int64"))),
    lambda x: x * float(f"{mg.reduce_sum(x):.1f}"),
])
def test_python_decisions_on_traced_values_are_refused(body):
    f = mg.function(body)
    with pytest.raises(mg.TracingError, match="Python needs the value of .* while tracing"):
        f(np.array([1.0, 2.0], np.float32))


def test_a_data_dependent_loop_is_refused_and_its_fix_traces():
    def halve_until_small(x):  # the number of halvings depends on the values
        while float(mg.reduce_sum(x * x)) > 1.0:
            x = x * 0.5
        return x

    with pytest.raises(mg.TracingError, match=r"\(float\(\)\)"):
        mg.function(halve_until_small)(np.array([3.0, 4.0]))

    def halve_n_times(x, n):  # the fix: the count is a Python argument (part of the signature)
        for _ in range(n):
            x = x * 0.5
        return x

    f = mg.function(halve_n_times)
    np.testing.assert_array_equal(f(np.array([3.0, 4.0]), 3).numpy(), [0.375, 0.5])
    np.testing.assert_array_equal(f(np.array([3.0, 4.0]), 3).numpy(), halve_n_times(Tensor([3.0, 4.0], dtype="float64"), 3).numpy())


def test_shape_dependent_code_and_constant_values_are_not_refused():
    @mg.function
    def f(x):
        if x.shape[0] > 2:  # a shape: part of the signature
            x = x * 2.0
        scale = Tensor(3.0)  # made inside, from a constant: its value is the same in every call
        if float(scale) > 1.0:
            x = x * scale
        return mg.reduce_sum(x) / x.shape[0]

    assert f(np.ones(2, np.float32)).item() == 3.0
    assert f(np.ones(4, np.float32)).item() == 6.0
    assert f(np.full(4, 2.0, np.float32)).item() == 12.0 and len(f.traces) == 2


def test_backward_and_grad_inside_a_traced_function_are_refused():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(mg.TracingError, match=r"backward\(\) inside a traced function.*mg.gradients"):
        mg.function(lambda x: mg.reduce_sum(w * x).backward())(np.ones(2, np.float32))
    w.grad = np.ones(2)
    with pytest.raises(mg.TracingError, match=r"\.grad inside a traced function"):
        mg.function(lambda x: x * w.grad)(np.ones(2, np.float32))


def test_other_errors():
    with pytest.raises(mg.TracingError, match="updates 'x' .* in place, but it is an argument"):
        mg.function(lambda x: x.__iadd__(1.0))(np.ones(2, np.float32))
    with pytest.raises(mg.TracingError, match="returned a float"):
        mg.function(lambda x: 1.0)(np.ones(2))
    with pytest.raises(TypeError, match="the argument 'p' .* is a graph node"):
        mg.function(lambda x: x)(mg.placeholder("p", (2,)))
    with pytest.raises(TypeError, match="an argument is a list"):
        mg.function(lambda x: x)([1.0, 2.0])
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        mg.function(lambda x: x, bogus=True)
    w = Tensor([1.0, 2.0], requires_grad=True)
    h = w * 2.0  # on a tape, outside the function
    with pytest.raises(mg.TracingError, match="was computed outside the traced function, on a tape"):
        mg.function(lambda x: mg.reduce_sum(h * x))(np.ones(2, np.float32))


def test_structures_nested_functions_and_session_options():
    sorted_fetches = []

    def sort(fetches):
        sorted_fetches.append(fetches)
        return mg.topological_sort(fetches)

    @mg.function
    def inner(x):
        return x * 2.0

    @mg.function(sort=sort)
    def outer(x):
        doubled = inner(x)  # traced as part of outer
        return {"sum": mg.reduce_sum(doubled), "parts": (doubled, None)}

    for _ in range(2):
        result = outer(np.array([1.0, 2.0], np.float32))
        assert result["sum"].item() == 6.0 and result["parts"][1] is None
        np.testing.assert_array_equal(result["parts"][0].numpy(), [2.0, 4.0])
        assert not result["sum"].requires_grad
    assert len(sorted_fetches) == 1 and inner.traces == []  # one graph compiled, by outer's Session
    assert repr(outer.traces[0]).startswith("<trace of outer(x (2,) float32): ")


def test_dropout_draws_the_same_masks_eagerly_and_traced():
    x = np.ones((3, 4), np.float32)
    rng = np.random.default_rng(0)
    eager = [mg.nn.dropout(Tensor(x), 0.5, rng=rng).numpy() for _ in range(3)]
    rng = np.random.default_rng(0)
    traced = mg.function(lambda x: mg.nn.dropout(x, 0.5, rng=rng))  # the op draws from rng at every run
    results = [traced(x).numpy() for _ in range(3)]
    np.testing.assert_array_equal(eager, results)
    assert len({r.tobytes() for r in results}) == 3


def test_a_tiny_tracer_can_be_built_on_the_recording_hook():
    """What an exercise asks: an observer of eager ops that builds the graph (without mg.function)."""
    class TinyTracer:
        def __init__(self):
            self.nodes = {}

        def created(self, tensor):
            self.nodes[tensor] = mg.constant(tensor.value())

        def record(self, op, inputs, output):  # a tensor not seen before is a constant (3.0 below)
            self.nodes[output] = op(*[self.nodes[x] if x in self.nodes else mg.constant(x.value()) for x in inputs])

        def read(self, tensor, what):
            pass

    x = Tensor([1.0, 2.0])
    tracer = TinyTracer()
    tracer.nodes[x] = placeholder = mg.placeholder("x", (2,))
    with mg.eager.recording(tracer):
        y = mg.reduce_sum(mg.tanh(x) * 3.0)
    assert mg.Session().run(tracer.nodes[y], {placeholder: [0.5, 1.0]}) == np.float32(np.sum(np.tanh([0.5, 1.0]) * 3))
