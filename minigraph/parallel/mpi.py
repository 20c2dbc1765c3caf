"""Real processes with MPI: launching a program on N ranks, and all-reduce over them.

MPI (the Message Passing Interface) starts N copies of one program, the *ranks* 0 .. N - 1, which exchange
data through a communicator (``comm``). The course uses mpi4py with the MPICH library, both installed by
pip (the ``mpi`` extra): ``mpiexec -n 2 python -m minigraph.parallel.mnist ...`` here runs unchanged on a
cluster's MPI. From Python (a notebook, a test), :func:`mpirun` launches such a command with the
``mpiexec`` that belongs to this Python's environment.

An all-reduce here is a function ``allreduce(comm, buffer)`` that replaces ``buffer`` (a 1-D numpy array)
on every rank by the sum of all ranks' buffers: :func:`library_allreduce` calls MPI's own ``Allreduce``,
:func:`ring_allreduce` is the ring of :mod:`.allreduce` written with ``Sendrecv``.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from .allreduce import chunk_bounds

INSTALL_HINT = ("install the course's MPI extra (mpi4py and MPICH): `./course setup` does, or "
                "`pip install -e '.[mpi]'` in the course's folder")


class MPIError(RuntimeError):
    """MPI is missing, or a program launched on MPI failed or ran out of time (``result`` holds its
    ``returncode``, ``stdout`` and ``stderr`` when it ran)."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


def import_mpi():
    """mpi4py's ``MPI`` module, or an :class:`MPIError` saying how to install it."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as error:  # RuntimeError: mpi4py without an MPI library
        raise MPIError(f"MPI is not available in this Python ({sys.executable}): {error}. To train on "
                       f"several processes, {INSTALL_HINT}.") from None
    return MPI


def find_mpiexec():
    """The ``mpiexec`` of this Python's environment (a venv's or conda environment's ``bin/``), else the
    one on the PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("mpiexec")
    if found is None:
        raise MPIError(f"no mpiexec next to {sys.executable} nor on the PATH: {INSTALL_HINT}.")
    return found


def mpirun(ranks, module, *args, timeout=300, cwd=None):
    """Run ``mpiexec -n ranks python -m module args...`` with this Python; return the finished
    ``subprocess.CompletedProcess`` (text output). Raise :class:`MPIError` when it fails, naming the
    command and showing the end of its error output, or when it runs longer than ``timeout`` seconds — then
    every process it started is killed."""
    command = [find_mpiexec(), "-n", str(ranks), sys.executable, "-m", module, *map(str, args)]
    shown = " ".join(["mpiexec", "-n", str(ranks), "python", "-m", module, *map(str, args)])
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group, to kill all ranks at once
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        raise MPIError(f"`{shown}` did not finish within {timeout} s: all its processes were killed", result) from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise MPIError(f"`{shown}` failed (exit status {process.returncode}):\n{tail}", result)
    return result


def library_allreduce(comm, buffer):
    """MPI's own all-reduce (sum), in place."""
    comm.Allreduce(import_mpi().IN_PLACE, buffer)


def ring_allreduce(comm, buffer):
    """Ring all-reduce (sum) of ``buffer`` over the ranks of ``comm``, in place: the algorithm of
    :func:`minigraph.parallel.allreduce.ring_allreduce`, each rank sending to rank + 1 and receiving from
    rank - 1 with ``Sendrecv`` (send and receive at once, so the ring cannot deadlock)."""
    rank, n = comm.Get_rank(), comm.Get_size()
    right, left = (rank + 1) % n, (rank - 1) % n

    def chunk(index):
        start, stop = chunk_bounds(len(buffer), n, index % n)
        return buffer[start:stop]

    incoming = np.empty_like(chunk(0))  # chunk 0 is one of the largest
    for step in range(n - 1):  # reduce-scatter: add the chunk coming from the left to ours
        receive = chunk(rank - step - 1)
        comm.Sendrecv(chunk(rank - step), dest=right, recvbuf=incoming[:len(receive)], source=left)
        receive += incoming[:len(receive)]
    for step in range(n - 1):  # all-gather: the finished chunks overwrite the partial sums
        comm.Sendrecv(chunk(rank + 1 - step), dest=right, recvbuf=chunk(rank - step), source=left)
