"""Assignment 01, primer §3.1: a model is a parameterized function; losses on a dataset.

Each exercise: how its cases are made from a seed, the torch reference, the tolerance, and the
hints (objects implementing a known mistake). Mutants used to test these checks:
tests/mutants/a01_parameterized_functions.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import mlp, randint, randn, seeded
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

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

# --------------------------------------------------------------------------- functional_forward


def _reference_functional_forward(model: nn.Module, theta: torch.Tensor, x: torch.Tensor):
    """f_θ(x): θ is split in the order of model.parameters(), then torch.func evaluates it."""
    params, offset = {}, 0
    for name, p in model.named_parameters():
        params[name] = theta[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return torch.func.functional_call(model, params, (x,))


def _functional_cases(gen):
    cases = []
    for widths, batch in [((3, 1), 5), ((4, 8, 2), 6), ((10, 16, 16, 3), 4)]:
        model = mlp(gen, *widths)
        n = sum(p.numel() for p in model.parameters())
        theta = randn(gen, n)
        x = randn(gen, batch, widths[0])
        cases.append(Case(f"MLP {'→'.join(map(str, widths))}, N={n}", (model, theta, x)))
    return cases


def _run_values(fn, case):
    model, theta, x = case.args
    return fn(model, theta, x)


def _run_model_unchanged(fn, case):
    model, theta, x = case.args
    before = [p.detach().clone() for p in model.parameters()]
    fn(model, theta, x)
    return all(torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))


def _run_gradient(fn, case):
    """d/dθ of sum(f_θ(x)): θ must stay in the autograd graph."""
    model, theta, x = case.args
    theta = theta.clone().requires_grad_(True)
    out = fn(model, theta, x)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return None
    (grad,) = torch.autograd.grad(out.sum(), theta, allow_unused=True)
    return grad


def _functional_by_copy(model, theta, x):
    """The mistake: write θ into the model's own parameters."""
    torch.nn.utils.vector_to_parameters(theta.detach(), model.parameters())
    return model(x)


register(
    Check("functional_forward", "values", "evaluates f_θ(x) with the parameters taken from θ",
          _functional_cases, _reference_functional_forward, run=_run_values, points=2),
    Check("functional_forward", "model_unchanged", "leaves the model's own parameters unchanged",
          _functional_cases, _reference_functional_forward, run=_run_model_unchanged,
          hints=(Hint(_functional_by_copy, "this matches copying θ into the model's parameters "
                      "(vector_to_parameters or .data); evaluate with θ without overwriting "
                      "them, e.g. torch.func.functional_call."),)),
    Check("functional_forward", "gradient", "lets gradients flow back to θ",
          _functional_cases, _reference_functional_forward, run=_run_gradient,
          hints=(Hint(_functional_by_copy, "the output does not depend on θ in the autograd "
                      "graph: copying θ into the parameters cuts the graph."),)),
)

# --------------------------------------------------------------------------- mse_loss


def _mse_cases(reductions):
    def cases(gen):
        out = []
        for shape, dtype in [((8,), torch.float32), ((4, 3), torch.float32), ((2, 3, 5), torch.float64)]:
            for reduction in reductions:
                kwargs = {} if reduction is None else {"reduction": reduction}
                name = reduction or "default"
                out.append(Case(f"{shape} {str(dtype)[6:]}, reduction={name}",
                                (randn(gen, *shape, dtype=dtype), randn(gen, *shape, dtype=dtype)),
                                kwargs))
        return out
    return cases


def _mse_batch_mean(pred, target, reduction="mean"):
    sq = (pred - target) ** 2
    return sq.sum() / pred.shape[0] if reduction == "mean" else F.mse_loss(pred, target, reduction=reduction)


def _mse_no_square(pred, target, reduction="mean"):
    return F.l1_loss(pred, target, reduction=reduction)


_MSE_HINTS = (
    Hint(_mse_batch_mean, "this matches dividing by the batch size; the mean is over every "
         "element (divide by pred.numel())."),
    Hint(_mse_no_square, "this matches the mean absolute error: square the differences."),
)

register(
    Check("mse_loss", "mean", "matches F.mse_loss with the default mean reduction",
          _mse_cases([None]), F.mse_loss, hints=_MSE_HINTS),
    Check("mse_loss", "sum_and_none", "matches F.mse_loss for reduction='sum' and 'none'",
          _mse_cases(["sum", "none"]), F.mse_loss, hints=_MSE_HINTS),
)

# --------------------------------------------------------------------------- cross_entropy


def _ce_values_cases(gen):
    out = []
    for n, c, dtype in [(8, 5, torch.float32), (1, 3, torch.float32), (16, 10, torch.float64)]:
        out.append(Case(f"logits ({n}, {c}) {str(dtype)[6:]}",
                        (randn(gen, n, c, dtype=dtype, scale=2.0), randint(gen, c, n))))
    return out


def _ce_reduction_cases(gen):
    logits, targets = randn(gen, 6, 4, scale=2.0), randint(gen, 4, 6)
    return [Case(f"reduction={r!r}", (logits, targets), {"reduction": r}) for r in ("sum", "none")]


def far_apart_logits(gen, *shape) -> torch.Tensor:
    """Logits in the thousands (exp overflows float32) whose values in a row are ≥ ~200 apart.

    Nearly equal large logits are avoided on purpose: a loss near 1 computed from numbers near
    1000 carries float32 rounding of ~6e-5 (the spacing of floats at 1000), more than the
    tolerance, and correct formulas differ there. With gaps of hundreds, each loss is exactly 0
    (the target is the row's maximum) or in the hundreds, where the relative error is tiny. Plain
    `randn × 1000` had such near ties: the solution failed on 9 of 400 seeds.
    """
    *lead, classes = shape
    ranks = torch.argsort(torch.rand(*lead, classes, generator=gen), dim=-1).to(torch.float32)
    return (ranks - (classes - 1) / 2) * 400.0 + randn(gen, *shape, scale=20.0)


def _ce_stable_cases(gen):
    big = far_apart_logits(gen, 8, 5)
    return [
        Case("logits × 1000 (float32)", (big, randint(gen, 5, 8))),
        Case("logits × 1000, reduction='none'", (big, randint(gen, 5, 8)), {"reduction": "none"}),
        Case("logits × 1000, reduction='sum'", (big, randint(gen, 5, 8)), {"reduction": "sum"}),
    ]


def _ce_ignore_cases(gen):
    targets = randint(gen, 5, 10)
    targets[[1, 4, 7]] = -100
    custom = randint(gen, 5, 10)
    custom[custom == 2] = 0
    custom[[0, 3]] = 2
    logits = randn(gen, 10, 5, scale=2.0)
    return [
        Case("3 of 10 targets = -100", (logits, targets)),
        Case("3 of 10 targets = -100, reduction='sum'", (logits, targets), {"reduction": "sum"}),
        Case("3 of 10 targets = -100, reduction='none'", (logits, targets), {"reduction": "none"}),
        Case("ignore_index=2", (logits, custom), {"ignore_index": 2}),
    ]


def _ce_naive(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: log(softmax) without subtracting the maximum (exp overflows)."""
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    logp = probs.log()
    keep = targets != ignore_index
    nll = -logp.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1) * keep
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _ce_mean_over_all(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: ignored targets excluded from the sum but still counted in the mean."""
    losses = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="none")
    if reduction == "none":
        return losses
    return losses.sum() / len(targets) if reduction == "mean" else losses.sum()


def _ce_not_ignoring(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: ignored positions treated as class 0."""
    fixed = torch.where(targets == ignore_index, torch.zeros_like(targets), targets)
    return F.cross_entropy(logits, fixed, reduction=reduction)


_CE_HINTS = (
    Hint(_ce_mean_over_all, "this matches dividing by all N targets; the mean is over the "
         "targets that are not ignored."),
    Hint(_ce_not_ignoring, "this matches treating ignored targets as class 0: their loss "
         "must be left out (0 with reduction='none')."),
    Hint(_ce_naive, "exp() of large logits overflows to inf in float32. Subtract each row's "
         "maximum before exponentiating (log-sum-exp), or use torch.logsumexp."),
)

register(
    Check("cross_entropy", "values", "matches F.cross_entropy (mean over the batch)",
          _ce_values_cases, F.cross_entropy, hints=_CE_HINTS, points=2),
    Check("cross_entropy", "reductions", "supports reduction='sum' and 'none'",
          _ce_reduction_cases, F.cross_entropy, hints=_CE_HINTS),
    Check("cross_entropy", "stable", "stays finite and exact for logits in the thousands",
          _ce_stable_cases, F.cross_entropy, hints=_CE_HINTS, points=2),
    Check("cross_entropy", "ignore_index", "leaves out targets equal to ignore_index",
          _ce_ignore_cases, F.cross_entropy, hints=_CE_HINTS),
)

# --------------------------------------------------------------------------- next_token_loss


def _reference_next_token(logits, tokens):
    """Position t predicts token t+1: drop the last prediction and the first token."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1))


def _next_token_cases(gen):
    out = []
    for b, t, v in [(2, 5, 7), (1, 2, 3), (4, 16, 50)]:
        out.append(Case(f"B={b}, T={t}, V={v}", (randn(gen, b, t, v, scale=2.0), randint(gen, v, b, t))))
    out.append(Case("logits × 1000", (far_apart_logits(gen, 2, 6, 11), randint(gen, 11, 2, 6))))
    return out


def _next_token_unshifted(logits, tokens):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))


def _next_token_backwards(logits, tokens):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, 1:].reshape(-1, vocab), tokens[:, :-1].reshape(-1))


def _next_token_flat_shift(logits, tokens):
    """The mistake: shifting after flattening, so one sequence predicts the next one's start."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab)[:-1], tokens.reshape(-1)[1:])


register(
    Check("next_token_loss", "values",
          "matches F.cross_entropy with position t predicting token t+1",
          _next_token_cases, _reference_next_token,
          hints=(Hint(_next_token_unshifted, "this matches no shift: position t must predict "
                      "token t+1, not token t. Use logits[:, :-1] against tokens[:, 1:]."),
                 Hint(_next_token_backwards, "this matches shifting the wrong way "
                      "(logits[:, 1:] against tokens[:, :-1])."),
                 Hint(_next_token_flat_shift, "this matches shifting after flattening: the "
                      "last position of one sequence then predicts the first token of the "
                      "next. Shift along the time dimension, then flatten.")), points=2),
)

# --------------------------------------------------------------------------- dataset_loss


def _reference_dataset_loss(model, loss_fn, inputs, targets, batch_size):
    """L(θ) = (1/|D|) Σ ℓ(f_θ(x), y): the full-batch mean loss, computed in float64."""
    with torch.no_grad():
        return float(loss_fn(model(inputs).double(), targets if not targets.is_floating_point()
                             else targets.double()))


def _dataset_cases(sizes):
    def cases(gen):
        out = []
        for n, batch_size in sizes:
            classifier = mlp(gen, 6, 16, 4)
            out.append(Case(f"classification, {n} examples, batch_size={batch_size}",
                            (classifier, F.cross_entropy, randn(gen, n, 6), randint(gen, 4, n),
                             batch_size)))
            regressor = mlp(gen, 3, 8, 2)
            out.append(Case(f"regression, {n} examples, batch_size={batch_size}",
                            (regressor, F.mse_loss, randn(gen, n, 3), randn(gen, n, 2), batch_size)))
        return out
    return cases


def _dataset_mean_of_batch_means(model, loss_fn, inputs, targets, batch_size):
    """The mistake: averaging the batch means, so the smaller last batch weighs too much."""
    with torch.no_grad():
        means = [float(loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size]))
                 for i in range(0, len(inputs), batch_size)]
    return sum(means) / len(means)


def _dataset_drop_last(model, loss_fn, inputs, targets, batch_size):
    n = len(inputs) // batch_size * batch_size
    with torch.no_grad():
        return float(loss_fn(model(inputs[:n]), targets[:n]))


_DATASET_HINTS = (
    Hint(_dataset_mean_of_batch_means, "this matches the mean of the minibatch means: when the "
         "last batch is smaller its examples weigh more. Weight each batch's mean by its size."),
    Hint(_dataset_drop_last, "this matches dropping the last, smaller batch: every example "
         "counts."),
)

register(
    Check("dataset_loss", "even_batches", "equals the full-batch loss when batches divide |D|",
          _dataset_cases([(32, 8), (12, 12)]), _reference_dataset_loss, rtol=1.3e-6, atol=1e-5,
          hints=_DATASET_HINTS),
    Check("dataset_loss", "last_batch_smaller",
          "equals the full-batch loss when the last batch is smaller",
          _dataset_cases([(30, 8), (7, 4), (5, 16)]), _reference_dataset_loss, rtol=1.3e-6,
          atol=1e-5, hints=_DATASET_HINTS, points=2),
)

# "Don't call F.cross_entropy or F.log_softmax" (the notebook's instructions).
forbid("cross_entropy", "torch.nn.functional.cross_entropy", "torch.nn.functional.log_softmax")
