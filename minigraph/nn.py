"""Layer helpers so that an MLP is a few lines:

    rng = np.random.default_rng(0)
    hidden = mg.nn.dense(x, 256, activation=mg.relu, rng=rng)
    hidden = mg.nn.dropout(hidden, 0.5, training, rng=rng)
    logits = mg.nn.dense(hidden, 10, rng=rng)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y)) + mg.nn.weight_decay([...], 1e-4)
"""

import numpy as np

from . import init as initializers
from .graph import Variable, describe, unique_name
from .ops import NoGradient, reduce_sum


def dense(x, units, activation=None, init="he_normal", *, seed=None, rng=None, name=None):
    """A fully connected layer ``activation(x @ W + b)``; returns its output node.

    ``W`` (shape ``(in, units)``) comes from ``init`` — a name from :mod:`minigraph.init` or a
    function ``init(shape, seed=..., rng=..., dtype=...)`` — with ``seed`` or ``rng``; ``b``
    starts at zero. The layer's variables are ``output.variables == (W, b)``.
    """
    if x.shape is None or x.shape[-1] is None:
        raise ValueError(f"dense: the last dimension of the input {describe(x)} must be known")
    name = name or unique_name("dense")
    initializer = getattr(initializers, init) if isinstance(init, str) else init
    weights = initializer((x.shape[-1], units), seed=seed, rng=rng, dtype=x.dtype)
    W = Variable(weights, name=f"{name}/W")
    b = Variable(np.zeros(units, x.dtype), name=f"{name}/b")
    output = x @ W + b
    if activation is not None:
        output = activation(output)
    output.variables = (W, b)
    return output


class DropoutMask(NoGradient):
    """The dropout mask for ``x``: each entry ``1 / (1 - rate)`` with probability ``1 - rate``, else 0 —
    drawn anew at every run from the op's own generator — or all ones when ``training`` is false."""

    name = "dropout_mask"
    stateful = True  # a new mask at every run: never recomputed (checkpointing) nor merged with another

    def __init__(self, rate, rng):
        self.rate, self.rng = rate, rng

    def compute(self, node, input_values):
        x, *training = input_values
        if training and not bool(training[0]):
            return np.ones_like(x)
        keep = self.rng.random(x.shape) >= self.rate
        return keep.astype(x.dtype) / x.dtype.type(1 - self.rate)

    def infer_shape(self, node, input_shapes):
        return input_shapes[0]

    def infer_dtype(self, node, input_dtypes):
        return input_dtypes[0]


def dropout(x, rate, training=True, *, seed=None, rng=None):
    """Inverted dropout: zero each entry with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)``, so nothing changes at test time. ``training`` is a bool or a scalar bool
    placeholder (feed True while training, False to evaluate). Masks are reproducible given
    ``seed``/``rng`` and the sequence of runs."""
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    if training is False or rate == 0:
        return x
    generator = initializers.generator(seed, rng)
    inputs = (x,) if training is True else (x, training)
    return x * DropoutMask(rate, generator)(*inputs)


def l2_loss(x):
    """``sum(x²) / 2`` (its gradient is ``x``)."""
    return reduce_sum(x * x) * 0.5


def weight_decay(weights, rate):
    """``rate * sum_w sum(w²) / 2``: add it to a loss and each ``w`` is pulled toward 0 by ``rate * w``."""
    if not weights:
        raise ValueError("weight_decay needs at least one weight, e.g. weight_decay([W1, W2], 1e-4)")
    total = l2_loss(weights[0])
    for w in weights[1:]:
        total = total + l2_loss(w)
    return total * rate
