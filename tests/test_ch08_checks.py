"""The checks of chapter 08: the reference solutions of solutions/08_eager_vs_static.ipynb pass, the stubs are "not
implemented yet", each typical wrong answer gets a report that names the mistake, and the package's own functions
are refused. Exercise 8.6's two MNIST epochs run in the solution notebook (nbval); here they are replaced by a fixed
history, so that the steps compared with the checker's own are tested quickly."""

import contextlib

import numpy as np
import pytest

import minigraph as mg
from minigraph.checks import ch08
from minigraph.eager import Tensor

from solution_code import solution_namespace

FAKE_HISTORY = {"epoch": [1, 2], "train_loss": [0.3, 0.2], "train_acc": [0.93, 0.95], "test_loss": [0.3, 0.2],
                "test_acc": [0.93, 0.95]}


SOLVED = solution_namespace("08_eager_vs_static.ipynb")
backward, Softplus, no_grad, Tracer, trace, WhileLoop, mean_loss, train_step = (
    SOLVED[name] for name in ("backward", "Softplus", "no_grad", "Tracer", "trace", "WhileLoop", "mean_loss",
                              "train_step"))


@pytest.fixture(autouse=True)
def recording_stays_on():
    """Every test leaves gradient recording as it found it: on."""
    assert mg.eager.is_grad_enabled()
    yield
    assert mg.eager.is_grad_enabled()


@pytest.fixture
def no_mnist_training(monkeypatch):
    """Exercise 8.6 without its two epochs: a fixed history stands in for the training."""
    monkeypatch.setattr(ch08, "_train_mnist", lambda train_step, backward, params, data: FAKE_HISTORY)


REFERENCES = {"8.1": ("backward",), "8.2": ("Softplus",), "8.3": ("no_grad",), "8.4": ("trace", "Tracer"),
              "8.5": ("WhileLoop",), "8.6": ("train_step", "backward")}


@pytest.mark.parametrize("exercise", sorted(REFERENCES))
def test_the_reference_solution_passes(run_check, no_mnist_training, exercise):
    result, report = run_check(exercise, *(SOLVED[name] for name in REFERENCES[exercise]))
    assert result, report
    assert report.startswith(f"✓ Exercise {exercise}")


def test_the_training_hands_back_its_history(run_check, no_mnist_training):
    result, report = run_check("8.6", train_step, backward)
    assert result.value is FAKE_HISTORY
    assert "20 steps equal to the checker's own" in report, report


def test_too_low_an_accuracy_fails(run_check, monkeypatch):
    low = {**FAKE_HISTORY, "test_acc": [0.5, 0.6]}
    monkeypatch.setattr(ch08, "_train_mnist", lambda train_step, backward, params, data: low)
    result, report = run_check("8.6", train_step, backward)
    assert not result and "the test accuracy is 0.6000" in report, report


def unfinished_function(exercise):
    def unfinished(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise}")

    return unfinished


def unfinished_class(base, exercise):
    """A subclass of ``base`` whose methods are stubs, as the exercise notebook has it."""
    stubs = {name: unfinished_function(exercise) for name in ("compute", "infer_shape", "gradient")}
    return type(base.__name__, (base,), stubs)


@pytest.mark.parametrize("exercise", sorted(REFERENCES))
def test_a_stub_is_not_implemented_yet(run_check, no_mnist_training, exercise):
    answers = [SOLVED[name] for name in REFERENCES[exercise]]
    if isinstance(answers[0], type):  # an op to write (8.2, 8.5): its methods are the stubs
        answers[0] = unfinished_class(answers[0], exercise)
    else:
        answers[0] = unfinished_function(exercise)
    result, report = run_check(exercise, *answers)
    assert result.status == "not implemented", report
    assert "not implemented yet" in report


def test_a_training_step_before_backward_is_written_says_which_exercise_comes_first(run_check, no_mnist_training):
    result, report = run_check("8.6", train_step, unfinished_function("8.1"))
    assert result.status == "not implemented" and "it needs exercise 8.1 first" in report, report


# ---------------------------------------------------------------------------------------------- 8.1


def reverse_mode(y, grad=None, *, order=reversed, accumulate_adjoints=True, accumulate_grad=True,
                 only_requested=True, only_leaves=True, use_seed=True, refuse_vectors=True):
    """backward with the choices a learner gets wrong switched by keywords."""
    if grad is None or not use_seed:
        if y.shape != () and refuse_vectors:
            raise RuntimeError("backward: y is not a scalar")
        grad = np.ones(y.shape)
    adjoints = {y: Tensor(grad, dtype=y.dtype)}
    with mg.eager.no_grad():
        for node in order(mg.topological_sort([y])):
            if node not in adjoints:
                continue
            adjoint = adjoints.pop(node)
            if node.is_leaf or not only_leaves:
                if accumulate_grad and node.grad is not None:
                    node.grad = node.grad + adjoint.value()
                else:
                    node.grad = adjoint.value()
                if node.is_leaf:
                    continue
            for x, g in zip(node.inputs, mg.gradient_rule(node.op)(node, adjoint)):
                if g is None or (only_requested and not x.requires_grad):
                    continue
                adjoints[x] = adjoints[x] + g if x in adjoints and accumulate_adjoints else g


def backward_in_topological_order(y, grad=None):
    return reverse_mode(y, grad, order=list)


def backward_overwriting_adjoints(y, grad=None):
    return reverse_mode(y, grad, accumulate_adjoints=False)


def backward_replacing_grad(y, grad=None):
    return reverse_mode(y, grad, accumulate_grad=False)


def backward_to_every_leaf(y, grad=None):
    return reverse_mode(y, grad, only_requested=False)


def backward_keeping_every_adjoint(y, grad=None):
    return reverse_mode(y, grad, only_leaves=False)


def backward_seeding_ones(y, grad=None):
    return reverse_mode(y, grad, use_seed=False, refuse_vectors=False)


def backward_of_sum_for_vectors(y, grad=None):
    return reverse_mode(y, grad, refuse_vectors=False)


def backward_only_to_direct_inputs(y, grad=None):
    """Treats y's inputs as if they were leaves: the gradient stops after one op."""
    for x, g in zip(y.inputs, mg.gradient_rule(y.op)(y, mg.ones_like(y))):
        if x.is_leaf and x.requires_grad:
            x.grad = g.value()


# ---------------------------------------------------------------------------------------------- 8.2


class SoftplusOverflowing(Softplus):
    def compute(self, node, input_values):
        return np.log1p(np.exp(input_values[0]))


class SoftplusLosingTinyValues(Softplus):
    def compute(self, node, input_values):
        x = input_values[0]
        return np.maximum(x, 0) + np.log(1 + np.exp(-np.abs(x)))


class SoftplusInFloat64(Softplus):
    def compute(self, node, input_values):
        return np.logaddexp(0.0, np.asarray(input_values[0], np.float64))


class SoftplusWithoutShape(Softplus):
    def infer_shape(self, node, input_shapes):
        return None


class SoftplusWithAShapeThatIsANumber(Softplus):
    def infer_shape(self, node, input_shapes):
        return len(input_shapes[0])


class SoftplusGradientNotInAList(Softplus):
    def gradient(self, node, output_grad):
        return output_grad * mg.sigmoid(node.inputs[0])


class SoftplusGradientWithoutTheAdjoint(Softplus):
    def gradient(self, node, output_grad):
        return [mg.sigmoid(node.inputs[0])]


class SoftplusGradientOverflowing(Softplus):
    def gradient(self, node, output_grad):
        e = mg.exp(node.inputs[0])
        return [output_grad * e / (1 + e)]


class SoftplusGradientAsAnArray(Softplus):
    def gradient(self, node, output_grad):
        return [np.ones(3)]


# ---------------------------------------------------------------------------------------------- 8.3


@contextlib.contextmanager
def no_grad_without_finally():
    previous = mg.eager.set_grad_enabled(False)
    yield
    mg.eager.set_grad_enabled(previous)


@contextlib.contextmanager
def no_grad_turning_recording_on_after():
    mg.eager.set_grad_enabled(False)
    try:
        yield
    finally:
        mg.eager.set_grad_enabled(True)


@contextlib.contextmanager
def no_grad_swallowing_exceptions():
    previous = mg.eager.set_grad_enabled(False)
    try:
        yield
    except Exception:
        pass
    finally:
        mg.eager.set_grad_enabled(previous)


def no_grad_without_the_decorator():
    previous = mg.eager.set_grad_enabled(False)
    try:
        yield
    finally:
        mg.eager.set_grad_enabled(previous)


recording = True


@contextlib.contextmanager
def no_grad_with_a_flag_of_its_own():
    global recording
    previous, recording = recording, False
    try:
        yield
    finally:
        recording = previous


class NoGradOnlyForWith:
    def __enter__(self):
        self.previous = mg.eager.set_grad_enabled(False)

    def __exit__(self, *error):
        mg.eager.set_grad_enabled(self.previous)


def no_grad_only_for_with():
    return NoGradOnlyForWith()


# ---------------------------------------------------------------------------------------------- 8.4


class TracerLettingReadsThrough(Tracer):
    def read(self, tensor, what):
        pass


def tracing_with(tracer_class, fn, arrays, placeholder_shape=lambda tensor: tensor.shape, result=None):
    tracer = tracer_class()
    tensors = [Tensor(a) for a in arrays]
    placeholders = [mg.placeholder(f"arg{i}", placeholder_shape(t), t.dtype) for i, t in enumerate(tensors)]
    tracer.nodes.update(zip(tensors, placeholders))
    with mg.eager.recording(tracer):
        output = fn(*tensors)
    return placeholders, (result or tracer.node)(output)


def trace_letting_reads_through(fn, *arrays):
    return tracing_with(TracerLettingReadsThrough, fn, arrays)


def trace_without_static_shapes(fn, *arrays):
    return tracing_with(Tracer, fn, arrays, placeholder_shape=lambda tensor: None)


def trace_returning_the_tensor(fn, *arrays):
    return tracing_with(Tracer, fn, arrays, result=lambda tensor: tensor)


class TracerReadingWithNumpy(Tracer):
    def node(self, tensor):
        if tensor not in self.nodes:
            self.nodes[tensor] = mg.constant(tensor.numpy())
        return self.nodes[tensor]


def trace_reading_constants_with_numpy(fn, *arrays):
    return tracing_with(TracerReadingWithNumpy, fn, arrays)


def trace_through_mg_function(fn, *arrays):
    traced = mg.function(fn)
    traced(*arrays)
    return traced.traces[0].placeholders, traced.traces[0].fetches[0]


# ---------------------------------------------------------------------------------------------- 8.5


class WhileLoopAsIf(WhileLoop):
    def compute(self, node, input_values):
        x = np.array(input_values[0])
        if self.cond(x):
            x = self.body(x)
        return x


class WhileLoopTestingAfterTheBody(WhileLoop):
    def compute(self, node, input_values):
        x = self.body(np.array(input_values[0]))
        while self.cond(x):
            x = self.body(x)
        return x


class WhileLoopReturningItsInput(WhileLoop):
    def compute(self, node, input_values):
        x = input_values[0]
        while self.cond(x):
            x = self.body(x)
        return x


class WhileLoopReturningAList(WhileLoop):
    def compute(self, node, input_values):
        return list(super().compute(node, input_values))


class WhileLoopWithoutShape(WhileLoop):
    def infer_shape(self, node, input_shapes):
        return None


# ---------------------------------------------------------------------------------------------- 8.6


def sgd_step(params, x, y, learning_rate, backward, *, loss=None, direction=-1, backward_calls=1,
             off_the_tape=True, in_place=True, zero=True):
    """train_step with the choices a learner gets wrong switched by keywords."""
    loss = (loss or mean_loss)(params, x, y)
    for _ in range(backward_calls):
        backward(loss)
    with mg.eager.no_grad() if off_the_tape else contextlib.nullcontext():
        for p in params:
            step = direction * learning_rate * p.grad / backward_calls
            if in_place:
                p += step
            else:
                p = p + step  # the mistake under test: a new tensor, the parameter unchanged
    for p in params if zero else ():
        p.grad = None
    return loss


def step_without_zeroing(params, x, y, learning_rate, backward):
    return sgd_step(params, x, y, learning_rate, backward, zero=False)


def step_rebinding_the_parameters(params, x, y, learning_rate, backward):
    return sgd_step(params, x, y, learning_rate, backward, in_place=False)


def step_updating_on_the_tape(params, x, y, learning_rate, backward):
    return sgd_step(params, x, y, learning_rate, backward, off_the_tape=False)


def step_with_the_summed_loss(params, x, y, learning_rate, backward):
    def summed_loss(params, x, y):
        return mg.reduce_sum(mg.softmax_cross_entropy(SOLVED["mlp"](params, x), y))

    return sgd_step(params, x, y, learning_rate, backward, loss=summed_loss)


def step_climbing(params, x, y, learning_rate, backward):
    return sgd_step(params, x, y, learning_rate, backward, direction=1)


def step_calling_backward_twice(params, x, y, learning_rate, backward):
    return sgd_step(params, x, y, learning_rate, backward, backward_calls=2)


def step_with_the_tensor_method(params, x, y, learning_rate, backward):
    loss = mean_loss(params, x, y)
    loss.backward()
    return loss


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("exercise, answers, message", [
    ("8.1", (backward_in_topological_order,), "x.grad is None after backward(y), but y depends on x, which requires a "
     "gradient. Walk the tape from y backwards"),
    ("8.1", (backward_only_to_direct_inputs,), "x.grad is None after backward(y)"),
    ("8.1", (backward_overwriting_adjoints,), "a is read by three ops: its adjoint is the sum of the three partial "
     "adjoints they send it"),
    ("8.1", (backward_replacing_grad,), "gradients add up across calls"),
    ("8.1", (backward_to_every_leaf,), "w.grad should stay None: w was made without requires_grad=True"),
    ("8.1", (backward_keeping_every_adjoint,), "a = x * w got a .grad: only leaves"),
    ("8.1", (backward_seeding_ones,), "d(sum(y * grad))/dx = w * grad (start from grad, not from ones)"),
    ("8.1", (backward_of_sum_for_vectors,), "backward(y) of a y of shape (3,), without grad=, should raise an error"),
    ("8.2", (SoftplusOverflowing,), "compute overflowed: exp(1000) is inf in float64"),
    ("8.2", (SoftplusLosingTinyValues,), "log(1 + e) rounds 1 + e to 1 when e < 1e-16"),
    ("8.2", (SoftplusInFloat64,), "compute turned float32 into float64: keep the input's dtype"),
    ("8.2", (SoftplusWithoutShape,), "the shape of softplus(x) (infer_shape"),
    ("8.2", (SoftplusWithAShapeThatIsANumber,), "building the node softplus(x) raised TypeError"),
    ("8.2", (SoftplusGradientNotInAList,), "gradient should return a list with one node per input"),
    ("8.2", (SoftplusGradientAsAnArray,), "gradient returned a ndarray for dL/dx; it must be a node built from ops"),
    ("8.2", (SoftplusGradientWithoutTheAdjoint,), "dL/dx in a graph (mg.gradients), which is v * sigmoid(x)"),
    ("8.2", (SoftplusGradientOverflowing,), "the gradient is not finite far in the tails"),
    ("8.3", (no_grad_without_finally,), "an exception inside the block must not leave recording off"),
    ("8.3", (no_grad_turning_recording_on_after,), "the inner block ended, the outer one has not. Restore the setting "
     "from before the block"),
    ("8.3", (no_grad_swallowing_exceptions,), "your no_grad swallowed an exception"),
    ("8.3", (no_grad_without_the_decorator,), "no_grad() returned generator, which `with` cannot use: decorate the "
     "generator function with @contextlib.contextmanager"),
    ("8.3", (no_grad_with_a_flag_of_its_own,), "the result of x * 2 is still on the tape"),
    ("8.3", (no_grad_only_for_with,), "no_grad() should also work as a decorator"),
    ("8.4", (trace_letting_reads_through, Tracer), "your tracer let it: the graph keeps the branch taken for [3, 4]"),
    ("8.4", (trace_without_static_shapes, Tracer), "the placeholder of argument 0 should have the argument's shape and "
     "dtype"),
    ("8.4", (trace_returning_the_tensor, Tracer), "the output should be the graph node that stands for the result, "
     "not the Tensor computed eagerly"),
    ("8.4", (trace_reading_constants_with_numpy, Tracer), "but this function reads no value: does your tracer read one "
     "itself, with .numpy()?"),
    ("8.5", (WhileLoopAsIf,), "the loop's result after 4 iteration(s) differs"),
    ("8.5", (WhileLoopTestingAfterTheBody,), "the loop's result after 0 iteration(s)"),
    ("8.5", (WhileLoopReturningItsInput,), "your compute returned the input's own array"),
    ("8.5", (WhileLoopReturningAList,), "compute(node, [x]) should be a numpy array"),
    ("8.5", (WhileLoopWithoutShape,), "the shape of the loop's result"),
    ("8.6", (step_without_zeroing, backward), "after your step W1.grad still holds this step's gradient"),
    ("8.6", (step_rebinding_the_parameters, backward), "your step left W1 unchanged"),
    ("8.6", (step_updating_on_the_tape, backward), "update it inside `with mg.eager.no_grad():`"),
    ("8.6", (step_with_the_summed_loss, backward), "the loss your step returns differs from the mean cross-entropy"),
    ("8.6", (step_climbing, backward), "after your step W1 differs from one SGD step, W1 - learning_rate * dL/dW1"),
    ("8.6", (step_calling_backward_twice, backward), "train_step called backward 2 times"),
])
def test_a_typical_mistake_is_named(run_check, no_mnist_training, exercise, answers, message):
    result, report = run_check(exercise, *answers)
    assert not result and result.status == "failed", report
    assert message in report, report
    assert "hint:" in report


@pytest.mark.parametrize("exercise, answers, name", [
    ("8.1", (mg.eager.backward,), "you passed mg.eager.backward itself"),
    ("8.1", (lambda y, grad=None: y.backward(grad),), "your code called mg.eager.Tensor.backward"),
    ("8.1", (lambda y, grad=None: mg.gradients(y, [y]),), "your code called mg.gradients"),
    ("8.1", (lambda y, grad=None: mg.memory.checkpointed_gradients(y, [y], []),),
     "your code called mg.memory.checkpointed_gradients"),
    ("8.3", (mg.eager.no_grad,), "you passed mg.eager.no_grad itself"),
    ("8.3", (lambda: mg.eager.no_grad(),), "your code called mg.eager.no_grad"),
    ("8.4", (mg.function, Tracer), "you passed mg.function itself"),
    ("8.4", (trace_through_mg_function, Tracer), "your code called mg.function"),
    ("8.6", (step_with_the_tensor_method, backward), "your code called mg.eager.Tensor.backward"),
    ("8.6", (train_step, mg.eager.backward), "you passed mg.eager.backward itself"),
])
def test_the_packages_own_implementation_does_not_pass(run_check, no_mnist_training, exercise, answers, name):
    result, report = run_check(exercise, *answers)
    assert not result and name in report and "minigraph's own version" in report, report


def test_the_checks_central_differences_agree_with_the_packages_backward():
    """8.1 compares with central differences; on its expressions they agree with minigraph's backward."""
    for expression, values, f, why in ch08._tape_cases():
        leaves = ch08._leaves(values)
        f(leaves).backward()
        for name, tensor in leaves.items():
            np.testing.assert_allclose(tensor.grad, ch08._central_differences(f, values, name), rtol=1e-6,
                                       err_msg=expression)


def test_the_checks_reference_step_is_the_packages_sgd():
    """8.6's reference step is one SGD step with minigraph's backward."""
    params, expected = ch08._mlp_parameters(), ch08._mlp_parameters()
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 784), dtype=np.float32), rng.integers(0, 10, 16)
    ch08._reference_step(params, x, y)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(ch08._logits(expected, x), y))
    grads = mg.gradients(loss, expected)
    for p, q, g in zip(params, expected, grads):
        np.testing.assert_allclose(p.value(), q.value() - ch08.LEARNING_RATE * g.value(), rtol=1e-6, atol=1e-7)
        assert p.grad is None
