"""Data parallelism, simulated in one process.

N workers hold the same weights. Each takes a shard of the batch, computes the gradient of its shard's
loss, and the workers all-reduce their gradients; every worker then applies the same update, so the
weights stay equal everywhere. Why the result is the big-batch gradient: the loss of a batch of B examples
is a mean, L = (1/B) Σ_i ℓ_i. Cut into shards of n_k examples with mean losses L_k, L = Σ_k (n_k / B) L_k,
so ∇L = Σ_k (n_k / B) ∇L_k: each worker scales its gradient by n_k / B and the all-reduce adds them up.
With equal shards every weight is 1/N (the plain average); with unequal shards the plain average of the
shard gradients is *not* the batch gradient (it over-weights the examples of the smaller shards).

Gradient accumulation is the same sum taken over time instead of over workers: a batch too big to compute
at once runs as k micro-batches whose scaled gradients are added up before one update (in PyTorch DDP,
the ``no_sync`` context skips the all-reduce of all but the last micro-batch).

Both hold when the loss is a mean over the examples of the batch (plus terms that do not depend on the
batch, such as weight decay), as ``reduce_mean(...)`` losses are.
"""

import numpy as np

from ..graph import describe, placeholder, trainable_variables
from ..session import Session
from .allreduce import chunk_bounds, ring_allreduce, simulate


def split_batch(feed_dict, parts):
    """The batch of ``feed_dict`` cut into ``parts`` contiguous shards: a list of feed dicts.

    A placeholder declared with a first dimension ``None`` is cut along axis 0 (shard sizes differ by at
    most one, the larger ones first); any other feed, e.g. a scalar flag, goes whole to every shard."""
    batched = {node: value for node, value in feed_dict.items() if has_batch_axis(node)}
    if not batched:
        raise ValueError("split_batch: no feed has a batch axis (a placeholder declared with a first "
                         "dimension None)")
    sizes = {describe(node): len(value) for node, value in batched.items()}
    size = next(iter(sizes.values()))
    if any(n != size for n in sizes.values()):
        raise ValueError(f"split_batch: the batched feeds differ in length: {sizes}")
    if not 1 <= parts <= size:
        raise ValueError(f"cannot split a batch of {size} examples into {parts} shards: "
                         f"{'a shard would be empty' if parts > size else 'parts must be at least 1'}")
    shards = []
    for index in range(parts):
        start, stop = chunk_bounds(size, parts, index)
        shards.append({node: value[start:stop] if node in batched else value for node, value in feed_dict.items()})
    return shards


def has_batch_axis(node):
    """True if placeholder ``node`` was declared with a first dimension ``None``: its feeds hold examples."""
    return bool(node.shape) and node.shape[0] is None


def examples(feed_dict):
    """The number of examples in a feed dict (the length of its batched feeds, see :func:`split_batch`)."""
    lengths = [len(value) for node, value in feed_dict.items() if has_batch_axis(node)]
    if not lengths:
        raise ValueError("no feed has a batch axis (a placeholder declared with a first dimension None)")
    return lengths[0]


class GradientStep:
    """A training step of ``loss`` cut in two at the gradient, so that something can happen in between —
    an all-reduce, an accumulation. The graph is built once; every worker runs it in its own Session.

    - :meth:`gradient` computes Σ_shards (n / B) ∇L_shard, flattened into one vector (the variables'
      gradients one after the other, as :meth:`flatten` lays them out);
    - :meth:`apply` runs ``optimizer``'s update on a gradient given from outside. To build that update, the
      optimizer's ``gradients`` function is used once for the gradient nodes, then replaced by one that
      returns placeholders (``fed``): the optimizer belongs to this step from then on.
    """

    def __init__(self, loss, optimizer, var_list=None):
        if isinstance(getattr(optimizer.gradients, "__self__", None), GradientStep):
            raise ValueError("this optimizer already applies the gradients of another GradientStep: give each "
                             "step an optimizer of its own")
        self.loss = loss
        self.variables = trainable_variables(loss) if var_list is None else list(var_list)
        self.gradients = optimizer.gradients(loss, self.variables)
        self.fed = [placeholder(f"{v.name}/gradient", v.shape, v.dtype) for v in self.variables]
        optimizer.gradients = self._fed_gradients
        self.update = optimizer.minimize(loss, self.variables)
        self.sizes = [int(np.prod(v.shape, dtype=np.int64)) for v in self.variables]

    def _fed_gradients(self, loss, var_list):
        return self.fed

    def gradient(self, session, shards, batch_size):
        """``(flat gradient, loss)``: for each shard (a feed dict of n examples) the gradient
        and the value of its mean loss, times n / ``batch_size``, summed over the shards."""
        total, loss = np.zeros(sum(self.sizes), self.variables[0].dtype), 0.0
        for shard in shards:
            shard_loss, *grads = session.run([self.loss, *self.gradients], shard)
            weight = examples(shard) / batch_size
            total += self.flatten(grads) * total.dtype.type(weight)
            loss += weight * float(shard_loss)
        return total, loss

    def apply(self, session, flat_gradient):
        """Run the optimizer's update in ``session`` with ``flat_gradient`` as the gradient."""
        session.run(self.update, dict(zip(self.fed, self.unflatten(flat_gradient))))

    def flatten(self, arrays):
        """One array per variable -> one flat vector."""
        return np.concatenate([np.ravel(a) for a in arrays])

    def unflatten(self, vector):
        """One flat vector -> one array per variable, shaped like it."""
        if len(vector) != sum(self.sizes):
            raise ValueError(f"a flat gradient of {len(vector)} values for variables of {sum(self.sizes)} values")
        ends = np.cumsum(self.sizes)
        return [vector[end - size:end].reshape(v.shape) for v, size, end in zip(self.variables, self.sizes, ends)]


class DataParallel:
    """Synchronous data-parallel training, simulated: ``workers`` workers, each a :class:`~minigraph.Session`
    holding its own copy of the variables, train ``loss`` with ``optimizer``.

    ``step(feed_dict)`` cuts the batch into one shard per worker (:func:`split_batch`; each shard in turn
    into ``micro_batches`` micro-batches, accumulated), lets every worker compute its part of the gradient
    (:meth:`GradientStep.gradient`), sums the parts with ``algorithm`` on a simulated network (default: the
    ring all-reduce; ``network`` keeps the last one, with its byte counts), and has every worker apply the
    sum. Returns the batch's mean loss.
    """

    def __init__(self, loss, optimizer, workers, algorithm=ring_allreduce, micro_batches=1, var_list=None):
        if workers < 1 or micro_batches < 1:
            raise ValueError(f"workers and micro_batches must be at least 1, got {workers} and {micro_batches}")
        self.step_graph = GradientStep(loss, optimizer, var_list)
        self.sessions = [Session() for _ in range(workers)]
        self.algorithm, self.micro_batches = algorithm, micro_batches
        self.network = None

    def gradients(self, feed_dict):
        """Every worker's all-reduced flat gradient of the batch, and the batch's mean loss."""
        size = examples(feed_dict)
        parts, loss = [], 0.0
        for session, shard in zip(self.sessions, split_batch(feed_dict, len(self.sessions))):
            part, shard_loss = self.step_graph.gradient(session, split_batch(shard, self.micro_batches), size)
            parts.append(part)
            loss += shard_loss
        self.network = simulate(self.algorithm, parts)
        return self.network.results(), loss

    def step(self, feed_dict):
        summed, loss = self.gradients(feed_dict)
        for session, gradient in zip(self.sessions, summed):
            self.step_graph.apply(session, gradient)
        return loss

    def weights(self, worker=0):
        """The values of the trained variables held by ``worker``."""
        return self.sessions[worker].run(self.step_graph.variables)
