"""The spiking core (Norse): box LIF neurons, SSA/SDSA blocks, masked batch norm, DSWA.

``NeuronParams`` (neuron.py) is the one source of truth for neuron parameters.
"""
from .blocks import MaskedBatchNorm1d, fold_batchnorm
from .core import CoreConfig, SpikingCore
from .dswa import DSWA
from .layers import LayerInfo
from .lif import LIF, box_lif_sequence
from .neuron import NeuronParams

__all__ = [
    "CoreConfig", "DSWA", "LIF", "LayerInfo", "MaskedBatchNorm1d", "NeuronParams", "SpikingCore",
    "box_lif_sequence", "fold_batchnorm",
]
