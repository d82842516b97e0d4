r"""How big an exported spiking core is, before building it.

The exported graph keeps a **(channels, utterances)** layout (RESEARCH §5): a per-utterance
Linear is a ``Conv1d`` with kernel 1 (weights shared over utterances), the sum over the L
utterances is a ``Conv1d`` with kernel L and a channel-diagonal weight, and the broadcast of a
(D, 1) context back to (D, L) is the same kind of ``Conv1d`` with padding L−1. The diagonal
Conv1d weights are stored dense with ``groups=1`` (nir 1.0.8 mis-sizes grouped Conv1d), so
they cost D·D·L values each. A spike×spike product is an AND unit: a ``Threshold`` at 1.5 on
the sum of the two spikes.

Counts for one SDSA block with width D, hidden width Dh = mlp_ratio·D, dialogue length L:

* spiking units: Q, K, V (3DL) + K∧V (DL) + context (D) + Q∧C (DL) + projection (DL)
  + MLP (Dh·L + DL) = (7D + Dh)·L + D;
* NIR values: Conv1d weights 4D² + 2·D·Dh + 2·D²·L, their biases, and five float64
  parameter arrays per LIF unit (τ, r, v_leak, v_threshold, v_reset), one per Threshold unit;
* Lava synapses (the per-utterance expansion the simulator stores): Q/K/V read every term of
  the residual stream separately, because each term reaches them through its own delay line
  (3·D²·L·(1 + 2b) in block b), and the MLP input likewise (Dh·D·L·(2 + 2b)).

The Lava network adds delay lines (RESEARCH §6: every synapse costs one time step, so the
shorter of two meeting paths is delayed by relay units); see ``lava_build``. Its hops and relay
stages are read off the core's typed dataflow listing (:func:`spike_hops`), not hard-coded:
they follow from which steps emit spikes and what reads them, and the listing's structure does
not depend on the core's width, so the listing of a width-1 core of the same depth gives them.

SSA (Q·Kᵀ·V over utterances) is counted, not built: with only NIR 1.0.8 nodes it needs an
AND unit per (channel, i, j) for QKᵀ (D·L²) and per (c', c, i, j) within a head for the
product with V (D²·L²/H), in a flattened layout (no node reshapes (D, L, L) tensors), where
the dense Affine from the QKᵀ units to the triple products alone holds D³·L⁴/H values.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from neuro_erc.errors import ExportError
from neuro_erc.snn.core import CoreConfig, SpikingCore
from neuro_erc.snn.layers import LayerInfo

ATTENTIONS = ("sdsa", "ssa")
TARGETS = ("nir", "lava")
DEFAULT_BUDGET_BYTES = 2 * 1024**3  # NIR graphs (what nir.write holds in memory and writes)
DEFAULT_LAVA_BUDGET_BYTES = 8 * 1024**3  # a Lava network (MELD's 24 utterances at D=256, depth 2: ~4 GiB)
WEIGHT_BYTES = 4  # float32 weights and biases in the NIR file
PARAM_BYTES = 8  # float64 neuron parameters in the NIR file (τ survives 1/τ exactly)
# Lava holds each synapse as float64 + int32 index several times over (the plan, the Sparse
# process's copy, the compiled model's): measured peak 4.09 GiB for 72.6 M synapses
# (D=256, depth 2, L=24), 1.09 GiB for 36.3 M (L=12).
LAVA_SYNAPSE_BYTES = 56
LAVA_NEURON_BYTES = 2 * 12 * 8  # ~12 float64 per-neuron Vars (state, parameters, window), host copy + process copy


class ExportSizeError(ExportError):
    """The exported graph would exceed the memory budget."""


@dataclass(frozen=True)
class CoreShape:
    """What decides the size of an exported core.

    Fields:
        dim: width D of the residual stream.
        depth: number of blocks.
        heads: attention heads H (only SSA's size depends on it).
        mlp_ratio: hidden width of the MLP is ``int(mlp_ratio * dim)``.
        attention: ``"sdsa"`` or ``"ssa"``.
        T: time steps per dialogue (sizes the Lava spike buffers).
        in_dim: width of the analog input (default: ``dim``).
    """

    dim: int
    depth: int
    heads: int = 8
    mlp_ratio: float = 4.0
    attention: str = "sdsa"
    T: int = 32
    in_dim: int | None = None

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention {self.attention!r} not in {ATTENTIONS}")
        if min(self.dim, self.depth, self.heads, self.T) < 1 or self.dim % self.heads:
            raise ValueError(f"need dim, depth, heads, T >= 1 and heads | dim; got {self}")

    @property
    def hidden(self) -> int:
        return int(self.mlp_ratio * self.dim)

    @property
    def d_in(self) -> int:
        return self.in_dim or self.dim


@dataclass(frozen=True)
class GraphSize:
    """Size of the exported graph of one dialogue length.

    ``neurons``/``nir_values``/``nir_bytes`` describe the NIR graph; ``lava_neurons``
    (with delay lines and the bias chain), ``synapses`` (stored nonzeros), ``latency``
    (synapse hops from the encoder to the last layer) and ``lava_bytes`` the Lava network.
    """

    length: int
    neurons: int
    nir_values: int
    nir_bytes: int
    lava_neurons: int
    synapses: int
    latency: int
    lava_bytes: int
    built: bool  # False: an estimate of a construction this package does not build (SSA)

    def bytes_for(self, target: str) -> int:
        if target not in TARGETS:
            raise ValueError(f"target {target!r} not in {TARGETS}")
        return self.nir_bytes if target == "nir" else self.lava_bytes


def _lif_values(n: int) -> int:
    return 5 * n


def _conv_values(c_out: int, c_in: int, kernel: int) -> int:
    return c_out * c_in * kernel + c_out


def spike_hops(steps: list[LayerInfo]) -> tuple[dict[str, int], dict[str, int]]:
    """(spiking step → its hop, spiking step → the relay stages its readers need) on a chip
    where every synapse costs one time step, as ``lava_build`` maps the graph.

    A step that emits spikes (``emits_spikes``: LIF, AND) sits one hop after the latest spiking
    step it reads through synapses, sums and residuals (hop 0 when it reads only the analog
    input); a unit at hop h read by one at hop h' goes through h' − h − 1 relays, so a spiking
    step needs as many relay stages as its latest reader.
    """
    sources: dict[str, set[str]] = {"input": set()}  # step -> spiking steps its output carries
    hops: dict[str, int] = {}
    relays: dict[str, int] = {}
    for info in steps:
        read = set().union(*(sources[name] for name in info.inputs))
        if not info.emits_spikes:
            sources[info.name] = read
            continue
        hops[info.name] = 1 + max((hops[src] for src in read), default=-1)
        for src in read:
            relays[src] = max(relays.get(src, 0), hops[info.name] - hops[src] - 1)
        sources[info.name] = {info.name}
    return hops, relays


@lru_cache(maxsize=None)
def _sdsa_hops(depth: int) -> tuple[int, int]:
    """(latency: the deepest hop, relay stages) of an SDSA core of ``depth`` blocks, from the
    listing of a width-1 core built on the meta device (no memory, no draw from the RNG)."""
    with torch.device("meta"):
        core = SpikingCore(1, CoreConfig(dim=1, heads=1, depth=depth, mlp_ratio=1, T=1, norm="none"))
    hops, relays = spike_hops(core.describe())
    return max(hops.values()), sum(relays.values())


def relay_stages(depth: int) -> int:
    """Delay-line stages (each one population of D·L relay units) of an SDSA Lava network.

    From the listing (:func:`spike_hops`): block b (input at hop p = 7b) puts Q/K/V at p+1,
    K∧V at p+2, C at p+3, Q∧C at p+4, O at p+5, MLP1 at p+6, MLP2 at p+7, so a term of the
    residual stream needs as many relays as its last reader: the encoder 7·depth − 2, O of
    block b 7(depth−1−b), MLP2 of block b 7(depth−1−b) − 2 (none for the last block), and Q
    two per block (its reader Q∧C is three hops later).
    """
    return _sdsa_hops(depth)[1]


def _sdsa_size(shape: CoreShape, L: int) -> GraphSize:
    D, Dh, n = shape.dim, shape.hidden, shape.depth
    neurons = D * L + n * ((7 * D + Dh) * L + D)
    param_values = _lif_values(D * L)
    weight_values = _conv_values(D, shape.d_in, 1)
    block_weights = 4 * _conv_values(D, D, 1) + 2 * _conv_values(D, D, L) + _conv_values(Dh, D, 1) + _conv_values(D, Dh, 1)
    block_params = _lif_values(5 * D * L + Dh * L + D) + 2 * D * L  # 6 LIF layers + 2 Threshold layers
    weight_values += n * block_weights
    param_values += n * block_params
    values = weight_values + param_values

    latency = _sdsa_hops(n)[0]
    relays = relay_stages(n) * D * L
    lava_neurons = neurons + relays
    synapses = relays  # one synapse into each relay
    for b in range(n):
        synapses += 3 * D * D * L * (1 + 2 * b)  # residual terms -> Q, K, V
        synapses += 5 * D * L  # K, V -> K∧V (2); K∧V -> C (sum); C -> Q∧C (broadcast); Q -> Q∧C
        synapses += D * D * L  # Q∧C -> O
        synapses += Dh * D * L * (2 + 2 * b) + D * Dh * L  # MLP
    steps = shape.T + latency
    lava_bytes = synapses * LAVA_SYNAPSE_BYTES + lava_neurons * (LAVA_NEURON_BYTES + 2 * 8 * steps)
    return GraphSize(
        length=L, neurons=neurons, nir_values=values,
        nir_bytes=weight_values * WEIGHT_BYTES + param_values * PARAM_BYTES,
        lava_neurons=lava_neurons, synapses=synapses, latency=latency, lava_bytes=lava_bytes, built=True,
    )


def _ssa_size(shape: CoreShape, L: int) -> GraphSize:
    D, Dh, H, n = shape.dim, shape.hidden, shape.heads, shape.depth
    qk_units = D * L * L  # Q[c,i] ∧ K[c,j]
    qkv_units = D * D * L * L // H  # (Q[c',i] ∧ K[c',j]) ∧ V[c,j], c and c' in one head
    per_block_units = 3 * D * L + qk_units + qkv_units + D * L + D * L + Dh * L + D * L
    neurons = D * L + n * per_block_units
    # Flattened layout: every per-utterance Linear is a dense block-diagonal Affine.
    block_weights = (
        3 * (D * L) ** 2  # Q, K, V
        + 2 * qk_units * D * L  # Q -> QK, K -> QK
        + qkv_units * qk_units + qkv_units * D * L  # QK -> QKV, V -> QKV
        + D * L * qkv_units  # QKV -> attention output (sum over j and c')
        + (D * L) ** 2 + 2 * Dh * D * L * L  # projection, MLP
    )
    weight_values = shape.d_in * D * L * L + n * block_weights
    param_values = _lif_values(D * L) + n * (_lif_values(6 * D * L + Dh * L) + qk_units + qkv_units)
    synapses = n * (3 * D * D * L + 2 * qk_units + 2 * qkv_units + qkv_units + D * D * L + 2 * Dh * D * L)
    latency = 6 * n
    steps = shape.T + latency
    lava_bytes = synapses * LAVA_SYNAPSE_BYTES + neurons * (LAVA_NEURON_BYTES + 2 * 8 * steps)
    return GraphSize(
        length=L, neurons=neurons, nir_values=weight_values + param_values,
        nir_bytes=weight_values * WEIGHT_BYTES + param_values * PARAM_BYTES,
        lava_neurons=neurons, synapses=synapses, latency=latency, lava_bytes=lava_bytes, built=False,
    )


def graph_size(shape: CoreShape, length: int) -> GraphSize:
    """Size of the exported graph of a dialogue of ``length`` utterances."""
    if length < 1:
        raise ValueError(f"dialogue length must be >= 1, got {length}")
    return (_sdsa_size if shape.attention == "sdsa" else _ssa_size)(shape, length)


def default_budget(target: str) -> int:
    return DEFAULT_BUDGET_BYTES if target == "nir" else DEFAULT_LAVA_BUDGET_BYTES


def largest_fitting_length(shape: CoreShape, budget_bytes: int | None = None, target: str = "nir",
                           upper: int = 4096) -> int:
    """The longest dialogue (≤ ``upper``) whose graph fits ``budget_bytes``; 0 if none does.

    Sizes grow with L, so this bisects. The budget defaults to the target's default.
    """
    budget_bytes = default_budget(target) if budget_bytes is None else budget_bytes
    if graph_size(shape, 1).bytes_for(target) > budget_bytes:
        return 0
    lo, hi = 1, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if graph_size(shape, mid).bytes_for(target) <= budget_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_fits(shape: CoreShape, length: int, budget_bytes: int | None = None, target: str = "nir") -> GraphSize:
    """Return the size of the graph for ``length``, or refuse with the longest length that fits."""
    budget_bytes = default_budget(target) if budget_bytes is None else budget_bytes
    size = graph_size(shape, length)
    need = size.bytes_for(target)
    if need > budget_bytes:
        best = largest_fitting_length(shape, budget_bytes, target)
        fits = f"the longest dialogue that fits is L={best}" if best else "no dialogue length fits"
        raise ExportSizeError(
            f"{shape.attention.upper()} core (D={shape.dim}, depth={shape.depth}, heads={shape.heads}, "
            f"mlp_ratio={shape.mlp_ratio}) at dialogue length L={length} needs {need / 2**30:.2f} GiB "
            f"as a {target} graph, over the budget of {budget_bytes / 2**30:.2f} GiB; {fits}. "
            f"Raise the budget or export shorter dialogues."
        )
    return size
