r"""Checks of chapter 04, SGD and optimization.

- 4.1 ``momentum_step(theta, grad, velocity, lr, momentum, nesterov=False) -> (theta, velocity)``:
  $v' = \mu v + g$, then $\theta' = \theta - \eta v'$ (heavy ball) or $\theta - \eta (g + \mu v')$ (Nesterov).
- 4.2 ``adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps) -> (theta, m, v)``: Adam with the bias
  corrections $\hat m = m / (1 - \beta_1^t)$, $\hat v = v / (1 - \beta_2^t)$.
- 4.3 ``he_normal(shape, *, seed=None, rng=None, dtype="float32")``: normal, mean 0, variance $2 / n_{in}$.
- 4.4 ``l2_penalty(weights, rate)``: the node $\frac{\lambda}{2} \sum_W \lVert W \rVert^2$, checked by value
  and gradient ($\lambda W$).
- 4.5 ``AdamW``: a subclass of ``mg.optim.Optimizer`` whose ``update`` is Adam with decoupled weight decay,
  $\theta \leftarrow \theta - \eta (\hat m / (\sqrt{\hat v} + \epsilon) + \lambda \theta)$; compared step by
  step with a numpy reference, then trained on MNIST (the history comes back as ``check(...).value``).

Sequences of steps run on the quadratic $L(\theta) = \frac12 \sum_i h_i \theta_i^2 + c^\top \theta$ with
fixed seeds, so every report is deterministic.
"""

import numpy as np

from .. import init, nn, ops
from ..autodiff import gradients
from ..graph import Node, Variable, constant, describe, placeholder, topological_sort
from ..init import xavier_normal
from ..nn import dense
from ..optim import SGD, Adam, Optimizer
from ..session import Session
from .framework import CheckFailure, Passed, Text, call_unchanged, exercise, expect_close, expect_shape
from .training import history_by_epoch, mnist_splits

# ---------------------------------------------------------------------------------------------- shared


def _quadratic(shape, seed):
    """Curvatures h > 0 and a linear term c of ``shape``: the gradient of the test loss is h * theta + c."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 5.0, size=shape), rng.normal(size=shape)


def _expect_pair(result, what, names, shape, given):
    """``result`` must be a tuple of ``len(names)`` arrays of ``shape``; returns it as a list."""
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise CheckFailure(f"{what} should return a tuple ({', '.join(names)})", input=given, got=result)
    for name, value in zip(names, result):
        expect_shape(np.asarray(value) if isinstance(value, (float, int, list)) else value, shape, input=given,
                     what=f"the returned {name}")
    return list(result)


def _expect_sequence(step_function, reference, start, steps, given, what, names):
    """Run ``steps`` steps of the learner's and the reference's ``step_function`` from ``start`` (a dict of
    arrays, ``theta`` first); fail at the first step where any array differs."""
    mine, theirs = dict(start), dict(start)
    for number in range(1, steps + 1):
        expected = reference(number, **theirs)
        got = _expect_pair(step_function(number, **{k: v.copy() for k, v in mine.items()}), what, names,
                           start["theta"].shape, given)
        for name, value, want in zip(names, got, expected):
            expect_close(value, want, input=given, rtol=1e-6, atol=1e-9,
                         what=f"{name} after step {number} of {steps}")
        mine, theirs = dict(zip(names, got)), dict(zip(names, expected))


# ---------------------------------------------------------------------------------------------- 4.1


def _reference_momentum(theta, grad, velocity, lr, momentum, nesterov=False):
    new_velocity = momentum * velocity + grad
    direction = grad + momentum * new_velocity if nesterov else new_velocity
    return theta - lr * direction, new_velocity


@exercise(
    "4.1",
    "momentum and Nesterov steps",
    expects="momentum_step(theta, grad, velocity, lr, momentum, nesterov=False)",
    nudge="Update the velocity first; the heavy ball then steps along the new velocity, and Nesterov looks one "
    "momentum step further along it.",
    hint="The new velocity is momentum times the old one plus the gradient. The heavy ball subtracts lr times "
    "the new velocity from theta; Nesterov subtracts lr times (the gradient plus momentum times the new "
    "velocity). Return new arrays, (theta, velocity), leaving the ones you were given unchanged.",
)
def _(momentum_step):
    theta, grad, velocity = np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.0, -4.0]), np.array([0.2, 0.0, -1.0])
    for nesterov in (False, True):
        for lr, momentum in ((0.1, 0.9), (0.3, 0.0)):
            before = {"theta": theta.copy(), "grad": grad.copy(), "velocity": velocity.copy()}
            given = {**before, "lr": lr, "momentum": momentum, "nesterov": nesterov}
            got = _expect_pair(call_unchanged(momentum_step, theta.copy(), grad.copy(), velocity.copy(), lr, momentum,
                                              nesterov=nesterov),
                               "momentum_step", ("theta", "velocity"), theta.shape, given)
            expected = _reference_momentum(theta, grad, velocity, lr, momentum, nesterov)
            for name, value, want in zip(("velocity", "theta"), got[::-1], expected[::-1]):
                expect_close(value, want, input=given, rtol=1e-9, what=f"the new {name}")
    curvature, linear = _quadratic((3, 2), seed=41)
    for nesterov in (False, True):
        given = {"loss": Text("1/2 sum(h theta²) + c·theta, h and c of shape (3, 2)"), "lr": 0.1, "momentum": 0.9,
                 "nesterov": nesterov, "start": Text("theta from a seeded normal, velocity = 0")}

        def run(step_function):
            return lambda number, theta, velocity: step_function(
                theta, curvature * theta + linear, velocity, 0.1, 0.9, nesterov=nesterov)

        start = {"theta": np.random.default_rng(4).normal(size=(3, 2)), "velocity": np.zeros((3, 2))}
        _expect_sequence(run(momentum_step), run(_reference_momentum), start, 20, given, "momentum_step",
                         ("theta", "velocity"))
    return "single steps with and without momentum, and 20 steps on a quadratic, heavy ball and Nesterov"


# ---------------------------------------------------------------------------------------------- 4.2


def _reference_adam(theta, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


@exercise(
    "4.2",
    "Adam with bias correction",
    expects="adam_step(theta, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)",
    nudge="Update both moving averages, correct each for its start at zero, then step by the corrected mean "
    "over the square root of the corrected second moment.",
    hint="m and v are exponential moving averages of grad and grad²: the new m is beta1 m + (1 - beta1) grad, "
    "and v likewise with beta2 and grad². The bias corrections divide them by 1 - beta1**t and 1 - beta2**t; "
    "the step is lr m_hat / (sqrt(v_hat) + eps). Return the new theta and the new, uncorrected, m and v: the "
    "corrections are recomputed at every step.",
)
def _(adam_step):
    theta, grad = np.array([1.0, -2.0, 0.5, 3.0]), np.array([3.0, -0.2, 0.05, 0.0])
    zeros = np.zeros(4)
    before = {"theta": theta.copy(), "grad": grad.copy()}
    given = {**before, "m": zeros, "v": zeros, "t": 1, "lr": 0.01}
    got = _expect_pair(call_unchanged(adam_step, theta.copy(), grad.copy(), zeros.copy(), zeros.copy(), 1, lr=0.01),
                       "adam_step", ("theta", "m", "v"), theta.shape, given)
    expected = _reference_adam(theta, grad, zeros, zeros, 1, lr=0.01)
    expect_close(got[1], expected[1], input=given, rtol=1e-9, what="m after the first step")
    expect_close(got[2], expected[2], input=given, rtol=1e-9, what="v after the first step")
    step, expected_step = theta - np.asarray(got[0]), theta - expected[0]
    moving = expected_step != 0
    ratio = np.median(np.abs(step[moving] / expected_step[moving]))
    if abs(ratio - np.sqrt(1000) / 10) < 0.01:
        raise CheckFailure("the first step is 3.16 times too long: (1 - 0.9) / sqrt(1 - 0.999) is what the missing "
                           "bias corrections give. At t = 1 the step should be lr * grad / (|grad| + eps) in each "
                           "coordinate", input=given, expected=expected[0], got=got[0])
    expect_close(got[0], expected[0], input=given, rtol=1e-5, atol=1e-12,
                 what="theta after the first step (it should be theta - lr * sign(grad), nearly)")
    rng = np.random.default_rng(42)
    later = {"theta": rng.normal(size=(2, 3)), "grad": rng.normal(size=(2, 3)), "m": rng.normal(size=(2, 3)) * 0.1,
             "v": rng.uniform(0.1, 1.0, size=(2, 3)), "t": 5, "lr": 0.1, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}
    positional = [np.copy(later[name]) if name != "t" else later[name] for name in ("theta", "grad", "m", "v", "t")]
    hyperparameters = {name: later[name] for name in ("lr", "beta1", "beta2", "eps")}
    got = _expect_pair(call_unchanged(adam_step, *positional, **hyperparameters), "adam_step", ("theta", "m", "v"),
                       (2, 3), later)
    for name, value, want in zip(("theta", "m", "v"), got, _reference_adam(**later)):
        expect_close(value, want, input=later, rtol=1e-6, atol=1e-12,
                     what=f"the new {name} at t = 5, with beta1 = 0.8, beta2 = 0.99, eps = 1e-6")
    curvature, linear = _quadratic(5, seed=43)
    given = {"loss": Text("1/2 sum(h theta²) + c·theta, h and c of shape (5,)"), "lr": 0.05, "eps": 1e-10,
             "start": Text("theta from a seeded normal, m = v = 0"), "t": Text("1, 2, ..., 30")}

    def run(step_function):  # a tiny eps: whether it sits inside the square root or not makes no difference
        return lambda number, theta, m, v: step_function(theta, curvature * theta + linear, m, v, number, lr=0.05,
                                                         eps=1e-10)

    start = {"theta": np.random.default_rng(5).normal(size=5), "m": np.zeros(5), "v": np.zeros(5)}
    _expect_sequence(run(adam_step), run(_reference_adam), start, 30, given, "adam_step", ("theta", "m", "v"))
    return "the first step, a later step with other hyperparameters, and 30 steps on a quadratic"


# ---------------------------------------------------------------------------------------------- 4.3

_NORMAL_WITHIN_ONE_STD = 0.6827  # P(|z| < 1) for a standard normal; 0.577 for a uniform of the same variance


@exercise(
    "4.3",
    "He initialization",
    expects='he_normal(shape, *, seed=None, rng=None, dtype="float32")',
    nudge="Draw from the generator the first line gives you: a normal distribution with mean 0 and standard "
    "deviation sqrt(2 / fan_in); then convert to dtype.",
    hint="fan_in is shape[0], the number of inputs of the layer. rng.normal(mean, standard deviation, "
    "size=shape) draws the weights and .astype(dtype) converts them. Draw from that rng, never from "
    "np.random: the weights must depend on the seed only.",
    unavailable=[init.he_normal],
)
def _(he_normal):
    for shape, dtype in (((784, 256), "float32"), ((30, 10), "float64")):
        got = he_normal(shape, seed=0, dtype=dtype)
        expect_shape(got, shape, dtype=np.dtype(dtype), input={"shape": shape, "seed": 0, "dtype": dtype},
                     what="he_normal(shape)")
    first, again, other = (he_normal((50, 40), seed=seed) for seed in (7, 7, 8))
    if not np.array_equal(first, again):
        raise CheckFailure("two calls with seed=7 gave different weights: draw from the generator made from the "
                           "seed (rng = mg.init.generator(seed, rng)), not from np.random",
                           input={"shape": (50, 40), "seed": 7})
    if np.array_equal(first, other):
        raise CheckFailure("seeds 7 and 8 gave the same weights: the result must come from the generator",
                           input={"shape": (50, 40), "seeds": (7, 8)})
    generator = np.random.default_rng(3)
    if np.array_equal(he_normal((20, 20), rng=generator), he_normal((20, 20), rng=generator)):
        raise CheckFailure("two draws from one rng= gave the same weights: use the generator passed as rng=",
                           input={"shape": (20, 20), "rng": Text("np.random.default_rng(3), used twice")})
    for shape in ((1000, 500), (50, 2000)):
        given = {"shape": shape, "seed": 0}
        weights = np.asarray(he_normal(shape, seed=0), dtype=np.float64)
        want = np.sqrt(2 / shape[0])
        expect_close(weights.std(), want, input=given, rtol=0.01,
                     what=f"the standard deviation (it should be sqrt(2 / fan_in) with fan_in = {shape[0]})")
        if abs(weights.mean()) > 0.01 * want:
            raise CheckFailure(f"the mean is {weights.mean():.4g}; the weights should be centred at 0",
                               input=given, expected=0.0, got=weights.mean())
        within = np.mean(np.abs(weights) < want)
        if abs(within - _NORMAL_WITHIN_ONE_STD) > 0.01:
            raise CheckFailure(f"{within:.1%} of the weights lie within one standard deviation of 0; for a normal "
                               f"distribution it is {_NORMAL_WITHIN_ONE_STD:.1%}. Draw from rng.normal",
                               input=given, expected=_NORMAL_WITHIN_ONE_STD, got=within)
    scale, xavier = _relu_depth_scale(he_normal), _relu_depth_scale(xavier_normal)
    return (f"shapes, dtypes, seeds and statistics; through 20 ReLU layers your weights keep the scale of the "
            f"activations ({scale:.2f}×; Xavier's would shrink it {1 / xavier:.0f}×)")


def _relu_depth_scale(init, depth=20, width=256):
    """How much the root mean square of activations changes through ``depth`` ReLU layers."""
    rng = np.random.default_rng(0)
    h = np.maximum(rng.normal(size=(500, width)), 0)
    start = np.sqrt(np.mean(h**2))
    for layer in range(depth):
        h = np.maximum(h @ np.asarray(init((width, width), seed=layer), dtype=np.float64), 0)
    return np.sqrt(np.mean(h**2)) / start


# ---------------------------------------------------------------------------------------------- 4.4


def _expect_node(got, what, given):
    if not isinstance(got, Node):
        raise CheckFailure(f"{what} should be a graph node (built from mg ops), not a {type(got).__name__}",
                           input=given, got=got)


@exercise(
    "4.4",
    "an L2 penalty as graph nodes",
    expects="l2_penalty(weights, rate)",
    nudge="Build the penalty from minigraph ops — a sum of squares for each weight, added up, times rate / 2 — "
    "so that it is part of the graph.",
    hint="mg.reduce_sum(W * W) is the squared norm of one weight, a scalar node. Add the norms of all the "
    "weights with +, then multiply by rate / 2: the 1/2 makes the gradient of the penalty rate · W.",
    unavailable=[nn.weight_decay, nn.l2_loss],
)
def _(l2_penalty):
    rng = np.random.default_rng(44)
    values = [rng.normal(size=(3, 2)), rng.normal(size=4), rng.normal(size=(2, 2))]
    for count, rate in ((1, 0.1), (3, 0.01), (2, 0.0)):
        weights = [Variable(value, name=f"W{i}") for i, value in enumerate(values[:count])]
        given = {"weights": Text(", ".join(describe(w) for w in weights)), "rate": rate}
        penalty = l2_penalty(weights, rate)
        _expect_node(penalty, "l2_penalty(weights, rate)", given)
        if penalty.shape not in ((), None):
            raise CheckFailure(f"the penalty should be a scalar node, not of shape {penalty.shape}: sum every "
                               "entry (mg.reduce_sum without an axis)", input=given)
        sess = Session()
        expected = rate / 2 * sum(np.sum(value**2) for value in values[:count])
        expect_close(sess.run(penalty), expected, input=given, rtol=1e-9, what="the penalty's value")
        for w, value, g in zip(weights, values, gradients(penalty, weights)):
            expect_close(sess.run(g), rate * value, input=given, rtol=1e-9,
                         what=f"the gradient of the penalty with respect to {w.name} (it should be rate * {w.name})")
    W = Variable(values[0].copy(), name="W")
    data = rng.normal(size=(3, 2))
    loss = ops.reduce_sum(constant(data) * W * W)
    sess = Session()
    sess.run(SGD(0.1).minimize(loss + l2_penalty([W], 0.5)))
    expect_close(sess.run(W), (1 - 0.1 * 0.5) * values[0] - 0.1 * 2 * data * values[0], rtol=1e-9,
                 input={"loss": Text("sum(D * W * W)"), "lr": 0.1, "rate": 0.5},
                 what="W after one SGD step on loss + penalty (it should be (1 - lr rate) W - lr dL/dW)")
    return "values and gradients for one to three weights; an SGD step on loss + penalty decays W by (1 - lr rate)"


# ---------------------------------------------------------------------------------------------- 4.5

MNIST_EPOCHS, MNIST_BATCH, MNIST_LR, MNIST_DECAY, ACCURACY_FLOOR = 3, 128, 2e-3, 1e-2, 0.97


def _reference_adamw(theta, grad, m, v, t, lr, weight_decay, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return theta - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * theta), m, v


def _expect_optimizer(AdamW, lr, weight_decay):
    if not issubclass(AdamW, Optimizer):
        raise CheckFailure("AdamW should be a subclass of mg.optim.Optimizer (class AdamW(mg.optim.Optimizer): ...)",
                           got=AdamW)
    return AdamW(lr=lr, weight_decay=weight_decay)


def _expect_steps(AdamW, lr, weight_decay, steps=5):
    """Two float64 variables on a quadratic, ``steps`` runs of the update node, against the reference."""
    shapes = {"w": (3,), "B": (2, 2)}
    problems = {name: _quadratic(shape, seed=45 + i) for i, (name, shape) in enumerate(shapes.items())}
    starts = {name: np.random.default_rng(6 + i).normal(size=shape) for i, (name, shape) in enumerate(shapes.items())}
    variables = {name: Variable(start.copy(), name=name) for name, start in starts.items()}
    loss = None
    for name, var in variables.items():
        curvature, linear = problems[name]
        term = ops.reduce_sum(0.5 * constant(curvature) * var * var + constant(linear) * var)
        loss = term if loss is None else loss + term
    update = _expect_optimizer(AdamW, lr, weight_decay).minimize(loss)
    if not isinstance(update, Node):
        raise CheckFailure("minimize(loss) did not return a node: update(var, grad) should return the assign "
                           "node(s) that change var", got=update)
    given = {"loss": Text("1/2 sum(h w²) + c·w + the same for B (float64 Variables w (3,), B (2, 2))"),
             "lr": lr, "weight_decay": weight_decay}
    written = {node.inputs[0] for node in topological_sort(update) if node.op.mutates}
    for name, var in variables.items():
        if var not in written:
            raise CheckFailure(f"the update node never writes {name}: update(var, grad) must return the node that "
                               "changes var (e.g. mg.assign_sub(var, ...)); nodes that are built but not returned "
                               "never run", input=given)
    sess = Session()
    state = {name: (start, np.zeros_like(start), np.zeros_like(start)) for name, start in starts.items()}
    for t in range(1, steps + 1):
        sess.run(update)
        for name, var in variables.items():
            theta, m, v = state[name]
            curvature, linear = problems[name]
            grad = curvature * theta + linear
            state[name] = _reference_adamw(theta, grad, m, v, t, lr, weight_decay)
            got = sess.run(var)
            if t == 1:  # the same step with the decay added to the gradient: Adam with an L2 penalty
                coupled = _reference_adamw(theta, grad + weight_decay * theta, m, v, t, lr, 0.0)[0]
                _diagnose_first_step(got, theta, state[name][0], coupled, name, given, weight_decay)
            expect_close(got, state[name][0], input=given, rtol=1e-6, atol=1e-12, what=f"{name} after step {t}")


def _diagnose_first_step(got, start, expected, coupled, name, given, weight_decay):
    """Name two typical mistakes from the first step: a variable that did not move, a decay through Adam."""
    if np.array_equal(got, start):
        raise CheckFailure(f"{name} did not move in the first step. Step with the outputs of mg.assign(m, ...) and "
                           "mg.assign(v, ...), the new averages: a plain read of m or v sees its value from before "
                           "the run (zeros at the first step)", input=given, expected=expected, got=got)
    if weight_decay and np.allclose(got, coupled, rtol=1e-6, atol=1e-12):
        raise CheckFailure("this is Adam with an L2 penalty: weight_decay * var was added to the gradient, so Adam "
                           "divides it by sqrt(v_hat). Decoupled decay adds it to Adam's direction instead: "
                           "lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * var)",
                           input=given, expected=expected, got=got)


@exercise(
    "4.5",
    "AdamW trains MNIST",
    expects="""
        class AdamW(mg.optim.Optimizer):
            def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, gradients=None): ...
            def update(self, var, grad): ...
    """,
    nudge="Adam's update as graph nodes, on the slots m and v, with weight_decay · var added to Adam's direction "
    "(not to the gradient); return the node that changes var.",
    hint="self.slot(var, 'm') and self.slot(var, 'v') are the moving averages. Take the new averages from the "
    "outputs of mg.assign(m, ...) and mg.assign(v, ...): a plain read of m sees its value from before the "
    "run. Correct them with self.step (1 - beta ** self.step). The direction is m_hat / (mg.sqrt(v_hat) + "
    "eps) + weight_decay · var, and update returns mg.assign_sub(var, self.learning_rate times it).",
    unavailable=[Adam.update],
    time_limit=90,
)
def _(AdamW):
    _expect_steps(AdamW, lr=0.1, weight_decay=0.0)
    _expect_steps(AdamW, lr=0.05, weight_decay=0.1)
    history = _train_mnist(AdamW)
    final = history["test_acc"][-1]
    if not final >= ACCURACY_FLOOR:
        raise CheckFailure(f"after {MNIST_EPOCHS} epochs the test accuracy is {final:.4f}; the MLP trained with AdamW "
                           f"reaches more than {ACCURACY_FLOOR}. The test accuracy after each epoch:",
                           got=[round(value, 4) for value in history["test_acc"]])
    # The accuracy itself is left to the plot of the history: its last digits may differ between machines.
    return Passed(f"5 steps as the reference's, with and without decay; a 784-256-10 MLP trained {MNIST_EPOCHS} "
                  f"epochs with your AdamW passes {ACCURACY_FLOOR:.0%} test accuracy", value=history)


def _train_mnist(AdamW):
    """The chapter's MLP trained with the learner's optimizer; the history, evaluated after each epoch."""
    from ..datasets import batches

    rng = np.random.default_rng(0)
    x, labels = placeholder("x", shape=(None, 784)), placeholder("labels", shape=(None,), dtype="int64")
    logits = dense(dense(x, 256, activation=ops.relu, rng=rng), 10, rng=rng)
    loss = ops.reduce_mean(ops.softmax_cross_entropy(logits, labels))
    accuracy = ops.reduce_mean(ops.cast(ops.equal(ops.argmax(logits, axis=1), labels), "float32"))
    train_step = _expect_optimizer(AdamW, MNIST_LR, MNIST_DECAY).minimize(loss)
    data = mnist_splits()
    sess = Session()

    def train_epoch(epoch):
        for images, digits in batches(*data["train"], MNIST_BATCH, rng=epoch):
            sess.run(train_step, {x: images, labels: digits})

    return history_by_epoch(MNIST_EPOCHS, train_epoch, lambda images, digits: sess.run(
        [loss, accuracy], {x: images, labels: digits}), data)
