"""Data parallelism simulated in one process: the all-reduced shard gradients are the big-batch gradient
(equal and unequal shards), training on N workers is large-batch training, gradient accumulation is one big
batch, the workers keep identical weights; and the asynchronous parameter server applies gradients exactly
`staleness` steps old."""

from collections import deque
from types import SimpleNamespace

import numpy as np
import pytest

import minigraph as mg
import minigraph.parallel as par


def random_data(examples=96, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    return rng.random((examples, 784)).astype(dtype), rng.integers(0, 10, examples)


def model_and_feed(examples, dtype="float64", seed=0):
    model = par.mlp(hidden=16, seed=seed, dtype=dtype)
    images, labels = random_data(examples, seed, dtype)
    return model, {model.x: images, model.y: labels}


def big_batch_gradient(model, feed):
    return np.concatenate([g.ravel() for g in mg.Session().run(mg.gradients(model.loss, model.variables), feed)])


@pytest.mark.parametrize("name", par.ALGORITHMS)
@pytest.mark.parametrize("workers, examples", [(1, 12), (2, 12), (3, 12), (4, 10), (5, 11), (7, 7)])
def test_all_reduced_shard_gradients_are_the_big_batch_gradient(name, workers, examples):
    model, feed = model_and_feed(examples)
    parallel = par.DataParallel(model.loss, mg.optim.SGD(0.1), workers, algorithm=par.ALGORITHMS[name])
    summed, loss = parallel.gradients(feed)
    expected = big_batch_gradient(model, feed)
    for gradient in summed:
        np.testing.assert_allclose(gradient, expected, rtol=1e-10, atol=1e-13)
        assert np.array_equal(gradient, summed[0])
    assert loss == pytest.approx(float(mg.Session().run(model.loss, feed)), rel=1e-12)


def test_the_plain_average_of_unequal_shards_is_not_the_batch_gradient():
    """Shards of 3, 3, 2, 2 examples: without the n_k / B weights the result is wrong (this is what the
    weighting in GradientStep.gradient is for)."""
    model, feed = model_and_feed(10)
    shards = par.split_batch(feed, 4)
    assert [len(shard[model.y]) for shard in shards] == [3, 3, 2, 2]
    sess = mg.Session()
    grads = mg.gradients(model.loss, model.variables)
    plain_average = np.mean([np.concatenate([g.ravel() for g in sess.run(grads, shard)]) for shard in shards], axis=0)
    assert not np.allclose(plain_average, big_batch_gradient(model, feed), rtol=1e-3)


def train_big_batches(model, optimizer, feeds):
    sess = mg.Session()
    step = optimizer.minimize(model.loss)
    losses = [float(sess.run([model.loss, step], feed)[0]) for feed in feeds]
    return sess.run(model.variables), losses


def batches_of(model, count, examples, dtype="float64"):
    return [{model.x: images, model.y: labels} for images, labels in
            (random_data(examples, seed, dtype) for seed in range(1, count + 1))]


@pytest.mark.parametrize("workers, micro_batches", [(3, 1), (4, 1), (1, 4), (2, 3)])
@pytest.mark.parametrize("optimizer", [lambda: mg.optim.SGD(0.5), lambda: mg.optim.Momentum(0.1, 0.9),
                                       lambda: mg.optim.Adam(0.01)], ids=["SGD", "momentum", "Adam"])
def test_data_parallel_and_accumulated_training_equal_large_batch_training(workers, micro_batches, optimizer):
    model, _ = model_and_feed(1)
    feeds = batches_of(model, 5, examples=26)  # 26 = 9 + 9 + 8 over 3 workers; micro-batches of 7, 7, 6, 6
    expected_weights, expected_losses = train_big_batches(model, optimizer(), feeds)
    parallel = par.DataParallel(model.loss, optimizer(), workers, micro_batches=micro_batches)
    losses = [parallel.step(feed) for feed in feeds]
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-10)
    for weights in (parallel.weights(worker) for worker in range(workers)):
        for got, expected, first in zip(weights, expected_weights, parallel.weights(0)):
            np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
            assert np.array_equal(got, first)  # every worker holds the same bits


def test_one_worker_one_micro_batch_is_bit_identical_to_plain_training():
    model, _ = model_and_feed(1, dtype="float32")
    feeds = batches_of(model, 4, examples=32, dtype="float32")
    expected_weights, _ = train_big_batches(model, mg.optim.SGD(0.5), feeds)
    parallel = par.DataParallel(model.loss, mg.optim.SGD(0.5), workers=1)
    for feed in feeds:
        parallel.step(feed)
    assert all(np.array_equal(a, b) for a, b in zip(parallel.weights(), expected_weights))


def test_the_network_of_a_step_counts_the_ring_bytes_of_the_gradient():
    model, feed = model_and_feed(16, dtype="float32")
    parallel = par.DataParallel(model.loss, mg.optim.SGD(0.1), workers=4)
    parallel.step(feed)
    parameters = sum(v.initial_value.size for v in model.variables)  # 784*16 + 16 + 16*10 + 10 = 12730
    chunks = [len(part) for part in np.array_split(np.arange(parameters), 4)]
    assert parallel.network.bytes_sent.tolist() == [(2 * parameters - chunks[(i + 1) % 4] - chunks[(i + 2) % 4]) * 4
                                                    for i in range(4)]


def test_split_batch_cuts_batched_feeds_and_copies_the_others():
    x = mg.placeholder("x", (None, 2))
    y = mg.placeholder("y", (None,), "int64")
    flag = mg.placeholder("training", (), "bool")
    feed = {x: np.arange(14.0).reshape(7, 2), y: np.arange(7), flag: True}
    shards = par.split_batch(feed, 3)
    assert [shard[y].tolist() for shard in shards] == [[0, 1, 2], [3, 4], [5, 6]]
    assert all(shard[flag] is True for shard in shards) and shards[1][x].tolist() == [[6.0, 7.0], [8.0, 9.0]]
    with pytest.raises(ValueError, match="cannot split a batch of 7 examples into 8 shards: a shard would be empty"):
        par.split_batch(feed, 8)
    with pytest.raises(ValueError, match=r"differ in length: \{\"'x' \(None, 2\)\": 7, \"'y' \(None,\)\": 6\}"):
        par.split_batch({x: feed[x], y: np.arange(6)}, 2)
    with pytest.raises(ValueError, match="no feed has a batch axis"):
        par.split_batch({flag: True}, 2)
    with pytest.raises(ValueError, match="cannot split a batch of 7 examples into 0 shards"):
        par.split_batch(feed, 0)


def test_gradient_step_refuses_a_wrong_flat_gradient_and_a_second_use_of_its_optimizer():
    model, _ = model_and_feed(1)
    optimizer = mg.optim.SGD(0.1)
    step = par.GradientStep(model.loss, optimizer)
    with pytest.raises(ValueError, match="a flat gradient of 3 values for variables of 12730 values"):
        step.apply(mg.Session(), np.zeros(3))
    with pytest.raises(ValueError, match="already applies the gradients of another GradientStep"):
        par.GradientStep(model.loss, optimizer)


# ---------------------------------------------------------------------------------------------- staleness


def softmax_regression():
    """A model of the shape train_stale expects, whose gradient is easy to write in numpy."""
    x = mg.placeholder("x", (None, 784), "float64")
    y = mg.placeholder("y", (None,), "int64")
    W = mg.Variable(np.random.default_rng(0).normal(0, 0.01, (784, 10)), name="W")
    b = mg.Variable(np.zeros(10), name="b")
    logits = x @ W + b
    return SimpleNamespace(
        x=x, y=y, loss=mg.reduce_mean(mg.softmax_cross_entropy(logits, y)), variables=[W, b],
        accuracy=mg.reduce_mean(mg.cast(mg.equal(mg.argmax(logits, axis=1), y), "float64")))


def delayed_sgd_by_hand(model, data, staleness, steps, lr, batch_size):
    """w_{t+1} = w_t - lr * grad_t(w_{t-s}), written in numpy."""
    W, b = (v.initial_value.copy() for v in model.variables)
    versions = deque([(W.copy(), b.copy())], maxlen=staleness + 1)
    for _, (images, labels) in zip(range(steps), par.endless_batches(*data, batch_size, seed=0)):
        old_W, old_b = versions[0]
        logits = images @ old_W + old_b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(labels)), labels] -= 1
        W, b = W - lr * images.T @ p / len(labels), b - lr * p.mean(axis=0)
        versions.append((W.copy(), b.copy()))
    return W, b


@pytest.mark.parametrize("staleness", [0, 1, 3])
def test_stale_training_applies_gradients_taken_staleness_steps_before(staleness):
    model, data = softmax_regression(), random_data(120, seed=3)
    history = par.train_stale(model, mg.optim.SGD(0.5), staleness, data, steps=12, batch_size=16, every=5,
                              evaluate_on={"test": data})
    assert history["step"] == [5, 10, 12] and len(history["test_acc"]) == len(history["train_loss"]) == 3
    expected_W, expected_b = delayed_sgd_by_hand(model, data, staleness, steps=12, lr=0.5, batch_size=16)
    trained = mg.Session()
    for variable, value in zip(model.variables, (expected_W, expected_b)):
        trained.set_value(variable, value)
    expected_loss, expected_accuracy = par.evaluate(trained, model, *data)
    assert history["test_loss"][-1] == pytest.approx(expected_loss, rel=1e-10)
    assert history["test_acc"][-1] == pytest.approx(expected_accuracy)


def test_no_staleness_is_plain_sgd_bit_for_bit():
    model = par.mlp(hidden=16)
    data = random_data(100, seed=5, dtype="float32")
    history = par.train_stale(model, mg.optim.SGD(0.1), 0, data, steps=8, batch_size=20, every=4,
                              evaluate_on={"test": data})
    sess, step = mg.Session(), mg.optim.SGD(0.1).minimize(model.loss)
    losses = []
    for _, (images, labels) in zip(range(8), par.endless_batches(*data, 20, seed=0)):
        losses.append(sess.run([model.loss, step], {model.x: images, model.y: labels})[0])
    assert history["train_loss"] == [float(np.mean(losses[:4], dtype="float64")), float(np.mean(losses[4:], dtype="float64"))]
    assert history["test_loss"][-1] == par.evaluate(sess, model, *data)[0]


def test_endless_batches_go_on_past_an_epoch_with_full_batches_only():
    images, indices = random_data(10)[0], np.arange(10)  # labels that name the examples
    drawn = [batch for _, (_, batch) in zip(range(6), par.endless_batches(images, indices, 4, seed=7))]
    assert all(len(batch) == 4 for batch in drawn)  # 10 = 4 + 4 + 2: the last 2 are left out of each epoch
    for epoch in range(3):
        first, second = drawn[2 * epoch:2 * epoch + 2]
        assert len(set(first) | set(second)) == 8  # no example twice within an epoch
        order = np.random.default_rng(7 * 1000 + epoch + 1).permutation(10)  # chapter 04's shuffle
        assert np.array_equal(np.concatenate([first, second]), order[:8])
    with pytest.raises(ValueError, match="batch size 11 is not between 1 and the 10 examples"):
        next(par.endless_batches(images, indices, 11, seed=0))
