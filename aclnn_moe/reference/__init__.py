"""numpy reference implementations of every operator, written from the specification (spec/semantics.md).

They exist to check the backends (tests, ``aclnn-moe selftest``, benchmarks); the facade never uses them to
produce results. Each has the facade function's name and signature (without ``stream``) and returns numpy
arrays, fp16/bf16 results rounded to nearest-even from fp32 as the NPU does.
"""
from .compute_expert_tokens import moe_compute_expert_tokens
from .finalize_routing import moe_finalize_routing
from .gating_top_k import moe_gating_top_k
from .init_routing import moe_init_routing
from .init_routing_quant import moe_init_routing_quant
from .init_routing_quant_v2 import moe_init_routing_quant_v2
from .init_routing_v2 import moe_init_routing_v2
from .init_routing_v3 import moe_init_routing_v3
from .re_routing import moe_re_routing
from .token_permute_with_ep import moe_token_permute_with_ep
from .token_unpermute_with_ep import moe_token_unpermute_with_ep

__all__ = [
    "moe_compute_expert_tokens", "moe_finalize_routing", "moe_gating_top_k", "moe_init_routing",
    "moe_init_routing_quant", "moe_init_routing_quant_v2", "moe_init_routing_v2", "moe_init_routing_v3",
    "moe_re_routing", "moe_token_permute_with_ep", "moe_token_unpermute_with_ep",
]
