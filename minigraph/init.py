"""Initial values for Variables (numpy arrays), reproducible: every random initializer takes ``seed=`` (an
int) or ``rng=`` (a ``numpy.random.Generator``, to draw several arrays from one stream) and refuses to run
without one.

For a weight of shape ``(fan_in, fan_out)`` (more generally ``fan_in = prod(shape[:-1])``):

- Xavier/Glorot keeps the variance of activations and gradients alike across layers: ``Var = 2 / (fan_in +
  fan_out)``, i.e. normal with that variance or uniform on ``±sqrt(6 / (fan_in + fan_out))``;
- He suits ReLU layers, which zero half their inputs: ``Var = 2 / fan_in``, i.e. normal with that
  variance or uniform on ``±sqrt(6 / fan_in)``.
"""

import math

import numpy as np


def generator(seed=None, rng=None):
    """``rng`` if given, else a new generator seeded with ``seed``; neither is an error."""
    if rng is not None:
        return rng
    if seed is None:
        raise TypeError("pass seed= (an int) or rng= (a numpy Generator): initial values must be reproducible")
    return np.random.default_rng(seed)


def _fans(shape):
    shape = tuple(shape)
    if not shape:
        raise ValueError("fan-based initializers need a shape with at least one axis")
    return math.prod(shape[:-1]) if len(shape) > 1 else shape[0], shape[-1]


def zeros(shape, *, seed=None, rng=None, dtype="float32"):
    """All zeros (fine for biases; for weights it leaves all units of a layer identical). ``seed`` and
    ``rng`` are ignored: they are there so that every initializer is called the same way."""
    return np.zeros(shape, dtype)


def normal(shape, std=0.01, mean=0.0, *, seed=None, rng=None, dtype="float32"):
    """Normal with mean ``mean`` and standard deviation ``std``."""
    return generator(seed, rng).normal(mean, std, size=shape).astype(dtype)


def uniform(shape, low=-0.05, high=0.05, *, seed=None, rng=None, dtype="float32"):
    """Uniform on ``[low, high)``."""
    return generator(seed, rng).uniform(low, high, size=shape).astype(dtype)


def xavier_normal(shape, *, seed=None, rng=None, dtype="float32"):
    """Glorot/Xavier normal: standard deviation ``sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(shape)
    return normal(shape, math.sqrt(2 / (fan_in + fan_out)), seed=seed, rng=rng, dtype=dtype)


def xavier_uniform(shape, *, seed=None, rng=None, dtype="float32"):
    """Glorot/Xavier uniform on ``±sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6 / (fan_in + fan_out))
    return uniform(shape, -limit, limit, seed=seed, rng=rng, dtype=dtype)


def he_normal(shape, *, seed=None, rng=None, dtype="float32"):
    """He normal (for ReLU layers): standard deviation ``sqrt(2 / fan_in)``."""
    fan_in, _ = _fans(shape)
    return normal(shape, math.sqrt(2 / fan_in), seed=seed, rng=rng, dtype=dtype)


def he_uniform(shape, *, seed=None, rng=None, dtype="float32"):
    """He uniform (for ReLU layers) on ``±sqrt(6 / fan_in)``."""
    fan_in, _ = _fans(shape)
    limit = math.sqrt(6 / fan_in)
    return uniform(shape, -limit, limit, seed=seed, rng=rng, dtype=dtype)


glorot_normal, glorot_uniform = xavier_normal, xavier_uniform
