"""Reasoning strategies that decide structure: chains, votes, subtask trees, plans."""
