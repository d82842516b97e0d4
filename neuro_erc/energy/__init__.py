"""Operation counts of the models, and energy estimates from them.

``constants`` holds the one table of energy figures (with sources); ``counting`` counts a
SpikEmo core's operations with forward hooks (exact and by the fr×T×FLOPs convention, plus the
ANN twin's MACs); ``whole`` counts every layer of either architecture (host parts as MACs, the
stream model's populations) and prices them with memory access, for the SNN, its ANN twin and
the quantised ANN; ``estimate`` turns core counts into the core-only energies; ``encoder``
prices the text feature extractor.
"""
from .constants import CMOS_45NM, LOIHI, MEMORY, SOURCES, CMOS45nm, LoihiEnergy, cmos
from .counting import PRODUCT_KINDS, CoreCounter, CoreCounts, LayerCount, Product, products_of
from .encoder import encoder_energy, encoder_spec
from .estimate import energy, layer_table, per_utterance
from .whole import HostCounter, StreamCounter, count_whole, spiking_rate, whole_energy, whole_per_utterance

__all__ = [
    "CMOS_45NM", "LOIHI", "MEMORY", "SOURCES", "CMOS45nm", "LoihiEnergy", "cmos",
    "PRODUCT_KINDS", "CoreCounter", "CoreCounts", "LayerCount", "Product", "products_of",
    "encoder_energy", "encoder_spec",
    "energy", "layer_table", "per_utterance",
    "HostCounter", "StreamCounter", "count_whole", "spiking_rate", "whole_energy", "whole_per_utterance",
]
