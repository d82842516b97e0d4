"""Energy of the text feature extractor, which runs before either model (reported beside them).

Its MACs per utterance come from the transformer's shape and the tokens per utterance
(:class:`~neuro_erc.energy.constants.EncoderSpec`, :data:`~neuro_erc.energy.constants.TOKENS_PER_UTTERANCE`);
energy as for any host layer: one MAC and one 32-bit weight read per MAC with memory. A text
model given as a directory (``features finetune``) is read from its ``config.json``
(``num_hidden_layers``, ``hidden_size``, ``intermediate_size``). Audio and visual features
(openSMILE, the dataset's own vectors) have no count here.
"""
from __future__ import annotations

import json
from pathlib import Path

from .constants import ENCODERS, MEMORY, PJ_PER_UJ, TOKENS_PER_UTTERANCE, EncoderSpec, MemoryEnergy, cmos


def encoder_spec(text_model: str) -> EncoderSpec | None:
    """The shape of ``text_model`` (a bundled name or a model directory); None when unknown."""
    if text_model in ENCODERS:
        return ENCODERS[text_model]
    config = Path(text_model) / "config.json"
    try:
        c = json.loads(config.read_text())
        return EncoderSpec(str(text_model), int(c["num_hidden_layers"]), int(c["hidden_size"]), int(c["intermediate_size"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def encoder_energy(spec: EncoderSpec, tokens: float = TOKENS_PER_UTTERANCE, precision: str = "fp32",
                   memory: MemoryEnergy = MEMORY) -> dict[str, float]:
    """``encoder_macs_per_utterance``, ``encoder_energy_uj`` and ``encoder_energy_uj_memory`` for one utterance."""
    macs = spec.macs_per_utterance(tokens)
    compute = cmos(precision).mac_pj * macs
    return {
        "encoder_macs_per_utterance": macs,
        "encoder_energy_uj": compute / PJ_PER_UJ,
        "encoder_energy_uj_memory": (compute + memory.access_pj() * macs) / PJ_PER_UJ,
    }
