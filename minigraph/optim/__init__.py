"""Optimizers as graph update ops: ``step = SGD(lr=0.5).minimize(loss)`` builds ONE node that, when run,
applies the update to every trainable variable the loss depends on (in place, through assign ops).

Optimizers: :class:`SGD`, :class:`Momentum` (``nesterov=True``), :class:`AdaGrad`, :class:`RMSProp`,
:class:`Adam`; write your own by subclassing :class:`Optimizer` and implementing ``update``. Learning
rates may be schedules (:mod:`minigraph.optim.schedules`), functions of the step number.
"""

from . import schedules
from .optimizers import SGD, AdaGrad, Adam, Momentum, Optimizer, RMSProp
