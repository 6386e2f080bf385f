"""ShardedAdamW: ZeRO stage 1. Each of W ranks keeps AdamW's state (exp_avg, exp_avg_sq) for its
1/W of the parameters, updates that shard, and all-gathers (or broadcasts) the result.

The shards, as the notebook defines them: the parameters flattened in order into one vector of n
elements; rank r owns elements [r·s, min((r+1)·s, n)) with s = ⌈n/W⌉. The checks run K steps of
data-parallel training in float64 (the check averages the gradients itself, as DDP would, before
each step()) and compare every rank's parameters with K steps of torch.optim.AdamW in one process
on the whole batch; and they measure each rank's optimizer state, the tensors in `opt.state`,
against torch.optim.AdamW's.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seed_from, seeded
from primer.grading import Case, Check, Hint, register
from primer.launch import launch

from .workers import (
    CHECK_TIMEOUT,
    LAUNCH_TIMEOUT,
    Derivation,
    Traffic,
    _numpy,
    _tensors,
)

ADAMW = Derivation("torch.optim.AdamW in one process on the whole batch")
_WIDTHS = (5, 7, 3)  # 66 parameters in 4 tensors: 4 ranks get 17, 17, 17 and 15 of them
_SAMPLES = 8
_HYPER = {"lr": 0.05, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1}


def _model(seed: int) -> nn.Module:
    with seeded(seed):
        model = nn.Sequential(nn.Linear(_WIDTHS[0], _WIDTHS[1]), nn.Tanh(),
                              nn.Linear(_WIDTHS[1], _WIDTHS[2]))
    return model.double()


def _data(seed: int):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(_SAMPLES, _WIDTHS[0], generator=g, dtype=torch.float64),
            torch.randn(_SAMPLES, _WIDTHS[-1], generator=g, dtype=torch.float64))


def state_bytes(optimizer) -> int:
    """Bytes of every tensor in `optimizer.state` (a dict of dicts, as torch's optimizers keep)."""
    def walk(x):
        if isinstance(x, torch.Tensor):
            return x.numel() * x.element_size()
        if isinstance(x, dict):
            return sum(walk(v) for v in x.values())
        if isinstance(x, (list, tuple)):
            return sum(walk(v) for v in x)
        return 0
    return walk(getattr(optimizer, "state", {}))


def _adamw_state_bytes(seed: int) -> int:
    model = _model(seed)
    opt = torch.optim.AdamW(model.parameters(), **_HYPER)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    return state_bytes(opt)


def _zero_worker(rank, world_size, cls, seed, steps):
    model = _model(seed)
    x, y = _data(seed + 1)
    x, y = x[rank::world_size], y[rank::world_size]
    opt = cls(model.parameters(), **_HYPER)
    traffic = Traffic()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        F.mse_loss(model(x), y).backward()
        for p in model.parameters():  # data parallelism's average, done by the check
            dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)
        traffic.phase = "step"
        opt.step()
        traffic.phase = ""
    return {"params": _numpy(model.parameters()), "state bytes": state_bytes(opt),
            "elements sent per step": traffic.elements("step") / steps}


def _run_training(cls, case: Case):
    """Every rank's parameters after K steps."""
    world_size, seed, steps = case.args
    if cls is ADAMW:  # the same K steps in one process, on the whole batch
        model = _model(seed)
        x, y = _data(seed + 1)
        opt = torch.optim.AdamW(model.parameters(), **_HYPER)
        for _ in range(steps):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
        return [_tensors(_numpy(model.parameters()))] * world_size
    results = launch(_zero_worker, world_size, cls, seed, steps, timeout=LAUNCH_TIMEOUT)
    return [_tensors(r["params"]) for r in results]


# Whole numbers: sharded is 1 and 1 (padding and step counts add a few per cent), a copy of the
# whole state on every rank is W and W.
_LARGEST = "largest rank's state bytes × W / AdamW's (to the nearest whole number)"
_TOTAL = "all ranks' state bytes / AdamW's (to the nearest whole number)"


def _run_memory(cls, case: Case):
    """Each rank's optimizer state against AdamW's, which holds two float64 moments of every
    parameter (and a step count per tensor): sharded, the largest rank holds about 1/W of it."""
    world_size, seed, steps = case.args
    if cls is ADAMW:  # the definition of a shard: 1/W of the state on each rank, once in all
        return {_LARGEST: 1, _TOTAL: 1}
    full = _adamw_state_bytes(seed)
    sizes = [r["state bytes"] for r in launch(_zero_worker, world_size, cls, seed, steps,
                                               timeout=LAUNCH_TIMEOUT)]
    return {_LARGEST: round(max(sizes) * world_size / full), _TOTAL: round(sum(sizes) / full)}


# --------------------------------------------------------------------------- the mistakes

class _Sharded(torch.optim.Optimizer):
    """ZeRO-1 AdamW, correct unless an argument says otherwise."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 everything=False, gather="all_gather", own_size="ceil", decay="decoupled"):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay})
        self.params = [p for group in self.param_groups for p in group["params"]]
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.n = sum(p.numel() for p in self.params)
        self.size = math.ceil(self.n / self.world)
        own = self.size if own_size == "ceil" else self.n // self.world
        self.lo = 0 if everything else min(self.rank * own, self.n)
        self.hi = self.n if everything else min(self.lo + own, self.n)
        self.everything, self.gather, self.decay = everything, gather, decay

    @torch.no_grad()
    def step(self):
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        flat = torch.cat([p.reshape(-1) for p in self.params])
        grad = torch.cat([p.grad.reshape(-1) for p in self.params])[self.lo:self.hi]
        mine = flat[self.lo:self.hi].clone()
        state = self.state["shard"]
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(mine), exp_avg_sq=torch.zeros_like(mine))
        state["step"] += 1
        t = state["step"]
        if self.decay == "decoupled":
            mine.mul_(1 - lr * wd)
        else:  # L2: the decay added to the gradient
            grad = grad + wd * mine
        state["exp_avg"].mul_(b1).add_(grad, alpha=1 - b1)
        state["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (state["exp_avg_sq"] / (1 - b2**t)).sqrt_().add_(eps)
        mine.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - b1**t))
        if self.everything:
            new = mine
        elif self.gather == "none":
            new = flat.clone()
            new[self.lo:self.hi] = mine
        elif self.gather == "sum_all":  # every rank's whole vector, own shard updated, summed
            new = flat.clone()
            new[self.lo:self.hi] = mine
            dist.all_reduce(new)
        else:
            padded = torch.zeros(self.size, dtype=flat.dtype)
            padded[:mine.numel()] = mine
            parts = [torch.empty_like(padded) for _ in range(self.world)]
            dist.all_gather(parts, padded)
            new = torch.cat(parts)[:self.n]  # placed at the boundaries r·⌈n/W⌉
        offset = 0
        for p in self.params:
            p.copy_(new[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def _variant(**flags):
    def make(params, **hyper):
        return _Sharded(params, **hyper, **flags)
    return make


_EVERYTHING = _variant(everything=True)

_TRAINING_HINTS = (
    Hint(_variant(gather="none"), "only this rank's shard of the parameters changed: after "
         "updating your shard, all-gather the shards (or broadcast each from its owner) so "
         "that every rank holds every updated parameter."),
    Hint(_variant(own_size="floor"), "this matches shards whose boundaries differ: the shard "
         "a rank updates starts at r·⌊n/W⌋, but the all-gather puts it at r·⌈n/W⌉. Use the "
         "same boundaries, r·s to min((r+1)·s, n) with s = ⌈n/W⌉, for both."),
    Hint(_variant(gather="sum_all"), "this matches all-reducing every rank's whole parameter "
         "vector with only its shard updated: the other elements are summed W times. "
         "All-gather the shards instead (or zero everything outside your shard first)."),
    Hint(_variant(decay="l2"), "this matches Adam with L2 regularization (weight_decay * p added "
         "to the gradient): AdamW decays the parameter itself, p *= 1 − lr·weight_decay, "
         "before the Adam update."),
)
_MEMORY_HINTS = (
    Hint(_EVERYTHING, "every rank keeps AdamW's state for all the parameters: ZeRO's saving is "
         "that each rank keeps exp_avg and exp_avg_sq only for its own shard (s = ⌈n/W⌉ "
         "elements), and updates only that shard."),
)


def _cases(worlds, steps=3):
    def cases(gen):
        return [Case(f"{w} ranks, {steps} steps, {sum(_layer_sizes())} float64 parameters",
                     (w, seed_from(gen), steps)) for w in worlds]
    return cases


def _layer_sizes():
    return [a * b + b for a, b in zip(_WIDTHS[:-1], _WIDTHS[1:])]


register(
    Check("ShardedAdamW", "matches_adamw",
          "K data-parallel steps leave every rank with torch.optim.AdamW's parameters",
          _cases((2, 4)), ADAMW, run=_run_training, hints=_TRAINING_HINTS, timeout=CHECK_TIMEOUT,
          points=3, levels=("rank", "parameter tensor")),
    Check("ShardedAdamW", "state_is_sharded",
          "each rank's optimizer state is about 1/W of AdamW's, none of it repeated",
          _cases((4,), steps=1), ADAMW, run=_run_memory, hints=_MEMORY_HINTS,
          timeout=CHECK_TIMEOUT, points=2),
)
