"""All-reduce, simulated in one process: N workers each hold an array, and afterwards every worker holds
the sum of all N. An algorithm is a *schedule*: rounds of transfers between workers, run on a
:class:`Network` that moves the data, counts the bytes and records every round.

    network = Network([np.ones(6), 2 * np.ones(6), 3 * np.ones(6)])
    ring_allreduce(network)
    network.results()        # three arrays of 6.0
    network.bytes_sent       # bytes each worker sent: 2 (N - 1) / N * 6 * 8 = 64 here

Three algorithms, for N workers and an array of M bytes:

- :func:`ring_allreduce`: reduce-scatter, then all-gather, around a ring; the array travels in N chunks.
  Each worker sends (and receives) 2 (N - 1) / N * M bytes (exactly, when N divides the array's length):
  less than 2 M, however many workers there are.
- :func:`tree_allreduce`: reduce up a binomial tree to worker 0, then broadcast down it: 2 ceil(log2 N)
  rounds, each carrying the whole array.
- :func:`parameter_server_allreduce`: every worker pushes its array to a server (worker 0), which sends
  the sum back: the server receives and sends (N - 1) * M bytes, a bottleneck that grows with N.

In a round all transfers happen at once, as in MPI's ``Sendrecv``: every payload is read before any
destination is written.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transfer:
    """Send ``buffer[start:stop]`` of worker ``source`` to worker ``destination``, which adds it to its own
    ``buffer[start:stop]`` (``add=True``: a reduction) or overwrites that part with it (``add=False``)."""

    source: int
    destination: int
    start: int
    stop: int
    add: bool


@dataclass
class Round:
    """One round of a schedule: its phase (a name), its transfers and, if the network records them, every
    worker's buffer after it (an array of shape (workers, elements))."""

    phase: str
    transfers: list
    buffers: np.ndarray = None


class Network:
    """N workers, each holding a flat copy of one of ``arrays`` (same shape and dtype), that exchange parts
    of their buffers in rounds.

    ``buffers[i]`` is worker i's data; :meth:`exchange` runs one round; ``bytes_sent[i]`` and
    ``bytes_received[i]`` count worker i's traffic; ``rounds`` lists the rounds run. With ``record=True``
    each round also keeps every worker's buffer after it, and ``initial`` the buffers before the first one
    (to draw the algorithm step by step).
    """

    def __init__(self, arrays, record=False):
        arrays = [np.asarray(a) for a in arrays]
        if not arrays:
            raise ValueError("a Network needs at least one worker's array")
        for index, array in enumerate(arrays):
            if array.shape != arrays[0].shape or array.dtype != arrays[0].dtype:
                raise ValueError(f"worker {index}'s array is {array.dtype} {array.shape}, worker 0's "
                                 f"{arrays[0].dtype} {arrays[0].shape}: all workers must hold the same shape and dtype")
        self.shape = arrays[0].shape
        self.buffers = np.stack([a.ravel() for a in arrays])  # (workers, elements), a copy
        self.initial = self.buffers.copy() if record else None
        self.record = record
        self.rounds = []
        self.bytes_sent = np.zeros(self.workers, np.int64)
        self.bytes_received = np.zeros(self.workers, np.int64)

    @property
    def workers(self):
        return self.buffers.shape[0]

    @property
    def size(self):
        """Elements per worker."""
        return self.buffers.shape[1]

    def chunk(self, index):
        """``(start, stop)`` of chunk ``index`` (taken modulo N) when the buffer is cut in N chunks whose
        sizes differ by at most one element (the larger ones first, as ``np.array_split`` cuts)."""
        return chunk_bounds(self.size, self.workers, index % self.workers)

    def exchange(self, transfers, phase):
        """Run one round: all payloads are read first, then delivered (added or copied). ``phase`` names the
        round in ``rounds``; a round without transfers is not recorded."""
        transfers = list(transfers)
        if not transfers:
            return
        for transfer in transfers:
            self._check(transfer)
        self._check_writes(transfers)
        payloads = [self.buffers[t.source, t.start:t.stop].copy() for t in transfers]
        for t, payload in zip(transfers, payloads):
            if t.add:
                self.buffers[t.destination, t.start:t.stop] += payload
            else:
                self.buffers[t.destination, t.start:t.stop] = payload
            self.bytes_sent[t.source] += payload.nbytes
            self.bytes_received[t.destination] += payload.nbytes
        self.rounds.append(Round(phase, transfers, self.buffers.copy() if self.record else None))

    def _check(self, t):
        if not (0 <= t.source < self.workers and 0 <= t.destination < self.workers):
            raise ValueError(f"{t}: workers are numbered 0 to {self.workers - 1}")
        if t.source == t.destination:
            raise ValueError(f"{t}: a worker does not send to itself")
        if not 0 <= t.start <= t.stop <= self.size:
            raise ValueError(f"{t}: the part sent must be a slice of the {self.size} elements")

    @staticmethod
    def _check_writes(transfers):
        """Two transfers of a round that overwrite the same elements (or one overwrites what another adds
        to) would leave a result that depends on their order: refuse the round."""
        for i, a in enumerate(transfers):
            for b in transfers[i + 1:]:
                overlap = a.destination == b.destination and max(a.start, b.start) < min(a.stop, b.stop)
                if overlap and not (a.add and b.add):
                    raise ValueError(f"{a} and {b} write the same elements of worker {a.destination} in one "
                                     "round: the result would depend on their order")

    def results(self):
        """Every worker's buffer, shaped like the arrays given."""
        return [buffer.reshape(self.shape) for buffer in self.buffers.copy()]

    def time(self, alpha, beta):
        """The time the schedule takes in the α-β model: a message of m bytes costs ``alpha + m * beta``;
        in a round a worker sends and receives at the same time (one link each way) but its messages in one
        direction go one after another; a round lasts as long as its busiest worker."""
        total = 0.0
        for round_ in self.rounds:
            busy = np.zeros((2, self.workers))
            for t in round_.transfers:
                cost = alpha + (t.stop - t.start) * self.buffers.itemsize * beta
                busy[0, t.source] += cost
                busy[1, t.destination] += cost
            total += busy.max()
        return total


def chunk_bounds(size, parts, index):
    """``(start, stop)`` of part ``index`` of ``size`` elements cut in ``parts`` contiguous parts whose sizes
    differ by at most one, the larger ones first (as ``np.array_split`` cuts)."""
    small, larger = divmod(size, parts)
    start = index * small + min(index, larger)
    return start, start + small + (index < larger)


def ring_allreduce(network):
    """Ring all-reduce: worker i sends only to worker i + 1 (mod N).

    Reduce-scatter, N - 1 rounds: in round s worker i passes chunk i - s on, and the receiver
    adds it to its own; after the last round worker i holds the total of chunk i + 1.
    All-gather, N - 1 rounds: the finished chunks travel once more around the ring, overwriting
    the partial sums."""
    n = network.workers
    for step in range(n - 1):
        network.exchange([Transfer(i, (i + 1) % n, *network.chunk(i - step), add=True)
                          for i in range(n)], "reduce-scatter")
    for step in range(n - 1):
        network.exchange([Transfer(i, (i + 1) % n, *network.chunk(i + 1 - step), add=False)
                          for i in range(n)], "all-gather")


def tree_allreduce(network):
    """Binomial-tree all-reduce. Reduce: at distance d = 1, 2, 4, ..., each worker i that is a multiple of
    2d adds in the array of worker i + d; worker 0 ends with the total. Broadcast: the same tree backwards,
    copying the total down. 2 ceil(log2 N) rounds, each moving whole arrays."""
    n, whole = network.workers, (0, network.size)
    distance = 1
    while distance < n:
        network.exchange([Transfer(i + distance, i, *whole, add=True) for i in range(0, n - distance, 2 * distance)],
                         "reduce")
        distance *= 2
    while distance > 1:
        distance //= 2
        network.exchange([Transfer(i, i + distance, *whole, add=False) for i in range(0, n - distance, 2 * distance)],
                         "broadcast")


def parameter_server_allreduce(network, server=0):
    """All-reduce through a parameter server: every other worker pushes its array to ``server``, which adds
    them to its own, then every worker pulls the total back."""
    others, whole = [i for i in range(network.workers) if i != server], (0, network.size)
    network.exchange([Transfer(i, server, *whole, add=True) for i in others], "push")
    network.exchange([Transfer(server, i, *whole, add=False) for i in others], "pull")


def simulate(algorithm, arrays, record=False):
    """Run ``algorithm(network)`` on a :class:`Network` holding ``arrays``; return the network (its
    ``results()``, byte counts and rounds)."""
    network = Network(arrays, record=record)
    algorithm(network)
    return network


def tagged(algorithm, workers, size=None):
    """Run ``algorithm`` on ``workers`` workers whose arrays (``size`` elements, default one per worker)
    hold 2**i at worker i, recording every round: any element of any buffer is then a sum of distinct
    powers of two, whose binary digits tell which workers' data it already contains (:func:`contributors`)."""
    size = workers if size is None else size
    if not 1 <= workers <= 52:
        raise ValueError(f"tagged: 1 to 52 workers (float64 holds sums of 2**i exactly up to 2**52), got {workers}")
    return simulate(algorithm, [np.full(size, 2.0**i) for i in range(workers)], record=True)


def contributors(value):
    """The workers whose data a value of a :func:`tagged` run contains: ``contributors(5.0) == [0, 2]``."""
    bits = int(value)
    return [i for i in range(bits.bit_length()) if bits >> i & 1]

