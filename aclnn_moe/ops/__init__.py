"""One module per operator: its Operation class, its function form and its selftest."""
import importlib

# module name -> public names it exports; a module appears here once its operator is implemented
OP_MODULES = {
    "gating_top_k": ("moe_gating_top_k", "MoeGatingTopK"),
    "compute_expert_tokens": ("moe_compute_expert_tokens", "MoeComputeExpertTokens"),
    "re_routing": ("moe_re_routing", "MoeReRouting"),
    "finalize_routing": ("moe_finalize_routing", "MoeFinalizeRouting"),
    "init_routing": ("moe_init_routing", "MoeInitRouting"),
    "init_routing_v2": ("moe_init_routing_v2", "MoeInitRoutingV2"),
    "init_routing_v3": ("moe_init_routing_v3", "MoeInitRoutingV3"),
    "init_routing_quant": ("moe_init_routing_quant", "MoeInitRoutingQuant"),
    "init_routing_quant_v2": ("moe_init_routing_quant_v2", "MoeInitRoutingQuantV2"),
    "token_permute_with_ep": ("moe_token_permute_with_ep", "MoeTokenPermuteWithEp"),
    "token_unpermute_with_ep": ("moe_token_unpermute_with_ep", "MoeTokenUnpermuteWithEp"),
}

__all__ = []
for _mod, _names in OP_MODULES.items():
    try:
        _m = importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _e:  # during development only; the test suite checks every module imports
        if _e.name != f"{__name__}.{_mod}":
            raise
        continue
    for _n in _names:
        globals()[_n] = getattr(_m, _n)
        __all__.append(_n)


def modules():
    """The imported operator modules, in registry order."""
    import sys

    return [sys.modules[f"{__name__}.{m}"] for m in OP_MODULES if f"{__name__}.{m}" in sys.modules]
