"""numpy reference of aclnnMoeTokenPermuteGrad:

    out[t] = sum over k ascending of grad[d], d = sorted_indices[t*K + k] < rows of grad   (fp32, rounded)
"""
from .token_permute_with_ep_grad import moe_token_permute_with_ep_grad


def moe_token_permute_grad(permuted_output_grad, sorted_indices, num_topk=1, padded_mode=False):
    """Return ``out [T, H]``."""
    return moe_token_permute_with_ep_grad(permuted_output_grad, sorted_indices, num_topk=num_topk,
                                          padded_mode=padded_mode)[0]
