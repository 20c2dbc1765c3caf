r"""Checks of chapter 02, computation graphs.

- 2.1 ``topological_sort(fetches)``: every node the fetches depend on, once each, each after its inputs;
  no recursion, so a chain of 10,000 nodes works.
- 2.2 ``Affine``, an :class:`~minigraph.graph.Op` for $x W + b$: ``compute`` and ``infer_shape``
  (``None`` dimensions, a :class:`~minigraph.graph.ShapeError` on a mismatch).
- 2.3 ``evaluate(fetches, feed_dict)``: a tiny executor, checked against :class:`~minigraph.Session`.
- 2.4 ``softmax_regression(learning_rate)``: the TensorFlow-1 style graph of the model, checked by its
  structure and by a few SGD steps against numpy.
- 2.5 ``train(build_model, sort, data, epochs)``: the training loop, run on MNIST with the learner's
  topological sort inside the Session; a pass hands the history back as ``check(...).value``.
"""

import math

import numpy as np

import minigraph as mg
from minigraph.datasets import batches, load_mnist, one_hot

from .. import tf
from ..optim import Optimizer
from ..session import Executor, Session
from .framework import CheckFailure, Passed, Text, exercise, expect_close, expect_equal, expect_shape
from .training import HISTORY_KEYS, record

# ---------------------------------------------------------------------------------------------- graphs


def _listing(fetches, limit=8):
    """The graph of ``fetches`` as lines ``name = op(input, ...)`` in the package's topological order;
    at most ``limit`` lines, then how many more."""
    lines = []
    for node in mg.topological_sort(fetches):
        if node.inputs:
            lines.append(f"{node.name} = {node.op.name}({', '.join(x.name for x in node.inputs)})")
        else:
            lines.append(f"{node.name}: {node.op.name} {mg.graph.format_shape(node.shape)}")
    if len(lines) > limit:
        lines = lines[:limit - 1] + [f"... ({len(lines) - limit + 1} more nodes)"]
    return Text("\n".join(lines))


def _names(nodes):
    return [node.name if isinstance(node, mg.Node) else node for node in nodes]


def _graph_a_times_b_plus_3():
    a = mg.placeholder("a", shape=(None,))
    b = mg.placeholder("b", shape=(None,))
    c = mg.add(mg.mul(a, b, name="a*b"), mg.constant(np.float32(3), name="3"), name="c")
    return {"a": a, "b": b, "c": c}


def _graph_diamond():
    """x feeds two branches that meet again; ``square`` uses one input twice."""
    x = mg.placeholder("x", shape=(None, 3))
    u = mg.exp(x, name="u")
    v = mg.mul(x, mg.constant(np.float32(2), name="2"), name="v")
    square = mg.mul(u, u, name="square")
    y = mg.add(square, v, name="y")
    return {"x": x, "u": u, "v": v, "square": square, "y": y}


def _graph_softmax_regression(seed):
    rng = np.random.default_rng(seed)
    x = mg.placeholder("x", shape=(None, 4))
    labels = mg.placeholder("labels", shape=(None,), dtype="int64")
    W = mg.Variable(rng.normal(size=(4, 3)).astype(np.float32), name="W")
    b = mg.Variable(rng.normal(size=3).astype(np.float32), name="b")
    logits = mg.add(mg.matmul(x, W, name="xW"), b, name="logits")
    probabilities = mg.softmax(logits, name="probabilities")
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, labels, name="cross_entropy"), name="loss")
    correct = mg.equal(mg.argmax(logits, 1, name="prediction"), labels, name="correct")
    accuracy = mg.reduce_mean(mg.cast(correct, "float32", name="correct_float"), name="accuracy")
    return {"x": x, "labels": labels, "W": W, "b": b, "logits": logits, "probabilities": probabilities,
            "loss": loss, "accuracy": accuracy}


def _chain(length):
    """x, then ``length`` negations, each of the previous node: the deepest graph of its size."""
    node = mg.placeholder("x", shape=(2,))
    for i in range(length):
        node = mg.neg(node, name=f"neg_{i + 1}")
    return node


# ---------------------------------------------------------------------------------------------- 2.1


def _expect_topological(got, fetches, what):
    """``got`` must list exactly the nodes ``fetches`` depend on, once each, each after its inputs."""
    shown = {"fetches": _names(fetches), "graph": _listing(fetches)}
    expected = mg.topological_sort(fetches)
    if got is None or not isinstance(got, (list, tuple)):
        raise CheckFailure(f"{what} should be a list of nodes", input=shown, expected=_names(expected), got=got)
    strangers = [item for item in got if not isinstance(item, mg.Node)]
    if strangers:
        raise CheckFailure(f"{what} should hold Node objects only, it holds a {type(strangers[0]).__name__}",
                           input=shown, expected=_names(expected), got=_names(got))
    seen = set()
    for node in got:
        if node in seen:
            raise CheckFailure(f"{what} lists node {node.name!r} twice (it is the input of several nodes: "
                               "remember which nodes you have visited)",
                               input=shown, expected=_names(expected), got=_names(got))
        seen.add(node)
    needed = set(expected)
    missing = [node for node in expected if node not in seen]
    if missing:
        raise CheckFailure(f"{what} misses {len(missing)} node(s) the fetches depend on, e.g. {missing[0].name!r}",
                           input=shown, expected=_names(expected), got=_names(got))
    extra = [node for node in got if node not in needed]
    if extra:
        raise CheckFailure(f"{what} lists node {extra[0].name!r}, which the fetches do not depend on",
                           input=shown, expected=_names(expected), got=_names(got))
    position = {node: index for index, node in enumerate(got)}
    for node in got:
        for x in node.inputs:
            if position[x] > position[node]:
                raise CheckFailure(
                    f"{what} puts node {node.name!r} (position {position[node]}) before its input {x.name!r} "
                    f"(position {position[x]}): a node can run only after its inputs",
                    input=shown, expected=_names(expected), got=_names(got))


@exercise(
    "2.1",
    "topological sort",
    expects="topological_sort(fetches)",
    nudge="Visit a node's inputs before the node itself, remember the nodes already visited, and keep your own "
    "stack instead of recursing.",
    hint="Depth-first search with an explicit stack (a list) of (node, index of the next input to visit) pairs: "
    "look at the top of the stack; if it has an input left, move its index on and push that input unless it "
    "was visited; once all its inputs are done, pop the node and append it to the order. A set of visited "
    "nodes makes each node appear once. (Kahn's algorithm, which counts each node's unfinished inputs, works "
    "too.)",
    unavailable=[mg.topological_sort],
)
def _(topological_sort):
    three = _graph_a_times_b_plus_3()
    diamond = _graph_diamond()
    model = _graph_softmax_regression(seed=0)
    cases = [
        ("a * b + 3", [three["c"]]),
        ("a diamond, with a node using one input twice", [diamond["y"]]),
        ("several fetches sharing nodes", [model["loss"], model["accuracy"], model["probabilities"]]),
        ("a fetch that is an input of another fetch", [diamond["y"], diamond["u"]]),
        ("a placeholder alone", [three["a"]]),
        ("no fetches", []),
    ]
    for name, fetches in cases:
        _expect_topological(topological_sort(list(fetches)), fetches, f"the order for {name}")
    deep = _chain(10_000)
    try:
        order = topological_sort([deep])
    except RecursionError:
        raise CheckFailure(
            "on a chain of 10,001 nodes your sort raised RecursionError: Python allows about 1,000 nested "
            "calls, and real graphs (an unrolled RNN, 100 layers with their gradients) are deeper. "
            "Keep your own stack (a list) instead of recursing.",
            input={"fetches": ["neg_10000"], "graph": Text("x -> neg_1 -> neg_2 -> ... -> neg_10000")},
        ) from None
    _expect_topological(order, [deep], "the order for a chain of 10,001 nodes")
    return f"{len(cases) + 1} graphs, including a diamond, shared nodes and a chain of 10,001 nodes"


# ---------------------------------------------------------------------------------------------- 2.2


def _affine_op(Affine):
    """An instance of the learner's op (a subclass of mg.Op, made without arguments)."""
    if not issubclass(Affine, mg.Op):
        raise CheckFailure("Affine should be a subclass of mg.Op (class Affine(mg.Op): ...)", got=Affine)
    return Affine()


def _source(kind, name, shape, rng):
    """A placeholder (fed at run time) or a variable with random values, of ``shape``."""
    if kind == "variable":
        return mg.Variable(rng.normal(size=shape).astype(np.float32), name=name)
    return mg.placeholder(name, shape=shape)


def _expect_affine_shape(op, shapes, expected):
    x, W, b = (mg.placeholder(name, shape=shape) for name, shape in zip(("x", "W", "b"), shapes))
    given = {"x": x.shape, "W": W.shape, "b": b.shape}
    expect_equal(op(x, W, b).shape, expected, input=given, what="the inferred shape of affine(x, W, b)")


def _expect_shape_error(op, shapes, why):
    x, W, b = (mg.placeholder(name, shape=shape) for name, shape in zip(("x", "W", "b"), shapes))
    given = {"x": x.shape, "W": W.shape, "b": b.shape}
    try:
        node = op(x, W, b)
    except mg.ShapeError:
        return
    except NotImplementedError:
        raise
    except Exception as error:
        raise CheckFailure(f"building affine(x, W, b) raised {type(error).__name__}: {error}; {why}, which should "
                           "raise a ShapeError: raise self.shape_error(node, why)", input=given) from None
    raise CheckFailure(f"building affine(x, W, b) should raise a ShapeError ({why}), but it gave a node of "
                       f"shape {mg.graph.format_shape(node.shape)}", input=given, expected=Text("ShapeError"),
                       got=node.shape)


@exercise(
    "2.2",
    "an op: compute and shape rule",
    expects="""
        class Affine(mg.Op):
            def __init__(self): ...
            def compute(self, node, input_values): ...
            def infer_shape(self, node, input_shapes): ...
    """,
    nudge="compute is one line of numpy; infer_shape checks the ranks first, then compares two sizes only "
    "when both are known (not None).",
    hint="In infer_shape, return None when an input's shape is None (its rank is unknown). Otherwise x and W "
    "must be 2-D and b 1-D; unpack (n, k_x), (k_W, m_W), (m_b,) and raise self.shape_error(node, why) when "
    "two known sizes that must agree differ. The result is (n, m), where m is m_W, or m_b when m_W is None.",
)
def _(Affine):
    op = _affine_op(Affine)
    rng = np.random.default_rng(0)
    for x_kind, W_kind, batch in [("placeholder", "variable", 2), ("placeholder", "placeholder", 1),
                                  ("variable", "variable", 3)]:
        x_shape = (batch, 4) if x_kind == "variable" else (None, 4)
        x, W = _source(x_kind, "x", x_shape, rng), _source(W_kind, "W", (4, 3), rng)
        b = _source("variable", "b", (3,), rng)
        node = op(x, W, b)
        feeds = {}
        if x_kind == "placeholder":
            feeds[x] = rng.normal(size=(batch, 4)).astype(np.float32)
        if W_kind == "placeholder":
            feeds[W] = rng.normal(size=(4, 3)).astype(np.float32)
        values = mg.Session().run([node, x, W, b], feeds)
        got, x_value, W_value, b_value = values
        given = {"x": x_value, "W": W_value, "b": b_value}
        expect_shape(got, (batch, 3), input=given, what="compute(node, [x, W, b])")
        expect_close(got, x_value @ W_value + b_value, input=given, rtol=1e-5, atol=1e-6,
                     what="compute(node, [x, W, b])")
    shape_cases = [
        (((None, 784), (784, 10), (10,)), (None, 10)),
        (((32, 3), (3, 4), (4,)), (32, 4)),
        (((2, 3), (None, None), (5,)), (2, 5)),
        (((None, None), (7, 5), (None,)), (None, 5)),
        (((None, 3), (None, None), (2,)), (None, 2)),
    ]
    for shapes, expected in shape_cases:
        _expect_affine_shape(op, shapes, expected)
    unknown = op(mg.placeholder("x"), mg.placeholder("W", shape=(3, 2)), mg.placeholder("b", shape=(2,)))
    expect_equal(unknown.shape, None, input={"x": None, "W": (3, 2), "b": (2,)},
                 what="when an input's shape is None (its rank unknown), the inferred shape (it should be None)")
    error_cases = [
        (((None, 784), (785, 10), (10,)), "x has 784 columns but W has 785 rows"),
        (((None, 784), (784, 10), (11,)), "W has 10 columns but b has 11 entries"),
        (((784,), (784, 10), (10,)), "x must be 2-D"),
        (((None, 784), (784, 10, 1), (10,)), "W must be 2-D"),
        (((None, 784), (784, 10), (1, 10)), "b must be 1-D"),
    ]
    for shapes, why in error_cases:
        _expect_shape_error(op, shapes, why)
    return (f"3 computations, {len(shape_cases) + 1} shapes with unknown dimensions, "
            f"{len(error_cases)} mismatches raising ShapeError")


# ---------------------------------------------------------------------------------------------- 2.3


class _Spy(mg.Op):
    """An identity op that counts how often it is computed."""

    name = "spy"

    def __init__(self):
        self.calls = 0

    def compute(self, node, input_values):
        self.calls += 1
        return input_values[0]

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]


def _expect_evaluates(evaluate, fetches, feed_dict, what):
    expected = mg.Session().run(list(fetches), feed_dict)
    given = {"fetches": _names(fetches), "feed_dict": {node.name: value for node, value in feed_dict.items()},
             "graph": _listing(fetches)}
    got = evaluate(list(fetches), dict(feed_dict))
    if not isinstance(got, (list, tuple)) or len(got) != len(fetches):
        raise CheckFailure(f"{what}: evaluate should return a list with one value per fetch ({len(fetches)})",
                           input=given, expected=expected, got=got)
    for fetch, got_value, expected_value in zip(fetches, got, expected):
        expect_close(got_value, expected_value, input=given, rtol=1e-5, atol=1e-6,
                     what=f"{what}: the value of {fetch.name!r}")


@exercise(
    "2.3",
    "a tiny executor",
    expects="evaluate(fetches, feed_dict)",
    nudge="Walk the nodes in topological order, and check every feed before computing anything.",
    hint="Two passes over mg.topological_sort(fetches). The first only checks that every placeholder is in "
    "feed_dict, raising a KeyError that names the missing one. The second fills a dict node -> value: a "
    "placeholder's value is its feed; any other node's is node.op.compute(node, the values of node.inputs "
    "in order). Return the values of the fetches, in order.",
    unavailable=[Session.run, Executor.run],
)
def _(evaluate):
    rng = np.random.default_rng(0)
    three, diamond, model = _graph_a_times_b_plus_3(), _graph_diamond(), _graph_softmax_regression(seed=1)
    x_model = rng.normal(size=(6, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=6)
    cases = [
        ("a * b + 3", [three["c"]], {three["a"]: np.array([1.0, 2.0], np.float32),
                                     three["b"]: np.array([4.0, -0.5], np.float32)}),
        ("a diamond", [diamond["y"]], {diamond["x"]: rng.normal(size=(2, 3)).astype(np.float32)}),
        ("softmax regression", [model["loss"], model["probabilities"], model["accuracy"]],
         {model["x"]: x_model, model["labels"]: labels}),
        ("fetching sources and the same node twice", [model["W"], model["x"], model["logits"], model["logits"]],
         {model["x"]: x_model}),
        ("a feed that is not needed", [three["c"]], {three["a"]: np.ones(3, np.float32),
                                                     three["b"]: np.ones(3, np.float32),
                                                     diamond["x"]: np.ones((1, 3), np.float32)}),
    ]
    for name, fetches, feeds in cases:
        _expect_evaluates(evaluate, fetches, feeds, name)
    spy = _Spy()
    a, x = mg.placeholder("a", shape=(2,)), mg.placeholder("x", shape=(2,))
    early, late = spy(a, name="early"), mg.mul(x, mg.constant(np.float32(2), name="2"), name="late")
    given = {"fetches": ["early", "late"], "feed_dict": {"a": np.ones(2, np.float32)}, "graph": _listing([early, late])}
    try:
        evaluate([early, late], {a: np.ones(2, np.float32)})
    except NotImplementedError:
        raise
    except KeyError as error:
        if "'x'" not in str(error) and '"x"' not in str(error):
            raise CheckFailure("the KeyError for the missing feed should name the placeholder ('x')",
                               input=given, expected=Text("a KeyError naming 'x'"),
                               got=Text(f"KeyError: {error}")) from None
        if spy.calls:
            raise CheckFailure("evaluate computed node 'early' before noticing that placeholder 'x' is not fed: "
                               "check every feed before computing anything (a half-run graph may already "
                               "have updated some variables)", input=given) from None
        return f"{len(cases)} graphs against mg.Session, and a KeyError for a missing feed raised before computing"
    except Exception as error:
        raise CheckFailure(f"a missing feed should raise KeyError naming the placeholder, not "
                           f"{type(error).__name__}: {error}", input=given) from None
    raise CheckFailure("placeholder 'x' is not fed, yet evaluate returned without error: raise a KeyError "
                       "naming it", input=given)


# ---------------------------------------------------------------------------------------------- 2.4


def _numpy_softmax_regression_losses(images, labels, learning_rate, steps, batch_size, update="assign_sub"):
    """Loss before each SGD step of softmax regression from zeros, on consecutive batches (float32), and the
    final W and b. ``update`` is how a step changes each parameter p by its step s = learning_rate * gradient:
    "assign_sub" (p - s, right), "assign_add" (p + s, the sign flipped) or "assign" (s: p replaced by it)."""
    apply = {"assign_sub": np.subtract, "assign_add": np.add, "assign": lambda p, s: s}[update]
    W = np.zeros((784, 10), np.float32)
    b = np.zeros(10, np.float32)
    losses = []
    for step in range(steps):
        xb, yb = images[step * batch_size:(step + 1) * batch_size], labels[step * batch_size:(step + 1) * batch_size]
        logits = xb @ W + b
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses.append(-(yb * log_p).sum(axis=1).mean())
        dlogits = (np.exp(log_p) - yb) / len(xb)
        W = apply(W, learning_rate * (xb.T @ dlogits))
        b = apply(b, learning_rate * dlogits.sum(axis=0))
    return np.array(losses), W, b


_WRONG_UPDATES = {
    "assign_add": "the loss grows: train_step moves W and b along the gradient, up the loss. An SGD step goes "
    "against it: mg.assign_sub(W, learning_rate * grad_W), and the same for b",
    "assign": "from the second step on, the losses are not SGD's: train_step replaces W and b by the step "
    "itself (mg.assign(W, learning_rate * grad_W)) instead of subtracting the step from them "
    "(mg.assign_sub(W, learning_rate * grad_W))",
}


def _diagnose_update(got_losses, images, labels, learning_rate, steps, given):
    """Name a train_step that adds the step or assigns it, when the losses match that mistake."""
    for update, message in _WRONG_UPDATES.items():
        wrong = _numpy_softmax_regression_losses(images, labels, learning_rate, steps, 100, update)[0]
        if np.allclose(got_losses, wrong, rtol=1e-4, atol=1e-5):
            raise CheckFailure(message, input=given, expected=_numpy_softmax_regression_losses(
                images, labels, learning_rate, steps, 100)[0], got=got_losses)


def _expect_model_nodes(model):
    if not isinstance(model, (tuple, list)) or len(model) != 5:
        raise CheckFailure("softmax_regression should return a tuple of 5 nodes: (x, y_, loss, train_step, accuracy)",
                           got=model)
    for label, node in zip(("x", "y_", "loss", "train_step", "accuracy"), model):
        if not isinstance(node, mg.Node):
            raise CheckFailure(f"{label} should be a Node", got=node)
    x, y_, loss, train_step, accuracy = model
    for label, node, shape in (("x", x, (None, 784)), ("y_", y_, (None, 10))):
        if not isinstance(node, mg.Placeholder):
            raise CheckFailure(f"{label} should be a placeholder (mg.placeholder), not a {node.op.name} node", got=node)
        if node.shape != shape or node.dtype != np.float32:
            raise CheckFailure(f"{label} should be declared with shape {shape} and dtype float32 "
                               "(None: any batch size)", expected=Text(f"shape={shape}, float32"), got=node)
    for label, node in (("loss", loss), ("accuracy", accuracy)):
        if node.shape != ():
            raise CheckFailure(f"{label} should be a scalar (shape ()): average over the batch with mg.reduce_mean",
                               got=node)
    fed = {node for node in mg.topological_sort([loss, train_step, accuracy]) if isinstance(node, mg.Placeholder)}
    if fed != {x, y_}:
        raise CheckFailure("loss, train_step and accuracy should depend on the placeholders x and y_ only",
                           expected=["x", "y_"], got=sorted(node.name for node in fed))
    variables = mg.trainable_variables([loss])
    shapes = sorted(v.shape for v in variables)
    if shapes != [(10,), (784, 10)]:
        raise CheckFailure("the loss should depend on two trainable variables, W (784, 10) and b (10,)",
                           expected=[(10,), (784, 10)], got=shapes)
    for v in variables:
        if np.any(v.initial_value != 0):
            raise CheckFailure(f"variable {v.name!r} should start at zeros, as in the tutorial",
                               got=v.initial_value)


@exercise(
    "2.4",
    "the TensorFlow-1 style graph of softmax regression",
    expects="softmax_regression(learning_rate)",
    nudge="Follow section 7 of the chapter with mg in place of tf; the training step is built from gradient "
    "nodes and one update node per variable, grouped.",
    hint="x and y_ are float32 placeholders with None for the batch size; W and b are Variables of zeros. The "
    "loss is the batch mean of -sum(y_ * log(softmax(x W + b))) over the classes (mg.reduce_sum with "
    "axis=1, then mg.reduce_mean). train_step: mg.gradients(loss, [W, b]) gives the gradient nodes; "
    "mg.assign_sub(variable, learning_rate * gradient) decreases a variable; mg.group joins the two updates "
    "in one node. The accuracy compares mg.argmax of the prediction and of y_ (mg.equal, mg.cast, "
    "mg.reduce_mean).",
    unavailable=[Optimizer.minimize, tf.GradientDescentOptimizer.minimize],
)
def _(softmax_regression):
    images, digits = load_mnist("train")
    images, labels = images[:1000], one_hot(digits[:1000])
    summary = []
    for learning_rate, steps in ((0.5, 10), (0.1, 5)):
        model = softmax_regression(learning_rate)
        _expect_model_nodes(model)
        x, y_, loss, train_step, accuracy = model
        sess = mg.Session()
        first = {x: images[:100], y_: labels[:100]}
        given = {"learning_rate": learning_rate, "batch": Text("the first 100 MNIST training images")}
        expect_close(sess.run(loss, first), math.log(10), input=given, rtol=1e-5,
                     what="the loss before training (at W = 0, every class has probability 1/10)")
        expect_close(sess.run(accuracy, first), np.mean(digits[:100] == 0), input=given, rtol=1e-6,
                     what="the accuracy before training (all scores tie; argmax picks class 0)")
        expected_losses, W_expected, b_expected = _numpy_softmax_regression_losses(images, labels, learning_rate,
                                                                                   steps, 100)
        got_losses = []
        for step in range(steps):
            batch = {x: images[step * 100:(step + 1) * 100], y_: labels[step * 100:(step + 1) * 100]}
            got_losses.append(sess.run(loss, batch))
            sess.run(train_step, batch)
        given["steps"] = Text(f"{steps} SGD steps on consecutive batches of 100, from zeros")
        _diagnose_update(np.array(got_losses), images, labels, learning_rate, steps, given)
        expect_close(np.array(got_losses), expected_losses, input=given, rtol=1e-4, atol=1e-5,
                     what="the loss before each step")
        everything = {x: images, y_: labels}
        expected_accuracy = np.mean((images @ W_expected + b_expected).argmax(1) == digits[:1000])
        expect_close(sess.run(accuracy, everything), expected_accuracy, input=given, atol=2e-3,
                     what="the accuracy on 1,000 images after training")
        summary.append(f"lr {learning_rate}: {steps} steps match numpy")
    return "placeholders, shapes and zeros checked; " + ", ".join(summary)


# ---------------------------------------------------------------------------------------------- 2.5


LEARNING_RATE, BATCH_SIZE, SEED, EPOCHS, ACCURACY_FLOOR = 0.5, 100, 0, 3, 0.9


class _CountingSort:
    """The learner's sort, counting its calls (to confirm the Session used it)."""

    def __init__(self, sort):
        self.sort, self.calls = sort, 0

    def __call__(self, fetches):
        self.calls += 1
        return self.sort(fetches)


def _expect_history(got, epochs):
    expected_form = {key: Text(f"a list of {epochs}") for key in HISTORY_KEYS}
    if not isinstance(got, dict):
        raise CheckFailure("train should return the history, a dict of lists", expected=expected_form, got=got)
    missing = [key for key in HISTORY_KEYS if key not in got]
    if missing:
        raise CheckFailure(f"the history misses the key(s) {missing}", expected=expected_form, got=got)
    for key in HISTORY_KEYS:
        if not isinstance(got[key], (list, tuple)) or len(got[key]) != epochs:
            raise CheckFailure(f"history[{key!r}] should be a list with one entry per epoch ({epochs})",
                               expected=expected_form[key], got=got[key])
    expect_equal(list(got["epoch"]), list(range(1, epochs + 1)), what="history['epoch']")
    for key in HISTORY_KEYS[1:]:
        try:
            values = np.asarray(got[key], dtype=float)
        except (TypeError, ValueError):
            raise CheckFailure(f"history[{key!r}] should hold numbers (use float(...))", got=got[key]) from None
        if not np.all(np.isfinite(values)):
            raise CheckFailure(f"history[{key!r}] holds values that are not finite numbers", got=got[key])


def _reference_training(build_model, data, epochs, reseed=False):
    """The training loop the exercise describes, run by the check on the learner's model: the history, and
    the loss and accuracy of the last training batch of each epoch. ``reseed``: a new generator each epoch
    (a mistake, to recognise it)."""
    x_train, y_train, x_test, y_test = data
    x, y_, loss, train_step, accuracy = build_model(LEARNING_RATE)
    sess = Session()
    rng = np.random.default_rng(SEED)
    history = {key: [] for key in HISTORY_KEYS}
    last_batch = {"train_loss": [], "train_acc": []}
    for epoch in range(1, epochs + 1):
        for images, labels in batches(x_train, y_train, BATCH_SIZE, np.random.default_rng(SEED) if reseed else rng):
            sess.run(train_step, {x: images, y_: labels})
        history["epoch"].append(epoch)
        batch_loss, batch_accuracy = sess.run([loss, accuracy], {x: images, y_: labels})
        last_batch["train_loss"].append(float(batch_loss))
        last_batch["train_acc"].append(float(batch_accuracy))
        record(history, lambda images, labels: sess.run([loss, accuracy], {x: images, y_: labels}),
               {"train": (x_train, y_train), "test": (x_test, y_test)})
    return history, last_batch


def _matches(got, expected, keys):
    return all(np.allclose(np.asarray(got[key], dtype=float), expected[key], rtol=1e-5, atol=1e-7) for key in keys)


def _expect_same_training(got, build_model, data, epochs):
    """The learner's history must be the one the check gets by the described loop on the same model; when it
    is not, name the two usual slips: a new generator every epoch, and evaluating on the last batch."""
    expected, last_batch = _reference_training(build_model, data, epochs)
    given = Text(f"train(softmax_regression, sort, data, {epochs}) on MNIST: learning rate {LEARNING_RATE}, "
                 f"batches of {BATCH_SIZE}, seed {SEED}")
    if _matches(got, expected, HISTORY_KEYS[1:]):
        return expected
    if _matches(got, last_batch, last_batch):
        raise CheckFailure("history['train_loss'] and ['train_acc'] are the loss and accuracy of the last minibatch "
                           "of each epoch (the loop's last images and labels), not of the whole training set: run "
                           "[loss, accuracy] on all of x_train and y_train after each epoch",
                           input=given, expected=expected["train_loss"], got=got["train_loss"])
    reseeded, _ = _reference_training(build_model, data, epochs, reseed=True)
    if _matches(got, reseeded, HISTORY_KEYS[1:]):
        raise CheckFailure("every epoch visits the minibatches in the same order: the generator is created again "
                           "(from the same seed) each epoch. Create rng = np.random.default_rng(seed) once, before "
                           "the loop over the epochs, so that each epoch draws a new order",
                           input=given, expected=expected["test_loss"], got=got["test_loss"])
    for key in HISTORY_KEYS[1:]:
        expect_close(got[key], expected[key], input=given, rtol=1e-5, atol=1e-7,
                     what=f"history[{key!r}] (compared with the loop the exercise describes, run by the check)")
    return expected


@exercise(
    "2.5",
    "training MNIST with your own topological sort",
    expects=("train(build_model, sort, data, epochs, batch_size=100, seed=0)", "topological_sort(fetches)",
             "softmax_regression(learning_rate)"),
    nudge="Build the model, the session (ordered by sort) and the random generator once; then, each epoch, train "
    "on every minibatch and measure on the whole training and test sets.",
    hint="Before the epochs: build the model at learning rate 0.5, a Session that orders its graphs with your "
    "sort (its sort= argument), and one random generator from the seed. Each epoch: run train_step on every "
    "minibatch that batches(x_train, y_train, batch_size, rng) yields; then record the epoch number and, as "
    "floats, the loss and the accuracy from one sess.run on the whole training set and one on the whole test "
    "set.",
    unavailable=[mg.topological_sort],
    time_limit=90,
)
def _(train, topological_sort, softmax_regression):
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    data = (x_train, one_hot(y_train), x_test, one_hot(y_test))
    sort = _CountingSort(topological_sort)
    got = train(softmax_regression, sort, data, EPOCHS)
    _expect_history(got, EPOCHS)
    if sort.calls == 0:
        raise CheckFailure("the Session never called your topological sort: create it as mg.Session(sort=sort)")
    _expect_same_training(got, softmax_regression, data, EPOCHS)
    if got["test_acc"][-1] < ACCURACY_FLOOR:
        raise CheckFailure(f"after {EPOCHS} epochs at learning rate {LEARNING_RATE} the test accuracy should pass "
                           f"{ACCURACY_FLOOR}", expected=Text(f">= {ACCURACY_FLOOR}"), got=got["test_acc"])
    summary = (f"{EPOCHS} epochs on the full MNIST with your sort in the Session, the same history as the "
               f"check's own run: test accuracy above {ACCURACY_FLOOR:.0%}")
    return Passed(summary, value={key: list(got[key]) for key in HISTORY_KEYS})
