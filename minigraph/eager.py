"""Eager execution: tensors computed at once by the same ops, and a tape for reverse mode (chapter 08).

    x = mg.eager.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = mg.reduce_sum(x * x)          # computed now: y.item() == 14.0
    y.backward()                      # x.grad == [2., 4., 6.]

A :class:`Tensor` is a :class:`~minigraph.graph.Node` that holds its value. When an input of an op is a
Tensor, ``Op.__call__`` hands the op to :func:`apply`, which runs the op's own ``infer_dtype`` and
``infer_shape`` (so errors are the graph's errors), then its ``compute``, and returns a new Tensor. No
rule is written twice: kernels, shape rules and gradient rules are the ops'.

**The tape.** When an input requires a gradient (outside :func:`no_grad`), the result keeps its op and
inputs, so the tensors of a computation form a graph as the program runs. :func:`backward` walks it in
reverse topological order through the ops' gradient rules — whose nodes, built from Tensors, are computed
at once too — and accumulates into the ``grad`` of the leaves. Chapter 03's ``mg.gradients`` works on
Tensors unchanged, and can differentiate its result again.

**Speed.** Building a graph node runs its shape and dtype rules in Python (microseconds). An eager op runs
them once per *signature* — op type, parameters, input shapes and dtypes — and looks the answer up
afterwards (:func:`infer`), so an op costs little more than its numpy call.
"""

import contextlib
import functools

import numpy as np

from .autodiff import _apply_rule
from .graph import CONSTANT, Constant, Node, Op, Source, _default_array, describe, operand_dtype, topological_sort
from .ops import assign, assign_add, assign_sub

LEAF = Source("tensor")  # the op of a Tensor made by Tensor(...): a leaf of the tape
PYTHON_NUMBERS = (float, int, bool)  # as_node's rule for them, without making a node: see _number

_grad_enabled = True
_observer = None  # told about every op, new tensor and value read inside recording(): see tracing.py
_updates = 0  # the number of in-place updates so far: a tape entry remembers it, to detect stale inputs
_signatures = {}  # (op type, parameters, input shapes and dtypes) -> (shape, dtype); see infer
MAX_SIGNATURES = 10_000


# ---------------------------------------------------------------------------------------------- ops


def apply(op, inputs, name=None):
    """``op(*inputs)`` computed now: ``Op.__call__``'s path when an input is a Tensor.

    Inputs that are not Tensors become constants (a number takes the dtype of the tensor
    beside it, as in a graph). The result's dtype and shape come from the op's rules
    (:func:`infer`), its value from the op's ``compute``, checked against them. It is on the
    tape — keeps ``op`` and ``inputs`` — when an input requires a gradient and gradients are
    on; otherwise its ``inputs`` are ``()``, and nothing is kept alive.
    """
    values, wants_grad = [], False  # the inputs' arrays; does an input require a gradient?
    for x in inputs:
        if x.__class__ is not Tensor:  # a number or an array among them: make constant tensors
            inputs, values, wants_grad = _as_tensors(op, inputs)
            break
        values.append(x._array)
        if x.requires_grad:
            wants_grad = True
    if op.mutates:
        return _update_in_place(op, inputs, name)
    result = Tensor.__new__(Tensor)
    result.op, result._inputs, result.name = op, inputs, name or op.name
    result.shape, result.dtype = result._type = infer(op, result)
    value = op.compute(result, values)
    if value.shape != result.shape or value.dtype != result.dtype:
        raise _mismatch(op, result, value)
    result._array = value
    if wants_grad and _grad_enabled and result.dtype.kind in "fc":
        result.requires_grad, result._epoch = True, _updates
    else:
        result._inputs = ()  # not on the tape: keep nothing alive
    if _observer is not None:
        _observer.record(op, inputs, result)
    return result


def infer(op, node):
    """``(shape, dtype)`` of ``node``, the result of ``op`` on the Tensors ``node.inputs``, by
    the op's ``infer_dtype`` and ``infer_shape`` — run once per signature (op type, parameters
    with their types, input shapes and dtypes), then looked up; not cached for an op with an
    unhashable parameter."""
    params = op.__dict__  # with their types: Pow(2) and Pow(2.0) differ on integers
    op_key = op.__class__
    if params:
        op_key = (op_key, *params.values(), *map(type, params.values()))
    inputs = node._inputs  # a tensor's _type is its (shape, dtype); unrolled for 1 or 2 inputs
    if len(inputs) == 1:
        key = (op_key, inputs[0]._type)
    elif len(inputs) == 2:
        key = (op_key, inputs[0]._type, inputs[1]._type)
    else:
        key = (op_key, *[x._type for x in inputs])
    try:
        found = _signatures.get(key)
    except TypeError:  # an unhashable parameter
        found = key = None
    if found is None:
        _infer_now(node)
        if node.dtype is None:
            raise TypeError(f"{op.name} gives no value, so it has no eager use")
        found = node.shape, node.dtype
        if key is not None:
            if len(_signatures) >= MAX_SIGNATURES:
                _signatures.clear()
            _signatures[key] = found
    return found


def _infer_now(node):
    """Set ``node.dtype`` and ``node.shape`` by its op's rules, as ``make_node`` does for a graph node."""
    dtype = node.op.infer_dtype(node, [x.dtype for x in node._inputs])
    node.dtype = None if dtype is None else np.dtype(dtype)
    shape = node.op.infer_shape(node, [x.shape for x in node._inputs])
    node.shape = None if shape is None else tuple(shape)


def _mismatch(op, node, value):
    """The error for a value of another shape or dtype than the op's rules promise."""
    return TypeError(f"{op.name}: compute returned {type(value).__name__} of shape {np.shape(value)} and dtype "
                     f"{getattr(value, 'dtype', None)}, but the op's infer_shape and infer_dtype say {node.shape} "
                     f"and {node.dtype} (inputs: {', '.join(describe(x) for x in node._inputs)}); they must agree")


def _as_tensors(op, inputs):
    """The inputs of an eager op as Tensors, their arrays, and whether one requires a gradient: numbers,
    arrays and graph constants become constant Tensors; other graph nodes (placeholders, variables, ops)
    cannot be mixed with Tensors."""
    for like in inputs:  # the first node: numbers take its dtype
        if isinstance(like, Node):
            break
    tensors, values, wants_grad = [], [], False
    for x in inputs:
        if x.__class__ is not Tensor:
            if x.__class__ in PYTHON_NUMBERS:
                x = (_cached_number if x else _number)(like.dtype, x)
            else:
                x = _constant(op, x, like)
        tensors.append(x)
        values.append(x._array)
        if x.requires_grad:
            wants_grad = True
    return tuple(tensors), values, wants_grad


def _constant(op, value, like):
    """A constant Tensor for an array or a graph constant among the inputs of ``op``, next to ``like`` (made
    without a graph node, whose name would count as one)."""
    if not isinstance(value, Node):
        try:
            return constant(_default_array(value, operand_dtype(value, like)))
        except TypeError as error:  # a string or None given as an operand
            raise TypeError(f"{op.name}: {error}") from None
    if isinstance(value, Tensor):
        return value
    if not isinstance(value, Constant):
        raise TypeError(f"{op.name}: cannot mix eager Tensors with the graph node {describe(value)} "
                        f"({value.op.name}): an op takes Tensors (computed now) or nodes (run by a Session)")
    return constant(value.constant)


def _number(dtype, value):
    """The constant Tensor for a Python number next to a tensor of ``dtype`` (numpy's weak-scalar rule,
    as ``as_node`` applies it)."""
    array = np.array(value, np.result_type(dtype, value))
    array.flags.writeable = False
    return constant(array)


# The same few numbers come back in every step: cached, except a zero (0.0 == -0.0 would share an entry).
_cached_number = functools.lru_cache(maxsize=1024, typed=True)(_number)


# ---------------------------------------------------------------------------------------------- tensors


class Tensor(Node):
    """A value computed now: ``Tensor(value, requires_grad=False, dtype=None, name=None)``.

    ``value`` (an array, a number or nested lists) is copied; Python floats become float32 and ints int64
    unless ``dtype`` says otherwise. ``requires_grad=True`` (floating-point values only) puts every op
    that uses the tensor on the tape, so that :meth:`backward` can fill its ``grad``.

    Python operators (``+ - * / @ ** -x .T``) and every ``mg`` op accept Tensors, mixed with numbers and
    arrays, and return Tensors. ``t.numpy()`` is the value (read-only), ``t.item()`` a Python number;
    ``t.shape`` and ``t.dtype`` are as for nodes. ``+=``, ``-=``, ``*=`` and ``/=`` update a leaf (a tensor
    made with ``Tensor(...)``) in place — inside ``no_grad()`` if it requires a gradient, as an SGD step
    ``w -= lr * w.grad`` does; on other tensors they compute a new tensor, as for numbers.
    """

    eager = True
    role = None
    requires_grad = False
    apply = staticmethod(apply)  # how Op.__call__ computes an op on Tensors
    _array = None
    _grad = None
    _epoch = 0  # on the tape: the number of in-place updates made before this tensor was computed
    _modified = 0  # a leaf: the number of in-place updates made when it last changed

    def __init__(self, value, requires_grad=False, dtype=None, name=None):
        if isinstance(value, Node) and not value.eager:
            raise TypeError(f"Tensor needs a value (an array or a number), not the graph node {describe(value)}")
        array = _default_array(value, dtype)
        if requires_grad and array.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require a gradient; this one is {array.dtype} "
                            "(give float values or dtype='float32')")
        self.op, self._inputs, self.name = LEAF, (), name or "tensor"
        _hold(self, array)
        self.requires_grad = bool(requires_grad)
        if _observer is not None:
            _observer.created(self)

    @property
    def is_leaf(self):
        """True for a tensor made with ``Tensor(...)``: ``backward`` fills its ``grad``; updates in place."""
        return self.op is LEAF

    @property
    def inputs(self):
        """The tensors this one was computed from, as the tape recorded them (``()`` for a leaf, or for a
        tensor computed without recording)."""
        if self._inputs is None:
            raise RuntimeError(f"backward through a freed tape: {describe(self)} was freed by an earlier "
                               "backward(); pass retain_graph=True to that backward() to go through it again")
        return self._inputs

    def value(self):
        """The value (the array itself: do not change it)."""
        return self._array

    def numpy(self):
        """The value as a read-only numpy array (a view: an in-place update of the tensor shows in it)."""
        _read(self, "numpy()")
        view = np.asarray(self._array).view()
        view.flags.writeable = False
        return view

    def item(self):
        """The value of a one-element tensor as a Python number."""
        _read(self, "item()")
        return self._array.item()

    @property
    def grad(self):
        """The gradient accumulated by ``backward`` (a numpy array), or None. Set it to None to zero it."""
        _read(self, ".grad")
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            value = np.asarray(value, self.dtype)
            if value.shape != self.shape:
                raise ValueError(f"grad of {describe(self)} must have its shape, not {value.shape}")
        self._grad = value

    def zero_grad(self):
        """Forget the accumulated gradient (``grad`` becomes None)."""
        self._grad = None

    def backward(self, grad=None, retain_graph=False):
        """Reverse mode over the tape: see :func:`backward`."""
        backward(self, grad, retain_graph)

    # Reading a value in Python: each of these goes through _read, which a tracer watches.
    def __bool__(self):
        _read(self, "bool(), e.g. in `if` or `while`")
        return bool(self._array)

    def __float__(self):
        _read(self, "float()")
        return float(self._array)

    def __int__(self):
        _read(self, "int()")
        return int(self._array)

    def __index__(self):
        _read(self, "use as an integer, e.g. range()")
        return self._array.__index__()

    def __format__(self, spec):  # f"{loss:.3f}"
        if not spec:
            return str(self)
        _read(self, "format()")
        return format(self._array.item() if self._array.size == 1 else self._array, spec)

    def __array__(self, dtype=None, copy=None):
        _read(self, "conversion to a numpy array")
        return np.array(self._array, dtype, copy=True if copy is None else copy)

    # In-place updates of leaves; elsewhere Python falls back to + - * / and binds a new tensor.
    def __iadd__(self, other):
        return assign_add(self, other) if self.is_leaf else NotImplemented

    def __isub__(self, other):
        return assign_sub(self, other) if self.is_leaf else NotImplemented

    def __imul__(self, other):
        return assign(self, self * other) if self.is_leaf else NotImplemented

    def __itruediv__(self, other):
        return assign(self, self / other) if self.is_leaf else NotImplemented

    def __repr__(self):
        if self._array is None:  # an error interrupted its computation
            return f"<tensor {describe(self)}: {self.op.name}, not computed>"
        value = np.array2string(np.asarray(self._array), separator=", ", prefix="tensor(")
        flags = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({value}, dtype={self.dtype}{flags})"


def constant(array, name="constant"):
    """A Tensor holding ``array`` (not copied) that is on no tape and is no leaf: a constant."""
    tensor = Tensor.__new__(Tensor)
    tensor.op, tensor._inputs, tensor.name = CONSTANT, (), name
    _hold(tensor, array)
    return tensor


def _hold(tensor, array):
    """Make ``array`` the value of ``tensor``, with its shape and dtype (``_type``: for op signatures)."""
    tensor._array = array
    tensor.shape, tensor.dtype = tensor._type = array.shape, array.dtype


def _update_in_place(op, inputs, name):
    """An assign op on a leaf Tensor: its value changes in place, and the leaf itself is returned."""
    global _updates
    target = inputs[0]
    if not target.is_leaf:
        raise TypeError(f"{op.name}: only leaf tensors (made with Tensor(...)) are updated in place, not "
                        f"{describe(target)}, the result of {target.op.name}")
    if _grad_enabled and target.requires_grad:
        raise RuntimeError(f"{op.name}: {describe(target)} requires a gradient, and an update in place is not "
                           "differentiated; update it inside `with mg.eager.no_grad():`")
    node = Tensor.__new__(Tensor)
    node.op, node._inputs, node.name = op, inputs, name or op.name
    _infer_now(node)  # checks that the value fits the target
    op.compute(node, [x._array for x in inputs])
    _updates += 1
    target._modified = _updates
    if _observer is not None:
        _observer.record(op, inputs, target)
    return target


def updated(tensors):
    """Note that the leaves ``tensors`` changed in place (a traced function's graph assigned them)."""
    global _updates
    _updates += 1
    for tensor in tensors:
        tensor._modified = _updates


def _read(tensor, what):
    if _observer is not None:
        _observer.read(tensor, what)


def is_grad_enabled():
    """True when ops on tensors that require a gradient are recorded on the tape (outside ``no_grad``)."""
    return _grad_enabled


def set_grad_enabled(enabled):
    """Turn recording on the tape on or off; returns the previous setting."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(enabled)
    return previous


@contextlib.contextmanager
def no_grad():
    """``with mg.eager.no_grad():`` nothing computed inside goes on the tape: for evaluation (no memory is
    kept for a backward pass) and for parameter updates. Also a decorator: ``@mg.eager.no_grad()``."""
    previous = set_grad_enabled(False)
    try:
        yield
    finally:
        set_grad_enabled(previous)


def is_recording():
    """True inside ``recording(...)``: an observer (a tracer) is watching."""
    return _observer is not None


@contextlib.contextmanager
def recording(observer):
    """Inside the block, tell ``observer`` about every op, new tensor and value read — the hook a tracer
    is built on (see :mod:`minigraph.tracing`). ``observer`` has three methods:

    - ``record(op, inputs, output)``: ``op`` was applied to the Tensors ``inputs`` and gave ``output`` (for
      an in-place update, ``output`` is ``inputs[0]``, changed);
    - ``created(tensor)``: ``Tensor(...)`` made a new leaf;
    - ``read(tensor, what)``: Python is about to use the value of ``tensor`` (``what`` says how, e.g.
      ``"float()"``); raising here stops it.

    Gradients are on inside the block (a traced function may differentiate), ``no_grad`` blocks aside.
    """
    global _observer
    if is_recording():
        raise RuntimeError("already recording: one observer at a time")
    previous, _observer = set_grad_enabled(True), observer
    try:
        yield observer
    finally:
        _observer = None
        set_grad_enabled(previous)


# ---------------------------------------------------------------------------------------------- backward


def backward(y, grad=None, retain_graph=False):
    """Reverse mode over the tape: add ``d(sum(y * grad))/dx`` to ``x.grad`` for every leaf
    ``x`` that requires a gradient. ``grad`` is 1 by default for a scalar ``y``, else required.

    The tape is the graph of tensors recorded while ``y`` was computed. Walked in reverse
    topological order, each tensor's adjoint — the sum of what its consumers sent it — goes
    through its op's gradient rule to its inputs; these gradient ops run at once, off the tape
    (for second derivatives, use ``mg.gradients``: its results are on the tape). A tensor done
    with is freed, its inputs dropped, so memory no longer needed goes (``retain_graph=True``
    keeps the tape).
    """
    _read(y, "backward()")  # a tracer refuses: .grad is Python state a graph cannot update
    if not y.requires_grad:
        raise RuntimeError(f"backward: {describe(y)} is not on a tape: it does not depend on a "
                           "tensor made with requires_grad=True, or was computed in no_grad()")
    tape = topological_sort(y)
    adjoints = {y: _seed(y, grad)}
    with no_grad():
        while tape:
            node = tape.pop()
            adjoint = adjoints.pop(node, None)
            if adjoint is None:
                continue
            if node.is_leaf:
                gradient = adjoint.value()
                node._grad = np.array(gradient) if node._grad is None else node._grad + gradient
                continue
            _check_unchanged(node)
            for x, g in zip(node.inputs, _apply_rule(node, adjoint)):
                if g is not None and x.requires_grad:
                    adjoints[x] = adjoints[x] + g if x in adjoints else g
            if not retain_graph:
                node._inputs = None


def _seed(y, grad):
    """The adjoint of ``y`` itself: 1 for a scalar, else ``grad``, which must have ``y``'s shape."""
    if grad is None:
        if y.shape != ():
            raise RuntimeError(f"backward: {describe(y)} is not a scalar; pass grad=, an array of its shape "
                               "(np.ones(y.shape) gives the gradient of sum(y))")
        return constant(np.ones((), y.dtype), "grad")
    value = np.asarray(grad.value() if isinstance(grad, Tensor) else grad, y.dtype)
    if value.shape != y.shape:
        raise ValueError(f"backward: grad has shape {value.shape}, but {describe(y)} has shape {y.shape}")
    return constant(value, "grad")


def _check_unchanged(node):
    """Refuse to differentiate ``node`` if a leaf it read was updated in place since (stale value)."""
    for x in node.inputs:
        if x._modified > node._epoch:
            raise RuntimeError(f"backward: {describe(x)} was updated in place after {node.op.name} used it, so "
                               "its gradient would use the new value; update parameters after backward()")
