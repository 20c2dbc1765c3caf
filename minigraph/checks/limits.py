"""What limits the learner's code while a check runs: a time limit, and package functions it may not call.

"Write your own" exercises name the package's own implementation (``mg.topological_sort`` for exercise 2.1):
while the check runs, :func:`unavailable` puts a guard in its place — in minigraph's modules and classes,
and in the namespaces of the learner's functions (a notebook that did ``from minigraph import
topological_sort``) — that refuses a call coming straight from the learner's code and lets the package's
own calls through (the checker and minigraph keep working as usual).
"""

import contextlib
import functools
import inspect
import signal
import sys
import threading

from .report import is_learner_file


class TimeLimitExceeded(BaseException):
    """Raised into the learner's code when a check's time is up; a BaseException, so that the learner's
    ``except Exception`` cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` (with SIGALRM, in the main thread,
    as Jupyter runs cells; where that is unavailable, e.g. on Windows, the block runs without a limit)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise TimeLimitExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class UnavailableFunction(Exception):
    """The learner's code called a package function that the exercise asks the learner to write."""

    def __init__(self, name, location):
        super().__init__(f"{name} is not available to your code in this check: write your own")
        self.name, self.location = name, location


def public_name(function):
    """How a learner reaches ``function``: ``mg.topological_sort``, ``mg.Session.run``, ``mg.ops.Mul.gradient``
    (a method is named after the class that defines it, or after a public class that inherits it; a constructor,
    ``__init__``, after its class: ``mg.Executor``). The shortest name wins; among equally short ones, the name
    in the module that defines the function (``mg.parallel.mpi.ring_allreduce``, not the same function that
    ``mg.parallel.mnist`` imports), whichever modules happen to be imported."""
    home = getattr(function, "__module__", None)
    modules = sorted((name for name in sys.modules if name == "minigraph" or name.startswith("minigraph.")),
                     key=lambda name: (name.count("."), name != home, name))
    public = [("mg" + module_name[len("minigraph"):], name, value) for module_name in modules
              for name, value in vars(sys.modules[module_name]).items() if not name.startswith("_")]
    for shown, name, value in public:
        if value is function:
            return f"{shown}.{name}"
    for inherited in (False, True):
        for shown, name, value in public:
            if not isinstance(value, type):
                continue
            found = getattr(value, function.__name__, None) if inherited else vars(value).get(function.__name__)
            if found is function:
                return f"{shown}.{name}" + ("" if function.__name__ == "__init__" else f".{function.__name__}")
    return f"{function.__module__}.{function.__qualname__}"


def given_itself(value, functions):
    """Which package function among ``functions`` the learner passed instead of their own, as a phrase
    ("mg.topological_sort itself", "a class whose update is mg.optim.Adam.update"), or None: catches
    ``check("2.1", mg.topological_sort)`` before anything runs."""
    target = value.func if isinstance(value, functools.partial) else getattr(value, "__func__", value)
    for function in functions:
        if target is function:
            return f"{public_name(function)} itself"
        if isinstance(target, type) and getattr(target, function.__name__, None) is function:
            return f"a class whose {function.__name__} is {public_name(function)}"
    return None


@contextlib.contextmanager
def unavailable(functions, learner_objects, checker_file):
    """Within the block, calls of ``functions`` from the learner's code (not from ``checker_file``) raise
    :class:`UnavailableFunction`; yields the list of ``(name, location)`` of such calls, for the report (the
    learner's code may catch the error)."""
    uses = []
    with contextlib.ExitStack() as stack:
        for function in functions:
            guard = _guard(function, public_name(function), uses, checker_file)
            stack.enter_context(substituted(function, guard, learner_objects))
        yield uses


@contextlib.contextmanager
def substituted(function, substitute, learner_objects):
    """Within the block, ``substitute`` stands in for the package's ``function`` under every name it has: in
    minigraph's modules, in the class that defines it, and in the namespaces of ``learner_objects`` (a
    notebook that imported it)."""
    places = _places(function, _learner_namespaces(learner_objects))
    for namespace, name in places:
        _set(namespace, name, substitute)
    try:
        yield
    finally:
        for namespace, name in reversed(places):
            _set(namespace, name, function)


def _guard(function, name, uses, checker_file):
    @functools.wraps(function)
    def guard(*args, **kwargs):
        caller = sys._getframe(1)
        if caller.f_code.co_filename != checker_file and is_learner_file(caller.f_code.co_filename):
            location = (caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name)
            uses.append((name, location))
            raise UnavailableFunction(name, location)
        return function(*args, **kwargs)

    return guard


def _places(function, namespaces):
    """Every ``(namespace, name)`` that holds ``function``: minigraph's modules, the class that defines it
    (a method), and the learner's namespaces. A namespace is a module, a class or a dict of globals."""
    places = []
    for module_name, module in list(sys.modules.items()):
        if module_name == "minigraph" or module_name.startswith("minigraph."):
            places += [(module, name) for name, value in vars(module).items() if value is function]
    owner_path = function.__qualname__.rpartition(".")[0]
    if owner_path and "<locals>" not in owner_path:
        owner = sys.modules[function.__module__]
        for part in owner_path.split("."):
            owner = getattr(owner, part)
        places.append((owner, function.__name__))
    for namespace in namespaces:
        places += [(namespace, name) for name, value in list(namespace.items()) if value is function]
    return places


def _set(namespace, name, value):
    if isinstance(namespace, dict):
        namespace[name] = value
    else:
        setattr(namespace, name, value)


def _learner_namespaces(objects):
    """The global namespaces of the learner's functions and of the methods of the learner's classes."""
    namespaces = {}
    for value in objects:
        functions = [value]
        if isinstance(value, type):
            functions = [member for cls in value.__mro__ for member in vars(cls).values()]
        for function in functions:
            function = getattr(function, "__func__", function)
            if inspect.isfunction(function) and is_learner_file(function.__code__.co_filename):
                namespaces[id(function.__globals__)] = function.__globals__
    return list(namespaces.values())
