r"""A numpy reference simulator for the NIR graphs this package writes, float32 like Norse.

Time is discrete at the graph's ``dt``: at each step every node is evaluated once, in
topological order, from the sum of its incoming edges *at the same step* — Norse updates the
whole network within a step, and so does this simulator. State lives only in LIF nodes:

.. math::
    I &= \mathrm{fl32}\big(\textstyle\sum_{\text{in-edges}} (W x + b)\big)
        \quad\text{(summed in float64, rounded once)} \\
    a &= \mathrm{fl32}(\mathrm{fl32}(dt)\cdot\mathrm{fl32}(1/\tau)) \\
    v &\leftarrow v + a\,((r I + v_{leak}) - v) \\
    z &= \Theta(v - v_{th}), \qquad v \leftarrow v_{reset}\ \text{where}\ z = 1,
    \qquad v_0 = v_{leak}

the very float32 operations of Norse's ``lif_box_feed_forward_step`` (torch casts the Python
``dt`` to float32 before multiplying). Linear nodes (Affine, Linear, Conv1d) compute in float64
and a spiking node rounds the sum of its in-edges to float32 once: for spike inputs and the
exported weights that sum is exact (:mod:`.exact_sums`), so the current is the one Norse's
:class:`~.norse_ref.ExactLinear` and Lava compute. Sums over the analog input are not exact in
float64: pass the host's current of the input-driven nodes as ``currents`` to match Norse bit
for bit.

Node kinds: Input, Output, Affine, Linear, Conv1d (groups=1), LIF, Threshold; a graph with
anything else (or a cycle) is refused with an ``ExportError``.
"""
from __future__ import annotations

from collections import defaultdict, deque

import nir
import numpy as np

from neuro_erc.errors import ExportError

F32, F64 = np.float32, np.float64


def topological_order(graph: nir.NIRGraph) -> list[str]:
    """Kahn's order of the graph's nodes; refuses cycles (recurrence is not supported)."""
    indegree = {name: 0 for name in graph.nodes}
    children = defaultdict(list)
    for src, dst in graph.edges:
        indegree[dst] += 1
        children[src].append(dst)
    ready = deque(name for name in graph.nodes if indegree[name] == 0)
    order = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for child in children[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) != len(graph.nodes):
        raise ExportError(f"graph has a cycle through {sorted(set(graph.nodes) - set(order))}; only feed-forward graphs simulate")
    return order


def metadata_value(graph: nir.NIRGraph, key: str, given=None):
    """``given``, else the graph's metadata ``key`` (refused when a foreign graph lacks it)."""
    if given is not None:
        return given
    if key not in graph.metadata:
        raise ExportError(f"the graph's metadata has no {key!r}; pass {key} explicitly")
    return graph.metadata[key]


def single_input(graph: nir.NIRGraph) -> dict[str, nir.Input]:
    """The graph's one Input node (a graph of several cores holds them as nested graphs: pass one of those)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ExportError(f"a core graph has one Input and one Output node; this one has inputs {sorted(graph.inputs)} "
                          f"and outputs {sorted(graph.outputs)}")
    return graph.inputs


def conv1d(node: nir.Conv1d, x: np.ndarray) -> np.ndarray:
    """``y[o, j] = b[o] + Σ_{c,k} W[o, c, k] · x_pad[c, j·stride + k·dilation]``, one float64 matrix product."""
    if node.groups != 1:
        raise ExportError("Conv1d with groups != 1 (nir 1.0.8 mis-sizes it; write a diagonal weight instead)")
    weight, stride, dilation = node.weight.astype(F64), int(node.stride), int(node.dilation)
    c_out, c_in, kernel = weight.shape
    span = dilation * (kernel - 1)
    if isinstance(node.padding, str):
        pad = 0 if node.padding == "valid" else span // 2
    else:
        pad = int(node.padding)
    xp = np.pad(x.astype(F64), ((0, 0), (pad, pad)))
    n_out = (xp.shape[1] - span - 1) // stride + 1
    taps = np.arange(kernel)[:, None] * dilation + np.arange(n_out)[None, :] * stride  # [k, j] -> position
    columns = xp[:, taps].reshape(c_in * kernel, n_out)  # rows (c, k), C order like weight[o, c, k]
    return weight.reshape(c_out, c_in * kernel) @ columns + node.bias.astype(F64)[:, None]


class _LIFState:
    def __init__(self, node: nir.LIF, dt: float):
        self.a = F32(F32(dt) * F32(1.0 / node.tau.astype(np.float64)))
        self.r, self.leak = node.r.astype(F32), node.v_leak.astype(F32)
        self.th, self.reset = node.v_threshold.astype(F32), node.v_reset.astype(F32)
        self.v = self.leak.copy()

    def step(self, current: np.ndarray) -> np.ndarray:
        v = self.v + self.a * ((self.r * current + self.leak) - self.v)
        z = (v - self.th > 0).astype(F32)
        self.v = np.where(z > 0, self.reset, v).astype(F32)
        return z


def _linear(node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    """A linear node's output in float64 (not rounded: the spiking node it feeds rounds its sum once)."""
    if isinstance(node, nir.Conv1d):
        return conv1d(node, x)
    if isinstance(node, nir.Affine):
        return node.weight.astype(F64) @ x + node.bias.astype(F64)
    if isinstance(node, nir.Linear):
        return node.weight.astype(F64) @ x
    raise ExportError(f"the reference simulator has no rule for {type(node).__name__} nodes")


def _over_time(value: np.ndarray, shape: tuple[int, ...], T: int, what: str) -> np.ndarray:
    """``value`` of ``shape`` (constant over T) or ``[T, *shape]``, as float32 ``[T, *shape]``."""
    value = np.asarray(value, dtype=F32)
    if value.shape == shape:
        return np.broadcast_to(value, (T, *shape))
    if value.shape != (T, *shape):
        raise ValueError(f"{what} must have shape {shape} or {(T, *shape)}, got {value.shape}")
    return value


def simulate_nir(graph: nir.NIRGraph, x: np.ndarray, T: int | None = None, dt: float | None = None,
                 record: list[str] | None = None, currents: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Run ``graph`` for ``T`` steps from rest; return ``{node: outputs [T, *shape]}``.

    ``x`` has the Input node's shape (held constant over T, as the core's analog input is) or
    ``[T, *shape]``. ``T`` and ``dt`` default to the graph's metadata. ``record`` names the
    nodes to keep (default: every LIF, Threshold and Output node). ``currents`` gives spiking
    nodes their float32 input current (the node's shape, or ``[T, *shape]``) in place of the sum
    of their in-edges: the host's current of the input-driven layers
    (:func:`~.norse_ref.dialogue_currents`).
    """
    T, dt = int(metadata_value(graph, "T", T)), float(metadata_value(graph, "dt", dt))
    (input_name, input_node), = single_input(graph).items()
    x = _over_time(x, tuple(int(s) for s in input_node.input_type["input"]), T, "input")
    spiking = {n for n, node in graph.nodes.items() if isinstance(node, (nir.LIF, nir.Threshold))}
    currents = currents or {}
    if set(currents) - spiking:
        raise ValueError(f"currents given for {sorted(set(currents) - spiking)}: not spiking nodes of the graph")
    given = {n: _over_time(c, tuple(int(s) for s in graph.nodes[n].output_type["output"]), T, f"the current of {n}")
             for n, c in currents.items()}
    if record is None:
        record = [n for n, node in graph.nodes.items() if isinstance(node, (nir.LIF, nir.Threshold, nir.Output))]
    order = topological_order(graph)
    sources = defaultdict(list)
    for src, dst in graph.edges:
        sources[dst].append(src)
    lif = {n: _LIFState(node, dt) for n, node in graph.nodes.items() if isinstance(node, nir.LIF)}
    traces = {n: [] for n in record}
    for t in range(T):
        out: dict[str, np.ndarray] = {}
        for name in order:
            node = graph.nodes[name]
            if name == input_name:
                out[name] = x[t]
                continue
            if name in given:
                total = given[name][t]
            else:
                total = out[sources[name][0]]
                for src in sources[name][1:]:
                    total = total + out[src]
            if name in lif:
                out[name] = lif[name].step(total.astype(F32))
            elif isinstance(node, nir.Threshold):
                out[name] = (total.astype(F32) > node.threshold.astype(F32)).astype(F32)
            elif isinstance(node, nir.Output):
                out[name] = total
            else:
                out[name] = _linear(node, total)
        for name in record:
            traces[name].append(out[name])
    return {name: np.stack(steps) for name, steps in traces.items()}
