"""Real processes on MPI, through this Python's own mpiexec: data-parallel MNIST on 1, 2 and 3 ranks ends
with the same weights; the ring all-reduce over Sendrecv sums exactly; the ping-pong measures; bad input
and failing or hanging ranks end the run with a clear error in bounded time.

Skipped (with the reason) where MPI is not installed; under CI=true a missing MPI fails instead."""

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import minigraph.parallel as par
from minigraph.parallel import mnist

TIMEOUT = 120  # seconds: far above the few seconds each run takes, so only a hang reaches it


@pytest.fixture(scope="module")
def mpi():
    """Checks that MPI runs here: mpi4py's hello world on one rank."""
    try:
        par.mpirun(1, "mpi4py.bench", "helloworld", timeout=TIMEOUT)
    except par.MPIError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but MPI does not run here: {error}")
        pytest.skip(f"MPI does not run here: {error}")


def train(ranks, folder, *options, batch_size=48):
    weights, history = Path(folder) / f"weights{ranks}.npz", Path(folder) / f"history{ranks}.json"
    run = par.mpirun(ranks, "minigraph.parallel.mnist", "--steps", 6, "--batch-size", batch_size, "--seed", 0,
                     "--every", 3, "--eval-size", 300, "--save", weights, "--history", history, *options,
                     timeout=TIMEOUT)
    return run, dict(np.load(weights)), mnist.read_history(history)


@pytest.fixture(scope="module")
def one_rank(mpi, tmp_path_factory):
    return train(1, tmp_path_factory.mktemp("one_rank"))


@pytest.mark.parametrize("ranks, allreduce", [(2, "mpi"), (3, "ring")])
def test_n_ranks_end_with_the_weights_of_one_rank(one_rank, tmp_path, ranks, allreduce):
    _, expected, (expected_history, _) = one_rank
    run, weights, (history, config) = train(ranks, tmp_path, "--allreduce", allreduce)
    assert sorted(weights) == ["hidden/W", "hidden/b", "output/W", "output/b"] == sorted(expected)
    assert weights["hidden/W"].shape == (784, 256) and weights["output/b"].dtype == np.float32
    for name in expected:
        np.testing.assert_allclose(weights[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(weights["hidden/W"], par.mlp(seed=0).variables[0].initial_value)  # it did train
    assert config == {"steps": 6, "batch_size": 48, "seed": 0, "lr": 0.1, "hidden": 256, "allreduce": allreduce,
                      "every": 3, "eval_size": 300, "ranks": ranks}
    assert list(history) == list(mnist.HISTORY_KEYS) and history["step"] == [3, 6]
    assert all(len(values) == 2 for values in history.values())
    for key in ("batch_loss", "train_loss", "test_loss", "train_acc", "test_acc"):
        np.testing.assert_allclose(history[key], expected_history[key], rtol=1e-4, err_msg=key)
    assert f"training a 784-256-10 MLP on {ranks} rank(s): global batch 48 ({48 // ranks} per rank)" in run.stdout
    assert run.stdout.count("step 6/6") == 1  # rank 0 alone prints


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_ring_allreduce_over_sendrecv_sums_exactly(mpi, tmp_path, ranks):
    (tmp_path / "ring_check.py").write_text(textwrap.dedent("""
        import numpy as np
        from mpi4py import MPI
        from minigraph.parallel.mpi import ring_allreduce

        comm = MPI.COMM_WORLD
        for size in (1, 2, 3, 5, 13, 100):
            mine = np.random.default_rng([comm.Get_rank(), size]).integers(-1000, 1000, size)
            buffer = mine.copy()
            ring_allreduce(comm, buffer)
            assert np.array_equal(buffer, np.sum(comm.allgather(mine), axis=0)), (size, buffer)
        checked = comm.allreduce(1)  # every rank got past its asserts
        if comm.Get_rank() == 0:
            print(f"summed exactly on {checked} ranks")
    """))
    run = par.mpirun(ranks, "ring_check", cwd=tmp_path, timeout=TIMEOUT)
    assert run.stdout == f"summed exactly on {ranks} ranks\n"


def test_pingpong_measures_message_times_and_fits_alpha_beta(mpi, tmp_path):
    saved = tmp_path / "pingpong.json"
    run = par.mpirun(2, "minigraph.parallel.pingpong", "--repeats", 3, "--save", saved, timeout=TIMEOUT)
    result = json.loads(saved.read_text())
    assert result["bytes"] == [8 * 4**k for k in range(11)] and all(t > 0 for t in result["seconds"])
    assert result["seconds"][-1] > result["seconds"][0] and result["beta"] > 0  # 8 MiB take longer than 8 B
    assert "α = " in run.stdout
    with pytest.raises(par.MPIError, match="needs exactly 2 ranks"):
        par.mpirun(3, "minigraph.parallel.pingpong", timeout=TIMEOUT)


def test_a_batch_that_does_not_split_evenly_is_refused_once(mpi):
    with pytest.raises(par.MPIError) as failure:
        par.mpirun(2, "minigraph.parallel.mnist", "--steps", 2, "--batch-size", 63, timeout=TIMEOUT)
    result = failure.value.result
    assert result.returncode == 2
    assert result.stderr.count("the global batch of 63 examples cannot be split evenly across 2 ranks") == 1


def test_an_allreduce_that_cannot_be_imported_is_refused(mpi, tmp_path):
    with pytest.raises(par.MPIError, match="--allreduce no_such_module:ring: ModuleNotFoundError: No module named 'no_such_module'"):
        par.mpirun(2, "minigraph.parallel.mnist", "--steps", 2, "--batch-size", 64, "--allreduce",
                   "no_such_module:ring", cwd=tmp_path, timeout=TIMEOUT)


def test_a_failing_rank_aborts_all_ranks_with_its_error(mpi, tmp_path):
    (tmp_path / "broken.py").write_text(textwrap.dedent("""
        from minigraph.parallel.mpi import library_allreduce

        def allreduce(comm, buffer):
            if comm.Get_rank() == 1:
                raise ValueError("my ring is broken")
            library_allreduce(comm, buffer)  # rank 0 waits here for rank 1, which never comes
    """))
    start = time.monotonic()
    with pytest.raises(par.MPIError, match="failed") as failure:
        par.mpirun(2, "minigraph.parallel.mnist", "--steps", 3, "--batch-size", 64, "--allreduce",
                   "broken:allreduce", cwd=tmp_path, timeout=TIMEOUT)
    assert time.monotonic() - start < TIMEOUT / 2  # ended by MPI_Abort, not by the time limit
    stderr = failure.value.result.stderr
    assert "rank 1 of 2 failed" in stderr and "ValueError: my ring is broken" in stderr


def running_commands_containing(word):
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if word in cmdline.read_bytes().decode(errors="replace"):
                found.append(cmdline.parent.name)
        except OSError:  # the process ended meanwhile
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="lists processes through /proc")
def test_a_hanging_run_is_killed_with_every_rank_at_the_time_limit(mpi, tmp_path):
    module = f"hang_{os.getpid()}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""
        import time
        from mpi4py import MPI

        if MPI.COMM_WORLD.Get_rank() == 1:
            time.sleep(600)
        MPI.COMM_WORLD.Barrier()
    """))
    start = time.monotonic()
    with pytest.raises(par.MPIError, match=f"`mpiexec -n 2 python -m {module}` did not finish within 5 s"):
        par.mpirun(2, module, cwd=tmp_path, timeout=5)
    assert time.monotonic() - start < 30
    for _ in range(50):  # SIGKILL is delivered at once, but the kernel may take a moment to reap
        if not running_commands_containing(module):
            break
        time.sleep(0.1)
    assert running_commands_containing(module) == []


def test_without_mpi4py_the_program_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    assert mnist.main(["--steps", "1", "--batch-size", "8"]) == 1
    error = capsys.readouterr().err
    assert "MPI is not available in this Python" in error and "install the course's MPI extra" in error


def test_without_mpiexec_the_launcher_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(par.MPIError, match="no mpiexec next to .*python nor on the PATH: install the course's MPI extra"):
        par.mpirun(2, "minigraph.parallel.mnist")
