"""The course package that notebooks import: `from primer import check`."""

from primer.grading import Case, Check, CheckFailed, Hint, check, evaluate, register

__all__ = ["Case", "Check", "CheckFailed", "Hint", "check", "evaluate", "register"]
