r"""The spiking core's dataflow listing: one small typed dataclass per kind of step, NIR-style.

``SpikingCore.describe()`` returns the steps of the core in execution order, each an instance
of one class below (like ``nir.LIF`` or ``nir.Affine``: plain data, the formula in the
docstring). Tensors are named by the step that produces them; ``inputs`` names the steps a
step reads (``"input"`` is the core's analog input). The last step is the core's output.

=======================  ====================================================================
:class:`Linear`          :math:`I = W x + b` (a synapse; the module's ``nn.Linear``)
:class:`LIF`             a box LIF population (:mod:`.neuron`) driven by its input current
:class:`And`             :math:`a \odot b` of two binary spike trains
:class:`UtteranceSum`    :math:`\sum_l x_l` over the real utterances of a dialogue
:class:`Residual`        :math:`\sum_i x_i`, elementwise
:class:`SSAMatmul`       :math:`(Q K^\top) V` per head (Spikformer SSA)
=======================  ====================================================================

**Who reads it, and how a new kind is added.** The exporter (``export.nir_graph``), the
operation counter (``neuro_erc.energy.counting``), the Norse reference (``export.norse_ref``)
and the size model (``export.size_model``) dispatch on these classes. What more than one of
them needs to know about a step is declared here, on its class: what it reads (``inputs``),
whether it emits binary spikes (``emits_spikes``: a LIF population or an AND unit, one synapse
hop on a chip — all the size model's hop count and delay lines use), how many binary spike
trains its output sums (:meth:`LayerInfo.spike_trains`: what the export's exact sums need), what
a synapse is fed (:class:`InputType`: synaptic operations or MACs in the counter, flushing or not
in the export) and its neurons. What a step *means to one consumer* — its NIR nodes, the
spike×spike products it counts — stays in that consumer, in one table keyed by these classes
(``nir_graph._Builder.MAPPINGS``, ``counting.PRODUCTS``), because it is written in that
consumer's terms (NIR nodes, the counter's ``Product``), which the model package does not
import. The Norse reference runs the core's own modules and only recomputes the :class:`And`
outputs it records. So a new kind is one dataclass here plus one entry in each of the two
tables; a table without it refuses the step by name, and ``tests/test_snn_layers.py`` checks
that both tables cover :data:`KINDS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, Mapping

from .neuron import NeuronParams

if TYPE_CHECKING:
    from torch import nn


class InputType(str, Enum):
    """What a :class:`Linear` is fed (a ``str``, so it compares equal to its value)."""

    ANALOG = "analog"  # real values, applied once per utterance and held over the T steps
    SPIKES = "spikes"  # binary spikes, every step
    COUNTS = "counts"  # the integer residual stream (sums of binary spike trains), every step

    @property
    def events(self) -> bool:
        """True for spikes and spike counts: a value k arrives as k unit events."""
        return self is not InputType.ANALOG


@dataclass(frozen=True)
class LayerInfo:
    """One step of the core's dataflow (the base of every kind below).

    Fields:
        name: the module path of a step backed by a module (what ``named_modules`` and hooks
            see); a dotted pseudo-name otherwise.
        inputs: names of the steps feeding this one.
        module: the module itself for :class:`Linear` and :class:`LIF` (``None`` otherwise).
    """

    name: str
    inputs: tuple[str, ...]
    module: nn.Module | None = field(default=None, repr=False, compare=False, kw_only=True)

    kind: ClassVar[str]  # a readable label (messages, tables)
    emits_spikes: ClassVar[bool] = False

    def spike_trains(self, trains: Mapping[str, int]) -> int:
        """How many binary spike trains the output sums at most, given ``trains`` of the inputs."""
        return 1


@dataclass(frozen=True)
class Linear(LayerInfo):
    r"""A synapse :math:`I = W x + b` (batch norm folded in at inference), ``fan_out × fan_in``.

    Fed by ``analog`` input it is a dense product, computed once per utterance (the current is
    held over the T steps); fed by events (``spikes``/``counts``) every unit event of input
    channel j adds column :math:`W_{:,j}` (``fan_out`` accumulates).

    Fields: ``fan_in`` synapses per output neuron (input channels), ``fan_out`` synapses per
    input channel (output channels), ``input_type`` what it is fed.
    """

    fan_in: int
    fan_out: int
    input_type: InputType

    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_type", InputType(self.input_type))


@dataclass(frozen=True)
class LIF(LayerInfo):
    r"""``size`` box LIF neurons with ``neuron`` parameters, forward Euler at ``dt``:
    :math:`v_t = v_{t-1} + \tfrac{dt}{\tau}(v_{leak} - v_{t-1} + I_t)`,
    :math:`z_t = \Theta(v_t - v_{th})`, hard reset to :math:`v_{reset}` (:mod:`.neuron`)."""

    size: int
    neuron: NeuronParams

    kind: ClassVar[str] = "lif"
    emits_spikes: ClassVar[bool] = True


@dataclass(frozen=True)
class And(LayerInfo):
    r""":math:`y = a \odot b` of two binary spike trains (``inputs = (a, b)``), ``size`` channels.

    An operand with one "utterance" (SDSA's context, one per dialogue) is broadcast over the
    utterances of the other. On a chip it is a memoryless unit firing when both inputs spike.
    """

    size: int

    kind: ClassVar[str] = "and"
    emits_spikes: ClassVar[bool] = True


@dataclass(frozen=True)
class UtteranceSum(LayerInfo):
    r""":math:`y = \sum_{l\ \mathrm{real}} x_l` per channel: ``[T, L, B, size]`` → ``[T, 1, B, size]``."""

    size: int

    kind: ClassVar[str] = "sum-over-utterances"


@dataclass(frozen=True)
class Residual(LayerInfo):
    r""":math:`y = \sum_i x_i` elementwise over ``inputs`` (the integer residual stream), ``size`` channels."""

    size: int

    kind: ClassVar[str] = "residual"

    def spike_trains(self, trains: Mapping[str, int]) -> int:
        return sum(trains[name] for name in self.inputs)


@dataclass(frozen=True)
class SSAMatmul(LayerInfo):
    r""":math:`Y_h = (Q_h K_h^\top) V_h` per head h of ``heads`` (``inputs = (q, k, v)``), ``size``
    channels, over the utterances of a dialogue; integer-valued (SSA's ``scale`` multiplies it
    into the attention LIF's current)."""

    size: int
    heads: int

    kind: ClassVar[str] = "ssa-matmul"


KINDS: tuple[type[LayerInfo], ...] = (Linear, LIF, And, UtteranceSum, Residual, SSAMatmul)
"""Every kind of step a core lists."""
