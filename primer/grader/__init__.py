"""Grading learner submissions: the sandbox that runs their code, and what runs inside it."""
