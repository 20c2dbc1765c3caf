r"""Checks of chapter 06, memory.

- 6.1 ``bases(order)`` and ``liveness(order, fetches)``: the array each node's value lives in (itself, the
  base of a view's first input, or ``None``), and ``{value: (born, dies)}``, reads of views counting as reads
  of their base, fetched values living to ``len(order)``.
- 6.2 ``assign_buffers(order, lifetime, in_place=None)``: the greedy buffer assignment — an input offered by
  ``in_place``, else a released buffer of the same fixed shape and dtype, else a new one; checked for
  validity step by step, for the number of buffers, and by running the plan.
- 6.3 ``can_overwrite(node, x, step, lifetime, base)``: the in-place rule, on cases that each break one of its
  conditions and on every (node, input) pair of the three graphs of 6.2.
- 6.4 ``sqrt_checkpoints(y)``: about √n checkpoints along the longest chain of ops that ends at ``y``, checked
  by where they lie and how evenly they cut the chain, then by the planned peak they give.
- 6.5 ``recompute(segment, trigger)``: the recomputed twins of one segment, which must read each other, wait
  for ``trigger`` and equal the originals bit for bit.
- 6.6 ``plan(order, fetches)``: the learner's planner, returning a ``MemoryPlan``, run by the Session: the same
  bits as keeping everything, the peak of the chapter's planner, and MNIST trained with it (the history
  comes back as ``check(...).value``).

Each check compares with its own expectations: the reasons a base is what it is, a value lives as long as it
does, or an input may (not) be overwritten, and the number of buffers the greedy rule needs, are worked out
here. The package builds and runs the graphs, gives 6.2 and 6.3 their lifetimes, and its planner is the
yardstick of 6.6's peak; tests/test_ch06_checks.py checks that the reasons agree with the package.
"""

import math
import numbers
from collections import defaultdict

import numpy as np

from .. import autodiff, memory, ops, optim
from ..graph import Node, Placeholder, Variable, constant, format_shape, placeholder, topological_sort
from ..ops.shape import broadcast_keeps_shape
from ..session import Executor, Session
from .framework import CheckFailure, Passed, Text, exercise, expect_equal
from .training import history_by_epoch, mnist_splits

# ---------------------------------------------------------------------------------------------- graphs


def _kind(node):
    """What a node is, for messages: 'placeholder', 'Variable', 'constant' or its op's name (a source's op is
    named after its kind)."""
    return "Variable" if isinstance(node, Variable) else node.op.name


def _a(value):
    """``an int``, ``a str``: what a learner's value is, for messages."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _named(node):
    return f"'{node.name}'" if isinstance(node, Node) else repr(node)


def _listing(order, fetches=(), steps=None):
    """The order as lines ``step  name = op(inputs)  shape``, fetches marked; when it is long and ``steps``
    are given, only the lines around them."""
    fetched = set(fetches)
    lines = []
    for step, node in enumerate(order):
        shape = format_shape(node.shape)
        if node.inputs:
            line = f"{step:>3}  {node.name} = {node.op.name}({', '.join(x.name for x in node.inputs)})  {shape}"
        else:
            line = f"{step:>3}  {node.name}: {_kind(node)} {shape}"
        lines.append(line + ("  <- fetched" if node in fetched else ""))
    if steps and len(lines) > 16:
        keep = {s + d for s in steps for d in (-2, -1, 0, 1, 2)}
        shown = []
        for step, line in enumerate(lines):
            if step in keep:
                if step - 1 not in keep and step > 0:
                    shown.append("  ...")
                shown.append(line)
        if len(lines) - 1 not in keep:
            shown.append("  ...")
        lines = shown
    return Text("\n".join(lines))


class _Graph:
    """A graph under check: its description, order and fetches; :meth:`at` is the ``input=`` of a report,
    the order shown around the steps the failure is about."""

    def __init__(self, description, order, fetches, **more):
        self.description, self.order, self.fetches, self.more = description, list(order), list(fetches), more
        self.step = {node: index for index, node in enumerate(self.order)}

    def at(self, *steps):
        order = _listing(self.order, self.fetches, set(steps))
        return {"graph": Text(self.description), **self.more, "order": order}


def _layer(h, units, name, rng, activation=ops.tanh):
    """``activation(h @ W + b)`` with readable names: ``{name}@W``, ``{name}+b``, ``{name}``."""
    weights = rng.standard_normal((h.shape[-1], units)) / np.sqrt(h.shape[-1])
    W = Variable(weights.astype(np.float32), name=f"W_{name}")
    b = Variable(np.zeros(units, np.float32), name=f"b_{name}")
    product = ops.matmul(h, W, name=f"{name}@W")
    total = ops.add(product, b, name=f"{name}+b")
    return total if activation is None else activation(total, name=name)


def _mlp(widths, batch=None, activation=ops.tanh, seed=0):
    """An MLP with named nodes: ``(x, labels, hidden outputs, logits, loss, feed)``, the feed a batch of
    ``batch or 5`` random examples."""
    rng = np.random.default_rng(seed)
    x = placeholder("x", shape=(batch, widths[0]))
    labels = placeholder("labels", shape=(batch,), dtype="int64")
    h, hidden = x, []
    for index, units in enumerate(widths[1:-1], start=1):
        h = _layer(h, units, f"h{index}", rng, activation)
        hidden.append(h)
    logits = _layer(h, widths[-1], "logits", rng, activation=None)
    loss = ops.reduce_mean(ops.softmax_cross_entropy(logits, labels, name="cross_entropy"), name="loss")
    rows = batch or 5
    feed = {x: rng.standard_normal((rows, widths[0])).astype(np.float32), labels: rng.integers(0, widths[-1], rows)}
    return x, labels, hidden, logits, loss, feed


def _values(fetches, feed, memory_choice):
    return Session(memory=memory_choice).run(list(fetches), feed)


# ---------------------------------------------------------------------------------------------- 6.1


def _owner(source):
    """Whose array the value of a node without inputs is."""
    if isinstance(source, Placeholder):
        return "the caller's (fed)"
    if isinstance(source, Variable):
        return "the Session's"
    return "the graph's"


def _expected_bases(order):
    """``{node: (base, why)}``, worked out here: the reason each node's base is what it is."""
    expected = {}
    for node in order:
        if not node.inputs:
            expected[node] = None, f"{_named(node)} is a {_kind(node)}: its array is {_owner(node)}, not the planner's"
        elif node.dtype is None:
            expected[node] = None, f"{_named(node)} ({node.op.name}) has no value at all (its dtype is None)"
        elif node.op.returns_view:
            first = node.inputs[0]
            base = expected[first][0]
            whose = "None: it shares an array that is not the planner's" if base is None else _named(base)
            expected[node] = base, (f"{_named(node)} ({node.op.name}) is a view: it shares the array of its first "
                                    f"input {_named(first)}, so its base is that input's base, {whose}")
        else:
            expected[node] = node, f"{_named(node)} ({node.op.name}) computes a new array: it is its own base"
    return expected


def _expected_lifetimes(order, fetches):
    """``{value: ((born, dies), why dies)}``, worked out here for the values the planner owns."""
    base = {node: entry[0] for node, entry in _expected_bases(order).items()}
    last_read = {}  # value -> (step, reader, the input read: the value or a view of it), the last read wins
    for index, node in enumerate(order):
        for x in node.inputs:
            if base[x] is not None:
                last_read[base[x]] = index, node, x
    expected = {}
    for step, value in enumerate(order):
        if base[value] is not value:
            continue
        through = [f for f in fetches if base.get(f) is value]
        if through:
            view = "" if through[0] is value else f" through the view {_named(through[0])}"
            expected[value] = (step, len(order)), (f"it is fetched{view}, so it lives to the end of the run: "
                                                   f"len(order) = {len(order)}")
        elif value in last_read:
            index, reader, x = last_read[value]
            view = "" if x is value else f" through the view {_named(x)}"
            expected[value] = (step, index), f"its last reader is {_named(reader)}, at step {index}{view}"
        else:
            expected[value] = (step, step), "nothing reads it: it dies at its own step"
    return expected


def _base_text(node):
    return Text("None" if node is None else _named(node))


def _expect_bases(got, graph):
    expected = _expected_bases(graph.order)
    if not isinstance(got, dict):
        raise CheckFailure(f"bases should return a dict {{node: base}}, not a {type(got).__name__}", input=graph.at(),
                           got=got)
    for node in graph.order:
        if node not in got:
            raise CheckFailure(f"bases(order) has no entry for {_named(node)}: every node of the order gets one (None "
                               f"when it has no base). {expected[node][1]}", input=graph.at(graph.step[node]))
    for key in got:
        if key not in expected:
            raise CheckFailure(f"bases(order) has an entry for {_named(key)}, which is not in the order",
                               input=graph.at())
    for node in graph.order:
        want, why = expected[node]
        if got[node] is not want:
            raise CheckFailure(f"the base of {_named(node)} is wrong: {why}", input=graph.at(graph.step[node]),
                               expected=_base_text(want), got=_base_text(got[node]))


def _expect_lifetimes(got, graph):
    expected = _expected_lifetimes(graph.order, graph.fetches)
    if not isinstance(got, dict):
        raise CheckFailure(f"liveness should return a dict {{value: (born, dies)}}, not a {type(got).__name__}",
                           input=graph.at(), got=got)
    for key in got:
        if key in expected:
            continue
        if key not in graph.step:
            raise CheckFailure(f"the lifetimes list {_named(key)}, which is not in the order", input=graph.at())
        base, why = _expected_bases(graph.order)[key]
        where = graph.at(graph.step[key])
        if base is None:
            raise CheckFailure(f"the lifetimes list {_named(key)}, which is not a value the planner owns: {why}",
                               input=where)
        raise CheckFailure(f"the lifetimes list the view {_named(key)}: a view has no array, and so no lifetime, of "
                           f"its own — reading it reads its base {_named(base)}, whose lifetime it extends",
                           input=where)
    for value, ((born, dies), why) in expected.items():
        if value not in got:
            raise CheckFailure(f"the lifetimes miss {_named(value)} ({value.op.name}, computed at step {born}): every "
                               "node that is its own base has a lifetime", input=graph.at(born, dies))
        pair = got[value]
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in pair)):
            raise CheckFailure(f"the lifetime of {_named(value)} should be a pair (born, dies) of steps (ints)",
                               input=graph.at(born, dies), expected=(born, dies), got=pair)
        if int(pair[0]) != born:
            raise CheckFailure(f"{_named(value)} is born at step {born}, its position in the order you are given",
                               input=graph.at(born, dies), expected=(born, dies), got=tuple(pair))
        if int(pair[1]) != dies:
            raise CheckFailure(f"the lifetime of {_named(value)} should end at {dies}: {why}",
                               input=graph.at(born, dies), expected=(born, dies), got=tuple(pair))


def _liveness_graphs():
    """``(description, fetches, sort)``: small graphs with every case, then a training step in two orders."""
    p = placeholder("p", shape=(None, 3))
    W = Variable(np.eye(3, dtype=np.float32), name="W")
    t = ops.tanh(p, name="t")
    e = ops.exp(t, name="e")
    yield "a value read by two nodes", [ops.mul(e, t, name="y")], topological_sort
    s = ops.mul(t, t, name="s")
    z = ops.add(s, constant(np.float32(1), name="one"), name="z")
    yield "a node reading one value twice, a constant, a fetched intermediate value", [z, t], topological_sort
    u = ops.exp(ops.reshape(t, (-1,), name="r"), name="u")
    m = ops.matmul(p, ops.transpose(W, name="v"), name="m")
    q = ops.transpose(ops.tanh(m, name="k"), name="q")
    yield "views: of a value read later, of a Variable, and a fetched one", [u, q], topological_sort
    x, labels, hidden, logits, loss, feed = _mlp([4, 6, 3])
    step = optim.SGD(0.1).minimize(loss)
    yield ("a training step: the loss, then SGD (assign_sub is a view of its Variable, group has no value)",
           [loss, step], topological_sort)
    yield "the same training step in another order (memory_order)", [loss, step], memory.memory_order


@exercise(
    "6.1",
    "liveness",
    expects=("bases(order)", "liveness(order, fetches)"),
    nudge="A view takes the base of its first input; a value is born at its own step and dies at the last step "
    "that reads it or a view of it — or at len(order) when it, or a view of it, is fetched.",
    hint="bases: one pass over the order. A node without inputs or without a value (dtype None) gets None, a node "
    "whose op returns_view gets base[its first input], any other node itself. liveness: start every value's "
    "lifetime at (step, step) when you reach it; for every input x of the node at each step, if base[x] is "
    "not None, move the death of base[x] to this step; finally, every fetch whose base is not None makes its "
    "base live to len(order).",
    unavailable=[memory.bases, memory.liveness, memory.plan_memory, memory.keep_everything, Executor.__init__],
)
def _(bases, liveness):
    count = 0
    for description, fetches, sort in _liveness_graphs():
        graph = _Graph(description, sort(fetches), fetches)
        _expect_bases(bases(list(graph.order)), graph)
        _expect_lifetimes(liveness(list(graph.order), list(fetches)), graph)
        count += 1
    return f"{count} graphs: shared and fetched values, views of values and of Variables, a training step in two orders"


# ---------------------------------------------------------------------------------------------- 6.3 (used by 6.2)


def _in_place_refusal(node, x, step, order, lifetime, base):
    """Why ``node`` may not overwrite its input ``x`` at ``step`` (the rule of 6.3, with its reasons), or None."""
    if not node.op.in_place:
        why = ": BLAS needs an output array apart from its inputs" if node.op.name == "matmul" else ""
        return f"{node.op.name} cannot write its result over an input (its op's in_place is False{why})"
    if base.get(x) is None:
        source = x
        while source.inputs:
            source = source.inputs[0]
        what = f"a {_kind(x)}" if source is x else f"a view of the {_kind(source)} {_named(source)}"
        return f"{_named(x)} is {what}: its array is not the planner's to overwrite"
    if base[x] is not x:
        return f"{_named(x)} is a view of {_named(base[x])}: writing into it would write into {_named(base[x])}"
    dies = lifetime[x][1]
    if dies >= len(order):
        return f"{_named(x)} is fetched: the caller receives its array after the run"
    if dies > step:
        return f"{_named(x)} is read again later: {_named(order[dies])} reads it at step {dies}"
    if x.dtype != node.dtype:
        return f"{_named(node)} is {node.dtype} and {_named(x)} {x.dtype}: the result does not fit the array"
    if x.shape is None or len(x.shape) == 0:
        what = "unknown" if x.shape is None else "() — a scalar, which numpy may return as a number, not an array"
        return f"the shape of {_named(x)} is {what}: only arrays of a known rank of 1 or more are overwritten"
    if not broadcast_keeps_shape(x, node):
        if x.shape != node.shape:
            return (f"{_named(node)} has shape {node.shape} and {_named(x)} {x.shape}: the result does not fit "
                    "the array")
        return (f"{_named(x)} and {_named(node)} both have the static shape {x.shape}, yet they are equal only if "
                "the unknown dimensions of the inputs are, which nothing guarantees: fed batches of different sizes, "
                "numpy would broadcast and the result would not fit (broadcast_keeps_shape is False)")
    views = [other for other in node.inputs if other is not x and base.get(other) is x]
    if views:
        return (f"{_named(node)} also reads {_named(x)} through the view {_named(views[0])}: writing over "
                f"{_named(x)} would change what that view shows while the op is still reading it")
    return None


def _in_place_offer(order, lifetime, base):
    """The rule of 6.3 as the ``in_place`` argument of 6.2: ``(node, step) -> the first input that node may
    overwrite, or None``."""
    step_of = {node: index for index, node in enumerate(order)}

    def in_place(node, step):
        if node not in lifetime:
            raise CheckFailure(f"in_place was called for {_named(node)}, which has no lifetime: call it only for the "
                               "values you assign buffers to")
        if step != step_of[node]:
            raise CheckFailure(f"in_place was called for {_named(node)} with step {step!r}, but {_named(node)} is "
                               f"computed at step {step_of[node]}: pass the node's own step")
        return next((x for x in node.inputs if _in_place_refusal(node, x, step, order, lifetime, base) is None), None)

    return in_place


# ---------------------------------------------------------------------------------------------- 6.2


def _greedy_count(order, lifetime, in_place):
    """How many buffers the greedy rule needs: counted here, with numbers of free buffers per (shape, dtype)."""
    dying = defaultdict(list)
    for value, (born, dies) in lifetime.items():
        dying[dies].append(value)
    free, holders, count = defaultdict(int), set(), 0
    for step, node in enumerate(order):
        if node in lifetime:
            x = in_place(node, step) if in_place else None
            if x is not None:
                holders.discard(x)
            elif node.op.writes_into and memory.has_fixed_shape(node) and free[node.shape, node.dtype]:
                free[node.shape, node.dtype] -= 1
            else:
                count += 1
            holders.add(node)
        for value in dying[step]:
            if value in holders:
                holders.discard(value)
                free[value.shape, value.dtype] += 1
    return count


def _described(node):
    return f"{_named(node)} {node.shape} {node.dtype}"


def _occupants(got, graph, lifetime):
    """``{buffer: [values in the order they are computed]}``."""
    occupants = defaultdict(list)
    for value in sorted(lifetime, key=graph.step.get):
        occupants[int(got[value])].append(value)
    return occupants


def _expect_valid_buffers(got, graph, lifetime, in_place):
    """Fail at the first value whose buffer breaks a rule; return the number of buffers used."""
    if not isinstance(got, dict):
        raise CheckFailure(f"assign_buffers should return a dict {{value: buffer number}}, not a {type(got).__name__}",
                           input=graph.at(), got=got)
    values = sorted(lifetime, key=graph.step.get)  # in the order they are computed
    for value in values:
        if value not in got:
            raise CheckFailure(f"the assignment has no buffer for {_named(value)} (step {graph.step[value]}): every "
                               "value in lifetime gets one", input=graph.at(graph.step[value]))
        if not isinstance(got[value], numbers.Integral) or isinstance(got[value], bool):
            raise CheckFailure(f"the buffer of {_named(value)} should be a number (an int naming the buffer), not a "
                               f"{type(got[value]).__name__}", input=graph.at(graph.step[value]), got=got[value])
    for key in got:
        if key not in lifetime:
            raise CheckFailure(f"the assignment gives a buffer to {_named(key)}, which has no lifetime (it is not a "
                               "value the planner owns): leave it out", input=graph.at())
    for value in values:
        step = graph.step[value]
        offered = in_place(value, step) if in_place else None
        if offered is not None and int(got[value]) != int(got[offered]):
            raise CheckFailure(f"in_place offers {_named(value)} (step {step}) its input {_named(offered)}, which dies "
                               f"at this step, but it got buffer {got[value]}, not buffer {got[offered]} of "
                               f"{_named(offered)}: take the input's buffer when in_place offers it",
                               input=graph.at(step))
    occupants = _occupants(got, graph, lifetime)
    for number, held in occupants.items():
        for before, old, new in zip([None] + held, held, held[1:]):
            _expect_turn(before, old, new, number, graph, lifetime, in_place)
    return len(occupants)


def _expect_turn(before, old, new, number, graph, lifetime, in_place):
    """``new`` takes buffer ``number`` after ``old`` (which took it after ``before``, or None when ``old`` was its
    first value): allowed in place, or over a dead value of its shape and dtype."""
    born, dies = graph.step[new], lifetime[old][1]
    shown = graph.step[old], born  # the steps a report shows
    if born <= dies:
        if born == dies and old in new.inputs and in_place and in_place(new, born) is old:
            return
        note = ""
        if born == dies and old in new.inputs:
            note = (" — it reads that value at this very step: a buffer is free only after the step at which its "
                    "value dies; taking an input's buffer at the step where the input dies is computing in place, "
                    "done only for the input that in_place offers")
            note += " (this time the check called your function with in_place=None)" if not in_place else ""
        else:
            note = ": a buffer is free only after the step at which its value dies"
            if before is not None and lifetime[before][1] == graph.step[old] and before in old.inputs:
                note += (f". {_named(old)} took buffer {number} over {_named(before)} in place at step "
                         f"{graph.step[old]}: when {_named(before)} died there, its buffer did not become free")
        raise CheckFailure(f"{_named(new)} (step {born}) is put in buffer {number} while {_named(old)} lives there "
                           f"until step {dies}{note}", input=graph.at(*shown))
    if not new.op.writes_into:
        raise CheckFailure(f"{_named(new)} ({new.op.name}, step {born}) takes buffer {number} of the dead value "
                           f"{_named(old)}, but its op cannot write into a given array (op.writes_into is False): it "
                           "needs a new buffer", input=graph.at(*shown))
    if not memory.has_fixed_shape(new):
        raise CheckFailure(f"{_named(new)} (step {born}) takes buffer {number} of the dead value {_named(old)}, but "
                           f"its shape {new.shape} is not fixed (an unknown dimension, or a scalar): only values for "
                           "which has_fixed_shape is true reuse a dead buffer", input=graph.at(*shown))
    if (old.shape, old.dtype) != (new.shape, new.dtype):
        raise CheckFailure(f"buffer {number} holds {_described(old)}, then {_described(new)}: a dead buffer can be "
                           "reused only by a value of the same shape and dtype", input=graph.at(*shown))


def _first_missed_reuse(got, graph, lifetime):
    """Why the assignment needs more buffers than the greedy rule: the first value that took a new buffer while
    one of its shape and dtype was free, as a phrase and the steps to show (or '' and none)."""
    occupants = _occupants(got, graph, lifetime)
    for number, values in sorted(occupants.items(), key=lambda item: graph.step[item[1][0]]):
        value, step = values[0], graph.step[values[0]]
        if not (value.op.writes_into and memory.has_fixed_shape(value)):
            continue
        for other, others in occupants.items():
            before = [v for v in others if graph.step[v] < step]
            if (other != number and before and (before[-1].shape, before[-1].dtype) == (value.shape, value.dtype)
                    and lifetime[before[-1]][1] < step):
                died = lifetime[before[-1]][1]
                return (f": {_named(value)} (step {step}) got a new buffer while buffer {other}, of its shape and "
                        f"dtype, was free (its last value, {_named(before[-1])}, died at step {died})"), (died, step)
    return "", ()


def _buffer_graphs():
    """``(description, fetches, feed)``: training steps with fixed and unknown batch sizes, dtypes that change."""
    x, labels, hidden, logits, loss, feed = _mlp([20, 32, 32, 10], batch=16, activation=ops.relu)
    yield "an MLP 20-32-32-10 (ReLU, batches of 16), loss and SGD step", [loss, optim.SGD(0.1).minimize(loss)], feed
    p = placeholder("p", shape=(8, 6))
    a = ops.tanh(p, name="a")
    wide = ops.cast(a, "float64", name="wide")
    b = ops.exp(ops.mul(wide, wide, name="squares"), name="b")
    c = ops.transpose(ops.add(a, a, name="twice"), name="c")
    d = ops.matmul(c, ops.sigmoid(a, name="s"), name="d")
    rows = ops.cast(ops.reduce_sum(b, axis=1, name="rows64"), "float32", name="rows")
    e = ops.mul(rows, ops.reduce_sum(ops.tanh(a, name="t"), axis=1, name="t_rows"), name="e")
    f = ops.add(ops.exp(a, name="ea"), constant(np.full(6, 0.5), name="half"), name="f")  # float64, like half
    fetches = [ops.add(ops.reduce_sum(d, name="sum_d"), ops.reduce_sum(e, name="sum_e"), name="total"),
               ops.reduce_sum(f, name="sum_f")]
    feed = {p: np.random.default_rng(1).standard_normal((8, 6)).astype(np.float32)}
    yield "float32 and float64 values, a transpose, products and reductions (fixed shapes)", fetches, feed
    x, labels, hidden, logits, loss, feed = _mlp([784, 64, 10], activation=ops.relu, seed=2)
    step = optim.Momentum(0.05, momentum=0.9).minimize(loss)
    yield "an MLP 784-64-10 (unknown batch size), loss and momentum step", [loss, step], feed


@exercise(
    "6.2",
    "greedy buffer assignment",
    expects="assign_buffers(order, lifetime, in_place=None)",
    nudge="Walk the steps: the offered input's buffer, else a released one of the same (shape, dtype) when the op "
    "writes into arrays, else a new one; release buffers after their value's last step.",
    hint="Keep buffer (value -> number), holder (number -> the value in it now) and free, a dict from (shape, "
    "dtype) to a list of released numbers. At each step whose node has a lifetime, ask in_place (when it is "
    "given) for an input: if it names one, the node takes that input's number; otherwise, if node.op.writes_into "
    "and has_fixed_shape(node) and free holds a number under the node's (shape, dtype), pop it; otherwise take the "
    "next unused number. Record the node as the holder of its number. Then, for each value that dies at this step "
    "and still holds its buffer (a node computed in place at this step may have taken it over), append its number "
    "to free under the value's (shape, dtype).",
    unavailable=[memory.plan_memory, memory.keep_everything, Executor.__init__],
)
def _(assign_buffers):
    counts = []
    for description, fetches, feed in _buffer_graphs():
        for offering in (False, True):
            used = []

            def planner(order, plan_fetches):
                lifetime, base = memory.liveness(order, plan_fetches), memory.bases(order)
                in_place = _in_place_offer(order, lifetime, base) if offering else None
                shown = "the rule of exercise 6.3, given by the check" if offering else "None"
                graph = _Graph(description, order, plan_fetches, in_place=Text(shown))
                got = assign_buffers(list(order), dict(lifetime), in_place)
                buffers = _expect_valid_buffers(got, graph, lifetime, in_place)
                needed = _greedy_count(order, lifetime, in_place)
                if buffers > needed:
                    why, steps = _first_missed_reuse(got, graph, lifetime)
                    raise CheckFailure(f"your assignment uses {buffers} buffers where the greedy rule needs {needed}"
                                       f"{why}", input=graph.at(*steps))
                used.append((len(lifetime), buffers))
                return memory.MemoryPlan(order, plan_fetches, lifetime, {value: int(n) for value, n in got.items()})

            sessions = Session(memory=planner), Session(memory="naive")
            for run in (1, 2):
                values, wanted = (sess.run(fetches, feed) for sess in sessions)
                for fetch, value, want in zip(fetches, values, wanted):
                    expect_equal(value, want, input=Text(description),
                                 what=f"run {run} following your plan: the value of {_named(fetch)}")
            counts.append(used[0])
    shown = ", ".join(f"{values} values in {buffers}" for values, buffers in counts[1::2])
    return f"valid, greedy and computing the same bits with and without in place; with it, {shown} buffers"


# ---------------------------------------------------------------------------------------------- 6.3


def _in_place_cases():
    """``(what the case shows, fetches, node, x)``: each (node, x) breaks one condition of the rule, or none."""
    p, q = placeholder("p", shape=(None, 3)), placeholder("q", shape=(None, 3))
    W = Variable(np.ones((3, 3), np.float32), name="W")
    square = placeholder("square", shape=(3, 3))
    x0 = ops.tanh(p, name="x")
    y0 = ops.exp(x0, name="y")
    yield "y = exp(x), x read by y only", [y0], y0, x0
    x1 = ops.tanh(p, name="x")
    y1 = ops.add(x1, constant(np.ones(3, np.float32), name="c"), name="y")
    yield "y = x + c, c of shape (3,): broadcasting cannot enlarge x", [y1], y1, x1
    x2 = ops.tanh(p, name="x")
    y2 = ops.exp(x2, name="y")
    yield "y = exp(x), then x + y: x is read again later", [ops.add(y2, x2, name="z")], y2, x2
    x3 = ops.tanh(p, name="x")
    y3 = ops.exp(x3, name="y")
    yield "y = exp(x), with x fetched too", [y3, x3], y3, x3
    x4 = ops.transpose(W, name="x")
    y4 = ops.exp(x4, name="y")
    yield "y = exp(x), x = transpose(W), a view of a Variable", [y4], y4, x4
    x5 = ops.reshape(ops.tanh(p, name="t"), (-1,), name="x")
    y5 = ops.exp(x5, name="y")
    yield "y = exp(x), x = reshape(t), a view of a value", [y5], y5, x5
    x6 = ops.tanh(p, name="x")
    y6 = ops.add(x6, constant(np.ones(3), name="c64"), name="y")
    yield "y = x + c with c float64: y is float64", [y6], y6, x6
    x7 = ops.tanh(p, name="x")
    y7 = ops.mul(x7, ops.tanh(q, name="u"), name="y")
    yield "y = x * u, both of shape (None, 3) but from different placeholders", [y7], y7, x7
    x8 = ops.tanh(ops.reshape(p, (-1, 1), name="column"), name="x")
    y8 = ops.add(x8, ops.tanh(q, name="u"), name="y")
    yield "y = x + u, x of shape (None, 1), u of shape (None, 3)", [y8], y8, x8
    x9 = ops.tanh(square, name="x")
    y9 = ops.matmul(x9, ops.tanh(square, name="u"), name="y")
    yield "y = x @ u, all of shape (3, 3)", [y9], y9, x9
    x10 = ops.tanh(square, name="x")
    y10 = ops.mul(x10, ops.transpose(x10, name="xT"), name="y")
    yield "y = x * transpose(x), all of shape (3, 3)", [y10], y10, x10
    y11 = ops.exp(p, name="y")
    yield "y = exp(p), p a placeholder", [y11], y11, p
    x12 = ops.reduce_sum(ops.tanh(p, name="t"), name="x")
    y12 = ops.exp(x12, name="y")
    yield "y = exp(x), x = reduce_sum(t) of shape ()", [y12], y12, x12


def _expect_rule(can_overwrite, node, x, graph, lifetime, base):
    """Ask the learner's rule about ``(node, x)``; fail unless it answers as the reasons worked out here do."""
    step = graph.step[node]
    got = can_overwrite(node, x, step, dict(lifetime), dict(base))
    if not isinstance(got, (bool, np.bool_)):
        what = "None" if got is None else f"a {type(got).__name__}"
        raise CheckFailure(f"can_overwrite should return True or False, not {what}", input=graph.at(step), got=got)
    refusal = _in_place_refusal(node, x, step, graph.order, lifetime, base)
    if got and refusal:
        raise CheckFailure(f"can_overwrite({node.name}, {x.name}, {step}, ...) said yes, but {refusal}",
                           input=graph.at(step), expected=False, got=True)
    if not got and not refusal:
        raise CheckFailure(f"can_overwrite({node.name}, {x.name}, {step}, ...) said no, but {_named(node)} may "
                           f"overwrite {_named(x)}: {_named(node)}'s op computes in place, {_named(x)} is the "
                           "planner's own array, dies at this step, no view of it is read with it, and the result "
                           "has its dtype and, provably, its shape", input=graph.at(step), expected=True, got=False)


@exercise(
    "6.3",
    "the in-place rule",
    expects="can_overwrite(node, x, step, lifetime, base)",
    nudge="Say yes only when nothing can go wrong: the op computes in place, x is the planner's own array, dies at "
    "this step, provably fits the result, and is not read through a view by the same op.",
    hint="Return one boolean expression, all of: node.op.in_place; base[x] is x (not a view, not a source); "
    "lifetime[x][1] == step (no later reader, not fetched); x.dtype == node.dtype; x.shape is not None and "
    "len(x.shape) > 0; broadcast_keeps_shape(x, node) (the same static shape, which no unknown dimension of "
    "another input can enlarge); and no other input of node is a view of x (base[other] is not x).",
    unavailable=[memory.can_overwrite, memory.plan_memory, Executor.__init__],
)
def _(can_overwrite):
    cases = 0
    for description, fetches, node, x in _in_place_cases():
        order = topological_sort(fetches)
        lifetime, base = memory.liveness(order, fetches), memory.bases(order)
        _expect_rule(can_overwrite, node, x, _Graph(description, order, fetches, node=node.name, x=x.name), lifetime,
                     base)
        cases += 1
    pairs = 0
    for description, fetches, feed in _buffer_graphs():
        order = Executor(fetches).order
        lifetime, base = memory.liveness(order, fetches), memory.bases(order)
        for node in order:
            if node not in lifetime:
                continue  # no value of its own (a source, a view, a group): nothing to write
            for x in dict.fromkeys(node.inputs):  # each input once
                _expect_rule(can_overwrite, node, x, _Graph(description, order, fetches, node=node.name, x=x.name),
                             lifetime, base)
                pairs += 1
    return f"{cases} cases, one per condition of the rule, and {pairs} (node, input) pairs of 3 graphs"


# ---------------------------------------------------------------------------------------------- 6.4


def _chain_lengths(y):
    """``(depth, height)``: the longest chain of ops ending at each op, and from it to ``y`` (both counting it)."""
    nodes = topological_sort([y])
    depth, height = {}, {y: 1} if y.inputs else {}
    for node in nodes:
        if node.inputs:
            depth[node] = 1 + max((depth[x] for x in node.inputs if x.inputs), default=0)
    for node in reversed(nodes):
        if node in height:
            for x in node.inputs:
                if x.inputs:
                    height[x] = max(height.get(x, 0), height[node] + 1)
    return depth, height


def _expect_checkpoints(got, y, given):
    """Fail unless ``got`` cuts the longest chain of ops ending at ``y`` into segments of about √n ops."""
    depth, height = _chain_lengths(y)
    n = depth.get(y, 0)
    every = max(1, math.ceil(math.sqrt(n)))
    if got is None:
        raise CheckFailure("sqrt_checkpoints returned None: does it end with a return statement?", input=given)
    if not isinstance(got, (list, tuple)):
        raise CheckFailure(f"sqrt_checkpoints should return a list of nodes, not a {type(got).__name__}", input=given,
                           got=got)
    got = list(got)
    strangers = [item for item in got if not isinstance(item, Node)]
    if strangers:
        raise CheckFailure(f"sqrt_checkpoints should return a list of nodes; it holds {_a(strangers[0])}",
                           input=given, got=got)
    names = [node.name for node in got]
    for index, node in enumerate(got):
        if node in got[:index]:
            raise CheckFailure(f"the checkpoints list {_named(node)} twice", input=given, got=names)
        if node is y:
            raise CheckFailure("y itself is not a checkpoint: checkpoints cut the chain below y, whose value the "
                               "backward pass starts from anyway", input=given, got=names)
        if node not in depth:
            why = ("y does not depend on it" if node not in set(topological_sort([y]))
                   else f"it is a {_kind(node)}: sources are always kept, checkpoints are ops")
            raise CheckFailure(f"{_named(node)} cannot be a checkpoint: {why}", input=given, got=names)
        if depth[node] + height[node] - 1 != n:
            raise CheckFailure(f"{_named(node)} is not on the longest chain of ops ending at y ({n} ops): the longest "
                               f"chain through it has {depth[node] + height[node] - 1}. From y, follow the input with "
                               "the longest chain of ops below it (not the first input)", input=given, got=names)
    positions = sorted(depth[node] for node in got)
    gaps = [b - a for a, b in zip([0] + positions, positions + [n])]
    if max(gaps) > 2 * every or len(got) > 2 * every:
        due = f"about √{n} ≈ {math.sqrt(n):.1f} checkpoints, one every ⌈√n⌉ = {every} ops"
        first_inputs = (" (Is your chain the longest one? A chain that follows each node's first input can be much "
                        "shorter.)" if len(got) < (n - 1) // every / 2 else "")
        if not got:
            raise CheckFailure(f"no checkpoints, but the longest chain of ops ending at y has {n} ops: {due} are due."
                               f"{first_inputs}", input=given, got=[])
        sizes = f"{min(gaps)}" if min(gaps) == max(gaps) else f"{min(gaps)} to {max(gaps)}"
        segments = (f"segments of {gaps} ops" if len(gaps) <= 12
                    else f"{len(gaps)} segments of {sizes} op{'s' if max(gaps) > 1 else ''}")
        cut = f"your {len(got)} checkpoint{'s cut' if len(got) > 1 else ' cuts'}"
        raise CheckFailure(f"{cut} the chain of {n} ops into {segments}: a segment is recomputed at "
                           f"once and each checkpoint is kept throughout, so aim for {due}.{first_inputs}",
                           input=given, got=names)
    return n, len(got)


def _two_branches():
    """``y = short + long``: the first input of y starts a chain of 1 op, the second a chain of 30."""
    p = placeholder("p", shape=(None, 4))
    long = p
    for index in range(1, 31):
        long = ops.tanh(long, name=f"long_{index}")
    y = ops.reduce_sum(ops.add(ops.tanh(p, name="short"), long, name="sum"), name="y")
    return y


def _deep_chain(length):
    node = placeholder("p", shape=(2,))
    for index in range(1, length + 1):
        node = ops.neg(node, name=f"neg_{index}")
    return node


def _checkpointed_peak(loss, checkpoints, feed):
    """The planned peak of a training step (loss and SGD), gradients checkpointed as given, in memory order."""
    step = optim.SGD(0.01, gradients=lambda y, xs: autodiff.gradients(y, xs, checkpoints=checkpoints)).minimize(loss)
    return Executor([loss, step], sort=memory.memory_order).plan.usage(feed).peak


@exercise(
    "6.4",
    "√n checkpoints",
    expects="sqrt_checkpoints(y)",
    nudge="Find the longest chain of ops that ends at y (the longest path, not the first inputs), then take every "
    "⌈√n⌉-th op along it, leaving y out.",
    hint="In topological order, give each op node length[node] = 1 + the largest length among its inputs that "
    "are ops (0 if none), and remember that input as previous[node]. Walk previous from y back to the start and "
    "reverse: that is the chain of n ops. With k = ⌈√n⌉ (math.ceil(math.sqrt(n))), return chain[k - 1 : -1 : k] "
    "— every k-th op, y (the last) excluded. Use mg.topological_sort, which does not recurse.",
    unavailable=[memory.sqrt_checkpoints],
)
def _(sqrt_checkpoints):
    p = placeholder("p", shape=(None, 4))
    cases = [("a 16-layer tanh MLP and its loss", _mlp([8] + [8] * 16 + [4])[4]),
             ("y = sum(short + long): short is 1 op, long 30", _two_branches()),
             ("y = tanh(p), a chain of 1 op", ops.tanh(p, name="y")),
             ("a chain of 1,200 negations", _deep_chain(1200))]
    for description, y in cases:
        given = {"graph": Text(description), "y": y.name}
        try:
            got = sqrt_checkpoints(y)
        except RecursionError:
            raise CheckFailure("on a chain of 1,200 ops your function raised RecursionError: Python allows about "
                               "1,000 nested calls. Walk the nodes in mg.topological_sort's order instead of "
                               "recursing", input=given) from None
        _expect_checkpoints(got, y, given)
    x, labels, hidden, logits, loss, feed = _mlp([64] + [64] * 36 + [10], activation=ops.relu)
    given = {"graph": Text("a 36-layer ReLU MLP (width 64) and its loss, batches of 256"), "y": loss.name}
    theirs = sqrt_checkpoints(loss)
    n, count = _expect_checkpoints(theirs, loss, given)
    shapes = {x: (256, 64), labels: (256,)}
    plain, checkpointed = _checkpointed_peak(loss, None, shapes), _checkpointed_peak(loss, list(theirs), shapes)
    if checkpointed > 0.5 * plain:
        raise CheckFailure(f"with your {count} checkpoints the planned peak of a training step is "
                           f"{checkpointed / 2**10:.0f} KiB, {checkpointed / plain:.2f}x the {plain / 2**10:.0f} KiB "
                           "without checkpoints: about √n of them should at least halve it", input=given)
    return (f"4 graphs; on a 36-layer MLP your {count} checkpoints, on a chain of {n} ops, bring the planned peak of a "
            f"training step to {checkpointed / plain:.2f}x")


# ---------------------------------------------------------------------------------------------- 6.5


def _segment(checkpoint, top):
    """The ops that ``top`` needs above ``checkpoint``, ``top`` included, in topological order: what recomputing
    from the checkpoint up to ``top`` computes again."""
    return [node for node in topological_sort([top]) if node.inputs and checkpoint in topological_sort([node])
            and node is not checkpoint]


def _segment_cases():
    """``(description, segment, trigger, fetches, feed)``: the ops between two checkpoints of MLPs."""
    x, labels, hidden, logits, loss, feed = _mlp([6] * 9 + [3], batch=5)
    checkpoint, top = hidden[1], hidden[5]
    segment = _segment(checkpoint, top)
    trigger = autodiff.gradients(loss, top)
    yield ("a tanh MLP: layers h3 to h6 above the checkpoint h2; trigger: the adjoint of h6", segment, trigger,
           [loss], feed)
    rng = np.random.default_rng(3)
    x = placeholder("x", shape=(5, 6))
    h0 = _layer(x, 6, "h0", rng)
    h = h0
    for index in range(1, 4):
        h = ops.add(_layer(h, 6, f"f{index}", rng), h, name=f"h{index}")
    loss = ops.reduce_sum(ops.mul(h, h, name="squares"), name="loss")
    segment = _segment(h0, h)
    trigger = autodiff.gradients(loss, h)
    yield ("a residual MLP, h(k) = f(k)(h(k-1)) + h(k-1): three blocks above the checkpoint h0 (which two ops of "
           "the segment read)", segment, trigger, [loss], {x: rng.standard_normal((5, 6)).astype(np.float32)})


def _expect_twins(got, segment, trigger, given):
    if not isinstance(got, dict):
        raise CheckFailure(f"recompute should return a dict {{node: twin}}, not a {type(got).__name__}", input=given,
                           got=got)
    for node in segment:
        if node not in got:
            raise CheckFailure(f"the twins miss {_named(node)}: every node of the segment gets one", input=given)
        if not isinstance(got[node], Node):
            raise CheckFailure(f"the twin of {_named(node)} should be a node, not a {type(got[node]).__name__}",
                               input=given, got=got[node])
        if got[node] is node:
            raise CheckFailure(f"the twin of {_named(node)} is {_named(node)} itself: build a new node, "
                               "mg.make_node(node.op, inputs, ...)", input=given)
    for key in got:
        if key not in segment:
            raise CheckFailure(f"the twins include {_named(key)}, which is not in the segment: values outside it are "
                               "kept, not recomputed", input=given)
    members = set(segment)
    for twin in got.values():
        swapped = [x for x in topological_sort([twin]) if x.op.name == "after" and x.inputs[0] is trigger]
        if swapped:
            raise CheckFailure(f"{_named(swapped[0])} is after(trigger, {swapped[0].inputs[1].name}): its value is the "
                               "trigger's. after(x, trigger) is the value of x, once trigger is computed", input=given)
    for node in segment:
        twin = got[node]
        originals = [x for x in twin.inputs if x in members]
        if originals:
            raise CheckFailure(f"the twin of {_named(node)} reads the original {_named(originals[0])}: then "
                               f"{_named(originals[0])} must stay alive until the backward pass, and recomputing "
                               f"saves nothing. Read its twin instead", input=given)
        if trigger not in topological_sort([twin]):
            raise CheckFailure(f"the twin of {_named(node)} does not wait for the trigger: an execution order may then "
                               "recompute it during the forward pass, next to the original, and keep it until the "
                               "backward pass. Enter the segment through mg.memory.after(input, trigger)", input=given)
        if twin.role != "recompute":
            raise CheckFailure(f"the twin of {_named(node)} has the role {twin.role!r}: build the twins inside "
                               "`with mg.role_scope(\"recompute\"):`, so that drawings show them and graph passes "
                               "leave them apart from the originals", input=given)


@exercise(
    "6.5",
    "recomputing one segment",
    expects="recompute(segment, trigger)",
    nudge="Copy each node of the segment, in order, onto the copies of its inputs; where a copy would read only "
    "kept values, make it read its first input through after(input, trigger).",
    hint="In a role_scope(\"recompute\") block, go through the segment in its order, filling a dict of twins. The "
    "inputs of a node's twin are the twins of its inputs where they have one, and the inputs themselves otherwise. "
    "When none of its inputs has a twin, the node starts the segment: its first input becomes "
    "mg.memory.after(that input, trigger). Build the twin with mg.make_node from the node's op, those inputs and "
    "the node's name followed by a quote, and return the dict.",
    unavailable=[memory.checkpointed_gradients, autodiff.gradients],
)
def _(recompute):
    summary = []
    for description, segment, trigger, fetches, feed in _segment_cases():
        given = {"graph": Text(description), "segment": [node.name for node in segment], "trigger": trigger.name}
        got = recompute(list(segment), trigger)
        _expect_twins(got, segment, trigger, given)
        values = Session().run([*segment, *(got[node] for node in segment), trigger], feed)
        for node, original, twin in zip(segment, values, values[len(segment):]):
            expect_equal(twin, original, input=given, what=f"the value of the twin of {_named(node)}")
        summary.append(str(len(segment)))
    return (f"segments of {' and '.join(summary)} ops: the twins read each other, wait for the trigger and equal the "
            "originals bit for bit")


# ---------------------------------------------------------------------------------------------- 6.6

MNIST_EPOCHS, MNIST_BATCH, MNIST_HIDDEN = 3, 128, 256


def _expect_plan(plan, order, fetches):
    result = plan(list(order), list(fetches))
    if not isinstance(result, memory.MemoryPlan):
        raise CheckFailure("plan should return mg.memory.MemoryPlan(order, fetches, lifetime, buffer), not "
                           f"{_a(result)}")
    if result.order != list(order):
        raise CheckFailure("plan returned a MemoryPlan for another order than the one it was given: pass order as it "
                           "is")
    return result


def _mnist_mlp(seed=0):
    """The chapter's 784-256-10 ReLU MLP with momentum: ``(x, labels, loss, accuracy, step)``."""
    x, labels, hidden, logits, loss, feed = _mlp([784, MNIST_HIDDEN, 10], activation=ops.relu, seed=seed)
    accuracy = ops.reduce_mean(ops.cast(ops.equal(ops.argmax(logits, axis=1), labels), "float32"), name="accuracy")
    return x, labels, loss, accuracy, optim.Momentum(0.05, momentum=0.9).minimize(loss)


@exercise(
    "6.6",
    "your planner trains MNIST",
    expects="plan(order, fetches)",
    nudge="Compose your pieces: your liveness and bases, an in_place function built on your can_overwrite, your "
    "assign_buffers — and return mg.memory.MemoryPlan(order, fetches, lifetime, buffer).",
    hint="lifetime = liveness(order, fetches) and base = bases(order). Define in_place(node, step) returning the "
    "first x in node.inputs for which can_overwrite(node, x, step, lifetime, base), or None. Then buffer = "
    "assign_buffers(order, lifetime, in_place), and return mg.memory.MemoryPlan(order, fetches, lifetime, buffer): "
    "it checks your plan, and the Session's executor follows it.",
    unavailable=[memory.plan_memory, memory.keep_everything, memory.liveness, memory.bases, memory.can_overwrite],
    time_limit=90,
)
def _(plan):
    def planner(order, fetches):
        return _expect_plan(plan, order, fetches)

    for description, fetches, feed in _buffer_graphs():
        planned, kept = _values(fetches, feed, planner), _values(fetches, feed, "naive")
        for fetch, value, want in zip(fetches, planned, kept):
            expect_equal(value, want, input=Text(description),
                         what=f"following your plan, the value of {_named(fetch)}")
    x, labels, loss, accuracy, step = _mnist_mlp()
    feed = {x: np.zeros((MNIST_BATCH, 784), np.float32), labels: np.zeros(MNIST_BATCH, np.int64)}
    chapter = Executor([loss, step])  # the chapter's plan, and the order to plan
    theirs = _expect_plan(plan, chapter.order, [loss, step])
    usage, reference = theirs.usage(feed), chapter.plan.usage(feed)
    given = Text(f"one momentum step of the 784-{MNIST_HIDDEN}-10 MLP, batch {MNIST_BATCH}")
    if usage.peak >= usage.total:
        raise CheckFailure(f"your plan holds every value until the end of the step: its peak is the "
                           f"{usage.total / 2**10:.0f} KiB of keeping everything. Give the MemoryPlan your liveness, "
                           "so that each value is released after its last reader, and your assign_buffers' buffers",
                           input=given)
    if not theirs.in_place:
        raise CheckFailure("your plan computes nothing in place: pass an in_place function built on your "
                           "can_overwrite to assign_buffers", input=given)
    if usage.peak > 1.05 * reference.peak:
        raise CheckFailure(f"your plan's peak is {usage.peak / 2**10:.0f} KiB; the greedy planner of the chapter needs "
                           f"{reference.peak / 2**10:.0f} KiB for the same step (keeping everything: "
                           f"{usage.total / 2**10:.0f} KiB)", input=given)
    history = _train_mnist(planner)
    return Passed(f"the same bits as keeping everything on 3 graphs; on the MLP's step a planned peak of "
                  f"{usage.peak / 2**10:.0f} KiB instead of {usage.total / 2**10:.0f} KiB "
                  f"({len(theirs.in_place)} values in place); {MNIST_EPOCHS} epochs of MNIST trained with your "
                  "planner, bit for bit as without it",
                  value=history)


def _train_mnist(planner):
    """The MLP trained with the learner's planner and, in step with it, with every value kept: the history of the
    first, after comparing the two runs' losses and final weights bit for bit."""
    from ..datasets import batches

    x, labels, loss, accuracy, step = _mnist_mlp()
    data = mnist_splits()
    sessions = {"yours": Session(memory=planner), "naive": Session(memory="naive")}

    def train_epoch(epoch):
        for number, (images, digits) in enumerate(batches(*data["train"], MNIST_BATCH, rng=epoch), start=1):
            losses = {name: sess.run([loss, step], {x: images, labels: digits})[0] for name, sess in sessions.items()}
            if not np.array_equal(losses["yours"], losses["naive"]):
                raise CheckFailure(f"epoch {epoch}, step {number}: the loss differs from the run that keeps every "
                                   "value", expected=losses["naive"], got=losses["yours"])

    history = history_by_epoch(MNIST_EPOCHS, train_epoch, lambda images, digits: sessions["yours"].run(
        [loss, accuracy], {x: images, labels: digits}), data)
    variables = [node for node in topological_sort([loss]) if isinstance(node, Variable)]
    for var in variables:
        expect_equal(sessions["yours"].variables[var], sessions["naive"].variables[var],
                     what=f"the trained {var.name} with your planner (compared with keeping every value)")
    return history
