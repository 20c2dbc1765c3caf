"""A TensorFlow-1 style facade: ``import minigraph.tf as tf`` runs classic TF-1 programs on minigraph.

    import minigraph.tf as tf
    x = tf.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10])); b = tf.Variable(tf.zeros([10]))
    y = tf.nn.softmax(tf.matmul(x, W) + b)
    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
    train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
    sess = tf.Session(); sess.run(tf.initialize_all_variables())

The session idioms of the time work too: ``sess = tf.InteractiveSession()`` (or ``with sess.as_default():``,
or ``with tf.Session() as sess:``) makes a default session, in which ``train_step.run(feed_dict=...)`` and
``accuracy.eval(feed_dict=...)`` run; ``tf.app.run()`` calls a script's ``main(argv)``.

Every name is a thin renaming of minigraph's own API (TF's argument names and defaults), not a second
engine, and it covers a subset of TensorFlow 1: a missing name raises an AttributeError that says so.
Differences: variables already hold their initial values in a new Session (the initializers reset them,
as in TF); ``tf.log(tf.nn.softmax(z))`` is computed as minigraph's stable ``log_softmax(z)``; random initial
values are drawn when the graph is built, from a generator seeded with 0 (:func:`set_random_seed` reseeds
it); only placeholders can be fed.
"""

import functools
import sys

import numpy as np

from . import graph, optim
from . import ops as _ops
from .autodiff import gradients as _gradients
from .session import Session, get_default_session

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int32, int64, bool = np.dtype("int32"), np.dtype("int64"), np.dtype("bool")

_variables = []  # every Variable made through this module (with optimizer slots), for the initializers
_random = np.random.default_rng(0)


def _dtype(dtype):
    return float32 if dtype == "float" else np.dtype(dtype)


def set_random_seed(seed):
    """Reseed the generator behind ``random_normal`` and ``truncated_normal``."""
    global _random
    _random = np.random.default_rng(seed)


def reset_default_graph():
    """Forget the variables the initializers know about."""
    _variables.clear()


class InteractiveSession(Session):
    """A Session that is the default session from its creation until it is closed, so that ``node.eval()``
    and ``op.run()`` need no session in a notebook or a shell."""

    def __init__(self):
        super().__init__()
        self._default = self.as_default()
        self._default.__enter__()

    def close(self):
        super().close()
        self._default.__exit__(None, None, None)


# ---------------------------------------------------------------------------------------------- missing names


def _missing(name):
    return AttributeError(
        f"minigraph.tf has no {name!r}: it covers the subset of TensorFlow 1 that the course's programs use "
        "(help(minigraph.tf) lists it). Look for the operation in minigraph itself (help(minigraph.ops)), or "
        "write it as an Op with compute, infer_shape and gradient (chapters 02 and 03 show how).")


def __getattr__(name):
    raise _missing(name)


class _Namespace:
    """A group of names such as ``tf.nn``; a name it lacks raises the facade's AttributeError."""

    def __init__(self, path, **names):
        self._path = path
        vars(self).update(names)

    def __getattr__(self, name):
        raise _missing(f"{self._path}.{name}")

    def __dir__(self):
        return [name for name in vars(self) if not name.startswith("_")]

    def __repr__(self):
        return f"<minigraph.tf.{self._path}: {', '.join(self.__dir__())}>"


# ---------------------------------------------------------------------------------------------- graph inputs


def placeholder(dtype, shape=None, name=None):
    return graph.placeholder(name, shape, _dtype(dtype))


def Variable(initial_value, name=None, trainable=True, dtype=None):
    """A Variable; its initial value may be an array or a node such as ``tf.zeros([784, 10])``."""
    if isinstance(initial_value, graph.Node):
        initial_value = Session().run(initial_value)
    var = graph.Variable(initial_value, name, trainable, None if dtype is None else _dtype(dtype))
    _variables.append(var)
    return var


def constant(value, dtype=None, shape=None, name=None):
    array = np.asarray(value, dtype=None if dtype is None else _dtype(dtype))
    return graph.constant(array if shape is None else np.broadcast_to(array, shape).copy(), name=name)


def zeros(shape, dtype=float32, name=None):
    return graph.constant(np.zeros(shape, _dtype(dtype)), name=name)


def ones(shape, dtype=float32, name=None):
    return graph.constant(np.ones(shape, _dtype(dtype)), name=name)


def _generator(seed):
    return _random if seed is None else np.random.default_rng(seed)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name=None):
    values = _generator(seed).normal(mean, stddev, size=shape)
    return graph.constant(values.astype(_dtype(dtype)), name=name)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name=None):
    """Normal values, redrawn wherever they fall more than two standard deviations from the mean."""
    rng = _generator(seed)
    values = rng.standard_normal(size=shape)
    while (outside := np.abs(values) > 2).any():
        values[outside] = rng.standard_normal(size=int(outside.sum()))
    return graph.constant((mean + stddev * values).astype(_dtype(dtype)), name=name)


# ---------------------------------------------------------------------------------------------- math


def matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    return _ops.matmul(a, b, transpose_a, transpose_b, name=name)


add, subtract, multiply, divide, negative = _ops.add, _ops.sub, _ops.mul, _ops.div, _ops.neg
log, exp, sqrt, tanh, sigmoid, equal = _ops.log, _ops.exp, _ops.sqrt, _ops.tanh, _ops.sigmoid, _ops.equal
pow, where = _ops.pow, _ops.where


def square(x, name=None):
    return _ops.pow(x, 2, name=name)


def _axis(axis, reduction_indices):
    axis = reduction_indices if axis is None else axis
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _keepdims(keepdims, keep_dims):
    return keepdims if keep_dims is None else keep_dims  # keep_dims: TF-1's older spelling


def reduce_sum(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
               keep_dims=None):
    axis, keepdims = _axis(axis, reduction_indices), _keepdims(keepdims, keep_dims)
    return _ops.reduce_sum(input_tensor, axis, keepdims, name=name)


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
                keep_dims=None):
    axis, keepdims = _axis(axis, reduction_indices), _keepdims(keepdims, keep_dims)
    return _ops.reduce_mean(input_tensor, axis, keepdims, name=name)


def argmax(input, axis=None, name=None, dimension=None):
    """Index of the maximum along ``axis`` (TF-1's default: axis 0)."""
    axis = dimension if axis is None else axis
    return _ops.argmax(input, 0 if axis is None else axis, name=name)


def cast(x, dtype, name=None):
    return _ops.cast(x, _dtype(dtype), name=name)


def reshape(tensor, shape, name=None):
    return _ops.reshape(tensor, tuple(shape), name=name)


def transpose(a, perm=None, name=None):
    return _ops.transpose(a, perm, name=name)


def gradients(ys, xs, grad_ys=None):
    """Gradients of ``ys`` (a node, or a list whose sum is differentiated) w.r.t. ``xs``, as a list."""
    if isinstance(ys, (list, tuple)):
        ys = functools.reduce(_ops.add, ys)
    return _gradients(ys, list(xs) if isinstance(xs, (list, tuple)) else [xs], grad_ys)


# ---------------------------------------------------------------------------------------------- state


def assign(ref, value, name=None):
    return _ops.assign(ref, value, name=name)


def assign_add(ref, value, name=None):
    return _ops.assign_add(ref, value, name=name)


def assign_sub(ref, value, name=None):
    return _ops.assign_sub(ref, value, name=name)


def group(*inputs, name=None):
    return _ops.group(*inputs, name=name)


def global_variables_initializer():
    """A node that resets every variable made through this module to its initial value."""
    return _ops.group(*[_ops.assign(v, graph.constant(v.initial_value)) for v in _variables])


initialize_all_variables = global_variables_initializer


# ---------------------------------------------------------------------------------------------- nn, train


def _require_keywords(function, _sentinel, labels, logits):
    """TF-1 refuses positional arguments here (``_sentinel`` catches one); so does the facade."""
    if _sentinel is not None or labels is None or logits is None:
        raise TypeError(f"{function} takes keyword arguments: labels=..., logits=...")


def softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, dim=-1, name=None):
    """Per-example cross-entropy of ``softmax(logits)`` against probability rows ``labels`` (keywords only)."""
    _require_keywords("softmax_cross_entropy_with_logits", _sentinel, labels, logits)
    if dim != -1:
        raise ValueError("softmax_cross_entropy_with_logits: only the last axis (dim=-1) is supported")
    return _ops.softmax_cross_entropy(logits, labels, name=name)


def sparse_softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, name=None):
    """Per-example cross-entropy of ``softmax(logits)`` against integer class ``labels`` (keywords only)."""
    _require_keywords("sparse_softmax_cross_entropy_with_logits", _sentinel, labels, logits)
    return _ops.softmax_cross_entropy(logits, labels, name=name)


nn = _Namespace(
    "nn",
    softmax=lambda logits, axis=-1, name=None: _ops.softmax(logits, axis, name=name),
    log_softmax=lambda logits, axis=-1, name=None: _ops.log_softmax(logits, axis, name=name),
    relu=_ops.relu, sigmoid=_ops.sigmoid, tanh=_ops.tanh,
    softmax_cross_entropy_with_logits=softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits=sparse_softmax_cross_entropy_with_logits,
)


def _mean_loss(losses, weights):
    if weights != 1.0:
        raise ValueError("tf.losses: only weights=1.0 is supported")
    return _ops.reduce_mean(losses)


def _sparse_softmax_cross_entropy(labels, logits, weights=1.0):
    """The mean cross-entropy of ``softmax(logits)`` against integer class ``labels``."""
    return _mean_loss(_ops.softmax_cross_entropy(logits, labels), weights)


def _softmax_cross_entropy(onehot_labels, logits, weights=1.0):
    """The mean cross-entropy of ``softmax(logits)`` against one-hot (or probability) rows ``onehot_labels``."""
    return _mean_loss(_ops.softmax_cross_entropy(logits, onehot_labels), weights)


losses = _Namespace("losses", sparse_softmax_cross_entropy=_sparse_softmax_cross_entropy,
                    softmax_cross_entropy=_softmax_cross_entropy)


class _Tracked:
    """Makes an optimizer's slots and step counter known to the initializers."""

    def minimize(self, loss, var_list=None):
        step = super().minimize(loss, var_list)
        _variables.extend(v for v in self.variables() if v not in _variables)
        return step


class GradientDescentOptimizer(_Tracked, optim.SGD):
    def __init__(self, learning_rate):
        super().__init__(learning_rate)


class MomentumOptimizer(_Tracked, optim.Momentum):
    def __init__(self, learning_rate, momentum, use_nesterov=False):
        super().__init__(learning_rate, momentum, nesterov=use_nesterov)


class AdamOptimizer(_Tracked, optim.Adam):
    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08):
        super().__init__(learning_rate, beta1, beta2, epsilon)


train = _Namespace("train", GradientDescentOptimizer=GradientDescentOptimizer, MomentumOptimizer=MomentumOptimizer,
                   AdamOptimizer=AdamOptimizer)


def _run_main(main=None, argv=None):
    """``tf.app.run``: exit with ``main(argv)``; ``main`` defaults to the ``main`` of the script being run and
    ``argv`` to ``sys.argv`` (TF-1 also parsed its flags from ``argv`` first; minigraph.tf has no flags)."""
    main = main or sys.modules["__main__"].main
    sys.exit(main(sys.argv if argv is None else argv))


app = _Namespace("app", run=_run_main)


# ---------------------------------------------------------------------------------------------- data


class DataSet:
    """Images and labels with ``next_batch(n)``, reshuffled (reproducibly) at each epoch, as in TF's tutorials."""

    def __init__(self, images, labels, seed=0):
        self.images, self.labels = images, labels
        self.num_examples = len(images)
        self._rng, self._order, self._position = np.random.default_rng(seed), np.arange(len(images)), len(images)

    def next_batch(self, batch_size):
        if self._position + batch_size > self.num_examples:
            self._order, self._position = self._rng.permutation(self.num_examples), 0
        index = self._order[self._position:self._position + batch_size]
        self._position += batch_size
        return self.images[index], self.labels[index]


def read_data_sets(train_dir=None, one_hot=False, seed=0):
    """MNIST as ``.train`` and ``.test`` :class:`DataSet` objects (stands in for TF's ``input_data``);
    ``train_dir`` is the folder of the IDX files (default: see :func:`minigraph.datasets.load_mnist`)."""
    from .datasets import load_mnist
    from .datasets import one_hot as encode

    def dataset(split):
        images, labels = load_mnist(split, data_dir=train_dir)
        return DataSet(images, encode(labels) if one_hot else labels, seed)

    return _Namespace("read_data_sets()", train=dataset("train"), test=dataset("test"))

