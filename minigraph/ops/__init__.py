"""The operations of minigraph: each an :class:`~minigraph.graph.Op` subclass (compute, shape rule,
gradient built from other ops) and a function that builds its node.

- ``elementwise``: add, sub, mul, div, neg, pow, exp, log, sqrt, tanh, sigmoid, relu, equal, where, cast, ...
- ``linalg``: matmul, the (batched) matrix product with transpose flags
- ``shape``: reshape, transpose, expand_dims, broadcast_to, sum_to
- ``reduce``: reduce_sum, reduce_mean, argmax
- ``logits``: softmax, log_softmax, softmax_cross_entropy
- ``state``: assign, assign_add, assign_sub, group
"""

from .elementwise import (
    Add,
    Cast,
    Div,
    Elementwise,
    Equal,
    Exp,
    Log,
    Mul,
    Neg,
    NoGradient,
    OnesLike,
    Pow,
    Power,
    Relu,
    ReluGrad,
    Sigmoid,
    Sqrt,
    Sub,
    Tanh,
    UnaryFloat,
    Where,
    ZerosLike,
    add,
    cast,
    div,
    equal,
    exp,
    log,
    mul,
    neg,
    ones_like,
    pow,
    relu,
    relu_grad,
    sigmoid,
    sqrt,
    sub,
    tanh,
    unbroadcast,
    where,
    zeros_like,
)
from .linalg import MatMul, matmul
from .reduce import Argmax, Count, ReduceMean, ReduceSum, argmax, reduce_mean, reduce_sum
from .shape import (
    BroadcastTo,
    ExpandDims,
    Reshape,
    SumTo,
    ToShape,
    Transpose,
    broadcast_to,
    expand_dims,
    reshape,
    shape_like,
    sum_to,
    transpose,
)
from .logits import (
    LogSoftmax,
    Softmax,
    SoftmaxCrossEntropy,
    SoftmaxCrossEntropyGrad,
    log_of_softmax,
    log_softmax,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
)
from .state import Assign, AssignAdd, AssignSub, Group, assign, assign_add, assign_sub, group
