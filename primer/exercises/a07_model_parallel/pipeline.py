"""pipeline_forward_backward: P stages on P ranks, m micro-batches in the GPipe schedule;
activations sent forward and gradients sent back with point-to-point messages.

Rank r holds stage r of a sequential model. The checks compare every rank's parameter gradients
(and the last rank's loss) with those of the whole model trained in one process on the whole
batch, and record each rank's timeline: which micro-batch's forward or backward its stage ran, in
what order, and where its messages went. Only the order is checked, never durations: GPipe (all
forwards, then all backwards) and 1F1B (backwards interleaved once the pipeline is full) both
pass; running one micro-batch at a time through the whole pipeline does not.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seed_from, seeded
from primer.grading import Case, Check, Hint, register
from primer.launch import launch

from .workers import CHECK_TIMEOUT, LAUNCH_TIMEOUT, Derivation, Traffic, _numpy, _tensors

SEQUENTIAL = Derivation("the whole model trained in one process on the whole batch")
_D, _PER_MICRO_BATCH = 4, 2


def _model(seed: int, stages: int) -> nn.Sequential:
    with seeded(seed):
        return nn.Sequential(*[nn.Sequential(nn.Linear(_D, _D), nn.Tanh()) for _ in range(stages)])


def _data(seed: int, micro_batches: int):
    g = torch.Generator().manual_seed(seed)
    n = micro_batches * _PER_MICRO_BATCH
    return torch.randn(n, _D, generator=g), torch.randn(n, _D, generator=g)


class _Mark(torch.autograd.Function):
    """Identity; notes in the timeline when backward reaches this micro-batch's stage output."""

    @staticmethod
    def forward(ctx, y, k, timeline):
        ctx.k, ctx.timeline = k, timeline
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad):
        ctx.timeline.append(("B", ctx.k))
        return grad, None, None


class RecordedStage(nn.Module):
    """A stage that notes ("F", k) when it runs its k-th forward, and ("B", k) when backward
    reaches that forward's output."""

    def __init__(self, stage: nn.Module):
        super().__init__()
        self.stage = stage
        self.timeline: list[tuple[str, int]] = []

    def forward(self, x):
        k = sum(1 for kind, _ in self.timeline if kind == "F")
        self.timeline.append(("F", k))
        return _Mark.apply(self.stage(x), k, self.timeline)


def _pipeline_worker(rank, world_size, fn, seed, m):
    stage = RecordedStage(_model(seed, world_size)[rank])
    x, y = _data(seed + 1, m)
    traffic = Traffic()
    traffic.phase = "pipeline"
    loss = fn(stage, list(x.split(_PER_MICRO_BATCH)), list(y.split(_PER_MICRO_BATCH)), F.mse_loss)
    traffic.phase = ""
    last = rank == world_size - 1
    sends = [(peer, n) for _, name, n, peer in traffic.log if name == "send"]
    return {"grads": [None if p.grad is None else p.grad.numpy().copy()
                      for p in stage.parameters()],
            # The loss is float32 arithmetic: compared as a float32 tensor, with its tolerance.
            "loss": np.array(float(loss), dtype=np.float32) if last and loss is not None else None,
            "timeline": list(stage.timeline), "sends": sends}


def _run_gradients(fn, case: Case):
    """Every rank's parameter gradients, and the batch loss on the last rank."""
    world_size, seed, m = case.args
    if fn is SEQUENTIAL:
        model = _model(seed, world_size)
        x, y = _data(seed + 1, m)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return [{"parameter gradients": _tensors(_numpy(p.grad for p in model[r].parameters())),
                 "loss": loss.detach().clone() if r == world_size - 1 else None}
                for r in range(world_size)]
    results = launch(_pipeline_worker, world_size, fn, seed, m, timeout=LAUNCH_TIMEOUT)
    return [{"parameter gradients": _tensors(r["grads"]), "loss": _tensors(r["loss"])}
            for r in results]


_FORWARDS, _BACKWARDS = "forward passes of the stage", "backward passes of the stage"
_IN_FLIGHT = "forwards before the first backward (counted up to min(P − r, m))"
_PEERS, _MESSAGES = "ranks sent to", "messages sent"


def _run_schedule(fn, case: Case):
    """Each rank's timeline and messages, as the properties above."""
    world_size, seed, m = case.args
    neighbours = [[q for q in (r - 1, r + 1) if 0 <= q < world_size] for r in range(world_size)]
    if fn is SEQUENTIAL:  # the definition of a pipeline schedule over m micro-batches
        return [{_FORWARDS: m, _BACKWARDS: m, _IN_FLIGHT: min(world_size - r, m),
                 _PEERS: neighbours[r], _MESSAGES: m * len(neighbours[r])}
                for r in range(world_size)]
    out = []
    results = launch(_pipeline_worker, world_size, fn, seed, m, timeout=LAUNCH_TIMEOUT)
    for r, result in enumerate(results):
        kinds = [kind for kind, _ in result["timeline"]]
        before = kinds.index("B") if "B" in kinds else len(kinds)
        out.append({_FORWARDS: kinds.count("F"), _BACKWARDS: kinds.count("B"),
                    _IN_FLIGHT: min(before, world_size - r, m),
                    _PEERS: sorted({peer for peer, _ in result["sends"]}),
                    _MESSAGES: len(result["sends"])})
    return out


# --------------------------------------------------------------------------- the mistakes

def _gpipe(zero_each=False, divide=True, one_at_a_time=False, whole_batch=False):
    """GPipe, correct unless an argument says otherwise."""
    def pipeline(stage, micro_batches, targets, loss_fn):
        rank, world = dist.get_rank(), dist.get_world_size()
        first, last = rank == 0, rank == world - 1
        if whole_batch:
            micro_batches, targets = [torch.cat(micro_batches)], [torch.cat(targets)]
        m = len(micro_batches)
        saved, pending, total = [], [], 0.0

        def forward(i):
            nonlocal total
            x = micro_batches[i] if first else torch.empty_like(micro_batches[i])
            if not first:
                dist.recv(x, rank - 1)
                x.requires_grad_()
            out = stage(x)
            if last:
                out = loss_fn(out, targets[i]) / (m if divide else 1)
                total += out.item()
            else:
                pending.append(dist.isend(out.detach(), rank + 1))
            saved.append((x, out))

        def backward(i):
            x, out = saved[i]
            if zero_each:
                stage.zero_grad()
            if last:
                out.backward()
            else:
                grad = torch.empty_like(out)
                dist.recv(grad, rank + 1)
                out.backward(grad)
            if not first:
                pending.append(dist.isend(x.grad, rank - 1))

        for i in range(m):
            forward(i)
            if one_at_a_time:
                backward(i)
        for i in range(m) if not one_at_a_time else ():
            backward(i)
        for work in pending:
            work.wait()
        return total if last else None
    return pipeline


_GRADIENT_HINTS = (
    Hint(_gpipe(zero_each=True), "the gradients are those of the last micro-batch alone: each "
         "micro-batch's backward must add to .grad (autograd accumulates), so do not zero the "
         "gradients between micro-batches."),
    Hint(_gpipe(divide=False), "the gradients (and the loss) are m times too large: the batch's "
         "loss is the mean of the micro-batches' losses, so divide each by the number of "
         "micro-batches before its backward."),
)
_SCHEDULE_HINTS = (
    Hint(_gpipe(one_at_a_time=True), "this matches one micro-batch at a time: each went "
         "forward and backward through the whole pipeline before the next started, so only one "
         "stage ever works. In GPipe every stage runs all its forwards first, then the backwards."),
    Hint(_gpipe(whole_batch=True), "this matches the whole batch in one pass: split the work "
         "into the micro-batches you are given, one forward and one backward of each per stage."),
)


def _cases(specs):
    def cases(gen):
        return [Case(f"{p} stages, {m} micro-batches of {_PER_MICRO_BATCH}", (p, seed_from(gen), m))
                for p, m in specs]
    return cases


register(
    Check("pipeline_forward_backward", "matches_sequential",
          "every stage's gradients (and the loss) equal sequential training on the whole batch",
          _cases([(2, 4), (4, 2)]), SEQUENTIAL, run=_run_gradients, hints=_GRADIENT_HINTS,
          timeout=CHECK_TIMEOUT, points=2, levels=("rank",)),
    Check("pipeline_forward_backward", "schedule",
          "each stage runs every micro-batch once each way, pipelined, messages to its neighbours",
          _cases([(4, 3)]), SEQUENTIAL, run=_run_schedule, hints=_SCHEDULE_HINTS,
          timeout=CHECK_TIMEOUT, points=2, levels=("rank",)),
)
