r"""Exact operation counts of a spiking core, taken with forward hooks during real forward passes.

Nothing of the model is re-implemented: hooks read the inputs and outputs of the core's own
modules while it runs, and only **real utterances** count (the ``mask`` the core is called
with; padding is excluded from every count and every rate). Per layer:

* **LIF** (:class:`neuro_erc.snn.lif.LIF`): spikes, neuron-steps
  :math:`N \cdot T \cdot U` (``U`` real utterances), *active* neuron-steps (input current
  :math:`\ne 0`, used for Loihi's active/inactive update energy), firing rate = spikes /
  neuron-steps.
* **Linear fed by events** (``spikes``, or ``counts``: sums of spikes after a residual; what a
  Linear is fed is the :class:`~neuro_erc.snn.layers.InputType` the core's listing declares,
  and values that contradict it are an error): synaptic operations
  :math:`\mathrm{SOP} = \sum x \cdot F_{out}`. An input of value *k* is charged *k*
  accumulates per fan-out, not one: on binary-spike hardware it arrives as *k* spikes, and
  :math:`W(x_1 + x_2) = Wx_1 + Wx_2` makes the residual addition itself free (the synapses
  do the summing), so it is counted nowhere else. Bias: a constant current folded into the
  neuron update, not charged.
* **Linear fed by analog values** (declared ``analog``: the encoder on the core's input):
  MACs actually computed, :math:`F_{in} F_{out}` per real position it is applied at. The
  encoder is called once on [L, B, D_in] (its current is held constant over T), so it is
  charged once; the alternative convention (first layer recomputed every step) would be
  :math:`T\times` that (``energy_uj_45nm_encoder_per_step`` in :func:`neuro_erc.energy.estimate.energy`).
* **BatchNorm**: folded into the preceding Linear at inference: 0 operations.
  **LayerNorm** (does not fold): 3 MACs per element each time it is applied (mean, variance,
  normalise-and-scale).
* **Spike×spike products** (:class:`Product`; their operands are LIF outputs), counted as
  *coincidences*: one operation per pair (or triple) of unit events that meet, which is what
  an event-driven implementation does (a non-coincidence produces nothing):

  - ``and`` — SDSA's :math:`K \odot V` and :math:`Q \odot C` (C, one context per dialogue,
    broadcast over utterances): :math:`\sum a \cdot b`. Each firing AND is one accumulate:
    into :math:`\sum_{utterances}` for K ⊙ V (the sum is therefore not counted again), or
    the pass-through of a masked spike for Q ⊙ C (Yao et al. call that mask nearly free: an
    upper bound). A non-firing AND emits nothing and is not charged;
  - ``ssa_qk`` — :math:`A = QK^\top` per head: :math:`\sum_{t,b,i,j,d} Q_{id} K_{jd}
    = \sum_{t,b,d} (\sum_i Q_{id})(\sum_j K_{jd})` (heads only partition *d*);
  - ``ssa_av`` — :math:`AV` per head *h* (A integer-valued, *k* units = *k* operations as
    above): :math:`\sum_{t,b,h,j} \big(\sum_{d'\in h}\bar Q_{d'} K_{jd'}\big)\big(\sum_{d\in h} V_{jd}\big)`,
    :math:`\bar Q_{d'} = \sum_i Q_{id'}`.

Beside the exact count, every layer also gets the **convention** of Spikformer (Zhou et al.,
ICLR 2023) and Spike-driven Transformer (Yao et al., NeurIPS 2023),
:math:`\mathrm{SOP} = fr \cdot T \cdot \mathrm{FLOPs}`, with FLOPs the dense layer's MACs in one
pass and *fr* the firing rate of the layer's spiking input (for a product: of its event
operand, :data:`PRODUCT_KINDS`). For a Linear fed by events it equals the exact count; for
products it overcounts by about 1/fr of the other operand. ``ann_macs`` is that one-pass FLOP
count: the MACs of the ANN twin (LIF → ReLU, one pass, products as real multiplications).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable, Iterable

import torch
from torch import nn

from ..snn import layers
from ..snn.layers import InputType
from ..snn.lif import LIF


@dataclass
class LayerCount:
    """Operations of one layer, summed over every counted forward call."""

    name: str
    kind: str  # "lif", "linear", "layernorm", or a PRODUCT_KINDS key
    spikes: float = 0.0
    neuron_steps: float = 0.0
    active_neuron_steps: float = 0.0
    sops: float = 0.0  # exact synaptic (accumulate) operations
    sops_convention: float = 0.0  # fr × T × FLOPs
    macs: float = 0.0  # multiply-accumulates actually computed (analog inputs)
    held_macs: float = 0.0  # the part of ``macs`` computed once and held over the T steps
    ann_macs: float = 0.0  # the ANN twin's MACs for this layer (one pass)
    ann_outputs: float = 0.0  # activations the ANN twin's layer writes in its pass (a LIF layer's neurons)

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per step over real utterances (LIF layers; 0 elsewhere)."""
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0

    def add(self, other: "LayerCount") -> None:
        for f in fields(self):
            if f.type == "float":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class Product:
    """A spike×spike product inside the core: ``kind`` (a PRODUCT_KINDS key) of the outputs of
    the LIF modules named ``operands`` (dotted names relative to the core), split in ``heads``."""

    name: str
    kind: str
    operands: tuple[str, ...]
    heads: int = 1

    def __post_init__(self) -> None:
        if self.kind not in PRODUCT_KINDS:
            raise ValueError(f"product {self.name!r}: unknown kind {self.kind!r}; known: {sorted(PRODUCT_KINDS)}")
        arity = PRODUCT_KINDS[self.kind].arity
        if len(self.operands) != arity:
            raise ValueError(f"product {self.name!r} ({self.kind}) takes {arity} operands, got {list(self.operands)}")


def count_and(a: torch.Tensor, b: torch.Tensor, heads: int) -> float:
    """Coincidences of a ⊙ b (b may be a context [T, 1, B, D] broadcast over utterances): Σ a·b."""
    return float((a * b).sum())


def count_ssa_qk(q: torch.Tensor, k: torch.Tensor, heads: int) -> float:
    """Coincidences of A = Q·Kᵀ over utterances: Σ_{t,b,d} (Σ_i Q_id)(Σ_j K_jd)."""
    return float((q.sum(1) * k.sum(1)).sum())


def count_ssa_av(v: torch.Tensor, q: torch.Tensor, k: torch.Tensor, heads: int) -> float:
    """Unit coincidences of (Q·Kᵀ)·V per head (module docstring); V is the event operand."""
    T, L, B, D = k.shape
    if D % heads:
        raise ValueError(f"ssa_av: {D} channels do not split into {heads} heads")
    col = (q.sum(1, keepdim=True) * k).reshape(T, L, B, heads, D // heads).sum(-1)  # Σ_i A_ij per head
    return float((col * v.reshape(T, L, B, heads, D // heads).sum(-1)).sum())


def _elementwise_flops(lengths: torch.Tensor, dim: int) -> float:
    return float(lengths.sum()) * dim


def _pairwise_flops(lengths: torch.Tensor, dim: int) -> float:
    return float((lengths.double() ** 2).sum()) * dim


@dataclass(frozen=True)
class ProductKind:
    """How to count one kind of product: exact coincidences, one-pass FLOPs (given the real
    length of each dialogue and the channel count), and which operand's rate the convention uses."""

    arity: int
    count: Callable[..., float]
    flops: Callable[[torch.Tensor, int], float]
    event_operand: int = 0


PRODUCT_KINDS: dict[str, ProductKind] = {
    "and": ProductKind(2, count_and, _elementwise_flops),  # L·D products
    "ssa_qk": ProductKind(2, count_ssa_qk, _pairwise_flops),  # L²·D
    "ssa_av": ProductKind(3, count_ssa_av, _pairwise_flops),  # L²·D; operands (v, q, k)
}


def _is_events(x: torch.Tensor) -> bool:
    """True when every value is a non-negative integer (spikes, or sums of spikes)."""
    return bool((x >= 0).all() and torch.equal(x, torch.round(x)))


def declared_input_types(core: nn.Module) -> dict[str, InputType]:
    """Linear name → the input type ``core.describe()`` declares for it (none for a module
    without a dataflow listing)."""
    describe = getattr(core, "describe", None)
    return {} if describe is None else {info.name: info.input_type for info in describe()
                                         if isinstance(info, layers.Linear)}


@dataclass
class CoreCounts:
    """Counts of one core: layers in the order they first ran, and the real utterances seen."""

    layers: dict[str, LayerCount] = field(default_factory=dict)
    utterances: int = 0

    def layer(self, name: str, kind: str) -> LayerCount:
        if name not in self.layers:
            self.layers[name] = LayerCount(name, kind)
        return self.layers[name]

    def total(self) -> LayerCount:
        out = LayerCount("total", "total")
        for layer in self.layers.values():
            out.add(layer)
        return out


class CoreCounter:
    """Context manager: while open, every forward call of ``core`` adds to ``self.counts``.

    ``core`` must be called as ``core(x, mask, ...)`` (or ``mask=`` keyword) with ``mask``
    [L, B] True at real utterances; ``products`` lists its spike×spike products. Whether a
    Linear is fed events or analog values is what the core's listing declares
    (:func:`declared_input_types`); a Linear outside any listing (a module without
    ``describe()``, such as a test double) is judged by its values.
    """

    def __init__(self, core: nn.Module, products: Iterable[Product] = ()):
        self.core = core
        self.products = list(products)
        self.input_types = declared_input_types(core)
        self.counts = CoreCounts()
        self._modules = dict(core.named_modules())
        for p in self.products:
            for op in p.operands:
                if not isinstance(self._modules.get(op), LIF):
                    lifs = [n for n, m in self._modules.items() if isinstance(m, LIF)]
                    raise ValueError(f"product {p.name!r}: operand {op!r} is not a LIF module of the core; LIF modules: {lifs}")
        self._handles: list = []
        self._mask: torch.Tensor | None = None
        self._operands = {op for p in self.products for op in p.operands}
        self._pending: dict[str, torch.Tensor] = {}  # operand spikes of the current call
        self._done: set[str] = set()  # products counted in the current call

    def __enter__(self) -> "CoreCounter":
        self._handles.append(self.core.register_forward_pre_hook(self._on_core, with_kwargs=True))
        for name, module in self._modules.items():
            if isinstance(module, LIF):
                self._handles.append(module.register_forward_hook(self._lif_hook(name)))
            elif isinstance(module, nn.Linear):
                self._handles.append(module.register_forward_hook(self._linear_hook(name)))
            elif isinstance(module, nn.LayerNorm):
                self._handles.append(module.register_forward_hook(self._layernorm_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._pending.clear()
        self._mask = None

    # ---- hooks ---------------------------------------------------------------------

    def _on_core(self, module, args, kwargs) -> None:
        mask = kwargs["mask"] if "mask" in kwargs else args[1]
        self._mask = mask.detach().bool()
        self._pending.clear()
        self._done.clear()
        self.counts.utterances += int(self._mask.sum())

    def _positions(self, x: torch.Tensor, name: str) -> tuple[torch.Tensor, float, int]:
        """``(x as [steps, L, B, D], real positions x is applied at, steps)``.

        The core may hand a Linear its input as ``[..., L, B, D]`` or flattened to rows
        ``[steps·L·B, D]`` (cheaper matmuls); both are brought to ``[steps, L, B, D]``.
        """
        mask = self._require_mask(name)
        per_step = mask.numel()
        rows = x.numel() // x.shape[-1]
        if x.dim() >= 3 and tuple(x.shape[-3:-1]) != tuple(mask.shape) or rows % per_step:
            raise ValueError(f"{name}: input {list(x.shape)} is not [..., L, B, D] (or its rows) for mask {list(mask.shape)}")
        steps = rows // per_step
        return x.reshape(steps, *mask.shape, x.shape[-1]), float(mask.sum()) * steps, steps

    def _require_mask(self, name: str) -> torch.Tensor:
        if self._mask is None:
            raise RuntimeError(f"{name} ran outside a forward call of the counted core")
        return self._mask

    def _lif_hook(self, name: str):
        def hook(module: LIF, args, spikes: torch.Tensor) -> None:
            current, mask = args[0].detach(), args[1].detach().bool()
            T = current.shape[0]
            c = self.counts.layer(name, "lif")
            c.spikes += float(spikes.detach().sum())
            c.neuron_steps += float(mask.sum()) * T * module.size
            c.active_neuron_steps += float(((current != 0) & mask[None, :, :, None]).sum())
            c.ann_outputs += float(mask.sum()) * module.size
            if name in self._operands:
                self._pending[name] = spikes.detach()
                self._count_ready_products()

        return hook

    def _count_ready_products(self) -> None:
        """Count each product whose operands have all fired in this call, then drop them."""
        lengths = self._require_mask("product").sum(0)
        for p in self.products:
            if p.name in self._done or not all(op in self._pending for op in p.operands):
                continue
            self._done.add(p.name)
            kind = PRODUCT_KINDS[p.kind]
            ops = [self._pending[op] for op in p.operands]
            event = ops[kind.event_operand]
            T, D = event.shape[0], event.shape[-1]
            flops = kind.flops(lengths, D)
            fr = float(event.sum()) / (float(lengths.sum()) * T * D)
            c = self.counts.layer(p.name, p.kind)
            c.sops += kind.count(*ops, heads=p.heads)
            c.sops_convention += fr * T * flops
            c.ann_macs += flops
        for op in [op for op in self._pending if all(q.name in self._done for q in self.products if op in q.operands)]:
            del self._pending[op]

    def _linear_hook(self, name: str):
        def hook(module: nn.Linear, args, out) -> None:
            x, positions, steps = self._positions(args[0].detach(), name)
            c = self.counts.layer(name, "linear")
            flops = module.in_features * module.out_features * positions / steps  # one pass
            c.ann_macs += flops
            if self._fed_events(name, x):
                units = float((x * self._mask[..., None]).sum())
                fr = units / (module.in_features * positions)  # input spikes per input per step
                c.sops += units * module.out_features
                c.sops_convention += fr * steps * flops
            else:
                c.macs += module.in_features * module.out_features * positions
                if steps == 1:  # computed once and held over the T steps
                    c.held_macs += module.in_features * module.out_features * positions

        return hook

    def _fed_events(self, name: str, x: torch.Tensor) -> bool:
        declared = self.input_types.get(name)
        if declared is None:
            return _is_events(x)
        if declared.events and not _is_events(x):
            raise ValueError(f"{name}: declared {declared.value!r} input, but fed values that are not non-negative integers")
        return declared.events

    def _layernorm_hook(self, name: str):
        def hook(module: nn.LayerNorm, args, out) -> None:
            _, positions, steps = self._positions(args[0], name)
            c = self.counts.layer(name, "layernorm")
            per_position = 3 * int(torch.tensor(module.normalized_shape).prod())
            c.macs += per_position * positions
            if steps == 1:
                c.held_macs += per_position * positions
            c.ann_macs += per_position * positions / steps

        return hook


def _and_products(info: layers.And) -> list[Product]:
    return [Product(info.name, "and", tuple(info.inputs))]


def _ssa_products(info: layers.SSAMatmul) -> list[Product]:
    q, k, v = info.inputs
    return [Product(f"{info.name}.qk", "ssa_qk", (q, k), info.heads),
            Product(f"{info.name}.av", "ssa_av", (v, q, k), info.heads)]


def _no_products(info: layers.LayerInfo) -> list[Product]:
    return []


PRODUCTS: dict[type[layers.LayerInfo], Callable[[layers.LayerInfo], list[Product]]] = {
    layers.And: _and_products,
    layers.SSAMatmul: _ssa_products,
    layers.Linear: _no_products,  # counted by its module's hook
    layers.LIF: _no_products,  # counted by its module's hook
    layers.UtteranceSum: _no_products,  # charged in its And: each firing AND accumulates into the sum
    layers.Residual: _no_products,  # absorbed by the next Linear's unit count (module docstring)
}
"""Step kind of ``describe()`` → the spike×spike products it holds."""


def products_of(core: nn.Module) -> list[Product]:
    """The spike×spike products in ``core.describe()`` (a :class:`neuro_erc.snn.core.SpikingCore`).

    An :class:`~neuro_erc.snn.layers.And` step is one product of its two LIF inputs; an
    :class:`~neuro_erc.snn.layers.SSAMatmul` (inputs q, k, v) is two: ``Q·Kᵀ`` and
    ``(Q·Kᵀ)·V``, split in its heads (:data:`PRODUCTS`).
    """
    products = []
    for info in core.describe():
        of = PRODUCTS.get(type(info))
        if of is None:
            raise ValueError(f"{info.name}: layer kind {info.kind!r} has no operation count; "
                             f"known: {', '.join(kind.kind for kind in PRODUCTS)}")
        products += of(info)
    return products
