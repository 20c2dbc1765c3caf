"""Optimizers (against numpy references of their formulas), schedules, initializers and layer helpers."""

import re

import numpy as np
import pytest

import minigraph as mg
from minigraph import optim

CURVATURE = np.array([1.0, 4.0, 0.5])
TARGET = np.array([1.0, -2.0, 3.0])
START = np.array([0.0, 0.0, 0.0])


def quadratic():
    """``f(w) = sum(a (w - c)²) / 2``, gradient ``a (w - c)``, minimum at ``c``."""
    w = mg.Variable(START.copy(), name="w")
    loss = mg.reduce_sum(mg.constant(CURVATURE) * (w - mg.constant(TARGET)) ** 2) * 0.5
    return w, loss


def gradient(w):
    return CURVATURE * (w - TARGET)


def trajectory(optimizer, steps):
    w, loss = quadratic()
    update = optimizer.minimize(loss)
    sess = mg.Session()
    return [sess.run(update) or sess.run(w) for _ in range(steps)]


def reference(rule, steps):
    """The same updates in plain numpy: ``rule(w, g, state, t) -> w``."""
    w, state, result = START.copy(), {}, []
    for t in range(1, steps + 1):
        w = rule(w, gradient(w), state, t)
        result.append(w)
    return result


def sgd(w, g, state, t):
    return w - 0.1 * g


def momentum(w, g, state, t, nesterov=False):
    state["v"] = 0.9 * state.get("v", 0) + g
    return w - 0.1 * (g + 0.9 * state["v"] if nesterov else state["v"])


def adagrad(w, g, state, t):
    state["s"] = state.get("s", 0) + g * g
    return w - 0.5 * g / (np.sqrt(state["s"]) + 1e-8)


def rmsprop(w, g, state, t):
    state["s"] = 0.9 * state.get("s", 0) + 0.1 * g * g
    return w - 0.01 * g / (np.sqrt(state["s"]) + 1e-8)


def adam(w, g, state, t):
    state["m"] = 0.9 * state.get("m", 0) + 0.1 * g
    state["v"] = 0.999 * state.get("v", 0) + 0.001 * g * g
    m_hat, v_hat = state["m"] / (1 - 0.9**t), state["v"] / (1 - 0.999**t)
    return w - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)


CASES = {
    "sgd": (lambda: optim.SGD(0.1), sgd),
    "momentum": (lambda: optim.Momentum(0.1, 0.9), momentum),
    "nesterov": (lambda: optim.Momentum(0.1, 0.9, nesterov=True), lambda *a: momentum(*a, nesterov=True)),
    "adagrad": (lambda: optim.AdaGrad(0.5), adagrad),
    "rmsprop": (lambda: optim.RMSProp(0.01), rmsprop),
    "adam": (lambda: optim.Adam(0.1), adam),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_matches_its_numpy_formula(name):
    make, rule = CASES[name]
    assert np.allclose(trajectory(make(), 20), reference(rule, 20), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_converges_on_a_quadratic(name):
    make, _ = CASES[name]
    steps = 3000 if name == "rmsprop" else 400
    assert np.allclose(trajectory(make(), steps)[-1], TARGET, atol=0.02)


def test_nesterov_differs_from_plain_momentum():
    plain, ahead = trajectory(optim.Momentum(0.1), 3), trajectory(optim.Momentum(0.1, nesterov=True), 3)
    assert not np.allclose(plain[1], ahead[1])


def test_adam_bias_correction_makes_the_first_step_lr_times_sign():
    (first,) = trajectory(optim.Adam(0.1, eps=0.0), 1)
    assert np.allclose(first, START - 0.1 * np.sign(gradient(START)), rtol=1e-14, atol=0)


def test_minimize_builds_one_update_node_from_assign_ops():
    w, loss = quadratic()
    frozen = mg.Variable(np.ones(3), trainable=False)
    adam = optim.Adam()
    update = adam.minimize(loss + mg.reduce_sum(frozen))
    assert isinstance(update.op, mg.ops.Group) and update.role == "update"
    assert {type(n.op) for n in update.inputs} == {mg.ops.AssignSub, mg.ops.AssignAdd}
    assert [n.name for n in adam.variables()] == ["w/m", "w/v", "iterations"]
    assert all(not v.trainable for v in adam.variables())
    assert mg.trainable_variables(loss + mg.reduce_sum(frozen)) == [w]
    with pytest.raises(ValueError, match="depends on no trainable Variable"):
        optim.SGD(0.1).minimize(mg.reduce_sum(frozen))


def test_a_learners_gradients_function_drives_training():
    calls = []

    def my_gradients(y, xs):
        calls.append(len(xs))
        return mg.gradients(y, xs)

    assert np.allclose(trajectory(optim.SGD(0.1, gradients=my_gradients), 5), reference(sgd, 5)) and calls == [1]


class HalfStep(optim.Optimizer):
    """A learner's optimizer: SGD at half the rate, counting its steps in a slot."""

    def update(self, var, grad):
        steps = self.slot(var, "count")
        return [mg.assign(steps, self.step * mg.ones_like(var)), mg.assign_sub(var, 0.5 * self.learning_rate * grad)]


def test_a_custom_optimizer_uses_the_update_hook_and_slots():
    optimizer = HalfStep(0.2)
    assert np.allclose(trajectory(optimizer, 5), reference(sgd, 5))
    w = optimizer.variables()[0]
    assert w.name == "w/count"


def test_schedules():
    decay = optim.schedules.step_decay(1.0, 0.5, every=10)
    assert [decay(s) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert optim.schedules.exponential(2.0, 0.5, every=2)(4) == 0.5
    cosine = optim.schedules.cosine(1.0, 100, final=0.1)
    assert cosine(0) == 1.0 and np.isclose(cosine(50), 0.55) and cosine(100) == cosine(500) == pytest.approx(0.1)


def test_a_schedule_sets_the_rate_of_each_step():
    w = mg.Variable(np.float32(0.0))
    update = optim.SGD(lambda step: 10.0 ** -step).minimize(-w)  # gradient -1: w grows by the rate
    sess = mg.Session()
    values = [sess.run(update) or float(sess.run(w)) for _ in range(3)]
    assert np.allclose(values, [1.0, 1.1, 1.11])


def test_initializers_are_reproducible_and_scaled():
    assert np.array_equal(mg.init.he_normal((3, 4), seed=1), mg.init.he_normal((3, 4), seed=1))
    rng = np.random.default_rng(0)
    assert not np.array_equal(mg.init.normal((3,), rng=rng), mg.init.normal((3,), rng=rng))
    with pytest.raises(TypeError, match="pass seed="):
        mg.init.xavier_uniform((3, 4))
    big = mg.init.he_normal((400, 300), seed=0)
    assert big.dtype == np.float32 and abs(big.std() - np.sqrt(2 / 400)) < 0.002
    limit = np.sqrt(6 / 700)
    xavier = mg.init.glorot_uniform((400, 300), seed=0, dtype="float64")
    assert xavier.dtype == np.float64 and -limit <= xavier.min() and xavier.max() <= limit and xavier.max() > 0.99 * limit
    assert abs(mg.init.xavier_normal((400, 300), seed=0).std() - np.sqrt(2 / 700)) < 0.002
    assert np.abs(mg.init.he_uniform((50, 3), seed=0)).max() <= np.sqrt(6 / 50)
    assert not mg.init.zeros((2, 2)).any() and mg.init.uniform((2,), 1, 2, seed=0).min() >= 1


def test_dense_layer():
    x = mg.placeholder("x", (None, 4))
    hidden = mg.nn.dense(x, 3, activation=mg.relu, seed=0, name="layer")
    W, b = hidden.variables
    assert hidden.shape == (None, 3) and W.name == "layer/W" and W.shape == (4, 3) and b.shape == (3,)
    value = mg.Session().run(hidden, {x: np.ones((2, 4))})
    assert np.allclose(value, np.maximum(np.ones((2, 4)) @ W.initial_value, 0))
    assert np.array_equal(mg.nn.dense(x, 3, seed=0).variables[0].initial_value, W.initial_value)
    assert not mg.nn.dense(x, 2, init="zeros").variables[0].initial_value.any()
    with pytest.raises(ValueError, match="last dimension"):
        mg.nn.dense(mg.placeholder("u", (2, None)), 3, seed=0)


def test_dropout_is_reproducible_and_switchable():
    x = mg.placeholder("x", (1000,))
    training = mg.placeholder("training", (), "bool")
    ones = np.ones(1000, np.float32)

    def masks(seed):
        dropped = mg.nn.dropout(x, 0.25, training, seed=seed)
        sess = mg.Session()
        return [sess.run(dropped, {x: ones, training: True}) for _ in range(2)] + [sess.run(dropped, {x: ones, training: False})]

    first, second, evaluation = masks(3)
    assert np.array_equal(masks(3)[1], second) and not np.array_equal(first, second)
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.75)} and abs(first.mean() - 1) < 0.1
    assert np.array_equal(evaluation, ones)
    assert mg.nn.dropout(x, 0.5, False) is x
    with pytest.raises(ValueError, match="rate must be in"):
        mg.nn.dropout(x, 1.0, seed=0)


def test_weight_decay_pulls_weights_toward_zero():
    w1, w2 = mg.Variable(np.array([1.0, -2.0])), mg.Variable(np.array([[3.0]]))
    penalty = mg.nn.weight_decay([w1, w2], 0.1)
    value, g1, g2 = mg.Session().run([penalty, *mg.gradients(penalty, [w1, w2])])
    assert np.isclose(value, 0.1 * (1 + 4 + 9) / 2) and np.allclose(g1, [0.1, -0.2]) and np.allclose(g2, [[0.3]])


@pytest.mark.parametrize("broken, fragment", [
    (lambda y, xs: None, "must return a list of 2 nodes"),
    (lambda y, xs: [mg.gradients(y, xs[0])], "must return a list of 2 nodes"),
    (lambda y, xs: [mg.gradients(y, xs[0]), None], "gave None for 'b' (3,)"),
    (lambda y, xs: [mg.gradients(y, xs[0]), mg.reduce_sum(xs[1])], "gave <reduce_sum"),
])
def test_minimize_names_a_broken_gradients_function(broken, fragment):
    W, b = mg.Variable(np.ones((2, 3)), name="W"), mg.Variable(np.zeros(3), name="b")
    loss = mg.reduce_sum(mg.reduce_sum(W, axis=0) + b)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        mg.optim.SGD(0.1, gradients=broken).minimize(loss, [W, b])


def test_weight_decay_of_no_weights_is_a_clear_error():
    with pytest.raises(ValueError, match="needs at least one weight"):
        mg.nn.weight_decay([], 1e-4)


@pytest.mark.parametrize("lr, error, fragment", [
    (float("nan"), ValueError, "must be a finite number, got nan"),
    (float("inf"), ValueError, "must be a finite number, got inf"),
    (np.float32("-inf"), ValueError, "got -inf"),
    ("0.1", TypeError, "must be a number, a scalar node or a schedule .* got the str '0.1'"),
    (None, TypeError, "got the NoneType None"),
    (True, TypeError, "got the bool True"),
    (mg.constant([0.1, 0.2]), TypeError, "must be a float scalar"),
])
def test_an_unusable_learning_rate_is_refused_when_the_optimizer_is_built(lr, error, fragment):
    for optimizer in (mg.optim.SGD, mg.optim.Adam, mg.optim.Momentum):
        with pytest.raises(error, match=fragment):
            optimizer(lr)


def test_a_schedule_that_gives_nan_is_named_at_run_time():
    w = mg.Variable(np.ones(2, np.float32), name="w")
    step = mg.optim.SGD(lambda t: float("nan") if t == 2 else 0.1).minimize(mg.reduce_sum(w * w))
    sess = mg.Session()
    sess.run(step), sess.run(step)
    with pytest.raises(ValueError, match="the learning-rate schedule .* gave nan at step 2, not a finite number"):
        sess.run(step)


def test_an_update_rule_that_returns_nothing_is_warned_about():
    class Forgetful(mg.optim.SGD):
        def update(self, var, grad):
            mg.assign_sub(var, self.learning_rate * grad)  # built, but not returned: it never runs

    w = mg.Variable(np.ones(2, np.float32), name="w")
    with pytest.warns(UserWarning, match=r"Forgetful.update returned None for 'w' \(2,\), so the step leaves it unchanged"):
        step = Forgetful(0.1).minimize(mg.reduce_sum(w * w))
    sess = mg.Session()
    sess.run(step)
    assert np.array_equal(sess.run(w), [1, 1])
