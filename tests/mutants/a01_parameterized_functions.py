"""Assignment 01: mistakes a learner might make, and correct answers written differently."""

import math
import warnings

import torch
import torch.nn.functional as F

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- count_parameters


@mutant("count_parameters", hint="shared parameter", fails=("shared_and_frozen",))
def count_per_module(model):
    return sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False))


@mutant("count_parameters", hint="requires_grad=False", fails=("shared_and_frozen",))
def count_frozen_too(model):
    return sum(p.numel() for p in model.parameters())


@mutant("count_parameters", hint="only the weights")
def count_weights_only(model):
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))


@mutant("count_parameters")
def count_tensors(model):
    return len([p for p in model.parameters() if p.requires_grad])


@alternative("count_parameters")
def count_by_identity(model):
    seen = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        if p.requires_grad:
            seen[id(p)] = math.prod(p.shape)
    return sum(seen.values())


# --------------------------------------------------------------------------- functional_forward


@mutant("functional_forward", hint="copying θ into the model", fails=("model_unchanged",))
def forward_by_copy(model, theta, x):
    torch.nn.utils.vector_to_parameters(theta.detach(), model.parameters())
    return model(x)


@mutant("functional_forward", fails=("values",))
def forward_ignores_theta(model, theta, x):
    return model(x)


@mutant("functional_forward", fails=("values",))
def forward_transposed_weights(model, theta, x):
    params, offset = {}, 0
    for name, p in model.named_parameters():
        chunk = theta[offset:offset + p.numel()]
        params[name] = chunk.reshape(p.shape[::-1]).T if p.dim() == 2 else chunk
        offset += p.numel()
    return torch.func.functional_call(model, params, (x,))


@alternative("functional_forward")
def forward_by_hand(model, theta, x):
    """Walks the Sequential layer by layer; works for Linear and activation layers."""
    offset = 0
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            w_n, b_n = layer.weight.numel(), layer.bias.numel()
            w = theta[offset:offset + w_n].view(layer.out_features, layer.in_features)
            b = theta[offset + w_n:offset + w_n + b_n]
            offset += w_n + b_n
            x = F.linear(x, w, b)
        else:
            x = layer(x)
    return x


# --------------------------------------------------------------------------- mse_loss


@mutant("mse_loss", hint="batch size", fails=("mean",))
def mse_over_batch(pred, target, reduction="mean"):
    sq = (pred - target) ** 2
    if reduction == "mean":
        return sq.sum() / pred.shape[0]
    return sq.sum() if reduction == "sum" else sq


@mutant("mse_loss", hint="absolute error")
def mse_absolute(pred, target, reduction="mean"):
    e = (pred - target).abs()
    return e.mean() if reduction == "mean" else e.sum() if reduction == "sum" else e


@mutant("mse_loss", fails=("sum_and_none",))
def mse_ignores_reduction(pred, target, reduction="mean"):
    return ((pred - target) ** 2).mean()


@alternative("mse_loss")
def mse_with_pow_and_warning(pred, target, reduction="mean"):
    warnings.warn("a harmless warning from the learner's code")
    diff = torch.sub(pred, target)
    out = diff.pow(2)
    return {"none": out, "sum": out.sum(), "mean": out.sum() / out.numel()}[reduction]


# --------------------------------------------------------------------------- cross_entropy


@mutant("cross_entropy", hint="log-sum-exp", fails=("stable",))
def ce_literal_softmax(logits, targets, ignore_index=-100, reduction="mean"):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    keep = targets != ignore_index
    nll = -p.log().gather(1, targets.clamp(min=0)[:, None])[:, 0] * keep
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


@mutant("cross_entropy", hint="all N targets", fails=("ignore_index",))
def ce_mean_over_all(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    lse = torch.logsumexp(logits, 1)
    nll = (lse - logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]) * keep
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


@mutant("cross_entropy", hint="class 0", fails=("ignore_index",))
def ce_ignores_nothing(logits, targets, ignore_index=-100, reduction="mean"):
    t = torch.where(targets == ignore_index, 0, targets)
    nll = torch.logsumexp(logits, 1) - logits.gather(1, t[:, None])[:, 0]
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


@mutant("cross_entropy", fails=("values",))
def ce_wrong_sign(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    nll = (logits.gather(1, targets.clamp(min=0)[:, None])[:, 0] - torch.logsumexp(logits, 1)) * keep
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


@mutant("cross_entropy", fails=("values",))
def ce_returns_none(logits, targets, ignore_index=-100, reduction="mean"):
    torch.logsumexp(logits, 1)


@alternative("cross_entropy")
def ce_with_log_softmax_by_hand(logits, targets, ignore_index=-100, reduction="mean"):
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    mask = targets.ne(ignore_index)
    picked = logp[torch.arange(len(targets)), targets.masked_fill(~mask, 0)]
    losses = -picked.masked_fill(~mask, 0.0)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / mask.sum()


# --------------------------------------------------------------------------- next_token_loss


@mutant("next_token_loss", hint="no shift")
def next_token_unshifted(logits, tokens):
    return F.cross_entropy(logits.flatten(0, 1), tokens.flatten())


@mutant("next_token_loss", hint="wrong way")
def next_token_backwards(logits, tokens):
    return F.cross_entropy(logits[:, 1:].flatten(0, 1), tokens[:, :-1].flatten())


@mutant("next_token_loss", hint="after flattening")
def next_token_flat_shift(logits, tokens):
    return F.cross_entropy(logits.flatten(0, 1)[:-1], tokens.flatten()[1:])


@mutant("next_token_loss")
def next_token_mean_per_sequence_sum(logits, tokens):
    per = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    return per.sum(1).mean()


@alternative("next_token_loss")
def next_token_transposed(logits, tokens):
    # F.cross_entropy also takes (B, V, T) logits with (B, T) targets.
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:])


# --------------------------------------------------------------------------- dataset_loss


@mutant("dataset_loss", hint="mean of the minibatch means", fails=("last_batch_smaller",))
def dataset_mean_of_means(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        means = [loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size]).item()
                 for i in range(0, len(inputs), batch_size)]
    return sum(means) / len(means)


@mutant("dataset_loss", hint="dropping the last", fails=("last_batch_smaller",))
def dataset_drop_last(model, loss_fn, inputs, targets, batch_size):
    n = len(inputs) // batch_size
    with torch.no_grad():
        total = sum(loss_fn(model(inputs[i * batch_size:(i + 1) * batch_size]),
                            targets[i * batch_size:(i + 1) * batch_size]).item() * batch_size
                    for i in range(n))
    return total / (n * batch_size)


@mutant("dataset_loss")
def dataset_sum_not_mean(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        return sum(loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size]).item()
                   * len(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size))


@alternative("dataset_loss")
def dataset_with_split_and_tensor(model, loss_fn, inputs, targets, batch_size):
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
            total += loss_fn(model(x), y).double() * x.shape[0]
    return total / inputs.shape[0]
