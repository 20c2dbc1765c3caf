"""Learning-rate schedules: functions ``step -> learning rate`` (``step`` = 0 for the first update).

Pass one as an optimizer's ``lr``: ``mg.optim.SGD(lr=schedules.step_decay(0.1, drop=0.5, every=1000))``.
The optimizer evaluates it at each run from its step counter, the Variable ``optimizer.iterations``.
Any Python function of the step works the same way.
"""

import math


def step_decay(initial, drop, every):
    """``initial * drop ** floor(step / every)``: multiply by ``drop`` every ``every`` steps."""
    return lambda step: initial * drop ** (step // every)


def exponential(initial, rate, every=1):
    """``initial * rate ** (step / every)``: a smooth decay by ``rate`` per ``every`` steps."""
    return lambda step: initial * rate ** (step / every)


def cosine(initial, total_steps, final=0.0):
    """``final + (initial - final) (1 + cos(pi t / T)) / 2`` for ``t = min(step, T)``: half a
    cosine from ``initial`` down to ``final`` over ``T = total_steps`` steps, then constant."""
    def schedule(step):
        progress = min(step, total_steps) / total_steps
        return final + (initial - final) * (1 + math.cos(math.pi * progress)) / 2

    return schedule
