"""``torch.ops.aclnn_moe.<op>``: every operator of the registry as a torch operator.

``import aclnn_moe.torch`` registers them (importing ``aclnn_moe`` alone never imports torch). Each has:

* a schema made from its spec: torch_npu's argument names, order and defaults (``Tensor?`` for optional tensors,
  ``int[]?`` for int lists); outputs the operator does not produce come back as empty tensors, as op-plugin's do;
* a CPU kernel that runs the operator on the active backend (the host runtime, or CANN) through the facade, and,
  when torch_npu is present, a kernel on its PrivateUse1 key for NPU tensors;
* a fake implementation from the spec's output rules, so meta tensors, FakeTensor and ``torch.compile`` work;
* autograd where a backward is registered (``aclnn_moe.torch._autograd``).
"""
from __future__ import annotations

from ._library import NAMESPACE, op_names, register_all, schema_of

register_all()

__all__ = ["NAMESPACE", "op_names", "schema_of"]
