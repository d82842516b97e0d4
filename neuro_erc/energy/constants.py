r"""Energy per operation: the one table of constants, with their sources.

**45 nm CMOS, 0.9 V** — M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014 (its table of energy per operation at 45 nm): a multiply-accumulate (MAC = multiply + add) and an accumulate
(AC = add) per number format. Spikformer (Zhou et al., ICLR 2023) and Spike-driven
Transformer (Yao et al., NeurIPS 2023) use the fp32 pair (4.6 pJ, 0.9 pJ): a synaptic
operation driven by a binary spike is one AC, an analog input costs a MAC.

**Loihi** — M. Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
learning", IEEE Micro 38(1), 2018 (its table of chip figures): 23.6 pJ per synaptic spike operation, 81 pJ per
active neuron update, 52 pJ per inactive neuron update, 1.7 pJ to send a spike within a
tile. Loihi 2 has no published per-operation figures.

**Memory access, 45 nm** — Horowitz (ISSCC 2014, same table): reading 64 bits from an 8 KB SRAM
costs 10 pJ (32 KB: 20 pJ; 1 MB: 100 pJ; DRAM 1.3–2.6 nJ). We charge the small-SRAM figure,
linear in the bits moved: 10/64 = 0.156 pJ per bit, **5 pJ per 32-bit word** — the cheapest
on-chip memory, so the memory term is a lower bound. Dampfhoffer et al. (IEEE TETCI 7(3), 2023)
show that with such a term SNNs lose most of their advantage; that is why it is counted. The
accesses charged (:mod:`neuro_erc.energy.whole`): one weight read per MAC and per synaptic
operation through a weight; one read and one write of every neuron state variable at every
neuron update (LIF: v; CubaLIF: i and v; LI: v); one write and one read of every activation an
ANN layer (or a host layer) produces. Input-activation reads of a MAC are not charged (register
reuse), for SNN and ANN alike. On Loihi the per-event energies above already include the chip's
own memory, so no memory term is added there.

**Quantised ANN** (Yan et al., arXiv 2409.08290: a T-step SNN is compared with an ANN whose
activations have b = ⌈log₂(T+1)⌉ bits, the information a spike count over T steps carries).
A multiplier's energy grows with the product of its operand widths (Horowitz: 8×8-bit 0.2 pJ,
32×32-bit 3.1 pJ ≈ 16 × 0.2 pJ), the adder's with the accumulator's. So a b-bit activation times
a 32-bit weight, accumulated in the SNN's number format, costs
:math:`E_{qMAC}(b) = E_{mult,32} \cdot b/32 + E_{AC}` (:func:`qmac_pj`), and its activations
are stored at b bits (memory ∝ bits). Weights stay 32-bit, as the SNN's. This is this table's
energy model applied at Yan et al.'s comparison point, not their own energy model.

**Text encoder** (outside both models): a transformer layer costs, per token,
:math:`4h^2` (Q, K, V, output projections) + :math:`2hf` (feed-forward) + :math:`2nh`
(scores and weighted sum over n tokens) MACs (:class:`EncoderSpec`). MELD utterances average
13.8 MiniLM word pieces ([CLS] and [SEP] included; train 13.84, dev 13.78, measured with the
bundled all-MiniLM-L6-v2 tokenizer on ``train_sent_emo.csv``/``dev_sent_emo.csv``); that is the
assumed length for every dataset (:data:`TOKENS_PER_UTTERANCE`; mpnet's tokenizer is assumed to
give the same count). Embedding look-ups, softmax, GELU and pooling are not charged.
"""
from __future__ import annotations

from dataclasses import dataclass

PJ_PER_UJ = 1e6


@dataclass(frozen=True)
class CMOS45nm:
    """Energy (pJ) of one MAC and one AC in one number format (Horowitz, ISSCC 2014)."""

    precision: str
    mac_pj: float
    ac_pj: float


@dataclass(frozen=True)
class LoihiEnergy:
    """Loihi's measured energy per event (Davies et al., IEEE Micro 2018), pJ."""

    synaptic_op_pj: float = 23.6
    neuron_update_active_pj: float = 81.0
    neuron_update_inactive_pj: float = 52.0
    spike_in_tile_pj: float = 1.7


CMOS_45NM: dict[str, CMOS45nm] = {
    "fp32": CMOS45nm("fp32", mac_pj=4.6, ac_pj=0.9),
    "fp16": CMOS45nm("fp16", mac_pj=1.5, ac_pj=0.4),
    "int8": CMOS45nm("int8", mac_pj=0.23, ac_pj=0.03),
}
LOIHI = LoihiEnergy()

MULT_PJ_32BIT = 3.1
"""Horowitz: a 32-bit integer multiply (the width the quantised-ANN multiplier scales from)."""


@dataclass(frozen=True)
class MemoryEnergy:
    """On-chip SRAM access energy, linear in the bits moved (Horowitz: 10 pJ per 64-bit 8 KB read)."""

    pj_per_bit: float = 10.0 / 64
    word_bits: int = 32

    def access_pj(self, bits: int | None = None) -> float:
        """One read or write of ``bits`` bits (default one word)."""
        return self.pj_per_bit * (self.word_bits if bits is None else bits)


MEMORY = MemoryEnergy()


def quantised_bits(T: int) -> int:
    """Yan et al.'s activation width for a T-step SNN: ⌈log₂(T + 1)⌉ bits."""
    return max(1, T.bit_length())  # bit_length(T) = ⌈log₂(T + 1)⌉ for T ≥ 1


def qmac_pj(bits: int, precision: str = "fp32") -> float:
    """Energy of a ``bits``-bit activation × 32-bit weight MAC accumulated in ``precision`` (docstring)."""
    return MULT_PJ_32BIT * bits / 32 + cmos(precision).ac_pj


@dataclass(frozen=True)
class EncoderSpec:
    """Shape of a transformer text encoder: ``layers`` of width ``hidden`` and feed-forward ``ffn``."""

    name: str
    layers: int
    hidden: int
    ffn: int

    def macs_per_utterance(self, tokens: float) -> float:
        """MACs to encode one utterance of ``tokens`` tokens (module docstring)."""
        h, n = self.hidden, tokens
        return self.layers * n * (4 * h * h + 2 * h * self.ffn + 2 * n * h)


ENCODERS: dict[str, EncoderSpec] = {
    "minilm": EncoderSpec("all-MiniLM-L6-v2", layers=6, hidden=384, ffn=1536),
    "mpnet": EncoderSpec("all-mpnet-base-v2", layers=12, hidden=768, ffn=3072),
}
TOKENS_PER_UTTERANCE = 13.8

SOURCES = {
    "cmos_45nm": "M. Horowitz, Computing's energy problem (and what we can do about it), ISSCC 2014",
    "loihi": "M. Davies et al., Loihi: a neuromorphic manycore processor with on-chip learning, IEEE Micro 38(1), 2018",
    "memory": "M. Horowitz, ISSCC 2014: 10 pJ per 64-bit read of an 8 KB SRAM, charged at 0.156 pJ/bit",
    "memory_critique": "P. Dampfhoffer et al., Are SNNs really more energy-efficient than ANNs? An in-depth "
    "hardware-aware study, IEEE TETCI 7(3), 2023",
    "quantised_ann": "Yan et al., Reconsidering the energy efficiency of spiking neural networks, arXiv 2409.08290",
}


def cmos(precision: str) -> CMOS45nm:
    """The 45 nm row for ``precision`` (fp32, fp16 or int8)."""
    try:
        return CMOS_45NM[precision]
    except KeyError:
        raise ValueError(f"no 45 nm energy figures for precision {precision!r}; known: {sorted(CMOS_45NM)}") from None
