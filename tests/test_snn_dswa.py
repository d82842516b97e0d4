"""DSWA: softmax weights over the real utterances of each dialogue, F + W ⊙ F."""
import torch

from neuro_erc.snn import DSWA, CoreConfig

CFG = CoreConfig(dim=16, heads=4, depth=1, mlp_ratio=2, T=6)


def test_weights_are_a_softmax_over_real_utterances():
    torch.manual_seed(0)
    dswa = DSWA(16, CFG)
    mask = torch.tensor([[True, True], [True, True], [True, False], [False, False]])  # L=4, B=2
    features = torch.randn(4, 2, 16)
    out, weights = dswa(features, mask)
    assert out.shape == weights.shape == (4, 2, 16)
    assert torch.equal(weights[~mask], torch.zeros_like(weights[~mask]))
    torch.testing.assert_close(weights.sum(0), torch.ones(2, 16))
    torch.testing.assert_close(out, features + weights * features)
    assert dswa.last_core_output.shape == (6, 4, 2, 16)


def test_given_core_output_replaces_the_core_and_widths_may_differ():
    torch.manual_seed(0)
    dswa = DSWA(10, CFG)  # core width 16, features 10: a Linear maps the readout back
    mask = torch.ones(3, 2, dtype=torch.bool)
    features = torch.randn(3, 2, 10, requires_grad=True)
    out, weights = dswa(features, mask)
    out.sum().backward()
    assert weights.shape == (3, 2, 10) and dswa.core.encoder.linear.weight.grad.abs().sum() > 0
    given = torch.zeros(6, 3, 2, 16)
    _, from_given = dswa(features, mask, core_output=given)
    assert dswa.last_core_output is not None and torch.equal(dswa.last_core_output, given)
    expected = torch.softmax(dswa.to_input(dswa.readout(given.mean(0))), dim=0)
    torch.testing.assert_close(from_given, expected)
