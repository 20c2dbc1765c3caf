"""minigraph: a small static computation graph with automatic differentiation, built on numpy.

    import minigraph as mg
    x = mg.placeholder("x", shape=(None, 784))
    y = mg.placeholder("y", shape=(None,), dtype="int64")
    W = mg.Variable(np.zeros((784, 10), "float32"), name="W")
    b = mg.Variable(np.zeros(10, "float32"), name="b")
    loss = mg.reduce_mean(mg.softmax_cross_entropy(x @ W + b, y))
    gW, gb = mg.gradients(loss, [W, b])
    sess = mg.Session()
    loss_value, gW_value = sess.run([loss, gW], feed_dict={x: images, y: labels})

Modules: ``graph`` (nodes, ops, sources, topological sort), ``ops`` (the operations), ``autodiff``
(reverse and forward mode), ``session`` (execution), ``gradcheck`` (finite differences), ``optim``
(optimizers and schedules), ``init`` (initial values), ``nn`` (layers), ``passes`` (graph optimization),
``memory`` (memory plans, measured peaks, gradient checkpointing), ``viz`` (drawing), ``datasets`` (MNIST),
``plot`` (pictures), ``parallel`` (data parallelism, all-reduce, MPI), ``eager`` (tensors computed at once,
with a tape), ``tracing`` (``mg.function``: eager code traced into graphs), ``tf`` (a TensorFlow-1 style
facade, imported on demand: ``import minigraph.tf as tf``).
"""

import importlib

from . import eager, gradcheck, init, memory, nn, ops, optim, passes, viz
from .autodiff import gradient_override, gradient_rule, gradients, jvp, register_gradient
from .graph import (
    Constant,
    Node,
    Op,
    Placeholder,
    ShapeError,
    Variable,
    as_node,
    constant,
    make_node,
    placeholder,
    role_scope,
    topological_sort,
    trainable_variables,
)
from .ops import (
    add,
    argmax,
    assign,
    assign_add,
    assign_sub,
    broadcast_to,
    cast,
    div,
    equal,
    exp,
    expand_dims,
    group,
    log,
    log_softmax,
    matmul,
    mul,
    neg,
    ones_like,
    pow,
    reduce_mean,
    reduce_sum,
    relu,
    reshape,
    sigmoid,
    softmax,
    softmax_cross_entropy,
    sqrt,
    sub,
    sum_to,
    tanh,
    transpose,
    where,
    zeros_like,
)
from .session import Executor, Session
from .tracing import TracingError, function
from .viz import draw



def __getattr__(name):
    """``mg.datasets``, ``mg.plot`` and ``mg.parallel`` are imported on first use: they are for the notebooks,
    and ``python -m minigraph.datasets`` must not find its module imported already."""
    if name in ("datasets", "plot", "parallel"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
