"""The solver-work panel: formulation rounds, the final model and its solutions, retractions.

Built from :class:`~plait.FormulationChecked` (each ``Formulate`` round: the
model's CSP, the solver's verdict and the finding sent back),
``retraction`` ``Custom`` events and :class:`~plait.ProposalSettled` (each
``ProposeAndRetract``: which proposals were withdrawn and why, and who chose
the values that stood), and ``csp_solved`` ``Custom`` events (``SolveCSP``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.viewer._reasoning_html import MAX_ITEMS, as_dict, as_int, as_list, as_str, compact, esc, more

__all__ = ["solver_panel"]


def solver_panel(formulations: list[dict[str, Any]], retractions: list[dict[str, Any]],
                 settled: list[dict[str, Any]], solved: list[dict[str, Any]]) -> str:
    parts = ["<div class='plait-solver'><h3>Solver work</h3>"]
    outcomes = _by_node(settled)
    cards: list[tuple[Callable[..., str], tuple]] = [(_formulation, (node, rounds))
                                                     for node, rounds in _by_node(formulations).items()]
    cards += [(_retractions, (node, events, outcomes.pop(node, []))) for node, events in _by_node(retractions).items()]
    cards += [(_retractions, (node, [], events)) for node, events in outcomes.items()]  # nothing retracted
    parts += [render(*args) for render, args in cards[:MAX_ITEMS]]  # only the cards shown are rendered
    parts.append(more(len(cards), MAX_ITEMS, "solver nodes"))
    if solved:
        items = "".join(f"<li>{esc(as_str(e.get('node')))}: {esc(as_dict(e.get('data')).get('status'))}, "
                        f"{as_int(as_dict(e.get('data')).get('count'))} solution(s)</li>" for e in solved[:MAX_ITEMS])
        parts.append(f"<div class='plait-csp-solved'><h4>Solver runs</h4><ul>{items}</ul>"
                     f"{more(len(solved), MAX_ITEMS, 'solver runs')}</div>")
    return "".join(parts) + "</div>"


def _by_node(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Events by node, the first ``MAX_ITEMS`` of each."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        group = groups.setdefault(as_str(event.get("node")), [])
        if len(group) < MAX_ITEMS:
            group.append(event)
    return groups


def _formulation(node: str, rounds: list[dict[str, Any]]) -> str:
    items = []
    for event in rounds:
        status = as_str(event.get("status")) or "unknown"
        finding = event.get("finding")
        said = (f"<pre class='plait-finding'>{esc(finding, 2000)}</pre>" if isinstance(finding, str)
                else "<span>accepted</span>")
        model = as_dict(event.get("csp"))
        shown = f"<details><summary>the model of this round</summary>{_model(model)}</details>" if model else ""
        items.append(f"<li class='plait-round plait-round-{'ok' if finding is None else 'repair'}'>round "
                     f"{as_int(event.get('round'))}: <b>{esc(status, 40)}</b> {said}{shown}</li>")
    last = rounds[-1]
    final = as_dict(last.get("csp"))
    solutions = [as_dict(s) for s in as_list(last.get("solutions"))]
    table = _solutions(solutions, as_int(last.get("count"))) if solutions else "<p>no solution</p>"
    return (f"<div class='plait-formulate' data-node='{esc(node)}'><h4>{esc(node)}: {len(rounds)} formulation "
            f"round(s)</h4><ol class='plait-rounds'>{''.join(items)}</ol>"
            f"<details class='plait-final-model' open><summary>final model</summary>{_model(final)}</details>"
            f"{table}</div>")


def _model(csp: dict[str, Any]) -> str:
    if not csp:
        return "<p>no model (the reply did not parse)</p>"
    variables = [as_dict(v) for v in as_list(csp.get("variables"))]
    constraints = as_list(csp.get("constraints"))
    var_items = "".join(f"<li><code>{esc(as_str(v.get('name')), 60)}</code> in {esc(_domain(v), 120)}</li>"
                        for v in variables[:MAX_ITEMS])
    con_items = "".join(f"<li><code>{esc(_constraint(c), 200)}</code></li>" for c in constraints[:MAX_ITEMS])
    return (f"<div class='plait-model'>{len(variables)} variable(s)<ul>{var_items}</ul>{len(constraints)} "
            f"constraint(s)<ul>{con_items}</ul></div>")


def _domain(variable: dict[str, Any]) -> Any:
    """A range domain as ``9..16``; a list of values (or anything else) as written."""
    domain = variable.get("domain")
    if isinstance(domain, dict) and {"min", "max"} <= domain.keys():
        return f"{compact(domain['min'], 40)}..{compact(domain['max'], 40)}"
    return domain


def _constraint(constraint: Any) -> str:
    """An expression constraint as its expression, any other kind as ``kind: field=value, ...``."""
    data = as_dict(constraint)
    if isinstance(data.get("expression"), str):
        return data["expression"]
    fields = ", ".join(f"{k}={compact(v, 60)}" for k, v in data.items() if k != "kind")
    return f"{as_str(data.get('kind'))}: {fields}" if data else compact(constraint)


def _solutions(solutions: list[dict[str, Any]], count: int) -> str:
    names = list(dict.fromkeys(n for s in solutions for n in s))[:MAX_ITEMS]
    head = "".join(f"<th>{esc(n, 60)}</th>" for n in names)
    rows = "".join("<tr>" + "".join(f"<td>{esc(s.get(n), 60)}</td>" for n in names) + "</tr>" for s in solutions)
    return (f"<p>{count} solution(s) found; shown: {len(solutions)}</p><table class='plait-solutions'>"
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def _retractions(node: str, events: list[dict[str, Any]], settled: list[dict[str, Any]]) -> str:
    rows = []
    records = [as_dict(e.get("data")) for e in events]
    for r in records:
        values = as_dict(r.get("values"))
        names = [v for v in as_list(r.get("variables")) if isinstance(v, str)][:50]
        withdrawn = ", ".join(f"{esc(v, 60)}={esc(values.get(v), 60)}" for v in names)
        broken = "".join(f"<li>{esc(c, 200)}</li>" for c in as_list(r.get("constraints"))[:20])
        rows.append(f"<tr class='plait-retraction'><td>{as_int(r.get('round'))}</td><td>{withdrawn}</td>"
                    f"<td>{esc(r.get('reason'), 300)}<ul>{broken}</ul></td></tr>")
    table = ("<table class='plait-retractions'><thead><tr><th>round</th><th>withdrawn</th><th>why</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else "<p>no proposal was retracted</p>"
    outcome = ""
    if settled:
        last = settled[-1]
        model = ", ".join(f"{esc(k, 60)}={esc(v, 60)}" for k, v in list(as_dict(last.get("from_model")).items())[:50])
        solver = ", ".join(esc(v, 60) for v in as_list(last.get("from_solver"))[:50])
        outcome = (f"<p class='plait-settled'>after {as_int(last.get('rounds'))} round(s): "
                   f"<b>{esc(last.get('status'), 40)}</b>; kept from the model: {model or 'none'}; "
                   f"filled in by the solver: {solver or 'none'}</p>")
    return (f"<div class='plait-propose' data-node='{esc(node)}'><h4>{esc(node)}: {len(records)} retraction(s)</h4>"
            f"{table}{outcome}</div>")
