"""numpy reference of aclnnMoeTokenUnpermuteGrad: MoeTokenUnpermuteWithEpGrad with the window [0, rows of
permuted_tokens)."""
from .token_unpermute_with_ep_grad import moe_token_unpermute_with_ep_grad


def moe_token_unpermute_grad(permuted_tokens, unpermuted_tokens_grad, sorted_indices, *, probs=None,
                             padded_mode=False, restore_shape=None):
    """Return ``(permuted_tokens_grad [rows, H], probs_grad [T, K] or None)``."""
    return moe_token_unpermute_with_ep_grad(unpermuted_tokens_grad, sorted_indices, permuted_tokens=permuted_tokens,
                                            probs=probs, padded_mode=padded_mode, restore_shape=restore_shape)
