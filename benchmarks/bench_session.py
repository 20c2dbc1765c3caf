"""How much does minigraph cost over hand-written numpy? (A benchmark to run, not a test.)

    python benchmarks/bench_session.py [--repeats 5] [--data-dir DIR]

1. One epoch of SGD on full MNIST (batch 128, float32) for softmax regression and for a 784-256-ReLU-10
   MLP: ``Session.run([loss, step])`` per batch against the same math written by hand in numpy (the
   same initial weights, batches and updates, so both end with the same weights). The two are timed
   interleaved in one process — taking turns every 16 batches — and the median epochs are compared.
   PyTorch's eager mode is timed too when it is installed.
2. ``Session.run`` of a 20-op graph on tiny arrays against the same 20 numpy calls written out: the
   difference divided by 20 is the executor's overhead per node.

On a machine shared with other work, set ``OPENBLAS_NUM_THREADS=1``: multi-threaded BLAS on busy cores
makes every matrix product erratic (numpy's and minigraph's alike).
"""

import argparse
import os
import statistics
import time

import numpy as np

import minigraph as mg
from minigraph.datasets import batches, load_mnist

BATCH, LR, HIDDEN = 128, 0.1, 256


def initial_weights(sizes, seed=0):
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        weights += [mg.init.he_normal((fan_in, fan_out), rng=rng), np.zeros(fan_out, np.float32)]
    return weights


# ---------------------------------------------------------------------------------------------- minigraph


def training_graph(sizes, optimizer=None):
    """The MLP ``sizes`` (ReLU between layers) and its training step: ``x, y, variables, loss, step``.
    ``optimizer`` defaults to SGD at rate LR."""
    x = mg.placeholder("x", (None, sizes[0]))
    y = mg.placeholder("y", (None,), "int64")
    variables = [mg.Variable(w) for w in initial_weights(sizes)]
    h = x
    for layer in range(len(sizes) - 1):
        h = h @ variables[2 * layer] + variables[2 * layer + 1]
        if layer < len(sizes) - 2:
            h = mg.relu(h)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(h, y))
    step = (optimizer or mg.optim.SGD(LR)).minimize(loss)
    return x, y, variables, loss, step


def minigraph_trainer(sizes, memory="plan", optimizer=None, optimize=False):
    """A function running one epoch through Session.run, and one reading the weights. ``memory`` and
    ``optimize`` go to the Session (chapter 06's memory planner, chapter 05's graph passes)."""
    x, y, variables, loss, step = training_graph(sizes, optimizer)
    sess = mg.Session(optimize=optimize, memory=memory)

    def epoch(data):
        for xb, yb in data:
            sess.run([loss, step], {x: xb, y: yb})

    return epoch, lambda: sess.run(variables)


# ---------------------------------------------------------------------------------------------- numpy


def numpy_trainer(sizes):
    """The same model and SGD written by hand (the forward pass keeps what the backward pass needs)."""
    weights = initial_weights(sizes)
    layers = len(sizes) - 1

    def epoch(data):
        for xb, yb in data:
            inputs, pre_activations, h = [], [], xb
            for layer in range(layers):
                inputs.append(h)
                h = h @ weights[2 * layer] + weights[2 * layer + 1]
                pre_activations.append(h)
                if layer < layers - 1:
                    h = np.maximum(h, 0)
            shifted = h - h.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(axis=1, keepdims=True)
            rows = np.arange(len(yb))
            loss = np.mean(np.log(total[:, 0]) - shifted[rows, yb])  # noqa: F841 (computed, as minigraph does)
            grad = exp / total
            grad[rows, yb] -= 1
            grad /= len(yb)
            for layer in reversed(range(layers)):
                if layer < layers - 1:
                    grad = grad * (pre_activations[layer] > 0)
                W, b = weights[2 * layer], weights[2 * layer + 1]
                grad_W, grad_b = inputs[layer].T @ grad, grad.sum(axis=0)
                if layer > 0:
                    grad = grad @ W.T
                W -= LR * grad_W
                b -= LR * grad_b

    return epoch, lambda: weights


# ---------------------------------------------------------------------------------------------- torch


def torch_trainer(sizes):
    """PyTorch eager mode, the same math; ``None`` when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    weights = [torch.tensor(w, requires_grad=True) for w in initial_weights(sizes)]
    layers = len(sizes) - 1

    def epoch(data):
        for xb, yb in data:
            h = torch.from_numpy(xb)
            for layer in range(layers):
                h = h @ weights[2 * layer] + weights[2 * layer + 1]
                if layer < layers - 1:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, torch.from_numpy(yb))
            for w in weights:
                w.grad = None
            loss.backward()
            with torch.no_grad():
                for w in weights:
                    w -= LR * w.grad

    return epoch, lambda: [w.detach().numpy() for w in weights]


# ---------------------------------------------------------------------------------------------- timing


def time_epochs(trainers, data, repeats, chunk=16, clock=time.perf_counter):
    """Median epoch time of each trainer. The trainers take turns every ``chunk`` batches (the first one
    rotating), so that all of them see the same conditions on a machine whose load changes. ``clock`` may
    be ``time.process_time``: this process's CPU time, which the other work of a busy machine disturbs less."""
    epochs = {name: [] for name in trainers}
    names = list(trainers)
    for _ in range(repeats):
        totals = dict.fromkeys(names, 0.0)
        for turn, first in enumerate(range(0, len(data), chunk)):
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                start = clock()
                trainers[name][0](data[first:first + chunk])
                totals[name] += clock() - start
        for name in names:
            epochs[name].append(totals[name])
    return {name: statistics.median(values) for name, values in epochs.items()}


def compare_training(title, sizes, data, repeats):
    trainers = {"numpy": numpy_trainer(sizes), "minigraph": minigraph_trainer(sizes)}
    torch = torch_trainer(sizes)
    if torch is not None:
        trainers["torch"] = torch
    medians = time_epochs(trainers, data, repeats)
    drift = max(float(np.abs(a - b).max()) for a, b in zip(trainers["numpy"][1](), trainers["minigraph"][1]()))
    print(f"\n{title}: one epoch, {len(data)} batches of {BATCH}, median of {repeats}")
    for name, seconds in medians.items():
        print(f"  {name:10s} {seconds:7.3f} s")
    print(f"  minigraph / numpy = {medians['minigraph'] / medians['numpy']:.3f}")
    if torch is None:
        print("  (PyTorch is not installed: no minigraph / torch ratio)")
    else:
        print(f"  minigraph / torch = {medians['minigraph'] / medians['torch']:.3f}")
    print(f"  max |weights(minigraph) - weights(numpy)| after all epochs: {drift:.2e}")


def tiny_graph():
    """A 20-op graph on 4-element arrays: its placeholder, its output node, a value to feed, and the same
    computation written in numpy."""
    x = mg.placeholder("x", (4,))
    c = mg.constant(np.full(4, 0.5, np.float32))
    node = x
    for i in range(5):  # 4 ops per round, 20 ops in all
        node = mg.tanh(node * c + x) - c
    half = np.full(4, 0.5, np.float32)

    def by_hand(v):
        h = v
        for _ in range(5):
            h = np.tanh(h * half + v) - half
        return h

    return x, node, np.linspace(-1, 1, 4, dtype=np.float32), by_hand


def per_node_overhead(calls=20000):
    """Session.run of a 20-op graph on 4-element arrays against the same numpy calls written out."""
    x, node, value, by_hand = tiny_graph()
    sess = mg.Session()
    assert np.allclose(sess.run(node, {x: value}), by_hand(value))
    ops = sum(1 for n in mg.topological_sort(node) if n.inputs)
    feed = {x: value}
    graph_times, numpy_times = [], []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(calls):
            sess.run(node, feed)
        graph_times.append((time.perf_counter() - start) / calls)
        start = time.perf_counter()
        for _ in range(calls):
            by_hand(value)
        numpy_times.append((time.perf_counter() - start) / calls)
    graph, hand = statistics.median(graph_times), statistics.median(numpy_times)
    print(f"\nSession.run of a {ops}-op graph on 4-element arrays, median of 7 x {calls} runs")
    print(f"  Session.run {graph * 1e6:6.2f} us   numpy by hand {hand * 1e6:6.2f} us")
    print(f"  overhead per node: {(graph - hand) / ops * 1e6:.2f} us")


def conditions():
    """numpy's version, the BLAS threads, the CPUs and the load: what a timing depends on."""
    return (f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="epochs timed per trainer (default 5)")
    parser.add_argument("--data-dir", help="folder of the MNIST files (default: see minigraph.datasets)")
    args = parser.parse_args(argv)
    print(conditions())
    images, labels = load_mnist("train", data_dir=args.data_dir)
    data = list(batches(images, labels, BATCH, rng=0))  # a list: every trainer and repeat gets the same batches
    per_node_overhead()
    compare_training("Softmax regression 784-10", [784, 10], data, args.repeats)
    compare_training(f"MLP 784-{HIDDEN}-ReLU-10", [784, HIDDEN, 10], data, args.repeats)


if __name__ == "__main__":
    main()
