"""Reasoning panels of the run viewer (votes, subtask trees, plans, solver work). Placeholder: see branch v-panels."""

from __future__ import annotations


def reasoning_panels(events: list[dict]) -> str:
    """An HTML fragment for the run's events (JSONL trace dicts); every value in it is escaped."""
    return ""
