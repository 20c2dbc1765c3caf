r"""Checks of chapter 07, parallelism.

- 7.1 ``read_mutate_waits(accesses)``: what each task waits for when each declares the variables it reads and
  those it mutates (MXNet's ``engine.push(fn, read=[...], mutate=[...])``); checked by the order it imposes:
  the same partial order as the rule's — every write after the last write and every read since, every read
  after the last write, and nothing more (reads between two writes run together).
- 7.2 ``run_tasks(tasks, waits_for, workers)``: a scheduler with dependency counts and a ready queue on
  threads; checked by what the tasks record (each ran once, after what it waits for; two independent tasks
  met at a barrier; a failing task stops what waits for it and its error comes back), then as the scheduler
  of minigraph's threaded executor: the same bits as the serial executor.
- 7.3 ``ring_allreduce(network)``: the ring on a simulated :class:`~minigraph.parallel.Network`, for 1 to 8
  workers and sizes that N does not divide: the sum everywhere, only right neighbours, 2(N - 1) rounds and
  2(N - 1)/N M bytes per worker.
- 7.4 ``ring_allreduce_mpi(comm, buffer)``: the same ring on real MPI ranks with ``Sendrecv``, launched on
  2, 3 and 4 ranks by :mod:`.ch07_ranks`.
- 7.5 ``split_feed(feed_dict, parts)`` and ``sharded_gradient(gradient, feed_dict, workers)``: balanced
  contiguous shards, whose gradients weighted by n_k / B are the batch's gradient (shards unequal).
- 7.6 ``accumulated_gradient(gradient, feed_dict, micro_batch_size)``: the same sum over micro-batches, one
  after another, holding only a running total.
- 7.7 ``data_parallel_step(sessions, step, feed_dict)``: the learner's shards and ring train MNIST on four
  simulated workers, step for step as one big-batch SGD (the history comes back as ``check(...).value``).

Each check compares with its own expectations: the waits the rule gives, worked out here with their reasons;
what the tasks recorded; sums of distinct powers of two (who contributed is in the binary digits); the
big-batch gradient from ``mg.gradients``; SGD on the whole batch in a single Session.
"""

import dis
import inspect
import json
import math
import sys
import tempfile
import textwrap
import threading
import time
import weakref
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from .. import nn, ops, optim
from ..autodiff import gradients
from ..graph import Variable, placeholder
from ..parallel import allreduce, data_parallel, mpi, scheduler
from ..parallel.allreduce import chunk_bounds
from ..parallel.training import endless_batches, evaluate, mlp
from ..session import Executor, Session, aliased_variables
from . import ch07_ranks
from .framework import CheckFailure, Passed, Text, exercise, expect_close, expect_equal, is_close, read_only
from .training import mnist_splits, record
from .report import is_learner_file

# ---------------------------------------------------------------------------------------------- 7.1


def _names(variables):
    return ", ".join(repr(v) for v in sorted(variables))


def _access_text(reads, mutates):
    """``reads 'W', 'b'; mutates 'm'``: what a task declares."""
    parts = [f"reads {_names(reads)}" if reads else "", f"mutates {_names(mutates)}" if mutates else ""]
    return "; ".join(part for part in parts if part) or "touches no variable"


def _rule_waits(accesses):
    """``{(earlier, later): why}``: the waits the read/mutate rule gives, worked out here, with the reason of
    each. A variable a task both reads and mutates counts as mutated."""
    last_write, reads_since, waits = {}, defaultdict(list), {}
    for task, (reads, mutates) in enumerate(accesses):
        reads = set(reads) - set(mutates)
        for var in sorted(reads):
            if var in last_write:
                waits.setdefault((last_write[var], task), f"task {task} reads {var!r}, which task {last_write[var]} "
                                 "mutates before it: the read must see that write")
        for var in sorted(mutates):
            for reader in reads_since.pop(var, []):
                waits.setdefault((reader, task), f"task {task} mutates {var!r}, which task {reader} reads before it: "
                                 "that read must see the old value, so it has to finish first")
            if var in last_write:
                waits.setdefault((last_write[var], task), f"task {task} mutates {var!r} after task {last_write[var]} "
                                 "did: writes to one variable keep their order")
            last_write[var] = task
        for var in reads:
            reads_since[var].append(task)
    return waits


def _wait_lists(waits, count):
    """The pairs ``(earlier, later)`` of ``waits`` as one sorted list per task of the tasks it waits for."""
    lists = [[] for _ in range(count)]
    for earlier, later in sorted(waits):
        lists[later].append(earlier)
    return lists


def _ancestors(count, waits_for):
    """``ancestors[i]``: a bit mask of the tasks task ``i`` waits for, directly or through others."""
    masks = []
    for task in range(count):
        mask = 0
        for earlier in waits_for[task]:
            mask |= masks[earlier] | 1 << earlier
        masks.append(mask)
    return masks


def _expect_wait_lists(got, count, given):
    """``got`` as a list of sorted lists of ints, each naming earlier tasks; a report otherwise."""
    if not isinstance(got, (list, tuple)):
        raise CheckFailure(f"read_mutate_waits should return a list with one list of task numbers per task, not a "
                           f"{type(got).__name__}", input=given, got=got)
    if len(got) != count:
        raise CheckFailure(f"read_mutate_waits returned {len(got)} lists for {count} tasks: one per task, [] for a "
                           "task that waits for nothing", input=given, got=got)
    waits = []
    for task, entry in enumerate(got):
        if not isinstance(entry, (list, tuple, set, frozenset)):
            raise CheckFailure(f"the waits of task {task} should be a list of task numbers, not a "
                               f"{type(entry).__name__}", input=given, got=got)
        for earlier in entry:
            if not isinstance(earlier, (int, np.integer)) or isinstance(earlier, bool):
                raise CheckFailure(f"the waits of task {task} hold {earlier!r}: a wait is the number of an earlier "
                                   "task", input=given, got=got)
            if not 0 <= earlier < task:
                raise CheckFailure(f"task {task} waits for task {earlier}: a task waits only for tasks before it "
                                   "(in this order, one after another, they are correct)", input=given, got=got)
        waits.append(sorted(int(e) for e in entry))
    return waits


def _why_not(earlier, later, accesses):
    """Why task ``later`` need not wait for task ``earlier`` (their waits are not implied by the rule)."""
    (reads_a, mutates_a), (reads_b, mutates_b) = ([set(r), set(m)] for r, m in (accesses[earlier], accesses[later]))
    shared = (reads_a | mutates_a) & (reads_b | mutates_b)
    if not shared:
        return f"tasks {earlier} and {later} touch no variable in common: nothing orders them"
    if not shared & (mutates_a | mutates_b):
        return (f"tasks {earlier} and {later} both only read {_names(shared)}, and no task mutates it between them: "
                "reads between two writes may run together")
    return f"nothing in the rule makes task {later} wait for task {earlier}"


def _expect_same_order(got, accesses, description, labels=None):
    """Fail unless the waits ``got`` impose the partial order of the rule: no fewer and no more. The report lists
    the tasks (around the two a failure is about, when there are many)."""
    count = len(accesses)

    def given(*tasks):
        return {"tasks": _listed(accesses, labels, tasks), "case": Text(description)}

    waits = _expect_wait_lists(got, count, given())
    rule = _rule_waits(accesses)
    expected = _wait_lists(rule, count)
    theirs, ours = _ancestors(count, waits), _ancestors(count, expected)
    for (earlier, later), why in sorted(rule.items(), key=lambda item: (item[0][1], item[0][0])):
        if not theirs[later] >> earlier & 1:
            raise CheckFailure(f"task {later} must wait for task {earlier} (directly or through other tasks): {why}",
                               input=given(earlier, later), expected={later: expected[later]},
                               got={later: waits[later]})
    for later in range(count):
        for earlier in waits[later]:
            if not ours[later] >> earlier & 1:
                raise CheckFailure(f"task {later} waits for task {earlier}, which it need not: "
                                   f"{_why_not(earlier, later, accesses)}. Every needless wait keeps two tasks from "
                                   "running at once", input=given(earlier, later),
                                   expected={later: expected[later]}, got={later: waits[later]})
    return len(rule)


def _listed(accesses, labels=None, around=()):
    """The tasks, one a line; of many, only those ``around`` (and the first ones when none is given)."""
    shown = set(range(len(accesses))) if len(accesses) <= 16 else set(around) or set(range(8))
    lines = []
    for task, (reads, mutates) in enumerate(accesses):
        if task in shown:
            label = f"   ({labels[task]})" if labels else ""
            lines.append(f"{task:>3}: {_access_text(reads, mutates)}{label}")
        elif not lines or lines[-1] != "  ...":
            lines.append("  ...")
    return Text("\n".join(lines))


def _hand_made_accesses():
    """``(description, accesses)``: small cases, each with a trap."""
    yield "reads between writes, and a write after them", [
        (set(), {"W"}), ({"W"}, set()), ({"W"}, set()), (set(), {"W"}), ({"W"}, set())]
    yield "two variables; a task that reads and mutates one (an update W -= g)", [
        ({"W"}, set()), ({"W"}, {"g"}), ({"g", "W"}, {"W"}), ({"W"}, set()), ({"g"}, set()), (set(), {"g"})]
    yield "tasks on different variables, and random draws (all mutate one random state)", [
        ({"a"}, set()), ({"b"}, set()), (set(), {"random state"}), ({"a"}, {"random state"}), (set(), {"b"}),
        ({"a", "b"}, set()), (set(), set())]


def _by_name(variables):
    """The names of ``variables`` (the scheduler's ``RANDOM_STATE`` is a name already)."""
    return {getattr(v, "name", v) for v in variables}


def _training_accesses():
    """The tasks of one training step (dropout, Adam) in the serial executor's order, with what each reads
    and mutates (by name), as minigraph's engine sees them."""
    model_x, labels, loss = _dropout_mlp(seed=3, hidden=8, inputs=6)
    order = Executor([loss, optim.Adam(1e-3).minimize(loss)]).order
    aliased = aliased_variables(order)
    accesses, names = [], []
    for node in order:
        if not node.inputs:
            continue
        reads, mutates = scheduler.accesses(node, aliased)
        accesses.append((_by_name(reads), _by_name(mutates)))
        names.append(f"{node.name}: {node.op.name}")
    return accesses, names


@exercise(
    "7.1",
    "read/mutate dependencies",
    expects="read_mutate_waits(accesses)",
    nudge="Walk the tasks in order, remembering per variable its last writer and the readers since: a read waits "
    "for the last writer, a write for it and every reader since; a read never waits for a read.",
    hint="Keep two dicts: last_write[var] (a task number) and readers[var] (a list of the tasks that read var since "
    "that write). For task t with (reads, mutates): drop from reads what t also mutates; for each var it reads, add "
    "last_write[var] if there is one; for each var it mutates, add last_write[var] and every task of readers[var], "
    "then set last_write[var] = t and empty readers[var]; finally append t to readers[var] for each var it reads. "
    "Return the sorted waits of each task.",
    unavailable=[scheduler.state_dependencies, scheduler.dependencies],
)
def _(read_mutate_waits):
    count = 0
    for description, accesses in _hand_made_accesses():
        count += _expect_same_order(read_mutate_waits([(set(r), set(m)) for r, m in accesses]), accesses, description)
    accesses, names = _training_accesses()
    count += _expect_same_order(read_mutate_waits([(set(r), set(m)) for r, m in accesses]), accesses,
                                "one training step of an MLP with dropout and Adam", names)
    return (f"3 small cases and a training step with dropout and Adam ({len(accesses)} tasks): the order of the "
            f"read/mutate rule, no wait more ({count} waits in all)")


# ---------------------------------------------------------------------------------------------- 7.2


class _Log:
    """What a check's tasks did, in the order it happened: ``("start" | "end", task, thread)``."""

    def __init__(self):
        self.lock, self.events = threading.Lock(), []

    def task(self, index, work=None):
        def run():
            with self.lock:
                self.events.append(("start", index, threading.get_ident()))
            if work is not None:
                work()
            with self.lock:
                self.events.append(("end", index, threading.get_ident()))

        return run

    def snapshot(self):
        with self.lock:
            return list(self.events)


def _expect_ran(events, waits_for, given):
    """Every task started once, after each task it waits for had ended, and ended."""
    starts = Counter(task for kind, task, _ in events if kind == "start")
    position = {(kind, task): at for at, (kind, task, _) in enumerate(events)}
    for task in range(len(waits_for)):
        if starts[task] == 0:
            raise CheckFailure(f"task {task} never ran: every task runs once", input=given)
        if starts[task] > 1:
            raise CheckFailure(f"task {task} ran {starts[task]} times: every task runs once", input=given)
        if ("end", task) not in position:
            raise CheckFailure(f"your function returned while task {task} was still running: wait until every task "
                               "has finished", input=given)
    for task, before in enumerate(waits_for):
        for earlier in before:
            if position.get(("end", earlier), len(events)) > position[("start", task)]:
                raise CheckFailure(f"task {task} started before task {earlier}, which it waits for, had finished: a "
                                   "task is ready only when the count of unfinished tasks it waits for is zero",
                                   input=given)


def _random_waits(count, seed):
    """Waits of ``count`` tasks: each waits for 0 to 3 random earlier ones."""
    rng = np.random.default_rng(seed)
    return [sorted(set(rng.choice(task, size=min(task, int(rng.integers(0, 4))), replace=False).tolist()))
            for task in range(count)]


def _waits_text(waits_for):
    return Text(", ".join(f"{task}: {before}" for task, before in enumerate(waits_for)))


def _expect_scheduled(run_tasks, waits_for, workers, description, work=None):
    log = _Log()
    given = {"waits_for": _waits_text(waits_for), "workers": workers, "case": Text(description)}
    run_tasks([log.task(i, work) for i in range(len(waits_for))], [list(w) for w in waits_for], workers)
    _expect_ran(log.snapshot(), waits_for, given)


def _expect_at_once(run_tasks):
    """Two tasks that wait for nothing meet at a barrier: on two threads, they must run at the same time."""
    barrier, met = threading.Barrier(2, timeout=2), []

    def meet():
        try:
            barrier.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            pass

    waits_for = [[], [], [0, 1]]
    log = _Log()
    given = {"waits_for": _waits_text(waits_for), "workers": 2,
             "case": Text("tasks 0 and 1 each wait (2 s at most) until the other has started too")}
    run_tasks([log.task(0, meet), log.task(1, meet), log.task(2)], waits_for, 2)
    _expect_ran(log.snapshot(), waits_for, given)
    if len(met) < 2:
        threads = len({thread for _, _, thread in log.snapshot()})
        raise CheckFailure(f"with 2 workers, tasks 0 and 1, which wait for nothing, never ran at the same time (your "
                           f"function used {threads} thread(s)): start workers - 1 threads besides the calling one, "
                           "each taking ready tasks from the queue", input=given)


def _expect_failure_stops(run_tasks):
    """Task 1 raises: what waits for it never runs, the error comes back, and nothing starts afterwards."""
    error = ValueError("task 1 failed (on purpose)")
    waits_for = [[], [0], [1], [], [2, 3]]

    def fail():
        raise error

    log = _Log()
    given = {"waits_for": _waits_text(waits_for), "workers": 2, "case": Text("task 1 raises ValueError")}
    tasks = [log.task(i, fail if i == 1 else None) for i in range(len(waits_for))]
    try:
        run_tasks(tasks, waits_for, 2)
    except ValueError as raised:
        if raised is not error:
            raise
    else:
        raise CheckFailure("task 1 raised ValueError, but your function returned as if all went well: catch the "
                           "error in the worker, stop taking tasks, and raise it once every worker has ended",
                           input=given)
    events = log.snapshot()
    time.sleep(0.05)
    if log.snapshot() != events:
        raise CheckFailure("a task started after your function had raised task 1's error: let every worker end "
                           "before raising", input=given)
    ran = sorted({task for kind, task, _ in events if kind == "start"} & {2, 4})
    if ran:
        through = " (through task 2)" if ran[0] == 4 else ""
        raise CheckFailure(f"task {ran[0]} ran although it waits{through} for task 1, which failed: once a task "
                           "raises, no task that waits for it may start", input=given)


def _dropout_mlp(seed=0, hidden=64, inputs=32, batch=16):
    """A small MLP with dropout: ``(x, labels, loss)``, its masks drawn from a generator of its own."""
    rng = np.random.default_rng(seed)
    x = placeholder("x", shape=(batch, inputs))
    labels = placeholder("labels", shape=(batch,), dtype="int64")
    h = nn.dense(x, hidden, activation=ops.relu, rng=rng, name="hidden")
    h = nn.dropout(h, 0.3, rng=rng)
    logits = nn.dense(h, 10, rng=rng, name="output")
    return x, labels, ops.reduce_mean(ops.softmax_cross_entropy(logits, labels), name="loss")


def _expect_same_bits(run_tasks):
    """minigraph's threaded executor with the learner's scheduler: the serial executor's bits."""
    rng = np.random.default_rng(0)
    x = placeholder("x", shape=(48, 48))
    ends = []
    for chain in range(4):
        h = x
        for depth in range(4):
            W = Variable((rng.standard_normal((48, 48)) / 7).astype(np.float32), name=f"W{chain}{depth}")
            h = ops.tanh(ops.matmul(h, W))
        ends.append(h)
    feed = {x: rng.standard_normal((48, 48)).astype(np.float32)}
    threaded = scheduler.ThreadedExecutor(ends, 2, run_tasks=run_tasks)
    given = Text("four chains of tanh(h @ W), 4 layers each, on 2 threads")
    for end, got, want in zip(ends, threaded.run(feed), Executor(ends).run(feed)):
        expect_equal(got, want, input=given, what=f"the value of {end.name}")
    runs = []
    for threads in (None, 2):
        xs, labels, loss = _dropout_mlp()
        update = optim.Adam(1e-2).minimize(loss)
        executor = (Executor([loss, update]) if threads is None
                    else scheduler.ThreadedExecutor([loss, update], threads, run_tasks=run_tasks))
        data = np.random.default_rng(1)
        runs.append([executor.run({xs: data.standard_normal((16, 32)).astype(np.float32),
                                   labels: data.integers(0, 10, 16)})[0] for _ in range(5)])
    given = Text("5 training steps of an MLP with dropout and Adam, on 2 threads")
    for step, (want, got) in enumerate(zip(*runs), start=1):
        expect_equal(got, want, input=given, what=f"the loss at step {step}")


@exercise(
    "7.2",
    "a ready-queue scheduler",
    expects="run_tasks(tasks, waits_for, workers)",
    nudge="Count per task the unfinished tasks it waits for; a worker takes a task whose count is zero, runs it "
    "without the lock, then, with the lock, decrements the counts of the tasks that wait for it.",
    hint="Under one threading.Condition keep: waiting[i] = len(waits_for[i]); unlocks[j], the tasks that wait for j; "
    "a list of ready tasks; the number of unfinished tasks; the first error. A worker loops: with the condition, "
    "wait() while nothing is ready, nothing failed and tasks remain; return if something failed or all is done "
    "(notify_all first); else pop a task. Run it outside the lock (except Exception: store the error, notify_all, "
    "return). Then, with the condition, decrement unfinished and waiting[k] for each k in unlocks[task], appending "
    "those that reach 0 to the ready list, and notify_all. Start workers - 1 threads (daemon=True) on the worker "
    "loop, run it in the calling thread too, join the threads, and raise the stored error if there is one.",
    unavailable=[scheduler.run_tasks],
    time_limit=40,
)
def _(run_tasks):
    _expect_scheduled(run_tasks, [[], [0], [1], [0], [2, 3]], 1, "a diamond on one worker")
    _expect_at_once(run_tasks)
    _expect_scheduled(run_tasks, _random_waits(40, seed=7), 3, "40 tasks, random waits, on 3 workers",
                      work=lambda: time.sleep(0.001))
    _expect_scheduled(run_tasks, [[] for _ in range(6)], 4, "6 tasks that wait for nothing, on 4 workers")
    _expect_scheduled(run_tasks, [], 2, "no task at all")
    _expect_failure_stops(run_tasks)
    _expect_same_bits(run_tasks)
    return ("each task once and after its waits, two tasks at once on 2 threads, a failure stops what waits for it; "
            "as the threaded executor's scheduler, the serial executor's bits (chains, 5 steps of Adam with dropout)")


# ---------------------------------------------------------------------------------------------- 7.3


def _who(value, workers):
    """What a value of a tagged run holds, in words."""
    total = 2**workers - 1
    if value != int(value) or not 0 <= value <= total:
        return f"{value:g}, which is no sum of distinct workers' data: some data was added twice"
    inside = allreduce.contributors(value)
    missing = [w for w in range(workers) if w not in inside]
    return f"{value:g}: the data of workers {inside}, not of {missing}"


def _ring_bytes(workers, size, itemsize):
    """The bytes each worker sends in the ring, 2(N - 1)/N M, rounded down (exact when N divides the size)."""
    return 2 * (workers - 1) * size * itemsize // workers


def _sent_as_the_ring(sent, workers, size, itemsize):
    """Whether a worker that sent ``sent`` bytes sent what the ring does: 2(N - 1) chunks, none larger than the
    largest chunk, and exactly 2(N - 1)/N M bytes when N divides the size."""
    bound = 2 * (workers - 1) * math.ceil(size / workers) * itemsize
    return sent <= bound and (size % workers != 0 or sent == _ring_bytes(workers, size, itemsize))


def _expect_ring(network, workers, size, given):
    rounds = network.rounds
    for number, round_ in enumerate(rounds, start=1):
        for t in round_.transfers:
            if t.destination != (t.source + 1) % workers:
                raise CheckFailure(f"round {number} sends from worker {t.source} to worker {t.destination}: in a ring "
                                   f"each worker sends only to its right neighbour, (i + 1) % {workers}", input=given)
    sent = network.bytes_sent
    if workers > 1 and not sent.any():
        raise CheckFailure("no worker sent anything: a worker may change only its own buffer, through what it "
                           "receives in network.exchange", input=given)
    if len(rounds) != 2 * (workers - 1):
        took = f"{len(rounds)} round" + ("s" if len(rounds) != 1 else "")
        raise CheckFailure(f"your schedule took {took}; the ring takes 2(N - 1) = {2 * (workers - 1)}: "
                           "N - 1 of reduce-scatter, then N - 1 of all-gather", input=given)
    for worker, value in enumerate(network.results()):
        wrong = np.flatnonzero(value != 2**workers - 1)
        if len(wrong):
            index = int(wrong[0])
            raise CheckFailure(f"after your all-reduce, element {index} of worker {worker} holds "
                               f"{_who(value[index], workers)}. Every element must hold {2**workers - 1}, the data "
                               "of all workers", input=given)
    itemsize = network.buffers.itemsize
    for worker in range(workers):
        if not _sent_as_the_ring(sent[worker], workers, size, itemsize):
            raise CheckFailure(f"worker {worker} sent {sent[worker]} bytes; the ring sends 2(N - 1)/N M = "
                               f"{_ring_bytes(workers, size, itemsize)} bytes per worker (M = {size * itemsize} "
                               "bytes): each round a chunk of M/N bytes", input=given)


@exercise(
    "7.3",
    "ring all-reduce, simulated",
    expects="ring_allreduce(network)",
    nudge="Reduce-scatter: in step s worker i sends chunk i - s to worker i + 1, which adds it; all-gather: in step "
    "s worker i sends chunk i + 1 - s, which overwrites; N - 1 rounds each, chunk numbers modulo N.",
    hint="n = network.workers. For step in range(n - 1), call network.exchange with one Transfer per worker i: from "
    "i to (i + 1) % n, of network.chunk(i - step) (a (start, stop) pair, the index taken modulo n), add=True, and "
    "the phase name \"reduce-scatter\". After those rounds worker i holds the finished chunk i + 1. Then n - 1 "
    "more rounds of Transfers of network.chunk(i + 1 - step) with add=False (\"all-gather\").",
    unavailable=[allreduce.ring_allreduce, allreduce.tree_allreduce, allreduce.parameter_server_allreduce,
                 mpi.ring_allreduce],
)
def _(ring_allreduce):
    for workers in range(1, 9):
        for size in (24, 13, 3):
            network = allreduce.tagged(ring_allreduce, workers, size)  # worker i holds 2**i everywhere
            given = {"workers": workers, "elements": size, "worker i holds": Text("2**i everywhere")}
            _expect_ring(network, workers, size, given)
    rng = np.random.default_rng(0)
    for workers, size, dtype in ((5, 1001, np.float64), (3, 500, np.float32)):
        arrays = [rng.standard_normal(size).astype(dtype) for _ in range(workers)]
        network = allreduce.simulate(ring_allreduce, arrays)
        total = np.sum(np.stack(arrays).astype(np.float64), axis=0)
        for worker, value in enumerate(network.results()):
            expect_close(value, total, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5,
                         input={"workers": workers, "arrays": Text(f"{size} random {np.dtype(dtype).name} each")},
                         what=f"worker {worker}'s result")
    return ("1 to 8 workers, sizes 24, 13 and 3: the sum everywhere, right neighbours only, 2(N - 1) rounds and "
            "2(N - 1)/N M bytes per worker; random float32 and float64 arrays as np.sum")


# ---------------------------------------------------------------------------------------------- 7.4

MPI_RANKS, MPI_TIMEOUT = (2, 3, 4), 15  # seconds a launch may take: a few are needed, only a deadlock takes more


def _global_names(code):
    """The global names a code object (and the functions defined in it) reads."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for constant in code.co_consts:
        if inspect.iscode(constant):
            names |= _global_names(constant)
    return names


def _module_source(function):
    """The source of a module that defines the learner's ``function`` for new processes (the ranks): its code,
    the code of the notebook's functions it calls, imports for the modules and installed functions it names,
    and the plain constants it reads. Anything else of the notebook cannot travel: a report says so."""
    imports, definitions, done = [], [], set()

    def add(fn):
        if fn in done:
            return
        done.add(fn)
        if fn.__name__ == "<lambda>":
            raise CheckFailure("the ranks need your function's source: define it with def, not lambda")
        if fn.__code__.co_freevars:
            raise CheckFailure(f"{fn.__name__} uses {', '.join(fn.__code__.co_freevars)} of the function around "
                               "it, which the ranks — new Python processes — cannot receive: define it at the top "
                               "level of a cell")
        try:
            definitions.append(textwrap.dedent(inspect.getsource(fn)))
        except (OSError, TypeError):
            raise CheckFailure(f"the check cannot read the source of {fn.__name__}, which the ranks need: define it "
                               "in a cell of the notebook") from None
        for name in sorted(_global_names(fn.__code__)):
            if name not in fn.__globals__:
                continue  # a builtin, or a name defined only later
            value = fn.__globals__[name]
            if inspect.ismodule(value):
                imports.append(f"import {value.__name__} as {name}")
            elif inspect.isfunction(value) and is_learner_file(value.__code__.co_filename):
                add(value)
            elif isinstance(value, (bool, int, float, str, type(None))):
                imports.append(f"{name} = {value!r}")
            elif getattr(sys.modules.get(getattr(value, "__module__", None)), getattr(value, "__name__", ""),
                         None) is value:
                imports.append(f"from {value.__module__} import {value.__name__} as {name}")
            else:
                raise CheckFailure(f"your function reads {name}, a {type(value).__name__} of the notebook that the "
                                   "ranks — new Python processes — cannot receive: compute it inside the function")

    add(function)
    return "\n".join(sorted(set(imports))) + "\n\n\n" + "\n\n".join(reversed(definitions))


def _launch(ranks, module, name, folder):
    """Run the learner's module on ``ranks`` ranks; return each rank's results, or fail with what went wrong."""
    given = {"ranks": ranks, "buffers": Text(", ".join(f"{n:,} {dtype}" for n, dtype in ch07_ranks.CASES))}
    try:
        mpi.mpirun(ranks, "minigraph.checks.ch07_ranks", module, name, folder, timeout=MPI_TIMEOUT)
    except mpi.MPIError as error:
        failed = sorted(int(path.stem.removeprefix("error")) for path in Path(folder).glob("error*.json"))
        if failed:
            rank = failed[0]
            report = json.loads((Path(folder) / f"error{rank}.json").read_text())
            if report["not_implemented"] is not None:  # the stub, or another exercise's
                raise NotImplementedError(report["not_implemented"]) from None
            where = f" at the line `{report['line'].strip()}`" if report["line"] else ""
            raise CheckFailure(f"on rank {rank} of {ranks}, your code {report['error']}{where}",
                               input=given) from None
        if error.result is not None and "did not finish within" in str(error):
            raise CheckFailure(f"the {ranks} ranks did not finish within {MPI_TIMEOUT} s: a deadlock? If every rank "
                               "first Sends and then Recvs, each waits for its neighbour to receive — for a large "
                               "message MPI waits for the receiver. Sendrecv sends and receives at once",
                               input=given) from None
        raise CheckFailure(f"MPI could not run the check: {error}") from None
    return [json.loads((Path(folder) / f"rank{rank}.json").read_text()) for rank in range(ranks)]


def _expect_mpi_sums(results, ranks):
    for rank, cases in enumerate(results):
        for case in cases:
            size, dtype = case["elements"], case["dtype"]
            given = {"ranks": ranks, "buffer": Text(f"{size:,} {dtype} on each rank (whole numbers)")}
            if case["wrong"]:
                index, got, want = case["wrong"]
                if case["returned_sum"]:
                    raise CheckFailure(f"your function returned the sum but left buffer unchanged on rank {rank}: "
                                       "the all-reduce works in place — write the results into buffer", input=given)
                raise CheckFailure(f"after your all-reduce, element {index:,} of rank {rank}'s buffer is {got:g}; the "
                                   f"sum of the ranks' buffers there is {want:g}", input=given)
            itemsize = np.dtype(dtype).itemsize
            if not _sent_as_the_ring(case["bytes"], ranks, size, itemsize):
                raise CheckFailure(f"rank {rank} sent {case['bytes']:,} bytes; the ring sends 2(N - 1)/N M = "
                                   f"{_ring_bytes(ranks, size, itemsize):,} per rank (M = {size * itemsize:,} "
                                   "bytes): a chunk of M/N bytes in each of its 2(N - 1) steps", input=given)


@exercise(
    "7.4",
    "ring all-reduce on MPI ranks",
    expects="ring_allreduce_mpi(comm, buffer)",
    nudge="The ring of 7.3 from one rank's point of view: each step, Sendrecv one chunk to rank + 1 while receiving "
    "one from rank - 1 — added to yours in reduce-scatter, copied over yours in all-gather.",
    hint="Your neighbours are right = rank + 1 and left = rank - 1, both modulo the number of ranks n. Write a "
    "small chunk(c) returning the slice of buffer with the bounds of 7.3 (c modulo n); a slice is a view, so writing "
    "into it writes into buffer. Reduce-scatter, n - 1 steps: Sendrecv your chunk rank - s to the right while "
    "receiving, from the left, into a fresh array (np.empty_like) the size of chunk rank - s - 1, then add that array "
    "into chunk rank - s - 1. All-gather, n - 1 steps: Sendrecv chunk rank + 1 - s to the right, receiving from the "
    "left straight into chunk rank - s (recvbuf=...).",
    unavailable=ch07_ranks.UNAVAILABLE,
    time_limit=90,
)
def _(ring_allreduce_mpi):
    source = _module_source(ring_allreduce_mpi)
    with tempfile.TemporaryDirectory(prefix="minigraph-7.4-") as folder:
        module = Path(folder) / "learner_allreduce.py"
        module.write_text(source)
        for ranks in MPI_RANKS:
            results = Path(folder) / f"{ranks} ranks"
            results.mkdir()
            _expect_mpi_sums(_launch(ranks, module, ring_allreduce_mpi.__name__, results), ranks)
    return (f"on {', '.join(map(str, MPI_RANKS))} MPI ranks, buffers of 2 to 300,000 elements: the sum on every "
            "rank, 2(N - 1)/N M bytes sent per rank")


# ---------------------------------------------------------------------------------------------- 7.5 and 7.6

SHARDING = [data_parallel.split_batch, data_parallel.GradientStep.gradient, data_parallel.DataParallel.gradients]
"""minigraph's own sharding and sharded gradients, which 7.5 and 7.6 ask the learner to write."""


class _Gradient:
    """The ``gradient(feed_dict)`` the learner's code calls: the gradients (float64) of the mean loss of a small
    MLP on the examples fed, as a list of read-only arrays. Records the examples of each call, and the arrays
    it returned (to see which are still held)."""

    def __init__(self, batch, seed=0):
        self.model = mlp(hidden=16, seed=seed, dtype="float64")
        self.nodes = gradients(self.model.loss, self.model.variables)
        self.session = Session()
        rng = np.random.default_rng(seed)
        self.feed = {self.model.x: rng.standard_normal((batch, 784)), self.model.y: rng.integers(0, 10, batch)}
        self.example = {row.tobytes(): index for index, row in enumerate(self.feed[self.model.x])}
        self.calls, self.returned, self.held = [], [], []

    def __call__(self, feed_dict):
        if not isinstance(feed_dict, dict) or set(feed_dict) != set(self.feed):
            raise CheckFailure("gradient(feed_dict) needs a feed dict with the keys of the batch's, each value a part "
                               "of the batch's value", got=feed_dict)
        images = np.asarray(feed_dict[self.model.x])
        if len(images) == 0:
            raise CheckFailure("gradient was fed an empty part of the batch: every part needs at least one example")
        rows = [self.example.get(np.asarray(row, np.float64).tobytes()) for row in images.reshape(len(images), -1)]
        if None in rows or len(images) != len(feed_dict[self.model.y]):
            raise CheckFailure("gradient was fed images that are not examples of the batch (or images and labels of "
                               "different lengths): cut every value of the feed dict with the same slice")
        self.held.append([index for index, refs in enumerate(self.returned) if any(r() is not None for r in refs)])
        self.calls.append(rows)
        values = [read_only(v) for v in self.session.run(self.nodes, {self.model.x: images,
                                                                       self.model.y: feed_dict[self.model.y]})]
        self.returned.append([weakref.ref(v) for v in values])
        return values

    def batch_gradient(self):
        return self.session.run(self.nodes, self.feed)

    def shard_gradient(self, rows):
        return self.session.run(self.nodes, {node: value[rows] for node, value in self.feed.items()})

    def names(self):
        return [f"the gradient of {v.name}" for v in self.model.variables]


def _expect_parts(grad, batch, given, word):
    """The calls covered the batch exactly once, in parts; returns the parts' sizes."""
    used = Counter(row for rows in grad.calls for row in rows)
    twice = sorted(row for row, times in used.items() if times > 1)
    if twice:
        raise CheckFailure(f"example {twice[0]} is in {used[twice[0]]} {word}s: each example belongs to one",
                           input=given, got=[len(rows) for rows in grad.calls])
    if len(used) != batch:
        missing = sorted(set(range(batch)) - set(used))
        raise CheckFailure(f"your {word}s hold {len(used)} of the {batch} examples: {len(missing)} (from example "
                           f"{missing[0]} on) were never used", input=given, got=[len(rows) for rows in grad.calls])
    return [len(rows) for rows in grad.calls]


def _expect_batch_gradient(got, grad, given, weights_hint):
    """``got`` equals the gradient of the whole batch; ``weights_hint(wrong weights)`` names a likely mistake."""
    expected = grad.batch_gradient()
    if not isinstance(got, (list, tuple)) or len(got) != len(expected):
        raise CheckFailure(f"return a list of {len(expected)} arrays, one gradient per variable (as gradient returns "
                           "them)", input=given, got=got)
    shards = [grad.shard_gradient(rows) for rows in grad.calls]
    plain = [np.mean([shard[k] for shard in shards], axis=0) for k in range(len(expected))]
    if all(is_close(g, p, rtol=1e-10, atol=1e-12) for g, p in zip(got, plain)) and not all(
            is_close(p, e, rtol=1e-10, atol=1e-12) for p, e in zip(plain, expected)):
        raise CheckFailure(weights_hint, input=given)
    for value, want, name in zip(got, expected, grad.names()):
        expect_close(value, want, rtol=1e-10, atol=1e-12, input=given, what=name)


def _expect_shards(split_feed, batch, parts):
    """``split_feed`` cuts a feed of ``batch`` examples into ``parts`` contiguous shards, the larger first."""
    feed = {"images": np.arange(batch * 2.0).reshape(batch, 2), "labels": np.arange(batch)}
    given = {"feed_dict": Text(f"{{'images': {batch} rows, 'labels': {batch} numbers}}"), "parts": parts}
    shards = split_feed({key: read_only(value) for key, value in feed.items()}, parts)
    if not isinstance(shards, list) or len(shards) != parts:
        raise CheckFailure(f"split_feed should return a list of {parts} feed dicts, one per shard", input=given,
                           got=shards)
    bounds = [chunk_bounds(batch, parts, index) for index in range(parts)]
    expected = [stop - start for start, stop in bounds]
    for index, (shard, (start, stop)) in enumerate(zip(shards, bounds)):
        if not isinstance(shard, dict) or set(shard) != set(feed):
            raise CheckFailure(f"shard {index} should be a feed dict with the keys of feed_dict", input=given,
                               got=shard)
        for key, value in feed.items():
            expect_equal(shard[key], value[start:stop], input=given,
                         what=f"shard {index}'s {key!r} (shards of {expected} examples, the larger first)")


@exercise(
    "7.5",
    "gradient averaging",
    expects=("split_feed(feed_dict, parts)", "sharded_gradient(gradient, feed_dict, workers)"),
    nudge="Cut the batch into contiguous shards whose sizes differ by at most one (the larger first), and add up "
    "the shards' gradients, each weighted by n_k / B.",
    hint="B = the length of any value of feed_dict. Shard k runs from k * (B // N) + min(k, B % N) and holds "
    "B // N + (1 if k < B % N else 0) examples (the larger shards first). Feed gradient a dict with every value cut "
    "to that slice; it returns one array per variable. Start the total from zeros or from the first shard's "
    "weighted gradient, add each shard's gradients times n_k / B, and return the list.",
    unavailable=SHARDING,
)
def _(split_feed, sharded_gradient):
    for batch, parts in ((90, 4), (7, 7), (10, 3), (5, 1)):
        _expect_shards(split_feed, batch, parts)
    for batch, workers in ((90, 4), (7, 7), (50, 3), (10, 1)):
        grad = _Gradient(batch)
        given = {"batch": Text(f"{batch} examples of a 784-16-10 MLP (float64)"), "workers": workers}
        got = sharded_gradient(grad, dict(grad.feed), workers)
        sizes = _expect_parts(grad, batch, given, "shard")
        if len(sizes) != workers:
            raise CheckFailure(f"your function computed {len(sizes)} gradient(s) for {workers} workers: each worker "
                               "computes the gradient of its own shard, once", input=given, got=sizes)
        if max(sizes) - min(sizes) > 1:
            raise CheckFailure(f"your shards hold {sizes} examples: their sizes should differ by at most one, or the "
                               "workers with more examples keep the others waiting", input=given, got=sizes)
        _expect_batch_gradient(got, grad, given, f"your function averaged the shards' gradients with equal "
                               f"weights 1/N, but the shards are unequal ({sizes}): the batch's mean loss is "
                               "Σ (n_k / B) L_k, so weight shard k's gradient by n_k / B")
    return ("split_feed cuts 4 batches as it should; batches of 90, 7, 50 and 10 on 4, 7, 3 and 1 workers, shards "
            "unequal: the gradient of the whole batch")


@exercise(
    "7.6",
    "gradient accumulation",
    expects="accumulated_gradient(gradient, feed_dict, micro_batch_size)",
    nudge="Run micro-batches of micro_batch_size consecutive examples (the last one shorter) one after another, "
    "adding each one's gradient, weighted by n_j / B, into a running total — keep no other gradient.",
    hint="B = the length of any value of feed_dict. For start in range(0, B, micro_batch_size): cut every value of "
    "the feed to [start:start + micro_batch_size], get its gradients, and add (n_j / B) * g to the total of each "
    "variable — total = [t + w * g for t, g in zip(total, grads)], starting from the first micro-batch's weighted "
    "gradients. Do not collect the micro-batches' gradients in a list: holding one running total is the point.",
    unavailable=SHARDING,
)
def _(accumulated_gradient):
    for batch, size in ((90, 32), (64, 16), (5, 5), (10, 3)):
        grad = _Gradient(batch, seed=1)
        given = {"batch": Text(f"{batch} examples of a 784-16-10 MLP (float64)"), "micro_batch_size": size}
        got = accumulated_gradient(grad, dict(grad.feed), size)
        sizes = _expect_parts(grad, batch, given, "micro-batch")
        if max(sizes) > size:
            raise CheckFailure(f"your function ran a micro-batch of {max(sizes)} examples where at most {size} fit at "
                               "once", input=given, got=sizes)
        if len(sizes) != math.ceil(batch / size):
            raise CheckFailure(f"your function ran {len(sizes)} micro-batches; {batch} examples make "
                               f"⌈{batch}/{size}⌉ = {math.ceil(batch / size)} of at most {size}", input=given,
                               got=sizes)
        for call, held in enumerate(grad.held):
            old = [index + 1 for index in held if index < call - 1]
            if old:
                raise CheckFailure(f"when your function asked for the gradient of micro-batch {call + 1}, it "
                                   f"still held the gradients of micro-batch(es) {old}: accumulation keeps one "
                                   "running total, so that memory does not grow with the number of micro-batches",
                                   input=given)
        _expect_batch_gradient(got, grad, given, f"your function averaged the micro-batches' gradients with "
                               f"equal weights 1/k, but they are unequal ({sizes}): weight micro-batch j's gradient "
                               "by n_j / B")
    return ("batches of 90, 64, 5 and 10 in micro-batches of 32, 16, 5 and 3: the whole batch's gradient, one running "
            "total")


# ---------------------------------------------------------------------------------------------- 7.7

WORKERS, BATCH, STEPS, EVERY, HIDDEN, LEARNING_RATE = 4, 128, 200, 20, 64, 0.1


class _Training:
    """The learner's data-parallel training and, in step with it, plain SGD on whole batches in one Session, both
    from the same initial weights."""

    def __init__(self, data_parallel_step):
        self.data_parallel_step = data_parallel_step
        self.model, self.reference = mlp(HIDDEN, seed=0), mlp(HIDDEN, seed=0)
        self.step = data_parallel.GradientStep(self.model.loss, optim.SGD(LEARNING_RATE), self.model.variables)
        self.sessions = [Session() for _ in range(WORKERS)]
        self.update, self.session = optim.SGD(LEARNING_RATE).minimize(self.reference.loss), Session()
        self.given = Text(f"the 784-{HIDDEN}-10 MLP on MNIST, {WORKERS} workers, batches of {BATCH}, SGD (learning "
                          f"rate {LEARNING_RATE})")

    def weights(self, worker=0):
        return self.sessions[worker].run(self.step.variables)

    def train(self, images, labels, number):
        """Step ``number`` on both sides; fail unless every worker holds the weights of the big-batch step."""
        before = self.weights()
        self.data_parallel_step(list(self.sessions), self.step, {self.model.x: images, self.model.y: labels})
        self.session.run(self.update, {self.reference.x: images, self.reference.y: labels})
        first = self.weights()
        for worker in range(1, WORKERS):
            for var, mine, theirs in zip(self.step.variables, self.weights(worker), first):
                if not np.array_equal(mine, theirs):
                    raise CheckFailure(f"after step {number}, worker {worker}'s {var.name} differs from worker 0's: "
                                       "every worker must apply the same all-reduced gradient, so that the copies "
                                       "stay equal", input=self.given)
        wanted = self.session.run(self.reference.variables)
        for var, old, mine, want in zip(self.step.variables, before, first, wanted):
            if not is_close(mine, want, rtol=1e-4, atol=1e-5):
                ratio = np.linalg.norm(mine - old) / max(float(np.linalg.norm(want - old)), 1e-30)
                raise CheckFailure(f"after step {number}, the workers' {var.name} is not that of one SGD step on the "
                                   f"whole batch of {len(labels)} examples (the workers' step is {ratio:.2f} times as "
                                   "long): each worker's part must be its shard's gradient times n_k / B, and your "
                                   "ring all-reduce (which must pass 7.3) must add the parts up into the batch's "
                                   "gradient", input=self.given)


@exercise(
    "7.7",
    "data-parallel MNIST with your ring",
    expects="data_parallel_step(sessions, step, feed_dict)",
    nudge="Each worker computes its shard's part of the gradient (step.gradient), your ring all-reduce adds the parts "
    "up on a Network, and every worker applies the sum it holds (step.apply).",
    hint="B = the length of the batch, N = len(sessions). Cut the feed into N shards as in 7.5; worker k's part is "
    "step.gradient(sessions[k], [shard_k], B)[0], a flat vector already weighted by n_k / B. Put the parts in "
    "mg.parallel.Network(parts), call your ring_allreduce on it, and for each worker k call "
    "step.apply(sessions[k], network.results()[k]).",
    unavailable=[data_parallel.DataParallel.step, data_parallel.DataParallel.gradients, data_parallel.split_batch,
                 allreduce.ring_allreduce, allreduce.tree_allreduce, allreduce.parameter_server_allreduce],
    time_limit=60,
)
def _(data_parallel_step):
    data = mnist_splits()
    images, labels = data["train"]
    evaluated = {split: (x[:2000], y[:2000]) for split, (x, y) in data.items()}
    training = _Training(data_parallel_step)
    history = {key: [] for key in ("step", "train_loss", "train_acc", "test_loss", "test_acc")}
    batches = endless_batches(images, labels, BATCH, seed=0)
    for number in range(1, STEPS + 1):
        batch_images, batch_labels = next(batches)
        if number == 1:  # a batch that the workers share unequally
            batch_images, batch_labels = batch_images[:BATCH - 3], batch_labels[:BATCH - 3]
        training.train(batch_images, batch_labels, number)
        if number % EVERY == 0:
            history["step"].append(number)
            record(history, lambda x, y: evaluate(training.sessions[0], training.model, x, y), evaluated)
    return Passed(f"{STEPS} steps on {WORKERS} workers, each as one SGD step on the whole batch (within float "
                  f"rounding), the workers' weights equal bit for bit; test accuracy {history['test_acc'][-1]:.3f}",
                  value=history)
