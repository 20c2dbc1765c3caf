"""The α-β model of communication: a message of m bytes takes ``α + m β`` seconds — a latency α that any
message pays, however small, plus β seconds per byte (β is the inverse of the bandwidth).

For N workers all-reducing an array of M bytes (the schedules of :mod:`.allreduce`):

- ring: 2 (N - 1) rounds of one chunk of M / N bytes: ``2 (N - 1) (α + M β / N)``; the bandwidth term
  tends to 2 M β, whatever N is, while the latency term grows with N;
- binomial tree: 2 ceil(log2 N) rounds of whole arrays: ``2 ceil(log2 N) (α + M β)``;
- parameter server: the server receives N - 1 arrays, then sends N - 1: ``2 (N - 1) (α + M β)``.

α and β are measured with a ping-pong between two processes (``python -m minigraph.parallel.pingpong``)
and fitted with :func:`fit_alpha_beta`.
"""

import math

import numpy as np

ROUNDS_AND_BYTES = {  # algorithm -> (workers -> rounds, workers -> fraction of the array each round carries)
    "ring": (lambda n: 2 * (n - 1), lambda n: 1 / n),
    "tree": (lambda n: 2 * math.ceil(math.log2(n)), lambda n: 1),
    "parameter server": (lambda n: 2 * (n - 1), lambda n: 1),
}


def allreduce_time(algorithm, workers, nbytes, alpha, beta):
    """Predicted seconds for ``workers`` workers to all-reduce ``nbytes`` bytes with ``algorithm`` ("ring",
    "tree" or "parameter server"), a message costing ``alpha + bytes * beta``."""
    if algorithm not in ROUNDS_AND_BYTES:
        raise ValueError(f"unknown all-reduce algorithm {algorithm!r}: one of {', '.join(ROUNDS_AND_BYTES)}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    rounds, fraction = ROUNDS_AND_BYTES[algorithm]
    return rounds(workers) * (alpha + fraction(workers) * nbytes * beta)


def fit_alpha_beta(nbytes, seconds):
    """α (seconds) and β (seconds per byte) of the line ``seconds ≈ α + nbytes β`` through measured message
    times. The fit minimizes the *relative* squared error, sum(((α + m β - t) / t)²), so that the
    microsecond times of small messages (which fix α) count as much as the long ones (which fix β)."""
    nbytes, seconds = np.asarray(nbytes, np.float64), np.asarray(seconds, np.float64)
    if nbytes.shape != seconds.shape or nbytes.ndim != 1:
        raise ValueError(f"fit_alpha_beta: one time per message size, got shapes {nbytes.shape} and {seconds.shape}")
    if len(np.unique(nbytes)) < 2 or np.any(seconds <= 0):
        raise ValueError("fit_alpha_beta needs positive times for at least two different message sizes")
    design = np.stack([1 / seconds, nbytes / seconds], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, np.ones_like(seconds), rcond=None)
    return float(alpha), float(beta)
