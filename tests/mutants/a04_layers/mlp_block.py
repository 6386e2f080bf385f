"""Assignment 04: variants of MLPBlock (one is built from the SwiGLU and LayerNorm alternatives)."""

import torch
import torch.nn.functional as F
from torch import nn

from tests.mutants import alternative, as_cell, mutant

from .layer_norm_module import layernorm_register_parameter
from .stand_ins import _SwiGLUBase
from .swiglu import swiglu_own_linear

# --------------------------------------------------------------------------- MLPBlock


class _TorchSwiGLU(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class _BlockBase(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ffn = _TorchSwiGLU(d_model, d_ff)


@mutant("MLPBlock", hint="without the residual")
class block_no_residual(_BlockBase):
    def forward(self, x):
        return self.ffn(self.norm(x))


@mutant("MLPBlock", hint="post-norm")
class block_post_norm(_BlockBase):
    def forward(self, x):
        return self.norm(x + self.ffn(x))


@mutant("MLPBlock", hint="normalized input")
class block_residual_from_normalized(_BlockBase):
    def forward(self, x):
        h = self.norm(x)
        return h + self.ffn(h)


@mutant("MLPBlock", hint="normalize the input of SwiGLU")
class block_no_norm(_BlockBase):
    def forward(self, x):
        return x + self.ffn(x)


@mutant("MLPBlock", fails=("backward",))
class block_residual_detached(_BlockBase):
    def forward(self, x):
        return x.detach() + self.ffn(self.norm(x))


@mutant("MLPBlock", hint="the norm after SwiGLU")
class block_norm_after_branch(_BlockBase):
    def forward(self, x):
        return x + self.norm(self.ffn(x))


@mutant("MLPBlock", hint="normalizing the sum as well")
class block_norm_twice(_BlockBase):
    def forward(self, x):
        return self.norm(x + self.ffn(self.norm(x)))


block_with_nn_layernorm = mutant("MLPBlock", hint="asks you not to use",
                                 fails=("forward", "backward"))(as_cell(
    """
class block_with_nn_layernorm(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ffn = swiglu_own_linear(d_model, d_ff)

    def forward(self, x):
        return x + self.ffn(self.norm(x))
""", "block_with_nn_layernorm", __name__, swiglu_own_linear=swiglu_own_linear))


@alternative("MLPBlock")
class block_with_add(nn.Module):  # (built on the learner's own parts: nn.LayerNorm is forbidden here)
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.norm = layernorm_register_parameter(d_model)
        self.ffn = swiglu_own_linear(d_model, d_ff)

    def forward(self, x):
        return torch.add(self.ffn(self.norm(x)), x)


@alternative("MLPBlock")
class block_own_parts(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.norm = layernorm_register_parameter(d_model)
        self.ffn = swiglu_own_linear(d_model, d_ff)

    def forward(self, x):
        residual = x
        x = self.norm(x)
        x = self.ffn(x)
        return residual + x


@mutant("MLPBlock", hint="in place (x += ...)", fails=("forward",))
class block_adds_in_place(_BlockBase):
    """(a tester's answer) the residual added into the input."""

    def forward(self, x):
        out = self.ffn(self.norm(x))
        x += out
        return x
