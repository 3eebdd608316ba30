"""The votes panel: one card per :class:`~plait.VoteTallied` event (a FanOut / EarlyStop / Quorum vote).

Each card shows the answers' weights as SVG bars (the winner's marked), the
winner and agreement, samples drawn out of k, failed and truncated samples,
and a strip of the samples in the order they were drawn, ending where an
early stop settled the vote (the samples never drawn are drawn hollow), and,
for a vote over prompt variants, each variant's samples and agreement with the winner.
"""

from __future__ import annotations

from typing import Any

from plait.viewer._reasoning_html import (
    MAX_ITEMS, as_dict, as_float, as_int, as_list, as_str, clip, esc, fmt, more, panel,
)

__all__ = ["votes_panel"]

_BAR_W, _ROW_H, _LABEL_W = 260, 22, 150
_SLOT = 14  # one sample in the strip
_MAX_SLOTS = 256


def votes_panel(events: list[dict[str, Any]]) -> str:
    return panel("votes", "Votes", [_card(e) for e in events[:MAX_ITEMS]], len(events), "votes")


def _card(event: dict[str, Any]) -> str:
    node, k = as_str(event.get("node")), as_int(event.get("k"))
    winner = event.get("winner") if isinstance(event.get("winner"), str) else None
    answers = [a if isinstance(a, str) else None for a in as_list(event.get("answers"))]
    failed, truncated = as_int(event.get("failed")), as_int(event.get("truncated"))
    cancelled, quorum = as_int(event.get("cancelled")), as_int(event.get("quorum"))
    drawn = len(answers)
    if winner is None:
        verdict = (f"<span class='plait-no-winner'>no winner: {drawn - failed} sample(s) succeeded, "
                   f"quorum {quorum}</span>")
    else:
        verdict = f"winner <b class='plait-vote-winner'>{esc(winner)}</b>"
    stopped = bool(event.get("stopped_early"))
    settled = (f"early stop settled it after {drawn} of {k} samples" if stopped
               else f"all {drawn} of {k} samples drawn")
    wave = event.get("wave")
    facts = [
        f"agreement {as_float(event.get('agreement')):.0%}",
        f"<span class='plait-vote-drawn'>{drawn} / {k} samples</span>",
        f"<span class='plait-vote-failed'>{failed} failed</span> ({truncated} truncated)",
        settled + (f" (waves of {as_int(wave)})" if isinstance(wave, int) else ""),
    ]
    if cancelled:
        facts.append(f"{cancelled} cancelled by the stop")
    facts.append(f"{as_int(event.get('tokens'))} tokens")
    errors = [e for e in as_list(event.get("errors")) if isinstance(e, str)]
    error_list = ""
    if errors:
        items = "".join(f"<li>{esc(e, 300)}</li>" for e in errors[:20])
        error_list = (f"<details class='plait-vote-errors'><summary>{len(errors)} failed sample(s)</summary>"
                      f"<ul>{items}</ul></details>")
    return (f"<div class='plait-vote' data-node='{esc(node)}'>"
            f"<h4>{esc(node)} <small>{esc(as_str(event.get('aggregator')))}</small></h4>"
            f"<p>{verdict} &middot; {' &middot; '.join(facts)}</p>"
            f"{_bars(as_dict(event.get('distribution')), winner)}{_strip(answers, winner, k, stopped)}"
            f"{_variants(as_list(event.get('variants')))}{error_list}"
            "</div>")


def _variants(variants: list[Any]) -> str:
    """One row per prompt variant: its label, samples drawn and succeeded, and its agreement with the winner."""
    rows = []
    for item in variants[:MAX_ITEMS]:
        v = as_dict(item)
        rows.append(f"<tr class='plait-vote-variant'><td>{esc(as_str(v.get('label')), 80)}</td>"
                    f"<td>{as_int(v.get('succeeded'))} / {as_int(v.get('samples'))}</td>"
                    f"<td>{as_float(v.get('agreement')):.0%}</td></tr>")
    if not rows:
        return ""
    return ("<table class='plait-vote-variants'><tr><th>variant</th><th>succeeded / samples</th>"
            f"<th>agree with winner</th></tr>{''.join(rows)}</table>{more(len(variants), len(rows), 'variants')}")


def _bars(distribution: dict[str, Any], winner: str | None) -> str:
    """Horizontal bars, heaviest first; widths relative to the heaviest (weights may be negative scores)."""
    weights = sorted(((as_float(w), a) for a, w in distribution.items()), key=lambda p: -p[0])
    if not weights:
        return ""
    shown = weights[:MAX_ITEMS]
    low = min(0.0, min(w for w, _ in shown))
    span = (max(w for w, _ in shown) - low) or 1.0
    rows = []
    for i, (weight, answer) in enumerate(shown):
        y = i * _ROW_H
        width = max((weight - low) / span * _BAR_W, 1.0)
        cls = "plait-vote-bar plait-winner" if answer == winner else "plait-vote-bar"
        rows.append(
            f"<g><title>{esc(answer, 400)}: {fmt(weight)}</title>"
            f"<text x='{_LABEL_W - 6}' y='{y + 15}' text-anchor='end'>{esc(clip(answer, 22))}</text>"
            f"<rect class='{cls}' data-answer='{esc(answer)}' data-weight='{fmt(weight)}' x='{_LABEL_W}' "
            f"y='{y + 3}' width='{width:.1f}' height='{_ROW_H - 6}'/>"
            f"<text x='{_LABEL_W + width + 6:.1f}' y='{y + 15}'>{fmt(weight)}</text></g>")
    width, height = _LABEL_W + _BAR_W + 60, len(shown) * _ROW_H
    return (f"<svg class='plait-vote-bars' role='img' aria-label='answer weights' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>{''.join(rows)}</svg>{more(len(weights), len(shown), 'answers')}")


def _strip(answers: list[str | None], winner: str | None, k: int, stopped: bool) -> str:
    """The samples in draw order: winner, other answer, failed; hollow slots for samples never drawn."""
    slots = max(k, len(answers))
    if slots == 0:
        return ""
    shown = min(slots, _MAX_SLOTS)
    cells = []
    for i in range(shown):
        x = i * _SLOT
        if i >= len(answers):
            cells.append(f"<rect class='plait-sample plait-undrawn' x='{x + 1}' y='1' width='{_SLOT - 3}' "
                         f"height='{_SLOT - 3}'><title>sample {i} not drawn</title></rect>")
            continue
        answer = answers[i]
        cls = "plait-failed" if answer is None else "plait-winner" if answer == winner else "plait-other"
        label = "failed" if answer is None else esc(answer, 200)
        cells.append(f"<rect class='plait-sample {cls}' x='{x + 1}' y='1' width='{_SLOT - 3}' height='{_SLOT - 3}'>"
                     f"<title>sample {i}: {label}</title></rect>")
    if stopped and 0 < len(answers) < shown:
        x = len(answers) * _SLOT - 1
        cells.append(f"<line class='plait-settled' x1='{x}' y1='0' x2='{x}' y2='{_SLOT + 4}'>"
                     "<title>early stop: the vote was settled here</title></line>")
    width = shown * _SLOT + 2
    return (f"<p>samples in draw order: <svg class='plait-vote-samples' role='img' aria-label='samples in draw "
            f"order' width='{width}' height='{_SLOT + 6}' viewBox='0 0 {width} {_SLOT + 6}'>{''.join(cells)}</svg></p>")
