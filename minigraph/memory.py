"""Memory (chapter 06): liveness, the memory plan the executor follows, measured peaks, and gradient
checkpointing.

**Liveness.** An executor computes the nodes of an ``order`` one *step* at a time. A value is born at the
step of its node and dies after the last step that reads it; a fetched value lives to the end. The
planner owns the values of op nodes; placeholders, Variables and constants are not its (their arrays
belong to the caller and to the Session), and nor are nodes without a value (``group``). A *view* — an op
with ``returns_view``: reshape, transpose, expand_dims, sum_to, assign — shares the array of its first
input, its *base*, so every read of a view is a read of the base: liveness is counted per base, and a
view of a Variable is not the planner's either.

**A planner** is a function ``planner(order, fetches) -> MemoryPlan`` (``Session(memory=planner)``); the
package's are :func:`plan_memory` (``memory="plan"``, the default) and :func:`keep_everything`
(``memory="naive"``). A :class:`MemoryPlan` is checked when it is made, so a planner cannot make the
executor compute a wrong value: a bad plan is an error that names the nodes.

**The plan's contract**, which every executor follows (chapter 02's serial one here, chapter 07's threads):

- ``plan.lifetime[value] = (born, dies)`` for every value the planner owns: its node's step, and the step
  after which it is released (``len(order)``: kept to the end). ``dies`` is at least the last step that
  reads the value or a view of it.
- ``plan.buffer[value]``: an int naming the array the value lives in. Values with the same buffer take
  turns: each later one *overwrites* the one before it, ``plan.overwrites[value]``, which must be dead by
  then. Its op must declare ``writes_into``, and is run as ``op.compute_into(node, (*inputs, array))``. If
  the overwritten value is one of its inputs (dying at this very step), that is *in place*
  (``plan.in_place``): the op must declare ``in_place`` and the shapes and dtypes must provably agree.
  Otherwise the two values have the same fully known shape and dtype (*co-sharing* a dead buffer).
- A view has no buffer of its own: ``plan.base[node]`` is the value whose array it shares (``None`` for
  what is not the planner's), so its memory is ``plan.buffer[plan.base[node]]``.
- A buffer is freed after the step at which its last value dies.
- Concurrency (chapter 07): a node that overwrites a buffer must not start while a reader of the value it
  overwrites may still run; :meth:`MemoryPlan.write_after_read` lists those extra dependencies. Values in
  different buffers never share memory, so they impose none.

**Measuring.** :func:`measure_peak` runs a call under ``tracemalloc`` (numpy reports its arrays there) and
returns the most memory it held at once; :meth:`MemoryPlan.usage` predicts the same from static shapes.

**Gradient checkpointing** (Chen, Xu, Zhang and Guestrin, 2016): :func:`checkpointed_gradients` keeps
only some forward values (the checkpoints) for the backward pass and recomputes the others, segment by
segment, as the backward pass reaches them. The recomputation is more graph: its nodes have the role
``"recompute"``, and each recomputed segment starts with an ``after(checkpoint, adjoint)`` node — the
checkpoint's value, available only once the adjoint that needs the segment is — so that no execution
order can recompute it early. A recomputed node differs from its original by that input, so
common-subexpression elimination cannot merge the two; passes must keep ``after`` nodes and nodes of role
``"recompute"``.
"""

import math
import tracemalloc
from collections import defaultdict, namedtuple

from .autodiff import gradient_override, gradient_rule, gradients
from .graph import (Node, Op, Placeholder, describe, format_shape, make_node, role_scope, shapes_compatible,
                    topological_sort)
from .ops.shape import broadcast_keeps_shape

# ---------------------------------------------------------------------------------------------- liveness


def bases(order):
    """``{node: base}`` for the nodes of ``order``: the value whose array the node's value is — itself for
    a value the planner owns, its first input's base for a view, ``None`` for what is not the planner's."""
    base = {}
    for node in order:
        if not node.inputs or node.dtype is None:
            base[node] = None
        elif node.op.returns_view:
            base[node] = base[node.inputs[0]]
        else:
            base[node] = node
    return base


def liveness(order, fetches):
    """``{value: (born, dies)}`` for the values the planner owns: the step that computes the
    value, and the last step that reads it or a view of it — ``len(order)`` if it (or a view
    of it) is fetched."""
    base = bases(order)
    lifetime = {}
    for step, node in enumerate(order):
        if base[node] is node:
            lifetime[node] = (step, step)
        for x in node.inputs:
            if base[x] is not None:
                lifetime[base[x]] = (lifetime[base[x]][0], step)
    for fetch in fetches:
        if base[fetch] is not None:
            lifetime[base[fetch]] = (lifetime[base[fetch]][0], len(order))
    return lifetime


# ---------------------------------------------------------------------------------------------- planners


def has_fixed_shape(node):
    """True if ``node``'s array has the same shape at every run: a static shape of rank ≥ 1, fully known."""
    return node.shape is not None and len(node.shape) > 0 and None not in node.shape


def can_overwrite(node, x, step, lifetime, base):
    """True if ``node``, at ``step``, may write its result over its input ``x`` (in place):
    ``x`` is an array the planner owns (not a view, not a Variable's) that dies here — no later
    reader, not fetched — has ``node``'s dtype and, provably, its shape, and is not read through
    another input that is a view of it."""
    return (node.op.in_place and base[x] is x and lifetime[x][1] == step and x.dtype == node.dtype
            and x.shape is not None and len(x.shape) > 0 and broadcast_keeps_shape(x, node)
            and all(other is x or base[other] is not x for other in node.inputs))


def plan_memory(order, fetches):
    """The default planner (``memory="plan"``): every value is released after its last reader,
    and a value takes the buffer of an input that dies at its step (in place) or, failing that,
    the most recently released buffer of the same fixed shape and dtype (co-sharing), when its
    op can write into one. Greedy, one pass over the steps, as NNVM's memory planner does."""
    lifetime, base = liveness(order, fetches), bases(order)
    dying = defaultdict(list)
    for value, (born, dies) in lifetime.items():
        dying[dies].append(value)
    buffer, holder = {}, []  # holder[buffer]: the value in it now
    released = defaultdict(list)  # (shape, dtype) -> released buffers
    for step, node in enumerate(order):
        if node in lifetime:
            dead_input = next((x for x in node.inputs
                               if can_overwrite(node, x, step, lifetime, base)), None)
            reusable = node.op.writes_into and has_fixed_shape(node)
            pool = released[node.shape, node.dtype] if reusable else []
            if dead_input is not None:
                buffer[node] = buffer[dead_input]
            elif pool:
                buffer[node] = pool.pop()
            else:
                buffer[node] = len(holder)
                holder.append(None)
            holder[buffer[node]] = node
        for value in dying[step]:  # its buffer, unless taken over in place at this very step
            if holder[buffer[value]] is value and has_fixed_shape(value):
                released[value.shape, value.dtype].append(buffer[value])
    return MemoryPlan(order, fetches, lifetime, buffer)


def keep_everything(order, fetches):
    """The naive planner (``memory="naive"``): every value in its own buffer, kept to the end of the run."""
    values = [(step, node) for step, (node, base) in enumerate(bases(order).items()) if base is node]
    return MemoryPlan(order, fetches, {node: (step, len(order)) for step, node in values},
                      {node: index for index, (step, node) in enumerate(values)})


def planner_for(memory):
    """The planner that ``Session(memory=...)`` names: ``"plan"``, ``"naive"`` or a function."""
    if callable(memory):
        return memory
    if memory == "plan":
        return plan_memory
    if memory == "naive":
        return keep_everything
    raise ValueError(f"memory must be 'plan', 'naive' or a planner function (order, fetches) -> MemoryPlan, "
                     f"not {memory!r}")


# ---------------------------------------------------------------------------------------------- the plan

Usage = namedtuple("Usage", "sizes live peak total")
Usage.__doc__ = """Bytes a plan needs for some feed shapes: ``sizes`` per value, ``live`` per step (buffers
held during that step), their ``peak``, and the ``total`` of all values (what keeping everything needs)."""


class MemoryPlan:
    """Where each value of a run lives and when it is released: see the module's docstring for the contract.

    ``MemoryPlan(order, fetches, lifetime, buffer)`` checks the plan and derives ``overwrites`` (value ->
    the value whose buffer it takes over) and ``in_place`` (those among them that overwrite an input).
    """

    def __init__(self, order, fetches, lifetime, buffer):
        self.order, self.fetches = list(order), list(fetches)
        self.lifetime, self.buffer = dict(lifetime), dict(buffer)
        self.base = bases(self.order)
        self.step = {node: step for step, node in enumerate(self.order)}
        self._check_values()
        self.overwrites = self._check_buffers()
        self.in_place = {value: old for value, old in self.overwrites.items() if old in value.inputs}

    def __repr__(self):
        return (f"<MemoryPlan: {len(self.buffer)} values in {len(set(self.buffer.values()))} buffers, "
                f"{len(self.in_place)} in place, {len(self.overwrites) - len(self.in_place)} in a dead value's buffer>")

    def _check_values(self):
        values = {node for node, base in self.base.items() if base is node}
        for name, given in (("lifetime", self.lifetime), ("buffer", self.buffer)):
            for node in given:
                if node not in values:
                    whose = "is not in the order" if node not in self.step else "is not a value the planner owns"
                    raise ValueError(f"the plan's {name} lists {_describe(node)}, which {whose}")
            for node in values - set(given):
                raise ValueError(f"the plan's {name} misses the value of {_describe(node)}")
        for value, (born, dies) in liveness(self.order, self.fetches).items():
            planned_born, planned_dies = self.lifetime[value]
            if planned_born != born:
                raise ValueError(f"the plan says {_describe(value)} is born at step {planned_born}, "
                                 f"but it is computed at step {born}")
            if planned_dies < dies:
                reader = "it is fetched" if dies == len(self.order) else f"{_describe(self.order[dies])} reads it at step {dies}"
                raise ValueError(f"the plan releases {_describe(value)} after step {planned_dies}, but {reader}")

    def _check_buffers(self):
        overwrites = {}
        occupants = defaultdict(list)
        for value in sorted(self.buffer, key=self.step.get):
            occupants[self.buffer[value]].append(value)
        for values in occupants.values():
            for old, new in zip(values, values[1:]):
                self._check_overwrite(old, new)
                overwrites[new] = old
        return overwrites

    def _check_overwrite(self, old, new):
        step, dies = self.step[new], self.lifetime[old][1]
        problem = None
        if not new.op.writes_into:
            problem = f"its op {new.op.name} cannot write into a given array (writes_into is False)"
        elif dies > step or (dies == step and old not in new.inputs):
            problem = f"{_describe(old)} is alive until step {dies}"
        elif old in new.inputs and not can_overwrite(new, old, step, self.lifetime, self.base):
            problem = "that is not safe in place (see memory.can_overwrite)"
        elif old not in new.inputs and not (has_fixed_shape(new) and (old.shape, old.dtype) == (new.shape, new.dtype)):
            problem = f"{_describe(old)} {old.dtype} and it differ in shape or dtype, or a shape is not fixed"
        if problem:
            raise ValueError(f"the plan puts {_describe(new)} (step {step}) in buffer {self.buffer[new]} over "
                             f"{_describe(old)} (step {self.step[old]}), but {problem}")

    def released_after(self):
        """``{step: [buffers]}``: the buffers whose last value dies at that step (the end excluded)."""
        last = defaultdict(int)
        for value, (born, dies) in self.lifetime.items():
            last[self.buffer[value]] = max(last[self.buffer[value]], dies)
        released = defaultdict(list)
        for buffer, step in last.items():
            if step < len(self.order):
                released[step].append(buffer)
        return released

    def write_after_read(self):
        """``{node: [nodes]}`` for each node that overwrites a value: the nodes that must finish before it
        starts — the overwritten value's node and every reader of it or of a view of it (chapter 07)."""
        readers = self.readers()
        return {new: [old] + [r for r in readers[old] if r is not new] for new, old in self.overwrites.items()}

    def readers(self):
        """``{value: [nodes]}``: the nodes that read each value, or a view of it, in the order's order."""
        readers = defaultdict(list)
        for node in self.order:
            for x in dict.fromkeys(node.inputs):
                if self.base[x] is not None:
                    readers[self.base[x]].append(node)
        return readers

    def usage(self, feed_shapes):
        """The :data:`Usage` (bytes) of this plan when the placeholders have ``feed_shapes``
        (``{placeholder: shape}``; placeholders of fully known shape may be left out)."""
        shapes = concrete_shapes(self.order, feed_shapes)
        sizes = {}
        for value in self.buffer:
            if shapes[value] is None or None in shapes[value]:
                raise ValueError(f"cannot tell the shape of {_describe(value)} for these feed shapes")
            sizes[value] = math.prod(shapes[value]) * value.dtype.itemsize
        span, size = {}, defaultdict(int)
        for value, (born, dies) in self.lifetime.items():
            buffer = self.buffer[value]
            first, last = span.get(buffer, (born, dies))
            span[buffer] = (min(first, born), max(last, dies))
            size[buffer] = max(size[buffer], sizes[value])
        live = [0] * len(self.order)
        for buffer, (first, last) in span.items():
            for step in range(first, min(last, len(self.order) - 1) + 1):
                live[step] += size[buffer]
        return Usage(sizes, live, max(live, default=0), sum(sizes.values()))

    def highlight_buffers(self, node):
        """Graphviz attributes for ``mg.draw(..., highlight=plan.highlight_buffers)``: each value filled
        with its buffer's colour and labelled with its buffer (``↺`` when it overwrote an input)."""
        base = self.base.get(node)
        if base is None:
            return None
        buffer = self.buffer[base]
        mark = " ↺" if node in self.in_place else "" if base is node else " (view)"
        return {"fillcolor": PALETTE[buffer % len(PALETTE)], "xlabel": f"b{buffer}{mark}", "fontcolor": "#111827"}

    def highlight_step(self, step):
        """A function for ``mg.draw(..., highlight=...)``: the values alive during ``step`` in orange, those
        already released in grey, the node computed at ``step`` outlined in red."""
        def attributes(node):
            base = self.base.get(node)
            attrs = {"color": "#dc2626", "penwidth": "3"} if self.step.get(node) == step else {}
            if base is not None and self.step[node] <= step:
                alive = self.lifetime[base][1] >= step
                attrs.update(fillcolor="#fdba74" if alive else "#e5e7eb", fontcolor="#111827" if alive else "#9ca3af")
            return attrs or None
        return attributes


PALETTE = ("#bfdbfe", "#fde68a", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc", "#d9f99d", "#fecaca",
           "#c7d2fe", "#99f6e4", "#f5d0fe")


def _describe(node):
    return f"{node.op.name} node {describe(node)}"


def concrete_shapes(order, feed_shapes):
    """``{node: shape}`` when the placeholders have ``feed_shapes`` (``{placeholder: shape or array}``):
    each op's shape rule applied to its inputs' actual shapes (chapter 02's shape inference, with the batch
    size known). A placeholder whose declared shape is fully known may be left out."""
    shapes = {}
    for node in order:
        if isinstance(node, Placeholder):
            given = feed_shapes.get(node, node.shape)
            shape = None if given is None else tuple(getattr(given, "shape", given))
            if shape is None or None in shape or not shapes_compatible(shape, node.shape):
                raise ValueError(f"placeholder {describe(node)} needs a feed shape that fits "
                                 f"{format_shape(node.shape)}, got {format_shape(shape)}")
        elif not node.inputs:
            shape = node.shape
        else:
            shape = node.op.infer_shape(node, [shapes[x] for x in node.inputs])
        shapes[node] = None if shape is None else tuple(shape)
    return shapes


# ---------------------------------------------------------------------------------------------- order


def memory_order(fetches):
    """A topological order (a ``sort`` for ``Session(sort=...)``) that tends to keep fewer
    values alive.

    Depth-first, as :func:`~minigraph.topological_sort`, but visiting a node's inputs shallowest
    first (the *depth* of a node is the longest path to it from a source), so that what can be
    finished early is: in a training step, the gradient and update of the last layer — available
    first — before those of the one below, each freeing the adjoint it read, where the plain
    order computes every adjoint before any update.
    """
    nodes = topological_sort(fetches)
    depth = depths(nodes)
    roots = nodes[-1:] if isinstance(fetches, Node) else fetches

    def shallowest_first(node):
        return sorted(node.inputs, key=depth.get)

    return post_order(sorted(roots, key=depth.get), shallowest_first)


def depths(order):
    """``{node: depth}`` for the nodes of a topological ``order``: 0 for a source, else one more than the
    deepest of the node's inputs — the length of the longest path to the node from a source."""
    depth = {}
    for node in order:
        depth[node] = 1 + max((depth[x] for x in node.inputs), default=-1)
    return depth


def post_order(roots, inputs):
    """The nodes reached from ``roots`` through ``inputs(node)`` (a list, followed in its order), each after
    the nodes it reaches: a depth-first post-order, without recursion."""
    order, visited = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                stack.extend((x, False) for x in reversed(inputs(node)) if x not in visited)
    return order


# ---------------------------------------------------------------------------------------------- measuring


def measure_peak(function, *args, **kwargs):
    """``(result, peak)``: the result of ``function(*args, **kwargs)`` and the most bytes it
    held at once beyond what was allocated when it started, as ``tracemalloc`` counts them (numpy
    reports its arrays' data there). Warm up first: a Session's first run of a fetch set also
    copies the variables."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()


# ---------------------------------------------------------------------------------------------- checkpointing


class After(Op):
    """``after(x, *signals)``: the value of ``x``, computed only once the ``signals`` are — a control
    dependency. Checkpointing starts each recomputed segment with one. Gradient: ``g`` for ``x``."""

    name = "after"
    returns_view = True

    def compute(self, node, input_values):
        return input_values[0]

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]

    def infer_dtype(self, node, input_dtypes):
        return input_dtypes[0]

    def gradient(self, node, output_grad):
        return [output_grad] + [None] * (len(node.inputs) - 1)


def after(x, *signals, name=None):
    """``x``, once ``signals`` are computed (a control dependency)."""
    return After()(x, *signals, name=name)


def sqrt_checkpoints(y):
    """About √n checkpoints for ``y``: every ⌈√n⌉-th op of the longest chain of n ops that ends
    at ``y`` (stateful ops skipped: they are kept anyway)."""
    length, previous = {}, {}  # the longest chain of ops ending at a node, and the op before it
    for node in topological_sort([y]):
        if node.inputs:
            before = max((x for x in node.inputs if x.inputs), key=length.get, default=None)
            length[node], previous[node] = 1 + length.get(before, 0), before
    chain, node = [], y
    while node in previous:
        chain.append(node)
        node = previous[node]
    chain.reverse()
    every = max(1, math.ceil(math.sqrt(len(chain))))
    return [node for node in chain[every - 1:-1:every] if not node.op.stateful]


def checkpointed_gradients(y, xs, checkpoints="sqrt", grad_y=None):
    """:func:`minigraph.gradients` that keep only ``checkpoints`` of the forward pass for the
    backward pass and recompute the other values it needs (Chen, Xu, Zhang and Guestrin, 2016);
    what ``mg.gradients(y, xs, checkpoints=...)`` calls.

    ``checkpoints``: ``"sqrt"`` (about √n of them, :func:`sqrt_checkpoints`), a list of op nodes
    ``y`` depends on, or ``None`` (plain ``gradients``). Values no checkpoint depends on (the top
    segment) and stateful ones are kept too. Every gradient rule reads the recomputed twin of a
    value instead of the value; the twins of a segment are built when the backward pass first
    needs one of them, and wait (an ``after`` node) for the adjoint that needs them. The
    gradients are bit for bit the same; for n layers in segments of k, the backward pass keeps
    about n/k checkpoints and k recomputed values, for about one extra forward pass. A node's
    twin has the role ``"recompute"`` and the name of the node with a ``'``.
    """
    if checkpoints is None:
        return gradients(y, xs, grad_y)
    forward = topological_sort([y])
    if isinstance(checkpoints, str) and checkpoints == "sqrt":
        checkpoints = sqrt_checkpoints(y)
    kept = _checked_checkpoints(y, forward, checkpoints)
    below_kept = set(topological_sort(list(kept))) if kept else set()
    recomputed = {n for n in below_kept
                  if n.inputs and n not in kept and not (n.op.stateful or n.op.mutates)}
    position = {node: index for index, node in enumerate(forward)}
    twins, entries = {}, {}

    def twin(value, trigger):
        """The recomputed ``value``, building its segment (what it needs that is not kept)."""
        needed, stack = set(), [value]
        while stack:
            node = stack.pop()
            if node in recomputed and node not in twins and node not in needed:
                needed.add(node)
                stack.extend(node.inputs)
        with role_scope("recompute"):
            for node in sorted(needed, key=position.get):
                inputs = [twins.get(x, x) for x in node.inputs]
                if not any(x in twins for x in node.inputs):  # the segment starts: wait
                    key = (inputs[0], trigger)
                    if key not in entries:
                        entries[key] = after(inputs[0], trigger)
                    inputs[0] = entries[key]
                twins[node] = make_node(node.op, inputs, f"{node.name}'")
        return twins[value]

    def reading_twins(grad, trigger):
        """``grad`` rebuilt so that the nodes the rule just built read twins instead of
        recomputed values."""
        if grad is trigger or grad in position:
            return twin(grad, trigger) if grad in recomputed else grad

        def built_by_the_rule(node):  # neither the adjoint nor the forward graph
            return [x for x in node.inputs if x is not trigger and x not in position]

        rebuilt = {}
        for node in post_order([grad], built_by_the_rule):  # inputs first
            inputs = [rebuilt[x] if x in rebuilt else twin(x, trigger) if x in recomputed else x
                      for x in node.inputs]
            if any(a is not b for a, b in zip(inputs, node.inputs)):
                rebuilt[node] = make_node(node.op, inputs, node.name)
        return rebuilt.get(grad, grad)

    rules = {node.op: gradient_rule(node.op) for node in forward}

    def rule_reading_twins(node, output_grad):
        return [None if g is None else reading_twins(g, output_grad)
                for g in rules[node.op](node, output_grad)]

    with gradient_override({type(node.op): rule_reading_twins for node in forward}):
        return gradients(y, xs, grad_y)


def _checked_checkpoints(y, forward, checkpoints):
    if y.eager:
        raise ValueError(f"checkpoints: y {describe(y)} is an eager tensor, whose values were computed and kept as "
                         "the program ran (chapter 08), so there is nothing to recompute: differentiate it "
                         "without checkpoints")
    if isinstance(checkpoints, (str, Node)) or not hasattr(checkpoints, "__iter__"):
        raise TypeError(f"checkpoints must be None, 'sqrt' or a list of nodes, not {checkpoints!r}")
    on_path = set(forward)
    kept = []
    for position, node in enumerate(checkpoints):
        if not isinstance(node, Node):
            raise TypeError(f"checkpoint {position} is a {type(node).__name__}, not a Node")
        if node not in on_path:
            raise ValueError(f"checkpoint {_describe(node)} is not on the way to y {describe(y)}: y does not depend on it")
        if not node.inputs:
            raise ValueError(f"checkpoint {_describe(node)} is a source: placeholders, Variables and constants "
                             "are always kept; checkpoints are values of ops")
        kept.append(node)
    return set(kept)
