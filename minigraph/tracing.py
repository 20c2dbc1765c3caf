"""Tracing eager code into a static graph: ``mg.function`` (chapter 08).

    @mg.function
    def sgd_step(x, y):                       # W, b: Tensors with requires_grad=True
        loss = mg.reduce_mean(mg.softmax_cross_entropy(x @ W + b, y))
        grad_W, grad_b = mg.gradients(loss, [W, b])
        with mg.eager.no_grad():
            W -= 0.1 * grad_W
            b -= 0.1 * grad_b
        return loss

The first call with a new *signature* — the shapes and dtypes of the array and Tensor arguments, the
values of the other arguments — runs ``fn`` eagerly while a :class:`Trace` watches it (through
:func:`minigraph.eager.recording`) and builds a twin of every op in a graph: arguments become
placeholders; tensors from outside the function (the parameters) become variables that read and write
the tensors' own arrays; an in-place update becomes the pure op computing the new value, and the trace
ends with one assign op per updated tensor, writing its last value back. Later calls with that signature
feed the placeholders and run the graph with a :class:`~minigraph.session.Session`, the same pipeline as any
graph: ``mg.function(fn, **session_options)`` passes its options on to the Session.

A trace records ops, not Python: a decision Python takes on a tensor's value would be frozen into the
graph and silently reused for other inputs. So while tracing, using the value of a tensor that depends
on the arguments or the parameters (``if``, ``while``, ``bool()``, ``float()``, ``.numpy()``, ...) raises
a :class:`TracingError`. Decisions on shapes are fine: a new shape is a new signature, and a new trace.
"""

import functools
import inspect

import numpy as np

from . import eager
from .eager import Tensor
from .graph import CONSTANT, Constant, Node, Placeholder, Variable, describe, make_node, topological_sort
from .ops import Add, Assign, AssignAdd, AssignSub, Sub, add, assign, assign_add, assign_sub, broadcast_to, cast, group, sub
from .session import Session


NEW_VALUE = {  # an in-place update -> the pure op giving the new value from the current one and the operand
    Assign: lambda current, value: value,
    AssignAdd: add,
    AssignSub: sub,
}


WRITE_BACK_IN_PLACE = {Add: assign_add, Sub: assign_sub}  # var + x, var - x: written into var directly


class TracingError(RuntimeError):
    """``fn`` did something while being traced that a static graph cannot reproduce."""


def function(fn=None, **session_options):
    """``fn`` traced into a static graph once per signature and then run by a Session: a :class:`Function`.

    Use ``mg.function(fn)``, ``@mg.function`` or ``@mg.function(**session_options)``; the options go to
    the :class:`~minigraph.session.Session` that runs the traced graphs.
    """
    if fn is None:
        return lambda fn: Function(fn, **session_options)
    return Function(fn, **session_options)


class Function:
    """A function that runs as traced graphs: ``f = mg.function(fn); f(x, y)``.

    ``f.traces`` lists the :class:`Trace` of each signature seen so far (``mg.draw(f.traces[0].fetches)``
    draws one); ``f.session`` runs them. Called while another function is being traced, ``f`` is simply
    part of that trace.
    """

    def __init__(self, fn, **session_options):
        self.fn = fn
        self.session = Session(**session_options)
        self.traces = []
        self._traces = {}  # signature -> Trace
        self._variables = {}  # tensor from outside -> the Variable standing for it in every trace
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if eager.is_recording():  # inside another function's trace: become part of it
            return self.fn(*args, **kwargs)
        key = signature(args, kwargs)
        trace = self._traces.get(key)
        if trace is None:
            trace = Trace(self, key)
            result = trace.record_call(args, kwargs)
            self._traces[key] = trace
            self.traces.append(trace)
            return result
        return trace.run(args, kwargs)

    def variable(self, tensor):
        """The Variable for ``tensor`` (a leaf from outside the function): its value in the Session *is* the
        tensor's array, so the graph reads the tensor's current value and assigns write into it."""
        if tensor not in self._variables:
            name = None if tensor.name == "tensor" else tensor.name
            var = self._variables[tensor] = Variable(tensor.value(), name=name, trainable=tensor.requires_grad)
            self.session.variables[var] = tensor.value()
        return self._variables[tensor]

    def __repr__(self):
        return f"<mg.function {self.fn.__name__}: {len(self.traces)} trace(s)>"


def signature(args, kwargs):
    """What a trace is specialised to: for each Tensor or numpy argument its shape and dtype (and whether
    it requires a gradient); for any other argument its type and value, which must be hashable."""
    return (tuple(_argument_key(value) for value in args),
            tuple((name, _argument_key(value)) for name, value in sorted(kwargs.items())))


def _argument_key(value):
    if isinstance(value, Tensor):
        return "tensor", value.shape, value.dtype, value.requires_grad
    if isinstance(value, (np.ndarray, np.generic)):
        return "array", value.shape, value.dtype
    if isinstance(value, Node):
        raise TypeError(f"mg.function: the argument {describe(value)} is a graph node; pass arrays or Tensors")
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"mg.function: an argument is a {type(value).__name__}; pass arrays, Tensors or hashable "
                        "Python values (which become part of the signature)") from None
    return "python", type(value), value


def _is_array(value):
    return isinstance(value, (Tensor, np.ndarray, np.generic))


class Trace:
    """The graph recorded from one call of a function, for one signature.

    ``placeholders``: one per array or Tensor argument, in order. ``updates``: one assign op per tensor the
    function updated in place, writing back its last value. ``fetches``: what a run computes — the returned
    tensors' nodes, then a group of the updates (``mg.draw(trace.fetches)`` draws it). ``variables``: each
    Variable and the tensor whose array it is.

    In-place updates are *functionalized*: within the graph, ``w -= lr * g`` is the pure ``w - lr * g``,
    which stands for ``w`` from then on, so a later read sees the new value without depending on when an
    assign runs; only the last value of each tensor is assigned, at the end of the run.
    """

    def __init__(self, function, signature):
        self.function = function
        self.signature = signature
        self.placeholders = []
        self.updates = []
        self.variables = {}
        self.fetches = []
        self._outputs = None  # the returned structure, with nodes in place of tensors
        self._nodes = {}  # tensor -> its node in the graph (after an in-place update: its new value)
        self._updated = {}  # tensor updated in place -> its Variable, in the order of the first update

    def record_call(self, args, kwargs):
        """Call the function eagerly, recording its graph; return its results (Tensors off any tape)."""
        names = _parameter_names(self.function.fn, len(args))
        args = [self._argument(value, name) for value, name in zip(args, names)]
        kwargs = {name: self._argument(value, name) for name, value in sorted(kwargs.items())}
        with eager.recording(self):
            result = self.function.fn(*args, **kwargs)
        self._outputs = _map(self._node, result, self._name)
        self.updates = [_write_back(var, self._nodes[tensor]) for tensor, var in self._updated.items()]
        self.fetches = _flatten(self._outputs) + ([group(*self.updates, name="updates")] if self.updates else [])
        return _map(_detached, result, self._name)

    def run(self, args, kwargs):
        """Run the graph for new argument values of this signature."""
        arrays = [value.value() if isinstance(value, Tensor) else value
                  for value in (*args, *[kwargs[name] for name in sorted(kwargs)]) if _is_array(value)]
        values = self.function.session.run(self.fetches, dict(zip(self.placeholders, arrays)))
        eager.updated([self.variables[update.inputs[0]] for update in self.updates])
        results = iter(values)
        return _map(lambda node: eager.constant(next(results), node.name), self._outputs, self._name)

    def _argument(self, value, name):
        if not _is_array(value):
            return value
        tensor = Tensor(value, requires_grad=isinstance(value, Tensor) and value.requires_grad, name=name)
        self._nodes[tensor] = Placeholder(name, tensor.shape, tensor.dtype)
        self.placeholders.append(self._nodes[tensor])
        return tensor

    # The observer interface of eager.recording.
    def created(self, tensor):
        self._nodes[tensor] = Constant(tensor.value(), name=None if tensor.name == "tensor" else tensor.name)

    def record(self, op, inputs, output):
        """The twin of an op: the same op applied to the twins of its inputs."""
        if op.mutates:
            self.record_update(op, inputs[1], output)
            return
        name = None if output.name == op.name else output.name
        self._nodes[output] = make_node(op, [self._node(x) for x in inputs], name)

    def record_update(self, op, operand, tensor):
        """``tensor`` updated in place: from now on its node is the pure op giving its new
        value; its Variable is assigned its last value at the end of the run."""
        if isinstance(self._nodes.get(tensor), (Placeholder, Constant)):  # an argument, or new
            raise TracingError(f"{self._name}: {op.name} updates {describe(tensor)} in place, "
                               "but it is an argument or was made inside the function; only "
                               "tensors from outside (parameters) are updated in place here "
                               "(write t = t + ... instead)")
        if type(op) not in NEW_VALUE:
            raise TracingError(f"{self._name}: cannot trace the in-place op {op.name}")
        current = self._node(tensor)  # its Variable, or the value an earlier update gave it
        self._updated.setdefault(tensor, self.function.variable(tensor))
        new_value = NEW_VALUE[type(op)](current, self._node(operand))
        if new_value.dtype != tensor.dtype:
            new_value = cast(new_value, tensor.dtype)
        if new_value.shape != tensor.shape:
            new_value = broadcast_to(new_value, tensor.shape)
        self._nodes[tensor] = new_value

    def read(self, tensor, what):
        if not _depends_on_inputs(self._node(tensor)):
            return
        if what in ("backward()", ".grad"):
            raise TracingError(f"{self._name}: {what} inside a traced function: .grad is Python state that a graph "
                               "cannot update; compute the gradients as tensors, grads = mg.gradients(loss, "
                               "params), and use them inside the function")
        raise TracingError(
            f"{self._name}: Python needs the value of {describe(tensor)} ({what}) while tracing, but it depends "
            f"on the function's arguments or parameters (here it is {np.array2string(tensor.value(), threshold=6)}). "
            "A trace records ops, not Python decisions: the graph would keep what this one value decided and "
            "reuse it for every input. Compute the decision with ops (arithmetic or a mask instead of `if`), "
            "take it out of the traced function, or pass it as a Python argument (each new value traces anew).")

    def _node(self, tensor):
        """The graph node standing for ``tensor``: a tensor met for the first time comes from outside the
        function — a leaf becomes a Variable, a constant a Constant."""
        if tensor in self._nodes:
            return self._nodes[tensor]
        if tensor.is_leaf:
            node = self.function.variable(tensor)
            self.variables[node] = tensor
        elif tensor.requires_grad:
            raise TracingError(f"{self._name}: {describe(tensor)} was computed outside the traced function, on a "
                               "tape that the graph cannot see; pass it as an argument or compute it inside")
        else:
            node = Constant(tensor.value(), name=None if tensor.op is CONSTANT else tensor.name)
        self._nodes[tensor] = node
        return node

    @property
    def _name(self):
        return f"mg.function({self.function.fn.__name__})"

    def __repr__(self):
        arguments = ", ".join(f"{p.name} {p.shape} {p.dtype}" for p in self.placeholders)
        return f"<trace of {self.function.fn.__name__}({arguments}): {len(topological_sort(self.fetches))} nodes>"


def _write_back(var, value):
    """The op writing ``value`` into ``var`` at the end of a run: ``assign_sub(var, x)`` for ``var - x`` (and
    ``assign_add`` for ``var + x``), which makes no temporary array; ``assign(var, value)`` otherwise."""
    if type(value.op) in WRITE_BACK_IN_PLACE and value.inputs[0] is var:
        return WRITE_BACK_IN_PLACE[type(value.op)](var, value.inputs[1])
    return assign(var, value)


def _depends_on_inputs(node):
    """True if ``node``'s value depends on a placeholder or a variable (so it changes from call to call)."""
    return any(isinstance(n, (Placeholder, Variable)) for n in topological_sort(node))


def _detached(tensor):
    """A returned tensor, off the tape (as a graph run returns it); a leaf is copied, as it may change."""
    value = np.array(tensor.value()) if tensor.is_leaf else tensor.value()
    return eager.constant(value, tensor.name)


def _map(convert, structure, where):
    """``structure`` (a Tensor or node, None, or lists, tuples and dicts of them) with ``convert`` applied
    to each Tensor or node."""
    if isinstance(structure, Node):
        return convert(structure)
    if structure is None:
        return None
    if isinstance(structure, (list, tuple)):
        return type(structure)(_map(convert, item, where) for item in structure)
    if isinstance(structure, dict):
        return {key: _map(convert, item, where) for key, item in structure.items()}
    raise TracingError(f"{where} returned a {type(structure).__name__}; a traced function returns Tensors (or "
                       "lists, tuples and dicts of them): its Python values are fixed when it is traced")


def _flatten(structure):
    flat = []
    _map(flat.append, structure, "")
    return flat


def _parameter_names(fn, count):
    """Names for the placeholders of the first ``count`` positional arguments: the function's parameters."""
    try:
        parameters = [p.name for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    return [parameters[i] if i < len(parameters) else f"arg{i}" for i in range(count)]
