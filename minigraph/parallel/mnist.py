"""Synchronous data-parallel SGD on MNIST over MPI ranks.

    mpiexec -n N python -m minigraph.parallel.mnist --steps S --batch-size B --seed 0 --save FILE.npz

Every rank builds the course's 784-256-10 MLP (rank 0's initial weights are broadcast to all) and draws
the same minibatches of B examples from the same seed. Rank r takes part r of each batch, B / N examples,
and computes the gradient of their mean loss, times 1 / N; an all-reduce sums these parts, so every rank
holds the gradient of the whole batch's mean loss and takes the same SGD step. The ranks keep equal
weights — equal to a 1-rank run's up to float rounding. Rank 0 prints progress and saves the weights
(``--save``: an .npz with one array per variable, by name) and, with ``--history FILE.json``, the
training curves (see :func:`read_history`).

``--allreduce`` chooses how gradients are summed: ``mpi`` (MPI's ``Allreduce``, the default), ``ring``
(:func:`minigraph.parallel.mpi.ring_allreduce`, written with ``Sendrecv``), or ``MODULE:FUNCTION``, your
own ``function(comm, buffer)`` imported from a module in the current folder. Every ``--every`` steps
(default: 10 records per run) the ranks evaluate the weights on ``--eval-size`` training and test images,
each rank a part of them. If a rank fails, it prints the error and aborts all ranks (``MPI_Abort``), so
no rank waits forever for a message that will not come.
"""

import argparse
import contextlib
import functools
import importlib
import io
import json
import sys
import time
import traceback

import numpy as np

from ..datasets import load_mnist
from ..optim import SGD
from ..session import Session
from .allreduce import chunk_bounds
from .data_parallel import GradientStep
from .mpi import MPIError, import_mpi, library_allreduce, ring_allreduce
from .training import endless_batches, evaluate, mlp

CONFIG_KEYS = ("steps", "batch_size", "seed", "lr", "hidden", "allreduce", "every", "eval_size")
HISTORY_KEYS = ("step", "batch_loss", "train_loss", "train_acc", "test_loss", "test_acc", "step_time",
                "wait_time", "allreduce_time")


def parse_arguments(argv, ranks):
    parser = argparse.ArgumentParser(prog="mpiexec -n N python -m minigraph.parallel.mnist",
                                     description="Synchronous data-parallel SGD of a 784-256-10 MLP on MNIST.")
    parser.add_argument("--steps", type=int, required=True, help="SGD steps")
    parser.add_argument("--batch-size", type=int, required=True, help="global batch, split evenly across ranks")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and minibatches (default 0)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden units (default 256)")
    parser.add_argument("--allreduce", default="mpi", help="mpi, ring or MODULE:FUNCTION (default mpi)")
    parser.add_argument("--every", type=int, help="evaluate and print every this many steps (default steps/10)")
    parser.add_argument("--eval-size", type=int, default=10_000, help="training and test images evaluated")
    parser.add_argument("--save", help="write the final weights to this .npz file")
    parser.add_argument("--history", help="write the training curves to this .json file")
    parser.add_argument("--data-dir", help="folder of the MNIST files (default: $MINIGRAPH_DATA or the cache)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.hidden < 1 or args.eval_size < 1:
        parser.error("--steps, --batch-size, --hidden and --eval-size must be positive")
    if args.batch_size % ranks:
        parser.error(f"the global batch of {args.batch_size} examples cannot be split evenly across {ranks} "
                     f"ranks: choose a --batch-size divisible by {ranks}")
    args.every = args.every or max(1, args.steps // 10)
    try:
        args.allreduce_function = allreduce_function(args.allreduce)
    except Exception as error:  # a learner's module may fail in any way: say how, once
        parser.error(f"--allreduce {args.allreduce}: {type(error).__name__}: {error}")
    return args


def allreduce_function(name):
    """The all-reduce ``function(comm, buffer)`` that ``--allreduce name`` means."""
    if name in ("mpi", "ring"):
        return {"mpi": library_allreduce, "ring": ring_allreduce}[name]
    module, _, function = name.partition(":")
    if not (module and function):
        raise ValueError("expected mpi, ring or MODULE:FUNCTION")
    return getattr(importlib.import_module(module), function)


def train(comm, args, log=print):
    """Train on this rank; return the history (the same on every rank) and the final weights by
    name."""
    rank, ranks = comm.Get_rank(), comm.Get_size()
    model = mlp(args.hidden, args.seed)
    step_graph = GradientStep(model.loss, SGD(args.lr), model.variables)
    session = Session()
    weights = step_graph.flatten(session.run(model.variables))
    comm.Bcast(weights, root=0)
    for variable, value in zip(model.variables, step_graph.unflatten(weights)):
        session.set_value(variable, value)

    images, labels = load_mnist("train", args.data_dir)
    test_images, test_labels = load_mnist("test", args.data_dir)
    evaluated = {"train": (images[:args.eval_size], labels[:args.eval_size]),
                 "test": (test_images[:args.eval_size], test_labels[:args.eval_size])}
    mine = slice(*chunk_bounds(args.batch_size, ranks, rank))
    history = {key: [] for key in HISTORY_KEYS}
    since_record = {"batch_loss": [], "step_time": [], "wait_time": [], "allreduce_time": []}
    log(f"training a 784-{args.hidden}-10 MLP on {ranks} rank(s): global batch "
        f"{args.batch_size} ({args.batch_size // ranks} per rank), {args.steps} steps, "
        f"lr {args.lr}, all-reduce {args.allreduce}")
    batches = endless_batches(images, labels, args.batch_size, args.seed)
    for step in range(1, args.steps + 1):
        started = time.perf_counter()
        batch_images, batch_labels = next(batches)
        shard = {model.x: batch_images[mine], model.y: batch_labels[mine]}
        gradient, loss = step_graph.gradient(session, [shard], args.batch_size)
        waiting = time.perf_counter()
        comm.Barrier()  # only to measure: the wait for the slowest rank, then the all-reduce
        summing = time.perf_counter()
        args.allreduce_function(comm, gradient)
        done = time.perf_counter()
        step_graph.apply(session, gradient)
        for key, value in [("batch_loss", loss), ("wait_time", summing - waiting),
                           ("allreduce_time", done - summing),
                           ("step_time", time.perf_counter() - started)]:
            since_record[key].append(value)
        if step % args.every == 0 or step == args.steps:
            record = {key: np.mean(values) for key, values in since_record.items()}
            record["step"] = step
            record["batch_loss"] = all_ranks_sum(comm, record["batch_loss"])
            for name, (eval_images, eval_labels) in evaluated.items():
                record[f"{name}_loss"], record[f"{name}_acc"] = evaluate_across_ranks(
                    comm, session, model, eval_images, eval_labels)
            for key in HISTORY_KEYS:
                history[key].append(float(record[key]))
            for values in since_record.values():
                values.clear()
            log(progress(record, args.steps))
    return history, dict(zip((v.name for v in model.variables), session.run(model.variables)))


def progress(record, steps):
    """The line rank 0 prints for a record of the history."""
    ms = {key: 1e3 * record[key] for key in ("step_time", "wait_time", "allreduce_time")}
    return (f"step {record['step']:>{len(str(steps))}}/{steps}  batch loss {record['batch_loss']:.4f}"
            f" | train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}"
            f" | test loss {record['test_loss']:.4f} acc {record['test_acc']:.4f}"
            f" | {ms['step_time']:.1f} ms/step: waiting {ms['wait_time']:.1f} ms, "
            f"all-reduce {ms['allreduce_time']:.1f} ms")


def all_ranks_sum(comm, *values):
    """The sums over the ranks of a few numbers (MPI's all-reduce); one number for one value."""
    buffer = np.array(values, np.float64)
    library_allreduce(comm, buffer)
    return buffer[0] if len(values) == 1 else buffer


def evaluate_across_ranks(comm, session, model, images, labels):
    """Mean loss and accuracy over the examples, each rank evaluating its part of them."""
    start, stop = chunk_bounds(len(images), comm.Get_size(), comm.Get_rank())
    loss = accuracy = 0.0
    if stop > start:
        loss, accuracy = evaluate(session, model, images[start:stop], labels[start:stop])
    weight = (stop - start) / len(images)
    return all_ranks_sum(comm, weight * loss, weight * accuracy)


def read_history(path):
    """The history (a dict of lists, for :mod:`minigraph.plot`) and the run's settings from ``--history``."""
    with open(path) as file:
        saved = json.load(file)
    return saved["history"], saved["config"]


def main(argv=None):
    try:
        MPI = import_mpi()
    except MPIError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    comm = MPI.COMM_WORLD
    rank, ranks = comm.Get_rank(), comm.Get_size()
    stopped = None
    with contextlib.ExitStack() as stack:  # usage errors and --help: shown by rank 0 only
        if rank:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        try:
            args = parse_arguments(argv, ranks)
        except SystemExit as exit:
            stopped = exit.code
    if comm.allreduce(stopped is not None, op=MPI.LOR):  # all ranks stop if any does (none is left waiting)
        return 2 if stopped is None else stopped
    try:
        log = functools.partial(print, flush=True) if rank == 0 else lambda line: None
        history, weights = train(comm, args, log)
        if rank == 0 and args.save:
            np.savez(args.save, **weights)
        if rank == 0 and args.history:
            config = {key: getattr(args, key) for key in CONFIG_KEYS}
            with open(args.history, "w") as file:
                json.dump({"config": {**config, "ranks": ranks}, "history": history}, file, indent=1)
    except BaseException:  # any failure, Ctrl-C included, must stop every rank
        print(f"rank {rank} of {ranks} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        comm.Abort(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
