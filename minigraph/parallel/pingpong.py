"""Ping-pong between two MPI ranks: how long one message of m bytes takes, and α, β fitted to it.

    mpiexec -n 2 python -m minigraph.parallel.pingpong [--repeats 30] [--save FILE.json]

Rank 0 sends m bytes to rank 1, which sends them straight back; half the round trip is the time of one
message. For each size, from 8 bytes to 8 MiB, the median over ``--repeats`` round trips (after one
warm-up) is kept, and :func:`~minigraph.parallel.cost.fit_alpha_beta` fits ``time = α + m β``.
Rank 0 prints the table and the fit, and ``--save`` writes ``{"bytes", "seconds", "alpha", "beta"}``.
"""

import argparse
import json
import sys
import time

import numpy as np

from .cost import fit_alpha_beta
from .mpi import MPIError, import_mpi

SIZES = tuple(8 * 4**k for k in range(11))  # 8 B to 8 MiB


def message_time(comm, nbytes, repeats):
    """Median one-way time (seconds) of an ``nbytes`` message between ranks 0 and 1 (every rank calls it)."""
    buffer, rank = np.zeros(nbytes, np.uint8), comm.Get_rank()
    times = []
    for _ in range(repeats + 1):
        comm.Barrier()
        start = time.perf_counter()
        if rank == 0:
            comm.Send(buffer, dest=1)
            comm.Recv(buffer, source=1)
        elif rank == 1:
            comm.Recv(buffer, source=0)
            comm.Send(buffer, dest=0)
        times.append((time.perf_counter() - start) / 2)
    return float(np.median(times[1:]))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mpiexec -n 2 python -m minigraph.parallel.pingpong",
                                     description="Message times between two MPI ranks, and the α-β fit.")
    parser.add_argument("--repeats", type=int, default=30, help="round trips per message size (default 30)")
    parser.add_argument("--save", help="write the sizes, times, α and β to this .json file")
    args = parser.parse_args(argv)
    try:
        comm = import_mpi().COMM_WORLD
    except MPIError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if comm.Get_size() != 2:
        if comm.Get_rank() == 0:
            print(f"error: the ping-pong needs exactly 2 ranks (mpiexec -n 2 ...), not {comm.Get_size()}", file=sys.stderr)
        return 2
    seconds = [message_time(comm, nbytes, args.repeats) for nbytes in SIZES]
    if comm.Get_rank() == 0:
        alpha, beta = fit_alpha_beta(SIZES, seconds)
        for nbytes, one_way in zip(SIZES, seconds):
            print(f"{nbytes:>9} bytes  {one_way * 1e6:9.1f} µs  (α + m β: {(alpha + nbytes * beta) * 1e6:9.1f} µs)")
        print(f"α = {alpha * 1e6:.1f} µs, β = {beta * 1e9:.3f} ns/byte (bandwidth {1e-9 / beta:.2f} GB/s)")
        if args.save:
            with open(args.save, "w") as file:
                json.dump({"bytes": list(SIZES), "seconds": seconds, "alpha": alpha, "beta": beta}, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
