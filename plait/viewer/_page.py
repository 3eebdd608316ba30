"""One self-contained HTML page per run, and a batch page linking to them (``plait view``, ``plait.write_view``).

The run's data is embedded as JSON in a ``<script type="application/json">`` block with every ``<``, ``>``
and ``&`` written as a ``\\u`` escape, so no value (``</script><img onerror=...>`` included) can end the
block; the page's script and style are inlined from ``_assets`` and it loads nothing from the network.
Values are drawn with ``textContent`` in the browser and ``html.escape`` here.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from plait.viewer._layout import json_list, layout
from plait.viewer._model import build_run
from plait.viewer._reasoning import reasoning_panels
from plait.viewer._sources import SourceRun, read_source

__all__ = ["write_view", "run_page", "batch_page"]


@cache
def _asset(name: str) -> str:
    return resources.files("plait.viewer").joinpath("_assets", name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    """JSON that is inert inside a <script> block (and valid for JSON.parse)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _types(shape: dict | None, prefix: str = "", depth: int = 0) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in json_list((shape or {}).get("nodes")):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            out[prefix + entry["name"]] = str(entry.get("type") or "")
            if isinstance(entry.get("graph"), dict) and depth < 32:
                out.update(_types(entry["graph"], prefix + entry["name"] + "/", depth + 1))
    return out


def _output(model: dict) -> Any:
    """The run's output: the last output of the graph's output node, when the trace names one."""
    shape = model["shape"] or {}
    name = shape.get("output")
    if name is None:  # no declared output: the single node nothing depends on, if there is one
        sources = {e.get("src") for e in json_list(shape.get("edges"))
                   if isinstance(e, dict) and isinstance(e.get("src"), str)}
        sinks = [n.get("name") for n in json_list(shape.get("nodes"))
                 if isinstance(n, dict) and isinstance(n.get("name"), str) and n["name"] not in sources]
        name = sinks[0] if len(sinks) == 1 else None
    node = model["nodes"].get(name) if isinstance(name, str) else None
    for index in reversed(node["acts"] if node else []):
        if model["acts"][index]["status"] in ("ok", "restored"):
            return model["acts"][index]["output"]
    return None


def run_page(run: SourceRun, back: str | None = None) -> str:
    """The HTML of one run's page; ``back``: a relative link to the batch page it belongs to."""
    model = build_run(run.events)
    data = {"run": model["run"], "acts": model["acts"], "nodes": model["nodes"], "totals": model["totals"],
            "layout": layout(model["shape"], list(model["nodes"])), "types": _types(model["shape"]),
            "output": run.output if run.output is not None else _output(model)}
    info = model["run"]
    title = f"{info['graph'] or 'run'} · {info['id']}"
    esc = html.escape
    back_link = f'<a href="{esc(back)}">all runs</a>' if back else ""
    note = f'<section class="note" id="note">{esc(run.note)}</section>' if run.note else ""
    timeline = ('<section><h2>Timeline</h2><div id="timeline-summary" class="muted"></div>'
                '<div id="timeline-wrap"></div></section>') if run.timeline else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{_asset("view.css")}</style></head>
<body><header><h1>{esc(info['graph'] or 'run')}</h1><span>run {esc(info['id'])}</span>
<span class="badge {esc(_status_class(info['status']))}" id="run-status">{esc(info['status'])}</span>
<span>wall time <b id="wall"></b></span>{back_link}</header>
<main>{note}
<section><h2>Run</h2><table><tr><th>input</th><td id="run-input"></td></tr>
<tr><th>output</th><td id="run-output"></td></tr><tr><th>error</th><td id="run-error"></td></tr></table></section>
<section><h2>Tokens</h2><table id="totals"></table></section>
<section><h2>Graph <span class="muted">(click a node for its inputs, output, error and attempts)</span></h2>
<div class="cols"><div id="graph-wrap"></div><div id="details"><p class="muted">Click a node.</p></div></div>
</section>
{timeline}
{_reasoning(run.events)}
</main>
<script type="application/json" id="plait-data">{_script_json(data)}</script>
<script>{_asset("view.js")}</script></body></html>
"""


def _reasoning(events: list[dict]) -> str:
    panels = reasoning_panels(events)
    return f'<section id="reasoning">{panels}</section>' if panels else ""


def _status_class(status: str) -> str:
    return "s-" + "".join(c if c.isalpha() else "-" for c in status)


def batch_page(runs: list[SourceRun], links: list[str], title: str) -> str:
    """A table of the batch's runs (status, tokens, seconds), each linking to its page."""
    esc = html.escape
    rows = []
    for run, link in zip(runs, links):
        finished = next((e for e in reversed(run.events) if e.get("kind") == "run_finished"), {})
        started = next((e for e in run.events if e.get("kind") == "run_started"), {})
        status = finished.get("status") if isinstance(finished.get("status"), str) else "unfinished"
        tokens = finished.get("tokens") if isinstance(finished.get("tokens"), int) else 0
        seconds = finished.get("duration") if isinstance(finished.get("duration"), (int, float)) else 0.0
        rid = str(started.get("run_id") or finished.get("run_id") or "")
        rows.append(f'<tr class="batch-run" data-status="{esc(status)}"><td><a href="{esc(link)}">{esc(rid)}</a></td>'
                    f'<td><span class="badge {esc(_status_class(status))}">{esc(status)}</span></td>'
                    f'<td>{tokens}</td><td>{float(seconds):.2f}</td></tr>')
    counts: dict[str, int] = {}
    for row_status in (r.split('data-status="', 1)[1].split('"', 1)[0] for r in rows):
        counts[row_status] = counts.get(row_status, 0) + 1
    summary = ", ".join(f"{n} {esc(s)}" for s, n in sorted(counts.items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title><style>{_asset("view.css")}</style></head>
<body><header><h1>{esc(title)}</h1><span id="batch-summary">{len(runs)} runs: {summary}</span></header>
<main><section><table id="batch"><tr><th>run</th><th>status</th><th>tokens</th><th>seconds</th></tr>
{"".join(rows)}</table></section></main></body></html>
"""


def write_view(source: str | Path, out: str | Path, run_id: str | None = None) -> Path:
    """Write the viewer page for ``source`` to ``out`` and return its path.

    ``source``: a JSONL trace, a checkpoint (SQLite file or ``postgresql://`` URL) or a batch results file.
    One run gives one page; several (a checkpoint without ``run_id``, a results file) give a batch page at
    ``out`` and a page per run in the folder ``<out stem>_runs`` beside it.
    """
    runs = read_source(source, run_id)
    out = Path(out)
    if len(runs) == 1 and (run_id is not None or runs[0].note is None):
        out.write_text(run_page(runs[0]), encoding="utf-8")
        return out
    folder = out.with_name(out.stem + "_runs")
    folder.mkdir(exist_ok=True)
    links = []
    for i, run in enumerate(runs):
        page = folder / f"run-{i + 1:05d}.html"
        page.write_text(run_page(run, back=f"../{out.name}"), encoding="utf-8")
        links.append(f"{folder.name}/{page.name}")
    out.write_text(batch_page(runs, links, f"{len(runs)} runs from {Path(str(source)).name}"), encoding="utf-8")
    return out
