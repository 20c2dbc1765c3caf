"""The rank side of exercise 7.4: run the learner's all-reduce on every MPI rank and write what it did.

    mpiexec -n N python -m minigraph.checks.ch07_ranks MODULE.py FUNCTION FOLDER

loads ``FUNCTION`` from the file ``MODULE.py`` (the check writes it from the learner's source), calls it on
each rank for every case of :data:`CASES` with a communicator that offers only point-to-point calls and
counts the bytes each rank sends, and writes ``FOLDER/rank{r}.json``: per case, the first element that
differs from the sum and the bytes sent. If the learner's code raises, the rank writes the error
(``FOLDER/error{r}.json``) and, after a moment for other failing ranks to write theirs, aborts every rank, so
none waits forever for a message that will not come.
"""

import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from ..parallel import allreduce, mpi
from .limits import UnavailableFunction, unavailable

CASES = [(24, "float64"), (13, "float64"), (2, "float32"), (1001, "float32"), (300_000, "float64")]
"""``(elements, dtype)`` of each buffer: sizes that 2, 3 and 4 ranks divide or not, fewer elements than
ranks, and 2.4 MB (too large to be sent without the receiver taking part)."""

ABORT_AFTER = 0.3  # seconds a failing rank waits before it stops all ranks
POINT_TO_POINT = ("Get_rank", "Get_size", "Sendrecv", "Sendrecv_replace", "Send", "Recv", "Isend", "Irecv",
                  "Barrier", "rank", "size")


class RefusedCall(RuntimeError):
    """The learner's code asked the communicator for something this exercise does not offer."""


UNAVAILABLE = [mpi.ring_allreduce, mpi.library_allreduce, allreduce.ring_allreduce]  # 7.4: on the ranks too


def data(case, rank, size, dtype):
    """Rank ``rank``'s buffer in ``case``: whole numbers, so that any order of addition gives the exact sum."""
    return np.random.default_rng(1000 * case + rank).integers(-1000, 1000, size).astype(dtype)


def _nbytes(buffer):
    """The bytes of a send buffer: an array, or a list ``[array, MPI type, ...]``."""
    if isinstance(buffer, (list, tuple)):
        buffer = buffer[0]
    return memoryview(buffer).nbytes


class CountingComm:
    """A communicator that passes point-to-point calls to ``comm`` and counts the bytes sent; collective
    operations (``Allreduce`` and the like) raise :class:`RefusedCall`."""

    def __init__(self, comm):
        self._comm, self.sent = comm, 0

    def Sendrecv(self, sendbuf, dest, *args, **kwargs):
        self.sent += _nbytes(sendbuf)
        return self._comm.Sendrecv(sendbuf, dest, *args, **kwargs)

    def Sendrecv_replace(self, buf, dest, *args, **kwargs):
        self.sent += _nbytes(buf)
        return self._comm.Sendrecv_replace(buf, dest, *args, **kwargs)

    def Send(self, buf, dest, *args, **kwargs):
        self.sent += _nbytes(buf)
        return self._comm.Send(buf, dest, *args, **kwargs)

    def Isend(self, buf, dest, *args, **kwargs):
        self.sent += _nbytes(buf)
        return self._comm.Isend(buf, dest, *args, **kwargs)

    def __getattr__(self, name):
        if name in POINT_TO_POINT:
            return getattr(self._comm, name)
        raise RefusedCall(f"called comm.{name}: this exercise builds the ring from point-to-point calls, so the "
                          f"check's communicator offers only those ({', '.join(POINT_TO_POINT[:6])}, ...)")


def _learner_function(path, name):
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def run_cases(comm, function):
    """Every case on this rank: a list of dicts (elements, dtype, bytes sent, first wrong element or None)."""
    rank, ranks = comm.Get_rank(), comm.Get_size()
    results = []
    for case, (size, dtype) in enumerate(CASES):
        buffer = data(case, rank, size, dtype)
        expected = sum(data(case, r, size, np.float64) for r in range(ranks)).astype(dtype)
        counting = CountingComm(comm)
        returned = function(counting, buffer)
        wrong = np.flatnonzero(buffer != expected)
        first = None if not len(wrong) else [int(wrong[0]), float(buffer[wrong[0]]), float(expected[wrong[0]])]
        returned_sum = isinstance(returned, np.ndarray) and returned.shape == expected.shape and bool(
            (returned == expected).all())
        results.append({"elements": size, "dtype": dtype, "bytes": counting.sent, "wrong": first,
                        "returned_sum": returned_sum})
    return results


def main(argv=None):
    path, name, folder = argv or sys.argv[1:]
    MPI = mpi.import_mpi()
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        function = _learner_function(path, name)
        with unavailable(UNAVAILABLE, [function], __file__) as uses:
            results = run_cases(comm, function)
        if uses:  # refused, but the learner's code went on
            raise UnavailableFunction(*uses[0])
    except BaseException as error:
        if isinstance(error, UnavailableFunction):
            what = f"called {error.name}, minigraph's own version of what this exercise asks you to write"
        else:
            what = str(error) if isinstance(error, RefusedCall) else f"raised {type(error).__name__}: {error}"
        frames = [frame.line for frame in traceback.extract_tb(error.__traceback__)
                  if Path(frame.filename) == Path(path)]
        report = {"error": what, "line": frames[-1] if frames else None,
                  "not_implemented": str(error) if isinstance(error, NotImplementedError) else None}
        _write(Path(folder, f"error{rank}.json"), report)
        time.sleep(ABORT_AFTER)  # other ranks that fail in the same call write their reports too
        comm.Abort(1)
    _write(Path(folder, f"rank{rank}.json"), results)
    return 0


def _write(path, value):
    """Write ``value`` as JSON all at once (another rank's abort may kill this one at any moment)."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value))
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
