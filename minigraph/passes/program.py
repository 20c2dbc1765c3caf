"""The last step of compiling an optimized graph: the executor's steps written out as one Python function.

Chapter 02's :class:`~minigraph.session.Executor` *interprets* its list of steps: for each one, its loop
unpacks a tuple, gathers the inputs and calls the op. That costs a few tenths of a microsecond a
step — nothing next to a large matrix product, but a training step on small arrays is mostly such
steps. Knowing the whole list in advance, a compiler can write it out instead, one line per step, and
compile that once.
TorchInductor does the same: besides its kernels it generates Python "wrapper" code that calls them one
after another and frees each buffer (``del buf3``) as soon as it is dead.

``Session(optimize=...)`` runs each optimized fetch set with a :class:`CompiledExecutor`, whose
``source`` is that program. Its values are the Executor's, bit for bit: the same calls, on the same
arrays, in the same order.
"""

from ..session import Executor, name_the_node
from .core import compile_function
from .fusion import FusedElementwise


class SlotNames:
    """Stands in for an executor's list of values: item ``i`` is the source text ``v[i]``, and a slice
    is a list of them. A step's gather function, applied to it, writes out the inputs it would take."""

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [f"v[{i}]" for i in range(index.start, index.stop)]
        return f"v[{index}]"


def write_program(steps, fetches):
    """``(source, namespace, node_at_line)`` of ``def program(v)``, which runs the executor ``steps``
    on a list of values ``v``: one line per step, ``v[out] = c3(n3, (v[1], v[2]))`` for op ``c3 =
    node.op.compute`` of node ``n3``, ``v[out] = fused_relu(v[0], v[1])`` for a fused node's generated
    kernel, or ``v[out] = None`` where the memory plan frees a slot. ``node_at_line`` maps a line of the
    source to the node its step computes."""
    described = ", ".join(repr(fetch.name) for fetch in fetches)
    lines = ["def program(v):",
             f'    """The steps of an executor of {described}, written out. v: its list of values;',
             '    c0, c1, ...: the compute functions of the ops of nodes n0, n1, ...;',
             '    fused_...: the generated kernels of fused nodes."""']
    namespace, node_at_line, calls = {}, {}, 0
    for compute, node, gather_inputs, output in steps:
        if node is None:  # a step that frees an array (chapter 06)
            lines.append(f"    v[{output}] = None")
            continue
        inputs = gather_inputs(SlotNames())  # a tuple, or a one-element list (see session._gatherer)
        if isinstance(node.op, FusedElementwise):  # its generated kernel, called by name
            kernel = free_name(node.op.function.__name__, namespace)
            namespace[kernel] = node.op.function
            call = f"{kernel}({', '.join(inputs)})"
        else:
            namespace[f"c{calls}"], namespace[f"n{calls}"] = compute, node
            written = f"[{inputs[0]}]" if isinstance(inputs, list) else f"({', '.join(inputs)})"
            call, calls = f"c{calls}(n{calls}, {written})", calls + 1
        what = node.name if node.name == node.op.name else f"{node.name}: {node.op.name}"
        lines.append(f"    v[{output}] = {call}  # {what}")
        node_at_line[len(lines)] = node
    return "\n".join(lines) + "\n", namespace, node_at_line


def free_name(name, namespace):
    """``name``, or else the first of ``name_1``, ``name_2``, ... not in ``namespace``: node names, and so
    kernel names, may repeat (``a/b`` and ``a_b`` even make the same identifier)."""
    candidate, number = name, 0
    while candidate in namespace:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def failing_node(error, code, node_at_line):
    """The node whose line of the program ``code`` was running when ``error`` was raised, or ``None``."""
    node, frame = None, error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code is code:
            node = node_at_line.get(frame.tb_lineno)
        frame = frame.tb_next
    return node


class CompiledExecutor(Executor):
    """An :class:`~minigraph.session.Executor` that runs its steps as one generated function,
    ``executor.program``, whose source is ``executor.source`` (see :func:`write_program`). The same
    arguments, values and errors as the Executor (an error names the node that raised it)."""

    def _compile(self):
        super()._compile()
        self.source, namespace, self._node_at_line = write_program(self._steps, self.computed)
        self.program = compile_function(self.source, "program", namespace, "program")

    def run(self, feed_dict=None):
        """Compute the fetches; returns their values as a list."""
        values = self._fed(feed_dict)
        try:
            self.program(values)
        except Exception as error:
            node = failing_node(error, self.program.__code__, self._node_at_line)
            if node is not None:
                name_the_node(error, node)
            raise
        return [values[i] for i in self._fetch_slots]
