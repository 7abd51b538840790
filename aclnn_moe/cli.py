"""``aclnn-moe``: info | config --cflags/--libs | selftest | demo | bench."""
from __future__ import annotations

import argparse
import os
import sys


def _info(args) -> int:
    from . import ops
    from .capi import backend, binding_include_dir, ffi, has_symbol, lib
    from ._runtime import Device, current_device

    b = backend()
    print(f"backend      {b.name}  ({b.reason})")
    print(f"include      {b.include_dir}")
    print(f"bindings     {binding_include_dir()}")
    for p in b.libraries:
        print(f"library      {p}{'' if p.is_file() else '  (missing)'}")
    current_device()
    v = [ffi.new("int32_t *") for _ in range(3)]
    if lib.aclrtGetVersion(*v) == 0:
        print(f"acl version  {v[0][0]}.{v[1][0]}.{v[2][0]}")
    if b.version():
        print(f"cann release {b.version()}")
    if has_symbol("aclsysGetCANNVersion"):
        pv = ffi.new("aclCANNPackageVersion *")
        if lib.aclsysGetCANNVersion(lib.ACL_PKG_NAME_CANN, pv) == 0:
            print(f"cann version {ffi.string(pv.version).decode()}")
    print(f"soc          {ffi.string(lib.aclrtGetSocName()).decode()}")
    print(f"devices      {Device.count()}")
    if b.name == "host":
        print(f"threads      {os.environ.get('ACLNN_MOE_NUM_THREADS') or os.cpu_count()} "
              "(ACLNN_MOE_NUM_THREADS; default: usable CPUs)")
    print("operators")
    for spec in ops.specs():
        apis = [s.api for s in (spec,) + tuple(v for v in ops.VARIANTS if v.operator == spec.operator)]
        present = [a for a in apis if has_symbol(a) and has_symbol(a + "GetWorkspaceSize")]
        state = "present" if len(present) == len(apis) else (
            "partial: " + ", ".join(present) if present else "absent")
        print(f"  {spec.operator:<28} {state:<10} {', '.join(apis)}")
    return 0


def _config(args) -> int:
    from .capi import backend

    b = backend()
    out = []
    if args.cflags:
        inc = b.include_dir
        out += [f"-I{inc}", f"-I{inc / 'aclnn'}", f"-I{inc / 'aclnnop'}"]
    if args.libs:
        dirs = sorted({str(p.parent) for p in b.libraries})
        for d in dirs:
            out += [f"-L{d}", f"-Wl,-rpath,{d}"]
        seen = set()
        for p in b.libraries:
            name = p.name[3:-3] if p.name.startswith("lib") and p.name.endswith(".so") else None
            if name and name not in seen:
                seen.add(name)
                out.append(f"-l{name}")
    if not (args.cflags or args.libs):
        print("aclnn-moe config: give --cflags and/or --libs", file=sys.stderr)
        return 2
    print(" ".join(out))
    return 0


def _selftest(args) -> int:
    from .selftest import run

    return run(seed=args.seed, verbose=args.verbose)


def _demo(args) -> int:
    from .demo import main as demo_main

    return demo_main(tokens=args.tokens, repeat=args.repeat)


def _bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(quick=args.quick, only=args.only)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="aclnn-moe", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="backend, libraries, versions and operators present").set_defaults(fn=_info)
    c = sub.add_parser("config", help="compiler flags to build a C/C++ program against the active backend")
    c.add_argument("--cflags", action="store_true")
    c.add_argument("--libs", action="store_true")
    c.set_defaults(fn=_config)
    s = sub.add_parser("selftest", help="every present operator against the numpy reference")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(fn=_selftest)
    d = sub.add_parser("demo", help="route a DeepSeek-V3-shaped batch through a whole MoE layer")
    d.add_argument("--tokens", type=int, default=512)
    d.add_argument("--repeat", type=int, default=5)
    d.set_defaults(fn=_demo)
    b = sub.add_parser("bench", help="speed and memory of the backend, as ratios measured side by side")
    b.add_argument("--quick", action="store_true", help="small shapes and few repeats")
    b.add_argument("--only", default=None, help="comma-separated benchmark names")
    b.set_defaults(fn=_bench)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
