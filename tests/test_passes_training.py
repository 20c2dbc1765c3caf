"""Training with the default pipeline ends where training without it ends — same losses, same weights and
optimizer state, bit for bit — for the training graphs of chapters 02–04; and state is never touched:
graphs whose assign ops read and write variables in one run behave as before."""

import numpy as np
import pytest

import minigraph as mg
import minigraph.tf as tf
from minigraph.datasets import batches, load_mnist, one_hot

STEPS, BATCH = 20, 64


@pytest.fixture(scope="module")
def subset():
    images, labels = load_mnist("train")
    return images[:STEPS * BATCH], labels[:STEPS * BATCH]


def train(fetch_step, feed_of, data, optimize):
    """Run ``STEPS`` steps in a new Session; returns the losses and the values of every variable."""
    loss, step = fetch_step
    sess = mg.Session(optimize=optimize)
    losses = [sess.run([loss, step], feed_of(images, labels))[0] for images, labels in batches(*data, BATCH, rng=0)]
    variables = [n for n in mg.topological_sort([step]) if isinstance(n, mg.Variable)]
    return losses, sess.run(variables)


def assert_same_training(build, data):
    """``build()`` -> ((loss, step), feed_of): trained as built and optimized, the runs must agree exactly.
    The graph is built twice, so that random ops (dropout) draw the same numbers in both runs."""
    plain = train(*build(), data, optimize=False)
    optimized = train(*build(), data, optimize=True)
    assert plain[0] == optimized[0], "the losses differ"
    assert len(plain[1]) == len(optimized[1])
    for before, after in zip(plain[1], optimized[1]):
        assert before.dtype == after.dtype and np.array_equal(before, after), "a variable ends elsewhere"


def softmax_regression():
    """Chapter 02, section 6: the update written out as assign ops."""
    x = mg.placeholder("x", (None, 784))
    labels = mg.placeholder("labels", (None,), "int64")
    W = mg.Variable(np.zeros((784, 10), np.float32), name="W")
    b = mg.Variable(np.zeros(10, np.float32), name="b")
    loss = mg.reduce_mean(mg.softmax_cross_entropy(x @ W + b, labels))
    grad_W, grad_b = mg.gradients(loss, [W, b])
    step = mg.group(mg.assign_sub(W, 0.5 * grad_W), mg.assign_sub(b, 0.5 * grad_b))
    return (loss, step), lambda images, digits: {x: images, labels: digits}


def tensorflow_tutorial():
    """Chapter 02, section 7: the TF-1 tutorial's program (one-hot labels, log of a softmax)."""
    x = tf.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10]))
    b = tf.Variable(tf.zeros([10]))
    y = tf.nn.softmax(tf.matmul(x, W) + b)
    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
    step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
    return (cross_entropy, step), lambda images, digits: {x: images, y_: one_hot(digits)}


def mlp(optimizer, dropout=0.0, decay=None):
    """Chapter 04's MLP (784-64-10, He initialization), its optimizer, dropout and weight decay."""
    def build():
        rng = np.random.default_rng(0)
        x = mg.placeholder("x", (None, 784))
        y = mg.placeholder("y", (None,), "int64")
        training = mg.placeholder("training", (), "bool")
        hidden = mg.nn.dense(x, 64, activation=mg.relu, rng=rng)
        logits = mg.nn.dense(mg.nn.dropout(hidden, dropout, training, rng=rng), 10, rng=rng)
        loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
        if decay:
            loss = loss + mg.nn.weight_decay([hidden.variables[0], logits.variables[0]], decay)
        step = optimizer().minimize(loss)
        return (loss, step), lambda images, digits: {x: images, y: digits, training: True}
    return build


TRAININGS = {
    "softmax regression, assign ops": softmax_regression,
    "TF-1 tutorial": tensorflow_tutorial,
    "MLP, SGD": mlp(lambda: mg.optim.SGD(0.1)),
    "MLP, Nesterov, cosine schedule, weight decay": mlp(lambda: mg.optim.Momentum(mg.optim.schedules.cosine(0.1, STEPS), 0.9, nesterov=True), decay=1e-3),
    "MLP, momentum, dropout": mlp(lambda: mg.optim.Momentum(0.05, 0.9), dropout=0.5),
    "MLP, AdaGrad": mlp(lambda: mg.optim.AdaGrad(0.01)),
    "MLP, RMSProp": mlp(lambda: mg.optim.RMSProp(0.001)),
    "MLP, Adam": mlp(lambda: mg.optim.Adam(0.001)),
}


@pytest.mark.parametrize("name", sorted(TRAININGS))
def test_optimized_training_ends_with_the_same_weights(name, subset):
    assert_same_training(TRAININGS[name], subset)


def test_the_pipeline_shrinks_the_adam_training_step():
    (loss, step), _ = mlp(lambda: mg.optim.Adam(0.001))()
    built = mg.topological_sort([loss, step])
    optimized = mg.topological_sort(mg.passes.optimize([loss, step]))
    assert len(optimized) <= 0.75 * len(built)
    assert sum(n.op.name.startswith("fused") and n.op.mutates for n in optimized) == 12  # m, v and w of 4 variables


def test_assign_ops_reading_and_writing_variables_in_one_run_behave_as_before():
    """Reads see the value from the start of the run, assign outputs the new value — fused or not."""
    def build():
        u = mg.Variable(np.arange(4, dtype=np.float32), name="u")
        v = mg.Variable(np.ones(4, np.float32), name="v")
        g = mg.placeholder("g", (4,))
        new_u = mg.assign(u, u * 0.5 + v * g)  # reads u and v
        new_v = mg.assign_add(v, mg.tanh(u) * 2.0 - new_u)  # reads u (old) and new_u
        read_u = mg.exp(u) * 1.0 + 0.0  # read before the assigns
        count = mg.assign_add(mg.Variable(np.float32(0), name="count"), 1.0)
        return [read_u, new_v, mg.group(new_u, new_v, count, read_u), u * 1.0, count]
    results = []
    for optimize in (False, True):
        fetches = build()
        g = next(n for n in mg.topological_sort(fetches) if isinstance(n, mg.Placeholder))
        sess = mg.Session(optimize=optimize)
        results.append([sess.run(fetches, {g: np.full(4, step, np.float32)}) for step in range(4)])
    for plain_run, optimized_run in zip(*results):
        for plain_value, optimized_value in zip(plain_run, optimized_run):
            assert (plain_value is None and optimized_value is None) or np.array_equal(plain_value, optimized_value)


def test_optimized_graphs_follow_any_memory_plan(subset):
    """Chapter 06's planner frees and reuses the buffers of the optimized graph too: the same training."""
    runs = []
    for memory in ("naive", "plan"):
        (loss, step), feed_of = mlp(lambda: mg.optim.Adam(0.001))()
        sess = mg.Session(optimize=True, memory=memory)
        losses = [sess.run([loss, step], feed_of(images, labels))[0] for images, labels in batches(*subset, BATCH, rng=0)]
        runs.append((losses, sess.run([n for n in mg.topological_sort([step]) if isinstance(n, mg.Variable)])))
    assert runs[0][0] == runs[1][0] and all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
