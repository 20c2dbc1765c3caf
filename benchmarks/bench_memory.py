"""What does the memory plan save, and what does gradient checkpointing cost? (A benchmark to run, not a test.)

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_memory.py [--repeats 7] [--data-dir DIR]

A peak is what one ``Executor.run`` allocates at most beyond what existed before it — weights and feeds
excluded — measured with tracemalloc (``minigraph.memory.measure_peak``) after a warm-up run; next to it,
the plan's own prediction from static shapes (``plan.usage``). The MLPs are float32, batch 256.

1. Forward pass of a 32-layer ReLU MLP (width 512): planned / keep-everything. Target: at most 0.15.
2. Training step (loss and SGD update) of an 8-layer ReLU MLP (width 512). Target: at most 0.6.
3. Training step of a 64-layer tanh MLP (width 256), gradients with ``checkpoints="sqrt"`` against plain
   gradients, both planned and run in ``memory_order``: peak at most 0.45x, time at most 1.6x (the two
   timed in turns, medians).
4. Peak against depth (8 to 128 layers, as in 3) for keep-everything, planned and checkpointed, with
   least-squares fits a + b n (the first two) and a + b sqrt(n) (checkpointed).
5. Segment length (depth 64, as in 3): a checkpoint every k layers; the peak is lowest near k = sqrt(64).
6. The executor with the planner on and off: the per-node overhead of a 20-op graph on tiny arrays and an
   epoch of the 784-256-10 MLP on MNIST (``bench_session.py``'s), in turns, medians.
"""

import argparse
import statistics
import time

import numpy as np

import bench_session
import minigraph as mg
from minigraph.datasets import batches, load_mnist
from minigraph.memory import measure_peak, memory_order

MiB = 2**20
BATCH = 256


def mlp(depth, width, activation, seed=0):
    """An MLP of ``depth`` dense layers of ``width`` units (the last without activation, its outputs the
    logits): the placeholders, the layer outputs, the loss, and a feed of random data."""
    rng = np.random.default_rng(seed)
    x = mg.placeholder("x", (None, width))
    y = mg.placeholder("y", (None,), "int64")
    layers, h = [], x
    for index in range(depth):
        h = mg.nn.dense(h, width, activation=activation if index < depth - 1 else None, init="xavier_normal", rng=rng)
        layers.append(h)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(h, y))
    feed = {x: rng.standard_normal((BATCH, width)).astype(np.float32), y: rng.integers(0, width, BATCH)}
    return x, layers, loss, feed


def training_step(loss, checkpoints=None):
    """The SGD step of ``loss``, its gradients checkpointed as given."""
    return mg.optim.SGD(0.01, gradients=lambda y, xs: mg.gradients(y, xs, checkpoints=checkpoints)).minimize(loss)


def peak(fetches, feed, sort=None, memory="plan"):
    """(measured peak, predicted peak, executor) of one run of ``fetches``."""
    executor = mg.Executor(fetches, sort=sort, memory=memory)
    executor.run(feed)
    _, measured = measure_peak(executor.run, feed)
    return measured, executor.plan.usage(feed).peak, executor


def report_ratio(title, fetches, feed, target, sort=None):
    naive, naive_predicted, _ = peak(fetches, feed, sort, "naive")
    planned, planned_predicted, executor = peak(fetches, feed, sort)
    ratio = planned / naive
    print(f"\n{title}")
    print(f"  keep-everything {naive / MiB:7.1f} MiB (plan predicts {naive_predicted / MiB:6.1f})")
    print(f"  planned         {planned / MiB:7.1f} MiB (plan predicts {planned_predicted / MiB:6.1f}); {executor.plan}")
    print(f"  planned / keep-everything = {ratio:.3f}   target <= {target}: {'met' if ratio <= target else 'NOT MET'}")
    return ratio


def time_in_turns(functions, repeats):
    """Median time of each function, called in turns (the first one rotating) ``repeats`` times each."""
    times, names = {name: [] for name in functions}, list(functions)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def checkpointing(repeats):
    x, layers, loss, feed = mlp(64, 256, mg.tanh)
    plain, checkpointed = training_step(loss), training_step(loss, "sqrt")
    plain_peak, _, plain_executor = peak([loss, plain], feed, memory_order)
    checkpointed_peak, _, checkpointed_executor = peak([loss, checkpointed], feed, memory_order)
    medians = time_in_turns({"plain": lambda: plain_executor.run(feed),
                             "checkpointed": lambda: checkpointed_executor.run(feed)}, repeats)
    recomputed = sum(node.role == "recompute" and node.op.name != "after" for node in checkpointed_executor.order)
    memory_ratio, time_ratio = checkpointed_peak / plain_peak, medians["checkpointed"] / medians["plain"]
    print("\nTraining step of a 64-layer tanh MLP (width 256), planned, memory order, checkpoints='sqrt'")
    print(f"  plain gradients        peak {plain_peak / MiB:6.1f} MiB   {medians['plain'] * 1e3:7.1f} ms")
    print(f"  checkpointed gradients peak {checkpointed_peak / MiB:6.1f} MiB   {medians['checkpointed'] * 1e3:7.1f} ms"
          f"   ({recomputed} ops recomputed, {len(mg.memory.sqrt_checkpoints(loss))} checkpoints)")
    print(f"  memory {memory_ratio:.3f}x (target <= 0.45: {'met' if memory_ratio <= 0.45 else 'NOT MET'}), "
          f"time {time_ratio:.3f}x (target <= 1.6: {'met' if time_ratio <= 1.6 else 'NOT MET'}), "
          f"median of {repeats} steps each")
    default_peak, _, _ = peak([loss, checkpointed], feed)
    print(f"  (in the default depth-first order the checkpointed step peaks at {default_peak / MiB:.1f} MiB: every "
          "adjoint waits there for the updates at the end)")


def fit(xs, ys):
    """Least squares ``y = a + b x``: (a, b, largest relative residual)."""
    b, a = np.polyfit(xs, ys, 1)
    return a, b, max(abs(a + b * x - y) / y for x, y in zip(xs, ys))


def depth_sweep(depths):
    print("\nPeak (MiB) of a training step against depth (tanh MLP, width 256, memory order)")
    print("  depth  keep-everything  planned  checkpointed (sqrt)")
    peaks = {"keep-everything": [], "planned": [], "checkpointed": []}
    for depth in depths:
        x, layers, loss, feed = mlp(depth, 256, mg.tanh)
        plain, checkpointed = training_step(loss), training_step(loss, "sqrt")
        peaks["keep-everything"].append(peak([loss, plain], feed, memory_order, "naive")[0] / MiB)
        peaks["planned"].append(peak([loss, plain], feed, memory_order)[0] / MiB)
        peaks["checkpointed"].append(peak([loss, checkpointed], feed, memory_order)[0] / MiB)
        print(f"  {depth:5d}  {peaks['keep-everything'][-1]:15.1f}  {peaks['planned'][-1]:7.1f}  {peaks['checkpointed'][-1]:12.1f}")
    for name, values in peaks.items():
        scale = np.sqrt(depths) if name == "checkpointed" else np.asarray(depths, float)
        a, b, residual = fit(scale, values)
        term = "sqrt(n)" if name == "checkpointed" else "n"
        print(f"  {name:16s} ~ {a:6.2f} + {b:6.3f} {term} MiB (largest residual {residual:.0%})")


def segment_sweep(depth, lengths):
    print(f"\nPeak of a training step of depth {depth} with a checkpoint every k layers (tanh, width 256)")
    x, layers, loss, feed = mlp(depth, 256, mg.tanh)
    results = {}
    for k in lengths:
        checkpoints = layers[k - 1:-1:k]
        results[k] = peak([loss, training_step(loss, checkpoints)], feed, memory_order)[0] / MiB
        print(f"  k = {k:3d}: {len(checkpoints):3d} checkpoints, peak {results[k]:6.1f} MiB")
    best = min(results, key=results.get)
    print(f"  lowest at k = {best} (sqrt({depth}) = {np.sqrt(depth):.1f})")


def executor_speed(repeats, data_dir):
    x, node, value, by_hand = bench_session.tiny_graph()
    sessions = {memory: mg.Session(memory=memory) for memory in ("naive", "plan")}
    calls = 20000

    def runs(sess):
        def run():
            for _ in range(calls):
                sess.run(node, {x: value})
        return run

    medians = time_in_turns({memory: runs(sess) for memory, sess in sessions.items()}, repeats)
    print("\nThe executor with the planner on ('plan') and off ('naive'), in turns, medians")
    print(f"  20-op graph on 4-element arrays: {medians['naive'] / calls * 1e6:.2f} us naive, "
          f"{medians['plan'] / calls * 1e6:.2f} us planned per run: plan / naive = {medians['plan'] / medians['naive']:.3f}")
    images, labels = load_mnist("train", data_dir=data_dir)
    data = list(batches(images, labels, bench_session.BATCH, rng=0))
    sizes = [784, bench_session.HIDDEN, 10]
    trainers = {memory: bench_session.minigraph_trainer(sizes, memory) for memory in ("naive", "plan")}
    epochs = bench_session.time_epochs(trainers, data, max(3, repeats // 2))
    same = all(np.array_equal(a, b) for a, b in zip(trainers["naive"][1](), trainers["plan"][1]()))
    print(f"  MLP 784-{bench_session.HIDDEN}-10 epoch: {epochs['naive']:.3f} s naive, {epochs['plan']:.3f} s planned: "
          f"plan / naive = {epochs['plan'] / epochs['naive']:.3f}; weights bit-identical: {same}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per variant (default 7)")
    parser.add_argument("--data-dir", help="folder of the MNIST files (default: see minigraph.datasets)")
    args = parser.parse_args(argv)
    print(bench_session.conditions())
    x, layers, loss, feed = mlp(32, 512, mg.relu)
    report_ratio("Forward pass of a 32-layer ReLU MLP (width 512)", [layers[-1]], feed, 0.15)
    x, layers, loss, feed = mlp(8, 512, mg.relu)
    report_ratio("Training step (loss and SGD) of an 8-layer ReLU MLP (width 512)",
                 [loss, training_step(loss)], feed, 0.6)
    checkpointing(args.repeats)
    depth_sweep([8, 16, 32, 64, 128])
    segment_sweep(64, [1, 2, 4, 8, 16, 32, 64])
    executor_speed(args.repeats, args.data_dir)


if __name__ == "__main__":
    main()
