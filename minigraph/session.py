"""Running graphs: an :class:`Executor` runs one fixed set of fetches; a :class:`Session` owns the values of
variables and keeps one Executor per set of fetches it has run.

An Executor is compiled once: the fetches optimized (``optimize``, chapter 05), the nodes in a topological
order (a learner's ``sort`` may provide it), a memory plan for that order (chapter 06,
:mod:`minigraph.memory`), then a flat list of steps ``(compute, node, gather inputs, output slot)`` over a list
of value slots, in which constants and variable buffers are filled in ahead of time. A run copies that list,
puts the feeds in their slots and executes the steps — no graph walking, no dict lookups per node.
"""

import contextlib
import heapq
import operator
import threading
from collections import defaultdict

import numpy as np

from . import passes
from .graph import Constant, Node, Op, Placeholder, Variable, describe, format_shape, topological_sort
from .memory import MemoryPlan, planner_for


class Executor:
    """Computes ``fetches`` (a list of nodes): ``Executor([y, grad]).run({x: data}) -> [y_value, grad_value]``.

    ``sort(fetches) -> list of nodes`` replaces :func:`~minigraph.topological_sort` (its result is checked).
    ``optimize``: ``False`` runs the graph as built, ``True`` runs it rewritten by the default pipeline
    :func:`minigraph.passes.optimize`, a function ``fetches -> fetches`` (a pass) runs what it returns.
    ``variables`` maps each Variable to its value buffer (a Session passes its own; by default the
    Executor keeps one, starting from the initial values). ``memory`` chooses the memory planner (see
    :mod:`minigraph.memory`): ``"plan"`` frees each value after its last reader and reuses buffers, ``"naive"``
    keeps every value to the end of the run, or a function ``(order, fetches) -> MemoryPlan``; the values
    are the same bit for bit. The plan is ``executor.plan``.

    Feeds: every placeholder the fetches need must be fed; only placeholders can be fed. A fed value must
    have the declared rank and known dimensions; its dtype is converted when numpy calls the cast
    "same kind" (float64 -> float32, int -> float), any other dtype (float -> int labels) is an error.
    Variables and constants (and views of them) are fetched as copies, taken before any assign in the run.
    """

    def __init__(self, fetches, sort=None, variables=None, optimize=False, memory="plan"):
        self.fetches = list(fetches)
        for position, fetch in enumerate(self.fetches):
            if not isinstance(fetch, Node):
                raise TypeError(f"fetch {position} is a {type(fetch).__name__}, not a Node")
        self.variables = {} if variables is None else variables
        self.computed = optimized(self.fetches, optimize)  # the nodes whose values are returned
        order = (sort or topological_sort)(self.computed)
        check_order(order, self.computed)
        self._targets = [Snapshot()(f) if _may_alias_state(f) else f for f in self.computed]
        self.order = reads_before_writes(order + [t for t, f in zip(self._targets, self.computed) if t is not f])
        self.plan = planner_for(memory)(self.order, self._targets)
        if not isinstance(self.plan, MemoryPlan) or self.plan.order != self.order:
            raise TypeError(f"the memory planner must return a MemoryPlan for the order it is given, not {self.plan!r}")
        self._compile()

    def _compile(self):
        """The slots and steps, following the memory plan: the values of one buffer share its
        slot; a value that overwrites another gathers the buffer after its inputs and runs
        ``op.compute_into``; after the step at which a buffer dies, a step empties its slot and
        the slots of views of it (freeing the array)."""
        plan, slot, buffer_slot, view_slots = self.plan, {}, {}, defaultdict(list)
        self._template, self._placeholders, self._steps = [], [], []
        released_after = plan.released_after()
        for step, node in enumerate(self.order):
            buffer = plan.buffer.get(node)
            if buffer is not None and buffer in buffer_slot:
                slot[node] = buffer_slot[buffer]
            else:
                slot[node] = len(self._template)
                self._template.append(None)
                if buffer is not None:
                    buffer_slot[buffer] = slot[node]
                elif plan.base[node] is not None:
                    view_slots[plan.buffer[plan.base[node]]].append(slot[node])
            if isinstance(node, Placeholder):
                self._placeholders.append((node, slot[node]))
            elif isinstance(node, Variable):
                self._template[slot[node]] = variable_buffer(self.variables, node)
            elif isinstance(node, Constant):
                self._template[slot[node]] = node.constant
            elif node in plan.overwrites:
                gather = _gatherer([slot[x] for x in node.inputs] + [slot[node]])
                self._steps.append((node.op.compute_into, node, gather, slot[node]))
            else:
                gather = _gatherer([slot[x] for x in node.inputs])
                self._steps.append((node.op.compute, node, gather, slot[node]))
            for buffer in released_after[step]:
                for freed in [buffer_slot[buffer], *view_slots[buffer]]:
                    self._steps.append((_release, None, _gatherer([]), freed))
        self._fetch_slots = [slot[t] for t in self._targets]

    def run(self, feed_dict=None):
        """Compute the fetches; returns their values as a list."""
        values = self._fed(feed_dict)
        try:
            for compute, node, gather_inputs, output in self._steps:
                values[output] = compute(node, gather_inputs(values))
        except Exception as error:
            name_the_node(error, node)
            raise
        return [values[i] for i in self._fetch_slots]

    def _fed(self, feed_dict):
        """The slots at the start of a run: the constants and variables, and the feeds, checked."""
        feed_dict = {} if feed_dict is None else feed_dict
        values = self._template.copy()
        for node, index in self._placeholders:
            if node not in feed_dict:
                raise self._missing_feed(node)
            values[index] = check_feed(node, feed_dict[node])
        if len(feed_dict) > len(self._placeholders):
            _check_feed_keys(feed_dict)
        return values

    def _missing_feed(self, placeholder):
        needing = next((f for f in self.fetches if placeholder in topological_sort([f])), None)
        reason = "the sort's order contains it" if needing is None else f"fetch {needing.name!r} depends on it"
        return KeyError(f"placeholder {describe(placeholder)} must be fed: {reason} (add it to feed_dict)")


def optimized(fetches, optimize):
    """``fetches`` rewritten as ``optimize`` says (False, True or a pass), the result checked."""
    if optimize is False or optimize is None:
        return fetches
    if optimize is True:
        return passes.optimize(fetches)
    if not callable(optimize):
        raise TypeError(f"optimize must be True, False or a function fetches -> fetches, not {optimize!r}")
    return passes.check_result(fetches, optimize(list(fetches)), getattr(optimize, "__name__", repr(optimize)))


def variable_buffer(variables, var):
    """The array holding ``var``'s value in ``variables``, a copy of its initial value made on first use."""
    if var not in variables:
        variables[var] = np.array(var.initial_value, copy=True)
    return variables[var]


def _release(node, input_values):
    """The compute of a step that frees a slot: its value becomes ``None``."""
    return None


def _gatherer(slots):
    """A function ``values -> the values at slots`` that runs in C (``operator.itemgetter``): a tuple, or
    a one-element list for a single slot."""
    if len(slots) == 1:
        return operator.itemgetter(slice(slots[0], slots[0] + 1))
    return operator.itemgetter(*slots) if slots else lambda values: ()


def _may_alias_state(node):
    """True if the value of ``node`` may be the buffer of a variable or constant (or a view of one)."""
    return isinstance(node, (Variable, Constant)) or node.op.returns_view


class Snapshot(Op):
    """A copy of ``x``: the Executor fetches variables and constants (and views of them) through it, so a
    fetched value is the value when the run started, and changing it changes nothing in the graph."""

    name = "snapshot"

    def compute(self, node, input_values):
        return np.array(input_values[0], copy=True)

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]


def name_the_node(error, node):
    """Add to ``error``, raised while computing ``node``, a note naming the node (shown under the traceback
    from Python 3.11 on)."""
    if hasattr(error, "add_note"):
        error.add_note(f"minigraph: raised while computing {node.op.name} node {describe(node)}")


def check_feed(placeholder, value):
    """``value`` as an array that fits ``placeholder`` (see :class:`Executor` for the rules)."""
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype is not placeholder.dtype and array.dtype != placeholder.dtype:  # `is`: the usual case, quicker
        array = cast_within_kind(array, placeholder.dtype, f"feed for placeholder {describe(placeholder)}")
    shape = placeholder.shape
    if shape is not None and array.ndim != len(shape):
        raise _feed_shape_error(placeholder, array)
    for declared, fed in zip(shape or (), array.shape):  # a loop, not any(...): no generator at every run
        if declared is not None and declared != fed:
            raise _feed_shape_error(placeholder, array)
    return array


def _feed_shape_error(placeholder, array):
    return ValueError(f"feed for placeholder {placeholder.name!r} has shape {format_shape(array.shape)}, "
                      f"but the placeholder was declared {format_shape(placeholder.shape)}")


def cast_within_kind(array, dtype, what):
    """``array`` converted to ``dtype`` when numpy calls the cast "same kind" (float64 to float32, int to
    float) and, between integer types, every value fits (an int64 label of 2**40 would wrap in int32)."""
    if not np.can_cast(array.dtype, dtype, "same_kind"):
        raise TypeError(f"{what}: {array.dtype} data cannot become {dtype} (only casts within a kind are made, "
                        "such as float64 to float32); convert it with .astype(...)")
    if array.dtype.kind in "iu" and dtype.kind in "iu" and array.size and not np.can_cast(array.dtype, dtype):
        low, high, limits = array.min(), array.max(), np.iinfo(dtype)
        if low < limits.min or high > limits.max:
            raise ValueError(f"{what}: {array.dtype} values from {low} to {high} do not fit {dtype} "
                             f"[{limits.min}, {limits.max}]; converting would wrap them around")
    return array.astype(dtype)


def _check_feed_keys(feed_dict):
    for key in feed_dict:
        if not isinstance(key, Node):
            raise TypeError(f"feed_dict keys must be placeholder nodes, got the {type(key).__name__} {key!r}")
        if not isinstance(key, Placeholder):
            hint = " (use assign to change a variable)" if isinstance(key, Variable) else ""
            raise TypeError(f"cannot feed {key.op.name} node {describe(key)}: only placeholders are fed{hint}")


def check_order(order, fetches):
    """Check that a sort's result lists every node once, each after its inputs, fetches included."""
    seen = set()
    for node in order:
        if not isinstance(node, Node):
            raise TypeError(f"the topological sort returned a {type(node).__name__}, not a Node")
        if node in seen:
            raise ValueError(f"the topological sort lists node {node.name!r} twice")
        for x in node.inputs:
            if x not in seen:
                where = "before its input" if x in order else "but not its input"
                raise ValueError(f"the topological sort lists node {node.name!r} {where} {x.name!r}")
        seen.add(node)
    for fetch in fetches:
        if fetch not in seen:
            raise ValueError(f"the topological sort's result misses the fetch {fetch.name!r}")


def reads_before_writes(order):
    """``order`` rearranged (as little as possible) so that every node reading a variable runs before the
    assign ops writing it, unless it depends on them: each read in a run sees the value at the start of
    the run, whatever order the fetches were given in. Reads through views (reshape, ...) count."""
    writers = [node for node in order if node.op.mutates]
    if not writers:
        return order
    aliased = aliased_variables(order)
    position = {node: index for index, node in enumerate(order)}
    must_precede = {node: [] for node in order}  # reader -> writers that wait for it
    for writer in writers:
        var, after_writer = writer.inputs[0], _descendants(writer, order, position)
        for node in order:
            writes_same = node.op.mutates and var in aliased[node.inputs[0]]
            if node not in after_writer and not writes_same and any(var in aliased[x] for x in node.inputs):
                must_precede[node].append(writer)
    if all(position[r] < position[w] for r, ws in must_precede.items() for w in ws):
        return order
    return _priority_topological_order(order, position, must_precede)


def aliased_variables(order):
    """``{node: the variables its value may share memory with}``: a Variable itself, and the views of
    variables (reshape, transpose, assign, ...); reading such a value reads the variable."""
    aliased = {}
    for node in order:
        if isinstance(node, Variable):
            aliased[node] = {node}
        elif node.op.returns_view:
            aliased[node] = set().union(*(aliased[x] for x in node.inputs))
        else:
            aliased[node] = set()
    return aliased


def _descendants(node, order, position):
    reached = {node}
    for later in order[position[node] + 1:]:
        if any(x in reached for x in later.inputs):
            reached.add(later)
    return reached


def _priority_topological_order(order, position, extra_edges):
    """Kahn's algorithm over inputs plus ``extra_edges``, taking ready nodes in their ``order`` position."""
    waits_for = {node: set(node.inputs) for node in order}
    for before, afters in extra_edges.items():
        for after in afters:
            waits_for[after].add(before)
    unlocks = {node: [] for node in order}
    for node in order:
        for before in waits_for[node]:
            unlocks[before].append(node)
    ready = [position[node] for node in order if not waits_for[node]]
    heapq.heapify(ready)
    result = []
    while ready:
        node = order[heapq.heappop(ready)]
        result.append(node)
        for later in unlocks[node]:
            waits_for[later].discard(node)
            if not waits_for[later]:
                heapq.heappush(ready, position[later])
    if len(result) != len(order):
        raise ValueError("cannot order the reads of variables before their assigns: the fetches read a variable "
                         "both before and after assigning it")
    return result


class Session:
    """Runs graphs and owns the values of variables: ``sess.run(fetches, feed_dict)``.

    ``fetches`` is a node (its value is returned), or a list, tuple or dict of nodes (nested freely; the
    same structure is returned). Variables start at their initial values — no init step — and assign ops
    run in this session change them. Each distinct fetch set is compiled once to an :class:`Executor`.
    ``sort`` replaces :func:`~minigraph.topological_sort` in every Executor, ``optimize`` (False, True or a
    pass) rewrites each fetch set before it is compiled, ``memory`` chooses their memory planner (see
    :class:`Executor`). ``workers``: ``None`` computes the nodes one after another; an int N runs them on N
    threads (chapter 07, :class:`minigraph.parallel.ThreadedExecutor`), with the same values.
    ``with Session() as sess:`` makes it the default session inside the block (see :meth:`as_default`) and
    closes it at the end.
    """

    def __init__(self, sort=None, optimize=False, memory="plan", workers=None):
        if workers is not None:
            _threads().check_workers(workers)
        self.sort, self.optimize, self.memory, self.workers = sort, optimize, memory, workers
        self.variables = {}
        self._executors = {}
        self._closed = False

    def run(self, fetches, feed_dict=None):
        if self._closed:
            raise RuntimeError("this Session is closed")
        single = isinstance(fetches, Node)
        flat = (fetches,) if single else tuple(_flatten(fetches, []))
        executor = self._executors.get(flat)
        if executor is None:
            executor = self._executors[flat] = self._executor(flat)
        values = executor.run(feed_dict)
        return values[0] if single else _rebuild(fetches, iter(values))

    def _executor(self, fetches):
        options = {"sort": self.sort, "variables": self.variables, "optimize": self.optimize, "memory": self.memory}
        if self.workers is not None:
            return _threads().ThreadedExecutor(fetches, self.workers, **options)
        if self.optimize:  # an optimized graph runs compiled to one function (chapter 05)
            return _compiled_executor()(fetches, **options)
        return Executor(fetches, **options)

    def set_value(self, var, value):
        """Overwrite the value of Variable ``var`` in this session (same shape; cast within a dtype kind)."""
        if not isinstance(var, Variable):
            raise TypeError(f"set_value needs a Variable, got {var!r}")
        value = np.asarray(value)
        if value.shape != var.shape:
            raise ValueError(f"set_value: variable {describe(var)} cannot take a value of shape {format_shape(value.shape)}")
        value = cast_within_kind(value, var.dtype, f"set_value of variable {describe(var)}")
        np.copyto(variable_buffer(self.variables, var), value)

    def close(self):
        """Forget the variables' values and the compiled executors."""
        self.variables, self._executors, self._closed = {}, {}, True

    @contextlib.contextmanager
    def as_default(self):
        """``with sess.as_default():`` — inside the block, ``node.eval(feed_dict)`` and ``node.run(feed_dict)``
        run in ``sess`` (TensorFlow 1's default session; one stack of them per thread)."""
        _default_sessions().append(self)
        try:
            yield self
        finally:
            _leave_default(self)

    def __enter__(self):
        _default_sessions().append(self)
        return self

    def __exit__(self, *exc_info):
        _leave_default(self)
        self.close()


_thread_state = threading.local()


def _default_sessions():
    """This thread's stack of default sessions, innermost last."""
    if not hasattr(_thread_state, "defaults"):
        _thread_state.defaults = []
    return _thread_state.defaults


def _leave_default(session):
    stack = _default_sessions()
    del stack[len(stack) - 1 - stack[::-1].index(session)]  # its last entry, even if blocks close out of order


def get_default_session():
    """The innermost default session of this thread (see :meth:`Session.as_default`), or ``None``."""
    stack = _default_sessions()
    return stack[-1] if stack else None


def default_session(session, node):
    """``session`` if given, else the default session; an error naming ``node`` when there is neither."""
    session = session or get_default_session()
    if session is None:
        raise RuntimeError(f"no session to compute {describe(node)} in: pass session=sess, or run inside "
                           "`with sess.as_default():` or `with Session() as sess:`")
    return session


def _compiled_executor():
    """Chapter 05's CompiledExecutor."""
    from .passes.program import CompiledExecutor  # imported here: it imports this module

    return CompiledExecutor


def _threads():
    """Chapter 07's scheduler module."""
    from .parallel import scheduler  # imported here: minigraph.parallel imports this module

    return scheduler


def _flatten(fetches, flat):
    """The nodes of a nested structure of fetches, appended to ``flat`` in order (a node directly in a list
    without a call of its own: most runs fetch a list of nodes)."""
    if isinstance(fetches, Node):
        flat.append(fetches)
    elif isinstance(fetches, (list, tuple, dict)):
        for item in fetches.values() if isinstance(fetches, dict) else fetches:
            if isinstance(item, Node):
                flat.append(item)
            else:
                _flatten(item, flat)
    else:
        raise TypeError(f"cannot fetch a {type(fetches).__name__}: fetch a Node, or a list, tuple or dict of Nodes")
    return flat


def _rebuild(fetches, values):
    """The structure of ``fetches`` with each node replaced by the next of ``values`` (an iterator)."""
    if isinstance(fetches, Node):
        return next(values)
    if isinstance(fetches, dict):
        return {key: _rebuild(item, values) for key, item in fetches.items()}
    rebuilt = [next(values) if isinstance(item, Node) else _rebuild(item, values) for item in fetches]
    return rebuilt if type(fetches) is list else type(fetches)(rebuilt)
