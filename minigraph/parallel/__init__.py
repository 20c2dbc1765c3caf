"""Parallelism (chapter 07): independent nodes on threads, data parallelism and the communication under it.

- :mod:`.scheduler`: a graph's nodes on a pool of threads, driven by dependency counts
  (``Session(workers=N)``, :class:`ThreadedExecutor`), with the same values as the serial executor;
- :mod:`.allreduce`: all-reduce algorithms (ring, binomial tree, parameter server) as schedules of
  transfers on a simulated :class:`Network` that counts bytes and records each round;
- :mod:`.cost`: the α-β model of their time, and the fit of α and β to measured message times;
- :mod:`.data_parallel`: N workers, each a Session, training on shards of a batch, gradients all-reduced
  (:class:`DataParallel`); the step cut at the gradient (:class:`GradientStep`) also gives gradient
  accumulation;
- :mod:`.stale`: an asynchronous parameter server, simulated: training with stale gradients;
- :mod:`.mpi`: real processes: :func:`mpirun` launches a module on N MPI ranks; all-reduce over ranks;
- :mod:`.training`: the MNIST MLP, minibatches and evaluation the runs share; ``draw`` (imported on first
  use, it needs matplotlib): pictures of threaded runs (Gantt charts), all-reduce rounds and their costs.

Programs to launch with ``mpiexec -n N python -m ...``: ``minigraph.parallel.mnist`` (data-parallel SGD on
MNIST) and ``minigraph.parallel.pingpong`` (message times between two ranks, and α, β fitted to them).
"""

import importlib

from . import cost, mpi
from .allreduce import (
    Network,
    Round,
    Transfer,
    chunk_bounds,
    contributors,
    parameter_server_allreduce,
    ring_allreduce,
    simulate,
    tagged,
    tree_allreduce,
)
from .cost import allreduce_time, fit_alpha_beta
from .data_parallel import DataParallel, GradientStep, split_batch
from .mpi import MPIError, mpirun
from .scheduler import Span, ThreadedExecutor, parallelism, plan_for_threads, run_tasks, state_dependencies
from .stale import train_stale
from .training import endless_batches, evaluate, mlp

ALGORITHMS = {"ring": ring_allreduce, "tree": tree_allreduce, "parameter server": parameter_server_allreduce}


def __getattr__(name):
    """``draw`` is imported on first use: it needs matplotlib, which the MPI programs do not."""
    if name == "draw":
        return importlib.import_module(f"{__name__}.draw")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
