"""Size model of the exported core: hand-counted tiny case, MELD fits, refusal names the longest L."""
import pytest

from neuro_erc.errors import UserError
from neuro_erc.export.size_model import CoreShape, ExportSizeError, check_fits, graph_size, largest_fitting_length, relay_stages


def test_tiny_sdsa_counts_by_hand():
    # D=2, hidden 4, one block, L=3, D_in=2.
    s = graph_size(CoreShape(dim=2, depth=1, heads=1, mlp_ratio=2, T=4), 3)
    # units: encoder 2·3; Q,K,V 18; K∧V 6; context 2; Q∧C 6; proj 6; MLP 4·3 + 2·3
    assert s.neurons == 6 + 18 + 6 + 2 + 6 + 6 + 12 + 6 == 62
    # weights: enc 2·2+2; q,k,v,proj 4·(4+2); sum and broadcast 2·(2·2·3+2); fc1 4·2+4; fc2 2·4+2
    weights = 6 + 24 + 28 + 12 + 10
    # float64 parameters: LIF units × 5 (enc 6, qkv 18, ctx 2, proj 6, fc1 12, fc2 6), Threshold units × 1 (12)
    params = 5 * (6 + 18 + 2 + 6 + 12 + 6) + 12
    assert s.nir_values == weights + params
    assert s.nir_bytes == 4 * weights + 8 * params
    # Lava: latency 7 hops; delay lines: encoder 5 stages, Q 2 stages, each D·L = 6 relays
    assert s.latency == 7 and relay_stages(1) == 7
    assert s.lava_neurons == 62 + 7 * 6
    # synapses: qkv 3·4·3, K,V→K∧V 12, K∧V→C 6, C→Q∧C 6, Q→Q∧C 6, proj 4·3, fc1 from 2 terms 2·8·3,
    # fc2 8·3, relays 42
    assert s.synapses == 36 + 12 + 6 + 6 + 6 + 12 + 48 + 24 + 42


def test_meld_longest_dialogue_exports_at_d256_depth2():
    shape = CoreShape(dim=256, depth=2)
    assert check_fits(shape, 24, target="nir").nir_bytes < 50 * 2**20  # ~35 MB
    assert 3 * 2**30 < check_fits(shape, 24, target="lava").lava_bytes < 5 * 2**30  # measured 4.09 GiB
    assert largest_fitting_length(shape, target="nir") > 1000  # IEMOCAP's 110 fits easily


def test_refusal_names_the_longest_length_that_fits():
    shape = CoreShape(dim=256, depth=2)
    best = largest_fitting_length(shape, target="lava")  # default Lava budget, 8 GiB
    assert 24 <= best < 110
    assert graph_size(shape, best).lava_bytes <= 8 * 2**30 < graph_size(shape, best + 1).lava_bytes
    with pytest.raises(ExportSizeError, match=f"longest dialogue that fits is L={best}") as err:
        check_fits(shape, 110, target="lava")  # IEMOCAP's longest dialogue
    assert isinstance(err.value, UserError) and "L=110" in str(err.value)


def test_ssa_is_quartic_in_length_and_does_not_fit_at_d256():
    ssa = CoreShape(dim=256, depth=2, heads=8, attention="ssa")
    assert not graph_size(ssa, 4).built
    ratio = graph_size(ssa, 20).nir_values / graph_size(ssa, 10).nir_values
    assert 12 < ratio <= 16  # the D³L⁴/H term dominates
    assert largest_fitting_length(ssa, target="nir") < 4
    with pytest.raises(ExportSizeError, match="SSA"):
        check_fits(ssa, 24)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        CoreShape(dim=10, depth=1, heads=3)
    with pytest.raises(ValueError):
        graph_size(CoreShape(dim=8, depth=1), 0)
