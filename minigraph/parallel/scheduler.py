"""Running a graph's nodes on threads (chapter 07): a scheduler driven by dependency counts.

The serial executor (chapter 02) computes the nodes of its order one after another. But a node
needs only what it depends on, so nodes that do not depend on each other may run at the same
time — on threads, because numpy releases Python's global interpreter lock (the GIL) inside BLAS
and most ufunc loops: while one thread multiplies matrices, another can too. The threaded
executor computes the same bits as the serial one, so everything a node waits for comes from the
serial order:

1. its **inputs** — data dependencies;
2. **state** (:func:`state_dependencies`) — the accesses to one variable keep their serial
   order, except that the reads between two writes may run together: reads still see the value
   from the start of the run and assigns happen after them; ops with hidden state (random
   numbers) draw in their serial order;
3. **memory** (chapter 06's plan) — a node that overwrites a buffer waits until every reader of
   the value it overwrites has finished (``plan.write_after_read()``); a buffer is freed once
   the readers of its last value have finished.

Waits of the third kind join nodes that could otherwise run together: reusing memory costs
concurrency (CSE 599W lecture 9). :func:`plan_for_threads` keeps only the reuses whose waits the
graph implies anyway.

:func:`run_tasks`, the scheduler itself, knows nothing of graphs: tasks, what each waits for, N
threads and a queue of the tasks that are ready. :class:`ThreadedExecutor` turns an executor's
steps into such tasks; ``Session(workers=N)`` uses it. Each run leaves a :class:`Span` per node
in ``executor.trace``.
"""

import concurrent.futures
import functools
import heapq
import itertools
import threading
import time
from collections import defaultdict, namedtuple

from ..memory import MemoryPlan, depths, plan_memory
from ..session import Executor, aliased_variables, name_the_node

Span = namedtuple("Span", "node thread start end")
Span.__doc__ = """One node of a threaded run: the ``thread`` (0, 1, ... in the order the threads
started their first node) that computed it from ``start`` to ``end``, in seconds since the run
began."""

RANDOM_STATE = "random state"  # what ops with op.stateful mutate (see state_dependencies)
HELPERS = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix="minigraph worker")
"""The threads that help the calling thread in :func:`run_tasks`, kept from run to run: starting
a thread takes a tenth of a millisecond, much more on a busy machine."""


def check_workers(workers):
    """Refuse anything but a positive int of threads."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError("workers must be None (one node after another) or a number of threads "
                         f">= 1, not {workers!r}")


# --------------------------------------------------------------------------------- dependencies


def state_dependencies(order):
    """``{node: [nodes it waits for]}``: the waits that state adds to the inputs, so that
    running ``order`` with them computes what running it in order does.

    As in MXNet's engine, where each operation declares the variables it reads and those it
    mutates (``engine.push(fn, read=[...], mutate=[...])``, CSE 599W lecture 10), the accesses
    to one variable keep their order in ``order``, except that reads between two writes may run
    together: a read waits for the last write before it, a write for the last write and every
    read since. A node *reads* the variables its inputs may share memory with (views of a
    variable count: :func:`~minigraph.session.aliased_variables`); an assign op *mutates* the
    variable of its first input. The other ops with hidden state (``op.stateful``: dropout
    masks, drawn from generators they may share) all mutate one :data:`RANDOM_STATE`, so they
    draw in the order of ``order``.
    """
    aliased, position = aliased_variables(order), {node: i for i, node in enumerate(order)}
    last_write, reads_since, waits = {}, defaultdict(list), {}
    for node in order:
        read, mutated = accesses(node, aliased)
        before = {last_write[var] for var in read | mutated if var in last_write}
        for var in read:
            reads_since[var].append(node)
        for var in mutated:
            before.update(reads_since.pop(var, []))
            last_write[var] = node
        if before:
            waits[node] = sorted(before, key=position.get)
    return waits


def accesses(node, aliased):
    """``(read, mutated)``: the sets of variables ``node`` reads and mutates, for the rule of
    :func:`state_dependencies` (``aliased`` is :func:`~minigraph.session.aliased_variables` of the
    order). A variable both read and mutated counts as mutated."""
    mutated = set(aliased[node.inputs[0]]) if node.op.mutates else set()
    if node.op.stateful and not node.op.mutates:  # a random draw (an assign is stateful too)
        mutated.add(RANDOM_STATE)
    read = set().union(*(aliased[x] for x in node.inputs)) - mutated
    return read, mutated


def dependencies(order, plan):
    """``{node: set of nodes it waits for}`` for the nodes of ``order``: its inputs, the waits
    of :func:`state_dependencies`, and those of the memory ``plan`` (``write_after_read()``)."""
    state, memory = state_dependencies(order), plan.write_after_read()
    return {node: {*node.inputs, *state.get(node, ()), *memory.get(node, ())} for node in order}


def levels(order):
    """``{node: level}``: 0 for sources, else one more than the highest level among the node's
    inputs. The nodes of one level do not depend on one another, so they could all run at once;
    the highest level is the length of the longest chain of ops, which no number of threads can
    shorten."""
    return depths(order)  # chapter 06's depths: the level of a node is its depth


# -------------------------------------------------------------------------------- the scheduler


def run_tasks(tasks, waits_for, workers):
    """Run each of ``tasks`` (functions without arguments) once, on ``workers`` threads, each
    after the tasks it waits for: ``waits_for[i]`` lists their indices, all smaller than ``i``
    (the tasks come in an order that respects the waits, so none can wait forever).

    Dependency counts and a ready queue: ``waiting[i]`` counts the unfinished tasks that task
    ``i`` waits for. A worker takes the ready task of smallest index (one worker runs the tasks
    in their order), runs it without holding the lock, then, holding it, decrements the counts
    of the tasks waiting for it and queues those that reach zero. The calling thread is a
    worker; the others come from the pool :data:`HELPERS`. If a task raises, no further task
    starts; the running ones finish, every worker ends its work, and the exception is raised
    here.
    """
    check_workers(workers)
    waiting = [len(before) for before in waits_for]
    unlocks = [[] for _ in tasks]  # task -> the tasks waiting for it
    for task, before in enumerate(waits_for):
        for earlier in before:
            if not 0 <= earlier < task:
                raise ValueError(f"task {task} waits for task {earlier}: a task may only wait "
                                 "for tasks before it")
            unlocks[earlier].append(task)
    ready = [task for task, count in enumerate(waiting) if count == 0]  # sorted: a heap
    changed = threading.Condition()
    unfinished, failures, stopped = len(tasks), [], False

    def work():
        nonlocal unfinished
        finished = None
        while True:
            with changed:
                if finished is not None:
                    unfinished -= 1
                    for later in unlocks[finished]:
                        waiting[later] -= 1
                        if waiting[later] == 0:
                            heapq.heappush(ready, later)
                while not ready and unfinished and not (failures or stopped):
                    changed.wait()
                if failures or stopped or not unfinished:
                    changed.notify_all()  # the other workers may be waiting: let them end too
                    return
                task = heapq.heappop(ready)
                if ready:
                    changed.notify()  # more is ready: wake a worker for it
            try:
                tasks[task]()
            except BaseException as error:
                with changed:
                    failures.append(error)
                    changed.notify_all()
                return
            finished = task

    helpers = [HELPERS.submit(work) for _ in range(workers - 1)]
    try:
        work()
    finally:  # even when the calling thread is interrupted (Ctrl-C), every helper ends its work
        with changed:
            stopped = True
            changed.notify_all()
        concurrent.futures.wait(helpers)
    if failures:
        raise failures[0]


# --------------------------------------------------------------------------------- the executor


class ThreadedExecutor(Executor):
    """An :class:`~minigraph.Executor` whose steps run on ``workers`` threads, with the same
    bits: ``ThreadedExecutor([y, z], workers=2).run({x: data}) -> [y_value, z_value]``.
    ``sort``, ``variables``, ``optimize`` and ``memory`` are the Executor's (``memory="plan"`` means
    :func:`plan_for_threads`); ``run_tasks`` is the scheduler (see :func:`run_tasks`).

    Compiled once: the serial executor's steps become tasks — one per node, one per buffer to
    free — and each task waits for what :func:`dependencies` says (a freeing task: for the
    readers of the buffer's last value). After a run, ``trace`` holds a :class:`Span` per node.
    """

    def __init__(self, fetches, workers, sort=None, variables=None, optimize=False, memory="plan",
                 run_tasks=run_tasks):
        check_workers(workers)
        planner = plan_for_threads if memory == "plan" else memory
        super().__init__(fetches, sort=sort, variables=variables, optimize=optimize, memory=planner)
        self.workers, self.run_tasks, self._spans, self._started = workers, run_tasks, [], 0.0
        self._tasks, self.waits_for = self._tasks_of(self._steps)

    def _tasks_of(self, steps):
        """The tasks, ``(_compute, compute, node, gather inputs, output slot)`` for a node and
        ``(_release, slots)`` for a buffer, in the order of the serial steps; and the indices of
        the tasks each one waits for."""
        plan, computes = self.plan, {step[1]: step for step in steps if step[1] is not None}
        waits, readers = dependencies(self.order, plan), plan.readers()
        views = defaultdict(list)  # buffer -> the slots of views of its values
        for node in self.order:
            if node in computes and plan.base[node] not in (None, node):
                views[plan.buffer[plan.base[node]]].append(computes[node][3])
        last_value = {plan.buffer[v]: v for v in sorted(plan.buffer, key=plan.step.get)}
        released_after, index = plan.released_after(), {}
        tasks, waits_for = [], []
        for step, node in enumerate(self.order):
            if node in computes:
                index[node] = len(tasks)
                tasks.append((_compute, *computes[node]))
                waits_for.append(sorted({index[x] for x in waits[node] if x in index}))
            for buffer in released_after[step]:
                value = last_value[buffer]
                tasks.append((_release, [computes[value][3], *views[buffer]]))
                waits_for.append(sorted(index[n] for n in {value, *readers[value]}))
        return tasks, waits_for

    def run(self, feed_dict=None):
        """Compute the fetches on the threads; returns their values as a list."""
        values = self._fed(feed_dict)  # the slots: constants, variables and the checked feeds
        self._spans, self._started = [], time.perf_counter()
        tasks = [functools.partial(function, values, self._spans, *task)
                 for function, *task in self._tasks]
        self.run_tasks(tasks, self.waits_for, self.workers)
        return [values[i] for i in self._fetch_slots]

    @property
    def trace(self):
        """The :class:`Span` of each node of the last run, in the order they started."""
        spans, threads = sorted(self._spans, key=lambda span: span[2]), {}
        for node, thread, start, end in spans:
            threads.setdefault(thread, len(threads))
        return [Span(node, threads[thread], start - self._started, end - self._started)
                for node, thread, start, end in spans]


def _compute(values, spans, compute, node, gather_inputs, output):
    """The task of a node: compute its value into its slot; record when, and on which thread."""
    start = time.perf_counter()
    try:
        values[output] = compute(node, gather_inputs(values))
    except Exception as error:
        name_the_node(error, node)
        raise
    spans.append((node, threading.get_ident(), start, time.perf_counter()))


def _release(values, spans, slots):
    """The task that frees a buffer: empty its slots (the buffer's and its views')."""
    for slot in slots:
        values[slot] = None


def parallelism(trace):
    """How many nodes ran at once on average in a traced run: the nodes' total time over the
    time from the first start to the last end (1 for a serial run; at most the number of
    threads)."""
    if not trace:
        raise ValueError("parallelism: the trace is empty")
    busy = sum(span.end - span.start for span in trace)
    return busy / (max(span.end for span in trace) - min(span.start for span in trace))


# --------------------------------------------------------------------------------------- memory


def plan_for_threads(order, fetches):
    """Chapter 06's plan (:func:`~minigraph.memory.plan_memory`) without the reuses that would
    make a node wait for a node it does not depend on anyway (a planner:
    ``memory=plan_for_threads``).

    A value that overwrites another waits for it and its readers (``plan.write_after_read()``).
    If all of them are among the value's ancestors, the wait costs nothing and the value keeps
    its buffer. If not, the reuse would hold back a node that could run beside them: the value
    starts a new buffer instead (the values that overwrite it later follow it there). More
    memory, as much concurrency as the graph allows.
    """
    plan = plan_memory(order, fetches)
    ancestors, position, waits = ancestor_masks(order), plan.step, plan.write_after_read()
    buffer, new_buffers = {}, itertools.count()
    for value in sorted(plan.buffer, key=position.get):
        old = plan.overwrites.get(value)
        implied = old is not None and all(ancestors[value] >> position[w] & 1
                                          for w in waits[value])
        buffer[value] = buffer[old] if implied else next(new_buffers)
    return MemoryPlan(order, fetches, plan.lifetime, buffer)


def ancestor_masks(order):
    """``{node: mask}``: bit ``i`` of ``mask`` is set if the node depends on ``order[i]``."""
    position, mask = {node: i for i, node in enumerate(order)}, {}
    for node in order:
        mask[node] = 0
        for x in node.inputs:
            mask[node] |= mask[x] | 1 << position[x]
    return mask
