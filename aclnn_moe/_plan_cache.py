"""The plan cache under the function forms (and so under the torch ops, which call them).

A function-form call with the same operator, tensor layouts (shape, strides, dtype, kind, device) and attribute
values as an earlier one reuses that call's planned ``Operation``: its repeatable executor, its descriptors and
its workspace size, as torch_npu and ATB cache executors. Addresses are never part of the key: every call
rebinds its own inputs and fresh outputs (aclSetInputTensorAddr / aclSetOutputTensorAddr by the C index of the
spec), so results stay the caller's. Outputs the operator does not return (intermediates) are kept by the entry
and reused, so they are faulted in once.

Bounded (least recently used entries are freed past ``max_size`` plans; ``ACLNN_MOE_PLAN_CACHE_SIZE``, default
64, 0 turns the cache off) and thread-safe: an entry is taken out of the cache while a call uses it, so two
threads never share one executor (a second thread with the same key plans its own, and both are kept).

    import aclnn_moe
    aclnn_moe.plan_cache.clear()          # free every cached plan
    aclnn_moe.plan_cache.set_max_size(8)  # bound (0: off)
    aclnn_moe.plan_cache.size()           # plans held now

The hit path is lean (issue 13: a function-form call should cost about what a plan costs). The key is read
straight off the caller's arrays (numpy ``shape/dtype/strides``, torch ``shape/dtype/stride()``, a DeviceArray's
``shape/dtype/device``) without describing them again, and on the host backend a hit runs from ``_Lean``, a
record the entry made once: for each host operand its C index, descriptor and byte size, so a call is one
``aclrtHostRegister`` + one rebind per host operand (the caller's memory, described in place), fresh outputs
from ``np.empty``, phase 2, and the unregisters. Anything unusual (a range that cannot be registered because
another call holds it, an explicit stream, a thread on another device, torch_npu) takes the general path of
``Operation.execute``, which handles every case.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading

import numpy as np

from . import _runtime
from ._errors import AclnnError, check
from ._operands import DEVICE, HOST, TORCH_CPU, Operand
from ._operation import _Fallback, host_in_place
from ._runtime import DeviceArray, DeviceBuffer, workspace_pool
from ._spec import Attr, Tensor
from .capi import ffi, lib

_REBIND_APIS = ("aclSetInputTensorAddr", "aclSetOutputTensorAddr")
_PLACEHOLDER = np.empty(0, np.uint8)  # stands for the host data of a parked entry (no caller array kept alive)
_SCALARS = frozenset((bool, int, float, str, type(None)))
_NDARRAY = np.ndarray
_VOID_P, _UINTPTR = ffi.typeof("void *"), ffi.typeof("uintptr_t")
_cast = ffi.cast
_from_buffer = ffi.from_buffer
_memmove = ctypes.memmove  # (takes int addresses: a torch tensor's data_ptr() needs no cdata)
_torch_tensor = None  # torch.Tensor, once torch is imported (never imported from here)
# modes of a lean operand: in place (numpy contiguous / strided, torch), device, empty output, staged
_NP, _NP_STRIDED, _TORCH, _DEV, _EMPTY, _STAGED, _STAGED_TORCH, _BACKED = range(8)
# Host operands up to this size (bytes, C-contiguous) are copied through device buffers of the entry, bound once,
# instead of registered in place: a numpy copy of a few KB costs less than the register / rebind / unregister
# calls (about 1.5 us per operand here); above it, in place wins (the copy grows with the size, they do not).
STAGE_MAX_BYTES = int(os.environ.get("ACLNN_MOE_STAGE_MAX_BYTES", 16 << 10))
# Returned outputs from this size up are numpy arrays over aclrtMalloc blocks (``_runtime.host_array_on_device``):
# the runtime pools large blocks with their pages faulted in, where fresh np.empty memory is faulted in again on
# every call (the cost that dominated large function-form calls). 1 MB: where the runtime starts pooling.
BACKED_MIN_BYTES = int(os.environ.get("ACLNN_MOE_BACKED_MIN_BYTES", 1 << 20))


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


class _Other(Exception):
    """A tensor argument the key does not read directly (the general key describes it)."""


class _Unfreezable(Exception):
    """An attribute value without a hashable form: the call is not cached."""


_INFO: dict = {}


def _info(cls):
    """(Python parameter names, which of them are tensors, the key function) of an Operation class, made once.

    The key function is generated for the class (like the function forms, see ``_spec.build_function``): one
    expression per parameter, no loop over the parameters and no per-value dispatch on the parameter kind; a
    tensor contributes its layout (``_tensor_key``), a scalar attribute its exact type and value, any other value
    its frozen form."""
    info = _INFO.get(cls)
    if info is None:
        ps = cls.spec.python_params()
        names = tuple(p.name for p in ps)
        flags = tuple(isinstance(p, Tensor) for p in ps)
        args = [f"a{i}" for i in range(len(ps))]
        items = []
        for i, p in enumerate(ps):
            if isinstance(p, Tensor):
                items.append(f"_tk(a{i})")
            elif isinstance(p, Attr):
                items.append(f"type(a{i}), (a{i} if type(a{i}) in _S else _fz(a{i}))")
            else:
                items.append(f"_fz(a{i})")
        unpack = f"    {', '.join(args)}, = values\n" if args else ""
        src = f"def key(values):\n{unpack}    return (_cls, _hip(), {', '.join(items)})\n"
        ns = {"_tk": _tensor_key, "_fz": _frozen, "_S": _SCALARS, "_cls": cls, "_hip": host_in_place}
        exec(src, ns)  # noqa: S102  (generated from the spec's own parameter list)
        info = _INFO[cls] = (names, flags, ns["key"])
    return info


def _torch_type():
    global _torch_tensor
    if _torch_tensor is None and "torch" in sys.modules:
        _torch_tensor = sys.modules["torch"].Tensor
    return _torch_tensor


def _tensor_key(v):
    """The layout of a tensor argument, read straight off it (raises _Other for kinds read through Operand)."""
    t = type(v)
    if t is _NDARRAY:
        return (v.shape, v.dtype, v.strides)
    if v is None:
        return None
    if t is DeviceArray:
        return (DEVICE, v.shape, v.dtype, v.device)
    tt = _torch_tensor if _torch_tensor is not None else _torch_type()
    if t is tt and tt is not None and v.is_cpu:
        return (TORCH_CPU, v.shape, v.dtype, v.stride())
    raise _Other


def _frozen(v):
    f = _freeze(v)
    if f is None:
        raise _Unfreezable
    return f


def _general_key(cls, names, flags, values):
    """The key of arguments the fast key does not read (lists, DLPack producers, torch NPU tensors...): each
    tensor described as an Operand. Returns (key or None, {name: Operand})."""
    tensors, parts = {}, [cls, host_in_place(), "general"]
    for name, is_t, v in zip(names, flags, values):
        if is_t and v is not None:
            o = Operand(name, v)
            tensors[name] = o
            dev = o.device_obj
            parts.append((o.layout_key(), o.kind, o.format, None if dev is None else _device_of(o)))
        else:
            f = _freeze(v)
            if f is None and v is not None:
                return None, tensors
            parts.append(f)
    return tuple(parts), tensors


class _Lean:
    """What a cache hit on the host backend needs, made once per entry (see the module doc)."""

    __slots__ = ("inputs", "outputs", "results", "single", "ex", "ws", "device", "dev_pp", "phase2", "api",
                 "reg", "unreg", "set_in", "set_out", "sync", "staged", "stale")

    def usable(self, stream) -> bool:
        """Whether a call can run here: the default stream, the runtime up, this thread on the record's device,
        no torch_npu (whose streams and allocator the general path handles)."""
        return (stream is None and _runtime._initialized and getattr(_runtime._thread, "device", None) == self.device
                and "torch_npu" not in sys.modules)

    def bind_staged(self) -> None:
        """Point the descriptors of the staged operands at the entry's buffers (again, after a general-path call
        of the entry bound them elsewhere)."""
        for is_input, cidx, tensor, cptr in self.staged:
            st = (self.set_in if is_input else self.set_out)(self.ex, cidx, tensor, cptr)
            if st:
                check(st, "aclSetInputTensorAddr" if is_input else "aclSetOutputTensorAddr")
        self.stale = False

    def run(self, op, values):
        """One call: bind the caller's inputs and fresh outputs in place (small ones: copied through the entry's
        buffers), phase 2, unbind. Raises _Fallback (nothing left bound) when a host range cannot be registered
        now."""
        if self.stale:
            self.bind_staged()
        reg, unreg, dev_pp, ex = self.reg, self.unreg, self.dev_pp, self.ex
        held = []
        try:
            set_in = self.set_in
            for pos, mode, cidx, tensor, nbytes, view in self.inputs:
                v = values[pos]
                if mode == _STAGED:
                    view[...] = v
                    continue
                if mode == _STAGED_TORCH:
                    _memmove(view, v.data_ptr(), nbytes)  # (view: the address of the entry's buffer)
                    continue
                if mode == _DEV:
                    st = set_in(ex, cidx, tensor, _cast(_VOID_P, v.ptr))
                else:
                    p = (_from_buffer(v) if mode == _NP else _cast(_VOID_P, v.data_ptr()) if mode == _TORCH
                         else _cast(_VOID_P, v.__array_interface__["data"][0]))
                    if not reg(p, nbytes, 0, dev_pp):
                        held.append(p)
                        st = set_in(ex, cidx, tensor, dev_pp[0])
                    elif _runtime.device_backed(int(_cast(_UINTPTR, p)), nbytes):
                        st = set_in(ex, cidx, tensor, p)  # an earlier result in device memory: bound as it is
                    else:
                        raise _Fallback
                if st:
                    check(st, "aclSetInputTensorAddr")
            outs = []
            set_out = self.set_out
            for cidx, tensor, shape, dtype, nbytes, mode, view, tview in self.outputs:
                if mode == _STAGED:
                    outs.append(view)  # (copied out after the kernel)
                elif mode == _DEV:
                    a = _runtime.new_device_array(shape, dtype, nbytes, self.device)
                    outs.append(a)
                    st = set_out(ex, cidx, tensor, a.buffer.cptr)
                    if st:
                        check(st, "aclSetOutputTensorAddr")
                elif mode == _EMPTY:
                    outs.append(np.empty(shape, dtype))
                elif mode == _BACKED:
                    a = _runtime.host_array_on_device(shape, dtype, nbytes)
                    outs.append(a)
                    st = set_out(ex, cidx, tensor, _from_buffer(a))
                    if st:
                        check(st, "aclSetOutputTensorAddr")
                else:
                    a = np.empty(shape, dtype)
                    p = _from_buffer(a)
                    if reg(p, nbytes, 0, dev_pp):
                        raise _Fallback
                    held.append(p)
                    outs.append(a)
                    st = set_out(ex, cidx, tensor, dev_pp[0])
                    if st:
                        check(st, "aclSetOutputTensorAddr")
            ws = self.ws
            workspace = workspace_pool.get_default(ws, self.device) if ws else ffi.NULL
            st = self.phase2(workspace, ws, ex, ffi.NULL)
            if st:
                try:
                    check(st, self.api)
                except AclnnError as e:
                    raise op._translate(e) from None
            st = self.sync(ffi.NULL)  # (the results are read next; nothing may read a range about to be released)
            if st:
                check(st, "aclrtSynchronizeStream")
        except BaseException:
            for p in held:
                unreg(p)
            raise
        bad = 0
        for p in held:
            bad = unreg(p) or bad
        if bad:
            check(bad, "aclrtHostUnregister")
        for i, o in enumerate(self.outputs):
            if o[5] == _STAGED:
                outs[i] = outs[i].copy()  # (the caller's own array, never the entry's buffer)
            if o[7] is not False:  # a torch output: the numpy array viewed as a tensor
                outs[i] = _to_torch(outs[i], o[7])
        if self.single:
            i = self.results[0]
            return None if i is None else outs[i]
        return tuple(None if i is None else outs[i] for i in self.results)


def _to_torch(a, view):
    t = sys.modules["torch"].from_numpy(a)  # (torch is imported: the call had torch tensors)
    return t if view is None else t.view(view)


def _staging_view(op, nbytes, dtype, shape):
    """Device memory of the entry for a small operand, and a numpy view of it (host backend: device memory is
    host memory)."""
    buf = DeviceBuffer(nbytes)
    op._owned_buffers.append(buf)
    view = np.frombuffer(ffi.buffer(ffi.cast("char *", buf.cptr), nbytes), dtype=dtype).reshape(shape)
    return buf, view


def build_lean(op, values):
    """The lean record of an entry (or a plan) just executed with ``values`` (its operands still hold them), or
    None when some operand needs the general path every call (a converted copy, a staging arena, torch NPU...)."""
    names = _info(type(op))[0]
    if (not host_in_place() or op._executor is None or op._oneshot is not None or _copies_through_arena(op)
            or "torch_npu" in sys.modules or op._kind not in (None, HOST, TORCH_CPU, DEVICE)):
        return None
    protos_in, protos_out = op._input_index, op._output_index
    ex = op._executor
    inputs, staged = [], []
    for pos, name in enumerate(names):
        if name not in op._named:
            continue  # not a tensor parameter
        o, v = op._named[name], values[pos]
        if o is None:
            continue
        if o.kind == DEVICE:
            inputs.append((pos, _DEV, protos_in[name], o.tensor, 0, None))
        elif o.kind == HOST and type(v) is _NDARRAY and o.host is v:
            if not o.in_place:
                if o.storage:
                    return None
                continue
            if v.flags.c_contiguous and o.staging_nbytes == v.nbytes and v.nbytes <= STAGE_MAX_BYTES:
                buf, view = _staging_view(op, v.nbytes, v.dtype, v.shape)
                staged.append((True, protos_in[name], o.tensor, buf.cptr))
                inputs.append((pos, _STAGED, protos_in[name], o.tensor, v.nbytes, view))
            else:
                mode = _NP if v.flags.c_contiguous else _NP_STRIDED
                inputs.append((pos, mode, protos_in[name], o.tensor, o.staging_nbytes, None))
        elif o.kind == TORCH_CPU and type(v) is _torch_type() and o.host is not None:
            if o.storage and o.host.__array_interface__["data"][0] != v.data_ptr():
                return None  # described through a copy
            if o.in_place and o.host.flags.c_contiguous and o.staging_nbytes == o.host.nbytes <= STAGE_MAX_BYTES:
                buf, _ = _staging_view(op, o.staging_nbytes, o.host.dtype, o.shape)
                staged.append((True, protos_in[name], o.tensor, buf.cptr))
                inputs.append((pos, _STAGED_TORCH, protos_in[name], o.tensor, o.staging_nbytes, buf.ptr))
            elif o.in_place:
                inputs.append((pos, _TORCH, protos_in[name], o.tensor, o.staging_nbytes, None))
            elif o.storage:
                return None
        else:
            return None
    returned = op._returned_operands()
    outputs, index = [], {}
    device = None
    for o in op._outputs:
        if not any(o is r for r in returned):
            if o.in_place:  # an intermediate: device memory of the entry, bound once (no registration per call)
                buf = DeviceBuffer(o.staging_nbytes)
                op._owned_buffers.append(buf)
                check(lib.aclSetOutputTensorAddr(ex, protos_out[o.name], o.tensor, buf.cptr),
                      "aclSetOutputTensorAddr")
                o.host = o.source = None
                o.in_place = False
                o.kind, o.ptr = DEVICE, buf.ptr
                o.device_obj = DeviceArray(o.shape, o.dtype, buf)
            elif o.staged and o.storage:
                return None
            continue
        index[id(o)] = len(outputs)
        cidx = protos_out[o.name]
        if o.kind == DEVICE:
            device = o.device_obj.device
            outputs.append((cidx, o.tensor, o.shape, o.device_obj.dtype, o.staging_nbytes, _DEV, None, False))
            continue
        if o.kind not in (HOST, TORCH_CPU) or not (o.in_place or not o.storage):
            return None
        dtype, tview = o.host.dtype, False  # tview: False for numpy results, else the torch view dtype or None
        if o.kind == TORCH_CPU:
            tview = None
            if o.dtype == "bfloat16":  # (torch.from_numpy knows no bfloat16: int16 storage, viewed)
                import torch

                dtype, tview = np.dtype(np.int16), torch.bfloat16
        view = None
        if not o.in_place:
            mode = _EMPTY
        elif o.staging_nbytes <= STAGE_MAX_BYTES:
            mode = _STAGED
            buf, view = _staging_view(op, o.staging_nbytes, dtype, o.shape)
            staged.append((False, cidx, o.tensor, buf.cptr))
        elif o.staging_nbytes >= BACKED_MIN_BYTES:
            mode = _BACKED
        else:
            mode = _NP
        outputs.append((cidx, o.tensor, o.shape, dtype, o.staging_nbytes, mode, view, tview))
    res = op._results if isinstance(op._results, tuple) else (op._results,)
    if any(r is not None and not isinstance(r, Operand) for r in res):
        return None
    for o in op._inputs:
        if o is not None and o.kind == DEVICE and o.device_obj is not None and o.device_obj.device is not None:
            if device is None:
                device = o.device_obj.device
            elif o.device_obj.device != device:
                return None
    lean = _Lean()
    lean.inputs, lean.outputs = tuple(inputs), tuple(outputs)
    lean.results = tuple(index.get(id(r)) if isinstance(r, Operand) else None for r in res)
    lean.single = not isinstance(op._results, tuple)
    lean.ex, lean.ws = ex, op._workspace_size
    lean.device = device if device is not None else _runtime.current_device_id()
    lean.dev_pp = ffi.new("void **")
    lean.api = op.api
    lean.phase2 = getattr(lib, op.api)
    lean.reg, lean.unreg = lib.aclrtHostRegister, lib.aclrtHostUnregister
    lean.set_in, lean.set_out = lib.aclSetInputTensorAddr, lib.aclSetOutputTensorAddr
    lean.sync = lib.aclrtSynchronizeStream
    lean.staged = tuple(staged)
    lean.bind_staged()
    return lean


def _copies_through_arena(op) -> bool:
    """Whether some operand is copied through the op's staging arena on every call (empty operands sit there
    too, but nothing is copied for them: the lean path can leave them bound as they are)."""
    return op._arena is not None and any(o is not None and o.staged and not o.in_place and o.storage
                                         for o in op._inputs + op._outputs)


class _Slot:
    """The idle plans of one key: ``ops`` (used last in, first out), when the key was last used (``stamp``, for
    LRU eviction), and whether the slot is still the cache's (a call holds its slot across the call, so a hit
    costs one dict lookup, not four)."""

    __slots__ = ("ops", "stamp", "alive")

    def __init__(self):
        self.ops, self.stamp, self.alive = [], 0, True


class PlanCache:
    __doc__ = __doc__  # (the module's: help(aclnn_moe.plan_cache) shows how to use it)

    def __init__(self, max_size: int | None = None):
        if max_size is None:
            max_size = int(os.environ.get("ACLNN_MOE_PLAN_CACHE_SIZE", "64"))
        self._max = max(int(max_size), 0)
        self._slots: dict = {}  # key -> _Slot
        self._count = 0  # idle plans over all slots
        self._clock = 0
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
            victims = []
            for slot in self._slots.values():
                victims += slot.ops
                slot.ops, slot.alive = [], False
            self._slots = {}
            self._count = 0
            self._generation += 1
        _free_all(victims)

    # ---- use
    def _release(self, key, slot, op, generation, park=True) -> None:
        """Give a plan back after a successful call (freed instead when the cache was cleared meanwhile)."""
        if park:
            _park(op)
        victims = ()
        with self._lock:
            if self._max == 0 or generation != self._generation:
                victims = [op]
            else:
                if slot is None or not slot.alive:
                    slot = self._slots.get(key)
                    if slot is None:
                        if len(self._slots) >= 2 * self._max + 16:
                            self._sweep_locked()
                        slot = self._slots[key] = _Slot()
                slot.ops.append(op)
                self._clock += 1
                slot.stamp = self._clock
                self._count += 1
                if self._count > self._max:
                    victims = self._evict_locked()
        if victims:
            _free_all(victims)

    def _sweep_locked(self) -> None:
        """Forget the slots without idle plans (a call holding one gives its plan back through a new slot)."""
        for key in [k for k, s in self._slots.items() if not s.ops]:
            self._slots.pop(key).alive = False

    def _evict_locked(self) -> list:
        victims = []
        while self._count > self._max:
            held = [(k, s) for k, s in self._slots.items() if s.ops]
            if not held:
                break
            key, slot = min(held, key=lambda ks: ks[1].stamp)
            victims.append(slot.ops.pop(0))
            self._count -= 1
            if not slot.ops:
                self._slots.pop(key).alive = False
        return victims

    def call(self, cls, kwargs: dict, stream):
        """Run ``cls(**kwargs)`` once, through a cached plan when one of the same key is idle."""
        names = _info(cls)[0]
        return self.call_values(cls, tuple(kwargs[n] for n in names), stream)

    def call_values(self, cls, values: tuple, stream):
        """``call`` with the arguments as a tuple in the Python parameter order (what function forms pass)."""
        if self._max == 0 or cls in self._uncacheable:
            return self._unplanned(cls, values, stream)
        names, flags, key_of = _INFO.get(cls) or _info(cls)
        tensors = None
        try:
            key = key_of(values)
        except _Other:
            key, tensors = _general_key(cls, names, flags, values)
        except _Unfreezable:
            key = None
        if key is None:
            return self._unplanned(cls, values, stream)
        generation = self._generation
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and slot.ops:
                op = slot.ops.pop()
                self._count -= 1
                self.hits += 1
            else:
                op = None
                self.misses += 1
        if op is None:
            return self._miss(cls, names, values, stream, key, slot, generation)
        lean = op._lean
        if lean is not None and lean.usable(stream):
            try:
                result = lean.run(op, values)
            except _Fallback:
                pass  # (nothing was left bound: the general path below runs the call)
            except AclnnError as e:
                return self._failed(cls, values, stream, op, e)
            except BaseException:
                op.free()
                raise
            else:
                self._release(key, slot, op, generation, park=False)
                return result
        if lean is not None:
            lean.stale = True  # (the general path binds the staged operands' descriptors elsewhere)
        if tensors is None:
            tensors = {n: Operand(n, v) for n, is_t, v in zip(names, flags, values) if is_t and v is not None}
        try:
            op._adopt_inputs(tensors)
        except BaseException:
            op.free()
            raise
        op._stream = stream
        try:
            result = op.execute(stream=stream)
        except AclnnError as e:
            return self._failed(cls, values, stream, op, e)
        except BaseException:
            op.free()
            raise
        self._release(key, slot, op, generation)
        return result

    def _miss(self, cls, names, values, stream, key, slot, generation):
        op = cls(**dict(zip(names, values)), stream=stream)
        op._values = None  # (an entry binds each call's own arguments, never the first call's)
        try:
            op.plan()
        except BaseException:
            op.free()
            raise
        if op._executor is None:  # the backend refused a repeatable executor: nothing to cache
            return op.run_once(stream=stream)
        try:
            result = op.execute(stream=stream)
            op._lean = build_lean(op, values)
        except AclnnError as e:
            return self._failed(cls, values, stream, op, e)
        except BaseException:
            op.free()
            raise
        self._release(key, slot, op, generation)
        return result

    def _failed(self, cls, values, stream, op, e):
        op.free()  # (its state after a failed call is not trusted for the next one)
        if e.api not in _REBIND_APIS:
            raise e
        # an executor that refuses address rebinding: this operator runs unplanned from now on
        self._uncacheable.add(cls)
        return self._unplanned(cls, values, stream)

    @staticmethod
    def _unplanned(cls, values, stream):
        return cls(**dict(zip(_info(cls)[0], values)), stream=stream).run_once()


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


def function_call(cls, values: tuple, stream):
    """What a generated function form calls (see ``_spec.build_function``)."""
    return plan_cache.call_values(cls, values, stream)
