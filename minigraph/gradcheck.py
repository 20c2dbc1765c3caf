"""Gradient checking: compare the gradients autodiff builds with central finite differences.

``df/dx_i ≈ (f(x + ε e_i) - f(x - ε e_i)) / 2ε`` has error O(ε²), so in float64 with ε = 1e-6 it agrees
with a correct gradient to about 1e-8 relative; build the graph in float64 to check it.
"""

import numpy as np

from .autodiff import gradients
from .graph import Placeholder, Variable, describe
from .session import Session


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of ``sum(f(x))`` w.r.t. the array ``x``, computed in float64."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        above = np.sum(f(x))
        x[index] = original - eps
        below = np.sum(f(x))
        x[index] = original
        grad[index] = (above - below) / (2 * eps)
    return grad


def check_gradients(y, xs, feed_dict=None, eps=1e-6, rtol=1e-4, atol=1e-6):
    """Check ``gradients(y, xs)`` against :func:`numerical_gradient` of ``sum(y)``.

    ``xs`` are placeholders (valued by ``feed_dict``) or variables (at their initial values). Returns the
    largest absolute error per ``x``; raises ``AssertionError`` naming the first ``x`` whose error exceeds
    ``atol + rtol * |numerical|``, with the worst entry's index, analytic and numerical values.
    """
    feed_dict = dict(feed_dict or {})
    for x in xs:
        if not isinstance(x, (Placeholder, Variable)):
            raise TypeError(f"check_gradients: {describe(x)} must be a placeholder or a variable")
        if x.dtype != np.float64:
            raise TypeError(f"check_gradients: {describe(x)} is {x.dtype}; finite differences need float64 "
                            "(declare it with dtype='float64'): float32 rounding swamps a step of 1e-6")
        if isinstance(x, Placeholder) and x not in feed_dict:
            raise KeyError(f"check_gradients: placeholder {describe(x)} needs a value in feed_dict")
    sess = Session()
    analytic = sess.run(gradients(y, list(xs)), feed_dict)
    errors = []
    for x, grad in zip(xs, analytic):
        start = feed_dict[x] if isinstance(x, Placeholder) else x.initial_value
        numerical = numerical_gradient(lambda value: _evaluate(sess, y, x, value, feed_dict), start, eps)
        if isinstance(x, Variable):
            sess.set_value(x, start)  # undo the last perturbation before checking the next x
        error = np.abs(grad - numerical)
        errors.append(float(error.max()) if error.size else 0.0)
        excess = error - (atol + rtol * np.abs(numerical))
        if excess.size and excess.max() > 0:
            worst = tuple(int(i) for i in np.unravel_index(np.argmax(excess), excess.shape))
            raise AssertionError(f"gradient of {y.name!r} w.r.t. {describe(x)} is wrong at index {worst}: "
                                 f"autodiff gives {float(grad[worst]):.6g}, finite differences "
                                 f"{float(numerical[worst]):.6g} (max abs error {errors[-1]:.3g})")
    return errors


def _evaluate(sess, y, x, value, feed_dict):
    if isinstance(x, Variable):
        sess.set_value(x, value)
        return sess.run(y, feed_dict)
    return sess.run(y, {**feed_dict, x: value})
