"""The subtask-trees panel: one card per :class:`~plait.SubtaskTreeSolved` event.

The tree is drawn as nested lists: each task with its question, status,
conclusion, calls and tokens; a subtask's thoughts (the work pruned from its
parent's context, which kept only the conclusion) sit in a collapsed
``<details>``. Above it, peak context with and without pruning as two bars.
Trees read from a file may be deep or wide: rendering is iterative and stops
at ``MAX_DEPTH`` levels and ``MAX_TASKS`` tasks.
"""

from __future__ import annotations

from typing import Any

from plait.viewer._reasoning_html import MAX_ITEMS, as_dict, as_int, as_list, as_str, esc, more

__all__ = ["trees_panel"]

MAX_DEPTH = 32
MAX_TASKS = 2000
_BAR_W = 300
_STATUSES = {"running", "done", "budget_exhausted", "abandoned"}


def trees_panel(events: list[dict[str, Any]]) -> str:
    cards = [_card(e) for e in events[:MAX_ITEMS]]
    left_out = more(len(events), MAX_ITEMS, "trees")
    return f"<div class='plait-trees'><h3>Subtask trees</h3>{''.join(cards)}{left_out}</div>"


def _card(event: dict[str, Any]) -> str:
    node, stats = as_str(event.get("node")), as_dict(event.get("stats"))
    pruned = as_int(stats.get("unpruned_prompt_tokens")) > as_int(stats.get("context_prompt_tokens"))
    facts = (f"{as_int(stats.get('tasks'))} tasks, {as_int(stats.get('calls'))} calls, depth "
             f"{as_int(stats.get('max_depth_reached'))}, {as_int(stats.get('prompt_tokens'))} prompt tokens "
             f"({as_int(stats.get('cached_tokens'))} cached), {as_int(stats.get('completion_tokens'))} generated")
    return (f"<div class='plait-tree-card' data-node='{esc(node)}'><h4>{esc(node)}</h4><p>{facts}</p>"
            f"{_peak(stats)}{_tree(as_dict(event.get('tree')), pruned)}</div>")


def _peak(stats: dict[str, Any]) -> str:
    """Peak context tokens as run (pruned) and as an un-pruned run would have needed."""
    peak, unpruned = as_int(stats.get("peak_context_tokens")), as_int(stats.get("unpruned_peak_context_tokens"))
    top = max(peak, unpruned, 1)
    saved = f" ({1 - peak / unpruned:.0%} less)" if unpruned > peak > 0 else ""
    rows = []
    for i, (label, value, cls) in enumerate([("with pruning", peak, "plait-peak-pruned"),
                                              ("without", unpruned, "plait-peak-unpruned")]):
        width = max(value / top * _BAR_W, 1.0)
        rows.append(f"<text x='0' y='{i * 20 + 14}'>{label}</text><rect class='{cls}' x='100' y='{i * 20 + 3}' "
                    f"width='{width:.1f}' height='14'/><text x='{106 + width:.1f}' y='{i * 20 + 14}'>{value}</text>")
    return (f"<p class='plait-peak'>peak context: <b>{peak}</b> tokens with pruning, <b>{unpruned}</b> "
            f"without{saved}</p><svg class='plait-peak-bars' role='img' aria-label='peak context' "
            f"width='{_BAR_W + 170}' height='42' viewBox='0 0 {_BAR_W + 170} 42'>{''.join(rows)}</svg>")


def _tree(root: dict[str, Any], pruned: bool) -> str:
    """Nested ``<ul>`` built with an explicit stack (no recursion: a crafted trace may nest deeply)."""
    if not root:
        return ""
    out: list[str] = ["<ul class='plait-tree'>"]
    stack: list[tuple[dict[str, Any], int] | str] = [(root, 0)]
    count = 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):  # closing markup queued after a task's children
            out.append(item)
            continue
        task, depth = item
        count += 1
        if count > MAX_TASKS:
            out.append(f"<li class='plait-more'>tasks beyond the first {MAX_TASKS} not shown</li>")
            break
        out.append(_task(task, depth, pruned))
        children = [as_dict(c) for c in as_list(task.get("subtasks"))]
        if children and depth >= MAX_DEPTH:
            out.append(f"<ul><li class='plait-more'>{len(children)} subtask(s) deeper than {MAX_DEPTH} levels "
                       "not shown</li></ul></li>")
        elif children:
            out.append("<ul>")
            stack.append("</ul></li>")
            stack.extend((child, depth + 1) for child in reversed(children))
        else:
            out.append("</li>")
    while stack:  # close whatever the cap left open
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
    out.append("</ul>")
    return "".join(out)


def _task(task: dict[str, Any], depth: int, pruned: bool) -> str:
    path = as_str(task.get("path")) or "root"
    status = as_str(task.get("status"))
    status = status if status in _STATUSES else "unknown"
    conclusion = task.get("conclusion")
    concluded = (f"<span class='plait-conclusion'>&rarr; {esc(conclusion, 400)}</span>" if isinstance(conclusion, str)
                 else "<span class='plait-conclusion plait-none'>no conclusion</span>")
    thoughts = [t for t in as_list(task.get("thoughts")) if isinstance(t, str)]
    work = ""
    if thoughts:
        where = ("pruned from the parent's context, which kept only the conclusion" if depth and pruned
                 else "kept in context" if depth else "the root's own turns")
        items = "".join(f"<li>{esc(t, 600)}</li>" for t in thoughts[:MAX_ITEMS])
        work = (f"<details class='plait-pruned'><summary>{len(thoughts)} thought(s): {where}</summary>"
                f"<ol>{items}</ol></details>")
    return (f"<li class='plait-task plait-status-{esc(status, 40)}' data-path='{esc(path, 80)}'>"
            f"<b>{esc(path, 80)}</b> <span class='plait-question'>{esc(as_str(task.get('task')), 400)}</span> "
            f"{concluded} <small>{esc(status, 40)}, {as_int(task.get('calls'))} call(s), "
            f"{as_int(task.get('tokens'))} tokens</small>{work}")
