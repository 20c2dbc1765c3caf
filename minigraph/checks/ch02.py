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
from minigraph.datasets import load_mnist, one_hot

from .framework import CheckFailure, Passed, exercise, expect_close, expect_equal, expect_shape

# ---------------------------------------------------------------------------------------------- graphs


class _Text:
    """Text shown as it is in a report (a string would be shown quoted, its line breaks escaped)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


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
    return _Text("\n".join(lines))


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
    hint="Depth-first search with an explicit stack of (node, index of the next input to visit) pairs: "
    "push a node's unvisited inputs one by one; when all are done, pop the node and append it to the "
    "order. A set of visited nodes makes each node appear once. (Kahn's algorithm works too.)",
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
            input={"fetches": ["neg_10000"], "graph": _Text("x -> neg_1 -> neg_2 -> ... -> neg_10000")},
        ) from None
    _expect_topological(order, [deep], "the order for a chain of 10,001 nodes")
    return f"{len(cases) + 1} graphs, including a diamond, shared nodes and a chain of 10,001 nodes"


# ---------------------------------------------------------------------------------------------- 2.2


def _affine_op(Affine):
    """An instance of the learner's op: the class is instantiated without arguments."""
    op = Affine() if isinstance(Affine, type) else Affine
    if not isinstance(op, mg.Op):
        raise CheckFailure("Affine should be a subclass of mg.Op (class Affine(mg.Op): ...)", got=Affine)
    return op


def _source(kind, name, shape, rng):
    """A placeholder (fed at run time) or a variable with random values, of ``shape``."""
    if kind == "variable":
        return mg.Variable(rng.normal(size=shape).astype(np.float32), name=name)
    return mg.placeholder(name, shape=shape)


def _expect_affine_shape(op, shapes, expected):
    x, W, b = (mg.placeholder(name, shape=shape) for name, shape in zip(("x", "W", "b"), shapes))
    given = {"x": x.shape, "W": W.shape, "b": b.shape}
    got = op(x, W, b).shape
    if got != expected:
        raise CheckFailure("the inferred shape of affine(x, W, b) is wrong", input=given, expected=expected, got=got)


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
                       f"shape {mg.graph.format_shape(node.shape)}", input=given, expected=_Text("ShapeError"),
                       got=node.shape)


@exercise(
    "2.2",
    "an op: compute and shape rule",
    hint="compute is one line of numpy. In infer_shape, check the ranks first, then unpack "
    "(n, k_x), (k_W, m_W), (m_b,) = x, W, b and compare two sizes only when neither is None; "
    "the result's m is m_W, or m_b when m_W is None.",
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
    if unknown.shape is not None:
        raise CheckFailure("when an input's shape is None (its rank unknown), infer_shape should return None",
                           input={"x": None, "W": (3, 2), "b": (2,)}, expected=None,
                           got=unknown.shape)
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
    hint="Two passes over mg.topological_sort(fetches): the first only checks that every placeholder is in "
    "feed_dict; the second fills a dict node -> value, with the feed for a placeholder and "
    "node.op.compute(node, [the values of node.inputs, in order]) for any other node.",
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
                               input=given, expected=_Text("a KeyError naming 'x'"),
                               got=_Text(f"KeyError: {error}")) from None
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


def _numpy_softmax_regression_losses(images, labels, learning_rate, steps, batch_size):
    """Loss before each SGD step of softmax regression from zeros, on consecutive batches (float32)."""
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
        W -= learning_rate * (xb.T @ dlogits)
        b -= learning_rate * dlogits.sum(axis=0)
    return np.array(losses), W, b


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
                               "(None: any batch size)", expected=_Text(f"shape={shape}, float32"), got=node)
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
    hint="Follow section 7 of the chapter with mg in place of tf: mg.placeholder, mg.Variable(np.zeros(...), "
    "name=...), mg.softmax, mg.log, mg.reduce_sum(..., axis=1), mg.reduce_mean. For train_step: "
    "grad_W, grad_b = mg.gradients(loss, [W, b]), then mg.group(...) of one mg.assign_sub(variable, "
    "learning_rate * gradient) per variable.",
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
        given = {"learning_rate": learning_rate, "batch": _Text("the first 100 MNIST training images")}
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
        given["steps"] = _Text(f"{steps} SGD steps on consecutive batches of 100, from zeros")
        expect_close(np.array(got_losses), expected_losses, input=given, rtol=1e-4, atol=1e-5,
                     what="the loss before each step")
        everything = {x: images, y_: labels}
        expected_accuracy = np.mean((images @ W_expected + b_expected).argmax(1) == digits[:1000])
        expect_close(sess.run(accuracy, everything), expected_accuracy, input=given, atol=2e-3,
                     what="the accuracy on 1,000 images after training")
        summary.append(f"lr {learning_rate}: {steps} steps match numpy")
    return "placeholders, shapes and zeros checked; " + ", ".join(summary)


# ---------------------------------------------------------------------------------------------- 2.5


HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")


class _CountingSort:
    """The learner's sort, counting its calls (to confirm the Session used it)."""

    def __init__(self, sort):
        self.sort, self.calls = sort, 0

    def __call__(self, fetches):
        self.calls += 1
        return self.sort(fetches)


def _expect_history(got, epochs):
    expected_form = {key: _Text(f"a list of {epochs}") for key in HISTORY_KEYS}
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
        if key.endswith("acc") and not np.all((values >= 0) & (values <= 1)):
            raise CheckFailure(f"history[{key!r}] should hold accuracies, fractions between 0 and 1", got=got[key])


@exercise(
    "2.5",
    "training MNIST with your own topological sort",
    hint="Build the model and create the session, mg.Session(sort=sort), and the generator, "
    "rng = np.random.default_rng(seed), once before the epochs. Each epoch: run train_step on every batch of "
    "batches(x_train, y_train, batch_size, rng); then append the epoch number and float(...) of the loss and "
    "accuracy from sess.run([loss, accuracy], ...) on the full training set and on the full test set.",
)
def _(train, topological_sort, softmax_regression):
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    data = (x_train, one_hot(y_train), x_test, one_hot(y_test))
    sort, epochs = _CountingSort(topological_sort), 3
    got = train(softmax_regression, sort, data, epochs=epochs)
    _expect_history(got, epochs)
    if sort.calls == 0:
        raise CheckFailure("the Session never called your topological sort: create it as mg.Session(sort=sort)")
    floor = 0.9
    if got["test_acc"][-1] < floor:
        raise CheckFailure(f"after {epochs} epochs at learning rate 0.5 the test accuracy should pass {floor}",
                           expected=_Text(f">= {floor}"), got=got["test_acc"])
    if not got["train_loss"][-1] < math.log(10):
        raise CheckFailure("the training loss did not fall below its starting value ln 10", got=got["train_loss"])
    summary = f"{epochs} epochs on the full MNIST with your sort in the Session: test accuracy above {floor:.0%}"
    return Passed(summary, value={key: list(got[key]) for key in HISTORY_KEYS})
