"""Assignment 07, ShardedAdamW: mistakes and correct answers written differently."""

import math

import torch
import torch.distributed as dist

from tests.mutants import alternative, mutant


class _Base(torch.optim.Optimizer):
    """What every variant shares: the flat parameters, the shard boundaries, AdamW's update."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.params = [p for g in self.param_groups for p in g["params"]]
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.n = sum(p.numel() for p in self.params)
        self.s = math.ceil(self.n / self.world)
        self.lo, self.hi = min(self.rank * self.s, self.n), min((self.rank + 1) * self.s, self.n)

    def flat(self):
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def flat_grad(self):
        return torch.cat([p.grad.reshape(-1) for p in self.params])

    def write_back(self, flat):
        offset = 0
        with torch.no_grad():
            for p in self.params:
                p.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()

    def adamw(self, w, g, key="mine", l2=False):
        """AdamW on the tensor w (updated in place) with gradient g; state under self.state[key]."""
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        st = self.state[key]
        if not st:
            st["step"], st["m"], st["v"] = 0, torch.zeros_like(w), torch.zeros_like(w)
        st["step"] += 1
        if l2:
            g = g + wd * w
        else:
            w.mul_(1 - lr * wd)
        st["m"].mul_(b1).add_((1 - b1) * g)
        st["v"].mul_(b2).add_((1 - b2) * g * g)
        m_hat = st["m"] / (1 - b1 ** st["step"])
        v_hat = st["v"] / (1 - b2 ** st["step"])
        w.sub_(lr * m_hat / (v_hat.sqrt() + eps))

    def gather(self, mine):
        padded = torch.zeros(self.s, dtype=mine.dtype)
        padded[:mine.numel()] = mine
        everyone = torch.empty(self.world * self.s, dtype=mine.dtype)
        dist.all_gather_into_tensor(everyone, padded)
        return everyone[:self.n]


@mutant("ShardedAdamW", hint="every rank keeps AdamW's state", fails=("state_is_sharded",))
class zero_updates_every_parameter(_Base):
    @torch.no_grad()
    def step(self):
        flat = self.flat()
        self.adamw(flat, self.flat_grad())  # all n elements, on every rank: nothing sharded
        self.write_back(flat)


@mutant("ShardedAdamW", hint="only this rank's shard", fails=("matches_adamw",))
class zero_without_the_gather(_Base):
    @torch.no_grad()
    def step(self):
        flat = self.flat()
        mine = flat[self.lo:self.hi].clone()
        self.adamw(mine, self.flat_grad()[self.lo:self.hi])
        flat[self.lo:self.hi] = mine
        self.write_back(flat)


@mutant("ShardedAdamW", hint="boundaries differ", fails=("matches_adamw",))
class zero_with_floor_shards(_Base):
    @torch.no_grad()
    def step(self):
        size = self.n // self.world  # this rank's shard: n // W elements from rank·(n // W) ...
        lo = self.rank * size
        mine = self.flat()[lo:lo + size].clone()
        self.adamw(mine, self.flat_grad()[lo:lo + size])
        self.write_back(self.gather(mine))  # ... but gathered at rank·⌈n/W⌉


@mutant("ShardedAdamW", hint="whole parameter vector", fails=("matches_adamw",))
class zero_allreduces_the_parameters(_Base):
    @torch.no_grad()
    def step(self):
        flat = self.flat()
        mine = flat[self.lo:self.hi].clone()
        self.adamw(mine, self.flat_grad()[self.lo:self.hi])
        flat[self.lo:self.hi] = mine
        dist.all_reduce(flat)  # the other ranks' stale copies are summed in too
        self.write_back(flat)


@mutant("ShardedAdamW", hint="L2 regularization", fails=("matches_adamw",))
class zero_with_l2_decay(_Base):
    @torch.no_grad()
    def step(self):
        mine = self.flat()[self.lo:self.hi].clone()
        self.adamw(mine, self.flat_grad()[self.lo:self.hi], l2=True)
        self.write_back(self.gather(mine))


@mutant("ShardedAdamW", hint="every rank keeps AdamW's state", fails=("state_is_sharded",))
class zero_with_full_size_moments(_Base):
    @torch.no_grad()
    def step(self):
        flat, grad = self.flat(), self.flat_grad()
        st = self.state["all"]
        if not st:  # moments for every parameter, of which only this rank's part is used
            st["step"], st["m"], st["v"] = 0, torch.zeros(self.n, dtype=flat.dtype), \
                torch.zeros(self.n, dtype=flat.dtype)
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        st["step"] += 1
        lo, hi, t = self.lo, self.hi, st["step"]
        w, g = flat[lo:hi].clone(), grad[lo:hi]
        w.mul_(1 - lr * wd)
        st["m"][lo:hi] = b1 * st["m"][lo:hi] + (1 - b1) * g
        st["v"][lo:hi] = b2 * st["v"][lo:hi] + (1 - b2) * g * g
        w -= lr * (st["m"][lo:hi] / (1 - b1**t)) / ((st["v"][lo:hi] / (1 - b2**t)).sqrt() + eps)
        self.write_back(self.gather(w))


@alternative("ShardedAdamW")
class zero_broadcasts_each_shard(_Base):
    """No padding: each owner broadcasts its shard, of whatever size, to every rank."""

    @torch.no_grad()
    def step(self):
        flat = self.flat()
        mine = flat[self.lo:self.hi].clone()
        self.adamw(mine, self.flat_grad()[self.lo:self.hi])
        flat[self.lo:self.hi] = mine
        for owner in range(self.world):
            lo, hi = min(owner * self.s, self.n), min((owner + 1) * self.s, self.n)
            if hi > lo:
                chunk = flat[lo:hi].clone()
                dist.broadcast(chunk, src=owner)
                flat[lo:hi] = chunk
        self.write_back(flat)


@alternative("ShardedAdamW")
class zero_keyed_by_parameter(torch.optim.Optimizer):
    """State kept per parameter tensor, for the part of it inside this rank's shard; the shards
    summed into a zero vector (an all-reduce moves twice an all-gather's data, but is right)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        rank, world = dist.get_rank(), dist.get_world_size()
        params = [p for g in self.param_groups for p in g["params"]]
        n = sum(p.numel() for p in params)
        s = -(-n // world)
        lo, hi = rank * s, min((rank + 1) * s, n)
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        out = torch.zeros(n, dtype=params[0].dtype)
        start = 0
        for p in params:
            a, b = max(lo, start), min(hi, start + p.numel())
            if a < b:
                w = p.reshape(-1)[a - start:b - start].clone()
                g = p.grad.reshape(-1)[a - start:b - start]
                st = self.state[p]
                if not st:
                    st["step"] = torch.tensor(0.0)
                    st["exp_avg"], st["exp_avg_sq"] = torch.zeros_like(w), torch.zeros_like(w)
                st["step"] += 1
                t = st["step"].item()
                w.mul_(1 - lr * wd)
                st["exp_avg"].lerp_(g, 1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                step = lr / (1 - b1**t)
                w.addcdiv_(st["exp_avg"], st["exp_avg_sq"].sqrt() / math.sqrt(1 - b2**t) + eps,
                           value=-step)
                out[a:b] = w
            start += p.numel()
        dist.all_reduce(out)
        start = 0
        for p in params:
            p.copy_(out[start:start + p.numel()].view_as(p))
            start += p.numel()
