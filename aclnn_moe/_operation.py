"""``Operation``: the stateful form of every operator, and the engine under the function forms.

Lifecycle, modelled on nvmath-python and mapped onto the two-phase aclnn API::

    op = MoeGatingTopK(x, 8, bias=b, ...)   # checks arguments, describes operands (no C call yet)
    op.plan()                               # phase 1 + aclSetAclOpExecutorRepeatable: executor kept
    y, idx, _ = op.execute()                # phase 2 (uploads host inputs, downloads host outputs)
    op.reset_operands(x=x2)                 # same layout: host data re-staged / device address rebound
    y2, idx2, _ = op.execute()
    op.free()                               # or `with MoeGatingTopK(...) as op:`

The function forms (``moe_gating_top_k(...)``) build an Operation, execute it once without a repeatable
executor, and free it. Executors are keyed by layout (shape, strides, dtype, attributes), never by address:
addresses are rebound with aclSetInputTensorAddr / aclSetOutputTensorAddr.

Operators are declared, not written: each module of ``aclnn_moe.ops`` holds an ``OpSpec`` (see ``_spec.py``)
from which ``build_operation`` makes the subclass of ``Operation`` below and ``build_function`` the function form.
Custom logic (choosing FinalizeRouting V1 or V2) lives in a readable subclass overriding ``_choose_spec``.

Results: by default every ``execute()`` returns arrays the caller owns (fresh outputs each call). For
allocation-free serving loops, ``reuse_outputs=True`` makes every call write into the same output arrays, which
the next call then overwrites.
"""
from __future__ import annotations

import functools
import logging
import re
import sys
import threading

from ._errors import AclnnError, ArgumentError, check
from . import _npu
from ._operands import DEVICE, HOST, TORCH_NPU, Operand, check_input
from ._spec import Args, Attr, IntList, OpSpec, Output, Tensor, convert_attr, convert_int_list, prototypes
from ._runtime import (as_stream_handle, common_device, device_backed, launch_stream, on_operands_device,
                       staging_pool, workspace_pool)
from .capi import ffi, lib

_ALIGN = 64
# Host arrays described in place (aclrtHostRegister per call) instead of staged: None = when the backend is the
# host runtime, where device memory is host memory and a staging copy is pure waste; False forces staging (the
# CANN path, e.g. in tests); True forces in place.
HOST_IN_PLACE = None
_host_backend = None


def host_in_place() -> bool:
    global _host_backend
    if HOST_IN_PLACE is not None:
        return bool(HOST_IN_PLACE)
    if _host_backend is None:
        from .capi import backend

        _host_backend = backend().name == "host"
    return _host_backend
_log = logging.getLogger("aclnn_moe")
_I64_ARRAY = ffi.typeof("int64_t[]")
_VOID_P, _UINTPTR, _VOID_PP = ffi.typeof("void *"), ffi.typeof("uintptr_t"), ffi.typeof("void **")
_MAPPED = 0  # ACL_HOST_REGISTER_MAPPED (acl_rt.h)


class _Fallback(Exception):
    """The lean path (``_plan_cache._Lean``) cannot run this call (a host range that cannot be registered now):
    nothing was left bound, the general path runs it."""


class _IntArray:
    __slots__ = ("values", "handle")

    def __init__(self, values):
        self.values = [int(v) for v in values]
        self.handle = None

    def create(self):
        h = lib.aclCreateIntArray(ffi.new(_I64_ARRAY, self.values or [0]), len(self.values))
        if h == ffi.NULL:
            raise AclnnError(lib.ACLNN_ERR_PARAM_INVALID, "aclCreateIntArray", str(self.values))
        self.handle = h

    def destroy(self):
        if self.handle is not None:
            h, self.handle = self.handle, None
            check(lib.aclDestroyIntArray(h), "aclDestroyIntArray")


class Operation:
    """The stateful form of an operator: describe once, ``plan()`` once, ``execute()`` many times, ``free()``.

    Subclasses are made from an ``OpSpec`` (``spec``); their ``__init__`` has the operator's Python signature
    plus ``stream`` (the default stream of every call) and ``reuse_outputs`` (see the module doc). Raises
    ``ArgumentError`` for arguments the facade rejects, ``AclnnError`` for what the backend rejects.
    """

    spec: OpSpec | None = None
    api: str = ""

    def __init__(self, values: tuple = (), *, stream=None, reuse_outputs: bool = False):
        self._stream = stream
        self._device = None  # the operands' device: each call runs on it (_runtime.on_operands_device)
        self._inputs: list[Operand | None] = []
        self._outputs: list[Operand] = []
        self._arrays: list[_IntArray] = []
        self._args: list | None = None
        self._results = None
        self._kind = None  # the caller's array library, from the first tensor input
        self._like = None
        self._arena = None
        self._described = False
        self._executor = None
        self._workspace_size = 0
        self._oneshot = None
        self._unsynced = None  # a stream that may still be reading the staging arena
        self._ws_tensor = None  # workspace from torch_npu's allocator, kept until the next call or free()
        self._freed = False
        self._reuse_outputs = bool(reuse_outputs)
        self._executed = False
        self._named: dict = {}
        self._input_index: dict = {}
        self._output_index: dict = {}
        self._lean = None  # the record of the lean path of repeated calls (_plan_cache._Lean)
        self._lean_tried = False
        self._exec_lock = threading.Lock()
        # the caller's arguments in the Python parameter order, kept current by reset_operands: what the lean path
        # of a plan binds on each execute (None for the plan cache's entries, which get each call's own)
        self._values = tuple(values) if self.spec is not None else None
        self._owned_buffers: list = []  # device memory of intermediates the plan cache moved off the host
        if self.spec is not None:
            self._build(values)

    # ------------------------------------------------------------------ building from the spec
    def _choose_spec(self, values: dict) -> OpSpec:
        """The spec (C function) to use for these arguments; subclasses choose between variants."""
        return self.spec

    def _build(self, values: tuple) -> None:
        names = [p.name for p in self.spec.python_params()]
        by_name = dict(zip(names, values))
        spec = self.spec = self._choose_spec(by_name)
        self.api = spec.api
        a = Args()
        for p in spec.python_params():
            v = by_name[p.name]
            if isinstance(p, Tensor):
                v = self._input(p.name, v, dtypes=p.dtypes, ndim=p.ndim, optional=p.optional)
            elif isinstance(p, Attr) and not (v is None and p.default is None):
                v = convert_attr(p, v)  # an attribute defaulting to None is derived by the spec's prepare
            elif isinstance(p, IntList):
                v = convert_int_list(p, v)
            setattr(a, p.name, v)
        for p in spec.python_params():
            if isinstance(p, Tensor) and p.same_dtype is not None:
                mine, ref = getattr(a, p.name), getattr(a, p.same_dtype)
                if mine is not None and ref is not None and mine.dtype != ref.dtype:
                    raise ArgumentError(p.name, f"dtype {mine.dtype} differs from {p.same_dtype}'s {ref.dtype}")
        if spec.prepare is not None:
            spec.prepare(a)
        for p in spec.python_params():
            if isinstance(p, Attr) and p.c is not None and getattr(a, p.name) is None:
                raise ArgumentError(p.name, "must be given")
        spec.check_attrs(a)
        for name, layout in spec.output_layouts(a).items():
            setattr(a, name, None if layout is None else self._output(name, *layout))
        protos = prototypes()
        args = []
        for p in spec.bind(protos):
            v = getattr(a, p.name)
            if isinstance(p, IntList):
                v = None if v is None else self._int_array(v)
            args.append(v)
        self._args = args
        self._named = {p.name: getattr(a, p.name) for p in spec.python_params() if isinstance(p, Tensor)}
        self._input_index = spec.input_index(protos)
        self._output_index = spec.output_index(protos)
        returned = spec.returned(a)
        res = tuple(getattr(a, n) if returned[n] else None for n in spec.result_names())
        self._results = res[0] if len(res) == 1 else res
        self._a = a

    # ------------------------------------------------------------------ building blocks
    def _input(self, name, value, *, dtypes=None, ndim=None, optional=False) -> Operand | None:
        if value is None:
            if not optional:
                raise ArgumentError(name, f"{type(self).__name__} requires {name}")
            self._inputs.append(None)
            return None
        op = Operand(name, value)
        check_input(self.api, op, dtypes, ndim)
        common_device([*self._inputs, op])  # tensor operands on two devices: ArgumentError naming both
        if self._kind is None:
            self._kind, self._like = op.kind, op.device_obj
        self._inputs.append(op)
        return op

    def _output(self, name, shape, dtype) -> Operand:
        kind = self._kind or HOST
        op = Operand(name, shape=shape, dtype=dtype, like_kind=kind, device_like=self._like)
        self._outputs.append(op)
        return op

    def _int_array(self, values) -> _IntArray:
        a = _IntArray(values)
        self._arrays.append(a)
        return a

    def _translate(self, err: AclnnError) -> AclnnError:
        """The C checks name C parameters; through the facade, messages name the Python keywords. The C text
        stays available as ``.c_message``."""
        if self.spec is None or not err.message:
            return err
        mapping = {c: py for c, py in self.spec.c_to_python().items() if c != py}
        if not mapping:
            return err
        text = _c_names(mapping).sub(lambda m: mapping[m.group(0)], err.message)
        return AclnnError(err.status, err.api, text, c_message=err.message)

    # ------------------------------------------------------------------ descriptors and staging
    def _describe(self) -> None:
        """Lay staged operands out in one device arena and create every descriptor."""
        if self._described:
            return
        in_place = host_in_place()
        for o in self._inputs + self._outputs:
            if o is not None and o.staged:
                o.in_place = in_place and o.storage > 0  # (an empty view has no range to register)
        staged = [o for o in self._inputs + self._outputs if o is not None and o.staged and not o.in_place]
        total, offsets = 0, []
        for o in staged:
            offsets.append(total)
            total += (o.staging_nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
        if staged:
            self._arena = staging_pool.lease(total)
            for o, off in zip(staged, offsets):
                o.ptr = self._arena.ptr + off
        try:
            for o in self._inputs + self._outputs:
                if o is not None:
                    o.create_tensor()
            for a in self._arrays:
                a.create()
        except BaseException:
            self._destroy_descriptors()
            raise
        self._described = True

    def _settle(self) -> None:
        """Wait for work that may still read the staging arena before it is overwritten or given back."""
        if self._unsynced is not None:
            stream, self._unsynced = self._unsynced, None
            check(lib.aclrtSynchronizeStream(stream), "aclrtSynchronizeStream")

    def _upload_inputs(self) -> None:
        self._settle()
        for o in self._inputs:
            if o is not None and o.staged and o.storage and not o.in_place:
                span = o.host_span()
                check(lib.aclrtMemcpy(ffi.cast(_VOID_P, o.ptr), o.staging_nbytes, ffi.from_buffer(span),
                                      o.staging_nbytes, lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")

    def _download_outputs(self, stream) -> None:
        pending = [o for o in self._outputs if o.staged and o.storage and not o.in_place]
        if not pending:
            return
        check(lib.aclrtSynchronizeStream(stream), "aclrtSynchronizeStream")
        self._unsynced = None
        for o in pending:
            check(lib.aclrtMemcpy(ffi.from_buffer(o.host), o.staging_nbytes, ffi.cast(_VOID_P, o.ptr),
                                  o.staging_nbytes, lib.ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy")

    def _c_args(self) -> list:
        out = []
        for a in self._args:
            if isinstance(a, Operand):
                out.append(a.tensor)
            elif isinstance(a, _IntArray):
                out.append(a.handle)
            elif a is None:
                out.append(ffi.NULL)
            else:
                out.append(a)
        return out

    def _stream_handle(self, stream):
        s = stream if stream is not None else self._stream
        return as_stream_handle(launch_stream(s, [*self._inputs, *self._outputs]))  # (_runtime.launch_stream)

    # ------------------------------------------------------------------ the two phases
    def _phase1(self):
        self._describe()
        ws = ffi.new("uint64_t *")
        ex = ffi.new("aclOpExecutor **")
        name = self.api + "GetWorkspaceSize"
        try:
            check(getattr(lib, name)(*self._c_args(), ws, ex), name)
        except AclnnError as e:
            raise self._translate(e) from None
        return int(ws[0]), ex[0]

    @on_operands_device
    def plan(self) -> "Operation":
        """Run phase 1 once and keep a repeatable executor for every later execute()."""
        self._check_alive()
        if self._executor is not None:
            return self
        ws, ex = self._phase1()
        if lib.aclSetAclOpExecutorRepeatable(ex) != 0:
            # A backend that refuses repeatable executors: the executor just made is consumed by the next
            # execute(), and later calls plan per call (the degradation ATB uses).
            self._oneshot = (ws, ex)
            return self
        self._executor, self._workspace_size = ex, ws
        return self

    def execute(self, *, stream=None):
        """Run the operator; returns the results in the caller's array library. Threads sharing one Operation
        run its calls one at a time (each call rebinds the plan's descriptors)."""
        with self._exec_lock:
            return self._execute_locked(stream)

    def _execute_locked(self, stream):
        lean = self._lean
        if lean is not None and self._values is not None and lean.usable(stream):
            # a plan executed again on the host backend: the function forms' lean path, bound to the plan's own
            # operands (the same calls as below, without describing them again)
            try:
                return lean.run(self, self._values)
            except _Fallback:
                pass
        result = self._execute(stream)
        if (not self._lean_tried and self._values is not None and self._executor is not None and stream is None
                and self._stream is None and not self._reuse_outputs):
            self._lean_tried = True
            from ._plan_cache import build_lean

            self._lean = build_lean(self, self._values)
        return result

    @on_operands_device
    def _execute(self, stream):
        self._check_alive()
        if self._lean is not None:
            self._lean.stale = True  # (this path binds the lean record's staged operands elsewhere)
        stream_h = self._stream_handle(stream)
        self._describe()
        if self._executed and not self._reuse_outputs:
            self._fresh_outputs()
        self._executed = True
        self._upload_inputs()
        bound = self._bind_in_place()
        try:
            return self._execute_bound(stream_h, bound)
        finally:
            if bound is not None:
                self._unbind_in_place(bound, stream_h)

    def _execute_bound(self, stream_h, bound):
        if self._executor is not None:
            ws, ex = self._workspace_size, self._executor
        elif self._oneshot is not None:
            (ws, ex), self._oneshot = self._oneshot, None
            if bound is not None:
                self._rebind_in_place(ex)
        else:
            ws, ex = self._phase1()
        # (facade-safety) a one-shot executor is consumed by phase 2 only: an exception before it (a failed
        # workspace allocation, a KeyboardInterrupt) must destroy it, or it leaks
        try:
            if _log.isEnabledFor(logging.DEBUG):  # guarded: formatting costs more than the call on small inputs
                _log.debug("%s stream=%s workspace=%d planned=%s %s", self.api, stream_h, ws,
                           self._executor is not None,
                           ", ".join(f"{o.name}{list(o.shape)}:{o.dtype}:{o.kind}"
                                     for o in self._inputs if o is not None))
            workspace = self._workspace(ws, stream_h)
        except BaseException:
            if ex is not self._executor:
                lib.aclDestroyAclOpExecutor(ex)
            raise
        try:
            check(getattr(lib, self.api)(workspace, ws, ex, stream_h), self.api)
        except AclnnError as e:
            raise self._translate(e) from None
        if self._arena is not None:
            self._unsynced = stream_h
        self._download_outputs(stream_h)
        if bound is not None:
            self._finish_in_place(bound, stream_h)
        return self._collect()

    # ------------------------------------------------------------------ host data in place (host backend)
    def _bind_in_place(self):
        """Register the host ranges of the in-place operands (aclrtHostRegister, one registration per run of
        overlapping ranges, so views of one buffer share it) and point their descriptors at them. A range that
        cannot be registered (another call holds it, or it lies in device memory) is staged for this call.
        Returns (registered pointers, fallback leases) or None when no operand is in place."""
        ops = [o for o in self._inputs + self._outputs if o is not None and o.in_place]
        if not ops:
            return None
        spans = sorted(((o.host_address(), o.staging_nbytes, o) for o in ops), key=lambda t: t[0])
        groups, cur = [], None
        for addr, n, o in spans:
            if cur is not None and addr < cur[1]:
                cur[1] = max(cur[1], addr + n)
                cur[2].append((addr, o))
            else:
                cur = [addr, addr + n, [(addr, o)]]
                groups.append(cur)
        registered, fallback = [], []
        dev = ffi.new(_VOID_PP)
        try:
            for begin, end, members in groups:
                if lib.aclrtHostRegister(ffi.cast(_VOID_P, begin), end - begin, _MAPPED, dev):
                    if device_backed(begin, end - begin):  # an earlier result in device memory: bound as it is
                        for addr, o in members:
                            o.ptr = addr
                        continue
                    fallback.extend(o for _, o in members)
                    continue
                registered.append(begin)
                base = int(ffi.cast(_UINTPTR, dev[0]))
                for addr, o in members:
                    o.ptr = base + (addr - begin)
            lease = self._stage_for_call(fallback) if fallback else None
        except BaseException:
            for p in registered:
                lib.aclrtHostUnregister(ffi.cast(_VOID_P, p))
            raise
        bound = [registered, lease, fallback, False]  # (the last: the stream was synchronized)
        if self._executor is not None:
            self._rebind_in_place(self._executor)
        else:
            for o in ops:
                check(lib.aclSetRawTensorAddr(o.tensor, ffi.cast(_VOID_P, o.ptr)), "aclSetRawTensorAddr")
        return bound

    def _rebind_in_place(self, ex) -> None:
        for o in self._inputs:
            if o is not None and o.in_place:
                check(lib.aclSetInputTensorAddr(ex, self._input_index[o.name], o.tensor, ffi.cast(_VOID_P, o.ptr)),
                      "aclSetInputTensorAddr")
        for o in self._outputs:
            if o.in_place:
                check(lib.aclSetOutputTensorAddr(ex, self._output_index[o.name], o.tensor,
                                                 ffi.cast(_VOID_P, o.ptr)), "aclSetOutputTensorAddr")

    def _stage_for_call(self, ops):
        """Stage operands whose host range could not be registered, through a lease held for this call."""
        total, offsets = 0, []
        for o in ops:
            offsets.append(total)
            total += (o.staging_nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
        lease = staging_pool.lease(total)
        for o, off in zip(ops, offsets):
            o.ptr = lease.ptr + off
            if any(o is i for i in self._inputs):
                check(lib.aclrtMemcpy(ffi.cast(_VOID_P, o.ptr), o.staging_nbytes, ffi.from_buffer(o.host_span()),
                                      o.staging_nbytes, lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
        return lease

    def _finish_in_place(self, bound, stream_h) -> None:
        """After a successful launch: wait for the kernel (the results are read by the caller next), then copy
        back the outputs that were staged for this call."""
        check(lib.aclrtSynchronizeStream(stream_h), "aclrtSynchronizeStream")
        bound[3] = True
        for o in bound[2]:
            if any(o is x for x in self._outputs):
                check(lib.aclrtMemcpy(ffi.from_buffer(o.host), o.staging_nbytes, ffi.cast(_VOID_P, o.ptr),
                                      o.staging_nbytes, lib.ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy")

    def _unbind_in_place(self, bound, stream_h) -> None:
        registered, lease, _, synced = bound
        if (registered or lease is not None) and not synced:
            lib.aclrtSynchronizeStream(stream_h)  # (nothing may still read a range about to be released)
        for p in registered:
            check(lib.aclrtHostUnregister(ffi.cast(_VOID_P, p)), "aclrtHostUnregister")
        if lease is not None:
            staging_pool.give_back(lease)

    def _workspace(self, nbytes, stream_h):
        """Workspace from the operands' own allocator: torch_npu's caching allocator for NPU tensors (stream-
        aware, as torch_npu's own aclnn calls do), else the pool."""
        if self._kind == TORCH_NPU and nbytes:  # allocated for the launch stream, freed at the next call / free()
            self._ws_tensor = _npu.workspace(nbytes, common_device([*self._inputs, *self._outputs]),
                                             int(ffi.cast(_UINTPTR, stream_h)))
            return self._ws_tensor.cptr
        return workspace_pool.get(nbytes, stream_h)

    def run_once(self, *, stream=None):
        """Function form: execute once and free everything, whatever happens."""
        try:
            return self.execute(stream=stream)
        finally:
            self.free()

    def _collect(self):
        res = self._results
        if isinstance(res, tuple):
            return tuple(r.result() if isinstance(r, Operand) else r for r in res)
        return res.result() if isinstance(res, Operand) else res

    # ------------------------------------------------------------------ operands
    def reset_operands(self, **new) -> None:
        """Replace inputs by arrays of the same layout; the plan (executor) stays valid."""
        self._check_alive()
        names = [p.name for p in type(self).spec.python_params()]
        for name, value in new.items():
            old = self._named.get(name)
            if old is None:
                why = "is absent from this plan" if name in self._named else "is not a tensor input"
                raise ArgumentError(name, f"{why} of this {type(self).__name__}")
            index = self._input_index[name]  # the C input index, from the prototype
            fresh = Operand(name, value)
            if fresh.layout_key() != old.layout_key() or fresh.staged != old.staged:
                raise ArgumentError(name, f"layout {fresh.layout_key()} differs from the planned "
                                          f"{old.layout_key()}; create a new operation for it")
            if self._values is not None:
                pos = names.index(name)
                if type(self._values[pos]) is not type(value):  # (the lean record knows the kind it was made for)
                    self._lean, self._lean_tried = None, False
                self._values = self._values[:pos] + (value,) + self._values[pos + 1:]
            if old.staged:
                old.host, old.source = fresh.host, fresh.source
                continue
            old.ptr, old.source, old.device_obj = fresh.ptr, fresh.source, fresh.device_obj
            if self._executor is not None:
                check(lib.aclSetInputTensorAddr(self._executor, index, old.tensor, ffi.cast(_VOID_P, old.ptr)),
                      "aclSetInputTensorAddr")
            elif old.tensor is not None:
                check(lib.aclSetRawTensorAddr(old.tensor, ffi.cast(_VOID_P, old.ptr)), "aclSetRawTensorAddr")

    def _returned_operands(self) -> tuple:
        res = self._results if isinstance(self._results, tuple) else (self._results,)
        return tuple(r for r in res if isinstance(r, Operand))

    def _adopt_inputs(self, fresh: dict) -> None:
        """Take the inputs of a new call whose layouts are known to equal the planned ones (the plan cache's key
        says so): the same rebinding as reset_operands without its per-name checks."""
        for name, f in fresh.items():
            old = self._named[name]
            if old.staged:
                old.host, old.source = f.host, f.source
                continue
            old.ptr, old.source, old.device_obj = f.ptr, f.source, f.device_obj
            check(lib.aclSetInputTensorAddr(self._executor, self._input_index[name], old.tensor,
                                            ffi.cast(_VOID_P, old.ptr)), "aclSetInputTensorAddr")

    def _fresh_outputs(self) -> None:
        """New output arrays for this call, so that the arrays an earlier call returned stay the caller's.
        Outputs the operator does not return (intermediates) are reused: nobody else sees them, and a reused
        buffer is not faulted in again."""
        returned = self._returned_operands()
        for i, o in enumerate(self._outputs):
            if not any(o is r for r in returned):
                continue
            o.reallocate()
            if o.staged:
                continue
            if self._executor is not None:
                check(lib.aclSetOutputTensorAddr(self._executor, self._output_index[o.name], o.tensor,
                                                 ffi.cast(_VOID_P, o.ptr)), "aclSetOutputTensorAddr")
            else:
                check(lib.aclSetRawTensorAddr(o.tensor, ffi.cast(_VOID_P, o.ptr)), "aclSetRawTensorAddr")

    # ------------------------------------------------------------------ lifetime
    def _check_alive(self):
        if self._freed:
            raise RuntimeError(f"{type(self).__name__} was freed")

    def _destroy_descriptors(self):
        for o in self._inputs + self._outputs:
            if o is not None:
                o.destroy_tensor()
        for a in self._arrays:
            a.destroy()

    def free(self) -> None:
        """Release the executor, the descriptors and the staging memory (idempotent)."""
        if self._freed:
            return
        self._freed = True
        try:
            if self._executor is not None:
                ex, self._executor = self._executor, None
                check(lib.aclDestroyAclOpExecutor(ex), "aclDestroyAclOpExecutor")
        finally:
            self._ws_tensor = None
            self._lean = None
            self._destroy_descriptors()
            for buf in self._owned_buffers:
                buf.close()
            self._owned_buffers = []
            if self._arena is not None:
                self._settle()
                staging_pool.give_back(self._arena)
                self._arena = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()

    def __del__(self):
        # A forgotten free(): release the C objects while the runtime is still there; at interpreter shutdown
        # leak instead of calling into a runtime that may be gone.
        try:
            if not self._freed and not sys.is_finalizing():
                self.free()
        except Exception:  # noqa: BLE001  (a finalizer must not raise)
            pass


@functools.lru_cache(maxsize=None)
def _c_names_cached(key):
    return re.compile(r"\b(" + "|".join(sorted(map(re.escape, key), key=len, reverse=True)) + r")\b")


def _c_names(mapping: dict):
    return _c_names_cached(tuple(sorted(mapping)))
