"""The grading contract itself: what a learner sees for each kind of wrong answer."""

import dataclasses
import subprocess
import sys
import time
import warnings

import pytest
import torch

from primer.grading import Case, Check, CheckFailed, Hint, check, evaluate, get_check


def _double(x):
    return 2 * x


def _cases(gen):
    return [Case("x of shape (3, 4)", (torch.arange(12.0).reshape(3, 4),))]


SPEC = Check("double", "values", "doubles its input", _cases, _double,
             hints=(Hint(lambda x: x + 2, "this matches adding 2 instead of multiplying by 2."),))


def failure(obj, spec=SPEC) -> str:
    result = evaluate(spec, obj)
    assert not result.passed
    return result.message


def test_correct_answer_passes_and_says_what_it_checked(capsys):
    assert evaluate(SPEC, lambda x: x + x).passed
    assert "doubles its input" in evaluate(SPEC, lambda x: x * 2).message


def test_wrong_values_name_case_largest_error_and_where():
    def wrong(x):
        y = 2 * x
        y[1, 2] += 5.0  # the only wrong element: expected 12, got 17
        return y
    message = failure(wrong)
    assert "case 'x of shape (3, 4)'" in message
    assert "1 of 12 elements" in message
    assert "at index (1, 2): expected 12, got 17" in message


def test_wrong_shape_shows_both_shapes():
    message = failure(lambda x: (2 * x).sum(0))
    assert "wrong shape" in message and "(3, 4)" in message and "(4,)" in message


def test_wrong_dtype_shows_both_dtypes():
    message = failure(lambda x: (2 * x).double())
    assert "wrong dtype" in message and "float32" in message and "float64" in message


def test_returning_none_suggests_a_missing_return():
    assert "returned None" in failure(lambda x: None)


def test_returning_a_list_instead_of_a_tensor():
    assert "got list" in failure(lambda x: (2 * x).tolist())


def test_known_mistake_is_named():
    assert "adding 2 instead of multiplying" in failure(lambda x: x + 2)


def test_learner_exception_points_at_the_learner_line():
    def broken(x):
        return x @ torch.ones(5)  # shapes do not match
    message = failure(broken)
    assert "RuntimeError" in message and "at line" in message and "x @ torch.ones(5)" in message


def test_not_implemented_says_so_on_the_first_line():
    def stub(x):
        raise NotImplementedError()
    assert "not implemented yet" in failure(stub).splitlines()[0]


def test_infinite_loop_is_stopped_with_a_message():
    def forever(x):
        while True:
            pass
    spec = dataclasses.replace(SPEC, timeout=0.5)
    start = time.perf_counter()
    message = failure(forever, spec)
    assert time.perf_counter() - start < 5
    assert "did not finish within 0.5 s" in message


def test_deep_recursion_is_reported():
    def recurse(x, depth=0):
        return recurse(x, depth + 1)
    assert "RecursionError" in failure(recurse)


def test_warning_costs_nothing_and_stays_off_stderr(capsys):
    def noisy(x):
        warnings.warn("this is only a warning")
        print("debug output on stderr", file=sys.stderr)
        return 2 * x
    result = evaluate(SPEC, noisy)
    assert result.passed and any("only a warning" in w for w in result.warnings)
    captured = capsys.readouterr()
    assert captured.err == ""


def test_check_raises_checkfailed_with_a_one_line_render():
    with pytest.raises(CheckFailed) as info:
        check("cross_entropy.values", lambda logits, targets, **kw: logits.sum())
    rendered = info.value._render_traceback_()
    assert len(rendered) == 1 and "cross_entropy.values" in rendered[0]


def test_unknown_check_name_lists_the_real_ones():
    with pytest.raises(KeyError, match="cross_entropy.stable"):
        get_check("cross_entropy.stabel")


def test_hidden_checks_use_the_grading_seed(monkeypatch):
    spec = get_check("mse_loss.mean")
    monkeypatch.setenv("PRIMER_GRADING_SEED", "5")
    from primer.grading import grading_seed
    visible = spec.cases(torch.Generator().manual_seed(0))
    hidden = spec.cases(torch.Generator().manual_seed(grading_seed()))
    assert grading_seed() == 5
    assert not torch.equal(visible[0].args[0], hidden[0].args[0])


def test_learner_modifying_its_input_cannot_change_the_reference():
    def in_place(x):
        x.mul_(2)
        return x
    assert evaluate(SPEC, in_place).passed  # the reference saw the original input


def test_nan_where_a_number_is_expected_fails_with_infinite_error():
    message = failure(lambda x: torch.full_like(x, float("nan")))
    assert "largest error inf" in message


def test_nan_matches_nan():
    spec = Check("log", "values", "log", lambda g: [Case("negative", (torch.tensor([-1.0, 1.0]),))],
                 torch.log)
    assert evaluate(spec, lambda x: x.log()).passed


def test_exact_checks_compare_bits():
    spec = Check("ident", "bits", "bits", lambda g: [Case("zeros", (torch.tensor([0.0, 1.0]),))],
                 lambda x: x.clone(), exact=True)
    assert not evaluate(spec, lambda x: torch.tensor([-0.0, 1.0])).passed
    assert evaluate(spec, lambda x: x + 0.0).passed


def test_integers_compare_exactly():
    spec = Check("count", "n", "n", lambda g: [Case("one", ())], lambda: 10)
    assert evaluate(spec, lambda: 10).passed
    assert "expected 10, got 11" in failure(lambda: 11, spec)


def _cell_function(source: str, name: str):
    """A function compiled as a notebook cell is (the tripwires look for learner cells on the stack)."""
    namespace = {"torch": torch, "F": torch.nn.functional}
    exec(compile(source, "<cell 1>", "exec"), namespace)
    return namespace[name]


def test_a_forbidden_function_fails_the_exercise_with_a_message():
    spec = get_check("cross_entropy.values")
    forbidden = _cell_function(
        "def cross_entropy(logits, targets, ignore_index=-100, reduction='mean'):\n"
        "    return F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction=reduction)\n",
        "cross_entropy")
    result = evaluate(spec, forbidden)
    assert not result.passed and "`F.cross_entropy`" in result.message and "not to use" in result.message
    allowed = _cell_function(  # torch.logsumexp is not forbidden
        "def cross_entropy(logits, targets, ignore_index=-100, reduction='mean'):\n"
        "    keep = targets != ignore_index\n"
        "    safe = torch.where(keep, targets, 0)\n"
        "    nll = torch.logsumexp(logits, 1) - logits.gather(1, safe[:, None])[:, 0]\n"
        "    nll = torch.where(keep, nll, 0.0)\n"
        "    if reduction == 'none':\n        return nll\n"
        "    return nll.sum() if reduction == 'sum' else nll.sum() / keep.sum()\n",
        "cross_entropy")
    assert evaluate(spec, allowed).passed, evaluate(spec, allowed).message


def test_a_forbidden_function_bound_before_the_first_check_is_still_seen():
    """`import primer` (the notebook's first cell) installs the tripwires: a cell that imports the
    function by name, or saves it in a default argument, binds the tripwire, as in grading."""
    cell = (
        "from torch.nn.functional import cross_entropy as ce\n"
        "def by_name(logits, targets, ignore_index=-100, reduction='mean'):\n"
        "    return ce(logits, targets, ignore_index=ignore_index, reduction=reduction)\n"
        "def by_default(logits, targets, ignore_index=-100, reduction='mean', _f=F.cross_entropy):\n"
        "    return _f(logits, targets, ignore_index=ignore_index, reduction=reduction)\n")
    script = (
        "import torch.nn.functional as F\n"
        "import primer\n"
        "namespace = {'F': F}\n"
        f"exec(compile({cell!r}, '<cell 1>', 'exec'), namespace)\n"
        "from primer.grading import evaluate, get_check\n"
        "spec = get_check('cross_entropy.values')\n"
        "for name in ('by_name', 'by_default'):\n"
        "    print(name, 'not to use' in evaluate(spec, namespace[name]).message)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["by_name", "True", "by_default", "True"], done.stdout


def test_numbers_that_differ_past_six_digits_are_printed_until_they_differ():
    # 1/3 and 1/3 + 1e-9 agree to 8 significant digits: 0.333333333 vs 0.333333334 at 9
    spec = Check("third", "n", "n", lambda g: [Case("one", ())], lambda: 1 / 3, rtol=1e-12, atol=0.0)
    message = failure(lambda: 1 / 3 + 1e-9, spec)
    assert "expected 0.333333333, got 0.333333334" in message
    assert "error 1e-09" in message
    tensors = Check("thirds", "t", "t", lambda g: [Case("one", ())],
                    lambda: torch.full((2,), 1 / 3, dtype=torch.float64), rtol=1e-12, atol=0.0)
    message = failure(lambda: torch.tensor([1 / 3, 1 / 3 + 1e-9], dtype=torch.float64), tensors)
    assert "at index (1,): expected 0.333333333, got 0.333333334" in message


def test_a_hint_is_given_only_when_one_mistake_matches():
    add_two = Hint(lambda x: x + 2, "this matches adding 2 instead of multiplying by 2.")
    # on x = (0, 1, 2): x + 2 = (2, 3, 4) and x² + 2 = (2, 3, 6) tell these two apart
    squares = Hint(lambda x: x * x + 2, "this matches squaring, then adding 2.")
    plus_two_again = Hint(lambda x: x + 2.0, "this matches adding 2.0 (another mistake, same output).")
    cases = lambda g: [Case("x = (0, 1, 2)", (torch.tensor([0.0, 1.0, 2.0]),))]  # noqa: E731
    one = Check("double", "values", "doubles", cases, _double, hints=(add_two, squares))
    assert "adding 2" in failure(lambda x: x + 2, one)
    assert "squaring" in failure(lambda x: x * x + 2, one)
    both = Check("double", "values", "doubles", cases, _double, hints=(add_two, plus_two_again))
    assert "Hint" not in failure(lambda x: x + 2, both)  # two mistakes give this output: name neither


def test_no_hint_on_an_output_that_is_only_true_or_false():
    cases = lambda g: [Case("x = 1", (1.0,))]  # noqa: E731
    spec = Check("positive", "values", "is positive", cases, lambda x: {"positive": x > 0},
                 hints=(Hint(lambda x: {"positive": x < 0}, "this matches testing x < 0."),))
    assert "Hint" not in failure(lambda x: {"positive": False}, spec)


def test_a_check_can_name_the_axes_and_levels_of_its_output():
    def two_ranks():
        return [[torch.zeros(3, 2), torch.zeros(2)], [torch.zeros(3, 2), torch.zeros(2)]]

    def wrong():
        out = two_ranks()
        out[1][0][2, 1] = 1.0  # rank 1, tensor 0, step 2, element 1
        return out
    spec = Check("ranks", "values", "v", lambda g: [Case("two ranks", ())], two_ranks,
                 levels=("rank", "tensor"), axes=("step", "parameter element"))
    message = failure(wrong, spec)
    assert "in output[1][0] (rank 1, tensor 0)" in message
    assert "at step 2, parameter element 1 (index (2, 1))" in message
    unnamed = Check("ranks", "values", "v", lambda g: [Case("two ranks", ())], two_ranks)
    assert "in output[1][0]: 1 of 6 elements" in failure(wrong, unnamed)
    assert "at index (2, 1)" in failure(wrong, unnamed)


def test_a_known_mistake_that_raises_is_named_when_the_learner_code_raises_the_same():
    def no_none_check(grads):  # forgets that a parameter without a gradient has grad None
        return [2 * g for g in grads]

    def no_none_check_either(grads):  # the same mistake, written differently
        return list(map(lambda g: 2 * g, grads))

    cases = lambda g: [Case("one gradient is None", ([torch.ones(2), None],))]  # noqa: E731
    spec = Check("double_grads", "values", "doubles the gradients that exist", cases,
                 lambda grads: [None if g is None else 2 * g for g in grads],
                 hints=(Hint(no_none_check, "this matches forgetting parameters whose grad is None."),))
    message = failure(no_none_check_either, spec)
    assert "your code raised TypeError" in message and "grad is None" in message
    other_error = failure(lambda grads: grads[5], spec)  # IndexError: not that mistake
    assert "IndexError" in other_error and "Hint" not in other_error
