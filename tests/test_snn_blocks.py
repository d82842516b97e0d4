"""Masked batch norm: statistics over real rows only, exact gradients, eval-mode folding."""
import pytest
import torch

from neuro_erc.snn.blocks import MaskedBatchNorm1d, fold_batchnorm


def reference_bn(x, real, weight, bias, eps):
    """Plain autograd batch norm over the real rows."""
    xr = x[real]
    mean, var = xr.mean(0), xr.var(0, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias, mean, xr.var(0, unbiased=True)


@pytest.mark.parametrize("padded", [False, True])
def test_training_forward_backward_match_autograd(padded):
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 5).double()
    bn = MaskedBatchNorm1d(5, momentum=0.5).double()
    torch.nn.init.uniform_(bn.weight, 0.5, 2.0)
    torch.nn.init.uniform_(bn.bias, -1.0, 1.0)
    s = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    real = torch.rand(40) > 0.3 if padded else torch.ones(40, dtype=torch.bool)
    upstream = torch.randn(40, 5, dtype=torch.float64) * real[:, None]  # the LIF zeroes padding grads
    params = [s, lin.weight, lin.bias, bn.weight, bn.bias]

    y = bn(lin(s), real)
    grads = torch.autograd.grad((y * upstream).sum(), params)
    y_ref, mean, var_unbiased = reference_bn(lin(s), real, bn.weight, bn.bias, bn.eps)
    grads_ref = torch.autograd.grad((y_ref * upstream).sum(), params)

    torch.testing.assert_close(y[real], y_ref[real])
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref)
    torch.testing.assert_close(bn.running_mean, 0.5 * mean.detach())
    torch.testing.assert_close(bn.running_var, 0.5 + 0.5 * var_unbiased.detach())


def test_padding_rows_do_not_enter_the_statistics():
    bn = MaskedBatchNorm1d(2)
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [1e6, -1e6]])
    y = bn(x.clone(), torch.tensor([True, True, False]))
    torch.testing.assert_close(y[:2], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-4, rtol=0)


def test_eval_mode_folds_into_the_linear():
    torch.manual_seed(0)
    lin, bn = torch.nn.Linear(4, 3).double(), MaskedBatchNorm1d(3).double()
    for _ in range(3):
        bn(lin(torch.randn(20, 4, dtype=torch.float64)).detach(), torch.ones(20, dtype=torch.bool))
    bn.eval()
    x = torch.randn(6, 4, dtype=torch.float64)
    W, b = fold_batchnorm(lin, bn)
    torch.testing.assert_close(x @ W.T + b, bn(lin(x), torch.ones(6, dtype=torch.bool)))
