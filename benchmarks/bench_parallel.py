"""Data parallelism on MPI: 1 rank against 2, the ring's bytes, and this machine's α and β. (A benchmark
to run, not a test.)

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_parallel.py [--repeats 5] [--steps 60]

1. Ping-pong between two ranks (``python -m minigraph.parallel.pingpong``): one-way message times from 8 B
   to 8 MiB, and α, β fitted to them.
2. ``python -m minigraph.parallel.mnist`` at global batch 512 for the 784-256-10 MLP on 1 rank, on 2 ranks
   with MPI's Allreduce, and on 2 ranks with the package's ring over Sendrecv. The runs take turns
   (``--repeats`` rounds, the order rotating), so a change in the machine's load hits all of them; each
   reports its mean time per step after the first ``--steps / 3`` steps (warm-up), and the medians are
   compared: speedup T1 / T2 and scaling efficiency T1 / (2 T2). Each step's time splits into computing,
   waiting for the slower rank (a barrier, timed apart) and the all-reduce itself, which the α-β
   prediction of the ring for the gradient's size is printed beside.
3. The simulated ring all-reduce of the MLP's gradient (203,530 float32 values) on N = 2, 4, 8 workers:
   bytes sent per worker against 2 (N - 1) / N * M.

Reported, not asserted (except the byte counts, which are exact): the machine may be shared.
"""

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np

import minigraph.parallel as par
from minigraph.parallel import mnist

BATCH = 512
RUNS = {"1 rank": (1, "mpi"), "2 ranks, MPI Allreduce": (2, "mpi"), "2 ranks, ring (Sendrecv)": (2, "ring")}


def pingpong(folder, repeats):
    saved = Path(folder) / "pingpong.json"
    run = par.mpirun(2, "minigraph.parallel.pingpong", "--repeats", repeats, "--save", saved)
    print("\nPing-pong between 2 ranks (one-way time per message size, median of", repeats, "round trips)")
    print("  " + run.stdout.rstrip().replace("\n", "\n  "))
    result = json.loads(saved.read_text())
    return result["alpha"], result["beta"]


def step_time(folder, ranks, allreduce, steps):
    """Mean time per step, waiting for the slowest rank, and all-reduce of one run, leaving out the first
    third of the steps."""
    history_file = Path(folder) / f"history-{ranks}-{allreduce}.json"
    par.mpirun(ranks, "minigraph.parallel.mnist", "--steps", steps, "--batch-size", BATCH, "--every", steps // 3,
               "--eval-size", 1000, "--allreduce", allreduce, "--history", history_file, timeout=900)
    history, _ = mnist.read_history(history_file)
    return tuple(np.mean(history[key][1:]) for key in ("step_time", "wait_time", "allreduce_time"))


def scaling(folder, repeats, steps, alpha, beta):
    times = {name: [] for name in RUNS}
    names = list(RUNS)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            times[name].append(step_time(folder, *RUNS[name], steps))
    print(f"\nData-parallel SGD, 784-256-10 MLP, global batch {BATCH}: time per step, median of {repeats} runs "
          f"of {steps} steps (the first {steps // 3} left out)")
    single = statistics.median(step for step, _, _ in times["1 rank"])
    for name, measured in times.items():
        step, wait, allreduce = (statistics.median(column) for column in zip(*measured))
        ranks = RUNS[name][0]
        print(f"  {name:26s} {step * 1e3:6.2f} ms/step (waiting {wait * 1e3:5.2f} ms, all-reduce {allreduce * 1e3:5.2f} ms)"
              f"   speedup {single / step:4.2f}, scaling efficiency {single / (ranks * step):4.2f}")
    gradient_bytes = 4 * parameters()
    predicted = par.allreduce_time("ring", 2, gradient_bytes, alpha, beta)
    print(f"  α-β prediction of the ring on 2 ranks for the {gradient_bytes:,} gradient bytes: {predicted * 1e3:.2f} ms")


def parameters():
    return sum(v.initial_value.size for v in par.mlp().variables)


def ring_bytes():
    size = parameters()
    nbytes = 4 * size
    print(f"\nSimulated ring all-reduce of the MLP's gradient: M = {size:,} float32 = {nbytes:,} bytes")
    for workers in (2, 4, 8):
        network = par.simulate(par.ring_allreduce, [np.zeros(size, np.float32)] * workers)
        sent, formula = network.bytes_sent, 2 * (workers - 1) / workers * nbytes
        chunks = [len(c) for c in np.array_split(np.arange(size), workers)]
        exact = [(2 * size - chunks[(i + 1) % workers] - chunks[(i + 2) % workers]) * 4 for i in range(workers)]
        assert sent.tolist() == exact and sent.sum() == 2 * (workers - 1) * nbytes
        assert size % workers or sent.tolist() == [formula] * workers
        print(f"  N = {workers}: sent per worker {sent.min():,} .. {sent.max():,} bytes; 2 (N - 1) / N * M = "
              f"{formula:,.1f} ({sent.mean() / nbytes:.3f} M on average, total exactly 2 (N - 1) M)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the interleaved runs (default 5)")
    parser.add_argument("--steps", type=int, default=60, help="steps per run (default 60)")
    args = parser.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print("note: OPENBLAS_NUM_THREADS is not 1; on a shared machine the timings will be erratic")
    print(f"load average: {' '.join(f'{load:.2f}' for load in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        alpha, beta = pingpong(folder, repeats=30)
        scaling(folder, args.repeats, args.steps, alpha, beta)
    ring_bytes()
    print(f"\nload average: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
