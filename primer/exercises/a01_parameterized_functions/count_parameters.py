"""count_parameters: the trainable scalars of a model, a shared (tied) parameter counted once, frozen
ones skipped."""

from __future__ import annotations

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


def _count_cases_plain(gen):
    return [
        Case("Linear(10, 3)", (nn.Linear(10, 3),)),
        Case("MLP 784→128→10", (mlp(gen, 784, 128, 10),)),
        Case("Linear without bias", (nn.Linear(7, 5, bias=False),)),
        Case("Conv2d(3, 8, 3) + LayerNorm(8)", (nn.Sequential(nn.Conv2d(3, 8, 3), nn.LayerNorm(8)),)),
    ]


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


register(
    Check("count_parameters", "plain", "counts every trainable scalar",
          _count_cases_plain, _reference_count,
          hints=(Hint(_count_weights_only, "this matches counting only the weights: biases are "
                      "parameters too."),)),
    Check("count_parameters", "shared_and_frozen",
          "counts shared parameters once and skips frozen ones",
          _count_cases_shared_frozen, _reference_count,
          hints=(Hint(_count_all_named, "this matches counting a shared parameter once per "
                      "module that uses it; a tied weight is one tensor, count it once."),
                 Hint(_count_including_frozen, "this matches counting parameters with "
                      "requires_grad=False; only trainable parameters count.")), points=2),
)
