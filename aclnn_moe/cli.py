"""The ``aclnn-moe`` command (also ``python -m aclnn_moe``): info, config, selftest, demo and bench.

Every subcommand is a function taking the parsed arguments and returning the exit status: 0 on success, 1 when
the work itself failed (a selftest failure, an unusable backend), 2 for a usage error (argparse's own).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Mapping, Sequence

from ._version import __version__

__all__ = ["main", "build_parser", "host_threads"]

MODEL_NAMES = ("dsv3", "qwen3", "mixtral")  # aclnn_moe._bench_cases.MODELS (kept here: no import for --help)

# native/common/parallel.c: the pool never grows past this many threads
_HOST_MAX_THREADS = 256

_DESCRIPTION = """\
Huawei Ascend's aclnn Mixture-of-Experts operators from Python, on a real CANN install or on the embedded
host runtime (a CPU implementation of the same C ABI)."""

_EPILOG = """\
environment:
  ACLNN_MOE_BACKEND       host or cann: force a backend (default: CANN when found, else host)
  ASCEND_HOME_PATH        the CANN install to use (set by CANN's set_env.sh)
  ACLNN_MOE_NUM_THREADS   kernel threads of the host runtime (default: the CPUs this process may use)
  ACLNN_MOE_DEVICE        device id the Python API binds to (default 0)
The README lists every variable.

examples:
  aclnn-moe info --json
  aclnn-moe selftest
  g++ prog.cpp $(aclnn-moe config --cflags) $(aclnn-moe config --libs)
  aclnn-moe bench --quick --only gating_top_k --plot bench.png"""


# ---- argument types: each rejects a bad value with argparse's exit status 2 and says why ----------------------

def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in "invalid <type> value" messages
    return parse


# ---- info --------------------------------------------------------------------------------------------------

def _c_atoi(text: str) -> int:
    """C's atoi() as glibc implements it ((int) strtol(text, NULL, 10)): leading white space, an optional sign,
    then digits up to the first non-digit; no digits gives 0; the long is clamped, then truncated to int."""
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    sign = 1
    if i < n and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    j = i
    while j < n and "0" <= text[j] <= "9":
        j += 1
    if j == i:
        return 0
    value = max(-(1 << 63), min(sign * int(text[i:j]), (1 << 63) - 1))
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_threads(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The size of the host runtime's kernel thread pool and where it comes from.

    Mirrors ``pool_init`` in native/common/parallel.c: ``atoi(ACLNN_MOE_NUM_THREADS)`` when that is positive,
    otherwise the CPUs in this process's affinity mask (``sched_getaffinity``), clamped to [1, 256].
    """
    raw = (os.environ if env is None else env).get("ACLNN_MOE_NUM_THREADS")
    n = _c_atoi(raw) if raw is not None else 0
    if n > 0:
        source = f"ACLNN_MOE_NUM_THREADS={raw}"
    else:
        n = _usable_cpus()
        source = "the CPUs this process may use"
        if raw is not None:
            source += f"; ACLNN_MOE_NUM_THREADS={raw!r} is not a positive integer"
    if n > _HOST_MAX_THREADS:
        n, source = _HOST_MAX_THREADS, source + f"; capped at {_HOST_MAX_THREADS}"
    return max(n, 1), source


def _info_data() -> dict[str, Any]:
    from . import ops
    from ._runtime import Device, current_device
    from .capi import backend, binding_include_dir, ffi, has_symbol, lib

    b = backend()
    data: dict[str, Any] = {
        "version": __version__,
        "backend": b.name,
        "reason": b.reason,
        "include_dir": str(b.include_dir),
        "binding_include_dir": str(binding_include_dir()),
        "libraries": [{"path": str(p), "present": p.is_file()} for p in b.libraries],
    }
    current_device()
    v = [ffi.new("int32_t *") for _ in range(3)]
    data["acl_version"] = f"{v[0][0]}.{v[1][0]}.{v[2][0]}" if lib.aclrtGetVersion(*v) == 0 else None
    data["cann_release"] = b.version()
    data["cann_version"] = None
    if has_symbol("aclsysGetCANNVersion"):
        pv = ffi.new("aclCANNPackageVersion *")
        if lib.aclsysGetCANNVersion(lib.ACL_PKG_NAME_CANN, pv) == 0:
            data["cann_version"] = ffi.string(pv.version).decode()
    data["soc"] = ffi.string(lib.aclrtGetSocName()).decode()
    data["devices"] = Device.count()
    if b.name == "host":
        n, source = host_threads()
        data["threads"] = {"count": n, "source": source}
    else:
        data["threads"] = None
    operators = []
    for spec in ops.specs():
        apis = [s.api for s in (spec,) + tuple(v for v in ops.VARIANTS if v.operator == spec.operator)]
        present = [a for a in apis if has_symbol(a) and has_symbol(a + "GetWorkspaceSize")]
        state = "present" if len(present) == len(apis) else ("partial" if present else "absent")
        operators.append({"name": spec.operator, "state": state, "apis": apis, "present": present})
    data["operators"] = operators
    return data


def _print_info(data: dict[str, Any], backend_lines: Sequence[str]) -> None:
    for line in backend_lines:  # capi.backend_report: which backend and why, its libraries and how each was opened
        print(line)
    print(f"version      aclnn-moe {data['version']}")
    if data["acl_version"]:
        print(f"acl version  {data['acl_version']}")
    if data["cann_release"]:
        print(f"cann release {data['cann_release']}")
    if data["cann_version"]:
        print(f"cann version {data['cann_version']}")
    print(f"soc          {data['soc']}")
    print(f"devices      {data['devices']}")
    if data["threads"]:
        print(f"threads      {data['threads']['count']} ({data['threads']['source']})")
    print("operators")
    for op in data["operators"]:
        state = op["state"] if op["state"] != "partial" else "partial: " + ", ".join(op["present"])
        print(f"  {op['name']:<28} {state:<10} {', '.join(op['apis'])}")


def _backend_failure(command: str, err: BaseException, as_json: bool) -> int:
    """An unusable backend (no host libraries, a CANN library that does not load): say so, no traceback."""
    message = f"{type(err).__name__}: {err}"
    hint = ("source CANN's set_env.sh, or set ACLNN_MOE_BACKEND=host to use the embedded host runtime; "
            "`pip install .` builds it")
    if as_json:
        print(json.dumps({"error": message, "hint": hint}, indent=2))
    print(f"aclnn-moe {command}: cannot use the backend: {message}\n  ({hint})", file=sys.stderr)
    return 1


def _info(args: argparse.Namespace) -> int:
    from .capi import backend_report

    backend_lines: list[str] = []
    if not backend_report(out=backend_lines.append):  # what failed and the way out went to stderr
        if args.json:
            print(json.dumps({"error": "the backend cannot be used (see stderr)"}, indent=2))
        return 1
    try:
        data = _info_data()
    except (OSError, RuntimeError) as e:  # BackendNotFoundError, a library dlopen() refuses
        return _backend_failure("info", e, args.json)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_info(data, backend_lines)
    return 0


# ---- config ------------------------------------------------------------------------------------------------

def _config(args: argparse.Namespace) -> int:
    from .capi import backend

    if not (args.cflags or args.libs):
        print("aclnn-moe config: give --cflags and/or --libs", file=sys.stderr)
        return 2
    b = backend()
    out = []
    if args.cflags:
        inc = b.include_dir
        out += [f"-I{inc}", f"-I{inc / 'aclnn'}", f"-I{inc / 'aclnnop'}"]
    if args.libs:
        for d in sorted({str(p.parent) for p in b.libraries}):
            out += [f"-L{d}", f"-Wl,-rpath,{d}"]
        seen = set()
        for p in b.libraries:
            name = p.name[3:-3] if p.name.startswith("lib") and p.name.endswith(".so") else None
            if name and name not in seen:
                seen.add(name)
                out.append(f"-l{name}")
    print(" ".join(out))
    return 0


# ---- selftest / demo / bench ----------------------------------------------------------------------------------

def _selftest(args: argparse.Namespace) -> int:
    from .selftest import run

    return run(seed=args.seed, verbose=args.verbose, as_json=args.json)


def _demo(args: argparse.Namespace) -> int:
    if args.ep is not None:  # --ep N: N real processes (aclnn_moe.distributed, needs torch)
        from .demo import main_ep

        return main_ep(args.ep, tokens=args.tokens, repeat=min(args.repeat, 3))
    from .demo import main as demo_main

    return demo_main(tokens=args.tokens, repeat=args.repeat)


def _bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(quick=args.quick, only=args.only, as_json=args.json, plot=args.plot, repeat=args.repeat,
                      progress=args.progress, model=args.model)


def _check_bench_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks that need more than one option: --only names exist in the chosen tier, --plot can draw."""
    from .bench import case_names, matches

    if args.only is not None:
        names = case_names(args.quick, args.model)
        wanted = [w.strip() for w in args.only.split(",")]
        unknown = [w for w in wanted if not w or not any(matches(w, n) for n in names)]
        if unknown:
            families = sorted({n.split(" ")[0] for n in names})
            parser.error(f"argument --only: no benchmark case matches {', '.join(repr(u) for u in unknown)}; "
                         f"give parts of case names, e.g. {', '.join(families)}")
        args.only = wanted
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("argument --plot: needs matplotlib (pip install 'aclnn-moe[bench]')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``aclnn-moe`` (every option with its help)."""
    p = argparse.ArgumentParser(prog="aclnn-moe", description=_DESCRIPTION, epilog=_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"aclnn-moe {__version__}",
                   help="print the package version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    i = sub.add_parser("info", help="backend, libraries, versions, threads and the operators present",
                       description="Show which backend is active and why, its libraries and versions, the "
                                   "kernel threads of the host runtime, and which operators it exports.")
    i.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    i.set_defaults(fn=_info)

    c = sub.add_parser("config", help="compiler flags to build a C/C++ program against the active backend",
                       description="Print compiler and linker flags for a C/C++ program using the aclnn API, "
                                   "e.g. g++ prog.cpp $(aclnn-moe config --cflags) $(aclnn-moe config --libs)")
    c.add_argument("--cflags", action="store_true", help="include flags (-I) for acl/, aclnn/ and aclnnop/")
    c.add_argument("--libs", action="store_true",
                   help="linker flags (-L, -Wl,-rpath, -l) for the backend's libraries")
    c.set_defaults(fn=_config)

    s = sub.add_parser("selftest", help="every present operator against the numpy reference",
                       description="Run every operator the backend exports on generated inputs and compare "
                                   "with the numpy reference. Exit status 1 if any operator fails.")
    s.add_argument("--seed", type=_int_at_least(0), default=0, metavar="N",
                   help="seed of the random inputs, an integer >= 0 (default: 0)")
    s.add_argument("-v", "--verbose", action="store_true", help="print the traceback of every failure")
    s.add_argument("--json", action="store_true", help="print one JSON object with every operator's result")
    s.set_defaults(fn=_selftest)

    d = sub.add_parser("demo", help="route a DeepSeek-V3-shaped batch through a whole MoE layer",
                       description="Route a batch through a DeepSeek-V3-style MoE layer with every operator and "
                                   "check it against a dense per-token computation.")
    d.add_argument("--tokens", type=_int_at_least(1), default=512, metavar="N",
                   help="tokens in the batch, >= 1 (default: 512)")
    d.add_argument("--repeat", type=_int_at_least(1), default=5, metavar="N",
                   help="timed runs of each step, >= 1; the median is shown (default: 5)")
    d.add_argument("--ep", type=_int_at_least(1), default=None, metavar="N",  # expert parallelism (ep-dist)
                   help="run the layer on N local ranks instead (torch.distributed, gloo on 127.0.0.1; needs torch)")
    d.set_defaults(fn=_demo)

    b = sub.add_parser("bench", help="speed of every way to call each operator, as ratios measured side by side",
                       description="Time every forward operator with a peer composite, at T in {1, 16, 256, 4096, "
                                   "16384} tokens, every way a caller can run it: function form, plan on device "
                                   "arrays, raw capi second phase, torch op, the torch composite the peers write, "
                                   "the numpy reference and a memcpy of the operator's bytes, with the rounds of "
                                   "the variants interleaved; also the per-call overhead ladder (tiny call and "
                                   "decode gating), the machine (CPU, caches, load) and a summary against the "
                                   "goals of issue 13.")
    b.add_argument("--quick", action="store_true",
                   help="CI-sized shapes (T in {1, 16, 256, 1024}, hidden size <= 512) and fewer rounds")
    b.add_argument("--model", choices=sorted(MODEL_NAMES), default="dsv3",
                   help="the model whose shapes are used: dsv3 (DeepSeek-V3: H=7168, E=256, K=8, grouped "
                        "sigmoid gating), qwen3 (Qwen3-MoE-235B: H=4096, E=128, K=8), mixtral (Mixtral-8x7B: "
                        "H=4096, E=8, K=2); default dsv3")
    b.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated parts of case names to run (e.g. gating_top_k,'re_routing T=16'); "
                        "each must match a case ('T=1' selects T=1, not T=16)")
    b.add_argument("--repeat", type=_int_at_least(1), default=None, metavar="N",
                   help="timed rounds per case, >= 1 (default: up to 7 with --quick, up to 15 otherwise, fewer "
                        "(at least 3) where one round takes long)")
    b.add_argument("--json", action="store_true", help="print one JSON object with every measurement")
    b.add_argument("--plot", default=None, metavar="FILE",
                   help="also draw time per token against tokens for each operator, beside the memcpy limit, "
                        "to FILE (png, svg or pdf; needs matplotlib)")
    b.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                   help="progress on stderr: a bar (tqdm or rich, when installed), plain lines, or none; "
                        "auto: a bar on a terminal, lines otherwise")
    b.set_defaults(fn=_bench, check=_check_bench_args, parser=b)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aclnn-moe`` with `argv` (default: ``sys.argv[1:]``) and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check = getattr(args, "check", None)
    if check is not None:
        check(args.parser, args)  # the subcommand's parser, so that its usage line is the one shown
    from .capi import BackendNotFoundError

    try:
        return args.fn(args)
    except BrokenPipeError:  # `aclnn-moe info | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (no second error when Python flushes at exit)
        except OSError:
            pass
        return 0
    except BackendNotFoundError as e:  # a broken or missing install: the message says the way out
        print(f"aclnn-moe {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
