"""Training through torch.ops.aclnn_moe on CPU: one MoE layer's forward + backward + SGD step matches a dense torch
layer, and a two-layer MoE model trained for a few SGD steps has the loss curve and parameters of the plain-torch
model."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is optional (the `torch` extra); these tests need it")

import aclnn_moe.torch  # noqa: E402,F401

OPS = torch.ops.aclnn_moe
T, H, E, K, F = 16, 8, 4, 2, 8


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(H, E, generator=g) * 0.5).requires_grad_(True),
            (torch.randn(E, H, F, generator=g) * 0.3).requires_grad_(True),
            (torch.randn(E, F, H, generator=g) * 0.3).requires_grad_(True)]


def _experts(rows, counts, w1, w2):
    """Expert FFN over rows grouped by expert (counts rows each), with static masks (no data-dependent shapes)."""
    ends = torch.cumsum(counts, 0)
    pos = torch.arange(rows.shape[0])
    out = torch.zeros_like(rows)
    for e in range(E):
        sel = ((pos >= ends[e] - counts[e]) & (pos < ends[e])).to(rows.dtype).unsqueeze(1)
        out = out + torch.relu(rows @ w1[e]) @ w2[e] * sel
    return out


def moe_init_finalize(x, router, w1, w2):
    """gating -> init_routing_v2 (torch_npu's, V3) -> experts -> finalize_routing, the residual as skip1."""
    weights, ids, _ = OPS.moe_gating_top_k(x @ router, K, norm_type=1)
    rows, row_idx, counts, _ = OPS.moe_init_routing_v3(x, ids, expert_num=E, expert_tokens_num_flag=True,
                                                       expert_tokens_num_type=1)
    y = _experts(rows, counts, w1, w2)
    return OPS.moe_finalize_routing(y, x, None, None, weights, row_idx, None, 2)


def moe_permute_ep(x, router, w1, w2):
    """gating (softmax) -> permute_with_ep -> experts -> unpermute_with_ep weighted by the gate probs."""
    weights, ids, _ = OPS.moe_gating_top_k(x @ router, K, norm_type=0)
    permuted, sorted_idx, _ = OPS.moe_token_permute_with_ep(x, ids)
    counts = torch.nn.functional.one_hot(ids.long(), E).sum((0, 1))
    y = _experts(permuted, counts, w1, w2)
    return x + OPS.moe_token_unpermute_with_ep(y, sorted_idx, probs=weights)


def dense(x, router, w1, w2, norm_type):
    scores = torch.sigmoid(x @ router) if norm_type == 1 else torch.softmax(x @ router, -1)
    top, ids = torch.topk(scores, K, dim=1)
    if norm_type == 1:
        top = top / (top.sum(1, keepdim=True) + 1e-20)
    gate = torch.zeros(x.shape[0], E).scatter(1, ids, top)  # dense [T, E] gate, 0 for unselected experts
    out = x.clone()
    for e in range(E):
        out = out + gate[:, e:e + 1] * (torch.relu(x @ w1[e]) @ w2[e])
    return out


def _x(seed=3):
    return torch.randn(T, H, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layer,norm_type", [(moe_init_finalize, 1), (moe_permute_ep, 0)],
                         ids=["init_routing_finalize", "permute_with_ep"])
def test_one_training_step_matches_dense(layer, norm_type):
    x = _x().requires_grad_(True)
    xd = x.detach().clone().requires_grad_(True)
    p, pd = _params(0), _params(0)
    target = torch.randn(T, H, generator=torch.Generator().manual_seed(9))
    loss = ((layer(x, *p) - target) ** 2).mean()
    loss_d = ((dense(xd, *pd, norm_type) - target) ** 2).mean()
    torch.testing.assert_close(loss, loss_d, rtol=1e-5, atol=1e-6)
    loss.backward()
    loss_d.backward()
    torch.testing.assert_close(x.grad, xd.grad, rtol=1e-4, atol=1e-6)
    for a, b in zip(p, pd):
        assert a.grad is not None and a.grad.abs().sum() > 0
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    opt, opt_d = torch.optim.SGD(p, lr=0.1), torch.optim.SGD(pd, lr=0.1)
    opt.step()
    opt_d.step()
    for a, b in zip(p, pd):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


class TwoLayerMoE(torch.nn.Module):
    def __init__(self, seed, fused: bool):
        super().__init__()
        self.fused = fused
        self.l1 = torch.nn.ParameterList(_params(seed))
        self.l2 = torch.nn.ParameterList(_params(seed + 1))
        self.head = torch.nn.Linear(H, H)
        torch.nn.init.normal_(self.head.weight, std=0.3, generator=torch.Generator().manual_seed(seed + 2))
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, x):
        if self.fused:
            h = moe_init_finalize(x, *self.l1)
            h = moe_permute_ep(h, *self.l2)
        else:
            h = dense(x, *self.l1, norm_type=1)
            h = dense(h, *self.l2, norm_type=0)
        return self.head(h)


def test_two_layer_model_trains_like_plain_torch():
    x = _x(5)
    target = torch.randn(T, H, generator=torch.Generator().manual_seed(6))
    fused, plain = TwoLayerMoE(10, True), TwoLayerMoE(10, False)
    for a, b in zip(fused.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)
    opt_f = torch.optim.SGD(fused.parameters(), lr=0.05)
    opt_p = torch.optim.SGD(plain.parameters(), lr=0.05)
    losses_f, losses_p = [], []
    for _ in range(5):
        for model, opt, losses in ((fused, opt_f, losses_f), (plain, opt_p, losses_p)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses_f[-1] < losses_f[0]  # it learns
    torch.testing.assert_close(torch.tensor(losses_f), torch.tensor(losses_p), rtol=1e-4, atol=1e-6)
    for (n, a), b in zip(fused.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"{n}: {m}")
