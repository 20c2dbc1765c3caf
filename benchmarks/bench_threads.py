"""Nodes on threads: how much faster, at what memory, at what cost per node? (A benchmark to run, not a test.)

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_threads.py [--repeats 15]

1. Four independent chains of 16 matrix products (256 x 256, float32) each followed by tanh — 128 nodes,
   about four equal shares of work — run serially (``Session()``) and on 2 threads (``Session(workers=2)``),
   in turns (the order rotating each round, so a change in the machine's load hits both); the median times
   and their ratio. Target: at least 1.5x on 2 cores with one BLAS thread per worker.
2. The same graph with three memory planners on 2 threads: time and measured peak (tracemalloc), against
   the serial executor — the concurrency-vs-memory trade-off.
3. The cost per node: ``Session.run`` of a 20-op graph of 4-element arrays (as in bench_session.py) on the
   serial executor and on 1 and 2 threads.
4. A training step of the 784-256-10 MLP (batch 128, SGD) on MNIST-sized random data, serial and on 2
   threads: an MLP is mostly one chain, so little can run at once.

Each worker thread calls BLAS, so BLAS itself must use one thread: set ``OPENBLAS_NUM_THREADS=1``
(the script sets it if unset, before numpy starts).
"""

import argparse
import os
import statistics

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import numpy as np  # noqa: E402

import minigraph as mg  # noqa: E402
from minigraph.memory import measure_peak, plan_memory  # noqa: E402
from minigraph.parallel import ThreadedExecutor, mlp, parallelism  # noqa: E402

from bench_memory import time_in_turns  # noqa: E402
from bench_session import conditions, tiny_graph  # noqa: E402

SIZE, CHAINS, DEPTH = 256, 4, 16


def chains(chains=CHAINS, depth=DEPTH, size=SIZE, seed=0):
    """``chains`` independent chains of ``depth`` times tanh(h @ W) from one input: (placeholder, ends, feed)."""
    rng = np.random.default_rng(seed)
    x = mg.placeholder("x", (size, size))
    ends = []
    for _ in range(chains):
        h = x
        for _ in range(depth):
            h = mg.tanh(h @ mg.Variable(rng.standard_normal((size, size)).astype(np.float32) / np.sqrt(size)))
        ends.append(h)
    return x, ends, {x: rng.standard_normal((size, size)).astype(np.float32)}


def in_turns(runs, repeats):
    """Median seconds of each of ``runs`` (name -> function), after a warm-up call of each, taking turns."""
    for run in runs.values():
        run()
    return time_in_turns(runs, repeats)


def speedup(repeats):
    x, ends, feed = chains()
    serial, threaded = mg.Session(), mg.Session(workers=2)
    same = all(np.array_equal(a, b) for a, b in zip(serial.run(ends, feed), threaded.run(ends, feed)))
    medians = in_turns({"serial": lambda: serial.run(ends, feed), "2 threads": lambda: threaded.run(ends, feed)}, repeats)
    print(f"\n{CHAINS} chains of {DEPTH} x (matmul {SIZE}x{SIZE} + tanh), median of {repeats} runs in turns")
    for name, seconds in medians.items():
        print(f"  {name:10s} {seconds * 1e3:8.2f} ms")
    print(f"  speedup serial / 2 threads = {medians['serial'] / medians['2 threads']:.2f}  (target >= 1.5); "
          f"same bits: {same}")
    for workers in (1, 2):  # where the time goes: longer ops (contention for the cores), or gaps between them
        executor = ThreadedExecutor(ends, workers)
        executor.run(feed)
        executor.run(feed)
        trace = executor.trace
        op_times = {op: statistics.median(s.end - s.start for s in trace if s.node.op.name == op) for op in ("matmul", "tanh")}
        print(f"  traced on {workers} thread(s): {trace[-1].end * 1e3:6.1f} ms, median matmul "
              f"{op_times['matmul'] * 1e3:.2f} ms, tanh {op_times['tanh'] * 1e3:.3f} ms, "
              f"{parallelism(trace):.2f} nodes at a time")


def trade_off(repeats):
    x, ends, feed = chains()
    executors = {"serial, plan": mg.Executor(ends),
                 "2 threads, plan for threads": ThreadedExecutor(ends, 2),
                 "2 threads, serial plan": ThreadedExecutor(ends, 2, memory=plan_memory),
                 "2 threads, keep everything": ThreadedExecutor(ends, 2, memory="naive")}
    medians = in_turns({name: lambda e=e: e.run(feed) for name, e in executors.items()}, repeats)
    print(f"\nConcurrency against memory (the same graph; peak measured with tracemalloc after a warm-up)")
    for name, executor in executors.items():
        peak = measure_peak(executor.run, feed)[1]
        buffers = len(set(executor.plan.buffer.values()))
        print(f"  {name:28s} {medians[name] * 1e3:8.2f} ms   peak {peak / 2**20:6.2f} MiB   {buffers:3d} buffers")


def overhead(calls=2000):
    x, node, value, by_hand = tiny_graph()
    ops = sum(1 for n in mg.topological_sort(node) if n.inputs)
    feed = {x: value}
    executors = {"serial": mg.Executor([node]), "1 thread": ThreadedExecutor([node], 1),
                 "2 threads": ThreadedExecutor([node], 2)}
    medians = in_turns({name: lambda e=e: [e.run(feed) for _ in range(calls)] for name, e in executors.items()}, 5)
    hand = in_turns({"numpy": lambda: [by_hand(value) for _ in range(calls)]}, 5)["numpy"]
    print(f"\nSession.run of a {ops}-op graph on 4-element arrays, median of 5 x {calls} runs")
    for name, seconds in medians.items():
        print(f"  {name:10s} {seconds / calls * 1e6:8.1f} us per run, overhead per node "
              f"{(seconds - hand) / calls / ops * 1e6:6.2f} us")


def training_step(repeats):
    rng = np.random.default_rng(0)
    model = mlp()
    feed = {model.x: rng.random((128, 784), dtype=np.float32), model.y: rng.integers(0, 10, 128)}
    step = mg.optim.SGD(0.01).minimize(model.loss)
    serial, threaded = mg.Session(), mg.Session(workers=2)
    medians = in_turns({"serial": lambda: serial.run([model.loss, step], feed),
                        "2 threads": lambda: threaded.run([model.loss, step], feed)}, repeats)
    print("\nA training step of the 784-256-10 MLP, batch 128 (SGD)")
    for name, seconds in medians.items():
        print(f"  {name:10s} {seconds * 1e3:8.2f} ms")
    print(f"  speedup = {medians['serial'] / medians['2 threads']:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs timed per variant (default 15)")
    args = parser.parse_args(argv)
    print(conditions())
    speedup(args.repeats)
    trade_off(args.repeats)
    overhead()
    training_step(args.repeats * 4)
    print(f"\n{conditions()}")


if __name__ == "__main__":
    main()
