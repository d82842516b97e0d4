r"""A numpy reference simulator for the NIR graphs this package writes, float32 like Norse.

Time is discrete at the graph's ``dt``: at each step every node is evaluated once, in
topological order, from the sum of its incoming edges *at the same step* — Norse updates the
whole network within a step, and so does this simulator. State lives only in the neuron nodes,
each updated by the very float32 operations of the Norse step it stands for (torch casts the
Python ``dt`` to float32 before multiplying), with :math:`a = \mathrm{fl32}(\mathrm{fl32}(dt)
\cdot \mathrm{fl32}(1/\tau))` and :math:`I` the float32 sum of the node's in-edges:

* ``LIF`` — ``lif_box_feed_forward_step``: :math:`v \leftarrow v + a\,((r I + v_{leak}) - v)`,
  :math:`z = \Theta(v - v_{th})`, :math:`v \leftarrow v_{reset}` where z = 1; :math:`v_0 = v_{leak}`.
* ``CubaLIF`` — ``lif_feed_forward_step`` driven by :math:`\kappa\, w_{in} I`, κ = fl32(dt/τ_syn):
  :math:`i' = i + \kappa w_{in} I`, :math:`v \leftarrow v + a_{mem}((v_{leak} - v) + r i')`,
  :math:`i \leftarrow i' + (-a_{syn}) i'`, then spike and reset as LIF; :math:`i_0 = 0`. The
  current :math:`j_t = i'_t` obeys :math:`j \leftarrow j + \kappa(w_{in} I - j)`: forward Euler of
  NIR's :math:`\tau_{syn}\dot I = -I + w_{in} x`, so the node means what NIR says it means.
* ``LI`` — ``li_box_feed_forward_step``: :math:`v \leftarrow v + a\,((v_{leak} - v) + r I)`,
  output v; :math:`v_0 = 0`.
* ``Threshold`` — :math:`\Theta(I - \theta)`, memoryless.

Linear nodes (Affine, Linear, Conv1d) compute in float64 and a neuron node rounds the sum of
its in-edges to float32 once: for spike inputs and the exported weights that sum is exact
(:mod:`.exact_sums`), so the current is the one Norse's :class:`~.norse_ref.ExactLinear` and
Lava compute. Sums over the analog input are not exact in float64: pass the host's current of
the input-driven nodes as ``currents`` to match Norse bit for bit.

Nested graphs are inlined (:func:`flatten`): node ``n`` of subgraph ``m`` becomes ``m.n``, the
subgraph's Input and Output nodes pass the sum of their in-edges on. :class:`Stepper` keeps the
state between calls, so a stream of inputs can be fed window after window
(:func:`simulate_nir` runs one window from rest). A graph with other node kinds (or a cycle) is
refused with an ``ExportError``.
"""
from __future__ import annotations

from collections import defaultdict, deque

import nir
import numpy as np

from neuro_erc.errors import ExportError

F32, F64 = np.float32, np.float64
NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.LI, nir.Threshold)
SPIKING_NEURONS = (nir.LIF, nir.CubaLIF, nir.Threshold)


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


def flatten(graph: nir.NIRGraph) -> nir.NIRGraph:
    """``graph`` with every nested graph inlined (names ``<subgraph>.<node>``); metadata kept."""
    if not any(isinstance(node, nir.NIRGraph) for node in graph.nodes.values()):
        return graph
    nodes, entry, exit_, inner_edges = {}, {}, {}, []  # entry/exit_: top-level name -> the flat node edges meet
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name], entry[name], exit_[name] = node, name, name
            continue
        sub = flatten(node)
        (sub_in,), (sub_out,) = single_input(sub), sub.outputs
        nodes.update({f"{name}.{n}": inner for n, inner in sub.nodes.items()})
        entry[name], exit_[name] = f"{name}.{sub_in}", f"{name}.{sub_out}"
        inner_edges += [(f"{name}.{s}", f"{name}.{d}") for s, d in sub.edges]
    edges = [(exit_[s], entry[d]) for s, d in graph.edges] + inner_edges
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata), type_check=False)


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


def _decay(dt: float, tau: np.ndarray) -> np.ndarray:
    """fl32(fl32(dt) · fl32(1/τ)): Norse's ``dt * tau_inv`` with ``tau_inv`` stored in float32."""
    return (F32(dt) * (1.0 / np.asarray(tau, dtype=F64)).astype(F32)).astype(F32)


class LIFStep:
    """A LIF node's membrane, advanced by :meth:`step` (module docstring)."""

    def __init__(self, node: nir.LIF, dt: float):
        self.a = _decay(dt, node.tau)
        self.r, self.leak = node.r.astype(F32), node.v_leak.astype(F32)
        self.th, self.reset = node.v_threshold.astype(F32), node.v_reset.astype(F32)
        self.v = self.leak.copy()

    def step(self, current: np.ndarray) -> np.ndarray:
        v = self.v + self.a * ((self.r * current + self.leak) - self.v)
        z = (v - self.th > 0).astype(F32)
        self.v = np.where(z > 0, self.reset, v).astype(F32)
        return z


class CubaLIFStep:
    """A CubaLIF node's current and membrane, advanced by :meth:`step`; its float32 constants are what Lava's CubaLIF process uses too."""

    def __init__(self, node: nir.CubaLIF, dt: float):
        self.a_mem, self.a_syn = _decay(dt, node.tau_mem), _decay(dt, node.tau_syn)
        self.gain = ((dt / np.asarray(node.tau_syn, dtype=F64)).astype(F32) * np.asarray(node.w_in, dtype=F32)).astype(F32)
        self.r, self.leak = node.r.astype(F32), node.v_leak.astype(F32)
        self.th = node.v_threshold.astype(F32)
        self.reset = (node.v_reset if node.v_reset is not None else np.zeros_like(node.v_threshold)).astype(F32)
        self.v, self.i = self.leak.copy(), np.zeros_like(self.leak)

    def step(self, current: np.ndarray) -> np.ndarray:
        i = self.i + self.gain * current
        v = self.v + self.a_mem * ((self.leak - self.v) + self.r * i)
        self.i = i + (-self.a_syn) * i
        z = (v - self.th > 0).astype(F32)
        self.v = np.where(z > 0, self.reset, v).astype(F32)
        return z


class LIStep:
    """An LI node's membrane (its output), advanced by :meth:`step`."""

    def __init__(self, node: nir.LI, dt: float):
        self.a = _decay(dt, node.tau)
        self.r, self.leak = node.r.astype(F32), node.v_leak.astype(F32)
        self.v = np.zeros_like(self.leak)

    def step(self, current: np.ndarray) -> np.ndarray:
        self.v = (self.v + self.a * ((self.leak - self.v) + self.r * current)).astype(F32)
        return self.v


class ThresholdStep:
    """A memoryless Threshold node."""

    def __init__(self, node: nir.Threshold, dt: float):
        self.th = node.threshold.astype(F32)

    def step(self, current: np.ndarray) -> np.ndarray:
        return (current > self.th).astype(F32)


_NEURONS = {nir.LIF: LIFStep, nir.CubaLIF: CubaLIFStep, nir.LI: LIStep, nir.Threshold: ThresholdStep}


def _linear(node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    """A linear node's output in float64 (not rounded: the neuron node it feeds rounds its sum once)."""
    if isinstance(node, nir.Conv1d):
        return conv1d(node, x)
    if isinstance(node, nir.Affine):
        return node.weight.astype(F64) @ x + node.bias.astype(F64)
    if isinstance(node, nir.Linear):
        return node.weight.astype(F64) @ x
    raise ExportError(f"the reference simulator has no rule for {type(node).__name__} nodes")


def _shape(node: nir.NIRNode, key: str) -> tuple[int, ...]:
    types = node.input_type if key == "input" else node.output_type
    return tuple(int(s) for s in types[key])


class Stepper:
    """``graph`` (nested graphs inlined) advanced one step per :meth:`step`, its state kept between calls.

    The external inputs are the Input nodes without in-edges. :meth:`reset` returns every
    neuron to rest (a new dialogue).
    """

    def __init__(self, graph: nir.NIRGraph, dt: float | None = None):
        self.graph = flatten(graph)
        self.dt = float(metadata_value(self.graph, "dt", dt))
        self.order = topological_order(self.graph)
        self.sources = defaultdict(list)
        for src, dst in self.graph.edges:
            self.sources[dst].append(src)
        self.inputs = [n for n, node in self.graph.nodes.items() if isinstance(node, nir.Input) and not self.sources[n]]
        self.reset()

    def reset(self) -> None:
        self.neurons = {n: _NEURONS[type(node)](node, self.dt) for n, node in self.graph.nodes.items()
                        if type(node) in _NEURONS}

    def input_shape(self, name: str) -> tuple[int, ...]:
        return _shape(self.graph.nodes[name], "input")

    def step(self, inputs: dict[str, np.ndarray], given: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """One step: ``inputs`` (Input node → value), ``given`` (neuron node → its float32
        current, in place of its in-edges' sum) → every node's output."""
        given = given or {}
        out: dict[str, np.ndarray] = {}
        for name in self.order:
            node = self.graph.nodes[name]
            if name in self.inputs:
                out[name] = inputs[name]
                continue
            if name in given:
                total = given[name]
            else:
                total = out[self.sources[name][0]]
                for src in self.sources[name][1:]:
                    total = total + out[src]
            if name in self.neurons:
                out[name] = self.neurons[name].step(np.asarray(total).astype(F32))
            elif isinstance(node, (nir.Input, nir.Output)):
                out[name] = total
            else:
                out[name] = _linear(node, total)
        return out


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
    """Run a one-input ``graph`` for ``T`` steps from rest; return ``{node: outputs [T, *shape]}``.

    ``x`` has the Input node's shape (held constant over T, as the core's analog input is) or
    ``[T, *shape]``. ``T`` and ``dt`` default to the graph's metadata. ``record`` names the
    nodes to keep (default: every neuron and Output node). ``currents`` gives neuron nodes
    their float32 input current (the node's shape, or ``[T, *shape]``) in place of the sum of
    their in-edges: the host's current of the input-driven layers
    (:func:`~.norse_ref.dialogue_currents`).
    """
    T = int(metadata_value(graph, "T", T))
    stepper = Stepper(graph, dt)
    if len(stepper.inputs) != 1:
        raise ExportError(f"simulate_nir drives one Input node; this graph has {stepper.inputs} (use Stepper)")
    (input_name,) = stepper.inputs
    x = _over_time(x, stepper.input_shape(input_name), T, "input")
    nodes = stepper.graph.nodes
    currents = currents or {}
    if set(currents) - set(stepper.neurons):
        raise ValueError(f"currents given for {sorted(set(currents) - set(stepper.neurons))}: not neuron nodes of the graph")
    given = {n: _over_time(c, _shape(nodes[n], "output"), T, f"the current of {n}") for n, c in currents.items()}
    if record is None:
        record = [n for n, node in nodes.items() if isinstance(node, (*NEURON_TYPES, nir.Output))]
    traces = {n: [] for n in record}
    for t in range(T):
        out = stepper.step({input_name: x[t]}, {n: c[t] for n, c in given.items()})
        for name in record:
            traces[name].append(out[name])
    return {name: np.stack(steps) for name, steps in traces.items()}
