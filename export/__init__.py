"""Hardware export of the spiking core: Norse → NIR (spike-exact) → Lava (CPU, Loihi2SimCfg).

* :func:`core_to_nir` — a ``SpikingCore`` → a NIR graph for dialogues of L utterances;
  :func:`save_graph` / :func:`load_graph` write and read it (``nir.write``/``nir.read``).
* :func:`simulate_nir` — the numpy reference simulator (float32, Norse's arithmetic).
* :func:`build_plan` — a NIR graph → the plan of a Lava network; :class:`LavaCore` runs it
  (``precision="float"`` is spike-exact against Norse, ``"fixed"`` is Loihi's fixed point).
* :func:`graph_size` / :func:`check_fits` — sizes before building; export refuses graphs over
  a memory budget and names the longest dialogue that fits.
* :func:`record_core` — every spike of a Norse forward, named like the graph's nodes.

Lava imports lazily: everything but :class:`LavaCore` works without it (Python ≥ 3.11).
See ``docs/export.md``.
"""
from .lava_build import LavaPlan, build_plan, load_plan, quantize, save_plan
from .lava_run import LavaCore, LavaUnavailable, lava_available, require_lava
from .nir_graph import core_shape, core_to_nir, load_graph, save_graph, spiking_nodes
from .nir_nodes import lif_node, params_from_lif
from .nir_sim import simulate_nir
from .norse_ref import dialogue_spikes, record_core
from .size_model import (
    DEFAULT_BUDGET_BYTES, DEFAULT_LAVA_BUDGET_BYTES, CoreShape, ExportSizeError, GraphSize, check_fits, graph_size,
    largest_fitting_length,
)

__all__ = [
    "CoreShape", "DEFAULT_BUDGET_BYTES", "DEFAULT_LAVA_BUDGET_BYTES", "ExportSizeError", "GraphSize", "LavaCore", "LavaPlan", "LavaUnavailable",
    "build_plan", "check_fits", "core_shape", "core_to_nir", "dialogue_spikes", "graph_size", "largest_fitting_length",
    "lava_available", "lif_node", "load_graph", "load_plan", "params_from_lif", "quantize", "record_core",
    "require_lava", "save_graph", "save_plan", "simulate_nir", "spiking_nodes",
]
