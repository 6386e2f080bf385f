"""Assignment 04: MLPBlock, x + SwiGLU(LayerNorm(x))."""

from __future__ import annotations

from torch import nn

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

from .harness import TorchSwiGLU, _module_run, _swiglu_weights

# --------------------------------------------------------------------------- MLPBlock


class TorchMLPBlock(nn.Module):
    """The reference: x + SwiGLU(LayerNorm(x)) from torch modules."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ffn = TorchSwiGLU(d_model, d_ff)

    def forward(self, x):
        return x + self.ffn(self.norm(x))


def _block_cases(gen):
    out = []
    for batch, d_model, d_ff in [((6,), 8, 16), ((2, 4), 16, 24)]:
        tensors = {"norm.weight": randn(gen, d_model) + 1.0, "norm.bias": randn(gen, d_model)}
        tensors |= {f"ffn.{k}": v for k, v in _swiglu_weights(gen, d_model, d_ff).items()}
        x = randn(gen, *batch, d_model, scale=2.0) + 1.0
        out.append(Case(f"MLPBlock({d_model}, {d_ff}), x {(*batch, d_model)}",
                        ((d_model, d_ff), tensors, x, randn(gen, *batch, d_model))))
    return out


class _BlockNoResidual(TorchMLPBlock):
    def forward(self, x):
        return self.ffn(self.norm(x))


class _BlockPostNorm(TorchMLPBlock):
    def forward(self, x):
        return self.norm(x + self.ffn(x))


class _BlockResidualNormed(TorchMLPBlock):
    def forward(self, x):
        h = self.norm(x)
        return h + self.ffn(h)


class _BlockNoNorm(TorchMLPBlock):
    def forward(self, x):
        return x + self.ffn(x)


class _BlockNormOfBranch(TorchMLPBlock):
    def forward(self, x):
        return x + self.norm(self.ffn(x))


class _BlockNormTwice(TorchMLPBlock):
    def forward(self, x):
        return self.norm(x + self.ffn(self.norm(x)))


class _BlockInPlace(TorchMLPBlock):
    def forward(self, x):
        x += self.ffn(self.norm(x))
        return x


_BLOCK_HINTS = (
    Hint(_BlockInPlace, "this matches adding the branch into x in place (x += ...): that "
         "overwrites the caller's input, which autograd forbids for a tensor that requires grad. "
         "Return a new tensor: x + SwiGLU(LayerNorm(x))."),
    Hint(_BlockNoResidual, "this matches SwiGLU(LayerNorm(x)) without the residual: add x."),
    Hint(_BlockPostNorm, "this matches LayerNorm(x + SwiGLU(x)) (post-norm); here the norm comes "
         "first, inside the branch: x + SwiGLU(LayerNorm(x)) (pre-norm)."),
    Hint(_BlockResidualNormed, "this matches adding the normalized input, h + SwiGLU(h) with "
         "h = LayerNorm(x); the residual adds the original x."),
    Hint(_BlockNoNorm, "this matches x + SwiGLU(x): normalize the input of SwiGLU."),
    Hint(_BlockNormOfBranch, "this matches x + LayerNorm(SwiGLU(x)), the norm after SwiGLU; it "
         "goes before: x + SwiGLU(LayerNorm(x))."),
    Hint(_BlockNormTwice, "this matches normalizing the sum as well, LayerNorm(x + SwiGLU(LayerNorm(x))); "
         "the residual sum is returned as it is: x + SwiGLU(LayerNorm(x))."),
)

register(
    Check("MLPBlock", "forward", "x + SwiGLU(LayerNorm(x)) matches the block built from torch "
          "modules with the same weights", _block_cases, TorchMLPBlock,
          run=_module_run("forward"), hints=_BLOCK_HINTS, single_threaded=True),
    # In float64: the learner's hand-written LayerNorm backward and autograd's round differently, and
    # in float32 one gradient element in ~128 missed the tolerance on 1 seed in 40 (seed 1026).
    Check("MLPBlock", "backward", "gradients of the input and of every weight match autograd's "
           "(in float64)", _block_cases, TorchMLPBlock, run=_module_run("backward", float64=True),
           hints=_BLOCK_HINTS, single_threaded=True),
)

# The notebook asks for the learner's own LayerNorm and SwiGLU (built on their Linear).
forbid("MLPBlock", "torch.nn.LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm",
       "torch.nn.Linear", "torch.nn.functional.linear")
