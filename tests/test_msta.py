"""MSTA's gradient scaling is placed as in MMA's official block (before LN1, after the up-projection) and
its temporal up-projection is kaiming-initialised as the paper says. The references are computed by hand
with plain autograd on copies of the same weights, without any gradient scaling."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from composer.components.adapters.msta import MSTAParams
from composer.components.adapters.msta_module import MSTABranch, build_shared
from composer.components.registry import SiteInfo


def _site(width: int, layout: str, frames: int = 1, grid=None) -> SiteInfo:
    return SiteInfo(backbone="bb", tower="text" if layout == "text" else "visual", point="block", use="parallel",
                    layer=4, in_dim=width, out_dim=width, width=width, heads=2, layout=layout, frames=frames,
                    grid=grid, prefix=1)


def test_ln1_and_the_branch_get_one_over_lambda_of_their_true_gradient_and_the_input_its_true_one():
    torch.manual_seed(0)
    width, scale = 16, 0.005
    params = MSTAParams(dim=8, scale=scale)
    site = _site(width, "text")
    branch = MSTABranch(site, params, build_shared(params, [site])).double()
    branch.shared_layers.double()
    norm1 = nn.LayerNorm(width).double()
    with torch.no_grad():  # LN1 away from its (1, 0) start, so a wrong factor cannot hide in symmetry
        norm1.weight.normal_(1.0, 0.3)
        norm1.bias.normal_(0.0, 0.3)
    ctx = SimpleNamespace(parts=SimpleNamespace(norm1=norm1))
    x = torch.randn(3, 5, width, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 5, width, dtype=torch.float64)
    (branch(x, ctx) * weights).sum().backward()

    # by hand: lambda * Up(ReLU(Shared(ReLU(Down(LN1(x)))))) with copies of the weights, no gradient scaling
    copy = {name: p.detach().clone().requires_grad_() for name, p in
            [("ln_w", norm1.weight), ("ln_b", norm1.bias), ("down_w", branch.down.weight),
             ("shared_w", branch.shared_layers["5"].weight), ("up_w", branch.up.weight)]}
    x_ref = x.detach().clone().requires_grad_()
    h = F.layer_norm(x_ref, (width,), copy["ln_w"], copy["ln_b"], norm1.eps)
    h = torch.relu(F.linear(h, copy["down_w"], branch.down.bias))
    h = torch.relu(F.linear(h, copy["shared_w"], branch.shared_layers["5"].bias))
    out_ref = scale * F.linear(h, copy["up_w"], branch.up.bias)
    (out_ref * weights).sum().backward()

    with torch.no_grad():
        assert torch.allclose(branch(x, ctx), out_ref)
    assert torch.allclose(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12), "the residual stream gets the true gradient"
    for ours, name in [(norm1.weight, "ln_w"), (norm1.bias, "ln_b"), (branch.down.weight, "down_w"),
                       (branch.shared_layers["5"].weight, "shared_w"), (branch.up.weight, "up_w")]:
        assert torch.allclose(ours.grad, copy[name].grad / scale, rtol=1e-10, atol=1e-12), name


@pytest.mark.parametrize("layout", ["frames", "video"])
def test_the_temporal_up_projection_is_kaiming_normal_fan_out_with_zero_bias(layout):
    torch.manual_seed(0)
    width, dim, kernel = 768, 256, 3  # ViCLIP-B/16 at the paper's r: groups r, weight [768, 1, 3, 1, 1]
    params = MSTAParams(dim=dim, kernel=kernel)
    site = _site(width, layout, frames=8, grid=(2, 2))
    conv = MSTABranch(site, params, build_shared(params, [site])).temporal
    fan_out = width * kernel  # torch's fan_out of a Conv3d weight: out channels x kernel volume
    expected = (2.0 / fan_out) ** 0.5
    assert conv.weight.mean().abs() < 0.1 * expected
    assert abs(conv.weight.std().item() / expected - 1) < 0.05, (conv.weight.std().item(), expected)
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))


def test_zero_init_still_zeroes_the_temporal_up_projection():
    params = MSTAParams(dim=8, init="zero")
    site = _site(16, "frames", frames=4, grid=(2, 2))
    conv = MSTABranch(site, params, build_shared(params, [site])).temporal
    assert not conv.weight.any() and not conv.bias.any()
