"""Exact synaptic sums (``neuro_erc.export.exact_sums``): why float Lava, the numpy simulator and Norse's
exported network compute the same float32 currents, in whatever order each sums.

A spike-driven layer whose currents float32 summation gets wrong: per-neuron thresholds sit one
float32 step below the exact current, so a neuron spikes iff its current is the exact one. The
old arithmetic (Norse's float32 Linear on spike counts; a float32 sum per residual term, as
Lava's one synapse copy per term would give) misses spikes; the exported arithmetic does not.
The full-size check (D = 256, L = 24) is ``benchmarks/lava_float_exactness.py``.
"""
from fractions import Fraction

import nir
import numpy as np
import pytest
import torch

from neuro_erc.export import (
    ExactLinear, LavaCore, build_plan, core_to_nir, exported_affines, exported_core, lava_available, simulate_nir,
)
from neuro_erc.export.exact_sums import exactly_summable, flush_subresolution
from neuro_erc.snn.core import CoreConfig, SpikingCore

lava_only = pytest.mark.skipif(not lava_available(), reason="Lava (lava-nc 0.10 / lava-dl 0.6) needs Python 3.10")
N_IN, N_OUT, TERMS = 48, 400, 2  # two spike trains summed (a residual stream): counts 0, 1, 2


def exact_current(weight: np.ndarray, bias: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """fl32(b + Σ W c) from rational arithmetic: the real sum, rounded once (here it is a float64, so float() is exact)."""
    real = [sum((Fraction(float(w)) * int(c) for w, c in zip(row, counts)), Fraction(float(b)))
            for row, b in zip(weight, bias)]
    return np.array([float(r) for r in real], dtype=np.float32)


@pytest.fixture(scope="module")
def layer():
    """Weights spanning 16 binades (so float32 sums round often), two spike trains, their counts, the exact currents."""
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((N_OUT, N_IN)) * 2.0 ** rng.uniform(-8, 8, (N_OUT, N_IN))).astype(np.float32)
    bias = rng.standard_normal(N_OUT).astype(np.float32)
    weight, bias, _ = flush_subresolution(weight, bias, TERMS)
    spikes = (rng.random((TERMS, N_IN)) < 0.5).astype(np.float32)
    counts = spikes.sum(0)
    return weight, bias, spikes, counts, exact_current(weight, bias, counts)


def test_float64_sums_of_exported_weights_are_exact_in_any_order(layer):
    weight, bias, spikes, counts, exact = layer
    assert exactly_summable(weight, bias, TERMS).all()
    w64, b64 = weight.astype(np.float64), bias.astype(np.float64)
    orders = {
        "W·counts": w64 @ counts + b64,  # Norse: one Linear on the residual stream
        "Σ per term": sum(w64 @ s for s in spikes) + b64,  # Lava: one synapse copy per term
        "reversed": (w64[:, ::-1] @ counts[::-1] + b64),
    }
    for name, current in orders.items():
        np.testing.assert_array_equal(current.astype(np.float32), exact, err_msg=name)
    x = torch.from_numpy(counts)[None]
    np.testing.assert_array_equal(ExactLinear(weight, bias)(x)[0].detach().numpy(), exact)
    # float32 sums are not: Norse's float32 Linear, and a float32 sum per term, differ from the exact current
    norse32 = torch.nn.functional.linear(x, torch.from_numpy(weight), torch.from_numpy(bias))[0].numpy()
    per_term32 = sum(weight @ s for s in spikes) + bias
    assert np.count_nonzero(norse32 != exact) > N_OUT // 20 and np.count_nonzero(per_term32 != exact) > N_OUT // 20


def test_flush_removes_exactly_the_entries_below_float64_resolution():
    weight = np.array([[1.0, 2.0**-40, 0.5], [1.0, 2.0**-20, 0.25]], dtype=np.float32)
    bias = np.array([2.0**-45, 1.0], dtype=np.float32)
    assert exactly_summable(weight, bias, 3).tolist() == [False, True]
    flushed, b, n = flush_subresolution(weight, bias, 3)
    assert n == 2 and flushed[0, 1] == 0 and b[0] == 0 and np.array_equal(flushed[1], weight[1])
    assert exactly_summable(flushed, b, 3).all()


def test_the_export_flushes_a_subresolution_weight_in_the_graph_and_in_norse():
    torch.manual_seed(0)
    core = SpikingCore(8, CoreConfig(dim=8, depth=1, mlp_ratio=2, T=4)).eval()
    with torch.no_grad():
        core.blocks[0].mlp.fc1.linear.weight[0, 0] = 1e-30
    affines, flushed = exported_affines(core)
    assert flushed >= 1 and affines["blocks.0.mlp.fc1.linear"][0][0, 0] == 0
    graph = core_to_nir(core, 3)
    assert graph.metadata["flushed_weights"] == flushed
    assert graph.nodes["blocks.0.mlp.fc1.linear"].weight[0, 0, 0] == 0
    assert exported_core(core).blocks[0].mlp.fc1.linear.weight[0, 0] == 0


def layer_graph(weight: np.ndarray, bias: np.ndarray, thresholds: np.ndarray) -> nir.NIRGraph:
    """Input [2·N_IN] → two spike trains (Θ(x − 0.5) of each half) → Affine(W, b) on their sum → Threshold."""
    select = np.eye(TERMS * N_IN).reshape(TERMS, N_IN, TERMS * N_IN)
    nodes = {"input": nir.Input(input_type=np.array([TERMS * N_IN])), "output": nir.Output(output_type=np.array([N_OUT])),
             "w": nir.Affine(weight=weight, bias=bias), "z": nir.Threshold(threshold=thresholds.astype(np.float64))}
    edges = [("w", "z"), ("z", "output")]
    for k in range(TERMS):
        nodes[f"pick{k}"] = nir.Linear(weight=select[k])
        nodes[f"s{k}"] = nir.Threshold(threshold=np.full(N_IN, 0.5))
        edges += [("input", f"pick{k}"), (f"pick{k}", f"s{k}"), (f"s{k}", "w")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3, "T": 2})


@pytest.fixture(scope="module")
def threshold_test(layer):
    """(graph, input, exact-path spikes, float32-path spikes): thresholds one float32 step below the exact currents."""
    weight, bias, spikes, counts, exact = layer
    thresholds = np.nextafter(exact, np.float32(-np.inf))
    norse32 = torch.nn.functional.linear(torch.from_numpy(counts)[None], torch.from_numpy(weight), torch.from_numpy(bias))[0]
    assert not (norse32.numpy() > thresholds).all(), "the float32 path must miss spikes for the test to mean something"
    return layer_graph(weight, bias, thresholds), spikes.ravel(), np.ones(N_OUT, dtype=bool)


def test_reference_simulator_spikes_exactly_where_the_exact_current_says(threshold_test):
    graph, x, expected = threshold_test
    z = simulate_nir(graph, x)["z"]
    np.testing.assert_array_equal(z, np.broadcast_to(expected, z.shape))


@pytest.mark.lava
@lava_only
def test_lava_float_sums_are_exact(threshold_test):
    """Lava sums W·s per residual term (its own synapse copies) in float64 and BoxLIF rounds once: every spike."""
    graph, x, expected = threshold_test
    plan = build_plan(graph)
    assert sum(c.dst == plan.populations["z"].group for c in plan.connections) >= 1
    with LavaCore(plan) as lava:
        z = lava.run(x)["z"]
    np.testing.assert_array_equal(z, np.broadcast_to(expected, z.shape))
