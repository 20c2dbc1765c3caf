"""The computation graph: nodes, ops, and the three kinds of source node.

A graph is a DAG of :class:`Node` objects. Each node applies an :class:`Op` to its input nodes. Building a
node computes nothing: it only infers the node's static ``shape`` and ``dtype`` (so a mistake fails at
once); a :class:`~minigraph.session.Session` computes values later.

Source nodes have no inputs: a :class:`Placeholder` is fed at run time, a :class:`Variable` holds state
that lives in a Session (and that update ops change), a :class:`Constant` holds a fixed array.
"""

import contextlib
import re

import numpy as np


class ShapeError(ValueError):
    """A node's inputs have shapes its op cannot combine."""


# ---------------------------------------------------------------------------------------------- roles


_current_role = None


@contextlib.contextmanager
def role_scope(role):
    """Mark every node built inside the ``with`` block with ``node.role = role``.

    ``gradients`` uses ``"gradient"``, ``jvp`` ``"tangent"``, optimizers ``"update"``; ``draw`` colours
    nodes by role.
    """
    global _current_role
    previous, _current_role = _current_role, role
    try:
        yield
    finally:
        _current_role = previous


# ---------------------------------------------------------------------------------------------- nodes


_name_counts = {}


def unique_name(base):
    """``base`` the first time, then ``base_1``, ``base_2``, ... (names the user gives are kept as given)."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


class Node:
    """One value of the graph: ``op`` applied to ``inputs``.

    Attributes:
        op:     the :class:`Op` that computes this node.
        inputs: tuple of input nodes.
        name:   a readable name (generated names are unique: ``add``, ``add_1``, ...).
        shape:  static shape, a tuple with ``None`` for a dimension known only at run time (the batch),
                or ``None`` when even the rank is unknown.
        dtype:  numpy dtype of the value (``None`` for ``group``, which has no value).
        role:   who built the node: ``None`` (the user), ``"gradient"``, ``"tangent"`` or ``"update"``.

    Nodes hash by identity, so they are dict keys (``feed_dict``); ``==`` is identity too — use
    :func:`minigraph.equal` for an elementwise comparison. Python operators build nodes:
    ``+ - * / @ **``, unary ``-`` and ``.T``, with numpy broadcasting. ``node.eval(feed_dict)`` computes
    the node in the default session (see :meth:`~minigraph.session.Session.as_default`).
    """

    __array_ufunc__ = None  # ``numpy_array + node`` calls ``node.__radd__`` instead of looping over the array
    eager = False  # True for chapter 08's eager Tensors, which ops compute at once (see Op.__call__)

    def __init__(self, op, inputs, name, shape, dtype):
        self.op = op
        self.inputs = tuple(inputs)
        self.name = name
        self.shape = None if shape is None else tuple(shape)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.role = _current_role

    @property
    def attrs(self):
        """The op's parameters, e.g. ``{"axis": (1,), "keepdims": False}`` for ``reduce_sum``."""
        return dict(vars(self.op))

    def __repr__(self):
        dtype = "" if self.dtype is None else f", {self.dtype}"
        return f"<{self.op.name} {self.name!r} shape={format_shape(self.shape)}{dtype}>"

    # Operators: each builds a node with the function of the same name in minigraph.ops.
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pow__(self, exponent):
        return ops.pow(self, exponent)

    def __rpow__(self, base):
        return ops.pow(base, self)

    @property
    def T(self):
        return ops.transpose(self)

    # TensorFlow 1's shortcuts for running one node in the default session.
    def eval(self, feed_dict=None, session=None):
        """The value of this node, computed by ``session`` or else the default session (``with
        sess.as_default():``, ``with Session() as sess:``): ``accuracy.eval({x: images, y: labels})``."""
        from .session import default_session  # imported here: sessions are built on top of this module

        return default_session(session, self).run(self, feed_dict)

    def run(self, feed_dict=None, session=None):
        """Run this node for its effect, like :meth:`eval` but returning nothing: ``train_step.run(feed)``."""
        self.eval(feed_dict, session)


def format_shape(shape):
    """``(None, 784)`` -> ``"(None, 784)"``; an unknown rank -> ``"?"``."""
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def shapes_compatible(a, b):
    """True if static shapes ``a`` and ``b`` can describe the same array (``None`` matches anything)."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def describe(node):
    """``'x' (None, 784)`` — how error messages name a node."""
    return f"{node.name!r} {format_shape(node.shape)}"


# ---------------------------------------------------------------------------------------------- ops


class Op:
    """What a node computes. To add an operation, subclass and implement:

    - ``compute(self, node, input_values) -> ndarray``: the value, from the inputs' numpy values (a
      sequence, in the order of ``node.inputs``).
    - ``infer_shape(self, node, input_shapes) -> tuple | None``: the static output shape (``None`` entries
      for unknown dimensions); raise ``self.shape_error(node, why)`` when the inputs do not fit.
    - ``gradient(self, node, output_grad) -> list``: one node (or ``None`` for "no gradient") per input,
      the vector-Jacobian product, built from other ops so it can be differentiated again.

    Optional: ``infer_dtype`` (default: numpy's promotion of the input dtypes) and ``tangent`` (forward
    mode, see :func:`minigraph.jvp`). Parameters go in ``__init__`` as public attributes (``node.attrs``
    shows them); calling the op builds a node: ``MyOp(param)(x, y)``.

    Flags tell the executor and the memory planner (chapter 06) what compute does with memory: ``mutates``
    (it writes into its first input, a Variable), ``returns_view`` (the result may share the array of its
    first input), ``writes_into`` (``compute_into`` can write the result into an array it is given),
    ``in_place`` (that array may even be one of its inputs) and ``stateful`` (compute is not a pure function
    of the inputs: it draws random numbers or writes a variable, so it must never be recomputed — nor, by
    chapter 05's graph passes, folded, merged or dropped). Otherwise compute must return a new array: the
    planner may overwrite it once it is dead. ``kernel`` is the numpy source that writes the value into a
    buffer, for chapter 05's fused kernels; ``expression``, the numpy source of the value as a new array,
    lets such a kernel start with the op itself (its head) written out.
    """

    mutates = False  # True if compute writes into the buffer of inputs[0] (a Variable): assign ops
    returns_view = False  # True if the result may share memory with inputs[0] (reshape, transpose, ...)
    writes_into = False  # True if compute_into is implemented
    in_place = False  # True if compute_into may be given one of the inputs as its output array
    stateful = False  # True if compute is not a function of the inputs alone (random numbers) or writes a variable
    kernel = None  # e.g. "np.add({0}, {1}, out={out})": the value of inputs {0}, {1}, ... written into {out}
    expression = None  # e.g. "np.matmul({0}, {1})": the value of inputs {0}, {1}, ... as a new array

    @property
    def name(self):
        """Short lowercase name used for node names and drawings (subclasses set ``name = "..."``)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    def __call__(self, *inputs, name=None):
        for x in inputs:
            if isinstance(x, Node) and x.eager:  # an eager Tensor: compute now (chapter 08)
                return x.apply(self, inputs, name)
        like = next((x for x in inputs if isinstance(x, Node)), None)
        try:
            nodes = [as_node(x, like) for x in inputs]
        except TypeError as error:  # a string or None given as an operand
            raise TypeError(f"{self.name}: {error}") from None
        return make_node(self, nodes, name)

    def compute(self, node, input_values):
        raise NotImplementedError(f"{type(self).__name__}.compute is not implemented")

    def compute_into(self, node, values):
        """Like ``compute``, but writes the result into ``values[-1]``, an array of the node's shape and
        dtype chosen by the memory plan, and returns it; the inputs' values are ``values[:-1]``."""
        raise NotImplementedError(f"{type(self).__name__}.compute_into is not implemented")

    def infer_shape(self, node, input_shapes):
        return None

    def infer_dtype(self, node, input_dtypes):
        return np.result_type(*input_dtypes) if input_dtypes else None

    def gradient(self, node, output_grad):
        raise NotImplementedError(f"{type(self).__name__} has no gradient rule (node {node.name!r})")

    def tangent(self, node, input_tangents):
        """Forward mode: the tangent of the output given the inputs' tangents (``None`` means zero).

        ``NotImplemented`` (the default) makes :func:`minigraph.jvp` derive it from ``gradient``.
        """
        return NotImplemented

    def shape_error(self, node, why):
        """A :class:`ShapeError` naming this op, the node's inputs with their shapes, and ``why``."""
        inputs = ", ".join(describe(x) for x in node.inputs)
        return ShapeError(f"{self.name}: cannot build {node.name!r} from {inputs}: {why}")

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def make_node(op, inputs, name=None):
    """Build the node ``op(*inputs)``: check the inputs, infer its dtype and static shape."""
    for position, x in enumerate(inputs):
        if not isinstance(x, Node):
            raise TypeError(f"{op.name}: input {position} is a {type(x).__name__}, not a Node")
    node = Node(op, inputs, name or unique_name(op.name), None, None)
    dtype = op.infer_dtype(node, [x.dtype for x in node.inputs])
    node.dtype = None if dtype is None else np.dtype(dtype)
    shape = op.infer_shape(node, [x.shape for x in node.inputs])
    node.shape = None if shape is None else tuple(shape)
    return node


# ---------------------------------------------------------------------------------------------- sources


class Source(Op):
    """The op of a node without inputs; the node itself carries its data."""

    def __init__(self, kind):
        self.kind = kind

    @property
    def name(self):
        return self.kind

    def compute(self, node, input_values):
        return node.value()

    def gradient(self, node, output_grad):
        return []


PLACEHOLDER, VARIABLE, CONSTANT = Source("placeholder"), Source("variable"), Source("constant")


def _default_array(value, dtype):
    """``value`` as a numeric array; Python floats become float32 and ints int64 unless ``dtype`` is given."""
    array = np.array(value, dtype=dtype)
    if array.dtype.kind not in "biufc":  # a string, None, a list of mixed things: no arithmetic is defined
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise TypeError(f"{type(value).__name__} {shown} is not a number or an array of numbers "
                        f"(numpy makes it a {array.dtype} array), so it cannot be a value in the graph")
    if dtype is None and not isinstance(value, (np.ndarray, np.generic)) and array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


class Placeholder(Node):
    """An input fed at run time through ``feed_dict``. Build it with :func:`placeholder`."""

    def __init__(self, name, shape=None, dtype="float32"):
        if shape is not None:
            shape = tuple(None if d is None else int(d) for d in shape)
        super().__init__(PLACEHOLDER, (), name or unique_name("placeholder"), shape, dtype)

    def value(self):
        raise RuntimeError(f"placeholder {describe(self)} has no value: feed it in feed_dict")


def placeholder(name=None, shape=None, dtype="float32"):
    """An input of the graph, fed at run time: ``placeholder("x", shape=(None, 784))``.

    ``shape`` may hold ``None`` for a dimension given only at run time; ``shape=None`` leaves even the rank
    open. Feeds are checked against the shape and dtype (see :class:`~minigraph.session.Executor`).
    """
    return Placeholder(name, shape, dtype)


class Variable(Node):
    """State of the model (weights): ``Variable(np.zeros((784, 10), "float32"), name="W")``.

    A Session keeps its own copy of the value, starting at ``initial_value`` (no init step needed);
    assign ops change it in place. ``trainable=False`` hides it from optimizers (e.g. optimizer slots).
    Python numbers and lists become float32 (floats) or int64 (ints) unless ``dtype`` is given.
    """

    def __init__(self, initial_value, name=None, trainable=True, dtype=None):
        if isinstance(initial_value, Node):
            raise TypeError("Variable needs an array as its initial value, not a Node")
        self.initial_value = _default_array(initial_value, dtype)
        self.trainable = trainable
        super().__init__(VARIABLE, (), name or unique_name("variable"), self.initial_value.shape, self.initial_value.dtype)

    def value(self):
        """The initial value (a Session uses its own copy of it instead)."""
        return self.initial_value


class Constant(Node):
    """A fixed array in the graph. Build it with :func:`constant` (or just use a number in an expression)."""

    def __init__(self, value, name=None, dtype=None):
        self.constant = _default_array(value, dtype)
        super().__init__(CONSTANT, (), name or unique_name("constant"), self.constant.shape, self.constant.dtype)

    def value(self):
        return self.constant


def constant(value, dtype=None, name=None):
    """A constant node. Python floats become float32 and ints int64 unless ``dtype`` is given."""
    return Constant(value, name, dtype)


def as_node(value, like=None):
    """``value`` if it is a Node, else a Constant of it.

    A Python number takes the dtype numpy would give it next to ``like`` (numpy's "weak scalar" rule), so
    ``x * 0.5`` stays float32 when ``x`` is float32.
    """
    if isinstance(value, Node):
        return value
    return Constant(value, dtype=operand_dtype(value, like))


def operand_dtype(value, like=None):
    """The dtype a value that is not a node takes as an operand next to the node ``like`` (see
    :func:`as_node`), or ``None``: the value's own (see :func:`constant`)."""
    if isinstance(value, (bool, int, float)) and like is not None and like.dtype is not None:
        return np.result_type(like.dtype, value)
    return None


# ---------------------------------------------------------------------------------------------- traversal


def topological_sort(fetches):
    """All nodes the ``fetches`` depend on, each after its inputs (iterative depth-first
    post-order).

    Inputs are visited left to right, so the order is deterministic; no recursion, so long
    chains are fine. A node met again while it is still on the stack closes a cycle, which no
    order can have: an error.
    """
    if isinstance(fetches, Node):
        fetches = [fetches]
    order, visited, finished = [], set(), set()
    for root in fetches:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, 0)]
        while stack:
            node, next_input = stack[-1]
            if next_input < len(node.inputs):
                stack[-1] = (node, next_input + 1)
                child = node.inputs[next_input]
                if child not in visited:
                    visited.add(child)
                    stack.append((child, 0))
                elif child not in finished:
                    raise _cycle_error([n for n, _ in stack], child)
            else:
                stack.pop()
                order.append(node)
                finished.add(node)
    return order


def _cycle_error(path, node):
    """The error for a cycle: ``node`` is an input of the last node of ``path`` and already on ``path``."""
    cycle = path[path.index(node):] + [node]
    return ValueError("the graph has a cycle, " + " -> ".join(repr(n.name) for n in reversed(cycle))
                      + ", so no node of it can be computed first (were the inputs of a node edited?)")


def trainable_variables(fetches):
    """The trainable :class:`Variable` nodes that ``fetches`` depend on, in topological order."""
    return [n for n in topological_sort(fetches) if isinstance(n, Variable) and n.trainable]


from . import ops  # noqa: E402  (the operators above build nodes with the ops defined on top of this module)
