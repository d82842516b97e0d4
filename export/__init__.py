"""Hardware export of the spiking core: Norse → NIR (spike-exact) → Lava (CPU, Loihi2SimCfg).

* :func:`core_to_nir` — a ``SpikingCore`` → a NIR graph for dialogues of L utterances;
  :func:`save_graph` / :func:`load_graph` write and read one file of such graphs, one per
  modality (``nir.write``/``nir.read``), stamped with each core's :func:`core_fingerprint`.
* :func:`simulate_nir` — the numpy reference simulator (float32, Norse's arithmetic).
* :func:`exported_core` — the exported network in Norse: the reference every backend matches
  (synaptic currents are exact sums rounded once to float32: :mod:`.exact_sums`).
* :func:`build_plan` — a NIR graph → the plan of a Lava network; :class:`LavaCore` runs it
  (``precision="float"`` is spike-exact against Norse, ``"fixed"`` is Loihi's fixed point);
  :func:`restrict_plan` cuts the plan for a shorter dialogue out of it; :func:`save_plan` /
  :func:`load_plan` (one plan), :func:`save_plans` / :func:`load_plans` (one per modality).
* :class:`ExportedCores` — an exported artefact checked against the checkpoint it runs with.
* :func:`graph_size` / :func:`check_fits` — sizes before building; export refuses graphs over
  a memory budget and names the longest dialogue that fits.
* :func:`record_core` — every spike of a Norse forward (and the input currents), named like the
  graph's nodes; :class:`SpikeTally` — agreement, Jaccard, firing rates and mismatches of two runs.

Lava imports lazily: everything but :class:`LavaCore` works without it (Python ≥ 3.11).
See ``docs/export.md``.
"""
from .artefacts import ExportedCores
from .lava_build import LavaPlan, build_plan, load_plan, load_plans, quantize, restrict_plan, save_plan, save_plans
from .lava_run import LavaCore, LavaUnavailable, lava_available, require_lava
from .nir_graph import core_fingerprint, core_shape, core_to_nir, exported_affines, load_graph, save_graph, spiking_nodes
from .nir_nodes import lif_node, params_from_lif
from .nir_sim import simulate_nir
from .norse_ref import ExactLinear, dialogue_currents, dialogue_spikes, exported_core, record_core
from .size_model import (
    DEFAULT_BUDGET_BYTES, DEFAULT_LAVA_BUDGET_BYTES, CoreShape, ExportSizeError, GraphSize, check_fits, graph_size,
    largest_fitting_length,
)
from .spike_measures import SpikeCounts, SpikeTally

__all__ = [
    "CoreShape", "DEFAULT_BUDGET_BYTES", "DEFAULT_LAVA_BUDGET_BYTES", "ExactLinear", "ExportSizeError", "ExportedCores",
    "GraphSize", "LavaCore", "LavaPlan", "LavaUnavailable", "SpikeCounts", "SpikeTally", "build_plan", "check_fits",
    "core_fingerprint", "core_shape", "core_to_nir", "dialogue_currents", "dialogue_spikes", "exported_affines",
    "exported_core", "graph_size", "largest_fitting_length", "lava_available", "lif_node", "load_graph", "load_plan",
    "load_plans", "params_from_lif", "quantize", "record_core", "require_lava", "restrict_plan", "save_graph", "save_plan",
    "save_plans", "simulate_nir", "spiking_nodes",
]
