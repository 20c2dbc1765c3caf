r"""Checks of chapter 05, graph optimization.

- 5.1 ``eliminate_dead_code(fetches)``: every ``group`` keeps exactly its inputs that have an effect (they,
  or a node below them, are stateful); no other node changes.
- 5.2 ``fold_constants(fetches)``: no pure node is left whose inputs are all constants (unless computing it
  fails: that is left to the run); stateful ops, variables and placeholders stay; the values keep their bits.
- 5.3 ``node_key(node)`` and ``eliminate_common_subexpressions(fetches)``: equal keys for equal computations
  (constants: the same dtype, shape and bytes), none shared by sources or stateful nodes; after the pass no
  two nodes compute the same value — on the chapter's Adam step, 157 nodes become 110.
- 5.4 ``times_one(node)``: the rule ``x * 1 -> x`` (either side) for ``simplify(fetches, rules=...)``,
  refused where broadcasting or dtype promotion makes the product differ from ``x``.
- 5.5 ``find_fusable_groups(fetches)`` and ``my_pipeline(fetches)``: the largest groups of elementwise ops
  that one kernel can compute, fused with ``fuse_elementwise(fetches, find_groups=...)`` inside the
  learner's pipeline; MNIST trained through ``Session(optimize=my_pipeline)`` gives the curves of the
  graph as built, number for number (the histories come back as ``check(...).value``).

A pass is checked on graphs the checker builds, against invariants of its result (what must be gone, what
must stay, the same values bit for bit) rather than against the package's own pass.
"""

import copy
import functools
from collections import Counter

import numpy as np

from .. import passes
from ..autodiff import gradients
from ..gradcheck import check_gradients
from ..graph import Constant, Node, Placeholder, Variable, constant, format_shape, placeholder, topological_sort
from ..nn import DropoutMask, dense
from ..ops import (Group, Mul, add, argmax, assign_add, assign_sub, cast, div, equal, exp, group, matmul, mul, pow,
                   reduce_mean, reduce_sum, relu, softmax_cross_entropy, sqrt, sub, tanh)
from ..optim import Adam
from ..passes import algebra, cse, dead_code, fusion
from ..session import Session
from .expect import reported_as_failure
from .framework import CheckFailure, Passed, Text, exercise, expect_equal
from .report import format_value
from .training import history_by_epoch, mnist_splits

# ---------------------------------------------------------------------------------------------- shared


def _names(nodes):
    return [node.name for node in nodes]


def _line(node):
    """``name = op(input, ...)``: a node as a line of a listing."""
    return Text(f"{node.name} = {node.op.name}({', '.join(_names(node.inputs))})")


def _snapshot(fetches):
    """Every node of the graph with what a pass must leave as it is: its op, inputs, shape and dtype."""
    return [(node, node.op, node.inputs, node.shape, node.dtype) for node in topological_sort(fetches)]


def _apply(graph_pass, fetches, given):
    """``graph_pass(fetches)``, checked as a pass: the graph it was given unchanged, and a result of one node
    per fetch, in order, with its dtype and shape, built on the same placeholders and variables."""
    name = getattr(graph_pass, "__name__", "your pass")
    before = _snapshot(fetches)
    result = graph_pass(list(fetches))
    for node, op, inputs, shape, dtype in before:
        same_inputs = len(node.inputs) == len(inputs) and all(a is b for a, b in zip(node.inputs, inputs))
        if node.op is not op or not same_inputs or node.shape != shape or node.dtype != dtype:
            raise CheckFailure(f"{name} changed node {node.name!r} of the graph it was given (its inputs were "
                               f"{_names(inputs)}, now {_names(node.inputs)}): a pass never edits a node — other "
                               "graphs and sessions share it. Build a new node instead: rebuild(node, inputs)",
                               input=given)
    try:
        result = passes.check_result(fetches, result, name)
    except (TypeError, ValueError) as broken:
        raise CheckFailure(str(broken), input=given, expected=Text(f"a list of {len(fetches)} nodes"),
                           got=result) from None
    for node in topological_sort(result):
        if not node.inputs and not isinstance(node, (Placeholder, Variable, Constant)):
            raise CheckFailure(f"{name} built {node!r}, a node without inputs that is not a placeholder, variable or "
                               "constant: keep the sources as they are (rebuild(node, inputs) returns a node "
                               "itself when its inputs did not change)", input=given)
    return result


def _sources(fetches):
    return [node for node in topological_sort(fetches) if isinstance(node, (Placeholder, Variable))]


def _expect_sources_kept(fetches, result, name, given, why):
    """Every placeholder and variable of the graph given is still in the graph returned."""
    kept = set(topological_sort(result))
    for source in _sources(fetches):
        if source not in kept:
            raise CheckFailure(f"{source.op.name} {source.name!r} is gone from the graph {name} returned: {why}",
                               input=given)


def _run(fetches, feed, given, sess=None):
    """The values of ``fetches`` (a graph a learner's pass returned); an error of the run is a failure."""
    with reported_as_failure(__file__, lambda error: f"running the graph your pass returned raised "
                             f"{type(error).__name__}: {error}", input=given):
        return (sess or Session()).run(list(fetches), feed)


def _expect_same_bits(got, expected, what, given, hint=""):
    """``got`` must be ``expected`` bit for bit: the same shape, dtype and bytes."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape == expected.shape:
        if got.dtype != expected.dtype:
            raise CheckFailure(f"{what} has dtype {got.dtype}, the graph as built gives {expected.dtype}{hint}",
                               input=given, expected=expected, got=got)
        if got.tobytes() == expected.tobytes():
            return
        if np.array_equal(got, expected, equal_nan=True):
            raise CheckFailure(f"{what} differs from the graph as built in the sign of a zero (or the bits of a "
                               f"NaN){hint}", input=given, expected=_digits(expected), got=_digits(got))
        if np.allclose(got, expected, rtol=1e-5, atol=1e-7, equal_nan=True):
            raise CheckFailure(f"{what} differs from the graph as built in its last digits{hint}", input=given,
                               expected=_digits(expected), got=_digits(got))
    expect_equal(got, expected, input=given, what=what)


def _digits(array):
    """An array shown with every digit its dtype holds."""
    return Text(np.array2string(array, separator=" ", floatmode="unique", threshold=24, edgeitems=3,
                                max_line_width=80))


def _stateful_below(order):
    """For each node of ``order`` (a topological order): the stateful nodes among it and the nodes below it."""
    below = {}
    for node in order:
        below[node] = ({node} if node.op.stateful else set()).union(*(below[x] for x in node.inputs))
    return below


def _adam_mlp(hidden=128, seed=0):
    """The chapter's 784-hidden-10 ReLU network with its Adam training step."""
    rng = np.random.default_rng(seed)
    x = placeholder("x", shape=(None, 784))
    y = placeholder("y", shape=(None,), dtype="int64")
    layer = dense(x, hidden, activation=relu, rng=rng, name="hidden")
    logits = dense(layer, 10, rng=rng, name="output")
    loss = reduce_mean(softmax_cross_entropy(logits, y), name="loss")
    accuracy = reduce_mean(cast(equal(argmax(logits, axis=1), y), "float32"), name="accuracy")
    step = Adam(0.001).minimize(loss)
    return x, y, loss, accuracy, step


def _small_batch(x, y, rows=16):
    images = np.random.default_rng(5).uniform(0, 1, (rows, 784)).astype(np.float32)
    return {x: images, y: np.arange(rows) % 10}


def _expect_same_training(fetches, result, x, y, given, steps=2):
    """Run the training fetches as built and as returned, ``steps`` times each: the same losses and variables."""
    original, changed = Session(), Session()
    feed = _small_batch(x, y)
    for number in range(1, steps + 1):
        expected, got = original.run(fetches, feed), _run(result, feed, given, changed)
        _expect_same_bits(got[0], expected[0], f"the loss at step {number}", given)
    for var in _sources(fetches):
        if isinstance(var, Variable):
            _expect_same_bits(changed.run(var), original.run(var), f"variable {var.name!r} after {steps} steps", given)


# ---------------------------------------------------------------------------------------------- 5.1


def _dead_code_graphs():
    """Fetch sets whose groups run pure summaries next to effects: an assign below a pure node, a random draw."""
    x = placeholder("x", shape=(None, 3))
    W = Variable(np.ones((3, 2), np.float32), name="W")
    counter = Variable(np.float32(0), name="counter")
    scores = matmul(x, W, name="scores")
    loss = reduce_mean(scores, name="loss")
    accuracy = reduce_mean(cast(equal(argmax(scores, 1, name="prediction"), 0, name="correct"), "float32"),
                           name="accuracy")
    logged = reduce_sum(mul(assign_add(counter, 1.0, name="count"), 2.0, name="doubled"), name="logged")
    mask = DropoutMask(0.5, np.random.default_rng(0))(x, name="mask")
    update = assign_sub(W, mul(0.1, gradients(loss, W), name="delta"), name="update")
    step = group(update, accuracy, logged, mask, name="step")
    outer = group(group(update, accuracy, name="inner"), group(accuracy, loss, name="summaries"), name="outer")
    description = Text("scores = x @ W; loss = reduce_mean(scores)\n"
                       "accuracy = reduce_mean(argmax(scores) == 0)\n"
                       "logged = reduce_sum(assign_add(counter, 1) * 2); mask = a dropout mask of x\n"
                       "update = assign_sub(W, 0.1 * gradient of loss)\n"
                       "step = group(update, accuracy, logged, mask)\n"
                       "inner = group(update, accuracy); summaries = group(accuracy, loss)\n"
                       "outer = group(inner, summaries)")
    cases = [[step], [loss, step], [accuracy, step], [outer]]
    return x, cases, description


def _expect_dead_code_gone(fetches, result, name, given):
    original = topological_sort(fetches)
    known, kept = set(original), set(topological_sort(result))
    below = _stateful_below(original)
    for node in original:
        if node.op.stateful and node not in kept:
            owner, dropped = next(((g, x) for g in original if isinstance(g.op, Group) for x in g.inputs
                                   if node in below[x]), (None, None))
            if owner is None:
                message = f"{name} lost {node.name!r} ({node.op.name}), which is stateful: it must run as before"
            elif dropped is node:
                why = ("an assign: it writes a variable" if node.op.mutates else
                       "a random draw: it advances its generator, so every mask drawn after it would change")
                message = f"{name} dropped {node.name!r} from group {owner.name!r}, but it is stateful — {why}"
            else:
                message = (f"{name} dropped {dropped.name!r} from group {owner.name!r}: it is pure itself, but it "
                           f"depends on {node.name!r} ({node.op.name}), which is stateful — dropping it would skip "
                           "that. An input has an effect when it, or any node below it, is stateful")
            raise CheckFailure(message, input=given)
    for node in kept:
        if node not in known and not isinstance(node.op, Group):
            raise CheckFailure(f"{name} built a new {node.op.name} node, {node.name!r}: dead-code elimination only "
                               "changes groups; keep every other node as it is", input=given)
    effect = _stateful_below(topological_sort(result))
    for node in effect:
        if isinstance(node.op, Group):
            for x in node.inputs:
                if not effect[x]:
                    raise CheckFailure(f"group {node.name!r} still runs {x.name!r} ({x.op.name}), which has no "
                                       "effect: nothing it or the nodes below it compute is stateful, and a group "
                                       "throws its inputs' values away", input=given, got=_line(node))


@exercise(
    "5.1",
    "dead-code elimination",
    expects="eliminate_dead_code(fetches)",
    nudge="Find, bottom-up, which nodes are stateful or depend on a stateful node; then rewrite the graph so that "
    "each group keeps only those of its inputs.",
    hint="One pass over mg.topological_sort(fetches) fills a dict node -> has an effect: node.op.stateful, or "
    "any of node.inputs has one. Then mg.passes.rewrite(fetches, replace) with a replace(node, inputs) that, "
    "for a node whose op is a mg.ops.Group, keeps the new inputs whose old input has an effect (zip "
    "node.inputs with inputs), and returns mg.passes.rebuild(node, kept) — for every other node, "
    "rebuild(node, inputs).",
    unavailable=[passes.eliminate_dead_code, dead_code.has_effect, passes.optimize],
)
def _(eliminate_dead_code):
    x, cases, description = _dead_code_graphs()
    feed = {x: np.arange(6, dtype=np.float32).reshape(2, 3)}
    for fetches in cases:
        given = {"graph": description, "fetches": _names(fetches)}
        result = _apply(eliminate_dead_code, fetches, given)
        _expect_dead_code_gone(fetches, result, eliminate_dead_code.__name__, given)
        for before, after in zip(fetches, result):
            if not isinstance(before.op, Group) and after is not before:
                raise CheckFailure(f"fetch {before.name!r} was replaced by {after!r}: a node that is not a group "
                                   "stays the same object", input=given)
        variables = [node for node in _sources(fetches) if isinstance(node, Variable)]
        original, pruned = Session(), Session()
        for _ in range(3):
            original.run(fetches, feed)
            _run(result, feed, given, pruned)
        for var in variables:
            _expect_same_bits(pruned.run(var), original.run(var), f"variable {var.name!r} after 3 runs", given)
    x, y, loss, accuracy, step = _adam_mlp()
    W = next(var for var in _sources([loss]) if var.name == "hidden/W")
    logged_step = group(step, sqrt(reduce_sum(W * W)), name="logged_step")
    given = Text("the chapter's Adam training step, grouped with the norm of hidden/W")
    result = _apply(eliminate_dead_code, [loss, logged_step], given)
    _expect_dead_code_gone([loss, logged_step], result, eliminate_dead_code.__name__, given)
    _expect_same_training([loss, logged_step], result, x, y, given)
    sizes = len(topological_sort([loss, logged_step])), len(topological_sort(result))
    return (f"{len(cases)} fetch sets keep each effect (an assign under a pure node, a random draw) and lose each "
            f"summary; the Adam step with a grouped summary: {sizes[0]} → {sizes[1]} nodes, same training")


# ---------------------------------------------------------------------------------------------- 5.2


def _folding_graphs():
    x = placeholder("x", shape=(2,))
    v = Variable(np.float32(3), name="v")
    c = constant(np.array([1.0, 2.0], np.float32), name="c")
    e = exp(sub(mul(c, 2.0, name="twice"), 1.0, name="shifted"), name="e")
    half = sub(constant(np.float32(1), name="one"), 0.5, name="half")
    y = add(mul(x, e, name="xe"), mul(v, half, name="vh"), name="y")
    write = assign_add(v, reduce_sum(c, name="total"), name="write")
    mask = DropoutMask(0.5, np.random.default_rng(0))(c, name="mask")
    masked = mul(mask, x, name="masked")
    precise_x = placeholder("precise_x", shape=(3,), dtype="float64")
    third = div(constant(np.float64(1.0), name="one64"), constant(np.float64(3.0), name="three64"), name="third")
    precise = mul(precise_x, third, name="precise")
    bad = softmax_cross_entropy(constant(np.zeros((1, 3), np.float32), name="logits"),
                                constant(np.array([5]), name="labels"), name="bad")
    description = Text("c = constant([1, 2]); e = exp(c * 2 - 1); half = constant(1) - 0.5\n"
                       "y = x * e + v * half  (x a placeholder, v a variable)\n"
                       "write = assign_add(v, reduce_sum(c)); masked = dropout_mask(c) * x\n"
                       "precise = precise_x * (constant(1.0) / constant(3.0)), in float64\n"
                       "bad = softmax_cross_entropy(zeros (1, 3), labels [5])  (a label outside 0..2)")
    feed = {x: np.array([1.5, -2.0], np.float32), precise_x: np.array([3.0, 1e-3, -7.0])}
    cases = [([y], "y"), ([e], "e"), ([write, y], "write, then y"), ([mask, masked], "mask and masked"),
             ([precise], "precise")]
    return cases, bad, description, feed


def _fails_to_compute(node):
    """True if computing ``node`` from its (constant) inputs raises."""
    try:
        node.op.compute(node, [x.constant for x in node.inputs])
    except Exception:
        return True
    return False


def _expect_folded(fetches, result, name, given):
    _expect_sources_kept(fetches, result, name, given, "a variable changes when it is assigned and a placeholder is "
                         "fed at each run; only Constant nodes are constant")
    before, after = (Counter(node.op.name for node in topological_sort(graph) if node.op.stateful)
                     for graph in (fetches, result))
    for node in topological_sort(fetches):
        if node.op.stateful and after[node.op.name] < before[node.op.name]:
            why = ("a new random mask at every run: folding it would freeze one mask for the whole training"
                   if not node.op.mutates else "an assign must write its variable at every run")
            raise CheckFailure(f"{node.op.name} {node.name!r} was folded, but it is stateful — {why}. Fold only "
                               "ops whose node.op.stateful is false", input=given)
    for node in topological_sort(result):
        foldable = node.inputs and node.dtype is not None and not node.op.stateful
        if foldable and all(isinstance(x, Constant) for x in node.inputs) and not _fails_to_compute(node):
            raise CheckFailure(f"{node.name!r} ({node.op.name}) still has only constant inputs: compute it once and "
                               "put a constant in its place. Decide with the inputs rewrite gives you (already "
                               "folded below), not with node.inputs: a node whose inputs were not constants may have "
                               "only constant ones now", input=given, got=_line(node))


@exercise(
    "5.2",
    "constant folding",
    expects="fold_constants(fetches)",
    nudge="Rebuild each node on its rewritten inputs; if they are all constants and the op is pure, compute the "
    "value now and return a constant in its place — unless computing it fails.",
    hint="Use mg.passes.rewrite with a replace(node, inputs) that first rebuilds the node on its inputs "
    "(mg.passes.rebuild). Keep that node if it has no inputs, if one of them is not an mg.Constant, if its op "
    "is stateful, or if its dtype is None (a group). Otherwise call its op's compute method with the node and "
    "the arrays of the constants (x.constant), inside try/except Exception — on an error keep the node, the "
    "run will report it — and return an mg.Constant of the value, with the node's name and dtype.",
    unavailable=[passes.fold_constants, passes.optimize],
)
def _(fold_constants):
    cases, bad, description, feed = _folding_graphs()
    name = fold_constants.__name__
    for fetches, shown in cases:
        given = {"graph": description, "fetches": Text(shown)}
        result = _apply(fold_constants, fetches, given)
        _expect_folded(fetches, result, name, given)
        below = _stateful_below(topological_sort(fetches))
        deterministic = [i for i, node in enumerate(fetches) if all(n.op.mutates for n in below[node])]  # no draw
        original, folded = Session(), Session()
        for _ in range(2):  # the second run sees v after the assign
            expected = original.run(fetches, feed)
            got = _run(result, feed, given, folded)
            for i in deterministic:
                _expect_same_bits(got[i], expected[i], f"the value of {fetches[i].name!r}", given,
                                  ": a folded value must be the very array compute returns — same dtype, same bits")
    given = {"graph": description, "fetches": Text("bad")}
    try:
        result = _apply(fold_constants, [bad], given)
    except Exception as error:
        if isinstance(error, (NotImplementedError, CheckFailure)):
            raise
        raise CheckFailure(f"{name} raised {type(error).__name__} ({error}) while folding 'bad', a constant subtree "
                           "whose value is an error. Leave such a node as it is: the run will report the error, "
                           "naming the node, if that node is ever run", input=given) from None
    if result[0] is not bad:
        raise CheckFailure("'bad' cannot be computed, so it must stay as it is", input=given, got=result[0])
    return (f"{len(cases) + 1} fetch sets: constant subtrees folded with the same bits; a dropout mask, an assign, a "
            "variable and a computation that fails are left to the run")


# ---------------------------------------------------------------------------------------------- 5.3


def _shown_keys(*keys):
    return Text("\n".join(format_value(key)[:96] for key in keys))


def _hashable(key, name, given):
    try:
        hash(key)
    except TypeError:
        raise CheckFailure(f"{name} returned a {type(key).__name__}, which cannot be a key of a dict: build keys "
                           "from tuples, strings, numbers, bytes and nodes", input=given,
                           got=_shown_keys(key)) from None


def _key_pairs():
    """(description, a, b, why the keys must differ or None when they must be equal)."""
    x = placeholder("x", shape=(None, 3))
    other_x = placeholder("x", shape=(None, 3))
    two = constant(np.float32(2), name="two")
    v = Variable(np.float32(0), name="v")
    one = constant(np.float32(1), name="one")
    draw = DropoutMask(0.5, np.random.default_rng(0))
    return [
        ("x * two, built twice on the same nodes", mul(x, two), mul(x, two), None),
        ("constant 0.9 made twice", constant(0.9), constant(0.9), None),
        ("tanh(x) built twice", tanh(x), tanh(x), None),
        ("reduce_sum(x, axis=1) built twice", reduce_sum(x, 1), reduce_sum(x, 1), None),
        ("constants 0.0 and -0.0", constant(0.0), constant(-0.0),
         "0.0 == -0.0, yet 1 / 0.0 is inf and 1 / -0.0 is -inf. Compare the constants' bytes"),
        ("zeros of shape (2, 3) and of shape (3, 2)", constant(np.zeros((2, 3))), constant(np.zeros((3, 2))),
         "their bytes are the same, their shapes are not. Key a constant by its dtype, shape and bytes"),
        ("int64 0 and float64 0.0", constant(np.int64(0)), constant(np.float64(0)),
         "both are 8 zero bytes, but of other dtypes. Key a constant by its dtype, shape and bytes"),
        ("x ** 2 and x ** 3", pow(x, 2), pow(x, 3),
         "one op type with other parameters (node.attrs): put them in the key"),
        ("reduce_sum(x, axis=0) and reduce_sum(x, axis=1)", reduce_sum(x, 0), reduce_sum(x, 1),
         "one op type with other parameters (node.attrs): put them in the key"),
        ("two placeholders, both named 'x'", x, other_x,
         "placeholders are fed separately: a source that is not a constant equals no other node"),
        ("x * two and x' * two, x and x' two placeholders named 'x'", mul(x, two), mul(other_x, two),
         "their inputs are other nodes: put the input nodes themselves in the key, not their names"),
        ("two variables whose values are both 0", v, Variable(np.float32(0), name="w"),
         "a variable's value changes when it is assigned: a source that is not a constant equals no other node"),
        ("assign_add(v, one), built twice", assign_add(v, one), assign_add(v, one),
         "an assign is stateful: two of them add twice. Return None when node.op.stateful"),
        ("two dropout masks of x from one op", draw(x), draw(x),
         "a random draw is stateful: two masks differ. Return None when node.op.stateful"),
    ]


def _expect_keys(node_key):
    """The learner's keys on :func:`_key_pairs`; returns how many pairs."""
    name = node_key.__name__
    pairs = _key_pairs()
    for description, a, b, why in pairs:
        given = {"nodes": Text(description)}
        keys = node_key(a), node_key(b)
        for key in keys:
            _hashable(key, name, given)
        if why is None and (keys[0] is None or len({keys[0]: 0, keys[1]: 1}) != 1):
            raise CheckFailure(f"{name} should give these two nodes one key: they compute the same value",
                               input=given, got=_shown_keys(*keys))
        if why is not None and keys[0] is not None and keys[1] is not None and len({keys[0]: 0, keys[1]: 1}) == 1:
            raise CheckFailure(f"{name} gives these two nodes one key, but they must differ: {why}", input=given,
                               got=_shown_keys(*keys))
    return len(pairs)


def _same_parameter(a, b):
    """Whether two op parameters are the same: arrays by dtype, shape and bytes, floats by their bits."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_parameter, a, b))
    if isinstance(a, float):
        return isinstance(b, float) and a.hex() == b.hex()
    return type(a) is type(b) and bool(a == b)


def _same_computation(a, b):
    """Whether distinct nodes ``a`` and ``b`` compute the same value: equal constants, or the same pure op with
    the same parameters on the same input nodes."""
    if isinstance(a, Constant) or isinstance(b, Constant):
        return (isinstance(a, Constant) and isinstance(b, Constant) and a.dtype == b.dtype and a.shape == b.shape
                and a.constant.tobytes() == b.constant.tobytes())
    if not a.inputs or a.op.stateful or type(a.op) is not type(b.op) or a.inputs != b.inputs:
        return False
    first, second = a.attrs, b.attrs
    return first.keys() == second.keys() and all(_same_parameter(first[k], second[k]) for k in first)


def _twins(nodes):
    """The first two nodes of ``nodes`` that compute the same value, or None."""
    candidates = {}  # nodes sharing an op type and inputs (or a constant's dtype and shape) are compared
    for node in nodes:
        bucket = ("constant", node.dtype, node.shape) if isinstance(node, Constant) else (type(node.op), node.inputs)
        for earlier in candidates.setdefault(bucket, []):
            if _same_computation(earlier, node):
                return earlier, node
        candidates[bucket].append(node)
    return None


def _expect_merged(fetches, result, node_key, name, given):
    pair = _twins(topological_sort(result))
    if pair is None:
        return
    a, b = pair
    if isinstance(a, Constant):
        what = f"two equal constants remain, {format_value(a.constant)} ({a.dtype}, shape {a.shape})"
    else:
        what = f"{a.name!r} and {b.name!r} still compute the same value ({a.op.name} of {_names(a.inputs)})"
    keys = node_key(a), node_key(b)
    unchanged = all(new is old for new, old in zip(result, fetches))
    done = f"{name} returned the fetches unchanged" if unchanged else f"{name} kept both"
    if keys[0] is not None and len({keys[0]: 0, keys[1]: 1}) == 1:
        cause = (f"{done}, although your node_key gives them one key: rebuild each node on its rewritten inputs "
                 "(node = rebuild(node, inputs)), then return the first node with its key")
    elif unchanged:
        cause = done
    else:
        cause = "your node_key tells them apart"
    raise CheckFailure(f"{what}: only the first should be left; {cause}", input=given)


def _cse_graphs():
    x = placeholder("x", shape=(None, 3))
    a = tanh(x * 2.0 + 1.0, name="a")
    b = tanh(x * 2.0 + 1.0, name="b")
    y = add(a * b, a, name="y")
    positive, negative = div(x, constant(0.0), name="over_zero"), div(x, constant(-0.0), name="over_minus_zero")
    v = Variable(np.float32(0), name="v")
    twice = group(assign_add(v, 1.0, name="add_1"), assign_add(v, 1.0, name="add_1_again"), name="twice")
    W1, W2 = Variable(np.zeros(3, np.float32), name="W1"), Variable(np.zeros(3, np.float32), name="W2")
    both = add(reduce_sum(W1 * x), reduce_sum(W2 * x), name="both")
    description = Text("a = tanh(x * 2 + 1); b = tanh(x * 2 + 1); y = a * b + a\n"
                       "over_zero = x / 0.0; over_minus_zero = x / -0.0\n"
                       "twice = group(assign_add(v, 1), assign_add(v, 1))\n"
                       "both = reduce_sum(W1 * x) + reduce_sum(W2 * x), W1 and W2 variables of zeros")
    cases = [[y, a, b], [positive, negative], [twice, v], [both]]
    return x, cases, description


@exercise(
    "5.3",
    "CSE by hash-consing",
    expects=("node_key(node)", "eliminate_common_subexpressions(fetches)"),
    nudge="A key must be equal exactly when two nodes compute the same value; then one bottom-up rewrite keeps "
    "the first node of each key.",
    hint="node_key: for an mg.Constant, (dtype.str, shape, the bytes of node.constant); for a node without "
    "inputs (placeholder, variable) or whose op is stateful, None; otherwise (type(node.op), its parameters, "
    "node.inputs) — the parameters as a sorted tuple of node.attrs items, each value made hashable "
    "(a float by float.hex, a list as a tuple, an array by dtype, shape and bytes). The pass: a dict from key "
    "to the first node with that key, and mg.passes.rewrite with a replace that rebuilds the node on its "
    "inputs, takes its key and returns the node stored under it (storing the node itself if there is none; "
    "dict.setdefault does both) — or the node itself when the key is None.",
    unavailable=[passes.node_key, cse.value_key, passes.eliminate_common_subexpressions, passes.optimize],
)
def _(node_key, eliminate_common_subexpressions):
    pairs = _expect_keys(node_key)
    name = eliminate_common_subexpressions.__name__
    x, cases, description = _cse_graphs()
    feed = {x: np.array([[1.0, -0.5, 0.0], [2.0, 3.0, -4.0]], np.float32)}
    for fetches in cases:
        given = {"graph": description, "fetches": _names(fetches)}
        result = _apply(eliminate_common_subexpressions, fetches, given)
        _expect_sources_kept(fetches, result, name, given, "it was merged with another one, but a placeholder or "
                             "variable equals no other node")
        stateful = sum(node.op.stateful for node in topological_sort(fetches))
        if sum(node.op.stateful for node in topological_sort(result)) != stateful:
            raise CheckFailure(f"{name} merged stateful nodes: two assign_add(v, 1) add twice, and two random "
                               "draws differ", input=given)
        _expect_merged(fetches, result, node_key, name, given)
        original, merged = Session(), Session()
        for _ in range(2):
            expected, got = original.run(fetches, feed), _run(result, feed, given, merged)
            for fetch, want, value in zip(fetches, expected, got):
                if not isinstance(fetch.op, Group):
                    _expect_same_bits(value, want, f"the value of {fetch.name!r}", given)
    x, y, loss, accuracy, step = _adam_mlp()
    given = Text("the chapter's Adam training step of a 784-128-10 MLP: [loss, train_step]")
    result = _apply(eliminate_common_subexpressions, [loss, step], given)
    _expect_merged([loss, step], result, node_key, name, given)
    _expect_same_training([loss, step], result, x, y, given)
    sizes = len(topological_sort([loss, step])), len(topological_sort(result))
    return (f"{pairs} pairs of keys; {len(cases)} graphs keep 0.0 and -0.0, two assigns and two variables apart; "
            f"the Adam step: {sizes[0]} → {sizes[1]} nodes, same training")


# ---------------------------------------------------------------------------------------------- 5.4


def _times_one_cases():
    """(description, the product node, the operand the rule should return — or, where the rule must not
    apply, why)."""
    x = placeholder("x", shape=(None, 4))
    row = placeholder("row", shape=(4,))
    matrix = placeholder("matrix", shape=(3, 4))
    counts = placeholder("counts", shape=(5,), dtype="int64")
    unknown = placeholder("unknown")  # rank unknown
    other = placeholder("other", shape=(None, 4))
    ones = constant(np.ones(4, np.float32), name="ones4")
    ones_34 = constant(np.ones((3, 4), np.float32), name="ones3x4")
    return [
        ("x * 1, x of shape (None, 4)", mul(x, 1.0), x),
        ("1 * x", mul(1.0, x), x),
        ("matrix * ones(4), matrix of shape (3, 4)", mul(matrix, ones), matrix),
        ("x * ones((1, 4))", mul(x, constant(np.ones((1, 4), np.float32))), x),
        ("counts * 1, int64 counts", mul(counts, 1), counts),
        ("row * ones((3, 4)), row of shape (4,)", mul(row, ones_34),
         "broadcasting makes the product (3, 4), larger than row (4,)"),
        ("x * ones((5, 4)), x of shape (None, 4)", mul(x, constant(np.ones((5, 4), np.float32))),
         "the product has 5 rows, x as many as it is fed: a size None is not known to match"),
        ("row * float64 1, row float32", mul(row, constant(np.float64(1))),
         "the product is float64 (numpy promotes float32 times float64), row is float32"),
        ("row * [1, 1, 2, 1]", mul(row, constant(np.array([1, 1, 2, 1], np.float32))),
         "not every entry of the constant is 1: check them all"),
        ("unknown * ones((3, 4)), unknown of unknown shape", mul(unknown, ones_34),
         "the shape of unknown is not known (None): fed (4,), it makes the product (3, 4)"),
        ("x * 2", mul(x, 2.0), "2 is not 1"),
        ("x * other, other a placeholder", mul(x, other), "other is not a constant"),
        ("ones(4) * ones((3, 4))", mul(ones, ones_34), ones_34),
    ]


def _same_values(node, other):
    """Whether ``other`` computes ``node``'s values wherever ``node`` can be computed: on random values of the
    placeholders, with 1, 3 and 5 for a size None (an unknown shape is fed (4,))."""
    rng = np.random.default_rng(7)
    for rows in (1, 3, 5):
        feed = {}
        for source in _sources([node, other]):
            if isinstance(source, Placeholder):
                shape = (4,) if source.shape is None else tuple(rows if d is None else d for d in source.shape)
                feed[source] = rng.integers(-5, 5, shape) if source.dtype.kind == "i" else rng.normal(size=shape)
        try:
            want = Session().run(node, feed)
        except ValueError:  # shapes that do not broadcast: the product cannot be computed either
            continue
        try:
            got = Session().run(other, feed)
        except Exception:
            return False
        if got.shape != want.shape or got.dtype != want.dtype or got.tobytes() != want.tobytes():
            return False
    return True


def _expect_rule_result(times_one, description, node, expected):
    name = times_one.__name__
    given = {"node": Text(description), "product": Text(f"shape {format_shape(node.shape)}, {node.dtype}")}
    got = times_one(node)
    if got is not None and not isinstance(got, Node):
        raise CheckFailure(f"{name} should return a node or None, not a {type(got).__name__}", input=given, got=got)
    if got is None or got is node or got is expected:
        if isinstance(expected, Node) and got is not expected:
            raise CheckFailure(f"{name} should return the operand {expected.name!r} itself: the product equals it",
                               input=given, expected=expected, got=got)
        return
    problem = []
    if got.shape != node.shape:
        problem.append(f"its shape is {format_shape(got.shape)}, the product's {format_shape(node.shape)}")
    if got.dtype != node.dtype:
        problem.append(f"its dtype is {got.dtype}, the product's {node.dtype}")
    if isinstance(got.op, Mul) and not problem:
        problem.append("a product again, which simplify would hand to your rule again, without end")
    if not problem and _same_values(node, got):  # a rewrite of the learner's own, with the product's value
        return
    if isinstance(expected, Node):
        why = "; ".join(problem) or "it does not compute the product's value"
        raise CheckFailure(f"{name} should return the operand {expected.name!r} itself, not {got!r}: {why}",
                           input=given, expected=expected, got=got)
    raise CheckFailure(f"{name} returned {got!r}, which cannot stand for the product: {expected}. Return None when "
                       "the rule does not apply (judge by the static shapes: a size None may be anything at run "
                       "time, and so may a shape None)", input=given, expected=None, got=got)


def _simplify(fetches, times_one, given):
    """``simplify`` with the learner's rule for products only; its refusal of a rule's result is a failure."""
    with reported_as_failure(__file__, str, input=given, catch=(ValueError, RuntimeError)):  # simplify names the rule
        return passes.simplify(fetches, rules={Mul: [times_one]})


@exercise(
    "5.4",
    "an algebraic rule: x * 1 -> x",
    expects="times_one(node)",
    nudge="Return the other operand only when one operand is a constant full of ones and the other has the "
    "product's dtype and its fully known static shape; otherwise return None.",
    hint="a, b = node.inputs. For each order (b the constant, then a): the constant must be an mg.Constant with "
    "at least one entry and np.all(constant.constant == 1); the other operand must have other.dtype == "
    "node.dtype and other.shape == node.shape with other.shape not None (so broadcasting made nothing "
    "larger and promotion nothing wider). Return it; if neither order works, return None.",
    unavailable=[algebra.times_one, algebra.identity_operand, algebra.fits, algebra.is_filled_with],
)
def _(times_one):
    cases = _times_one_cases()
    for description, node, expected in cases:
        _expect_rule_result(times_one, description, node, expected)
    x = placeholder("x", shape=(2, 3), dtype="float64")
    ones = constant(np.ones(3))
    y = mul(mul(mul(x, 1.0), tanh(mul(1.0, x))), ones, name="y")
    given = {"graph": Text("y = ((x * 1) * tanh(1 * x)) * ones(3), x float64 of shape (2, 3)"),
             "rules": Text("{mg.ops.Mul: [times_one]}")}
    (simplified,) = _simplify([y], times_one, given)
    products = [node for node in topological_sort([simplified]) if isinstance(node.op, Mul)]
    if len(products) != 1 or products[0].inputs[0] is not x:
        raise CheckFailure("simplify with your rule should leave one product, x * tanh(x)", input=given,
                           got=Text(f"{len(products)} products"))
    value = np.array([[0.5, -0.0, 3.0], [-2.0, 1e300, -1e-300]])
    _expect_same_bits(Session().run(simplified, {x: value}), Session().run(y, {x: value}), "the value of y",
                      given)
    weights = constant(np.linspace(-1, 1, 6).reshape(2, 3))
    small = {x: np.array([[0.5, -0.3, 1.2], [-2.0, 0.7, 0.1]])}
    try:
        check_gradients(reduce_sum(simplified * weights), [x], small)
    except AssertionError as wrong:
        raise CheckFailure(f"the simplified graph's gradient is wrong: {wrong}", input=given) from None
    grad = gradients(reduce_sum(y * weights), x)
    (simplified_grad,) = _simplify([grad], times_one, given)
    _expect_same_bits(Session().run(simplified_grad, small), Session().run(grad, small), "the gradient of y", given)
    removed = len(topological_sort([grad])) - len(topological_sort([simplified_grad]))
    refused = sum(isinstance(expected, str) for _, _, expected in cases)
    return (f"{len(cases)} products, {refused} of them refused (broadcasting, dtype, other values); in simplify, "
            f"values and gradients keep their bits (the gradient graph loses {removed} nodes)")


# ---------------------------------------------------------------------------------------------- 5.5


def _fusable(node):
    """Whether ``node`` can be a member of a group: an elementwise kernel, pure, a floating dtype, a known shape."""
    floating = node.dtype is not None and node.dtype.kind == "f"
    return node.op.kernel is not None and not node.op.stateful and floating and node.shape is not None


def _expected_groups(fetches):
    """The largest groups: each fusable node joins the group of its one consumer when that consumer is fusable,
    of the same shape and dtype, and the node is not fetched."""
    order = topological_sort(fetches)
    consumers, fetched = fusion.consumers_of(order), set(fetches)

    def joined(node):  # the consumer whose kernel can compute node's value, or None
        if node in fetched or len(consumers[node]) != 1:
            return None
        (consumer,) = consumers[node]
        fits = _fusable(consumer) and consumer.shape == node.shape and consumer.dtype == node.dtype
        return consumer if fits else None

    groups = {}
    for node in filter(_fusable, order):
        root = node
        while (consumer := joined(root)) is not None:
            root = consumer
        groups.setdefault(root, []).append(node)
    return [group for group in groups.values() if len(group) > 1]


def _fusion_graphs():
    x = placeholder("x", shape=(None, 4))
    b = placeholder("b", shape=(4,))
    u = tanh(add(mul(x, 2.0, name="scaled"), b, name="shifted"), name="u")
    shared = exp(u, name="shared")
    y = sub(mul(shared, 3.0, name="tripled"), shared, name="y")
    scalar = mul(reduce_sum(y, name="total"), 2.0, name="scalar")
    e = exp(x, name="e")
    squared = add(mul(e, e, name="e_squared"), 1.0, name="squared")
    bias = mul(b, 0.5, name="half_b")
    activated = relu(add(x, bias, name="biased"), name="activated")
    wide = add(mul(x, 0.5, name="halved"), constant(np.ones(4), name="ones64"), name="wide")
    description = Text("u = tanh(x * 2 + b); shared = exp(u); y = shared * 3 - shared\n"
                       "scalar = reduce_sum(y) * 2\n"
                       "e = exp(x); squared = e * e + 1\n"
                       "activated = relu(x + b * 0.5)  (x: (None, 4), b: (4,))\n"
                       "wide = x * 0.5 + float64 ones(4)  (x float32: the sum is float64)")
    feed = {x: np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4), b: np.float32([1, -1, 0.5, 0])}
    cases = [[y, scalar], [y, u], [squared], [activated, wide], [scalar, squared, activated]]
    return cases, description, feed


def _expect_groups_form(groups, fetches, name, given):
    """The learner's groups as lists of nodes of the graph, each of two or more, in topological order, disjoint."""
    if not isinstance(groups, (list, tuple)):
        raise CheckFailure(f"{name} should return a list of groups (each a list of nodes)", input=given, got=groups)
    position = {node: i for i, node in enumerate(topological_sort(fetches))}
    seen = set()
    for group in groups:
        if not isinstance(group, (list, tuple)) or not all(isinstance(node, Node) for node in group):
            raise CheckFailure("each group should be a list of nodes, in topological order (its root last)",
                               input=given, got=group)
        if any(node not in position for node in group):
            raise CheckFailure(f"a group holds {next(n for n in group if n not in position)!r}, which is not a node "
                               "of the graph of the fetches", input=given, got=_names(group))
        if len(group) < 2:
            raise CheckFailure("a group of one node fuses nothing: leave such groups out", input=given,
                               got=_names(group))
        if [position[node] for node in group] != sorted(position[node] for node in group):
            raise CheckFailure("a group must list its nodes in topological order, each after its inputs, the root "
                               "last", input=given, got=_names(group))
        again = next((node for node in group if node in seen), None)
        if again is not None:
            raise CheckFailure(f"{again.name!r} is in two groups: each node is computed by one kernel", input=given)
        seen.update(group)
    return [list(group) for group in groups]


def _shape_and_dtype(node):
    return f"{format_shape(node.shape)} {node.dtype}"


def _not_fusable(node):
    """Why ``node`` cannot be in a group at all, or None."""
    if node.op.kernel is None:
        return f"{node.name!r} ({node.op.name}) has no kernel (op.kernel is None): it is not elementwise"
    if node.op.stateful:
        return f"{node.name!r} ({node.op.name}) is stateful"
    if not _fusable(node):
        return f"{node.name!r} is {_shape_and_dtype(node)}: a member needs a floating dtype and a known shape"
    return None


def _member_problem(node, group, consumers, fetched):
    """Why ``node`` (not the root) cannot be computed inside ``group``'s kernel, or None."""
    problem = _not_fusable(node)
    if problem:
        return problem
    if node in fetched:
        return f"{node.name!r} is fetched: its value must be returned, so it can only be the root of a group"
    readers = consumers[node]
    if len(readers) != 1:
        return (f"{node.name!r} is read by {len(readers)} nodes ({', '.join(sorted(_names(readers)))}): its value "
                "must exist as an array of its own, so it can only be the root of a group")
    (consumer,) = readers
    if consumer not in group:
        return f"{node.name!r} is read by {consumer.name!r}, which is not in the group"
    if not _fusable(consumer):
        return f"{node.name!r} is read by {consumer.name!r} ({consumer.op.name}), which has no kernel"
    if consumer.shape != node.shape or consumer.dtype != node.dtype:
        return (f"{node.name!r} is {_shape_and_dtype(node)} but its consumer {consumer.name!r} is "
                f"{_shape_and_dtype(consumer)}: a value that broadcasts into the group, or is promoted to another "
                "dtype, is an input of the kernel, not a member")
    return None


def _expect_groups(find_fusable_groups, fetches, given):
    name = find_fusable_groups.__name__
    groups = _expect_groups_form(find_fusable_groups(list(fetches)), fetches, name, given)
    order = topological_sort(fetches)
    consumers, fetched = fusion.consumers_of(order), set(fetches)
    for group in groups:
        for node in group:
            problem = _member_problem(node, group, consumers, fetched) if node is not group[-1] else _not_fusable(node)
            if problem:
                raise CheckFailure(f"a group that one kernel cannot compute: {problem}", input=given,
                                   got=_names(group))
    expected = _expected_groups(fetches)
    found = {frozenset(group) for group in groups}
    for want in expected:
        if frozenset(want) in found:
            continue
        smaller = next((group for group in groups if set(group) < set(want)), None)
        if smaller is None:
            raise CheckFailure(f"{name} found no group with root {want[-1].name!r}", input=given,
                               expected=_names(want), got=[_names(group) for group in groups])
        missing = next(node for node in want if node not in smaller)
        (consumer,) = consumers[missing]
        raise CheckFailure(f"the group of {smaller[-1].name!r} could also hold {missing.name!r}: its value has one "
                           f"consumer, {consumer.name!r}, in the group, of the same shape and dtype (count consumers "
                           "as nodes: a node that uses a value twice is one consumer)", input=given,
                           expected=_names(want), got=_names(smaller))
    return groups


def _kernels(fetches):
    """The fused nodes of the graph of ``fetches``."""
    return [node for node in topological_sort(fetches) if isinstance(node.op, passes.FusedElementwise)]


def _expect_your_kernels(find_fusable_groups, optimized, kernels, given):
    """The pipeline's kernels are those that the learner's groups make — whatever finder it handed
    ``fuse_elementwise``, under whatever name. Each kernel unfused again (its ops rebuilt on its inputs) gives
    back the graph the pipeline fused; fusing that with ``find_fusable_groups`` must make the same kernels."""
    unfused = passes.rewrite(optimized, lambda node, inputs: node.op.unfused(inputs) if isinstance(
        node.op, passes.FusedElementwise) else passes.rebuild(node, inputs))
    try:
        fused_again = passes.fuse_elementwise(unfused, find_groups=find_fusable_groups)
    except ValueError as refused:  # fuse_elementwise names what is wrong with a group
        raise CheckFailure(str(refused), input=given) from None
    from_finder = sorted(node.op.name for node in _kernels(fused_again))
    from_pipeline = sorted(node.op.name for node in kernels)
    if from_pipeline != from_finder:
        raise CheckFailure("your pipeline's fused kernels are not those that your find_fusable_groups makes on the "
                           "graph it fused: did it call fuse_elementwise without find_groups= (minigraph's own "
                           "finder then chooses, and it also takes matrix products and assigns) or hand it another "
                           "finder? End your pipeline with "
                           "mg.passes.fuse_elementwise(fetches, find_groups=find_fusable_groups)", input=given,
                           expected=from_finder, got=from_pipeline)


MNIST_EPOCHS, MNIST_BATCH = 3, 128


def _train(optimize):
    """The chapter's MLP trained with Adam, ``optimize`` given to its Session: the history after each epoch
    (loss and accuracy on the full training and test sets) and the final trainable variables."""
    from ..datasets import batches

    x, y, loss, accuracy, step = _adam_mlp()
    data = mnist_splits()
    sess = Session(optimize=optimize)

    def train_epoch(epoch):
        for images, labels in batches(*data["train"], MNIST_BATCH, rng=epoch):
            sess.run([loss, step], {x: images, y: labels})

    history = history_by_epoch(MNIST_EPOCHS, train_epoch, lambda images, labels: sess.run(
        [loss, accuracy], {x: images, y: labels}), data)
    weights = [(var.name, sess.run(var)) for var in _sources([loss, step]) if isinstance(var, Variable)]
    return history, weights


@functools.cache
def _trained_as_built():
    """The MNIST training of the graph as built: the same for every learner, so run once per Python process."""
    return _train(False)


def _train_both(pipeline):
    """The MNIST training as built and through ``pipeline``: ((history, weights), (history, weights)), the first a
    copy of the one run as built (the learner gets the histories back and may change them)."""
    return copy.deepcopy(_trained_as_built()), _train(pipeline)


@exercise(
    "5.5",
    "fusable groups, your pipeline, MNIST",
    expects=("find_fusable_groups(fetches)", "my_pipeline(fetches)"),
    nudge="A node joins the group of its only consumer when both are fusable and of one shape and dtype and "
    "the node is not fetched; walk the graph from the fetches down, consumers before their inputs.",
    hint="Count each node's consumers (a set of nodes) over mg.topological_sort(fetches). A node is fusable "
    "when node.op.kernel is not None, not node.op.stateful, its dtype is floating (dtype.kind == 'f') and "
    "its shape is not None. Visit the order reversed with a dict node -> root: a fusable node whose one "
    "consumer has a root, is not fetched and has its shape and dtype takes that root; any other fusable "
    "node is a root itself. Collect the nodes of each root in topological order and keep the groups of two "
    "or more. my_pipeline chains your passes of 5.1-5.3, mg.passes.simplify with your rule of 5.4 and, "
    "last, mg.passes.fuse_elementwise(fetches, find_groups=find_fusable_groups).",
    unavailable=[passes.find_fusable_groups, passes.optimize, fusion.can_fuse, fusion.can_join, fusion.can_head,
                 fusion.check_groups, fusion.fits_inside, fusion.consumers_of],
    time_limit=90,
)
def _(find_fusable_groups, my_pipeline):
    cases, description, feed = _fusion_graphs()
    for fetches in cases:
        given = {"graph": description, "fetches": _names(fetches)}
        groups = _expect_groups(find_fusable_groups, fetches, given)
        try:
            fused = passes.fuse_elementwise(list(fetches), find_groups=lambda _: groups)
        except ValueError as refused:  # a condition the checks above do not know: fuse_elementwise names it
            raise CheckFailure(str(refused), input=given, got=[_names(group) for group in groups]) from None
        for fetch, want, got in zip(fetches, Session().run(fetches, feed), _run(fused, feed, given)):
            _expect_same_bits(got, want, f"the value of {fetch.name!r}, fused", given)
    x, y, loss, accuracy, step = _adam_mlp()
    given = Text("my_pipeline([loss, train_step]), the chapter's Adam step of a 784-128-10 MLP")
    optimized = _apply(my_pipeline, [loss, step], given)
    kernels = _kernels(optimized)
    if not kernels:
        raise CheckFailure("your pipeline fused nothing: end it with "
                           "mg.passes.fuse_elementwise(fetches, find_groups=find_fusable_groups)", input=given)
    _expect_your_kernels(find_fusable_groups, optimized, kernels, given)
    _expect_same_training([loss, step], optimized, x, y, given)
    (plain, plain_weights), (mine, my_weights) = _train_both(my_pipeline)
    given = Text(f"the MLP trained {MNIST_EPOCHS} epochs with Adam (batches of {MNIST_BATCH}), as built and through "
                 "Session(optimize=my_pipeline)")
    for key in plain:
        _expect_same_bits(np.array(mine[key]), np.array(plain[key]), f"history[{key!r}]", given,
                          ": a pass of your pipeline changed the arithmetic (an order of operations, a dtype)")
    for (name, value), (_, mine_value) in zip(plain_weights, my_weights):
        _expect_same_bits(mine_value, value, f"variable {name!r} after training", given)
    sizes = len(topological_sort([loss, step])), len(topological_sort(optimized))
    summary = (f"{len(cases)} graphs grouped as expected; your pipeline turns the Adam step's {sizes[0]} nodes into "
               f"{sizes[1]}, {len(kernels)} of them fused kernels, and trains MNIST {MNIST_EPOCHS} epochs with the "
               "curves of the graph as built, number for number")
    return Passed(summary, value={"as built": plain, "optimized": mine})
