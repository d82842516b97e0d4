"""Spike and synaptic-operation counts of the spiking cores, and energy estimates from them.

``constants`` holds the one table of energy figures (with sources); ``counting`` counts a core's
operations with forward hooks (exact and by the fr×T×FLOPs convention, plus the ANN twin's
MACs); ``estimate`` turns counts into energy per utterance.
"""
from .constants import CMOS_45NM, LOIHI, SOURCES, CMOS45nm, LoihiEnergy, cmos
from .counting import PRODUCT_KINDS, CoreCounter, CoreCounts, LayerCount, Product, count_model, products_of
from .estimate import energy, firing_rate, layer_table, per_utterance

__all__ = [
    "CMOS_45NM", "LOIHI", "SOURCES", "CMOS45nm", "LoihiEnergy", "cmos",
    "PRODUCT_KINDS", "CoreCounter", "CoreCounts", "LayerCount", "Product", "count_model", "products_of",
    "energy", "firing_rate", "layer_table", "per_utterance",
]
