"""numpy reference implementations of every operator, written from the specification (spec/semantics.md).

They exist to check the backends (tests, ``aclnn-moe selftest``, benchmarks); the facade never uses them to
produce results. Each has the facade function's name and signature (without ``stream``) and returns numpy
arrays, fp16/bf16 results rounded to nearest-even from fp32 as the NPU does.
"""
from .compute_expert_tokens import moe_compute_expert_tokens
from .finalize_routing import moe_finalize_routing
from .gating_top_k import moe_gating_top_k
from .init_routing import moe_init_routing
from .init_routing_v2 import moe_init_routing_v2
from .re_routing import moe_re_routing
from .token_permute_with_ep import moe_token_permute_with_ep
from .token_unpermute_with_ep import moe_token_unpermute_with_ep
from .finalize_routing_v2_grad import moe_finalize_routing_v2_grad
from .init_routing_v2_grad import moe_init_routing_v2_grad
from .token_permute_grad import moe_token_permute_grad
from .token_permute_with_ep_grad import moe_token_permute_with_ep_grad
from .token_unpermute_grad import moe_token_unpermute_grad
from .token_unpermute_with_ep_grad import moe_token_unpermute_with_ep_grad

__all__ = [
    "moe_compute_expert_tokens", "moe_finalize_routing", "moe_gating_top_k", "moe_init_routing",
    "moe_init_routing_v2", "moe_re_routing", "moe_token_permute_with_ep", "moe_token_unpermute_with_ep",
    "moe_token_permute_with_ep_grad", "moe_token_unpermute_with_ep_grad", "moe_token_permute_grad",
    "moe_token_unpermute_grad", "moe_init_routing_v2_grad", "moe_finalize_routing_v2_grad",
]
