"""Eager against traced: what the tape costs per op, and what a graph buys. (A benchmark, not a test.)

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_eager.py [--repeats 3] [--data-dir DIR]

1. One eager op on 4-element float32 arrays, with the tape recording (an input requires a gradient),
   against the bare numpy call, each the fastest of many short rounds. Target: at most 3 µs more than numpy (PyTorch 2.13's CPU eager mode
   costs about 4.1 µs per such op; numpy about 0.8 µs, on this machine).
2. One epoch of SGD for the 784-256-ReLU-10 MLP on full MNIST (batch 128): the same step function run
   eagerly and through ``mg.function``, timed interleaved; the peak memory of one step of each, and of the
   traced step with ``memory="naive"`` (``minigraph.memory.measure_peak``: tracemalloc); and how far apart
   the two sets of weights end (they should not be).
3. TensorFlow's guide "Introduction to graphs and tf.function" (section "Seeing the speed-up"): ``x``
   (10 x 10 int32) multiplied into the identity 100 times, eagerly and as a graph; one recorded run of
   the guide took 2.56 s eagerly and 0.68 s as a graph for 1,000 calls (3.7x).

All run with one BLAS thread, and the contenders take turns, so that a change in the machine's load hits
both; ratios are reported with the load average. The per-op and ``power`` timings count the process's CPU
time (``time.process_time``), which other programs on a shared machine disturb much less than the clock;
the epochs are timed by the clock, as in ``bench_session.py``.
"""

import argparse
import time

import numpy as np

import minigraph as mg
from bench_session import BATCH, HIDDEN, LR, conditions, initial_weights, time_epochs
from minigraph.datasets import batches, load_mnist
from minigraph.eager import Tensor, no_grad
from minigraph.memory import measure_peak

# ---------------------------------------------------------------------------------------------- per op

TINY_OPS = {  # name: (numpy call, the same op on tensors)
    "a * b": (lambda a, b: a * b, lambda a, b: a * b),
    "a + b": (lambda a, b: a + b, lambda a, b: a + b),
    "tanh(a)": (lambda a, b: np.tanh(a), lambda a, b: mg.tanh(a)),
    "a * 0.5": (lambda a, b: a * np.float32(0.5), lambda a, b: a * 0.5),
    "a @ B": (lambda a, b: a @ b, lambda a, b: a @ b),
}


def per_op_overhead(rounds=60, calls=500):
    """Microseconds per call of each tiny op, numpy and eager with the tape recording: the fastest of many
    short rounds of CPU time (the one least disturbed by other programs, as timeit advises), every round
    timing every op both ways, so that a busy spell of the machine hits them all alike."""
    a, b = np.linspace(-1, 1, 4, dtype=np.float32), np.full(4, 0.5, np.float32)
    vectors, matrices = (a, b, Tensor(a, requires_grad=True), Tensor(b)), (a.reshape(2, 2), b.reshape(2, 2))
    matrices += (Tensor(matrices[0], requires_grad=True), Tensor(matrices[1]))
    contenders = []  # (op name, numpy or eager, function, x, y)
    for name, (by_numpy, by_eager) in TINY_OPS.items():
        x, y, tx, ty = matrices if "@" in name else vectors
        assert np.array_equal(by_eager(tx, ty).numpy(), by_numpy(x, y)) and by_eager(tx, ty).requires_grad
        contenders += [(name, "numpy", by_numpy, x, y), (name, "eager", by_eager, tx, ty)]
    best = {}
    for _ in range(rounds):
        for name, kind, f, x, y in contenders:
            start = time.process_time()
            for _ in range(calls):
                f(x, y)
            seconds = (time.process_time() - start) / calls * 1e6
            best[name, kind] = min(seconds, best.get((name, kind), seconds))
    print(f"\nOne op on 4-element float32 arrays (the tape recording), fastest of {rounds} x {calls} calls")
    print(f"  {'op':10s} {'numpy':>8s} {'eager':>8s} {'overhead':>9s}")
    overheads = {name: best[name, "eager"] - best[name, "numpy"] for name in TINY_OPS}
    for name, overhead in overheads.items():
        print(f"  {name:10s} {best[name, 'numpy']:6.2f} us {best[name, 'eager']:6.2f} us {overhead:6.2f} us")
    worst = max(overheads, key=overheads.get)
    verdict = "within" if overheads[worst] <= 3.0 else "ABOVE"
    print(f"  largest overhead {overheads[worst]:.2f} us ({worst}): {verdict} the 3 us target")


# ---------------------------------------------------------------------------------------------- MLP


def mlp_step(params):
    """One SGD step of the MLP on tensors ``params`` (W1, b1, W2, b2): the loss, by mg.gradients."""
    def sgd_step(x, y):
        W1, b1, W2, b2 = params
        logits = mg.relu(x @ W1 + b1) @ W2 + b2
        loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
        grads = mg.gradients(loss, params)
        with no_grad():
            for p, g in zip(params, grads):
                p -= LR * g
        return loss
    return sgd_step


def trainer(**function_options):
    """``(epoch, step, weights)``: the MLP stepped eagerly, or with ``function_options`` through mg.function."""
    params = [Tensor(w, requires_grad=True) for w in initial_weights([784, HIDDEN, 10])]
    step = mlp_step(params)
    if function_options:
        step = mg.function(step, **function_options)

    def epoch(data):
        for xb, yb in data:
            step(xb, yb)

    return epoch, step, lambda: [p.numpy() for p in params]


def compare_mlp(data, repeats):
    trainers = {"eager": trainer(), "traced": trainer(memory="plan")}
    medians = time_epochs(trainers, data, repeats)
    drift = max(float(np.abs(a - b).max()) for a, b in zip(trainers["eager"][2](), trainers["traced"][2]()))
    print(f"\nMLP 784-{HIDDEN}-ReLU-10: one epoch, {len(data)} batches of {BATCH}, median of {repeats}")
    for name, seconds in medians.items():
        print(f"  {name:7s} {seconds:6.2f} s")
    print(f"  eager / traced = {medians['eager'] / medians['traced']:.2f}")
    print(f"  max |weights(eager) - weights(traced)| after all epochs: {drift:.1e}")
    xb, yb = data[0]
    steps = {**{name: step for name, (_, step, _) in trainers.items()}, 'traced, memory="naive"': trainer(memory="naive")[1]}
    for name, step in steps.items():
        step(xb, yb)  # warm: the trace, the compiled executor, the caches
        _, peak = measure_peak(step, xb, yb)
        print(f"  peak memory of one step, {name:23s} {peak / 2**20:5.2f} MiB")


# ---------------------------------------------------------------------------------------------- x ** 100


def power(x, y):
    """TensorFlow's example: ``x`` multiplied into the identity ``y`` times (``y`` a Python int)."""
    result = Tensor(np.eye(10, dtype=np.int32))
    for _ in range(y):
        result = mg.matmul(x, result)
    return result


def compare_power(rounds=20, calls=50):
    x = Tensor(np.random.default_rng(0).integers(-1, 2, size=(10, 10), dtype=np.int32))
    power_as_graph = mg.function(power)
    assert np.array_equal(power(x, 100).numpy(), power_as_graph(x, 100).numpy())
    times = {"eager": [], "graph": []}
    for _ in range(rounds):
        for kind, f in (("eager", power), ("graph", power_as_graph)):
            start = time.process_time()
            for _ in range(calls):
                f(x, 100)
            times[kind].append(time.process_time() - start)
    eager, graph = (1000 / calls * min(times[k]) for k in ("eager", "graph"))
    print(f"\nTensorFlow's power(x, 100) on a 10 x 10 int32 matrix, CPU seconds per 1,000 calls (fastest of {rounds})")
    print(f"  eager {eager:.3f} s, mg.function {graph:.3f} s: eager / graph = {eager / graph:.2f} "
          "(TensorFlow's guide, one recorded run: 2.56 s / 0.68 s = 3.7)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="MLP epochs timed per contender (default 3)")
    parser.add_argument("--data-dir", help="folder of the MNIST files (default: see minigraph.datasets)")
    args = parser.parse_args(argv)
    print(conditions())
    per_op_overhead()
    compare_power()
    images, labels = load_mnist("train", data_dir=args.data_dir)
    compare_mlp(list(batches(images, labels, BATCH, rng=0)), args.repeats)
    print(f"\n{conditions()} (at the end)")


if __name__ == "__main__":
    main()
