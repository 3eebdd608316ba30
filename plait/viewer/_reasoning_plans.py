"""The plans panel: each plan-and-execute node's plans (and replans) as DAGs of tool steps.

Built from the ``Custom`` events :class:`~plait.PlanAndExecute` emits: ``plan``
(each planner attempt: its steps, or the problems that got it rejected),
``plan_step_finished`` (each step's resolved arguments, result, ok),
``replan`` (why the solver asked for a new plan) and ``answer``. A step event
belongs to the plan node it was emitted under (``node`` or ``node/E3``) and
to that node's latest accepted plan. The DAG is laid out in Python: a step's
column is one more than the deepest step it references, so the SVG needs no
script; the table below it lists arguments, references and evidence.
"""

from __future__ import annotations

from typing import Any

from plait.planners._plan import find_refs
from plait.viewer._reasoning_html import MAX_ITEMS, as_dict, as_list, as_str, compact, esc, more

__all__ = ["plans_panel", "collect_plans"]

_COL_W, _ROW_H, _BOX_W, _BOX_H = 150, 46, 120, 32


def collect_plans(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Plan rounds by plan node, in trace order: ``{"steps": [...], "rejected": [...], "results": {id: data},
    "replan": reason, "answer": text}``.

    A step result joins its node's latest plan when that plan has the step; otherwise it waits for the next
    plan of that node that has it (a streamed plan's ``plan`` event comes after its first steps ran).
    """
    nodes: dict[str, list[dict[str, Any]]] = {}
    rejected: dict[str, list[dict[str, Any]]] = {}
    waiting: dict[str, dict[str, dict[str, Any]]] = {}  # step results not yet placed, by emitting node
    for event in events:
        name, node, data = as_str(event.get("name")), as_str(event.get("node")), as_dict(event.get("data"))
        if name == "plan":
            if data.get("valid") is True:
                steps = [as_dict(s) for s in as_list(data.get("steps"))]
                round_: dict[str, Any] = {"steps": steps, "ids": {as_str(s.get("id")) for s in steps}, "results": {},
                          "rejected": rejected.pop(node, []), "replan": None, "answer": None}
                nodes.setdefault(node, []).append(round_)
                _claim(round_, node, waiting)
            else:
                rejected.setdefault(node, []).append(data)
        elif name in ("replan", "answer") and nodes.get(node):
            nodes[node][-1][name] = data.get("reason" if name == "replan" else "answer")
        elif name == "plan_step_finished":
            step, owner = as_str(data.get("step")), _owner(node, nodes)
            if owner is not None and step in nodes[owner][-1]["ids"]:
                nodes[owner][-1]["results"][step] = data
            elif len(waiting) < MAX_ITEMS:
                waiting.setdefault(node, {})[step] = data
    for node, attempts in rejected.items():  # attempts after which no plan was accepted (the node failed)
        nodes.setdefault(node, []).append({"steps": [], "ids": set(), "rejected": attempts, "results": {},
                                           "replan": None, "answer": None})
    return nodes


def _claim(round_: dict[str, Any], node: str, waiting: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Move the waiting results of ``node`` (or of steps run under it) that this plan has into it."""
    ids = round_["ids"]
    for emitter in [e for e in waiting if e == node or e.startswith(node + "/")]:
        results = waiting[emitter]
        for step in [k for k in results if k in ids]:
            round_["results"][step] = results.pop(step)
        if not results:
            del waiting[emitter]


def _owner(node: str, nodes: dict[str, list[dict[str, Any]]]) -> str | None:
    """The plan node a step event belongs to: ``node`` itself or the nearest enclosing node with a plan."""
    while node:
        if nodes.get(node):
            return node
        node = node.rpartition("/")[0]
    return None


def plans_panel(events: list[dict[str, Any]]) -> str:
    nodes = collect_plans(events)
    cards = []
    for node, rounds in list(nodes.items())[:MAX_ITEMS]:
        body = "".join(_round(i, r, len(rounds)) for i, r in enumerate(rounds[:MAX_ITEMS], start=1))
        cards.append(f"<div class='plait-plan-node' data-node='{esc(node)}'><h4>{esc(node)}</h4>{body}</div>")
    left_out = more(len(nodes), MAX_ITEMS, "plan nodes")
    return f"<div class='plait-plans'><h3>Plans</h3>{''.join(cards)}{left_out}</div>"


def _round(number: int, round_: dict[str, Any], total: int) -> str:
    steps = [s for s in round_["steps"] if isinstance(s.get("id"), str)][:MAX_ITEMS]
    title = f"plan {number} of {total}" + (f" (replan {number - 1})" if number > 1 else "")
    rejected = "".join(
        f"<details class='plait-plan-rejected'><summary>attempt {esc(a.get('attempt'))} rejected</summary><ul>"
        + "".join(f"<li>{esc(p, 300)}</li>" for p in as_list(a.get("problems"))[:20]) + "</ul></details>"
        for a in round_["rejected"][:20])
    out = [f"<div class='plait-plan' data-round='{number}'><h5>{title}: {len(steps)} step(s)</h5>{rejected}"]
    if steps:
        out.append(_dag(steps, round_["results"]))
        out.append(_table(steps, round_["results"]))
    if round_["replan"] is not None:
        out.append(f"<p class='plait-replan'>the solver asked for a new plan: {esc(round_['replan'], 400)}</p>")
    if round_["answer"] is not None:
        out.append(f"<p class='plait-plan-answer'>answer: <b>{esc(round_['answer'], 400)}</b></p>")
    return "".join(out) + "</div>"


def _status(step_id: str, results: dict[str, Any]) -> str:
    result = results.get(step_id)
    if result is None:
        return "notrun"
    return "ok" if result.get("ok") is True else "failed"


def _refs(args: Any) -> list[str]:
    """The references in a step's arguments (``#E1.0``), in order, once each; walked without recursion."""
    found: dict[str, None] = {}
    stack = [args]
    while stack and len(found) < MAX_ITEMS:
        value = stack.pop()
        if isinstance(value, str):
            found.update((str(ref), None) for ref in find_refs(value))
        elif isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return list(found)


def _deps(step: dict[str, Any], ids: set[str]) -> list[str]:
    """The steps of this plan that ``step`` references (a reference to an earlier plan's evidence is no edge)."""
    steps = {ref[1:].split(".", 1)[0] for ref in _refs(step.get("args"))}
    return sorted(steps & ids - {step["id"]})


def _dag(steps: list[dict[str, Any]], results: dict[str, Any]) -> str:
    """Steps as boxes in columns by depth, arrows from each referenced step; one pass in plan order."""
    ids = {s["id"] for s in steps}
    column: dict[str, int] = {}
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    edges: list[tuple[str, str]] = []
    for step in steps:
        deps = _deps(step, ids)
        col = 1 + max((column.get(d, 0) for d in deps), default=-1)  # a forward reference counts as column 0
        column[step["id"]] = col
        row = rows.get(col, 0)
        rows[col] = row + 1
        place[step["id"]] = (col * _COL_W + 4, row * _ROW_H + 4)
        edges.extend((d, step["id"]) for d in deps)
    lines = []
    for src, dst in edges:
        if src in place:
            (x1, y1), (x2, y2) = place[src], place[dst]
            lines.append(f"<line class='plait-plan-edge' x1='{x1 + _BOX_W}' y1='{y1 + _BOX_H // 2}' x2='{x2}' "
                         f"y2='{y2 + _BOX_H // 2}' marker-end='url(#plait-arrow)'/>")
    boxes = []
    for step in steps:
        x, y = place[step["id"]]
        status = _status(step["id"], results)
        tip = f"{step['id']} = {as_str(step.get('tool'))}[{compact(step.get('args'), 300)}]"
        boxes.append(f"<g class='plait-plan-step plait-step-{status}' data-step='{esc(step['id'])}'>"
                     f"<title>{esc(tip, 400)} ({status})</title><rect x='{x}' y='{y}' width='{_BOX_W}' "
                     f"height='{_BOX_H}' rx='5'/><text x='{x + 8}' y='{y + 20}'>{esc(step['id'], 12)} "
                     f"{esc(as_str(step.get('tool')), 14)}{' &#x2717;' if status == 'failed' else ''}</text></g>")
    width = (max(column.values()) + 1) * _COL_W + 8
    height = max(rows.values()) * _ROW_H + 8
    arrow = ("<defs><marker id='plait-arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' "
             "markerHeight='6' orient='auto'><path d='M0,0 L10,5 L0,10 z'/></marker></defs>")
    return (f"<svg class='plait-plan-dag' role='img' aria-label='plan steps as a DAG' width='{width}' "
            f"height='{height}' viewBox='0 0 {width} {height}'>{arrow}{''.join(lines)}{''.join(boxes)}</svg>")


def _table(steps: list[dict[str, Any]], results: dict[str, Any]) -> str:
    rows = []
    for step in steps:
        status = _status(step["id"], results)
        result = as_dict(results.get(step["id"]))
        refs = ", ".join(esc(r, 40) for r in _refs(step.get("args"))) or "&ndash;"
        evidence = esc(result.get("result"), 300) if result else "not run"
        thought = as_str(step.get("thought"))
        why = f"<br><small>{esc(thought, 200)}</small>" if thought else ""
        rows.append(f"<tr class='plait-step-row plait-step-{status}' data-step='{esc(step['id'])}'>"
                    f"<td>{esc(step['id'], 12)}</td><td>{esc(as_str(step.get('tool')), 60)}</td>"
                    f"<td><code>{esc(step.get('args'), 300)}</code>{why}</td>"
                    f"<td>{refs}</td><td>{'<b>failed</b>: ' if status == 'failed' else ''}{evidence}</td></tr>")
    return ("<table class='plait-plan-steps'><thead><tr><th>step</th><th>tool</th><th>arguments</th>"
            f"<th>references</th><th>evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
