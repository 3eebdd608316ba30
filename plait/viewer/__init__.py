"""The run viewer: one self-contained HTML page per run (``plait view``, :func:`write_view`).

``_sources`` reads a trace, checkpoint or results file; ``_model`` turns a run's events into activations,
nodes and totals; ``_layout`` places the graph; ``_page`` writes the HTML with its data embedded;
``_reasoning`` adds the reasoning panels (votes, subtask trees, plans, solver work).
"""

from plait.viewer._page import write_view

__all__ = ["write_view"]
