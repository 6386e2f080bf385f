"""Data-parallel training of a digit classifier: DDP, DistributedSampler, gradient accumulation,
AdamW and a warmup + cosine learning-rate schedule.

The same function runs in two ways:
- from the notebook, on ranks forked from the kernel:   launch(train, 2, {"epochs": 4})
- as a script, one process per rank, started by torchrun (on one machine or several):
      torchrun --standalone --nproc_per_node=2 train_ddp.py --epochs 4
      torchrun --nnodes=2 --node_rank=0 --nproc_per_node=1 --rdzv-backend=c10d \\
               --rdzv-endpoint=HOST:29400 train_ddp.py        (and node_rank=1 on the other)
  torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every process; rank 0 prints
  the result as one line of JSON.

The global batch (`batch_size`) is the same whatever the number of ranks: each optimizer step
uses `batch_size` examples, split over `world_size` ranks and `micro_batches` micro-batches per
rank. So one rank and two ranks train on the same examples in the same order and follow the
same loss curve; only the time differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

DEFAULTS = {
    "epochs": 4,
    "batch_size": 64,  # examples per optimizer step, over all ranks and micro-batches
    "micro_batches": 2,  # gradient accumulation: micro-batches per rank and step
    "lr": 2e-3,
    "weight_decay": 0.01,
    "warmup_steps": 10,
    "hidden": 512,
    "seed": 0,
    "n_train": 1536,  # the first 1536 digits train, the other 261 measure accuracy
}


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's handwritten digits (bundled with it, no download): 1797 images of 8×8."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.data, dtype=torch.float32) / 16.0, torch.tensor(data.target)


def warmup_cosine(warmup_steps: int, total_steps: int):
    """Learning-rate multiplier: linear warmup to 1, then a cosine decay to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def train(rank: int, world_size: int, config: dict | None = None, data=None) -> dict:
    """Train on this rank's shard; the process group must already be initialized.

    `data` is (images, labels); by default the digits, loaded here (the notebook loads them
    once, before forking, so that the workers need not import scikit-learn again).
    """
    cfg = {**DEFAULTS, **(config or {})}
    per_rank, rest = divmod(cfg["batch_size"], world_size * cfg["micro_batches"])
    if rest:
        raise ValueError("batch_size must be divisible by world_size × micro_batches")
    x, y = digits() if data is None else data
    train_set = TensorDataset(x[:cfg["n_train"]], y[:cfg["n_train"]])
    torch.manual_seed(cfg["seed"])  # every rank builds the same model (DDP broadcasts anyway)
    model = nn.Sequential(nn.Linear(64, cfg["hidden"]), nn.GELU(),
                          nn.Linear(cfg["hidden"], cfg["hidden"]), nn.GELU(),
                          nn.Linear(cfg["hidden"], 10))
    ddp = DDP(model)
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=cfg["seed"], drop_last=True)
    loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler, drop_last=True)
    steps_per_epoch = len(loader) // cfg["micro_batches"]
    total_steps = steps_per_epoch * cfg["epochs"]
    opt = torch.optim.AdamW(ddp.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(cfg["warmup_steps"], total_steps))

    losses, lrs, step_loss = [], [], torch.zeros(())
    start = time.perf_counter()
    for epoch in range(cfg["epochs"]):
        sampler.set_epoch(epoch)  # a new shuffle every epoch, the same on every rank
        batches = iter(loader)
        for _ in range(steps_per_epoch):
            for micro in range(cfg["micro_batches"]):
                xb, yb = next(batches)
                last = micro == cfg["micro_batches"] - 1
                # Gradients accumulate locally; DDP all-reduces only on the last micro-batch.
                with contextlib.nullcontext() if last else ddp.no_sync():
                    loss = F.cross_entropy(ddp(xb), yb) / cfg["micro_batches"]
                    loss.backward()
                step_loss += loss.detach()
            lrs.append(schedule.get_last_lr()[0])
            opt.step()
            schedule.step()
            opt.zero_grad(set_to_none=True)
            dist.all_reduce(step_loss, op=dist.ReduceOp.AVG)  # the loss of the global batch
            losses.append(step_loss.item())
            step_loss.zero_()
    seconds = time.perf_counter() - start

    with torch.no_grad():
        accuracy = (model(x[cfg["n_train"]:]).argmax(1) == y[cfg["n_train"]:]).float().mean()
    return {"losses": losses, "lrs": lrs, "seconds": seconds, "steps": total_steps,
            "samples_per_second": total_steps * cfg["batch_size"] / seconds,
            "accuracy": accuracy.item(), "world_size": world_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    config = vars(parser.parse_args())
    torch.set_num_threads(1)  # one core per rank, as in the notebook
    dist.init_process_group("gloo")  # reads RANK, WORLD_SIZE, MASTER_ADDR/PORT set by torchrun
    try:
        result = train(dist.get_rank(), dist.get_world_size(), config)
        if dist.get_rank() == 0:
            print(json.dumps(result), flush=True)
        dist.barrier()  # every rank is done
    except BaseException:
        dist.destroy_process_group()
        raise
    # Leave without tearing gloo down: on a busy machine its threads sometimes abort the process
    # as it exits ("terminate called without an active exception"), which torchrun reports as a
    # failed run although the training finished. The operating system frees what is left.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
