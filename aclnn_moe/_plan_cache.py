"""The plan cache under the function forms (and so under the torch ops, which call them).

A function-form call with the same operator, tensor layouts (shape, strides, offset, dtype, kind, device) and
attribute values as an earlier one reuses that call's planned ``Operation``: its repeatable executor, its
descriptors and its workspace size, as torch_npu and ATB cache executors. Addresses are never part of the key:
every call rebinds its own inputs and fresh outputs (aclSetInputTensorAddr / aclSetOutputTensorAddr by the C
index of the spec), so results stay the caller's. Outputs the operator does not return (intermediates) are
kept by the entry and reused, so they are faulted in once.

Bounded (least recently used entries are freed past ``max_size`` plans; ``ACLNN_MOE_PLAN_CACHE_SIZE``, default
64, 0 turns the cache off) and thread-safe: an entry is taken out of the cache while a call uses it, so two
threads never share one executor (a second thread with the same key plans its own, and both are kept).

    import aclnn_moe
    aclnn_moe.plan_cache.clear()          # free every cached plan
    aclnn_moe.plan_cache.set_max_size(8)  # bound (0: off)
    aclnn_moe.plan_cache.size()           # plans held now
"""
from __future__ import annotations

import collections
import os
import threading

import numpy as np

from ._errors import AclnnError
from ._operands import HOST, TORCH_CPU, Operand
from ._operation import host_in_place
from ._spec import Tensor

_REBIND_APIS = ("aclSetInputTensorAddr", "aclSetOutputTensorAddr")
_PLACEHOLDER = np.empty(0, np.uint8)  # stands for the host data of a parked entry (no caller array kept alive)


def _freeze(v):
    """A hashable, type-exact form of an attribute value (None if it has none: the call is not cached)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return (type(v), v)
    if isinstance(v, (list, tuple)):
        items = tuple(_freeze(x) for x in v)
        return None if any(i is None for i in items) else (type(v), items)
    if isinstance(v, np.generic):
        return (type(v), v.item())
    return None


class PlanCache:
    __doc__ = __doc__  # (the module's: help(aclnn_moe.plan_cache) shows how to use it)

    def __init__(self, max_size: int | None = None):
        if max_size is None:
            max_size = int(os.environ.get("ACLNN_MOE_PLAN_CACHE_SIZE", "64"))
        self._max = max(int(max_size), 0)
        self._idle: collections.OrderedDict = collections.OrderedDict()  # key -> [Operation, ...], LRU order
        self._count = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._uncacheable: set = set()
        self._generation = 0  # bumped by clear(): entries in use then are freed when their call ends

    # ---- settings
    @property
    def max_size(self) -> int:
        return self._max

    def set_max_size(self, n: int) -> None:
        """Keep at most ``n`` plans (0 turns the cache off); the least recently used are freed now."""
        if int(n) < 0:
            raise ValueError("plan_cache.set_max_size: n must be >= 0")
        with self._lock:
            self._max = int(n)
            victims = self._evict_locked()
        _free_all(victims)

    def size(self) -> int:
        """Plans held now (idle entries; the ones in use by a running call are not counted)."""
        return self._count

    def clear(self) -> None:
        """Free every cached plan (plans in use by a running call are freed when that call ends instead of
        being kept)."""
        with self._lock:
            victims = [op for ops in self._idle.values() for op in ops]
            self._idle.clear()
            self._count = 0
            self._generation += 1
        _free_all(victims)

    # ---- use
    def _acquire(self, key):
        with self._lock:
            ops = self._idle.get(key)
            if ops:
                op = ops.pop()
                if not ops:
                    del self._idle[key]
                self._count -= 1
                self.hits += 1
                return op
            self.misses += 1
            return None

    def _release(self, key, op, generation) -> None:
        _park(op)
        with self._lock:
            if self._max == 0 or generation != self._generation:
                victims = [op]
            else:
                self._idle.setdefault(key, []).append(op)
                self._idle.move_to_end(key)
                self._count += 1
                victims = self._evict_locked()
        _free_all(victims)

    def _evict_locked(self) -> list:
        victims = []
        while self._count > self._max and self._idle:
            key, ops = next(iter(self._idle.items()))
            victims.append(ops.pop(0))
            self._count -= 1
            if not ops:
                del self._idle[key]
        return victims

    def call(self, cls, kwargs: dict, stream):
        """Run ``cls(**kwargs)`` once, through a cached plan when one of the same key is idle."""
        if self._max == 0 or cls in self._uncacheable:
            return cls(**kwargs, stream=stream).run_once()
        spec = cls.spec
        tensors, parts = {}, [cls, host_in_place()]  # (staged and in-place plans differ)
        for p in spec.python_params():
            v = kwargs[p.name]
            if isinstance(p, Tensor) and v is not None:
                o = Operand(p.name, v)
                tensors[p.name] = o
                dev = o.device_obj
                parts.append((o.layout_key(), o.kind, o.format, None if dev is None else _device_of(o)))
            else:
                f = _freeze(v)
                if f is None and v is not None:
                    return cls(**kwargs, stream=stream).run_once()
                parts.append(f)
        key = tuple(parts)
        generation = self._generation
        op = self._acquire(key)
        if op is None:
            op = cls(**kwargs, stream=stream)
            try:
                op.plan()
            except BaseException:
                op.free()
                raise
            if op._executor is None:  # the backend refused a repeatable executor: nothing to cache
                return op.run_once(stream=stream)
        else:
            try:
                op._adopt_inputs(tensors)
            except BaseException:
                op.free()
                raise
        op._stream = stream
        try:
            result = op.execute(stream=stream)
        except AclnnError as e:
            op.free()  # (its state after a failed call is not trusted for the next one)
            if e.api not in _REBIND_APIS:
                raise
            # an executor that refuses address rebinding: this operator runs unplanned from now on
            self._uncacheable.add(cls)
            return cls(**kwargs, stream=stream).run_once()
        except BaseException:
            op.free()
            raise
        self._release(key, op, generation)
        return result


def _device_of(o):
    from ._runtime import operand_device

    return operand_device(o)


def _park(op) -> None:
    """Drop the entry's references to the caller's host arrays (inputs and returned outputs): a cached plan must
    not keep a caller's memory alive. Every later call gives new inputs and fresh returned outputs."""
    returned = op._returned_operands()
    for o in op._inputs:
        if o is not None and o.host is not None:
            o.host = o.source = _PLACEHOLDER
    for o in op._outputs:
        if o.kind in (HOST, TORCH_CPU) and any(o is r for r in returned):
            o.host = o.source = _PLACEHOLDER


def _free_all(ops) -> None:
    for op in ops:
        try:
            op.free()
        except Exception:  # noqa: BLE001  (one failing free must not keep the others)
            pass


plan_cache = PlanCache()


def function_call(cls, kwargs, stream):
    """What a generated function form calls (see ``_spec.build_function``)."""
    return plan_cache.call(cls, kwargs, stream)
