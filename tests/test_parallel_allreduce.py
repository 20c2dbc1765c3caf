"""Simulated all-reduce: every algorithm gives every worker the sum (N = 1..8, sizes that N does not
divide), the bytes counted equal the formulas exactly, the α-β time of a schedule equals the closed form,
the network refuses ill-formed rounds, and the α-β fit recovers known parameters."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import minigraph.parallel as par

ALGORITHMS = list(par.ALGORITHMS.items())
WORKERS = range(1, 9)
SIZES = (1, 5, 7, 13, 24, 101)  # 1 and 5 are smaller than most N; 7, 13, 101 are prime


def worker_arrays(workers, shape, dtype="int64", seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "i":
        return [rng.integers(-1000, 1000, shape).astype(dtype) for _ in range(workers)]
    return [rng.standard_normal(shape).astype(dtype) for _ in range(workers)]


@pytest.mark.parametrize("name, algorithm", ALGORITHMS)
@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("size", SIZES)
def test_every_worker_ends_with_the_sum(name, algorithm, workers, size):
    arrays = worker_arrays(workers, size)  # integers: the sum is exact in any order
    results = par.simulate(algorithm, arrays).results()
    assert len(results) == workers
    for result in results:
        assert result.dtype == np.int64 and np.array_equal(result, np.sum(arrays, axis=0))


@pytest.mark.parametrize("name, algorithm", ALGORITHMS)
@settings(max_examples=25, deadline=None)
@given(workers=st.integers(1, 8), shape=array_shapes(min_dims=0, max_dims=3, max_side=5),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**16))
def test_float_sums_agree_with_numpy_and_are_identical_on_all_workers(name, algorithm, workers, shape, dtype, seed):
    arrays = worker_arrays(workers, shape, dtype, seed)
    results = par.simulate(algorithm, arrays).results()
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for result in results:
        assert result.shape == shape and result.dtype == dtype
        np.testing.assert_allclose(result, np.sum(arrays, axis=0, dtype="float64"), rtol=tolerance, atol=tolerance)
        assert np.array_equal(result, results[0])  # the same bits everywhere, not only the same value
    assert all(np.array_equal(before, after) for before, after in
               zip(arrays, worker_arrays(workers, shape, dtype, seed)))  # the inputs are left alone


def chunk_sizes(size, workers):
    return [len(part) for part in np.array_split(np.arange(size), workers)]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("size", SIZES + (8 * 7 * 5 * 3,))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ring_bytes_per_worker_are_exactly_two_n_minus_one_over_n_of_the_array(workers, size, dtype):
    network = par.simulate(par.ring_allreduce, worker_arrays(workers, size, dtype))
    itemsize, nbytes = np.dtype(dtype).itemsize, size * np.dtype(dtype).itemsize
    chunks = chunk_sizes(size, workers)
    # Worker i sends every chunk but i + 1 in the reduce-scatter and every chunk but i + 2 in the all-gather.
    expected = [(2 * size - chunks[(i + 1) % workers] - chunks[(i + 2) % workers]) * itemsize for i in range(workers)]
    assert network.bytes_sent.tolist() == expected
    assert network.bytes_received.tolist() == [expected[(i - 1) % workers] for i in range(workers)]
    assert network.bytes_sent.sum() == 2 * (workers - 1) * nbytes
    if size % workers == 0:
        assert network.bytes_sent.tolist() == [2 * (workers - 1) * nbytes // workers] * workers
    assert len(network.rounds) == 2 * (workers - 1)
    assert all(len({t.source for t in r.transfers}) == workers == len(r.transfers) for r in network.rounds)


@pytest.mark.parametrize("workers", WORKERS)
def test_parameter_server_moves_two_n_minus_one_arrays_through_the_server(workers):
    network = par.simulate(par.parameter_server_allreduce, worker_arrays(workers, 13, "float64"))
    nbytes = 13 * 8
    assert network.bytes_sent[0] == network.bytes_received[0] == (workers - 1) * nbytes
    assert network.bytes_sent[1:].tolist() == network.bytes_received[1:].tolist() == [nbytes] * (workers - 1)
    assert network.bytes_sent.sum() == 2 * (workers - 1) * nbytes


@pytest.mark.parametrize("workers", WORKERS)
def test_tree_takes_two_log_n_rounds_of_whole_arrays(workers):
    network = par.simulate(par.tree_allreduce, worker_arrays(workers, 13, "float64"))
    nbytes, depth = 13 * 8, math.ceil(math.log2(workers))
    assert len(network.rounds) == 2 * depth
    assert network.bytes_sent.sum() == 2 * (workers - 1) * nbytes
    assert network.bytes_sent[0] == network.bytes_received[0] == depth * nbytes  # the root's children
    assert all(t.stop - t.start == 13 for r in network.rounds for t in r.transfers)


@pytest.mark.parametrize("name, algorithm", ALGORITHMS)
@pytest.mark.parametrize("workers", WORKERS)
def test_schedule_time_equals_the_alpha_beta_formula(name, algorithm, workers):
    size = 840  # divisible by 1..8: the ring's chunks are equal
    network = par.simulate(algorithm, worker_arrays(workers, size, "float32"))
    alpha, beta = 50e-6, 1 / 1.1e9
    assert network.time(alpha, beta) == pytest.approx(par.allreduce_time(name, workers, size * 4, alpha, beta), rel=1e-12)


def test_cost_formulas_at_known_points():
    alpha, beta, nbytes = 1.0, 0.5, 8.0  # a message of m bytes costs 1 + m / 2
    assert par.allreduce_time("ring", 4, nbytes, alpha, beta) == 6 * (1 + 1)
    assert par.allreduce_time("tree", 4, nbytes, alpha, beta) == 4 * (1 + 4)
    assert par.allreduce_time("tree", 5, nbytes, alpha, beta) == 6 * (1 + 4)
    assert par.allreduce_time("parameter server", 4, nbytes, alpha, beta) == 6 * (1 + 4)
    assert all(par.allreduce_time(name, 1, nbytes, alpha, beta) == 0 for name in par.ALGORITHMS)
    with pytest.raises(ValueError, match="unknown all-reduce algorithm 'butterfly'"):
        par.allreduce_time("butterfly", 4, nbytes, alpha, beta)


def test_fit_recovers_alpha_and_beta_from_noisy_times():
    rng = np.random.default_rng(0)
    sizes = 8 * 4 ** np.arange(11)
    alpha, beta = 45e-6, 1 / 1.1e9
    times = (alpha + sizes * beta) * rng.uniform(0.97, 1.03, len(sizes))
    fitted_alpha, fitted_beta = par.fit_alpha_beta(sizes, times)
    assert fitted_alpha == pytest.approx(alpha, rel=0.05) and fitted_beta == pytest.approx(beta, rel=0.05)
    with pytest.raises(ValueError, match="two different message sizes"):
        par.fit_alpha_beta([8, 8], [1e-6, 2e-6])


def test_tagged_runs_show_which_workers_each_element_holds():
    network = par.tagged(par.ring_allreduce, 4)
    first = network.rounds[0]
    assert first.phase == "reduce-scatter" and [par.contributors(v) for v in first.buffers[1]] == [[0, 1], [1], [1], [1]]
    assert [r.phase for r in network.rounds] == ["reduce-scatter"] * 3 + ["all-gather"] * 3
    after_reduce_scatter = network.rounds[2].buffers
    for worker in range(4):  # worker i holds the finished chunk i + 1
        assert par.contributors(after_reduce_scatter[worker, (worker + 1) % 4]) == [0, 1, 2, 3]
    assert np.all(network.rounds[-1].buffers == 15) and par.contributors(5.0) == [0, 2]
    assert par.simulate(par.ring_allreduce, [np.zeros(3)] * 2).rounds[0].buffers is None  # recorded on request only


def test_network_refuses_ill_formed_rounds_and_arrays():
    network = par.Network([np.zeros(4), np.zeros(4)])
    with pytest.raises(ValueError, match="workers are numbered 0 to 1"):
        network.exchange([par.Transfer(0, 2, 0, 4, add=True)], "bad")
    with pytest.raises(ValueError, match="does not send to itself"):
        network.exchange([par.Transfer(1, 1, 0, 4, add=True)], "bad")
    with pytest.raises(ValueError, match="slice of the 4 elements"):
        network.exchange([par.Transfer(0, 1, 2, 5, add=True)], "bad")
    three = par.Network([np.zeros(4)] * 3)
    with pytest.raises(ValueError, match="write the same elements of worker 0 in one round"):
        three.exchange([par.Transfer(1, 0, 0, 2, add=False), par.Transfer(2, 0, 1, 3, add=True)], "race")
    three.exchange([par.Transfer(1, 0, 0, 2, add=True), par.Transfer(2, 0, 1, 3, add=True)], "two sums")  # fine
    assert three.bytes_received.tolist() == [32, 0, 0] and network.rounds == []
    with pytest.raises(ValueError, match="worker 1's array is float64 \\(3,\\), worker 0's float64 \\(4,\\)"):
        par.Network([np.zeros(4), np.zeros(3)])
