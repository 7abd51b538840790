"""torch_npu's MoE functions, with its exact names, argument order, keyword names and defaults (op-plugin's
``op_plugin_functions.yaml``), running on ``torch.ops.aclnn_moe`` (CPU tensors through the host runtime, or CANN).

Functions (each returns what torch_npu returns; outputs torch_npu leaves empty are empty tensors): those the
operator specs declare (``OpSpec.torch_npu``: op-plugin's schema of each torch_npu function an operator backs;
``available()`` lists them): ``npu_moe_gating_top_k``, ``npu_moe_gating_top_k_softmax``,
``npu_moe_gating_top_k_softmax_v2``, ``npu_moe_compute_expert_tokens``, ``npu_moe_finalize_routing``,
``npu_moe_re_routing``, ``npu_moe_init_routing``, ``npu_moe_init_routing_v2`` (aclnnMoeInitRoutingV3 semantics,
as torch_npu runs it), ``npu_moe_init_routing_quant``, ``npu_moe_token_permute``, ``npu_moe_token_unpermute``,
``npu_moe_token_permute_with_routing_map`` (+ ``_grad``), ``npu_moe_token_unpermute_with_routing_map`` (+ ``_grad``,
and ``_npu_moe_token_unpermute_with_routing_map``, the form MindSpeed's autograd function calls). A function whose
arguments are its operator's own is generated from the schema; the others adapt torch_npu's conventions here.
Autograd and ``torch.compile`` come from the aclnn_moe operators underneath. ``npu_moe_gating_top_k``'s third
output is always the [rows, E] float32 scores (torch_npu allocates it whatever ``out_flag`` says).

``install()`` (explicit, opt-in; nothing is installed on import) makes code written for torch_npu run unchanged on a
machine without it. Only when the real torch_npu is absent (not imported and not importable) it

* defines ``torch.ops.npu.npu_moe_*`` with op-plugin's schemas verbatim (``Library("npu", "FRAGMENT")``), each
  with a CompositeImplicitAutograd kernel calling the function here, so CPU, meta/fake tensors, autograd and
  ``torch.compile`` work as for the aclnn_moe operators;
* puts a module ``torch_npu`` in ``sys.modules`` exposing those ops as ``torch_npu.npu_moe_*`` (the aliasing
  torch_npu itself does) plus the few non-op attributes serving code touches at import or in these paths:
  ``__version__``, ``npu`` (a namespace with ``is_available() -> False``), and the dtype codes ``int4``,
  ``hifloat8``, ``float8_e5m2``, ``float8_e4m3fn`` as ints (op-plugin's custom-dtype codes are not modelled;
  any ``x_dtype`` / ``tokens_dtype`` other than None is refused with an error naming the parameter).

With the real torch_npu present, ``install()`` changes nothing and returns False.

Not covered: the ``torch.npu`` device / stream / event APIs (``torch.npu.current_device``, ``synchronize``,
``Stream``), HCCL communicator names (``get_hccl_comm_name``) and every other torch_npu operator (e.g.
``npu_grouped_matmul``, ``npu_dynamic_quant``, the distribute dispatch/combine family); ``input_ids`` / ``tid2eid``
of ``npu_moe_gating_top_k`` (aclnnMoeGatingTopKV2), the fp8/HiF8/FP4/INT4 output types, ``padded_mode=True``.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

import torch

import aclnn_moe.torch  # noqa: F401  (registers torch.ops.aclnn_moe)

from .._errors import ArgumentError

_OPS = torch.ops.aclnn_moe


def _declared() -> tuple[dict[str, str], dict[str, str]]:
    """op-plugin's schema of every torch_npu function an operator spec names (``OpSpec.torch_npu``), and the
    aclnn_moe operator backing it: the surface comes from the specs, not from a list kept here."""
    from .. import ops

    schemas, backing = {}, {}
    for spec in ops.specs():
        for schema, name in zip(spec.torch_npu, spec.torch_npu_names):
            schemas[name], backing[name] = schema, spec.function
    return schemas, backing


SCHEMAS, BACKING = _declared()


def _passthrough(name: str):
    """A function with the signature of `name`'s op-plugin schema calling its aclnn_moe operator with the same
    argument names (generated source, like the function forms, so torch.compile traces it like hand-written code)."""
    params, call, defaults = [], [], {}
    star = False
    for a in torch._C.parse_schema(SCHEMAS[name]).arguments:
        if a.kwarg_only and not star:
            params.append("*")
            star = True
        if a.has_default_value():
            defaults[a.name] = a.default_value
            params.append(f"{a.name}=_defaults[{a.name!r}]")
        else:
            params.append(a.name)
        call.append(f"{a.name}={a.name}")
    src = f"def {name}({', '.join(params)}):\n    return _op({', '.join(call)})\n"
    scope = {"_defaults": defaults, "_op": getattr(_OPS, BACKING[name])}
    exec(src, scope)  # noqa: S102  (source built from a schema of this package)
    fn = scope[name]
    fn.__doc__ = f"torch_npu's ``{SCHEMAS[name]}`` on ``torch.ops.aclnn_moe.{BACKING[name]}``."
    fn.__module__ = __name__
    return fn


def _has(op: str) -> bool:
    return hasattr(_OPS, op)


def _only_none(name, value, why):
    if value is not None:
        raise ArgumentError(name, f"only None is supported: {why}")


# ------------------------------------------------------------------------------------------------ functions


def npu_moe_finalize_routing(expanded_permuted_rows, skip1, skip2, bias, scales, expanded_src_to_dst_row,
                             export_for_source_row, drop_pad_mode=0, k=1):
    mode = 0 if drop_pad_mode is None else drop_pad_mode
    k = 1 if k is None else k
    if scales is not None:
        if k > 1 and k != scales.shape[1]:
            raise ArgumentError("k", f"must equal scales.shape[1] ({scales.shape[1]}) when scales is given, got {k}")
    elif k != 1:
        if k < 1 or expanded_src_to_dst_row.shape[0] % k:
            raise ArgumentError("k", f"must be >= 1 and divide len(expanded_src_to_dst_row) "
                                     f"({expanded_src_to_dst_row.shape[0]}), got {k}")
        # aclnnMoeFinalizeRoutingV4 without scales: K = k rows per token, each weighted 1
        scales = torch.ones((expanded_src_to_dst_row.shape[0] // k, k), dtype=expanded_permuted_rows.dtype,
                            device=expanded_permuted_rows.device)
    return _OPS.moe_finalize_routing(expanded_permuted_rows, skip1, skip2, bias, scales, expanded_src_to_dst_row,
                                     export_for_source_row, mode)


def npu_moe_gating_top_k(x, k, *, bias=None, input_ids=None, tid2eid=None, k_group=1, group_count=1,
                         group_select_mode=0, renorm=0, norm_type=0, out_flag=False, routed_scaling_factor=1.0,
                         eps=1e-20):
    why = "the token-to-expert table form (aclnnMoeGatingTopKV2) is not implemented by this library"
    _only_none("input_ids", input_ids, why)
    _only_none("tid2eid", tid2eid, why)
    # torch_npu always returns the [rows, E] float32 third output (written by the operator either way): ask for it
    return _OPS.moe_gating_top_k(x, k, bias=bias, k_group=k_group, group_count=group_count,
                                 group_select_mode=group_select_mode, renorm=renorm, norm_type=norm_type,
                                 out_flag=True, routed_scaling_factor=routed_scaling_factor, eps=eps)




def npu_moe_gating_top_k_softmax_v2(x, *, k=1, finished=None, renorm=0, output_softmax=False):
    return _OPS.moe_gating_top_k_softmax_v2(x, k=k, finished=finished, renorm=0 if renorm is None else renorm,
                                            output_softmax=bool(output_softmax))




def npu_moe_init_routing_v2(x, expert_idx, *, scale=None, offset=None, active_num=-1, expert_capacity=-1,
                            expert_num=-1, drop_pad_mode=0, expert_tokens_num_type=0, expert_tokens_num_flag=False,
                            quant_mode=-1, active_expert_range=[], row_idx_type=0, x_dtype=None):  # noqa: B006
    _only_none("x_dtype", x_dtype, "the fp8/HiF8/INT4 output types of Ascend 950 are not implemented by this library")
    return _OPS.moe_init_routing_v3(x, expert_idx, scale=scale, offset=offset, active_num=active_num,
                                    expert_capacity=expert_capacity, expert_num=expert_num,
                                    drop_pad_mode=drop_pad_mode, expert_tokens_num_type=expert_tokens_num_type,
                                    expert_tokens_num_flag=expert_tokens_num_flag, quant_mode=quant_mode,
                                    active_expert_range=list(active_expert_range or []), row_idx_type=row_idx_type)




def npu_moe_re_routing(tokens, expert_token_num_per_rank, *, per_token_scales=None, expert_token_num_type=1,
                       idx_type=0, tokens_dtype=None):
    _only_none("tokens_dtype", tokens_dtype, "its hifloat8 / float4 token types are not implemented by this library")
    return _OPS.moe_re_routing(tokens, expert_token_num_per_rank, per_token_scales=per_token_scales,
                               expert_token_num_type=expert_token_num_type, idx_type=idx_type)








def npu_moe_token_unpermute_with_routing_map(permuted_tokens, sorted_indices, restore_shape, *, probs=None,
                                             routing_map=None, drop_and_pad=False):
    return _OPS.moe_token_unpermute_with_routing_map(permuted_tokens, sorted_indices, list(restore_shape),
                                                     probs=probs, routing_map=routing_map,
                                                     drop_and_pad=drop_and_pad)[0]


def npu_moe_token_permute_with_routing_map_grad(permuted_token_out_grad, probs_grad, sorted_indices, routing_map,
                                                experts_num, tokens_num, drop_and_pad):
    # torch_npu's forward leaves permuted_probs undefined without probs, so its autograd passes None here; the
    # empty tensor our forward returns comes back as an empty gradient: the same "no probs"
    if probs_grad is not None and probs_grad.numel() == 0:
        probs_grad = None
    return _OPS.moe_token_permute_with_routing_map_grad(permuted_token_out_grad, probs_grad, sorted_indices,
                                                        routing_map, experts_num, tokens_num, drop_and_pad)


# the functions whose arguments are the operator's own: generated from their schemas
for _name in SCHEMAS:
    if _name not in globals() and _has(BACKING[_name]):
        globals()[_name] = _passthrough(_name)


def available() -> list[str]:
    """The torch_npu function names this build provides (those whose aclnn_moe operator is registered)."""
    return [n for n, op in BACKING.items() if _has(op)]


__all__ = available() + ["install", "installed", "available", "SCHEMAS"]


# --------------------------------------------------------------------------------------------------- install
_state = {"lib": None, "module": None}


def _real_torch_npu_present() -> bool:
    mod = sys.modules.get("torch_npu")
    if mod is not None:
        return not getattr(mod, "__aclnn_moe_shim__", False)
    return importlib.util.find_spec("torch_npu") is not None


def installed() -> bool:
    """True when ``install()`` has put the stand-in torch_npu in place."""
    return _state["module"] is not None


def install() -> bool:
    """Define ``torch.ops.npu.npu_moe_*`` (op-plugin's schemas) and an importable ``torch_npu`` module exposing
    them, only when the real torch_npu is absent. Returns True when the stand-in is (now) in place, False when the
    real torch_npu is there (then nothing is changed). Idempotent."""
    if installed():
        return True
    if _real_torch_npu_present():
        return False
    lib = torch.library.Library("npu", "FRAGMENT")
    mod = types.ModuleType("torch_npu", "Stand-in for torch_npu installed by aclnn_moe.torch_npu_compat.install(): "
                                        "its npu_moe_* functions on torch.ops.aclnn_moe.")
    for name in available():
        lib.define(SCHEMAS[name])
        lib.impl(name, globals()[name], "CompositeImplicitAutograd")
        setattr(mod, name, getattr(torch.ops.npu, name))
    mod.__aclnn_moe_shim__ = True
    mod.__spec__ = importlib.machinery.ModuleSpec("torch_npu", None)  # importlib.util.find_spec works on it
    mod.__version__ = f"{torch.__version__.split('+')[0]}.aclnn_moe"
    mod.npu = types.SimpleNamespace(is_available=lambda: False)
    # torch_npu's custom dtype codes, as ints (the values only need to be distinct: they are refused anyway)
    for i, dt in enumerate(("int4", "hifloat8", "float8_e5m2", "float8_e4m3fn")):
        setattr(mod, dt, 290 + i)
    sys.modules["torch_npu"] = mod
    _state.update(lib=lib, module=mod)
    return True
