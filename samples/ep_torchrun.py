"""Expert parallelism across processes, launched as users launch it:

    torchrun --nproc-per-node 2 samples/ep_torchrun.py

Every rank joins the default gloo group (env:// from torchrun), takes its share of a batch, runs one MoE layer
through both dispatchers of aclnn_moe.distributed (all-to-all with moe_re_routing; all-gather with
moe_token_permute_with_ep / unpermute_with_ep) and checks its rows against the dense layer computed in-process.
Exits non-zero on a mismatch; every collective gives up after EP_SAMPLE_TIMEOUT seconds (default 60).
"""
import datetime
import os
import sys

# divide the host runtime's threads among the local ranks before the library loads (vLLM's rule)
_local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
os.environ.setdefault("ACLNN_MOE_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // _local)))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from aclnn_moe.distributed._checks import run_case  # noqa: E402


def main() -> int:
    if "RANK" not in os.environ:
        print("run me with: torchrun --nproc-per-node 2 samples/ep_torchrun.py", file=sys.stderr)
        return 2
    timeout = float(os.environ.get("EP_SAMPLE_TIMEOUT", "60"))
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout))
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(int(os.environ["ACLNN_MOE_NUM_THREADS"]))
    experts = 8 * world
    sizes = [24 + 8 * r for r in range(world)]  # uneven token counts per rank
    ok = True
    for kind in ("a2a", "ag"):
        for dtype in ("float32", "bfloat16"):
            res = run_case(rank, world, kind, sizes, hidden=64, ffn_hidden=32, k=4, num_experts=experts,
                           dtype=dtype, backward=False)
            tol = 2e-2 if dtype == "bfloat16" else 1e-5
            good = res["out"] < tol
            ok &= good
            print(f"rank {rank}/{world} {kind:<3} {dtype:<8} {res['rows']} tokens, max rel err {res['out']:.2e} "
                  f"{'ok' if good else 'MISMATCH'}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
