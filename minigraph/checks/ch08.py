r"""Checks of chapter 08, eager vs static.

- 8.1 ``backward(y, grad=None)``: reverse mode over the tape — every leaf that requires a gradient gets
  ``d(sum(y * grad))/dx`` added to its ``.grad``; compared with central differences on expressions with a tensor
  used by several ops (a diamond), a tensor used twice by one op, broadcasting and a matrix product; then the
  rules of the tape: only leaves that require a gradient get one, gradients add up across calls, ``grad=`` seeds
  a non-scalar ``y``, and a non-scalar ``y`` without it is an error.
- 8.2 ``Softplus``: an op with ``compute``, ``infer_shape`` and ``gradient``, checked against the checker's own
  stable formula (far into both tails), in a graph (its gradient, and the gradient of its gradient) and eagerly
  (central differences of the learner's own values).
- 8.3 ``no_grad()``: a context manager (and decorator) that turns recording off and restores the setting from
  before — after nested blocks, a block entered with recording already off, and an exception.
- 8.4 ``trace(fn, *arrays)`` and its ``Tracer``: a tiny tracer on ``mg.eager.recording`` — placeholders for the
  arguments, the graph node of the result; a Session run of it equals eager execution on new inputs; a value
  read while tracing is refused with ``mg.TracingError``.
- 8.5 ``WhileLoop(cond, body)``: a data-dependent loop as one graph op, equal to a Python loop eagerly and, traced
  once by ``mg.function``, for inputs that take 0 to 13 iterations.
- 8.6 ``train_step(params, x, y, learning_rate, backward)``: an eager SGD step of an MLP with the learner's
  ``backward``, compared step by step with the checker's own step, then two epochs of MNIST (the history comes
  back as ``check(...).value``).

References are the checker's own: central differences of eager forward passes, numpy formulas, Python loops, and
its own SGD step; the package's ``backward`` serves only the checker's reference step of 8.6 and 8.2's eager use.
"""


import numpy as np

from .. import autodiff, eager, memory, tf, tracing
from ..eager import Tensor
from ..gradcheck import numerical_gradient
from ..graph import Node, Placeholder, placeholder
from ..init import he_normal
from ..ops import matmul, reduce_mean, reduce_sum, relu, softmax_cross_entropy, tanh
from ..session import Session
from .expect import reported_as_failure
from .framework import CheckFailure, Passed, Text, exercise, expect_close, expect_equal, expect_shape, is_close
from .training import history_by_epoch, mnist_splits

EPS = 1e-6  # central differences, in float64
# the package's own reverse mode, refused in 8.1 (backward) and 8.6 (the backward train_step is given)
PACKAGE_GRADIENTS = (eager.backward, Tensor.backward, autodiff.gradients, tf.gradients, memory.checkpointed_gradients)


# ---------------------------------------------------------------------------------------------- helpers


def _leaves(values, requires_grad=True):
    """Fresh float64 leaf tensors for ``{name: value}``."""
    return {name: Tensor(np.array(value, np.float64), requires_grad=requires_grad, name=name)
            for name, value in values.items()}


def _central_differences(f, values, name):
    """``d(sum(f(values)))/d values[name]`` by central differences of eager forward passes (off the tape)."""
    def loss(value):
        with eager.no_grad():
            return f({key: Tensor(value if key == name else other, name=key) for key, other in values.items()}).value()

    return numerical_gradient(loss, values[name], EPS)


# ---------------------------------------------------------------------------------------------- 8.1


def _diamond_above(a):
    """y = sum(tanh(a) * a + a): three ops read a."""
    return reduce_sum(tanh(a) * a + a)


def _diamond(t):
    return _diamond_above(t["x"] * t["w"])


def _tape_cases():
    """``(expression, leaves, f, why)``: ``f(tensors) -> y`` and what the case is about; the leaves are float64."""
    rng = np.random.default_rng(8)
    yield ("y = sum(tanh(x * w))", {"x": rng.normal(size=3), "w": rng.normal(size=3)},
           lambda t: reduce_sum(tanh(t["x"] * t["w"])), "a chain of three ops")
    yield ("a = x * w; y = sum(tanh(a) * a + a)", {"x": rng.normal(size=3), "w": rng.normal(size=3)}, _diamond,
           "a is read by three ops: its adjoint is the sum of the three partial adjoints they send it, complete "
           "only once all three have been visited")
    yield ("y = sum(x * x) * 3 + sum(x)", {"x": rng.normal(size=(2, 2))},
           lambda t: reduce_sum(t["x"] * t["x"]) * 3.0 + reduce_sum(t["x"]),
           "x * x sends x two partial adjoints, one per input, and sum(x) a third")
    yield ("h = tanh(x @ W + b); y = mean(h * h) + sum(b)",
           {"x": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)},
           lambda t: reduce_mean(tanh(matmul(t["x"], t["W"]) + t["b"]) ** 2) + reduce_sum(t["b"]),
           "b is broadcast over the 4 rows, and also read by the last op")


def _expect_gradients(leaves, expected, given, why):
    for name, tensor in leaves.items():
        grad = tensor.grad
        if grad is None:
            raise CheckFailure(f"{name}.grad is None after backward(y), but y depends on {name}, which requires a "
                               "gradient. Walk the tape from y backwards — reversed(mg.topological_sort([y])) — so "
                               "that each tensor is visited after every op that reads it", input=given)
        expect_close(grad, expected[name], input={**given, "why": Text(why)}, rtol=1e-5, atol=1e-7,
                     what=f"{name}.grad (central differences)")


def _expect_refused_non_scalar(backward):
    t = _leaves({"x": [1.0, 2.0, 3.0]})
    y = t["x"] * 2.0
    given = {"y": Text("x * 2, of shape (3,)"), "call": Text("backward(y)")}
    try:
        backward(y)
    except (RuntimeError, ValueError, TypeError):
        return
    raise CheckFailure("backward(y) of a y of shape (3,), without grad=, should raise an error (RuntimeError or "
                       "ValueError) that asks for grad=: the gradient of a vector is not defined, and silently "
                       "seeding with ones would give the gradient of sum(y)", input=given,
                       got=Text(f"no error; x.grad = {t['x'].grad}"))


@exercise(
    "8.1",
    "backward over a tape",
    expects="backward(y, grad=None)",
    nudge="Visit the tensors of the tape from y back to the leaves (reversed topological order), summing the "
    "partial adjoints each receives before passing it on, and add a leaf's adjoint to its .grad.",
    hint="Seed: grad, or ones for a scalar y (raise RuntimeError for a non-scalar y without grad). Keep a dict "
    "tensor -> adjoint (a Tensor), starting with {y: seed}. Inside mg.eager.no_grad(), walk "
    "reversed(mg.topological_sort([y])), skipping tensors without an adjoint. A leaf (t.is_leaf) adds its "
    "adjoint's value to t.grad (or sets it when t.grad is None). Any other tensor applies "
    "mg.gradient_rule(t.op)(t, adjoint), which returns one Tensor (or None) per input in t.inputs; add each to "
    "the adjoint of its input when that input requires_grad.",
    unavailable=PACKAGE_GRADIENTS,
)
def _(backward):
    for expression, values, f, why in _tape_cases():
        leaves = _leaves(values)
        given = {"y": Text(expression), **values}
        backward(f(leaves))
        _expect_gradients(leaves, {name: _central_differences(f, values, name) for name in values}, given, why)
    values = {"x": np.array([0.5, -1.0, 2.0]), "w": np.array([1.5, 2.0, -0.5])}
    t = {**_leaves({"x": values["x"]}), **_leaves({"w": values["w"]}, requires_grad=False)}
    a = t["x"] * t["w"]
    backward(_diamond_above(a))
    given = {"y": Text("a = x * w; y = sum(tanh(a) * a + a), where only x requires a gradient"), **values}
    if t["w"].grad is not None:
        raise CheckFailure("w.grad should stay None: w was made without requires_grad=True, so nobody asked for its "
                           "gradient (pass adjoints on only to inputs that requires_grad)", input=given,
                           got=t["w"].grad)
    if a.grad is not None:
        raise CheckFailure("a = x * w got a .grad: only leaves (tensors made with Tensor(...), t.is_leaf) keep "
                           "their gradient, as in PyTorch; the adjoints of the others are passed on and dropped",
                           input=given, got=a.grad)
    once = _central_differences(_diamond, values, "x")
    backward(_diamond(t))
    expect_close(t["x"].grad, 2 * once, input={**given, "why": Text(
        "backward was called for two computations of y: gradients add up across calls (as in PyTorch, so that "
        "several losses or batches can be accumulated), until the training loop zeroes them — add to .grad "
        "when it is not None, do not replace it")}, rtol=1e-5, atol=1e-7, what="x.grad after two backward calls")
    seed = np.array([1.0, -2.0, 0.5])
    t = _leaves(values)
    backward(t["x"] * t["w"], grad=seed)
    expect_close(t["x"].grad, values["w"] * seed, input={"y": Text("x * w, of shape (3,)"), **values,
                                                         "call": Text("backward(y, grad=[1, -2, 0.5])")},
                 rtol=1e-6, what="x.grad: d(sum(y * grad))/dx = w * grad (start from grad, not from ones)")
    _expect_refused_non_scalar(backward)
    return ("4 expressions against central differences (a diamond, a tensor read twice by one op, broadcasting); "
            "leaves without requires_grad and intermediate tensors left alone; gradients accumulated; grad= seeds; "
            "a non-scalar y without grad= refused")


# ---------------------------------------------------------------------------------------------- 8.2


def _softplus(x):
    """The checker's own softplus, stable: max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    """1 / (1 + exp(-x)), without overflow: exp(x) / (1 + exp(x)) for negative x."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _built(op, x, given):
    """``op(x)``, the learner's op applied to a node; minigraph refusing what their methods returned is a failure."""
    with reported_as_failure(__file__, lambda error: f"building the node {op.name}(x) raised {type(error).__name__}: "
                             f"{error} — minigraph could not use what your methods returned (infer_shape returns a "
                             "tuple, or None when the shape is unknown)", input=given):
        return op(x)


def _expect_gradient_nodes(op, node, output_grad, given):
    grads = op.gradient(node, output_grad)
    if not isinstance(grads, (list, tuple)) or len(grads) != 1:
        raise CheckFailure("gradient should return a list with one node per input of the op, here [dL/dx]",
                           input=given, got=grads)
    if not isinstance(grads[0], Node):
        raise CheckFailure(f"gradient returned a {type(grads[0]).__name__} for dL/dx; it must be a node built from "
                           "ops on node.inputs[0] and output_grad (e.g. mg.sigmoid), so that it works in a graph "
                           "and on tensors, and can be differentiated again", input=given, got=grads[0])


@exercise(
    "8.2",
    "a new op with its gradient",
    expects="""
        class Softplus(mg.Op):
            def compute(self, node, input_values): ...
            def infer_shape(self, node, input_shapes): ...
            def gradient(self, node, output_grad): ...
    """,
    nudge="compute: max(x, 0) + log1p(exp(-|x|)) in numpy; infer_shape: the input's shape; gradient: a list with "
    "one node, output_grad times sigmoid(x), built with mg ops.",
    hint="compute gets a list holding one numpy array x: add the elementwise maximum of x and 0 to log1p of exp "
    "of minus the absolute value of x (np.maximum, np.log1p, np.exp, np.abs; np.logaddexp with 0 does it too), "
    "which neither overflows for large x nor rounds log(1 + tiny) to 0, and keeps float32 as float32. infer_shape "
    "gets a list holding the input's shape: return that shape. gradient gets the node and output_grad (nodes, or "
    "tensors when eager): return a one-element list, output_grad times mg.sigmoid of the node's only input.",
)
def _(Softplus):
    op = Softplus()
    given = {"x": Text("a float32 placeholder of shape (None, 3)")}
    node = _built(op, placeholder("x", shape=(None, 3)), given)
    expect_equal(node.shape, (None, 3), input=given,
                 what="the shape of softplus(x) (infer_shape: the input's shape, unknown dimensions included)")
    expect_equal(str(node.dtype), "float32", input=given, what="the dtype of softplus(x)")
    cases = [np.array([[-2.0, 0.0, 3.0], [0.5, -0.5, 10.0]], np.float32),
             np.array([[-1000.0, -40.0, -1e-3], [1e-3, 40.0, 1000.0]])]
    for x in cases:
        value = op.compute(node, [x.copy()])
        given = {"x": x}
        expect_shape(value, x.shape, input=given, what="compute(node, [x])")
        if value.dtype != x.dtype:
            raise CheckFailure(f"compute turned {x.dtype} into {value.dtype}: keep the input's dtype (numbers like 0 "
                               "and 1 do not change it; a float64 array would)", input=given)
        if not np.all(np.isfinite(value)):
            raise CheckFailure("compute overflowed: exp(1000) is inf in float64. Use softplus(x) = max(x, 0) + "
                               "log1p(exp(-|x|)), whose exp never sees a positive number", input=given, got=value)
        expect_close(value, _softplus(x.astype(np.float64)), input=given, rtol=1e-6, atol=0,
                     what="softplus(x), to a relative 1e-6 (for x = -40 it is 4.2e-18: log(1 + e) rounds 1 + e to 1 "
                     "when e < 1e-16; log1p(e) keeps it)")
    x64 = placeholder("x", shape=(None, 3), dtype="float64")
    v = placeholder("v", shape=(None, 3), dtype="float64")
    y = op(x64)
    given = {"graph": Text("y = softplus(x), x and v float64 placeholders (None, 3)")}
    _expect_gradient_nodes(op, y, v, given)
    (dx,) = autodiff.gradients(reduce_sum(y * v), [x64])
    (ddx,) = autodiff.gradients(reduce_sum(dx), [x64])
    x, seed = cases[1], np.array([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]])
    grads = Session().run([dx, ddx], {x64: x, v: seed})
    given = {"graph": Text("y = softplus(x); L = sum(y * v)"), "x": x, "v": seed}
    if not np.all(np.isfinite(grads[0])):
        raise CheckFailure("the gradient is not finite far in the tails: exp(1000) / (1 + exp(1000)) is inf / inf = "
                           "NaN. mg.sigmoid(x) computes the same ratio stably", input=given, got=grads[0])
    sigmoid = _sigmoid(x)
    expect_close(grads[0], sigmoid * seed, input=given, rtol=1e-6, atol=1e-12,
                 what="dL/dx in a graph (mg.gradients), which is v * sigmoid(x)")
    expect_close(grads[1], seed * sigmoid * (1 - sigmoid), input={**given, "then": Text(
        "g = dL/dx, and the gradient of sum(g)")}, rtol=1e-6, atol=1e-12,
        what="the second derivative, v * sigmoid(x) * (1 - sigmoid(x)), through the ops of your gradient")
    values = np.array([[-2.0, 0.3, 1.5], [0.5, -0.7, 2.5]])
    t = Tensor(values, requires_grad=True, name="x")
    eager_y = op(t)
    if not isinstance(eager_y, Tensor):
        raise CheckFailure("Softplus()(t) on a Tensor should compute a Tensor at once", got=eager_y)
    reduce_sum(eager_y * seed).backward()
    expected = _central_differences(lambda t: op(t["x"]) * seed, {"x": values}, "x")
    expect_close(t.grad, expected, input={"x": values, "v": seed, "y": Text("sum(softplus(x) * v), eagerly")},
                 rtol=1e-6, atol=1e-9, what="x.grad after y.backward() (central differences of your compute)")
    return ("compute to a relative 1e-6 from -1000 to 1000 in float32 and float64; its gradient and second "
            "derivative in a graph; eagerly, backward agrees with central differences")


# ---------------------------------------------------------------------------------------------- 8.3


class _Raised(Exception):
    """The exception the check raises inside a block."""


def _expect_context_manager(manager, given):
    if not (hasattr(type(manager), "__enter__") and hasattr(type(manager), "__exit__")):
        more = (": decorate the generator function with @contextlib.contextmanager" if hasattr(manager, "__next__")
                else "")
        raise CheckFailure(f"no_grad() returned {type(manager).__name__}, which `with` cannot use{more}",
                           input=given)
    return manager


def _expect_recording(on, given, why):
    if eager.is_grad_enabled() != on:
        state = "on" if on else "off"
        raise CheckFailure(f"recording should be {state} here: {why}", input=given,
                           expected=on, got=eager.is_grad_enabled())


def _no_grad_steps(no_grad, x):
    """The steps of the check; the caller restores the setting whatever happens."""
    given = {"code": Text("with no_grad():\n    y = x * 2")}
    with _expect_context_manager(no_grad(), given):
        y = x * 2.0
        if y.requires_grad:
            raise CheckFailure("inside `with no_grad():` the result of x * 2 is still on the tape (y.requires_grad is "
                               "True): turn recording off with mg.eager.set_grad_enabled(False) — a flag of your own "
                               "is not one that minigraph's ops read", input=given)
    _expect_recording(True, given, "after the block, as before it")
    given = {"code": Text("with no_grad():\n    with no_grad():\n        pass\n    # here")}
    with _expect_context_manager(no_grad(), given):
        with _expect_context_manager(no_grad(), given):
            pass
        _expect_recording(False, given, "the inner block ended, the outer one has not. Restore the setting from "
                          "before the block (set_grad_enabled returns it), not True")
    _expect_recording(True, given, "after both blocks")
    eager.set_grad_enabled(False)
    given = {"code": Text("mg.eager.set_grad_enabled(False)\nwith no_grad():\n    pass\n# here")}
    with _expect_context_manager(no_grad(), given):
        pass
    _expect_recording(False, given, "it was off before the block, so it stays off after it")
    eager.set_grad_enabled(True)
    given = {"code": Text("with no_grad():\n    raise an exception")}
    propagated = False
    try:
        with _expect_context_manager(no_grad(), given):
            raise _Raised("raised inside the block")
    except _Raised:
        propagated = True
    if not propagated:
        raise CheckFailure("your no_grad swallowed an exception raised inside the block: let it go on (a bare "
                           "`except` or a return in `finally` stops it)", input=given)
    _expect_recording(True, given, "an exception inside the block must not leave recording off: restore it in a "
                      "`finally:`, which runs however the block ends")
    manager = _expect_context_manager(no_grad(), {"code": Text("@no_grad()\ndef double(x): ...")})
    if not callable(manager):
        raise CheckFailure("no_grad() should also work as a decorator, @no_grad() on a function; "
                           "@contextlib.contextmanager gives you that")

    def double(x):
        return x * 2.0

    decorated = manager(double)
    given = {"code": Text("@no_grad()\ndef double(x):\n    return x * 2\n\ndouble(x); double(x)")}
    for _ in range(2):
        if decorated(x).requires_grad:
            raise CheckFailure("a function decorated with @no_grad() recorded its ops on the tape", input=given)
        _expect_recording(True, given, "after a call of the decorated function")


@exercise(
    "8.3",
    "no_grad",
    expects="no_grad()",
    nudge="Turn recording off on the way in, and on the way out put back the setting that was there before — in a "
    "finally, so that an exception does not skip it.",
    hint="Write a generator function decorated with @contextlib.contextmanager. Before its yield, turn recording "
    "off with mg.eager.set_grad_enabled(False), keeping what it returns (the setting before); put the yield in a "
    "try block whose finally passes that setting back to mg.eager.set_grad_enabled. contextlib's decorator also "
    "makes @no_grad() work on functions.",
    unavailable=[eager.no_grad],
    time_limit=10,
)
def _(no_grad):
    previous = eager.set_grad_enabled(True)
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    try:
        _no_grad_steps(no_grad, x)
    finally:
        eager.set_grad_enabled(previous)
    return "off inside, restored after: nested, entered while off, after an exception, and as a decorator"


# ---------------------------------------------------------------------------------------------- 8.4

def _trace_cases():
    """``(expression, fn, argument shapes and dtypes)``."""
    yield "y = sum(tanh(x @ w) * 2)", lambda x, w: reduce_sum(tanh(matmul(x, w)) * 2.0), [
        ((2, 3), "float32"), ((3, 4), "float32")]
    yield ("h = x * x; y = (h + h) @ Tensor(np.eye(3)): a tensor made inside the function",
           lambda x: matmul((x * x) + (x * x), Tensor(np.eye(3), name="identity")), [((2, 3), "float64")])
    W, b = Tensor(np.random.default_rng(4).normal(size=(3, 2)), name="W"), Tensor([0.5, -0.5], name="b")
    yield ("y = relu(x @ W + b), W and b tensors made outside the function (parameters)",
           lambda x: relu(matmul(x, W) + b), [((5, 3), "float32")])
    yield ("y = mean(softmax_cross_entropy(logits, labels)), integer labels", lambda z, labels: reduce_mean(
        softmax_cross_entropy(z, labels)), [((4, 10), "float32"), ((4,), "int64")])


def _arguments(rng, signature):
    return [rng.integers(0, 10, shape) if dtype == "int64" else rng.normal(size=shape).astype(dtype)
            for shape, dtype in signature]


def _expect_trace(result, arguments, given):
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise CheckFailure("trace should return a pair (placeholders, output node)", input=given, got=result)
    placeholders, output = result
    if not isinstance(placeholders, (list, tuple)) or len(placeholders) != len(arguments):
        raise CheckFailure(f"trace should return a list of {len(arguments)} placeholder(s), one per argument",
                           input=given, got=placeholders)
    for index, (node, value) in enumerate(zip(placeholders, arguments)):
        if not isinstance(node, Placeholder):
            raise CheckFailure(f"the node for argument {index} should be a placeholder, mg.placeholder(name, shape, "
                               "dtype), which a Session run feeds", input=given, got=node)
        if node.shape != value.shape or node.dtype != value.dtype:
            raise CheckFailure(f"the placeholder of argument {index} should have the argument's shape and dtype, "
                               "which the trace is specialised to", input=given,
                               expected=Text(f"{value.shape} {value.dtype}"), got=Text(f"{node.shape} {node.dtype}"))
    if not isinstance(output, Node) or output.eager:
        what = "the Tensor computed eagerly" if isinstance(output, Tensor) else f"a {type(output).__name__}"
        raise CheckFailure(f"the output should be the graph node that stands for the result, not {what}: look the "
                           "result tensor up among the nodes your tracer built", input=given)
    return placeholders, output


def _run(output, feed, given):
    """A Session run of the learner's graph; a failure there is reported as a failure of their trace."""
    with reported_as_failure(__file__, lambda error: f"running the graph of your trace raised "
                             f"{type(error).__name__}: {error}", input=given):
        return Session().run(output, feed)


def _clip(g):
    norm = (reduce_sum(g * g)) ** 0.5
    if float(norm) > 1.0:
        g = g / norm
    return g


def _expect_value_reads_refused(trace):
    x = np.array([3.0, 4.0])
    given = {"fn": Text("def clip(g):\n    norm = sum(g * g) ** 0.5\n    if float(norm) > 1:\n        g = g / norm\n"
                        "    return g"), "traced with": x}
    try:
        result = trace(_clip, x.copy())
    except tracing.TracingError:
        return
    placeholders, output = _expect_trace(result, [x], given)
    small = np.array([0.3, 0.4])
    frozen = _run(output, {placeholders[0]: small}, given)
    raise CheckFailure("Python read the value of norm (float(norm)) while your tracer watched, and your tracer let "
                       "it: the graph keeps the branch taken for [3, 4] and divides every input by its norm. read "
                       "should raise mg.TracingError", input={**given, "then run on": small},
                       expected=_clip(Tensor(small)).value(), got=frozen)


@exercise(
    "8.4",
    "a tiny tracer",
    expects=("trace(fn, *arrays)", """
        class Tracer:
            def node(self, tensor): ...
            def record(self, op, inputs, output): ...
            def read(self, tensor, what): ...
    """),
    nudge="Make a placeholder for each argument, map each argument tensor to it, and while recording map each "
    "op's output tensor to op(*the nodes of its inputs); a tensor met for the first time is a constant.",
    hint="Tracer.node(t) returns the dict's entry for t, first storing mg.constant of t.value() when t was never "
    "seen (a number, a parameter; .value() does not tell the observer, .numpy() would). record stores, for the "
    "output, the op called on the nodes of the inputs. read raises mg.TracingError. trace makes a Tensor of each "
    "array and an mg.placeholder of its shape and dtype, enters each pair in a new Tracer's dict, calls fn on the "
    "tensors inside a with block of mg.eager.recording on that tracer, and returns the placeholders and the node of "
    "the result.",
    unavailable=[tracing.function, tracing.Function.__init__, tracing.Trace.__init__, tracing.Trace.record],
)
def _(trace, Tracer):  # trace builds on Tracer; the check runs trace
    rng = np.random.default_rng(84)
    count = 0
    for expression, fn, signature in _trace_cases():
        arguments = _arguments(rng, signature)
        given = {"fn": Text(expression), "traced with": Text(", ".join(f"{a.shape} {a.dtype}" for a in arguments))}
        try:
            result = trace(fn, *[a.copy() for a in arguments])
        except tracing.TracingError as error:
            raise CheckFailure(f"tracing raised mg.TracingError ({error}), but this function reads no value: does "
                               "your tracer read one itself, with .numpy()? Use t.value(), which does not tell the "
                               "observer", input=given) from None
        placeholders, output = _expect_trace(result, arguments, given)
        for _ in range(2):
            new = _arguments(rng, signature)
            with eager.no_grad():
                expected = fn(*[Tensor(a) for a in new]).value()
            got = _run(output, dict(zip(placeholders, new)), given)
            expect_close(got, expected, input={**given, "run with": new[0]}, rtol=1e-6, atol=1e-9,
                         what="the Session run of your trace, compared with eager execution on new inputs")
            count += 1
    _expect_value_reads_refused(trace)
    return (f"4 functions (a tensor made inside, parameters from outside, integer labels), {count} runs equal to "
            "eager execution; a value read while tracing refused")


# ---------------------------------------------------------------------------------------------- 8.5


def _halve(v):
    return v / 2


def _above_one(v):
    return np.sqrt(np.sum(v * v)) > 1


def _double(m):
    return m * 2


def _at_most_100(m):
    return m.max() <= 100


_LOOPS = [("while norm(v) > 1: v = v / 2", _above_one, _halve, "float32", (3,),
           [[0.3, 0.4, 0.0], [1.2, 0.0, 0.9], [3.0, 4.0, 12.0], [600.0, -800.0, 0.0]]),
          ("while max(m) <= 100: m = m * 2", _at_most_100, _double, "float64", (2, 2),
           [[[150.0, 1.0], [2.0, 3.0]], [[60.0, 1.0], [-5.0, 0.5]], [[0.01, 0.02], [0.0, -1.0]]])]


def _python_loop(cond, body, x):
    """The loop in Python, and how many times it ran."""
    count = 0
    while cond(x):
        x, count = body(x), count + 1
    return x, count


def _expect_loop_op(WhileLoop, description, cond, body, dtype, shape):
    op = WhileLoop(cond, body)
    p = placeholder("x", shape=(None, *shape[1:]), dtype=dtype)
    given = {"loop": Text(description), "x": Text(f"a {dtype} placeholder of shape {p.shape}")}
    node = _built(op, p, given)
    expect_equal(node.shape, p.shape, input=given, what="the shape of the loop's result (infer_shape: the body keeps "
                 "the input's shape)")
    expect_equal(str(node.dtype), dtype, input=given, what="the dtype of the loop's result")
    return op, node


@exercise(
    "8.5",
    "a data-dependent loop as a graph op",
    expects="""
        class WhileLoop(mg.Op):
            def __init__(self, cond, body): ...
            def compute(self, node, input_values): ...
            def infer_shape(self, node, input_shapes): ...
    """,
    nudge="compute runs the loop in numpy — test cond first, apply body while it holds — on a copy of the input; "
    "infer_shape returns the input's shape.",
    hint="__init__ keeps cond and body as attributes. compute copies its one input with np.array (an op must not "
    "return its input's own array), then, as long as cond of the copy is true, replaces it by body of it, and "
    "returns it. infer_shape returns the first (only) shape it is given. The loop then runs inside one node, so a "
    "trace records the op, not the iterations.",
)
def _(WhileLoop):
    summary = []
    for description, cond, body, dtype, shape, inputs in _LOOPS:
        op, node = _expect_loop_op(WhileLoop, description, cond, body, dtype, shape)
        traced = tracing.function(lambda x: WhileLoop(cond, body)(x))
        counts = []
        for value in inputs:
            x = np.array(value, dtype)
            expected, count = _python_loop(cond, body, x)
            counts.append(count)
            given = {"loop": Text(description), "x": x, "iterations": count}
            got = op.compute(node, [x.copy()])
            expect_shape(got, x.shape, dtype=np.dtype(dtype), input=given, what="compute(node, [x])")
            expect_equal(got, expected, input=given, what=f"the loop's result after {count} iteration(s)")
            tensor = Tensor(x, name="x")
            result = op(tensor)
            if np.shares_memory(result.value(), tensor.value()):
                raise CheckFailure("for an input that takes no iteration, your compute returned the input's own "
                                   "array: the result and the input are then one array, and a change of one (an "
                                   "update in place, a memory plan reusing the buffer) changes the other. Return a "
                                   "copy, np.array(x)", input=given)
            expect_equal(traced(x).value(), expected, input=given,
                         what="the loop traced by mg.function, run as a graph")
        expect_equal(len(traced.traces), 1, input={"loop": Text(description)},
                     what="the number of traces for inputs of one shape (the loop is one op of the graph)")
        summary.append(f"{min(counts)} to {max(counts)}")
    return (f"two loops, taking {' and '.join(summary)} iterations, equal to Python's — eagerly, and traced once by "
            "mg.function")


# ---------------------------------------------------------------------------------------------- 8.6

MNIST_HIDDEN, MNIST_BATCH, MNIST_EPOCHS, LEARNING_RATE, STEPS_IN_STEP, ACCURACY_FLOOR = 128, 128, 2, 0.1, 20, 0.92


def _mlp_parameters(seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(he_normal((784, MNIST_HIDDEN), rng=rng), requires_grad=True, name="W1"),
            Tensor(np.zeros(MNIST_HIDDEN, np.float32), requires_grad=True, name="b1"),
            Tensor(he_normal((MNIST_HIDDEN, 10), rng=rng), requires_grad=True, name="W2"),
            Tensor(np.zeros(10, np.float32), requires_grad=True, name="b2")]


def _logits(params, x):
    W1, b1, W2, b2 = params
    return matmul(relu(matmul(x, W1) + b1), W2) + b2


def _reference_step(params, x, y):
    """The checker's own SGD step: the mean cross-entropy, minigraph's backward, an update in place."""
    loss = reduce_mean(softmax_cross_entropy(_logits(params, x), y))
    eager.backward(loss)
    with eager.no_grad():
        for p in params:
            p -= LEARNING_RATE * p.grad
            p.zero_grad()
    return loss.item()


def _expect_step(train_step, backward, params, x, y, given):
    """One step of the learner's; the loss as a float."""
    calls = []

    def counted_backward(*args, **kwargs):
        calls.append(args)
        return backward(*args, **kwargs)

    before = [p.value().copy() for p in params]
    loss = train_step(params, x, y, LEARNING_RATE, counted_backward)
    if not isinstance(loss, Tensor) or loss.shape != ():
        raise CheckFailure("train_step should return the loss, a scalar Tensor", input=given, got=loss)
    if len(calls) != 1:
        raise CheckFailure(f"train_step called backward {len(calls)} times; call the backward it is given once, on the "
                           "loss", input=given)
    for p, old in zip(params, before):
        if p.grad is not None and np.any(p.grad != 0):
            raise CheckFailure(f"after your step {p.name}.grad still holds this step's gradient: backward adds to "
                               ".grad, so the next step would add its gradient to this one. Zero it after the update "
                               "(p.grad = None)", input=given)
        if np.array_equal(p.value(), old):
            raise CheckFailure(f"your step left {p.name} unchanged: update each parameter in place, p -= "
                               "learning_rate * p.grad, inside no_grad() (p = p - ... makes a new tensor and leaves "
                               "the parameter as it was)", input=given)
    return loss.item()


def _train_mnist(train_step, backward, params, data):
    """``MNIST_EPOCHS`` epochs of the learner's steps; the history of the losses and accuracies."""
    from ..datasets import batches

    def train_epoch(epoch):
        for x, y in batches(*data["train"], MNIST_BATCH, np.random.default_rng(epoch)):
            train_step(params, x, y, LEARNING_RATE, backward)

    return history_by_epoch(MNIST_EPOCHS, train_epoch, lambda images, labels: _evaluate(params, images, labels),
                            data)


def _evaluate(params, images, labels):
    """The mean loss and the accuracy of the MLP on the examples, off the tape."""
    with eager.no_grad():
        logits = _logits(params, images)
        loss = reduce_mean(softmax_cross_entropy(logits, labels)).item()
        accuracy = float(np.mean(np.argmax(logits.value(), axis=1) == labels))
    return loss, accuracy


@exercise(
    "8.6",
    "MNIST trained eagerly with your backward",
    expects=("train_step(params, x, y, learning_rate, backward)", "backward(y, grad=None)"),
    nudge="Compute the mean loss of the MLP on the batch, call the backward you are given on it, then update every "
    "parameter in place inside no_grad() and zero its gradient.",
    hint="Get the loss from the notebook's mean_loss, pass it to backward, then inside a no_grad() block subtract "
    "learning_rate times its .grad from each parameter with -= (in place), and set its .grad to None. Return the "
    "loss. The parameters are W1, b1, W2, b2 of a 784-128-10 ReLU MLP, as the notebook's mlp function reads them.",
    unavailable=PACKAGE_GRADIENTS,
    time_limit=90,
)
def _(train_step, backward):
    from ..datasets import batches

    rng = np.random.default_rng(86)  # first a step on a small random batch, before loading MNIST
    x, y = rng.random((8, 784), dtype=np.float32), rng.integers(0, 10, 8)
    _expect_step(train_step, backward, _mlp_parameters(), x, y, {"batch": Text("8 random images")})
    data = mnist_splits()
    reference, yours = _mlp_parameters(), _mlp_parameters()
    steps = batches(*data["train"], MNIST_BATCH, np.random.default_rng(0))
    for number in range(1, STEPS_IN_STEP + 1):
        x, y = next(steps)
        before = {q.name: q.value().copy() for q in reference}
        given = {"step": number, "batch": Text(f"{len(x)} MNIST images; both runs start from the same weights")}
        got = _expect_step(train_step, backward, yours, x, y, given)
        expected = _reference_step(reference, x, y)
        if not is_close(got, expected, rtol=1e-4):
            raise CheckFailure("the loss your step returns differs from the mean cross-entropy of the MLP on the batch "
                               "(mean_loss), computed by the checker from the same weights", input=given,
                               expected=expected, got=got)
        for p, q in zip(yours, reference):
            if not is_close(p.value(), q.value(), rtol=1e-3, atol=1e-5):
                step = np.abs(q.value() - before[p.name]).max()
                raise CheckFailure(f"after your step {p.name} differs from one SGD step, {p.name} - learning_rate * "
                                   f"dL/d{p.name}, by up to {np.abs(p.value() - q.value()).max():.3g} (the SGD step "
                                   f"itself changes it by up to {step:.3g}): step against the gradient, by "
                                   "learning_rate times it", input=given)
    history = _train_mnist(train_step, backward, yours, data)
    final = history["test_acc"][-1]
    if not final > ACCURACY_FLOOR:
        raise CheckFailure(f"after {MNIST_EPOCHS} epochs the test accuracy is {final:.4f}; the MLP trained with "
                           f"correct gradients passes {ACCURACY_FLOOR}", got=history["test_acc"])
    return Passed(f"{STEPS_IN_STEP} steps equal to the checker's own; {MNIST_EPOCHS} epochs of MNIST with your "
                  f"backward: test accuracy {final:.3f}", value=history)
