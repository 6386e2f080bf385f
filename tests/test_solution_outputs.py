"""What a solution notebook's cell may show under nbval (conftest.py applies it to every cell of
solutions/, on the outputs nbval collected): nothing on stderr, and figures as images."""

from tests.helpers import solution_output_problem


def test_passes_text_and_figures_shown_as_images():
    outputs = [{"output_type": "stream", "name": "stdout", "text": "✓ mse_loss.mean: ...\n"},
               {"output_type": "display_data",
                "data": {"text/plain": "<Figure size 640x480 with 1 Axes>", "image/png": "iVBORw0KGgo="}}]
    assert solution_output_problem(outputs) is None
    assert solution_output_problem([]) is None


def test_names_stderr_and_a_figure_shown_as_text():
    warned = [{"output_type": "stream", "name": "stderr", "text": "UserWarning: something\n"}]
    assert solution_output_problem(warned) == "the cell wrote to stderr: UserWarning: something\n"
    as_text = [{"output_type": "execute_result",
                "data": {"text/plain": "<Figure size 1000x350 with 2 Axes>"}}]
    assert solution_output_problem(as_text).startswith("a figure shown as text, not as an image")
