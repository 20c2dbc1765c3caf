"""The optimizers. Each ``update(var, grad)`` states its rule in a few graph ops; ``minimize`` does the rest."""

import math
import numbers
import warnings

import numpy as np

from ..autodiff import gradients as autodiff_gradients
from ..graph import Node, Variable, describe, role_scope, shapes_compatible, trainable_variables
from ..ops import NoGradient, assign, assign_add, assign_sub, cast, group, sqrt


class Optimizer:
    """Base class: ``minimize(loss, var_list=None)`` returns one update node.

    ``lr`` is a number, a node, or a schedule (a function ``step -> rate``, see :mod:`.schedules`).
    ``gradients(y, xs) -> list`` computes the gradients (default :func:`minigraph.gradients`; pass your own
    reverse-mode function to train with it).

    To write an optimizer, subclass and implement ``update(self, var, grad)``, returning the assign node(s)
    that update ``var`` given its gradient node. Available inside ``update``:

    - ``self.learning_rate``: the learning rate of this step (a number or a node);
    - ``self.step``: the number of this update, 1, 2, 3, ... (a float node, for bias corrections);
    - ``self.slot(var, name)``: a per-variable state Variable (zeros, not trainable), e.g. a velocity.

    Within one run, reads of a variable see its value from before the run; use the output of an assign
    node (its new value) to chain updates, as ``Momentum`` does with its velocity.
    """

    def __init__(self, lr, gradients=None):
        self.lr = checked_rate(lr)
        self.gradients = gradients or autodiff_gradients
        self.iterations = Variable(np.int64(0), name="iterations", trainable=False)
        self._slots = {}

    def minimize(self, loss, var_list=None):
        """One node that applies ``update`` to each variable of ``var_list`` (default: every
        trainable Variable ``loss`` depends on) and counts the step in ``self.iterations``."""
        var_list = trainable_variables(loss) if var_list is None else list(var_list)
        if not var_list:
            raise ValueError(f"minimize: {loss.name!r} depends on no trainable Variable")
        with role_scope("gradient"):
            grads = self._checked(self.gradients(loss, var_list), var_list)
        with role_scope("update"):
            count = assign_add(self.iterations, 1)
            self.step = cast(count, loss.dtype)
            self.learning_rate = self._learning_rate()
            updates = []
            for var, grad in zip(var_list, grads):
                result = self.update(var, grad)
                if result is None:  # the nodes update built (if any) never run: warn
                    self._warn_no_update(var)
                    continue
                updates += list(result) if isinstance(result, (list, tuple)) else [result]
            return group(*updates, count, name=f"{type(self).__name__.lower()}_step")

    def _warn_no_update(self, var):
        warnings.warn(f"{type(self).__name__}.update returned None for {describe(var)}, so the "
                      "step leaves it unchanged; return the assign node(s) that update it",
                      stacklevel=3)

    def _checked(self, grads, var_list):
        """The result of ``self.gradients``, checked: one node per variable, shaped like it."""
        grads = list(grads) if isinstance(grads, (list, tuple)) else grads
        if not isinstance(grads, list) or len(grads) != len(var_list):
            raise ValueError(f"minimize: the gradients function must return a list of {len(var_list)} nodes, "
                             f"one per variable, not {grads!r}")
        for var, grad in zip(var_list, grads):
            if not isinstance(grad, Node) or not shapes_compatible(grad.shape, var.shape):
                raise ValueError(f"minimize: the gradients function gave {grad!r} for {describe(var)}; "
                                 "each gradient must be a node shaped like its variable")
        return grads

    def update(self, var, grad):
        raise NotImplementedError(f"{type(self).__name__}.update(var, grad) is not implemented")

    def slot(self, var, name):
        """The state Variable ``name`` of ``var`` (created as zeros shaped like ``var`` on first use)."""
        key = (var, name)
        if key not in self._slots:
            self._slots[key] = Variable(np.zeros_like(var.initial_value), name=f"{var.name}/{name}", trainable=False)
        return self._slots[key]

    def variables(self):
        """The optimizer's own Variables: its slots and its step counter."""
        return [*self._slots.values(), self.iterations]

    def _learning_rate(self):
        if callable(self.lr) and not isinstance(self.lr, Node):
            return ScheduledRate(self.lr)(self.iterations)
        return self.lr


def checked_rate(lr):
    """``lr`` if it is a finite number, a scalar float node or a schedule (a callable); else a clear error
    now, rather than NaN weights after the first step."""
    if isinstance(lr, Node):
        if lr.dtype is None or lr.dtype.kind != "f" or lr.shape not in ((), None):
            raise TypeError(f"lr: the learning-rate node {describe(lr)} must be a float scalar, not {lr.dtype}")
        return lr
    if callable(lr):
        return lr
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        if not math.isfinite(lr):
            raise ValueError(f"lr: the learning rate must be a finite number, got {lr}")
        return lr
    raise TypeError(f"lr: the learning rate must be a number, a scalar node or a schedule (a function of the "
                    f"step), got the {type(lr).__name__} {lr!r}")


class ScheduledRate(NoGradient):
    """The learning rate ``schedule(step)`` for the current value of the step counter (float32 scalar)."""

    name = "learning_rate"

    def __init__(self, schedule):
        self.schedule = schedule

    def compute(self, node, input_values):
        step = int(input_values[0])
        rate = self.schedule(step)
        if not (isinstance(rate, numbers.Real) and math.isfinite(rate)):
            raise ValueError(f"the learning-rate schedule {self.schedule!r} gave {rate!r} at step {step}, not a "
                             "finite number")
        return np.asarray(rate, dtype=node.dtype)

    def infer_dtype(self, node, input_dtypes):
        return np.float32

    def infer_shape(self, node, input_shapes):
        return ()


class SGD(Optimizer):
    """Stochastic gradient descent: ``w <- w - lr g`` (in place)."""

    def update(self, var, grad):
        return assign_sub(var, self.learning_rate * grad)


class Momentum(Optimizer):
    """Momentum: ``v <- mu v + g``, ``w <- w - lr v``.
    Nesterov (``nesterov=True``): ``w <- w - lr (g + mu v)`` with the new ``v`` — the step looks ahead."""

    def __init__(self, lr, momentum=0.9, nesterov=False, gradients=None):
        super().__init__(lr, gradients)
        self.momentum, self.nesterov = momentum, nesterov

    def update(self, var, grad):
        velocity = self.slot(var, "velocity")
        new_velocity = assign(velocity, self.momentum * velocity + grad)
        direction = grad + self.momentum * new_velocity if self.nesterov else new_velocity
        return assign_sub(var, self.learning_rate * direction)


class AdaGrad(Optimizer):
    """AdaGrad: ``s <- s + g²``, ``w <- w - lr g / (sqrt(s) + eps)``: per-coordinate rates that shrink
    where gradients have been large."""

    def __init__(self, lr, eps=1e-8, gradients=None):
        super().__init__(lr, gradients)
        self.eps = eps

    def update(self, var, grad):
        total = assign_add(self.slot(var, "sum_of_squares"), grad * grad)
        return assign_sub(var, self.learning_rate * grad / (sqrt(total) + self.eps))


class RMSProp(Optimizer):
    """RMSProp: ``s <- rho s + (1 - rho) g²``, ``w <- w - lr g / (sqrt(s) + eps)``: AdaGrad with a
    moving average, so rates do not decay to zero."""

    def __init__(self, lr, rho=0.9, eps=1e-8, gradients=None):
        super().__init__(lr, gradients)
        self.rho, self.eps = rho, eps

    def update(self, var, grad):
        mean_square = self.slot(var, "mean_square")
        new_mean_square = assign(mean_square, self.rho * mean_square + (1 - self.rho) * grad * grad)
        return assign_sub(var, self.learning_rate * grad / (sqrt(new_mean_square) + self.eps))


class Adam(Optimizer):
    """Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g²``, bias-corrected
    ``m̂ = m / (1 - b1^t)``, ``v̂ = v / (1 - b2^t)`` at step ``t``, then ``w <- w - lr m̂ / (sqrt(v̂) + eps)``.
    The corrections undo the zero start of ``m`` and ``v``: the first step is ``lr g / (|g| + eps)``."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, gradients=None):
        super().__init__(lr, gradients)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def update(self, var, grad):
        m, v = self.slot(var, "m"), self.slot(var, "v")
        new_m = assign(m, self.beta1 * m + (1 - self.beta1) * grad)
        new_v = assign(v, self.beta2 * v + (1 - self.beta2) * grad * grad)
        m_hat = new_m / (1 - self.beta1**self.step)
        v_hat = new_v / (1 - self.beta2**self.step)
        return assign_sub(var, self.learning_rate * m_hat / (sqrt(v_hat) + self.eps))
