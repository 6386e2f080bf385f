"""Assignment 04: SwiGLU (its reference, TorchSwiGLU, is in harness.py: MLPBlock is built on it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

from .harness import TorchSwiGLU, _module_run, _swiglu_weights

# --------------------------------------------------------------------------- SwiGLU


def _swiglu_cases(gen):
    out = []
    for batch, d_model, d_ff in [((5,), 8, 16), ((2, 3), 12, 32), ((4,), 6, 6)]:
        out.append(Case(f"SwiGLU({d_model}, {d_ff}), x {(*batch, d_model)}",
                        ((d_model, d_ff), _swiglu_weights(gen, d_model, d_ff),
                         randn(gen, *batch, d_model, scale=2.0), randn(gen, *batch, d_model))))
    return out


class _SwiGLUSigmoid(TorchSwiGLU):
    def forward(self, x):
        return self.w2(torch.sigmoid(self.w1(x)) * self.w3(x))


class _SwiGLUWrongBranch(TorchSwiGLU):
    def forward(self, x):
        return self.w2(self.w1(x) * F.silu(self.w3(x)))


class _SwiGLUGelu(TorchSwiGLU):
    def forward(self, x):
        return self.w2(F.gelu(self.w1(x)) * self.w3(x))


class _SwiGLUNoGate(TorchSwiGLU):
    def forward(self, x):
        return self.w2(F.silu(self.w1(x)))


class _SwiGLUSum(TorchSwiGLU):
    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) + self.w3(x))


class _SwiGLUSiluOfProduct(TorchSwiGLU):
    def forward(self, x):
        return self.w2(F.silu(self.w1(x) * self.w3(x)))


class _SwiGLUSiluAfterW2(TorchSwiGLU):
    def forward(self, x):
        return F.silu(self.w2(self.w1(x) * self.w3(x)))


_SWIGLU_HINTS = (
    Hint(_SwiGLUSigmoid, "this matches σ(W1 x) ⊙ W3 x (a GLU with a sigmoid gate); SwiGLU uses "
         "SiLU: silu(W1 x) = (W1 x)·σ(W1 x)."),
    Hint(_SwiGLUWrongBranch, "this matches applying SiLU to W3 x; the SiLU goes on W1 x and W3 x "
         "is the linear branch."),
    Hint(_SwiGLUGelu, "this matches GELU in place of SiLU (that is GeGLU)."),
    Hint(_SwiGLUNoGate, "this matches W2 silu(W1 x) without the gate: multiply by W3 x."),
    Hint(_SwiGLUSum, "this matches adding the gate, silu(W1 x) + W3 x; the two branches are "
         "multiplied elementwise: silu(W1 x) ⊙ W3 x."),
    Hint(_SwiGLUSiluOfProduct, "this matches silu(W1 x ⊙ W3 x), SiLU applied after the product; "
         "it goes on W1 x alone: silu(W1 x) ⊙ W3 x."),
    Hint(_SwiGLUSiluAfterW2, "this matches silu(W2 (W1 x ⊙ W3 x)), SiLU applied to the output of "
         "W2; it goes on W1 x, before the product and before W2: W2 (silu(W1 x) ⊙ W3 x)."),
)

register(
    Check("SwiGLU", "forward", "W2 (silu(W1 x) ⊙ W3 x) with the given weights, no biases",
          _swiglu_cases, TorchSwiGLU, run=_module_run("forward"), hints=_SWIGLU_HINTS, single_threaded=True),
    Check("SwiGLU", "backward", "gradients of the input and of W1, W2, W3 match autograd's",
          _swiglu_cases, TorchSwiGLU, run=_module_run("backward"), hints=_SWIGLU_HINTS, single_threaded=True),
)

# The notebook asks for the learner's own Linear and silu.
forbid("SwiGLU", "torch.nn.Linear", "torch.nn.functional.linear", "torch.nn.functional.silu")
