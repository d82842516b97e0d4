r"""NIR graph → the plan of a Lava network (pure numpy/scipy; ``lava_run`` instantiates it).

**Structure.** Every spiking NIR node (LIF, Threshold) becomes a *population* inside one of a
few neuron processes, grouped by decay (leaky LIF vs memoryless units), so the OS-process count
stays small whatever the core's size; every group pair gets one ``Sparse`` process holding the
per-utterance expansion of the graph's linear nodes (CSR, in NIR units: the weights as
exported). The analog input is constant over T, so the input layer's current ``W·x + b`` is
the bias of the input-driven neurons, which get a group of their own: only that small
process is written per dialogue.

**Time.** Every Lava synapse delays by one step (RESEARCH §6), while Norse — and NIR's
semantics here — update the whole graph within one step. A node whose spiking sources are at
most h synapse hops from the input sits at hop h + 1 and computes Norse step t at Lava step
t + hop. Where paths of different length meet (residuals; Q meeting the context) the shorter
one runs through *relays* — memoryless units with threshold 0.5 and weight 1, an identity with
one step of delay. Each unit is live only in its window (steps hop+1 … hop+T of every period
of ``T + latency`` steps; :mod:`.lava_procs`), so biases stay in the neurons and dialogues
stream back to back.

**Neurons.** Two mappings of a population's NIR parameters:

* exact float: :mod:`.lava_procs`' ``BoxLIF``, Norse's step in float32 (the plan as is);
* Lava's standard ``lava.proc.lif.LIF`` (:func:`lava_lif_network`, run as ``WindowedLIF``):
  ``u ← u(1 − du) + a_in``, ``v ← v(1 − dv) + u + bias``, spike where ``v > vth``, ``v ← 0``.
  With ``du = 1`` (no current), a NIR LIF (a = dt/τ, θ = v_th − v_reset) maps to ``dv = a``,
  ``v' = (v − v_reset)/θ``, synapses scaled by ``a·r/θ``, constant bias ``a(v_leak − v_reset)/θ``
  and ``vth = 1``: the same recursion, shifted so that reset-to-0 is reset-to-v_reset. A
  Threshold θ is memoryless (``dv = 1``) with synapses scaled by ``1/θ``. Same in exact
  arithmetic; in float64 it differs from Norse's float32 where Norse's voltage rounds onto
  the threshold.
* fixed point (:func:`quantize`, Loihi's bit-accurate models) from the standard mapping: per
  process a voltage scale S = 2^k (``vthMant = S·vth/64``), ``dv = round(4096·a)``, ``du = 4095``
  (+1 offset: no current memory), weights as even 8-bit mantissas with one exponent per
  ``Sparse`` process, biases as 13-bit mantissas with per-neuron exponents. RESEARCH §6's
  ``vThMant = 64·v_th`` is the case S = 4096.

**Lengths and files.** A plan keeps its graph's dialogue length L and core fingerprint;
:func:`restrict_plan` cuts the plan for a shorter dialogue out of it (exactly the plan built
for that length), so one exported plan runs every dialogue up to L. :func:`save_plan` /
:func:`load_plan` write and read one plan directory, :func:`save_plans` / :func:`load_plans`
the ``<modality>/`` plans that ``neuro-erc export lava`` writes; writes are atomic and never
replace a directory that is not a plan, and a damaged plan is an ``ExportError`` naming the file.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import nir
import numpy as np
from scipy import sparse

from neuro_erc.errors import ExportError
from neuro_erc.io import atomic_dir

from .nir_sim import CubaLIFStep, LIStep, metadata_value, single_input, topological_order

RELAY_THRESHOLD = 0.5  # a relay (weight 1) passes every spike on, one step later
LINEAR_TYPES = (nir.Conv1d, nir.Affine, nir.Linear)
SPIKING_TYPES = (nir.LIF, nir.Threshold, nir.CubaLIF)
NEURON_TYPES = (*SPIKING_TYPES, nir.LI)  # an LI (no spikes) may only feed the Output
SYNAPSE_FIELDS = ("syn_decay", "syn_gain")  # per-neuron arrays of "cuba" and "li" groups only
NEURON_FIELDS = ("r", "v_leak", "v_th", "v_reset")
ARRAY_FIELDS = (*NEURON_FIELDS, "bias", "hop")


@dataclass
class Population:
    """Neurons ``offset : offset + size`` of ``group``: a NIR node or a relay stage."""

    name: str
    group: str
    offset: int
    size: int
    shape: tuple[int, ...]
    hop: int
    kind: str  # "node" | "relay"


@dataclass
class Group:
    """One neuron process. ``decay`` is Norse's float32 dt/τ (1 = memoryless: ``z = Θ(I − v_th)``),
    ``tau`` the membrane time constant in seconds (0 when memoryless).

    Per-neuron arrays in NIR units: ``r``, ``v_leak``, ``v_th``, ``v_reset`` (memoryless units:
    1, 0, θ, 0), ``bias`` and ``hop`` (a unit at hop h computes one dialogue in Lava steps
    h+1 … h+T of each period of ``T + latency`` steps).

    ``kind``: ``"box"`` (LIF, Threshold, relays: :class:`~.lava_procs.process.BoxLIF`), ``"cuba"``
    (NIR CubaLIF) or ``"li"`` (NIR LI: a CubaLIF without synaptic memory, ``syn_decay = syn_gain = 1``,
    that never spikes, ``v_th = inf``, and emits its voltage) — both run as
    :class:`~.lava_procs.process.CubaLIF` with ``decay`` = fl32(dt/τ_mem) and the per-neuron
    ``syn_decay`` = fl32(dt/τ_syn), ``syn_gain`` = fl32(fl32(dt/τ_syn)·w_in) of :mod:`.nir_sim`'s
    step (``None`` for box groups).
    """

    name: str
    decay: float
    tau: float
    size: int
    r: np.ndarray
    v_leak: np.ndarray
    v_th: np.ndarray
    v_reset: np.ndarray
    bias: np.ndarray
    hop: np.ndarray
    kind: str = "box"
    syn_decay: np.ndarray | None = None
    syn_gain: np.ndarray | None = None

    @property
    def memoryless(self) -> bool:
        return self.decay == 1.0


@dataclass
class Connection:
    """One ``Sparse`` process: ``a_out = weights @ s_in`` from ``src`` to ``dst`` group."""

    src: str
    dst: str
    weights: sparse.csr_matrix


@dataclass
class InputDrive:
    """Per-dialogue bias of a hop-0 population: ``bias[pop] += matrix @ x.ravel()``."""

    population: str
    matrix: sparse.csr_matrix


@dataclass
class LavaPlan:
    """Everything needed to instantiate and read the Lava network of one NIR graph."""

    groups: dict[str, Group]
    populations: dict[str, Population]
    connections: list[Connection]
    drives: list[InputDrive]
    input_shape: tuple[int, ...]
    outputs: list[str]  # spiking nodes whose sum is the graph's Output
    T: int
    dt: float
    latency: int  # hop of the deepest node
    dialogue_length: int | None = None  # L of the source graph; None for graphs not in the utterance layout
    fingerprint: str = ""  # the source core's ``core_fingerprint``: what the plan pairs with

    def __post_init__(self) -> None:
        """Check that the pieces fit together, so a damaged plan file fails here and not inside Lava."""
        for g in self.groups.values():
            bad = [key for key in (*ARRAY_FIELDS, *(SYNAPSE_FIELDS if g.kind != "box" else ()))
                   if np.shape(getattr(g, key)) != (g.size,)]
            if bad:
                raise ValueError(f"group {g.name}: arrays {bad} do not have its {g.size} neurons")
        for p in self.populations.values():
            if p.group not in self.groups or not 0 <= p.offset <= self.groups[p.group].size - p.size \
                    or int(np.prod(p.shape)) != p.size:
                raise ValueError(f"population {p.name} ({p.size} neurons at {p.offset}) does not fit group {p.group}")
        for c in self.connections:
            if c.src not in self.groups or c.dst not in self.groups or \
                    c.weights.shape != (self.groups[c.dst].size, self.groups[c.src].size):
                raise ValueError(f"connection {c.src} -> {c.dst} of shape {c.weights.shape} does not match its groups")
        for d in self.drives:
            if d.population not in self.populations or \
                    d.matrix.shape != (self.populations[d.population].size, int(np.prod(self.input_shape))):
                raise ValueError(f"input drive of {d.population} of shape {d.matrix.shape} does not match the input")
        unknown = sorted(set(self.outputs) - set(self.populations))
        if unknown or self.T < 1 or self.latency < 0:
            raise ValueError(f"outputs {unknown} are not populations, or T={self.T} < 1, or latency={self.latency} < 0")

    @property
    def steps(self) -> int:
        return self.T + self.latency

    @property
    def n_neurons(self) -> int:
        return sum(g.size for g in self.groups.values())

    @property
    def n_synapses(self) -> int:
        return sum(c.weights.nnz for c in self.connections)

    @property
    def input_groups(self) -> list[str]:
        """Groups whose bias carries the analog input (rewritten for every dialogue)."""
        return sorted({self.populations[d.population].group for d in self.drives})

    def node_populations(self) -> list[Population]:
        return [p for p in self.populations.values() if p.kind == "node"]

    def dialogue_bias(self, x: np.ndarray | None = None,
                      currents: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Each group's neuron bias (NIR units) for one dialogue.

        The input-driven populations get ``currents[population]`` (the host's float32 current,
        bias included: what Norse computed) when given, else their current from the analog input
        ``x`` (the Input's shape): ``bias + matrix @ x`` in float64 — the graph's semantics, but not
        an exact sum (:mod:`.exact_sums`), so it may differ from Norse's in the last bit.
        """
        bias = {name: g.bias.copy() for name, g in self.groups.items()}
        if currents is not None:
            missing = sorted({d.population for d in self.drives} - set(currents))
            if missing:
                raise ValueError(f"no input current for the input-driven populations {missing}")
        elif x is None or np.shape(x) != self.input_shape:
            raise ValueError(f"give currents or an input of shape {self.input_shape}, got {None if x is None else np.shape(x)}")
        for drive in self.drives:
            pop = self.populations[drive.population]
            rows = slice(pop.offset, pop.offset + pop.size)
            if currents is not None:
                bias[pop.group][rows] = np.asarray(currents[pop.name], dtype=np.float32).reshape(pop.size)
            else:
                bias[pop.group][rows] += drive.matrix @ np.asarray(x, dtype=np.float64).ravel()
        return bias


# ---------------------------------------------------------------- NIR nodes as sparse matrices

def linear_matrix(node: nir.NIRNode, in_shape: tuple[int, ...]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The node's map on C-order flattened vectors: (matrix, bias vector)."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight, dtype=np.float64)
        b = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) else np.zeros(w.shape[0])
        return sparse.csr_matrix(w), b
    if not isinstance(node, nir.Conv1d) or node.groups != 1:
        raise ExportError(f"no Lava mapping for {type(node).__name__} (groups={getattr(node, 'groups', '-')})")
    w = np.asarray(node.weight, dtype=np.float64)
    c_in, l_in = in_shape
    stride, dilation, kernel = int(node.stride), int(node.dilation), w.shape[2]
    pad = int(node.padding) if not isinstance(node.padding, str) else (0 if node.padding == "valid" else dilation * (kernel - 1) // 2)
    l_out = (l_in + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    matrix = sparse.csr_matrix((w.shape[0] * l_out, c_in * l_in))
    for k in range(kernel):
        j = np.arange(l_out)
        p = j * stride + k * dilation - pad
        ok = (p >= 0) & (p < l_in)
        select = sparse.csr_matrix((np.ones(ok.sum()), (j[ok], p[ok])), shape=(l_out, l_in))
        matrix = matrix + sparse.kron(sparse.csr_matrix(w[:, :, k]), select, format="csr")
    return matrix.tocsr(), np.repeat(np.asarray(node.bias, dtype=np.float64), l_out)


@dataclass
class _Drive:
    """What drives one spiking node: spiking sources (with matrices), input matrices, bias."""

    sources: list
    inputs: list
    bias: np.ndarray


def _node_drives(graph: nir.NIRGraph) -> tuple[dict[str, _Drive], list[str], dict[str, tuple[int, ...]]]:
    single_input(graph)
    preds = defaultdict(list)
    for src, dst in graph.edges:
        preds[dst].append(src)
    shapes = {name: tuple(int(s) for s in node.output_type["output"]) for name, node in graph.nodes.items()
              if not isinstance(node, nir.Output)}
    spiking = [n for n in topological_order(graph) if isinstance(graph.nodes[n], NEURON_TYPES)]
    drives: dict[str, _Drive] = {}
    for name in spiking:
        size = int(np.prod(shapes[name]))
        drive = _Drive([], [], np.zeros(size))
        for src in preds[name]:
            node = graph.nodes[src]
            if isinstance(node, nir.Input):
                drive.inputs.append(sparse.identity(size, format="csr"))
            elif isinstance(node, SPIKING_TYPES):
                drive.sources.append((src, sparse.identity(size, format="csr")))
            elif isinstance(node, LINEAR_TYPES):
                unrolled = {}  # one expansion per input shape, shared by every term of a residual sum
                for upstream in preds[src]:
                    if shapes[upstream] not in unrolled:
                        unrolled[shapes[upstream]] = linear_matrix(node, shapes[upstream])
                    matrix, bias = unrolled[shapes[upstream]]
                    if isinstance(graph.nodes[upstream], nir.Input):
                        drive.inputs.append(matrix)
                    elif isinstance(graph.nodes[upstream], SPIKING_TYPES):
                        drive.sources.append((upstream, matrix))
                    else:
                        raise ExportError(f"{upstream} -> {src} -> {name}: chained linear nodes are not mapped")
                drive.bias += bias
            else:
                raise ExportError(f"edge {src} -> {name}: a {type(node).__name__} node may not feed a neuron")
        if drive.inputs and drive.sources:
            raise ExportError(f"{name} mixes the analog input with spikes; only input-only layers fold into a bias")
        drives[name] = drive
    (out_name,) = graph.outputs
    if any(not isinstance(graph.nodes[s], NEURON_TYPES) for s in preds[out_name]):
        raise ExportError("the Output node must be fed directly by spiking (or LI) nodes")
    return drives, preds[out_name], shapes


def _neuron_params(node: nir.NIRNode, dt: float, size: int, spike_input: bool) -> tuple[str, float, float, dict[str, np.ndarray]]:
    """(group kind, decay, tau, per-neuron r, v_leak, v_th, v_reset [, syn_decay, syn_gain]) of one neuron node.

    ``spike_input``: the node's current is a sum of spike edges (no weights, no bias), an integer.
    A LIF with τ = dt on such a current (the stream export's AND units, :func:`~.stream_graph.and_lif`)
    is memoryless: with decay 1 Norse's ``v + ((I + 0) − v)`` is exactly I for integers.
    CubaLIF and LI constants come from :mod:`.nir_sim`'s own step classes, the reference.
    """
    flat = lambda a: np.broadcast_to(np.asarray(a, dtype=np.float64), node.output_type["output"]).ravel().copy()  # noqa: E731
    if isinstance(node, nir.Threshold):
        return "box", 1.0, 0.0, {"r": np.ones(size), "v_leak": np.zeros(size), "v_th": flat(node.threshold),
                                 "v_reset": np.zeros(size)}
    tau = flat(node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau)
    if np.any(tau != tau[0]):
        raise ExportError(f"a {type(node).__name__} node with non-uniform tau cannot share one decay")
    decay = np.float32(dt) * np.float32(1.0 / tau[0])  # Norse's float32 a = dt·τ⁻¹
    if isinstance(node, nir.CubaLIF):
        ref = CubaLIFStep(node, dt)
        return "cuba", float(ref.a_mem[0]), float(tau[0]), {
            "r": flat(ref.r), "v_leak": flat(ref.leak), "v_th": flat(ref.th), "v_reset": flat(ref.reset),
            "syn_decay": flat(ref.a_syn), "syn_gain": flat(ref.gain)}
    if isinstance(node, nir.LI):
        ref = LIStep(node, dt)
        return "li", float(ref.a[0]), float(tau[0]), {
            "r": flat(ref.r), "v_leak": flat(ref.leak), "v_th": np.full(size, np.inf), "v_reset": np.zeros(size),
            "syn_decay": np.ones(size), "syn_gain": np.ones(size)}
    params = {"r": flat(node.r), "v_leak": flat(node.v_leak), "v_th": flat(node.v_threshold), "v_reset": flat(node.v_reset)}
    if decay == 1.0 and spike_input and not (np.any(params["r"] != 1) or np.any(params["v_leak"]) or np.any(params["v_reset"])):
        return "box", 1.0, 0.0, {**params, "r": np.ones(size)}
    if decay >= 1.0:
        raise ExportError(f"a LIF with tau <= dt (decay {decay}) keeps no memory; it is not mapped to Lava "
                          "(unless it is an AND of spikes: r = 1, v_leak = v_reset = 0, fed by spike edges only)")
    return "box", float(decay), float(tau[0]), params


def _relay_units(size: int) -> dict[str, np.ndarray]:
    return {"r": np.ones(size), "v_leak": np.zeros(size), "v_th": np.full(size, RELAY_THRESHOLD),
            "v_reset": np.zeros(size), "bias": np.zeros(size)}


def _assemble(items: list[tuple[Population, Population, sparse.csr_matrix]], shape: tuple[int, int]) -> sparse.csr_matrix:
    """One CSR matrix from (source, target, block) pieces placed at the populations' offsets."""
    nnz = sum(m.nnz for _, _, m in items)
    rows, cols, data = np.empty(nnz, np.int32), np.empty(nnz, np.int32), np.empty(nnz)
    at = 0
    for src, dst, matrix in items:
        coo = matrix.tocoo()
        rows[at: at + coo.nnz], cols[at: at + coo.nnz], data[at: at + coo.nnz] = coo.row + dst.offset, coo.col + src.offset, coo.data
        at += coo.nnz
    weights = sparse.csr_matrix((data, (rows, cols)), shape=shape)
    weights.eliminate_zeros()
    return weights


def build_plan(graph: nir.NIRGraph, T: int | None = None, dt: float | None = None) -> LavaPlan:
    """Plan the Lava network of ``graph`` (T and dt default to its metadata).

    The plan keeps the graph's ``dialogue_length`` and ``fingerprint`` metadata (see
    :func:`restrict_plan` and ``neuro_erc.export.artefacts``). A graph with nodes or edges
    that have no Lava mapping is refused with an ``ExportError``.
    """
    T, dt = int(metadata_value(graph, "T", T)), float(metadata_value(graph, "dt", dt))
    drives, outputs, shapes = _node_drives(graph)
    (input_node,) = graph.inputs.values()

    hop = {}
    for name, drive in drives.items():  # drives are in topological order
        hop[name] = 1 + max((hop[s] for s, _ in drive.sources), default=-1)
    delay_needed = defaultdict(int)  # spiking node -> longest relay chain its readers need
    for name, drive in drives.items():
        for src, _ in drive.sources:
            delay_needed[src] = max(delay_needed[src], hop[name] - hop[src] - 1)

    groups: dict[str, Group] = {}
    parts: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    populations: dict[str, Population] = {}

    group_of = {}  # (decay, tau, input-driven) -> group name

    def add(name: str, decay: float, tau: float, shape: tuple[int, ...], hop_: int, kind: str, arrays: dict[str, np.ndarray],
            driven: bool = False, neuron: str = "box"):
        key = (neuron, decay, tau, driven)
        if key not in group_of:
            stem = "input" if driven else {"cuba": "context", "li": "readout"}.get(neuron, "gates" if decay == 1.0 else "leaky")
            group_of[key] = f"{stem}{sum(n.startswith(stem) for n in groups)}"
            groups[group_of[key]] = Group(group_of[key], decay, tau, 0, *(np.zeros(0) for _ in ARRAY_FIELDS), kind=neuron)
        g = groups[group_of[key]]
        size = int(np.prod(shape))
        populations[name] = Population(name, g.name, g.size, size, tuple(shape), hop_, kind)
        g.size += size
        for field_, value in {**arrays, "hop": np.full(size, hop_)}.items():
            parts[g.name][field_].append(value)

    for name, drive in drives.items():
        size = drive.bias.size
        spike_input = not drive.inputs and not drive.bias.any() and all(
            m.nnz == m.shape[0] == m.shape[1] and (m.diagonal() == 1).all() for _, m in drive.sources)
        neuron, decay, tau, params = _neuron_params(graph.nodes[name], dt, size, spike_input)
        add(name, decay, tau, shapes[name], hop[name], "node", {**params, "bias": drive.bias}, driven=bool(drive.inputs),
            neuron=neuron)
    for src, delay in delay_needed.items():
        for k in range(1, delay + 1):
            add(f"{src}@relay{k}", 1.0, 0.0, shapes[src], hop[src] + k, "relay", _relay_units(populations[src].size))
    for name, g in groups.items():
        for key in (*ARRAY_FIELDS, *(SYNAPSE_FIELDS if g.kind != "box" else ())):
            setattr(g, key, np.concatenate(parts[name][key]))

    blocks = defaultdict(list)
    for name, drive in drives.items():
        dst = populations[name]
        for src, matrix in drive.sources:
            delay = hop[name] - hop[src] - 1
            source = populations[src if delay == 0 else f"{src}@relay{delay}"]
            blocks[(source.group, dst.group)].append((source, dst, matrix))
    for src, delay in delay_needed.items():
        for k in range(1, delay + 1):
            prev, relay = populations[src if k == 1 else f"{src}@relay{k - 1}"], populations[f"{src}@relay{k}"]
            blocks[(prev.group, relay.group)].append((prev, relay, sparse.identity(prev.size, format="csr")))

    connections = [Connection(src_g, dst_g, _assemble(items, (groups[dst_g].size, groups[src_g].size)))
                   for (src_g, dst_g), items in blocks.items()]
    input_drives = [InputDrive(name, sum(d.inputs).tocsr()) for name, d in drives.items() if d.inputs]
    in_shape = tuple(int(s) for s in input_node.input_type["input"])
    length = graph.metadata.get("dialogue_length")
    return LavaPlan(groups, populations, connections, input_drives, in_shape, list(outputs), T, dt, latency=max(hop.values()),
                    dialogue_length=None if length is None else int(length),
                    fingerprint=str(graph.metadata.get("fingerprint", "")))


def restrict_plan(plan: LavaPlan, length: int) -> LavaPlan:
    """The plan for dialogues of ``length`` ≤ L utterances, cut out of ``plan`` (built for L).

    A plan's structure does not depend on L (same populations, hops, relays), only the
    utterance axis — the last — of its populations does. Keeping the first ``length``
    utterances of every (C, L) population, whole (C, 1) context populations, and the synapses
    among the kept neurons gives exactly :func:`build_plan` at ``length``: a per-utterance
    expansion kron(W, I_L) restricted is kron(W, I_length), the sum over utterances keeps its
    first ``length`` terms, the broadcast its first ``length`` rows. So an exported plan runs
    every dialogue up to its L.
    """
    L = plan.dialogue_length
    if L is None or not 1 <= length <= L:
        raise ExportError(f"a plan for dialogues of L={L} utterances cannot run one of {length}"
                          + ("" if L is not None else " (it is not in the (channels, utterances) layout)"))
    if length == L:
        return plan

    def kept(shape: tuple[int, ...]) -> np.ndarray:
        """Flat (C-order) indices of the neurons of a population of ``shape`` that remain."""
        if len(shape) != 2 or shape[-1] not in (1, L):
            raise ExportError(f"a population of shape {shape} is not in the (channels, utterances) layout")
        index = np.arange(int(np.prod(shape)))
        return index if shape[-1] == 1 else index[index % L < length]

    rows = {name: [] for name in plan.groups}  # group -> kept neuron indices, in population order
    populations = {}
    for p in plan.populations.values():
        local = kept(p.shape)
        shape = p.shape if p.shape[-1] == 1 else (*p.shape[:-1], length)
        populations[p.name] = Population(p.name, p.group, sum(map(len, rows[p.group])), local.size, shape, p.hop, p.kind)
        rows[p.group].append(p.offset + local)
    rows = {name: np.concatenate(parts) for name, parts in rows.items()}
    groups = {name: Group(name, g.decay, g.tau, rows[name].size, *(getattr(g, key)[rows[name]] for key in ARRAY_FIELDS))
              for name, g in plan.groups.items()}
    connections = [Connection(c.src, c.dst, c.weights[rows[c.dst]][:, rows[c.src]]) for c in plan.connections]
    x_kept = kept(plan.input_shape)
    drives = [InputDrive(d.population, d.matrix[kept(plan.populations[d.population].shape)][:, x_kept])
              for d in plan.drives]
    return LavaPlan(groups, populations, connections, drives, (*plan.input_shape[:-1], length), plan.outputs, plan.T,
                    plan.dt, plan.latency, dialogue_length=length, fingerprint=plan.fingerprint)


# ---------------------------------------------------------------- Lava's standard LIF

@dataclass
class LIFGroup:
    """Parameters of one ``lava.proc.lif.LIF`` process (floating point): vth = 1, du = 1."""

    dv: float
    row_scale: np.ndarray  # multiplies every synapse (and bias) into a neuron
    const: np.ndarray  # a·(v_leak − v_reset)/θ, part of the neuron's bias
    v_init: np.ndarray  # (v_leak − v_reset)/θ: Norse's rest, a fixed point while the input is 0


@dataclass
class LIFNetwork:
    groups: dict[str, LIFGroup]
    weights: list[sparse.csr_matrix]  # plan.connections scaled into their target neurons' units

    def bias(self, plan_bias: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: g.row_scale * plan_bias[name] + g.const for name, g in self.groups.items()}


def lava_lif_network(plan: LavaPlan) -> LIFNetwork:
    """Map every group onto Lava's standard LIF (see the module docstring)."""
    groups = {}
    for name, g in plan.groups.items():
        if g.kind != "box":
            raise ExportError(f"group {name}: {g.kind!r} neurons (NIR CubaLIF / LI) have no mapping onto Lava's standard "
                              "LIF (nor fixed point) yet; run them with precision 'float' (the BoxLIF/CubaLIF models)")
        theta = g.v_th - g.v_reset
        if np.any(theta <= 0):
            raise ExportError(f"group {name}: Lava's LIF needs v_th > v_reset (reset is to 0, threshold > 0)")
        if g.memoryless:
            groups[name] = LIFGroup(1.0, 1.0 / theta, np.zeros(g.size), np.zeros(g.size))
        else:
            a = plan.dt / g.tau  # float64 dt/τ: rounds onto Norse's float32 ties more often than fl32(a) does
            rest = (g.v_leak - g.v_reset) / theta
            groups[name] = LIFGroup(a, a * g.r / theta, a * rest, rest)
    weights = [(sparse.diags(groups[c.dst].row_scale) @ c.weights).tocsr() for c in plan.connections]
    return LIFNetwork(groups, weights)


@dataclass
class FixedGroup:
    scale: float  # integer voltage units per float unit (vth = 1 ↦ 64·vth_mant)
    du: int
    dv: int
    vth: int
    v_init: np.ndarray


@dataclass
class FixedPlan:
    groups: dict[str, FixedGroup]
    weights: list[sparse.csr_matrix]  # per plan connection: even integers in [-256, 254]
    weight_exps: list[int]

    def bias(self, lif_bias: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Float biases (standard-LIF units) → (13-bit mantissa, 3-bit exponent) per neuron."""
        return {name: quantize_bias(b * self.groups[name].scale) for name, b in lif_bias.items()}


LEAKY_SCALE = 2.0**16  # vth_mant = 1024: 16 fractional bits of voltage, |v| < 128
GATE_SCALE = 2.0**11  # vth_mant = 32: sub-threshold voltages (< 4096) vanish in one step with dv = 4095
WEIGHT_EXP_RANGE = (-8, 7)


def quantize_bias(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    exp = np.clip(np.ceil(np.log2(np.maximum(np.abs(bias), 1.0) / 4095.0)), 0, 7).astype(np.int32)
    mant = np.clip(np.round(bias / 2.0**exp), -4096, 4095).astype(np.int32)
    return mant, exp


def quantize_weights(target: sparse.csr_matrix) -> tuple[sparse.csr_matrix, int]:
    """Even 8-bit mantissas and the smallest exponent that fits the largest weight."""
    peak = float(np.abs(target.data).max()) if target.nnz else 0.0
    exp = int(np.clip(np.ceil(np.log2(peak / 254.0)), *WEIGHT_EXP_RANGE)) if peak > 0 else 0
    q = target / 2.0**exp
    q.data = np.clip(2 * np.round(q.data / 2), -256, 254)
    q = q.astype(np.int32).tocsr()
    q.eliminate_zeros()
    return q, exp


def quantize(plan: LavaPlan, lif: LIFNetwork | None = None) -> FixedPlan:
    """Loihi fixed-point parameters of the standard-LIF mapping of ``plan``."""
    lif = lif or lava_lif_network(plan)
    groups = {}
    for name, g in lif.groups.items():
        scale = GATE_SCALE if g.dv == 1.0 else LEAKY_SCALE
        groups[name] = FixedGroup(scale, du=4095, dv=min(int(round(4096 * g.dv)), 4095), vth=int(round(scale / 64)),
                                  v_init=np.round(g.v_init * scale).astype(np.int32))
    parts = [quantize_weights((w * (groups[c.dst].scale / 64.0)).tocsr())  # the neuron shifts a_in left by 6
             for c, w in zip(plan.connections, lif.weights)]
    return FixedPlan(groups, [q for q, _ in parts], [e for _, e in parts])


# ---------------------------------------------------------------- saving (``neuro-erc export lava``)

PLAN_FILE, PLAN_FORMAT, PLAN_FORMAT_VERSION = "plan.json", "neuro-erc.lava-plan", 1
ARRAYS_FILE = "arrays.npz"


def _write_plan(plan: LavaPlan, directory: Path) -> None:
    """``plan.json`` (structure and metadata) + ``arrays.npz`` (per-neuron arrays) +
    ``connection<i>.npz`` per Sparse process and ``drive<i>.npz`` per input drive (CSR)."""
    if any(g.kind != "box" for g in plan.groups.values()):
        raise ExportError("a plan with CubaLIF/LI groups (a streaming graph's) is not written: it is rebuilt from its NIR graph")
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / ARRAYS_FILE,
             **{f"group.{g.name}.{key}": getattr(g, key) for g in plan.groups.values() for key in ARRAY_FIELDS})
    for i, c in enumerate(plan.connections):
        sparse.save_npz(directory / f"connection{i}.npz", c.weights)
    for i, d in enumerate(plan.drives):
        sparse.save_npz(directory / f"drive{i}.npz", d.matrix)
    manifest = {
        "format": PLAN_FORMAT, "format_version": PLAN_FORMAT_VERSION,
        "T": plan.T, "dt": plan.dt, "dialogue_length": plan.dialogue_length, "fingerprint": plan.fingerprint,
        "latency": plan.latency, "input_shape": list(plan.input_shape), "outputs": plan.outputs,
        "groups": [{"name": g.name, "decay": g.decay, "tau": g.tau, "size": g.size} for g in plan.groups.values()],
        "populations": [asdict(p) for p in plan.populations.values()],
        "connections": [{"src": c.src, "dst": c.dst} for c in plan.connections],
        "drives": [{"population": d.population} for d in plan.drives],
    }
    (directory / PLAN_FILE).write_text(json.dumps(manifest, indent=1))


def _is_plan(path: Path) -> bool:
    return (path / PLAN_FILE).is_file()


def _refuse_to_replace(directory: Path, ours: bool, what: str) -> None:
    """Writes replace the whole directory (``atomic_dir`` deletes the old one): only ever one we wrote."""
    if directory.exists() and not (directory.is_dir() and (ours or not any(directory.iterdir()))):
        raise ExportError(f"{directory}: exists and is not {what}; refusing to replace it (choose another --out)")


def save_plan(plan: LavaPlan, directory: str | Path) -> Path:
    """Write ``plan`` to ``directory``, replacing it atomically (a crash leaves the old plan or the new one)."""
    directory = Path(directory)
    _refuse_to_replace(directory, _is_plan(directory), "a Lava plan")
    with atomic_dir(directory) as tmp:
        _write_plan(plan, tmp)
    return directory


def save_plans(plans: Iterable[tuple[str, LavaPlan]], directory: str | Path) -> Path:
    """Write ``(modality, plan)`` pairs as ``directory/<modality>/``, replacing ``directory`` atomically as a whole.

    ``plans`` may be a generator, so that only one plan (GiBs at SpikEmo's size) is in memory at a time.
    """
    directory = Path(directory)
    _refuse_to_replace(directory, directory.is_dir() and all(map(_is_plan, directory.iterdir())), "a set of Lava plans")
    with atomic_dir(directory) as tmp:
        modalities = []
        for modality, plan in plans:
            _write_plan(plan, tmp / modality)
            modalities.append(modality)
        if not modalities:
            raise ExportError("no plans to write")
    return directory


def _read(path: Path, reader):
    """``reader(path)``, any failure reported as a damaged plan naming the file."""
    try:
        return reader(path)
    except (ExportError, MemoryError):
        raise
    except Exception as err:  # json, numpy, scipy and zipfile raise many kinds on a missing or damaged file
        raise ExportError(f"{path}: missing or damaged part of a Lava plan ({type(err).__name__}: {err}); "
                          "re-export it with `neuro-erc export lava`") from err


def load_plan(directory: str | Path) -> LavaPlan:
    """Read a plan :func:`save_plan` wrote; a missing or damaged one is an ``ExportError`` naming the file."""
    directory = Path(directory)
    manifest = directory / PLAN_FILE
    if not manifest.is_file():
        raise ExportError(f"{manifest}: no such file; expected a Lava plan as `neuro-erc export lava` writes")
    m = _read(manifest, lambda p: json.loads(p.read_text()))
    versions = range(1, PLAN_FORMAT_VERSION + 1)
    if not isinstance(m, dict) or m.get("format") != PLAN_FORMAT or m.get("format_version") not in versions:
        raise ExportError(f"{manifest}: not a Lava plan of format {PLAN_FORMAT!r} version <= {PLAN_FORMAT_VERSION}")
    arrays = _read(directory / ARRAYS_FILE, lambda p: dict(np.load(p)))
    csr = lambda name: _read(directory / name, lambda p: sparse.load_npz(p).tocsr())  # noqa: E731

    def build() -> LavaPlan:
        groups = {g["name"]: Group(g["name"], g["decay"], g["tau"], g["size"],
                                   *(arrays[f"group.{g['name']}.{key}"] for key in ARRAY_FIELDS))
                  for g in m["groups"]}
        populations = {p["name"]: Population(**{**p, "shape": tuple(p["shape"])}) for p in m["populations"]}
        connections = [Connection(c["src"], c["dst"], csr(f"connection{i}.npz")) for i, c in enumerate(m["connections"])]
        drives = [InputDrive(d["population"], csr(f"drive{i}.npz")) for i, d in enumerate(m["drives"])]
        return LavaPlan(groups, populations, connections, drives, tuple(m["input_shape"]), m["outputs"], m["T"], m["dt"],
                        m["latency"], m["dialogue_length"], m["fingerprint"])

    return _read(manifest, lambda _: build())  # a field missing, or pieces that do not fit: the manifest is damaged


def load_plans(directory: str | Path) -> dict[str, LavaPlan]:
    """The ``{modality: plan}`` that :func:`save_plans` wrote to ``directory``."""
    directory = Path(directory)
    entries = sorted(directory.iterdir()) if directory.is_dir() else []
    if not entries:
        raise ExportError(f"{directory}: no Lava plans there; expected <modality>/{PLAN_FILE} as `neuro-erc export lava` writes")
    return {entry.name: load_plan(entry) for entry in entries}
