"""The threaded scheduler (chapter 07): on threads, runs compute the same bits as the serial executor — on
random graphs with variables, assigns, views and dropout, and on training graphs with Adam — with the
memory planner on and off, run after run; state and memory add exactly the waits they must; an exception
names its node and leaves no thread behind; run_tasks keeps its contract; traces are complete."""

import sys
import threading
import time
import traceback

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigraph as mg
from minigraph.memory import measure_peak, plan_memory
from minigraph.parallel import scheduler
from minigraph.parallel.scheduler import (
    RANDOM_STATE,
    ThreadedExecutor,
    dependencies,
    levels,
    parallelism,
    plan_for_threads,
    run_tasks,
    state_dependencies,
)

from test_core_memory import softmax_regression_tf

N = 3


def same_bits(a, b):
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def all_same_bits(xs, ys):
    return len(xs) == len(ys) and all(same_bits(x, y) for x, y in zip(xs, ys))


def threads_at_work():
    """The threads that are inside run_tasks's worker loop (none may be once run_tasks has returned: idle
    threads of the pool wait for work outside of it)."""
    return [ident for ident, frame in sys._current_frames().items()
            if any(f.f_code.co_name == "work" and f.f_code.co_filename == scheduler.__file__
                   for f, _ in traceback.walk_stack(frame))]


# ---------------------------------------------------------------------------------------------- random graphs

BUILDERS = [  # each builds a node of shape (None, 3) from two earlier ones, a Variable and the shared generator
    lambda a, b, V, rng: a + b,
    lambda a, b, V, rng: a * b - 0.5,
    lambda a, b, V, rng: mg.tanh(a) / (b * b + 1.0),
    lambda a, b, V, rng: a @ V,
    lambda a, b, V, rng: mg.matmul(a, mg.transpose(V)) + mg.reduce_sum(mg.reshape(V, (-1,))),  # reads through views
    lambda a, b, V, rng: mg.reshape(mg.transpose(mg.transpose(a)), (-1, N)) * b,
    lambda a, b, V, rng: a * mg.reduce_mean(b, 0),
    lambda a, b, V, rng: mg.exp(a * 0.1) + mg.relu(b),
    lambda a, b, V, rng: mg.nn.dropout(a, 0.5, rng=rng),  # stateful: a mask drawn from the shared generator
    lambda a, b, V, rng: a @ mg.assign_add(V, 0.01 * (mg.transpose(a) @ b)),  # writes V, then reads the new value
    lambda a, b, V, rng: a + mg.reduce_sum(mg.assign_sub(V, mg.transpose(V) * 0.1), 0),  # reads V to write it
    lambda a, b, V, rng: mg.sigmoid(a) + mg.reduce_sum(V, 0),
]


def random_graph(spec, seed):
    """Placeholders a, b (None, 3), two Variables, and the nodes ``spec`` builds ((builder, i, j, v) each)."""
    rng = np.random.default_rng(seed)
    a, b = mg.placeholder("a", (None, N)), mg.placeholder("b", (None, N))
    variables = [mg.Variable(rng.uniform(-1, 1, (N, N)).astype(np.float32), name=f"V{i}") for i in range(2)]
    nodes = [a, b]
    for builder, i, j, v in spec:
        nodes.append(BUILDERS[builder](nodes[i % len(nodes)], nodes[j % len(nodes)], variables[v], rng))
    return a, b, variables, nodes


specs = st.lists(st.tuples(st.integers(0, len(BUILDERS) - 1), st.integers(0, 99), st.integers(0, 99),
                           st.integers(0, 1)), min_size=1, max_size=14)


def runs(make_session, spec, picks, seed, rows, repeats=3):
    """The values of ``repeats`` runs of a random graph in a Session, and its variables afterwards (or the
    error it raised)."""
    a, b, variables, nodes = random_graph(spec, seed)
    fetches = [nodes[-1]] + [nodes[i % len(nodes)] for i in picks] + variables
    rng = np.random.default_rng(seed + 1)
    feed = {a: rng.uniform(-2, 2, (rows, N)).astype(np.float32), b: rng.uniform(-2, 2, (rows, N)).astype(np.float32)}
    sess = make_session()
    try:
        values = [sess.run(fetches, feed) for _ in range(repeats)]
    except ValueError as error:
        return str(error)
    return values, sess.run(variables)


@settings(max_examples=60, deadline=None)
@given(spec=specs, picks=st.lists(st.integers(0, 99), max_size=4), seed=st.integers(0, 2**16), rows=st.integers(1, 4),
       workers=st.integers(1, 4), memory=st.sampled_from(["plan", "naive"]))
def test_threaded_runs_compute_the_serial_bits_on_random_graphs(spec, picks, seed, rows, workers, memory):
    serial = runs(lambda: mg.Session(memory=memory), spec, picks, seed, rows)
    threaded = runs(lambda: mg.Session(memory=memory, workers=workers), spec, picks, seed, rows)
    if isinstance(serial, str):  # a graph the serial executor refuses, the threaded one refuses alike
        assert threaded == serial
        return
    (serial_values, serial_variables), (threaded_values, threaded_variables) = serial, threaded
    for serial_run, threaded_run in zip(serial_values, threaded_values):
        assert all_same_bits(serial_run, threaded_run)
    assert all_same_bits(serial_variables, threaded_variables)


def shuffled_run_tasks(seed):
    """A scheduler for ThreadedExecutor(run_tasks=...) that runs a random ready task at each step, on the
    calling thread: any order the waits allow can come out, so a missing wait shows as wrong bits."""
    def run(tasks, waits_for, workers):
        rng, done, remaining = np.random.default_rng(seed), set(), list(range(len(tasks)))
        while remaining:
            ready = [task for task in remaining if done.issuperset(waits_for[task])]
            task = ready[rng.integers(len(ready))]
            tasks[task]()
            done.add(task)
            remaining.remove(task)
    return run


@settings(max_examples=200, deadline=None)
@given(spec=specs, picks=st.lists(st.integers(0, 99), max_size=4), seed=st.integers(0, 2**16), rows=st.integers(1, 4),
       memory=st.sampled_from(["plan", "naive", plan_memory]))
def test_any_order_the_waits_allow_computes_the_serial_bits(spec, picks, seed, rows, memory):
    serial_memory = "plan" if memory is plan_memory else memory
    serial = runs(lambda: mg.Session(memory=serial_memory), spec, picks, seed, rows)
    shuffled = runs(lambda: ShuffledSession(memory, seed), spec, picks, seed, rows)
    if isinstance(serial, str):
        assert shuffled == serial
        return
    for serial_run, shuffled_run in zip(serial[0], shuffled[0]):
        assert all_same_bits(serial_run, shuffled_run)
    assert all_same_bits(serial[1], shuffled[1])


class ShuffledSession(mg.Session):
    """A Session whose executors run their tasks in random orders that respect the waits."""

    def __init__(self, memory, seed):
        super().__init__(memory=memory, workers=1)
        self.seed = seed

    def _executor(self, fetches):
        return ThreadedExecutor(fetches, 1, variables=self.variables, memory=self.memory,
                                run_tasks=shuffled_run_tasks(self.seed))


def test_the_serial_plan_on_threads_computes_the_same_bits_too():
    """Chapter 06's plan, not made for threads: more waits, the same values."""
    spec = [(3, 0, 0, 0), (2, 1, 0, 1), (3, 2, 1, 1), (0, 3, 4, 0), (9, 5, 2, 0), (4, 6, 3, 1), (1, 7, 6, 0)]
    serial = runs(mg.Session, spec, [3, 4], 5, 3)
    threaded = runs(lambda: mg.Session(memory=plan_memory, workers=3), spec, [3, 4], 5, 3)
    for serial_run, threaded_run in zip(serial[0], threaded[0]):
        assert all_same_bits(serial_run, threaded_run)


# ---------------------------------------------------------------------------------------------- training graphs


def mlp(optimizer, dropout=0.0, depth=3, width=16, seed=0):
    rng = np.random.default_rng(seed)
    x, y = mg.placeholder("x", (None, 20)), mg.placeholder("y", (None,), "int64")
    h = x
    for _ in range(depth - 1):
        h = mg.nn.dense(h, width, activation=mg.relu, rng=rng)
        if dropout:
            h = mg.nn.dropout(h, dropout, rng=rng)  # every layer's mask from one generator
    logits = mg.nn.dense(h, 5, rng=rng)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
    return x, y, loss, optimizer.minimize(loss), mg.trainable_variables(loss) + optimizer.variables()


def softmax_regression():
    """Chapter 02's TensorFlow-1 program (test_core_memory's, without its label kind)."""
    return softmax_regression_tf()[:5]


TRAINING = {
    "softmax regression, SGD (chapter 02)": softmax_regression,
    "MLP, Adam": lambda: mlp(mg.optim.Adam(0.01)),
    "MLP with dropout, Adam": lambda: mlp(mg.optim.Adam(0.01), dropout=0.3, depth=4),
    "MLP, Nesterov momentum and a schedule": lambda: mlp(
        mg.optim.Momentum(mg.optim.schedules.cosine(0.1, 10), 0.9, nesterov=True)),
}


def train(name, steps=8, **session_options):
    x, y, loss, step, variables = TRAINING[name]()  # built anew: dropout draws its own masks
    rng = np.random.default_rng(1)
    sess, losses = mg.Session(**session_options), []
    for _ in range(steps):
        labels = rng.integers(0, 5, 16)
        feed = {x: rng.standard_normal((16, 20)).astype(np.float32),
                y: np.eye(5, dtype=np.float32)[labels] if name.startswith("softmax") else labels}
        losses.append(sess.run([loss, step], feed)[0])
    return losses, sess.run(variables)


@pytest.mark.parametrize("memory", ["plan", "naive"])
@pytest.mark.parametrize("name", sorted(TRAINING))
def test_training_on_threads_ends_with_the_serial_weights_bit_for_bit(name, memory):
    serial_losses, serial_weights = train(name, memory=memory)
    for workers in (2, 3):
        losses, weights = train(name, memory=memory, workers=workers)
        assert all_same_bits(serial_losses, losses)
        assert all_same_bits(serial_weights, weights)
    assert not np.allclose(serial_weights[0], train(name, steps=0)[1][0])  # it did train


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_the_optimized_graph_on_threads_trains_to_the_serial_bits(name):
    """Chapter 05's passes, fused ops included, then chapter 07's threads: the optimized serial run's bits."""
    serial_losses, serial_weights = train(name, optimize=True)
    losses, weights = train(name, optimize=True, workers=2)
    assert all_same_bits(serial_losses, losses)
    assert all_same_bits(serial_weights, weights)
    assert not np.allclose(serial_weights[0], train(name, steps=0)[1][0])  # it did train


def wide_graph(chains=6, depth=5, size=48, seed=0):
    """``chains`` independent chains of matmul + tanh from one placeholder, and a Variable updated by
    each chain's result: plenty of nodes ready at once, and reads and writes of one variable."""
    rng = np.random.default_rng(seed)
    x = mg.placeholder("x", (size, size))
    total = mg.Variable(np.zeros((size, size), np.float32), name="total")
    ends, updates = [], []
    for c in range(chains):
        h = x
        for d in range(depth):
            h = mg.tanh(h @ mg.Variable(rng.standard_normal((size, size)).astype(np.float32) / size ** 0.5))
        ends.append(h + total)  # reads total, which the updates write
        updates.append(mg.assign_add(total, h * 0.01))
    feed = {x: rng.standard_normal((size, size)).astype(np.float32)}
    return ends + [mg.group(updates), total], feed


def test_many_runs_on_threads_never_differ_from_the_serial_run():
    fetches, feed = wide_graph()
    serial = mg.Session()
    threaded = {workers: mg.Session(workers=workers) for workers in (2, 4)}
    for _ in range(60):
        expected = serial.run(fetches, feed)
        for sess in threaded.values():
            assert all_same_bits(expected, sess.run(fetches, feed))
            assert not threads_at_work()  # every run's workers have ended their work


@pytest.mark.parametrize("seed", range(20))
def test_reads_see_the_value_from_the_start_of_the_run_whatever_the_order(seed):
    """Chapter 02's rule, on threads: the update of W waits for every read of W in the run, the
    penalty, the transposed product (a read through a view) and the fetched W itself."""
    x = mg.placeholder("x", (None, 2))
    W = mg.Variable(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), name="W")
    penalty = mg.reduce_sum(W * W)
    step = mg.assign_sub(W, 0.1 * mg.gradients(penalty, W))
    transposed = mg.matmul(x, mg.transpose(W))
    feed = {x: np.ones((1, 2), np.float32)}
    serial = mg.Session().run([step, penalty, transposed, W], feed)
    executor = ThreadedExecutor([step, penalty, transposed, W], 2, run_tasks=shuffled_run_tasks(seed))
    assert all_same_bits(serial, executor.run(feed))
    assert all_same_bits(serial[3], W.initial_value) and not np.array_equal(serial[0], serial[3])


def test_dropout_masks_are_drawn_in_the_serial_order():
    """Masks that share one generator draw in the serial order on any number of threads: the same masks."""
    def masks():
        rng = np.random.default_rng(7)
        x = mg.placeholder("x", (64, 64))
        branches = [mg.nn.dropout(mg.tanh(x * float(i)), 0.5, rng=rng) for i in range(6)]
        return x, branches

    x, branches = masks()
    serial = mg.Session()
    feed_value = np.ones((64, 64), np.float32)
    expected = [serial.run(branches, {x: feed_value}) for _ in range(10)]
    for workers in (2, 3):
        x, branches = masks()
        threaded = mg.Session(workers=workers)
        assert all(all_same_bits(e, threaded.run(branches, {x: feed_value})) for e in expected)
    stateful = [n for n in mg.topological_sort(branches) if n.op.stateful]
    deps = state_dependencies(mg.Executor(branches).order)
    for before, after in zip(stateful, stateful[1:]):
        assert before in deps[after]


# ---------------------------------------------------------------------------------------------- dependencies


def test_state_dependencies_order_writes_and_let_reads_between_them_run_together():
    W = mg.Variable(np.ones((2, 2), np.float32), name="W")
    r1 = mg.reduce_sum(W, name="r1")
    Wt = mg.transpose(W, name="Wt")
    r2 = mg.reduce_sum(Wt, name="r2")  # reads W through a view
    w1 = mg.assign_add(W, 1.0, name="w1")
    r3 = mg.mul(w1, 2.0, name="r3")  # reads the new value, through the assign
    w2 = mg.assign_sub(W, mg.ones_like(W), name="w2")
    ones = w2.inputs[1]  # ones_like(W) reads W too
    deps = state_dependencies(mg.topological_sort([r1, r2, w1, r3, w2]))
    assert set(deps[w1]) == {r1, Wt, r2}  # the write waits for the reads before it
    assert deps[r3] == [w1] and deps[ones] == [w1]  # a read waits for the last write
    assert set(deps[w2]) == {w1, r3, ones}  # a write for the last write and the reads since
    assert not ({r1, Wt, r2} & set(deps))  # reads before any write wait for nothing: they run together


def test_stateful_ops_mutate_the_random_state():
    x = mg.placeholder("x", (4,))
    rng = np.random.default_rng(0)
    d1, d2 = mg.nn.dropout(x, 0.5, rng=rng), mg.nn.dropout(x, 0.5, rng=rng)
    masks = [n for n in mg.topological_sort([d1, d2]) if n.op.stateful]
    deps = state_dependencies(mg.topological_sort([d1, d2]))
    assert RANDOM_STATE == "random state" and deps[masks[1]] == [masks[0]] and masks[0] not in deps


def test_updates_of_different_variables_do_not_wait_for_each_other():
    """Assign ops are stateful (chapter 05 never merges or folds them), but what they mutate is their
    variable, not the random state: one optimizer step's updates may all run at once."""
    x = mg.placeholder("x", (None, 3))
    W, b = mg.Variable(np.ones((3, 2), np.float32), name="W"), mg.Variable(np.zeros(2, np.float32), name="b")
    loss = mg.reduce_sum(mg.tanh(x @ W + b))
    step = mg.optim.SGD(0.1).minimize(loss)
    order = mg.Executor([loss, step]).order
    waits = state_dependencies(order)
    updates = [node for node in order if node.op.mutates]
    assert len(updates) == 3  # W, b and the iteration count
    for update in updates:
        assert not any(w.op.mutates for w in waits.get(update, [])), update.name


def chains_graph(chains=4, depth=3, size=32):
    rng = np.random.default_rng(0)
    x = mg.placeholder("x", (size, size))
    ends = []
    for _ in range(chains):
        h = x
        for _ in range(depth):
            h = mg.tanh(h @ mg.Variable(rng.standard_normal((size, size)).astype(np.float32) / size))
        ends.append(h)
    return x, ends


def chain_of(node, ends):
    return next(i for i, end in enumerate(ends) if node is end or node in mg.topological_sort(end))


def test_the_serial_plan_makes_chains_wait_for_each_other_and_the_plan_for_threads_does_not():
    x, ends = chains_graph()
    waits_across = {}
    for name, memory in (("serial plan", plan_memory), ("plan for threads", "plan"), ("naive", "naive")):
        executor = ThreadedExecutor(ends, 2, memory=memory)
        deps = dependencies(executor.order, executor.plan)
        waits_across[name] = sum(chain_of(n, ends) != chain_of(w, ends)
                                 for n in deps for w in deps[n] if n.inputs and w.inputs)
    assert waits_across["serial plan"] > 0 and waits_across["plan for threads"] == 0 == waits_across["naive"]
    serial_plan, threads_plan = plan_memory(*_order_and_fetches(ends)), plan_for_threads(*_order_and_fetches(ends))
    assert len(set(serial_plan.buffer.values())) < len(set(threads_plan.buffer.values())) < len(serial_plan.buffer)
    assert threads_plan.in_place  # in place within a chain is kept: its wait is implied


def _order_and_fetches(ends):
    return mg.Executor(ends).order, ends


def test_levels_count_the_longest_chain_of_ops():
    x, ends = chains_graph(chains=2, depth=3)
    level = levels(mg.topological_sort(ends))
    assert level[x] == 0 and all(level[end] == 6 for end in ends)
    assert {level[n] for n in mg.topological_sort(ends) if n.op.name == "matmul"} == {1, 3, 5}


# ---------------------------------------------------------------------------------------------- errors


class Boom(mg.Op):
    name = "boom"

    def compute(self, node, input_values):
        time.sleep(0.01)
        raise ValueError("boom inside compute")

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_an_exception_names_its_node_and_leaves_no_thread_behind(workers):
    x, ends = chains_graph(chains=4, depth=4)
    failing = Boom()(ends[1], name="exploding")
    executor = ThreadedExecutor([*ends, mg.tanh(failing)], workers)
    for _ in range(3):  # and again: the executor stays usable
        with pytest.raises(ValueError, match="boom inside compute") as raised:
            executor.run({x: np.ones((32, 32), np.float32)})
        if hasattr(raised.value, "__notes__"):
            assert raised.value.__notes__ == ["minigraph: raised while computing boom node 'exploding' (32, 32)"]
        assert not threads_at_work()
    assert not any(span.node.op.name == "tanh" and failing in span.node.inputs for span in executor.trace)


def test_bad_workers_are_refused():
    for workers in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="workers must be None .* or a number of threads >= 1"):
            mg.Session(workers=workers)
    with pytest.raises(ValueError, match="workers must be"):
        ThreadedExecutor([mg.constant(1.0)], 0)


def test_feeds_are_checked_as_in_the_serial_executor():
    x, ends = chains_graph(chains=2, depth=1)
    sess = mg.Session(workers=2)
    with pytest.raises(KeyError, match="placeholder 'x' .* must be fed"):
        sess.run(ends)
    with pytest.raises(ValueError, match="feed for placeholder 'x' has shape"):
        sess.run(ends, {x: np.ones((3, 3))})
    with pytest.raises(TypeError, match="only placeholders are fed"):
        sess.run(ends, {x: np.ones((32, 32)), ends[0]: 1.0})


# ---------------------------------------------------------------------------------------------- run_tasks


def recording_tasks(count, log, pause=0.0):
    def task(i):
        def run():
            log.append(("start", i))
            time.sleep(pause)
            log.append(("end", i))
        return run
    return [task(i) for i in range(count)]


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_run_tasks_runs_each_task_once_after_those_it_waits_for(workers):
    rng = np.random.default_rng(workers)
    waits_for = [sorted(set(rng.integers(0, i, 3).tolist())) if i else [] for i in range(40)]
    log = []
    run_tasks(recording_tasks(40, log, pause=0.0005), waits_for, workers)
    ends = {i: position for position, (kind, i) in enumerate(log) if kind == "end"}
    starts = {i: position for position, (kind, i) in enumerate(log) if kind == "start"}
    assert sorted(ends) == sorted(starts) == list(range(40)) and len(log) == 80
    assert all(ends[before] < starts[task] for task, befores in enumerate(waits_for) for before in befores)


def test_one_worker_runs_the_tasks_in_their_order():
    log = []
    run_tasks(recording_tasks(6, log), [[], [], [0], [], [2], [1, 3]], 1)
    assert [i for kind, i in log if kind == "start"] == list(range(6))


def test_run_tasks_runs_independent_tasks_at_the_same_time():
    barrier, seen = threading.Barrier(3, timeout=10), []

    def meet():  # three tasks that can only finish together
        barrier.wait()
        seen.append(len(threads_at_work()))

    run_tasks([meet] * 3, [[], [], []], 3)
    assert seen == [3, 3, 3] and not threads_at_work()
    barrier = threading.Barrier(2, timeout=0.2)
    with pytest.raises(threading.BrokenBarrierError):  # one worker cannot: the error comes back, no hang
        run_tasks([barrier.wait] * 2, [[], []], 1)


def test_run_tasks_refuses_waits_that_could_deadlock():
    with pytest.raises(ValueError, match="task 1 waits for task 2: a task may only wait for tasks before it"):
        run_tasks([lambda: None] * 3, [[], [2], []], 2)


def test_after_a_failure_no_further_task_starts():
    log = []

    def fail():
        raise RuntimeError("task 1 failed")

    tasks = recording_tasks(5, log)
    tasks[1] = fail
    with pytest.raises(RuntimeError, match="task 1 failed"):
        run_tasks(tasks, [[], [0], [1], [], []], 1)
    assert [i for kind, i in log if kind == "start"] == [0]


# ---------------------------------------------------------------------------------------------- traces and memory


def test_the_trace_has_one_span_per_node_on_at_most_workers_threads():
    x, ends = chains_graph(chains=4, depth=3, size=64)
    executor = ThreadedExecutor(ends, 2)
    executor.run({x: np.ones((64, 64), np.float32)})
    trace = executor.trace
    ops = [n for n in executor.order if n.inputs]
    assert sorted(id(span.node) for span in trace) == sorted(id(n) for n in ops)
    assert {span.thread for span in trace} <= {0, 1} and trace[0].thread == 0
    assert all(0 <= span.start <= span.end for span in trace)
    assert [span.start for span in trace] == sorted(span.start for span in trace)
    by_thread = {}
    for span in trace:  # a thread runs one node at a time
        assert span.start >= by_thread.get(span.thread, 0.0)
        by_thread[span.thread] = span.end
    serial_order = ThreadedExecutor(ends, 1)
    serial_order.run({x: np.ones((64, 64), np.float32)})
    assert [span.node for span in serial_order.trace] == ops
    assert 0 < parallelism(trace) <= 2.0 + 1e-9 and 0 < parallelism(serial_order.trace) <= 1.0 + 1e-9


def test_values_are_freed_after_their_last_reader_on_threads():
    """Measured with tracemalloc: a chain of 32 tanh keeps one buffer, not 32."""
    x = mg.placeholder("x", (256, 256))
    h = x
    for _ in range(32):
        h = mg.tanh(h * 1.0)
    feed = {x: np.ones((256, 256), np.float32)}
    peaks = {}
    for memory in ("plan", "naive"):
        executor = ThreadedExecutor([h], 2, memory=memory)
        executor.run(feed)
        peaks[memory] = measure_peak(executor.run, feed)[1]
    array = 256 * 256 * 4
    assert peaks["naive"] > 60 * array and peaks["plan"] < 4 * array
