"""Memory plans (chapter 06): the planned executor computes the same bits as the keep-everything one on random
graphs and on every chapter's training graphs; each in-place refusal; the checks on a planner's plan; the
plan's contract for concurrent executors; gradient checkpointing (same gradients, recomputation only in
the backward pass, clear errors); peaks measured with tracemalloc, as loose inequalities."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigraph as mg
import minigraph.tf as tf
from minigraph.memory import (
    MemoryPlan,
    checkpointed_gradients,
    keep_everything,
    liveness,
    measure_peak,
    memory_order,
    plan_memory,
    sqrt_checkpoints,
)
from minigraph.session import check_order

seeds = st.integers(0, 2**32 - 1)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def run_both(fetches, feed, sort=None, runs=2):
    """The values of ``runs`` runs with the planner on and off (one Session each)."""
    results = {}
    for memory in ("naive", "plan"):
        sess = mg.Session(sort=sort, memory=memory)
        results[memory] = [sess.run(fetches, feed) for _ in range(runs)]
    return results["naive"], results["plan"]


def plan_of(fetches, sort=None):
    return mg.Executor(fetches, sort=sort).plan


# ---------------------------------------------------------------------------------------------- random graphs

N = 3
STEPS = [  # each builds a node from two earlier ones (shape (None, 3) unless said)
    lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / (b * b + 1.0),
    lambda a, b: -a, lambda a, b: mg.tanh(a) + b, lambda a, b: mg.exp(a * 0.1), lambda a, b: mg.relu(a - b),
    lambda a, b: mg.ops.relu_grad(a, b), lambda a, b: mg.sqrt(a * a + 1.0), lambda a, b: mg.log(b * b + 1.0),
    lambda a, b: a @ mg.transpose(STATE["W"]), lambda a, b: mg.matmul(a, STATE["W"]) + STATE["c"],
    lambda a, b: mg.reshape(mg.reshape(a, (-1,)), a), lambda a, b: mg.transpose(mg.transpose(a)) * b,
    lambda a, b: mg.sum_to(a, a) + mg.expand_dims(mg.reduce_sum(b, 1), 1),
    lambda a, b: a * mg.reduce_mean(b, 0), lambda a, b: mg.cast(mg.cast(a, "float64") * 0.5, "float32"),
    lambda a, b: mg.cast(a, "float64") + mg.cast(b, "float64"),  # float64 from here on: a dtype change
    lambda a, b: mg.softmax(a) - b, lambda a, b: mg.sigmoid(a) * mg.reshape(b, (-1, N)),
]
STATE = {}


def random_graph(steps):
    """Placeholders a, b (None, 3), a Variable W, a constant c, and the nodes ``steps`` build from them."""
    a, b = mg.placeholder("a", (None, N)), mg.placeholder("b", (None, N))
    STATE.update(W=mg.Variable(np.linspace(-1, 1, N * N, dtype=np.float32).reshape(N, N), name="W"),
                 c=mg.constant(np.array([0.5, -1.0, 2.0], np.float32)))
    nodes = [a, b, STATE["W"], STATE["c"]]
    for op_index, i, j in steps:
        x, y = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if x.shape != (None, N) or y.shape != (None, N):
            x, y = a, b
        node = STEPS[op_index](x, y)
        nodes.append(node if node.dtype == np.float32 else mg.cast(node, "float32"))
    return a, b, nodes


graphs = st.lists(st.tuples(st.integers(0, len(STEPS) - 1), st.integers(0, 200), st.integers(0, 200)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(steps=graphs, fetch_picks=st.lists(st.integers(0, 200), min_size=1, max_size=4), rows=st.integers(1, 4),
       reorder=st.booleans(), seed=seeds)
def test_planned_and_naive_runs_agree_bit_for_bit_on_random_graphs(steps, fetch_picks, rows, reorder, seed):
    a, b, nodes = random_graph(steps)
    fetches = [nodes[-1]] + [nodes[i % len(nodes)] for i in fetch_picks]  # intermediates, views, sources
    rng = np.random.default_rng(seed)
    feed = {a: rng.uniform(-2, 2, (rows, N)).astype(np.float32), b: rng.uniform(-2, 2, (rows, N)).astype(np.float32)}
    naive, planned = run_both(fetches, feed, sort=memory_order if reorder else None)
    for naive_run, planned_run in zip(naive, planned):
        assert all(same_bits(x, y) for x, y in zip(naive_run, planned_run))
    plan = plan_of(fetches)
    usage = plan.usage(feed)
    assert usage.peak <= usage.total and keep_everything(plan.order, plan.fetches).usage(feed).peak == usage.total


@settings(max_examples=30, deadline=None)
@given(steps=graphs)
def test_memory_order_is_a_topological_order_of_the_same_nodes(steps):
    a, b, nodes = random_graph(steps)
    order = memory_order(nodes[-1])
    check_order(order, [nodes[-1]])
    assert set(order) == set(mg.topological_sort(nodes[-1]))


# ---------------------------------------------------------------------------------------------- training graphs


def softmax_regression_tf():
    """Chapter 02's TensorFlow-1 program."""
    x = tf.placeholder(tf.float32, [None, 20])
    W, b = tf.Variable(tf.zeros([20, 5])), tf.Variable(tf.zeros([5]))
    y = tf.nn.softmax(tf.matmul(x, W) + b)
    y_ = tf.placeholder(tf.float32, [None, 5])
    loss = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    return x, y_, loss, step, [W, b], "one_hot"


def mlp(optimizer, dropout=0.0, depth=2, seed=0):
    """Chapter 04's MLP (He init, dropout with a training switch), smaller."""
    rng = np.random.default_rng(seed)
    x, y = mg.placeholder("x", (None, 20)), mg.placeholder("y", (None,), "int64")
    training = mg.placeholder("training", (), "bool")
    h = x
    for _ in range(depth - 1):
        h = mg.nn.dropout(mg.nn.dense(h, 16, activation=mg.relu, rng=rng), dropout, training, rng=rng)
    logits = mg.nn.dense(h, 5, rng=rng)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
    step = optimizer.minimize(loss)
    return x, y, loss, step, mg.trainable_variables(loss) + optimizer.variables(), training


TRAINING_GRAPHS = {
    "softmax regression, SGD (chapter 02)": softmax_regression_tf,
    "MLP, SGD": lambda: mlp(mg.optim.SGD(0.1)),
    "MLP with dropout, Nesterov momentum and a schedule": lambda: mlp(
        mg.optim.Momentum(mg.optim.schedules.cosine(0.1, 10), 0.9, nesterov=True), dropout=0.5, depth=3),
    "MLP, Adam": lambda: mlp(mg.optim.Adam(0.01), depth=3),
    "MLP, RMSProp": lambda: mlp(mg.optim.RMSProp(0.01)),
}


@pytest.mark.parametrize("sort", [None, memory_order], ids=["depth-first", "memory order"])
@pytest.mark.parametrize("name", sorted(TRAINING_GRAPHS))
def test_training_ends_with_the_same_weights_bit_for_bit(name, sort):
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((8, 20)).astype(np.float32), rng.integers(0, 5, 8)) for _ in range(6)]
    trained = {}
    for memory in ("naive", "plan"):
        x, y, loss, step, variables, extra = TRAINING_GRAPHS[name]()  # built anew: dropout draws its own masks
        sess = mg.Session(sort=sort, memory=memory)
        losses = []
        for images, labels in batches:
            feed = {x: images, y: np.eye(5, dtype=np.float32)[labels] if extra == "one_hot" else labels}
            if extra not in (None, "one_hot"):
                feed[extra] = True
            losses.append(sess.run([loss, step], feed)[0])
        trained[memory] = losses, sess.run(variables)
    (naive_losses, naive_weights), (planned_losses, planned_weights) = trained["naive"], trained["plan"]
    assert all(same_bits(a, b) for a, b in zip(naive_losses, planned_losses))
    assert all(same_bits(a, b) for a, b in zip(naive_weights, planned_weights))


def test_the_plan_of_a_training_step_frees_and_reuses():
    x, y, loss, step, variables, training = mlp(mg.optim.Adam(0.01), depth=3)
    plan = plan_of([loss, step])
    assert plan.in_place and len(plan.overwrites) > len(plan.in_place)  # in place, and dead buffers reused
    usage = plan.usage({x: (64, 20), y: (64,)})
    assert usage.peak < 0.5 * usage.total


# ---------------------------------------------------------------------------------------------- in place


def chain_input():
    p = mg.placeholder("p", (None, 3))
    return p, mg.tanh(p, name="x")  # x: a value the planner owns


def test_in_place_when_the_input_dies_here_and_fits():
    p, x = chain_input()
    y = mg.add(x, mg.constant(np.ones(3, np.float32)), name="y")  # (None, 3) + (3,): provably x's shape
    z = mg.exp(y, name="z")
    plan = plan_of([z])
    assert plan.in_place == {y: x, z: y} and plan.buffer[x] == plan.buffer[y] == plan.buffer[z]
    assert plan.write_after_read()[y] == [x] and plan.write_after_read()[z] == [y]


@pytest.mark.parametrize("case", ["two readers", "view of a Variable", "fetched", "dtype change", "a view",
                                  "another input views it", "shape not provable"])
def test_in_place_is_refused_where_it_would_be_wrong(case):
    p, x = chain_input()
    feed_rows = 2
    if case == "two readers":
        y = mg.exp(x, name="y")  # x is still read by z after y
        fetches = [mg.add(y, x * 2.0, name="z")]
    elif case == "view of a Variable":
        W = mg.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="W")
        x = mg.reshape(W, (3, 2), name="x")
        y = mg.tanh(x, name="y")
        fetches = [y, W]
    elif case == "fetched":
        y = mg.tanh(x, name="y")
        fetches = [y, x]
    elif case == "dtype change":
        y = mg.add(x, mg.constant(np.ones(3, np.float64)), name="y")  # float64 result
        fetches = [y]
    elif case == "a view":
        x = mg.reshape(x, (-1,), name="flat")
        y = mg.exp(x, name="y")
        fetches = [y]
    elif case == "another input views it":
        p = mg.placeholder("p", (3, 3))
        x = mg.tanh(p, name="x")
        y = mg.add(x, mg.transpose(x), name="y")
        fetches = [y]
        feed_rows = 3
    else:  # (None, 3) * (None, 3): at run time one of them might be (1, 3) and broadcast
        q = mg.placeholder("q", (None, 3))
        y = mg.mul(x, mg.tanh(q), name="y")
        fetches = [y]
    plan = plan_of(fetches)
    assert y not in plan.in_place
    rng = np.random.default_rng(0)
    feed = {node: rng.standard_normal((feed_rows, 3)).astype(np.float32)
            for node in mg.topological_sort(fetches) if isinstance(node, mg.Placeholder)}
    naive, planned = run_both(fetches, feed)
    assert all(same_bits(a, b) for a, b in zip(naive[-1], planned[-1]))


def test_a_view_keeps_its_base_alive():
    p, x = chain_input()
    flat = mg.reshape(x, (-1,), name="flat")
    y = mg.exp(x, name="y")  # x's last direct reader, but flat still reads x's array later
    z = mg.reduce_sum(y) + mg.reduce_sum(flat * 2.0)
    plan = plan_of([z])
    order = plan.order
    assert plan.lifetime[x][1] == max(order.index(n) for n in order if flat in n.inputs)
    assert y not in plan.in_place
    naive, planned = run_both([z], {p: np.ones((2, 3), np.float32)})
    assert same_bits(naive[0][0], planned[0][0])


def test_dead_buffers_of_a_fixed_shape_are_reused_by_ops_that_write_into_them():
    A = mg.placeholder("A", (4, 4))
    W = mg.Variable(np.eye(4, dtype=np.float32) * 2, name="W")
    m1 = mg.matmul(A, W, name="m1")
    s1 = mg.reduce_sum(m1, name="s1")  # m1 dies here
    m2 = mg.matmul(A, W, transpose_b=True, name="m2")
    total = mg.add(s1, mg.reduce_sum(m2), name="total")
    plan = plan_of([total])
    assert plan.overwrites.get(m2) is m1 and m2 not in plan.in_place and plan.buffer[m1] == plan.buffer[m2]
    assert s1 in plan.write_after_read()[m2]  # the reader of m1 must finish before m2 writes over it
    naive, planned = run_both([total, m2], {A: np.arange(16, dtype=np.float32).reshape(4, 4)})
    assert all(same_bits(a, b) for a, b in zip(naive[-1], planned[-1]))


# ---------------------------------------------------------------------------------------------- the plan's contract


@settings(max_examples=40, deadline=None)
@given(steps=graphs, rows=st.integers(1, 3), seed=seeds)
def test_any_order_that_respects_write_after_read_computes_the_same_values(steps, rows, seed):
    """What chapter 07's threads rely on: run the plan's nodes in a random order that respects the inputs
    and ``write_after_read``, writing into the planned buffers; the values are the serial ones."""
    a, b, nodes = random_graph(steps)
    fetch = nodes[-1]
    rng = np.random.default_rng(seed)
    feed = {a: rng.uniform(-2, 2, (rows, N)).astype(np.float32), b: rng.uniform(-2, 2, (rows, N)).astype(np.float32)}
    executor = mg.Executor([fetch])
    plan, expected = executor.plan, executor.run(feed)[0]
    waits = {node: set(node.inputs) | set(plan.write_after_read().get(node, ())) for node in plan.order}
    done, values = set(), {}
    while len(done) < len(plan.order):
        ready = [node for node in plan.order if node not in done and waits[node] <= done]
        node = ready[rng.integers(len(ready))]
        inputs = [values[x] for x in node.inputs]
        if isinstance(node, mg.Placeholder):
            values[node] = feed[node]
        elif not node.inputs:
            values[node] = executor.variables.get(node, getattr(node, "constant", None))
        elif node in plan.overwrites:
            values[node] = node.op.compute_into(node, (*inputs, values[plan.overwrites[node]]))
        else:
            values[node] = node.op.compute(node, inputs)
        done.add(node)
    assert same_bits(values[plan.order[-1]], expected)


def planner_with(change):
    """A planner: the default plan's lifetimes and buffers, edited by ``change(order, lifetime, buffer)``."""
    def planner(order, fetches):
        plan = plan_memory(order, fetches)
        lifetime, buffer = dict(plan.lifetime), dict(plan.buffer)
        change(order, lifetime, buffer)
        return MemoryPlan(order, fetches, lifetime, buffer)
    return planner


def by_name(order, name):
    return next(node for node in order if node.name == name)


def small_graph():
    p = mg.placeholder("p", (2, 3))
    x = mg.tanh(p, name="x")
    y = mg.exp(x, name="y")
    z = mg.add(y, x, name="z")
    return p, z


@pytest.mark.parametrize("change, message", [
    (lambda o, l, b: b.pop(by_name(o, "y")), r"buffer misses the value of exp node 'y'"),
    (lambda o, l, b: l.update({by_name(o, "p"): (0, 3)}), r"lists placeholder node 'p'.*not a value the planner owns"),
    (lambda o, l, b: l.update({by_name(o, "x"): (1, 2)}), r"releases tanh node 'x' \(2, 3\) after step 2, but add node 'z' \(2, 3\) reads it at step 3"),
    (lambda o, l, b: l.update({by_name(o, "z"): (3, 3)}), r"releases add node 'z' .* but it is fetched"),
    (lambda o, l, b: b.update({by_name(o, "y"): b[by_name(o, "x")]}), r"puts exp node 'y' .* over tanh node 'x' .* but tanh node 'x' \(2, 3\) is alive until step 3"),
])
def test_a_bad_plan_is_refused_with_the_nodes_named(change, message):
    p, z = small_graph()
    with pytest.raises(ValueError, match=message):
        mg.Session(memory=planner_with(change)).run(z, {p: np.ones((2, 3))})


def test_a_plan_may_only_overwrite_with_ops_that_write_into_arrays():
    p = mg.placeholder("p", (2, 3))
    x = mg.tanh(p, name="x")
    y = mg.softmax(x, name="y")  # x dies here, but softmax cannot write into a given array
    fetch = mg.exp(y, name="e")
    with pytest.raises(ValueError, match=r"puts softmax node 'y' .* but its op softmax cannot write into a given array"):
        mg.Executor([fetch], memory=planner_with(lambda o, l, b: b.update({by_name(o, "y"): b[by_name(o, "x")]})))


def test_the_memory_argument_and_a_planner_are_checked():
    p, z = small_graph()
    with pytest.raises(ValueError, match="memory must be 'plan', 'naive' or a planner function"):
        mg.Session(memory="smart").run(z, {p: np.ones((2, 3))})
    with pytest.raises(TypeError, match="must return a MemoryPlan for the order it is given"):
        mg.Executor([z], memory=lambda order, fetches: liveness(order, fetches))


def test_a_learners_planner_plugs_into_the_session():
    calls = []

    def one_buffer_per_value(order, fetches):
        calls.append(len(order))
        lifetime = liveness(order, fetches)
        return MemoryPlan(order, fetches, lifetime, {value: i for i, value in enumerate(lifetime)})

    x, y, loss, step, variables, training = mlp(mg.optim.SGD(0.1))
    feed = {x: np.ones((4, 20), np.float32), y: np.arange(4), training: True}
    sess = mg.Session(memory=one_buffer_per_value)
    first, _ = sess.run([loss, step], feed)
    assert calls and sess.run(loss, feed) < first


def test_usage_needs_the_feed_shapes_it_cannot_infer():
    p, z = small_graph()
    q = mg.placeholder("q", (None, 3))
    plan = plan_of([z + q])
    with pytest.raises(ValueError, match=r"placeholder 'q' \(None, 3\) needs a feed shape"):
        plan.usage({})
    usage = plan.usage({q: (2, 3)})
    assert usage.sizes[z] == 24 and usage.peak == 48 and usage.total == 4 * 24


def test_drawing_a_plan():
    x, y, loss, step, variables, training = mlp(mg.optim.SGD(0.1))
    plan = plan_of([loss, step])
    source = mg.draw([loss, step], highlight=plan.highlight_buffers).source
    assert "xlabel=b0" in source or 'xlabel="b0' in source
    assert "↺" in source
    drawn = mg.draw([loss], highlight=plan_of([loss]).highlight_step(5)).source
    assert "#fdba74" in drawn and "#dc2626" in drawn


# ---------------------------------------------------------------------------------------------- checkpointing


def deep_mlp(depth, width=8, activation=mg.tanh, residual=False, dropout=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x, y = mg.placeholder("x", (None, width)), mg.placeholder("y", (None,), "int64")
    h, layers = x, []
    for index in range(depth):
        out = mg.nn.dense(h, width, activation=activation, init="xavier_normal", rng=rng)
        h = out + h if residual and index % 2 else out
        if dropout:
            h = mg.nn.dropout(h, dropout, rng=rng)
        layers.append(h)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(h, y))
    feed = {x: rng.standard_normal((5, width)).astype(np.float32), y: rng.integers(0, width, 5)}
    return x, layers, loss, mg.trainable_variables(loss), feed


@pytest.mark.parametrize("kind", ["tanh", "relu", "residual", "sigmoid"])
def test_checkpointed_gradients_equal_plain_ones_bit_for_bit(kind):
    activation = {"relu": mg.relu, "sigmoid": mg.sigmoid}.get(kind, mg.tanh)
    x, layers, loss, variables, feed = deep_mlp(9, activation=activation, residual=kind == "residual")
    plain = mg.Session().run(mg.gradients(loss, variables + [x]), feed)
    for checkpoints in ["sqrt", layers[2:7:2], [layers[0]], layers[:-1]]:
        grads = mg.gradients(loss, variables + [x], checkpoints=checkpoints)
        if checkpoints == "sqrt" or len(checkpoints) == 3:  # segments of several layers: recomputed
            assert any(node.role == "recompute" for node in mg.topological_sort(grads))
        for sort in (None, memory_order):
            values = mg.Session(sort=sort).run(grads, feed)
            assert all(same_bits(a, b) for a, b in zip(plain, values)), (checkpoints, sort)


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(2, 8), picks=st.lists(st.integers(0, 100), max_size=5), seed=seeds)
def test_any_checkpoints_give_the_same_gradients(depth, picks, seed):
    x, layers, loss, variables, feed = deep_mlp(depth, width=4, seed=seed % 1000)
    forward = [node for node in mg.topological_sort(loss) if node.inputs]
    checkpoints = [forward[i % len(forward)] for i in picks]
    grad_y = mg.constant(np.float32(2.5))
    plain = mg.Session().run(mg.gradients(loss, variables, grad_y=grad_y), feed)
    checkpointed = mg.Session().run(checkpointed_gradients(loss, variables, checkpoints, grad_y=grad_y), feed)
    assert all(same_bits(a, b) for a, b in zip(plain, checkpointed))


def test_stateful_values_are_kept_not_recomputed():
    x, layers, loss, variables, feed = deep_mlp(6, dropout=0.3)
    grads = checkpointed_gradients(loss, variables, "sqrt")
    recomputed = [node for node in mg.topological_sort(grads) if node.role == "recompute"]
    assert recomputed and not any(node.op.stateful for node in recomputed)
    value = mg.Session().run([loss] + grads, feed)  # one run: the masks of the loss are the gradients' masks
    x2, layers2, loss2, variables2, feed2 = deep_mlp(6, dropout=0.3)
    plain = mg.Session().run([loss2] + mg.gradients(loss2, variables2), feed2)
    assert all(same_bits(a, b) for a, b in zip(plain, value))


def test_recomputation_waits_for_the_backward_pass():
    x, layers, loss, variables, feed = deep_mlp(9)
    grads = checkpointed_gradients(loss, variables, "sqrt")
    nodes = mg.topological_sort(grads)
    recomputed = [node for node in nodes if node.role == "recompute"]
    entries = [node for node in recomputed if node.op.name == "after"]
    assert entries and all(node.inputs[1].role == "gradient" for node in entries)
    for node in recomputed:  # every recomputed node depends on an adjoint: no order can run it early
        assert any(ancestor.role == "gradient" for ancestor in mg.topological_sort(node))
    twins = [node for node in recomputed if node.op.name != "after"]
    assert all(node.name.endswith("'") for node in twins)
    drawing = mg.draw(grads[:2], collapse=["gradient"]).source
    assert "cluster_recompute" in drawing


def test_sqrt_picks_about_sqrt_n_checkpoints_along_the_longest_chain():
    x, layers, loss, variables, feed = deep_mlp(16)
    chain_length = 16 * 3 + 2  # matmul, add, tanh per layer; the cross-entropy and its mean
    checkpoints = sqrt_checkpoints(loss)
    every = int(np.ceil(np.sqrt(chain_length)))
    assert len(checkpoints) == (chain_length - 1) // every
    assert all(node in set(mg.topological_sort(loss)) and node.inputs for node in checkpoints)
    assert sqrt_checkpoints(x) == []


def test_mg_gradients_checkpoints_delegates_to_checkpointed_gradients():
    x, layers, loss, variables, feed = deep_mlp(9)
    for checkpoints in ("sqrt", layers[2:7:2], tuple(layers[2:7:2])):
        through_gradients = mg.gradients(loss, variables[0], checkpoints=checkpoints)
        direct = checkpointed_gradients(loss, variables[0], checkpoints)
        assert through_gradients.role == "gradient" and same_bits(*mg.Session().run([through_gradients, direct], feed))
        assert any(node.role == "recompute" for node in mg.topological_sort(through_gradients))
    plain = mg.gradients(loss, variables, checkpoints=None)
    assert not any(node.role == "recompute" for node in mg.topological_sort(plain))


@pytest.mark.parametrize("differentiate", [checkpointed_gradients,
                                           lambda y, xs, checkpoints: mg.gradients(y, xs, checkpoints=checkpoints)])
def test_bad_checkpoints_are_clear_errors(differentiate):
    x, layers, loss, variables, feed = deep_mlp(3)
    elsewhere = mg.tanh(mg.placeholder("other", (None, 8)), name="elsewhere")
    cases = [
        ("cbrt", TypeError, "checkpoints must be None, 'sqrt' or a list of nodes, not 'cbrt'"),
        (layers[0], TypeError, "checkpoints must be None, 'sqrt' or a list of nodes"),
        (3, TypeError, "checkpoints must be None, 'sqrt' or a list of nodes, not 3"),
        (True, TypeError, "checkpoints must be None, 'sqrt' or a list of nodes, not True"),
        ([layers[0], "h"], TypeError, "checkpoint 1 is a str, not a Node"),
        ([elsewhere], ValueError, r"checkpoint tanh node 'elsewhere' \(None, 8\) is not on the way to y"),
        ([variables[0]], ValueError, r"is a source: placeholders, Variables and constants are always kept"),
    ]
    for checkpoints, error, message in cases:
        with pytest.raises(error, match=message):
            differentiate(loss, variables, checkpoints)
    assert differentiate(loss, variables[0], None).role == "gradient"
    tensor = mg.eager.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="is an eager tensor, whose values were computed and kept"):
        differentiate(mg.reduce_sum(mg.tanh(mg.tanh(tensor))), tensor, "sqrt")


# ---------------------------------------------------------------------------------------------- measured peaks


def test_measure_peak_sees_numpy_arrays_and_leaves_tracing_as_it_was():
    result, peak = measure_peak(lambda: float(np.ones(1_000_000).sum()))
    assert result == 1_000_000 and 8_000_000 <= peak < 9_000_000 and not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        kept = np.ones(500_000)  # allocated before: not part of the peak
        assert 4_000_000 <= measure_peak(np.zeros, 500_000)[1] < 5_000_000 and tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
    assert kept.size == 500_000


def test_planned_peaks_are_far_below_keeping_everything():
    x, layers, loss, variables, feed = deep_mlp(24, width=128)
    feed = {x: np.ones((128, 128), np.float32), feed_key(feed, "y"): np.zeros(128, np.int64)}
    peaks = {}
    for memory in ("naive", "plan"):
        executor = mg.Executor([layers[-1]], memory=memory)
        executor.run(feed)
        peaks[memory] = measure_peak(executor.run, feed)[1]
    assert peaks["plan"] < 0.25 * peaks["naive"]


def feed_key(feed, name):
    return next(node for node in feed if node.name == name)


def test_checkpointing_lowers_the_measured_peak_of_a_training_step():
    x, layers, loss, variables, feed = deep_mlp(36, width=128)
    feed = {x: np.ones((128, 128), np.float32), feed_key(feed, "y"): np.zeros(128, np.int64)}
    peaks = {}
    for checkpoints in (None, "sqrt"):
        optimizer = mg.optim.SGD(0.01, gradients=lambda y, xs: checkpointed_gradients(y, xs, checkpoints))
        executor = mg.Executor([loss, optimizer.minimize(loss)], sort=memory_order)
        executor.run(feed)
        peaks[checkpoints] = measure_peak(executor.run, feed)[1]
    assert peaks["sqrt"] < 0.6 * peaks[None]
