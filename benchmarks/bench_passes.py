"""What do chapter 05's graph passes buy? (A benchmark to run, not a test.)

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_passes.py [--repeats 5] [--processes 5] [--cpu] [--data-dir DIR]

1. The Adam training step of a 784-128-10 MLP: its nodes as built and optimized, and the time of a step
   at batch 16 with ``Session(optimize=True)`` against ``Session()``.
2. One epoch of SGD on full MNIST for the 784-256-ReLU-10 MLP of ``bench_session.py``: optimized
   minigraph against the same training written by hand in numpy (and minigraph as built), in
   ``--processes`` fresh processes.
3. A chain of 5 elementwise ops on 4M float32 values: the fused kernel against the ops one by one (and
   against the same expression in numpy, which reuses some temporaries by itself).

Every comparison runs its contenders in one process, taking turns (``bench_session.time_epochs``), and
reports the ratio of their median times, with the machine's load average: on a busy machine the ratios
hold better than the times.
"""

import argparse
import multiprocessing
import os
import statistics
import time

import numpy as np

import minigraph as mg
from bench_session import BATCH, HIDDEN, conditions, minigraph_trainer, numpy_trainer, time_epochs, training_graph
from minigraph.datasets import batches, load_mnist


def adam_step(images, labels, repeats, clock, batch=16, steps=512):
    sizes = [784, 128, 10]
    x, y, variables, loss, step = training_graph(sizes, mg.optim.Adam(0.001))
    built = len(mg.topological_sort([loss, step]))
    optimized = len(mg.topological_sort(mg.passes.optimize([loss, step])))
    print(f"\n1. Adam training step of a 784-128-10 MLP: {built} nodes as built, {optimized} optimized "
          f"({1 - optimized / built:.0%} fewer)")
    data = list(batches(images, labels, batch, rng=0))[:steps]
    trainers = {"as built": minigraph_trainer(sizes, optimizer=mg.optim.Adam(0.001)),
                "optimized": minigraph_trainer(sizes, optimizer=mg.optim.Adam(0.001), optimize=True)}
    medians = time_epochs(trainers, data, repeats, clock=clock)
    for name, seconds in medians.items():
        print(f"  {name:10s} {seconds / len(data) * 1e6:7.0f} us per step (batch {batch}, median of {repeats} x {len(data)} steps)")
    drift = max(float(np.abs(a - b).max()) for a, b in zip(trainers["as built"][1](), trainers["optimized"][1]()))
    print(f"  optimized / as built = {medians['optimized'] / medians['as built']:.3f}   (target: at most 0.85)")
    print(f"  max |weights(optimized) - weights(as built)|: {drift:.1e}")


def sgd_medians(repeats, clock, data_dir=None):
    """Median SGD epoch times of numpy, minigraph as built and optimized, in turns in this process."""
    sizes = [784, HIDDEN, 10]
    data = list(batches(*load_mnist("train", data_dir=data_dir), BATCH, rng=0))
    trainers = {"numpy": numpy_trainer(sizes), "as built": minigraph_trainer(sizes),
                "optimized": minigraph_trainer(sizes, optimize=True)}
    return time_epochs(trainers, data, repeats, clock=clock)


def sgd_epoch(repeats, clock, processes, data_dir=None):
    """The SGD comparison in ``processes`` fresh processes, one after another. Its ratio differs from
    process to process by a few percent, which more rounds in one process do not average out: a
    process's setup, such as where its arrays and code land in memory, biases it (*measurement bias*,
    Mytkowicz et al., ASPLOS 2009, who advise randomizing the setup). So the median over processes is
    the number to read."""
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        runs = [pool.apply(sgd_medians, (repeats, clock, data_dir)) for _ in range(processes)]
    print(f"\n2. SGD, MLP 784-{HIDDEN}-ReLU-10: one epoch of full MNIST at batch {BATCH}, median of {repeats} "
          f"in each of {processes} process(es)")
    ratios = {name: [run[name] / run["numpy"] for run in runs] for name in runs[0]}
    for name, values in ratios.items():
        print(f"  {name:10s} {statistics.median(run[name] for run in runs):7.3f} s   / numpy = "
              f"{statistics.median(values):.3f}   (each process: {', '.join(f'{r:.3f}' for r in values)})")
    print("  (target: optimized / numpy at most 1.00)")


def elementwise_chain(repeats, clock, size=4_000_000, rounds=8):
    x = mg.placeholder("x", (None,))
    y = mg.relu((x * 0.5 + 1.0) * x - x)  # mul, add, mul, sub, relu
    value = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    plain, fused = mg.Session(), mg.Session(optimize=True)
    assert np.array_equal(plain.run(y, {x: value}), fused.run(y, {x: value}))

    def runs(session):
        return lambda data: [session.run(y, {x: v}) for v in data], None

    trainers = {"op by op": runs(plain), "fused": runs(fused),
                "numpy": (lambda data: [np.maximum((v * 0.5 + 1.0) * v - v, 0) for v in data], None)}
    medians = time_epochs(trainers, [value] * rounds, repeats, chunk=1, clock=clock)
    print(f"\n3. relu((x * 0.5 + 1) * x - x) on {size:,} float32 values, median of {repeats} x {rounds} runs")
    for name, seconds in medians.items():
        print(f"  {name:10s} {seconds / rounds * 1e3:7.2f} ms")
    print(f"  op by op / fused = {medians['op by op'] / medians['fused']:.2f}   (target: at least 1.5)   "
          f"numpy / fused = {medians['numpy'] / medians['fused']:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds timed per contender (default 5)")
    parser.add_argument("--data-dir", help="folder of the MNIST files (default: see minigraph.datasets)")
    parser.add_argument("--processes", type=int, default=5, help="time the SGD epoch in this many fresh "
                        "processes, one after another (default 5)")
    parser.add_argument("--cpu", action="store_true", help="time with this process's CPU time (time.process_time) "
                        "instead of the wall clock: less disturbed by the other work of a busy machine")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    clock = time.process_time if args.cpu else time.perf_counter
    print(f"{conditions()}, clock: {clock.__name__}")
    images, labels = load_mnist("train", data_dir=args.data_dir)
    adam_step(images, labels, args.repeats, clock)
    sgd_epoch(args.repeats, clock, args.processes, args.data_dir)
    elementwise_chain(args.repeats, clock)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
