"""Energy per operation: the one table of constants, with their sources.

**45 nm CMOS, 0.9 V** — M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014 (its table of energy per operation at 45 nm): a multiply-accumulate (MAC = multiply + add) and an accumulate
(AC = add) per number format. Spikformer (Zhou et al., ICLR 2023) and Spike-driven
Transformer (Yao et al., NeurIPS 2023) use the fp32 pair (4.6 pJ, 0.9 pJ): a synaptic
operation driven by a binary spike is one AC, an analog input costs a MAC.

**Loihi** — M. Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
learning", IEEE Micro 38(1), 2018 (its table of chip figures): 23.6 pJ per synaptic spike operation, 81 pJ per
active neuron update, 52 pJ per inactive neuron update, 1.7 pJ to send a spike within a
tile. Loihi 2 has no published per-operation figures.
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

SOURCES = {
    "cmos_45nm": "M. Horowitz, Computing's energy problem (and what we can do about it), ISSCC 2014",
    "loihi": "M. Davies et al., Loihi: a neuromorphic manycore processor with on-chip learning, IEEE Micro 38(1), 2018",
}


def cmos(precision: str) -> CMOS45nm:
    """The 45 nm row for ``precision`` (fp32, fp16 or int8)."""
    try:
        return CMOS_45NM[precision]
    except KeyError:
        raise ValueError(f"no 45 nm energy figures for precision {precision!r}; known: {sorted(CMOS_45NM)}") from None
