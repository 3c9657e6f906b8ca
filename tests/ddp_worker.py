"""One rank of the model-level data-parallel check in tests/test_distributed.py.

Run as ``python tests/ddp_worker.py RANK WORLD_SIZE INIT_METHOD WORK_DIR``. WORK_DIR holds
``setup.pt`` (written by the test: model options, initial state dicts and batches). The rank
joins a gloo process group, wraps the model as fairseq's c10d backend does (torch DDP, minus
the GPU-only device_ids) and with fairseq's legacy_ddp wrapper, runs
forward/backward on its shard of every batch with a sum-reduced loss, and writes the
all-reduced gradients times the world size (what fairseq's trainer uses: data-parallel
wrappers average, the trainer multiplies by the world size and divides by the total sample
size) to ``WORK_DIR/rank{RANK}.pt``.
"""

import argparse
import datetime
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from helpers import build_model, make_dictionary  # tests/, first on sys.path as the script's folder


def shard(batch, rank, world_size):
    """Rank ``rank``'s contiguous slice of every tensor of ``batch``."""
    size = batch["target"].size(0) // world_size
    return {k: v[rank * size:(rank + 1) * size] for k, v in batch.items()}


def summed_loss(model, batch, pad):
    logits, _ = model(batch["src_tokens"], batch["src_lengths"], batch["prev_output_tokens"])
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["target"].reshape(-1),
                           ignore_index=pad, reduction="sum")


def fairseq_args(ddp_backend):
    """The distributed options DistributedFairseqModel reads, at fairseq-train's defaults."""
    return argparse.Namespace(
        tpu=False, ddp_backend=ddp_backend, device_id=0, broadcast_buffers=False,
        bucket_cap_mb=25, find_unused_parameters=False, gradient_as_bucket_view=False,
        ddp_comm_hook="none", heartbeat_timeout=-1)


def wrap(model, wrapper, group):
    from fairseq.distributed import ModuleProxyWrapper
    from fairseq.models.distributed_fairseq_model import DistributedFairseqModel

    if wrapper == "legacy_ddp":
        return DistributedFairseqModel(fairseq_args("legacy_ddp"), model, group, torch.device("cpu"))
    # --ddp-backend c10d: fairseq builds exactly this, plus device_ids=[device_id], which torch
    # refuses for a CPU module (see test_fairseq_c10d_refuses_cpu_modules)
    assert wrapper == "c10d"
    a = fairseq_args("c10d")
    ddp = torch.nn.parallel.DistributedDataParallel(
        module=model, broadcast_buffers=a.broadcast_buffers, bucket_cap_mb=a.bucket_cap_mb,
        process_group=group, find_unused_parameters=a.find_unused_parameters,
        gradient_as_bucket_view=a.gradient_as_bucket_view)
    return ModuleProxyWrapper(ddp)


def main(rank, world_size, init_method, work_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    from fairseq.distributed import utils as distributed_utils
    from fairseq.models.distributed_fairseq_model import DistributedFairseqModel

    group = distributed_utils.get_data_parallel_group()  # what fairseq's trainer passes
    setup = torch.load(os.path.join(work_dir, "setup.pt"), weights_only=True)
    dictionary = make_dictionary(setup["num_symbols"])
    results = {"world_size": dist.get_world_size(group)}

    # fairseq's own --ddp-backend c10d wrapper on a CPU module
    try:
        DistributedFairseqModel(fairseq_args("c10d"), build_model(dictionary=dictionary), group,
                                torch.device("cpu"))
    except ValueError as err:
        results["c10d_error"] = str(err)
    else:
        results["c10d_error"] = None

    for mode, state in setup["states"].items():
        for wrapper in ("c10d", "legacy_ddp"):
            model = build_model(dictionary=dictionary, **setup["options"][mode])
            model.load_state_dict(state)
            wrapped = wrap(model, wrapper, group)
            for step, batch in enumerate(setup["batches"]):
                model.zero_grad(set_to_none=True)
                loss = summed_loss(wrapped, shard(batch, rank, world_size), dictionary.pad())
                loss.backward()
                if hasattr(wrapped, "all_reduce_grads"):  # legacy_ddp: the trainer calls it
                    wrapped.all_reduce_grads()
                missing = [n for n, p in model.named_parameters() if p.grad is None]
                assert not missing, f"{mode}/{wrapper}: no gradient for {missing}"
                results[(mode, wrapper, step)] = {
                    n: p.grad.detach().clone() * world_size for n, p in model.named_parameters()}
            del wrapped
    torch.save(results, os.path.join(work_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    rank, world_size, init_method, work_dir = sys.argv[1:5]
    main(int(rank), int(world_size), init_method, work_dir)
