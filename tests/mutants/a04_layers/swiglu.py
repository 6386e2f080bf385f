"""Assignment 04: variants of SwiGLU."""

import torch
import torch.nn.functional as F
from torch import nn

from tests.mutants import alternative, as_cell, mutant

from .stand_ins import _Lin, _SwiGLUBase

# --------------------------------------------------------------------------- SwiGLU


@mutant("SwiGLU", hint="sigmoid gate", fails=("forward", "backward"))
class swiglu_sigmoid(_SwiGLUBase):
    def forward(self, x):
        return self.w2(torch.sigmoid(self.w1(x)) * self.w3(x))


@mutant("SwiGLU", hint="SiLU to W3 x", fails=("forward",))
class swiglu_gate_on_wrong_branch(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.silu(self.w3(x)) * self.w1(x))


@mutant("SwiGLU", hint="GELU", fails=("forward",))
class swiglu_gelu(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.gelu(self.w1(x)) * self.w3(x))


@mutant("SwiGLU", fails=("forward", "backward"))
class swiglu_with_biases(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff)
        self.w2 = nn.Linear(d_ff, d_model)
        self.w3 = nn.Linear(d_model, d_ff)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


@mutant("SwiGLU", fails=("backward",))
class swiglu_detached_gate(_SwiGLUBase):
    """Right values, but the gate is detached, so no gradient reaches W1 through it."""

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)).detach() * self.w3(x))


@mutant("SwiGLU", hint="adding the gate", fails=("forward",))
class swiglu_sum_of_branches(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) + self.w3(x))


@mutant("SwiGLU", hint="after the product", fails=("forward",))
class swiglu_silu_of_product(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.silu(self.w1(x) * self.w3(x)))


swiglu_with_nn_linear = mutant("SwiGLU", hint="asks you not to use", fails=("forward", "backward"))(as_cell(
    """
class swiglu_with_nn_linear(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)
        self.w3 = nn.Linear(d_model, d_ff, bias=False)

    def forward(self, x):
        a = self.w1(x)
        return self.w2(a * torch.sigmoid(a) * self.w3(x))
""", "swiglu_with_nn_linear", __name__))


class _Weight(nn.Module):
    """One weight, in nn.Linear's (out, in) layout and under its name (`w1.weight`)."""

    def __init__(self, d_out, d_in):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * d_in ** -0.5)


@alternative("SwiGLU")
class swiglu_functional(nn.Module):
    """The products written out and the gate with torch.sigmoid (nn.Linear, F.linear and F.silu
    are forbidden in SwiGLU)."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1, self.w2, self.w3 = _Weight(d_ff, d_model), _Weight(d_model, d_ff), _Weight(d_ff, d_model)

    def forward(self, x):
        a = x @ self.w1.weight.T
        return (a * torch.sigmoid(a) * (x @ self.w3.weight.T)) @ self.w2.weight.T


class _NoBiasLinear(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in).uniform_(-d_in ** -0.5, d_in ** -0.5))

    def forward(self, x):
        return _Lin.apply(x, self.weight, None)


@alternative("SwiGLU")
class swiglu_own_linear(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1, self.w3 = _NoBiasLinear(d_model, d_ff), _NoBiasLinear(d_model, d_ff)
        self.w2 = _NoBiasLinear(d_ff, d_model)

    def forward(self, x):  # (F.silu is forbidden in SwiGLU: the gate written out)
        a = self.w1(x)
        return self.w2(a * torch.sigmoid(a) * self.w3(x))


@mutant("SwiGLU", hint="SiLU applied to the output of W2", fails=("forward",))
class swiglu_silu_after_w2(_SwiGLUBase):
    """(a tester's answer)"""

    def forward(self, x):
        h = self.w1(x) * self.w3(x)
        return F.silu(self.w2(h))
