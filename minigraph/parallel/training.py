"""What the chapter's training runs share: the 784-256-10 MLP, endless minibatches, and evaluation."""

from types import SimpleNamespace

import numpy as np

from .. import nn
from ..datasets import batches
from ..graph import placeholder
from ..ops import argmax, cast, equal, reduce_mean, relu, softmax_cross_entropy


def mlp(hidden=256, seed=0, dtype="float32"):
    """The course's MNIST classifier, 784-hidden-10 with ReLU and He-normal weights drawn from ``seed``:
    placeholders ``x``, ``y``; nodes ``loss`` (mean cross-entropy) and ``accuracy``; the ``variables``."""
    rng = np.random.default_rng(seed)
    x = placeholder("x", shape=(None, 784), dtype=dtype)
    y = placeholder("y", shape=(None,), dtype="int64")
    hidden_layer = nn.dense(x, hidden, activation=relu, rng=rng, name="hidden")
    logits = nn.dense(hidden_layer, 10, rng=rng, name="output")
    loss = reduce_mean(softmax_cross_entropy(logits, y))
    accuracy = reduce_mean(cast(equal(argmax(logits, axis=1), y), dtype))
    return SimpleNamespace(x=x, y=y, loss=loss, accuracy=accuracy,
                           variables=[*hidden_layer.variables, *logits.variables])


def endless_batches(images, labels, batch_size, seed):
    """Minibatches of exactly ``batch_size`` examples, epoch after epoch: epoch e (from 1) is shuffled with
    seed ``seed * 1000 + e``, as in chapter 04, and its last, shorter batch is left out."""
    if not 1 <= batch_size <= len(images):
        raise ValueError(f"batch size {batch_size} is not between 1 and the {len(images)} examples")
    epoch = 0
    while True:
        epoch += 1
        for batch in batches(images, labels, batch_size, rng=seed * 1000 + epoch):
            if len(batch[1]) == batch_size:
                yield batch


def evaluate(session, model, images, labels, batch_size=5000):
    """Mean loss and accuracy of ``model`` over the examples, in ``session`` (by parts of ``batch_size``, so
    memory stays small; each part weighted by its size)."""
    if len(images) == 0:
        raise ValueError("evaluate: no examples")
    loss = accuracy = 0.0
    for start in range(0, len(images), batch_size):
        part = slice(start, start + batch_size)
        part_loss, part_accuracy = session.run([model.loss, model.accuracy], {model.x: images[part], model.y: labels[part]})
        weight = len(images[part]) / len(images)
        loss, accuracy = loss + weight * float(part_loss), accuracy + weight * float(part_accuracy)
    return loss, accuracy
