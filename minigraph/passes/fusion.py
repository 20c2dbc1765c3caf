"""Elementwise fusion: connected elementwise ops become one node whose kernel is generated numpy code.

Run op by op, ``0.9 * m + 0.1 * g`` allocates three arrays and streams through memory three times, once
per op. Fused, one generated function computes it into a single output buffer with numpy's ``out=``,
block by block: each block of every buffer stays in the cache while all the ops run over it. This is what
NNVM/TinyFlow do on GPUs, generating CUDA source and compiling it at run time; here the source is numpy.

A group is a tree of elementwise ops whose intermediate values have no other consumer (and are not
fetched), all of one floating dtype and static shape — smaller inputs such as a bias broadcast into it.
An op can join if it declares ``op.kernel``, the numpy source that writes its value into a buffer, and is
pure. Two more kinds of node can join a group at its ends. At the bottom, one *head*: any other pure op
whose new array only the group reads (``x @ W`` under ``+ b`` and ``relu``) — it is computed first, and
the elementwise ops then run in place in its array, as NNVM fuses a convolution with the elementwise ops
after it. At the top, an assign whose value the group computes: the kernel then writes straight into
the variable's buffer, with no array for the value at all (TensorFlow 1 has fused optimizer kernels such
as ``ApplyAdam`` for the same reason) — unless an input might be a view of that variable.
"""

import math
import re

import numpy as np

from ..autodiff import gradients
from ..graph import Constant, Op, Variable, describe, role_scope, topological_sort
from ..ops import Assign
from .core import check_fetches, compile_function, rebuild, rewrite

BLOCK = 32768  # elements per block: 128 KiB of float32, so the blocks of a few buffers stay in a 512 KiB L2 cache
BLOCKED_ABOVE = 1 << 20  # outputs of more elements are computed block by block; smaller ones stay in cache anyway


# ---------------------------------------------------------------------------------------------- groups


def can_fuse(node):
    """True if ``node`` has a kernel, a floating dtype and a known rank."""
    floating = node.dtype is not None and node.dtype.kind == "f"
    return node.op.kernel is not None and floating and node.shape is not None


def can_join(node, consumer):
    """True if pure ``node`` can be computed inside its only consumer's kernel, in the same buffers."""
    if node.op.stateful or node.shape != consumer.shape or node.dtype.kind != "f":
        return False
    if consumer.op.mutates:  # an assign: node must be the value written, in any floating dtype
        return node is consumer.inputs[1]
    return node.dtype == consumer.dtype


def can_head(node, consumer):
    """True if ``node``, an op without a kernel, can be the head of its only consumer's group: pure, and its
    value a new array (not a view, not 0-d) in which the group's ops can run."""
    new_array = node.op.kernel is None and node.inputs and not node.op.returns_view and node.shape and node.dtype is not None
    return bool(new_array) and can_join(node, consumer)


def find_fusable_groups(fetches):
    """The groups of nodes that :func:`fuse_elementwise` fuses, each a list in topological order
    whose last node, the root, is the only one used outside the group (groups of one node are
    left out)."""
    fetches = check_fetches(fetches, "find_fusable_groups")
    order = topological_sort(fetches)
    consumers = consumers_of(order)
    fetched, root_of, groups, headed = set(fetches), {}, {}, set()
    for node in reversed(order):  # consumers before their inputs
        only_consumer = len(consumers[node]) == 1 and node not in fetched
        consumer = next(iter(consumers[node])) if only_consumer else None
        root = root_of.get(consumer)
        if root is not None and can_fuse(node) and can_join(node, consumer):
            root_of[node] = root
            groups[root].append(node)
        elif root is not None and root not in headed and can_head(node, consumer):
            headed.add(root)
            groups[root].append(node)
        elif can_fuse(node) and (node.op.mutates or not node.op.stateful):
            root_of[node] = node
            groups[node] = [node]
    views, writes = variables_read_and_written(order)
    result = []
    for root, group in groups.items():
        group.reverse()  # into topological order, root last
        if root.op.mutates and reads_a_view_of(group, root.inputs[0], views):
            group.pop()  # a block of the variable would be written before another block is read
        if len(group) > 1 and not reorders_a_read(group, views, writes):
            result.append(group)
    return result


def consumers_of(order):
    """For each node of ``order``: the set of nodes of ``order`` that use it as an input."""
    consumers = {node: set() for node in order}
    for node in order:
        for x in node.inputs:
            consumers[x].add(node)
    return consumers


def check_groups(groups, fetches):
    """Raise a ``ValueError`` naming the first of ``groups`` (from a ``find_groups`` function) that
    :func:`fuse_elementwise` cannot fuse safely — the conditions :func:`find_fusable_groups` keeps."""
    order = topological_sort(fetches)
    position, consumers, fetched = {node: i for i, node in enumerate(order)}, consumers_of(order), set(fetches)
    views, writes = variables_read_and_written(order)
    grouped = set()
    for number, group in enumerate(groups):
        group = list(group)
        members, root = set(group), group[-1] if group else None
        heads = [node for node in group if node.op.kernel is None]
        if len(members) < 2 or len(members) != len(group) or members & grouped or not members <= position.keys():
            problem = "a group is two or more nodes that the fetches reach, each in one group only"
        elif [position[node] for node in group] != sorted(position[node] for node in group):
            problem = "its nodes must be in topological order, the root last"
        elif not can_fuse(root) or (root.op.stateful and not root.op.mutates):
            problem = f"its root {root!r} has no kernel"
        elif len(heads) > 1 or any(x in members for head in heads for x in head.inputs):
            problem = "it may have one op without a kernel (a head), and only at the bottom"
        else:
            stranger = next((node for node in group[:-1] if not fits_inside(node, members, consumers, fetched)), None)
            problem = stranger and f"{stranger!r} is used outside the group, or cannot be computed in its consumer's buffers"
        if problem is None and root.op.mutates and reads_a_view_of(group, root.inputs[0], views):
            problem = f"it writes {root.inputs[0]!r} block by block but reads a view of it"
        if problem is None and reorders_a_read(group, views, writes):
            problem = "a read of a variable would move after an assign to it"
        if problem:
            names = ", ".join(getattr(node, "name", repr(node)) for node in group)
            raise ValueError(f"fuse_elementwise: cannot fuse group {number} ({names}): {problem}")
        grouped |= members


def fits_inside(node, members, consumers, fetched):
    """True if ``node``, a member of a group other than its root, can be computed inside the group: it is not
    fetched, its one consumer is a member, and it can join it (as an elementwise op or as a head)."""
    if node in fetched or len(consumers[node]) != 1 or not consumers[node] <= members:
        return False
    consumer = next(iter(consumers[node]))
    return can_join(node, consumer) if node.op.kernel is not None else can_head(node, consumer)


def variables_read_and_written(order):
    """For each node of ``order``: the variables its value may be a view of (``W``, ``reshape(W)``, an
    assign's output), and the variables assigned by it or by a node it depends on."""
    views, writes = {}, {}
    for node in order:
        if isinstance(node, Variable):
            views[node] = {node}
        else:
            views[node] = set().union(*(views[x] for x in node.inputs)) if node.op.returns_view else set()
        writes[node] = set().union(*(writes[x] for x in node.inputs)) | ({node.inputs[0]} if node.op.mutates else set())
    return views, writes


def outside_inputs(group):
    """The inputs of the nodes of ``group`` that are not in it."""
    return [x for node in group for x in node.inputs if x not in group]


def reads_a_view_of(group, variable, views):
    """True if ``group`` reads ``variable`` otherwise than directly: through a reshape, a transpose..."""
    return any(variable in views[x] for x in outside_inputs(group) if x is not variable)


def reorders_a_read(group, views, writes):
    """True if fusing would move a read of a variable after an assign to it: the executor runs a
    node that reads ``v`` before the assigns to ``v`` unless it depends on one — and the fused
    node would depend on every assign that any of its members depends on."""
    written = set().union(*(writes[x] for x in outside_inputs(group)))
    return any(views[x] & written - writes[node] for node in group for x in node.inputs if x not in group)


# ---------------------------------------------------------------------------------------------- kernels


def blocks(out, *inputs):
    """``out`` cut into blocks of about BLOCK elements along its first axis, each with
    the same rows of ``inputs`` (see :func:`part`): a list of tuples ``(out[rows],
    *parts of inputs)`` — or of one tuple, the arrays themselves, when ``out`` is
    small enough to stay in the cache."""
    if out.ndim == 0 or out.size <= BLOCKED_ABOVE:
        return [(out, *inputs)]
    step = max(1, BLOCK * out.shape[0] // out.size)
    cuts = [slice(start, start + step) for start in range(0, out.shape[0], step)]
    return [(out[rows], *(part(x, rows, out) for x in inputs)) for rows in cuts]


def part(x, rows, out):
    """The block ``rows`` of an input ``x``: sliced where ``x`` spans ``out``'s first
    axis, else all of ``x``, which broadcasts (a bias, a scalar)."""
    if x.ndim < out.ndim or x.shape[0] == 1:
        return x
    return x[rows]


def room(value, *inputs):
    """The head's new array ``value`` as the output buffer — or, if broadcasting with ``inputs`` makes
    the result larger than it, a copy of it broadcast to the result's shape."""
    for x in inputs:  # a loop, not all(...): no generator at every run
        if x.shape != value.shape:
            shape = np.broadcast(value, *inputs).shape
            return value if shape == value.shape else np.broadcast_to(value, shape).copy()
    return value


def head_of(group):
    """The member of ``group`` without a kernel (computed by its own op, first), or ``None``."""
    return next((node for node in group if node.op.kernel is None), None)


def kernel_arguments(group):
    """The inputs of ``group`` from outside it, which its kernel takes as arguments: the variable of an
    assign root first, then the others in the order the group's ops use them."""
    members, root = set(group), group[-1]
    arguments = [root.inputs[0]] if root.op.mutates else []
    for node in group:
        arguments += [x for x in dict.fromkeys(node.inputs) if x not in members and x not in arguments]
    return arguments


def may_enlarge(x, shape):
    """True if an input of static shape ``x.shape`` might make a result of static shape ``shape`` larger
    by broadcasting at run time (a bias ``(256,)`` under ``(None, 256)`` cannot; a ``(None, 256)`` can)."""
    if x.shape is None or len(x.shape) > len(shape):
        return True
    return any(d != 1 and (d is None or d != s) for d, s in zip(x.shape[::-1], shape[::-1]))


def spans_rows(x, shape):
    """True if an input might span the first axis of a result of static shape ``shape`` (so a block
    of rows of the result needs the same rows of it)."""
    return x.shape is None or (len(x.shape) == len(shape) > 0 and x.shape[0] != 1)


def generate_kernel(group, arguments, name):
    """Python source of ``def name(x0, x1, ...)``: the value of ``group``'s root from ``arguments``.

    The output buffer ``out`` is a new array, the head's own array ``h``, or the variable of an assign
    root. An output that may be large is computed block by block: ``o``, ``v`` and ``b0, b1, ...`` are then
    the blocks of the output, of the head and of the inputs (see :func:`write_ops` for the ops' lines).
    """
    root, head = group[-1], head_of(group)
    value = root.inputs[1] if root.op.mutates else root  # the value the elementwise ops compute
    blocked = value.shape is None or None in value.shape or math.prod(value.shape) > BLOCKED_ABOVE
    output = "o" if blocked else "out"
    parameter = {x: f"x{i}" for i, x in enumerate(arguments)}
    block = {x: (f"b{i}" if blocked and spans_rows(x, value.shape) else f"x{i}") for i, x in enumerate(arguments)}
    if root.op.mutates:
        block[root.inputs[0]] = output  # the variable is the output
    lines, temporaries, read = write_ops(group, block, output, head_buffer="v" if blocked else "h")
    dtype = f"np.{value.dtype.name}"
    enlarging = [parameter[x] for x in arguments if x in read and block[x] != output and may_enlarge(x, value.shape)]
    prelude = [f"h = {head_line(head, parameter)}"] if head else []
    if root.op.mutates:
        prelude.append("out = x0")
    elif head:
        prelude.append(f"out = room(h, {', '.join(enlarging)})" if enlarging else "out = h")
    elif len(enlarging) == 1:
        prelude.append(f"out = np.empty({enlarging[0]}.shape, {dtype})")
    else:
        shape = f"np.broadcast({', '.join(enlarging)}).shape" if enlarging else repr(value.shape)
        prelude.append(f"out = np.empty({shape}, {dtype})")
    body = [*[f"{t} = np.empty({output}.shape, {dtype})" for t in temporaries], *lines]
    if blocked:  # for o, v, b0, ... in blocks(out, h, x0, ...): the output's block, and the same rows of the rest
        cut = {"o": "out", **({"v": "h"} if root.op.mutates and head else {}),
               **{block[x]: parameter[x] for x in arguments if x in read and block[x].startswith("b")}}
        names = ", ".join(cut) if len(cut) > 1 else "(o,)"
        body = [f"for {names} in blocks({', '.join(cut.values())}):", *[f"    {line}" for line in body]]
    source = [f"def {name}({', '.join(parameter.values())}):",
              f'    """{", ".join(node.op.name for node in group)} fused: the value of node {root.name!r}.',
              "",
              *[f"    {parameter[x]} = {describe_argument(x)}" for x in arguments],
              '    """',
              *[f"    {line}" for line in [*prelude, *body]],
              "    return out"]
    return "\n".join(source) + "\n"


def write_ops(group, block, output, head_buffer):
    """The lines that compute ``group``'s value into ``output``, the temporaries they use, and the inputs
    they read (``block`` names each input, ``head_buffer`` the head's array).

    Each op writes its value with ``out=`` into a buffer: the output, the head's array (under an assign),
    or a temporary ``t0, t1, ...`` where an op has two operands computed in the group. An op overwrites its
    first computed operand — the one above the head, if any — so that the chain of values up to the root
    stays in the output buffer; a temporary is free again once its value is used.
    """
    members, head = set(group), head_of(group)
    above_head = set()
    for node in group:
        if node is head or any(x in above_head for x in node.inputs):
            above_head.add(node)
    lines, temporaries, free, read = [], [], [], set()

    def take():
        if not free:
            temporaries.append(f"t{len(temporaries)}")
            free.append(temporaries[-1])
        return free.pop()

    def compute(node, register):
        if node is head:
            return  # its array is the buffer behind the register
        operands = [x for x in dict.fromkeys(node.inputs) if x in members]
        chain = next((x for x in operands if x in above_head), None)
        in_place = chain or (operands[0] if operands and not node.op.mutates else None)
        registers = {}
        for x in operands:
            registers[x] = (head_buffer if node.op.mutates else register) if x is in_place else take()
            compute(x, registers[x])
        read.update(x for x in node.inputs if x not in members)
        code = node.op.kernel.format(*(registers.get(x) or block[x] for x in node.inputs), out=register).split("\n")
        lines.extend([f"{code[0]}  # {node.name}", *code[1:]])
        free.extend(r for r in registers.values() if r != register and r.startswith("t"))  # temporaries only

    root = group[-1]
    if writes_value_in_place(group, head):
        compute(root.inputs[1], output)  # in the variable's own buffer: the assign has nothing left to copy
    else:
        compute(root, output)
    return lines, temporaries, read


def writes_value_in_place(group, head):
    """True if ``group``'s root is a plain assign whose value can be computed in the variable's buffer:
    only the first op computed reads the variable (and no head comes first)."""
    root = group[-1]
    if type(root.op) is not Assign or head is not None:
        return False
    first = root.inputs[1]
    while operands := [x for x in first.inputs if x in group]:
        first = operands[0]  # compute() starts with the first operand computed in the group
    return all(node is first for node in group[:-1] if root.inputs[0] in node.inputs)


def describe_argument(x):
    """How a kernel's docstring names an argument: ``'W' (784, 128)``, or a scalar constant's value."""
    if isinstance(x, Constant) and x.shape == ():
        return f"{str(x.constant[()])} ({x.dtype})"
    return describe(x)


def head_line(head, parameter):
    """How a kernel computes its head: the op's ``expression`` written out (``np.matmul(x0, x1)``), or
    else a call of the op under the head's name (``log_softmax(x0)``, see :func:`compile_kernel`)."""
    arguments = [parameter[x] for x in head.inputs]
    if head.op.expression is not None:
        return f"{head.op.expression.format(*arguments)}  # {head.name}"
    return f"{head_name(head)}({', '.join(arguments)})  # {head.op!r}"


def head_name(head):
    """The name under which a kernel calls its head: the head node's name as an identifier (``log_softmax_4``)."""
    return re.sub(r"\W", "_", head.name)


def compile_kernel(source, name, head=None):
    """The function ``name`` defined by ``source`` (which may call ``head``'s op), readable as source
    (see :func:`~minigraph.passes.core.compile_function`)."""
    namespace = {"np": np, "blocks": blocks, "room": room}
    if head is not None and head.op.expression is None:
        namespace[head_name(head)] = lambda *values: head.op.compute(head, values)
    return compile_function(source, name, namespace, "fused kernel")


# ---------------------------------------------------------------------------------------------- the op


class FusedElementwise(Op):
    """The ops of ``group`` computed by one generated kernel: ``node.op.source`` is its code.

    Its inputs are the group's kernel arguments (:func:`kernel_arguments`); its value is that of the
    group's root. Gradient: the group's ops rebuilt on the node's inputs (:meth:`unfused`), differentiated
    as they are; an assign root has none.
    """

    def __init__(self, group):
        self.group = tuple(group)
        self.arguments = tuple(kernel_arguments(group))
        root = self.group[-1]
        function_name = "fused_" + re.sub(r"\W", "_", root.name)
        self.source = generate_kernel(self.group, self.arguments, function_name)
        self.function = compile_kernel(self.source, function_name, head_of(self.group))
        self.stateful, self.mutates, self.returns_view = root.op.stateful, root.op.mutates, root.op.returns_view

    @property
    def name(self):
        return f"fused({', '.join(node.op.name for node in self.group)})"

    def compute(self, node, input_values):
        return self.function(*input_values)

    def infer_shape(self, node, input_shapes):
        return self.group[-1].shape

    def infer_dtype(self, node, input_dtypes):
        return self.group[-1].dtype

    def unfused(self, inputs):
        """The group's ops rebuilt on ``inputs`` (one per argument): a node with the same value, op by op."""
        new = dict(zip(self.arguments, inputs))
        for node in self.group:
            new[node] = rebuild(node, [new.get(x, x) for x in node.inputs])
        return new[self.group[-1]]

    def gradient(self, node, output_grad):
        if self.stateful:
            return [None] * len(node.inputs)
        value = self.unfused(node.inputs)
        grads = gradients(value, list(node.inputs), grad_y=output_grad)
        # where a gradient rule uses the value itself (exp, sqrt, tanh, ...), use this node's
        return rewrite(grads, lambda n, inputs: node if n is value else rebuild(n, inputs))


def fuse_elementwise(fetches, find_groups=None):
    """The fetches, with each group found by ``find_groups(fetches) -> list of groups`` (default
    :func:`find_fusable_groups`) replaced by one fused node; groups found by another function are checked
    first."""
    fetches = check_fetches(fetches, "fuse_elementwise")
    if find_groups is None:
        found = find_fusable_groups(fetches)
    else:
        found = find_groups(fetches)
        check_groups(found, fetches)
    groups = {group[-1]: list(group) for group in found}
    new = {}

    def replace(node, inputs):
        if node in groups:
            op = FusedElementwise(groups[node])
            with role_scope(node.role):
                new[node] = op(*(new[x] for x in op.arguments), name=node.name)
        else:
            new[node] = rebuild(node, inputs)
        return new[node]

    return rewrite(fetches, replace)
