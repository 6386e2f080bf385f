"""count_parameters: the trainable scalars of a model, a shared (tied) parameter counted once, frozen
ones skipped."""

from __future__ import annotations

import torch
from torch import nn

from primer.exercises._common import mlp, seeded
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- count_parameters


def _reference_count(model: nn.Module) -> int:
    # model.parameters() yields each Parameter object once, so tied weights count once.
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _TiedLM(nn.Module):
    """Embedding and output layer share one weight matrix (weight tying)."""

    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight


class _Scaled(nn.Module):
    """A parameter of the model itself (a learned scale) next to a child module's."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.scale * self.linear(x)


def _count_cases_plain(gen):
    # Order matters for the hints: the first failing case names the mistake, so the cases that
    # tell mistakes apart come first (a fresh model has no .grad yet; same-shaped layers;
    # a parameter on the model itself; BatchNorm's buffers, which are not parameters).
    with seeded(gen):
        scaled = _Scaled()
        batchnorm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    return [
        Case("MLP 784→128→10", (mlp(gen, 784, 128, 10),)),
        Case("a scale parameter of the model + Linear(4, 3)", (scaled,)),
        Case("MLP 16→16→16→16 (same-shaped layers)", (mlp(gen, 16, 16, 16, 16),)),
        Case("Linear(10, 3)", (nn.Linear(10, 3),)),
        Case("Linear without bias", (nn.Linear(7, 5, bias=False),)),
        Case("Conv2d(3, 8, 3) + LayerNorm(8)", (nn.Sequential(nn.Conv2d(3, 8, 3), nn.LayerNorm(8)),)),
        Case("Conv2d(3, 4, 3) + BatchNorm2d(4) (buffers are not parameters)", (batchnorm,)),
    ]


def _run_count(fn, case):
    """The count, which must be a Python int (not a tensor)."""
    out = fn(*case.args)
    if isinstance(out, torch.Tensor):
        value = out.tolist() if out.numel() < 5 else f"shape {tuple(out.shape)}"
        return f"a tensor ({value}), not an int"
    return out


def _count_cases_shared_frozen(gen):
    frozen = mlp(gen, 20, 30, 4)
    frozen[0].requires_grad_(False)  # the first layer is frozen (not trained)
    with seeded(gen):
        tied = _TiedLM(vocab=50, dim=16)
    layer = nn.Linear(6, 6)
    reused = nn.Sequential(layer, nn.ReLU(), layer)  # one module used twice
    return [
        Case("tied embedding/output weights", (tied,)),
        Case("the same Linear used twice", (reused,)),
        Case("first layer frozen", (frozen,)),
    ]


def _count_all_named(model):
    return sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)
               if p.requires_grad)


def _count_including_frozen(model):
    return sum(p.numel() for p in model.parameters())


def _count_weights_only(model):
    return sum(p.numel() for name, p in model.named_parameters() if "weight" in name)


def _count_tensors(model):
    return len([p for p in model.parameters() if p.requires_grad])


def _count_first_dims(model):
    return sum(len(p) for p in model.parameters() if p.requires_grad)


def _count_state_dict(model):
    return sum(v.numel() for v in model.state_dict().values())


def _count_children_only(model):
    return sum(p.numel() for child in model.children() for p in child.parameters() if p.requires_grad)


def _count_unique_shapes(model):
    return sum({tuple(p.shape): p.numel() for p in model.parameters() if p.requires_grad}.values())


def _count_with_grad(model):
    return sum(p.numel() for p in model.parameters() if p.grad is not None)


def _count_as_tensor(model):
    return torch.tensor(_reference_count(model))


_PLAIN_HINTS = (
    Hint(_count_weights_only, "this matches counting only the weights: biases are parameters too."),
    Hint(_count_tensors, "this matches counting parameter tensors: count their scalars, p.numel()."),
    Hint(_count_first_dims, "this matches len(p), the size of a tensor's first dimension only: "
         "count all its scalars, p.numel()."),
    Hint(_count_state_dict, "this matches counting model.state_dict(): it also holds buffers (such "
         "as BatchNorm's running statistics), which are not parameters. Use model.parameters()."),
    Hint(_count_children_only, "this matches counting the children's parameters only: a module "
         "can hold parameters itself. model.parameters() yields them all (recursively)."),
    Hint(_count_unique_shapes, "this matches counting each parameter shape once: two layers of "
         "the same shape have different tensors. model.parameters() already yields each "
         "tensor once."),
    Hint(_count_with_grad, "this matches counting the parameters that have a .grad: before any "
         "backward pass .grad is None. Trainable means p.requires_grad."),
    Hint(_count_as_tensor, "this matches returning a tensor: return a Python int, e.g. "
         "sum(p.numel() for ...)."),
)

register(
    Check("count_parameters", "plain", "counts every trainable scalar",
          _count_cases_plain, _reference_count, run=_run_count, hints=_PLAIN_HINTS),
    Check("count_parameters", "shared_and_frozen",
          "counts shared parameters once and skips frozen ones",
          _count_cases_shared_frozen, _reference_count,
          hints=(Hint(_count_all_named, "this matches counting a shared parameter once per "
                      "module that uses it; a tied weight is one tensor, count it once."),
                 Hint(_count_including_frozen, "this matches counting parameters with "
                      "requires_grad=False; only trainable parameters count.")), points=2),
)
