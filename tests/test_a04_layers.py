"""Assignment 04: properties of the checks that the generic tests do not cover."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from primer.exercises.a04_layers import linear as spec_linear
from primer.grading import checks_for, evaluate, get_check
from tests.mutants import load_all

SEEDS = [0, 1, 777, 2024, 31337]


@pytest.mark.parametrize("exercise", ["LinearFunction", "Linear"])
def test_mutants_of_shared_layers_pass_some_check(exercise):
    """The end-to-end test replaces the first exercise with a mutant failing all its checks and
    expects only that exercise's points lost. Later exercises are built on LinearFunction and
    Linear, so the replaced exercise must not be one of them: each of their mutants passes at
    least one check, on every seed (the grading seed is random)."""
    mutants = [v for v in load_all() if v.assignment == "a04_layers" and v.exercise == exercise
               and not v.correct]
    assert mutants
    for v in mutants:
        for seed in SEEDS:
            assert any(evaluate(s, v.obj, seed).passed for s in checks_for(exercise)), (v.id, seed)


def test_the_first_relu_mutant_fails_every_relu_check():
    first = next(v for v in load_all() if v.assignment == "a04_layers" and v.exercise == "relu"
                 and not v.correct)
    for seed in SEEDS:
        assert not any(evaluate(s, first.obj, seed).passed for s in checks_for("relu"))


@pytest.mark.parametrize("d_in,d_out", [(512, 256), (64, 512), (1024, 32)])
def test_init_statistics_accept_nn_linear_on_many_seeds(d_in, d_out):
    for seed in range(20):
        torch.manual_seed(seed)
        layer = nn.Linear(d_in, d_out)
        assert spec_linear._uniform_verdict(layer.weight, d_in) == spec_linear._UNIFORM_OK
        if d_out >= 256:
            assert spec_linear._uniform_verdict(layer.bias, d_in) == spec_linear._UNIFORM_OK


def test_init_statistics_reject_other_distributions():
    torch.manual_seed(0)
    k = 1 / math.sqrt(512)
    wrong = {"normal": torch.randn(256, 512) * k, "normal, std k/√3": torch.randn(256, 512) * k / 3**0.5,
             "bound 0.9k": torch.empty(256, 512).uniform_(-0.9 * k, 0.9 * k),
             "bound 1.1k": torch.empty(256, 512).uniform_(-1.1 * k, 1.1 * k),
             "U(0, k)": torch.rand(256, 512) * k, "zeros": torch.zeros(256, 512)}
    for name, t in wrong.items():
        assert spec_linear._uniform_verdict(t, 512) != spec_linear._UNIFORM_OK, name


@pytest.mark.parametrize("seed", SEEDS)
def test_large_mean_inputs_have_an_exact_float32_mean(seed):
    """The premise of LayerNormFunction.large_mean: every partial sum of a row is exact in
    float32, so a subtract-the-mean-first implementation is exact (with x.mean() or
    torch.var_mean), while torch's own float32 kernel is not (why the reference is computed in
    float64)."""
    check_spec = get_check("LayerNormFunction.large_mean")
    for case in check_spec.cases(torch.Generator().manual_seed(seed)):
        x = case.args[0]
        assert x.dtype == torch.float32
        assert torch.equal(x.cumsum(-1).double(), x.double().cumsum(-1))
        assert 0.003 < x.double().std(-1).mean() < 0.03 and (x.double().mean() - 1e4).abs() < 0.1
        exact = F.layer_norm(x.double(), x.shape[-1:]).float()
        two_pass = (x - x.mean(-1, keepdim=True))
        two_pass = two_pass / torch.sqrt(two_pass.pow(2).mean(-1, keepdim=True) + 1e-5)
        torch.testing.assert_close(two_pass, exact)
        var, mean = torch.var_mean(x, -1, keepdim=True, unbiased=False)
        torch.testing.assert_close((x - mean) * torch.rsqrt(var + 1e-5), exact)
        assert (F.layer_norm(x, x.shape[-1:]) - exact).abs().max() > 1e-3


def test_gradcheck_failure_of_a_crashing_backward_is_reported_as_a_crash():
    class Crashes(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b=None):
            return F.linear(x, w, b)

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")

    result = evaluate(get_check("LinearFunction.gradcheck"), Crashes)
    assert not result.passed and "ValueError: boom" in result.message
