"""The multi-step box LIF: Norse's equations, spikes and gradients, masking, constant input."""
import numpy as np
import pytest
import torch
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step
from norse.torch.functional.threshold import threshold

from neuro_erc.snn import lif as lif_module
from neuro_erc.snn.lif import LIF, box_lif_sequence, surrogate_derivative_
from neuro_erc.snn.neuron import SURROGATES, NeuronParams

PARAMS = [
    NeuronParams(),
    NeuronParams(v_th=0.7, v_reset=0.3, v_leak=0.1, surrogate="super"),
    NeuronParams(tau_mem=5e-3, surrogate="triangle", alpha=0.3),
    NeuronParams(surrogate="circ", alpha=0.5),
    NeuronParams(surrogate="heavi_erfc", alpha=3.0),
]


def numpy_lif(current: np.ndarray, p: NeuronParams) -> np.ndarray:
    """The equations of neuro_erc/snn/neuron.py, written out."""
    v = np.full(current.shape[1:], p.v_leak)
    spikes = np.zeros_like(current)
    for t in range(current.shape[0]):
        v = v + p.dt / p.tau_mem * (p.v_leak - v + current[t])
        spikes[t] = v > p.v_th
        v = np.where(spikes[t] > 0, p.v_reset, v)
    return spikes


def norse_loop(current: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    """Autograd straight through Norse's step: the reference for spikes and gradients."""
    state, out = LIFBoxFeedForwardState(torch.full_like(current[0], p.v_leak)), []
    for t in range(current.shape[0]):
        z, state = lif_box_feed_forward_step(current[t], state, p.norse(), p.dt)
        out.append(z)
    return torch.stack(out)


@pytest.mark.parametrize("p", PARAMS[:3])
def test_matches_numpy_recurrence(p):
    rng = np.random.default_rng(0)
    current = rng.normal(1.0, 2.0, size=(40, 3, 7))
    spikes = box_lif_sequence(torch.from_numpy(current), p).numpy()
    np.testing.assert_array_equal(spikes, numpy_lif(current, p))
    assert 0 < spikes.mean() < 1


@pytest.mark.parametrize("segment_bytes", [1 << 24, 48])  # one segment; segments of one step
@pytest.mark.parametrize("p", PARAMS, ids=lambda p: p.surrogate)
def test_spikes_and_gradients_match_autograd_through_norse(p, segment_bytes, monkeypatch):
    monkeypatch.setattr(lif_module, "_SEGMENT_BYTES", segment_bytes)
    torch.manual_seed(0)
    current = (torch.randn(25, 2, 6, dtype=torch.float64) * 2 + 0.8).requires_grad_()
    weight = torch.randn(25, 2, 6, dtype=torch.float64)
    ref = norse_loop(current, p)
    (grad_ref,) = torch.autograd.grad((ref * weight).sum(), current)
    ours = box_lif_sequence(current, p)
    (grad,) = torch.autograd.grad((ours * weight).sum(), current)
    assert torch.equal(ours, ref)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-6, atol=1e-7)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("method", SURROGATES)
def test_surrogate_derivative_is_norses(method):
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    alpha = torch.as_tensor(2.0 if method != "triangle" else 0.3)
    (expected,) = torch.autograd.grad(threshold(x, method, alpha).sum(), x)
    scaled, factor = surrogate_derivative_(x.detach().clone(), method, float(alpha))
    torch.testing.assert_close(scaled * factor, expected)


def test_constant_current_as_expanded_view():
    """The encoder drives its LIF with one current expanded over T: same spikes and gradient."""
    p = NeuronParams()
    base = (torch.randn(4, 5, dtype=torch.float64) * 3).requires_grad_()
    expanded = box_lif_sequence(base.expand(16, 4, 5), p)
    (g1,) = torch.autograd.grad(expanded.sum(), base)
    copied = base.detach().repeat(16, 1, 1).requires_grad_()
    materialised = box_lif_sequence(copied, p)
    (g2,) = torch.autograd.grad(materialised.sum(), copied)
    assert torch.equal(expanded, materialised)
    torch.testing.assert_close(g1, g2.sum(0))


def test_constant_current_magnitude_sets_the_rate():
    """No step function on the input: a larger constant current fires more often."""
    current = torch.tensor([0.5, 1.2, 2.0, 5.0, 20.0], dtype=torch.float64).expand(32, 5)
    counts = box_lif_sequence(current, NeuronParams()).sum(0)
    assert counts.tolist() == sorted(counts.tolist()) and len(set(counts.tolist())) == 5
    assert counts[0] == 0


def test_lif_module_masks_padding_and_records_rate():
    torch.manual_seed(0)
    lif = LIF(NeuronParams(), size=4)
    mask = torch.tensor([[True, True], [True, False], [False, False]])  # [L=3, B=2]
    current = (torch.randn(10, 3, 2, 4) * 3 + 1).requires_grad_()
    spikes = lif(current, mask)
    assert spikes[:, ~mask].abs().sum() == 0
    real = spikes[:, mask]
    assert lif.last_rate == pytest.approx(real.mean().item())
    spikes.sum().backward()
    assert current.grad[:, ~mask].abs().sum() == 0 and current.grad[:, mask].abs().sum() > 0


def test_lif_module_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"expected current \[T, L, B, 4\]"):
        LIF(NeuronParams(), size=4)(torch.zeros(3, 2, 2, 5), torch.ones(2, 2, dtype=torch.bool))
