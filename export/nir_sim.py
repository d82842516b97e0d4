r"""A numpy reference simulator for the NIR graphs this package writes, float32 like Norse.

Time is discrete at the graph's ``dt``: at each step every node is evaluated once, in
topological order, from the sum of its incoming edges *at the same step* — Norse updates the
whole network within a step, and so does this simulator. State lives only in LIF nodes:

.. math::
    a &= \mathrm{fl32}(\mathrm{fl32}(dt)\cdot\mathrm{fl32}(1/\tau)) \\
    v &\leftarrow v + a\,((r I + v_{leak}) - v) \\
    z &= \Theta(v - v_{th}), \qquad v \leftarrow v_{reset}\ \text{where}\ z = 1,
    \qquad v_0 = v_{leak}

the very float32 operations of Norse's ``lif_box_feed_forward_step`` (torch casts the Python
``dt`` to float32 before multiplying), so spikes agree bit for bit whenever the synaptic
currents do. Currents are float32 matrix products; torch and numpy may sum them in different
orders, which can move a current by an ulp (exact when weights and inputs are dyadic).

Node kinds: Input, Output, Affine, Linear, Conv1d (groups=1), LIF, Threshold; a graph with
anything else (or a cycle) is refused with an ``ExportError``.
"""
from __future__ import annotations

from collections import defaultdict, deque

import nir
import numpy as np

from neuro_erc.errors import ExportError

F32 = np.float32


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
    """``y[o, j] = b[o] + Σ_k W[o, :, k] · x_pad[:, j·stride + k·dilation]`` in float32."""
    if node.groups != 1:
        raise ExportError("Conv1d with groups != 1 (nir 1.0.8 mis-sizes it; write a diagonal weight instead)")
    weight, stride, dilation = node.weight.astype(F32), int(node.stride), int(node.dilation)
    kernel = weight.shape[2]
    span = dilation * (kernel - 1)
    if isinstance(node.padding, str):
        pad = 0 if node.padding == "valid" else span // 2
    else:
        pad = int(node.padding)
    if kernel == 1 and pad == 0 and stride == 1:
        return weight[:, :, 0] @ x + node.bias.astype(F32)[:, None]
    xp = np.pad(x, ((0, 0), (pad, pad)))
    n_out = (xp.shape[1] - span - 1) // stride + 1
    out = np.zeros((weight.shape[0], n_out), dtype=F32)
    for k in range(kernel):
        out += weight[:, :, k] @ xp[:, k * dilation: k * dilation + stride * (n_out - 1) + 1: stride]
    return out + node.bias.astype(F32)[:, None]


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


def _apply(node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    if isinstance(node, nir.Conv1d):
        return conv1d(node, x)
    if isinstance(node, nir.Affine):
        return node.weight.astype(F32) @ x + node.bias.astype(F32)
    if isinstance(node, nir.Linear):
        return node.weight.astype(F32) @ x
    if isinstance(node, nir.Threshold):
        return (x > node.threshold.astype(F32)).astype(F32)
    if isinstance(node, nir.Output):
        return x
    raise ExportError(f"the reference simulator has no rule for {type(node).__name__} nodes")


def simulate_nir(graph: nir.NIRGraph, x: np.ndarray, T: int | None = None, dt: float | None = None,
                 record: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run ``graph`` for ``T`` steps from rest; return ``{node: outputs [T, *shape]}``.

    ``x`` has the Input node's shape (held constant over T, as the core's analog input is) or
    ``[T, *shape]``. ``T`` and ``dt`` default to the graph's metadata. ``record`` names the
    nodes to keep (default: every LIF, Threshold and Output node).
    """
    T, dt = int(metadata_value(graph, "T", T)), float(metadata_value(graph, "dt", dt))
    (input_name, input_node), = single_input(graph).items()
    in_shape = tuple(int(s) for s in input_node.input_type["input"])
    x = np.asarray(x, dtype=F32)
    if x.shape == in_shape:
        x = np.broadcast_to(x, (T, *in_shape))
    elif x.shape != (T, *in_shape):
        raise ValueError(f"input must have shape {in_shape} or {(T, *in_shape)}, got {x.shape}")
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
            if name == input_name:
                out[name] = x[t]
                continue
            total = out[sources[name][0]]
            for src in sources[name][1:]:
                total = total + out[src]
            node = graph.nodes[name]
            out[name] = lif[name].step(total) if name in lif else _apply(node, total)
        for name in record:
            traces[name].append(out[name])
    return {name: np.stack(steps) for name, steps in traces.items()}
