"""One self-contained HTML page per run, and a batch page linking to them (``plait view``, ``plait.write_view``).

The run's data is embedded as JSON in a ``<script type="application/json">`` block with every ``<``, ``>``
and ``&`` written as a ``\\u`` escape, so no value (``</script><img onerror=...>`` included) can end the
block; the page's script and style are inlined from ``_assets`` and it loads nothing from the network.
Values are drawn with ``textContent`` in the browser and ``html.escape`` here; a Content-Security-Policy
admits no network and no script but the page's own, as a second line of defence.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from plait.viewer._critical import critical_path
from plait.viewer._layout import json_list, layout
from plait.viewer._model import build_run
from plait.viewer._reasoning import reasoning_panels
from plait.viewer._sources import SourceRun, read_source

__all__ = ["write_view", "run_page", "batch_page"]


@cache
def _asset(name: str) -> str:
    return resources.files("plait.viewer").joinpath("_assets", name).read_text(encoding="utf-8")


def _policy(script: str | None) -> str:
    """A Content-Security-Policy: no network at all, and no script but the page's own (by its hash), so even
    markup that got through could neither run (inline handlers included) nor load anything."""
    allowed = "'none'"
    if script is not None:
        allowed = "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
    return (f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            f'style-src \'unsafe-inline\'; img-src data:; script-src {allowed}">')


def _script_json(data: Any) -> str:
    """JSON that is inert inside a <script> block (and valid for JSON.parse)."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # an infinite or NaN float in values handed over in Python: written as text
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {_finite(k) if isinstance(k, float) else k: _finite(v) for k, v in value.items()}
    return value


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
            "output": run.output if run.output is not None else _output(model),
            "critical": critical_path(model["acts"], model["shape"]) if run.timeline else []}
    info = model["run"]
    title = f"{info['graph'] or 'run'} · {info['id']}"
    esc = html.escape
    back_link = f'<a href="{esc(back)}">all runs</a>' if back else ""
    note = f'<section class="note" id="note">{esc(run.note)}</section>' if run.note else ""
    timeline = ('<section><h2>Timeline</h2><div id="timeline-summary" class="muted"></div>'
                '<div id="timeline-wrap"></div></section>') if run.timeline else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{_policy(_asset("view.js"))}
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>
<style>{_asset("view.css")}</style></head>
<body><header><h1>{esc(info['graph'] or 'run')}</h1><span>run {esc(info['id'])}</span>
<span class="badge {esc(_status_class(info['status']))}" id="run-status">{esc(info['status'])}</span>
<span>wall time <b id="wall"></b></span>{back_link}</header>
<main>{note}
<section><h2>Run</h2><table><tr><th>input</th><td id="run-input"></td></tr>
<tr><th>output</th><td id="run-output"></td></tr><tr><th>error</th><td id="run-error"></td></tr></table></section>
<section><h2>Tokens</h2><table id="totals"></table></section>
<section><h2>Graph <span class="muted">(click a node for its inputs, output, error and attempts)</span></h2>
<div id="graph-summary" class="muted"></div>
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


def _brief(value: Any, limit: int = 160) -> str:
    """A value on one line, cut to ``limit`` characters (the run's page has all of it)."""
    text = value if isinstance(value, str) else json.dumps(_finite(value), ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def batch_page(runs: list[SourceRun], links: list[str], title: str) -> str:
    """A table of the batch's runs (input, status, tokens, seconds, error), each linking to its page."""
    esc = html.escape
    rows: list[str] = []
    counts: Counter[str] = Counter()
    for run, link in zip(runs, links):
        finished: dict[str, Any] = next((e for e in reversed(run.events) if e.get("kind") == "run_finished"), {})
        started: dict[str, Any] = next((e for e in run.events if e.get("kind") == "run_started"), {})
        status = finished["status"] if isinstance(finished.get("status"), str) else "unfinished"
        counts[status] += 1
        tokens = finished.get("tokens") if isinstance(finished.get("tokens"), int) else 0
        seconds = finished.get("duration")
        seconds = f"{seconds:.2f}" if isinstance(seconds, (int, float)) and math.isfinite(seconds) else "-"
        rid = str(started.get("run_id") or finished.get("run_id") or "")
        inputs = "-" if started.get("inputs") is None else _brief(started["inputs"])
        error = "" if finished.get("error") is None else _brief(finished["error"])
        rows.append(f'<tr class="batch-run" data-status="{esc(status)}"><td><a href="{esc(link)}">{esc(rid)}</a></td>'
                    f'<td class="input">{esc(inputs)}</td>'
                    f'<td><span class="badge {esc(_status_class(status))}">{esc(status)}</span></td>'
                    f'<td>{tokens}</td><td>{seconds}</td><td class="error">{esc(error)}</td></tr>')
    summary = ", ".join(f"{n} {esc(s)}" for s, n in sorted(counts.items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{_policy(None)}<title>{esc(title)}</title>
<style>{_asset("view.css")}</style></head>
<body><header><h1>{esc(title)}</h1><span id="batch-summary">{len(runs)} runs: {summary}</span></header>
<main><section><table id="batch">
<tr><th>run</th><th>input</th><th>status</th><th>tokens</th><th>seconds</th><th>error</th></tr>
{"".join(rows)}</table></section></main></body></html>
"""


def write_view(source: str | Path, out: str | Path, run_id: str | None = None, graph: Any = None) -> Path:
    """Write the viewer page for ``source`` to ``out`` and return its path.

    ``source``: a JSONL trace, a checkpoint (SQLite file or ``postgresql://`` URL) or a batch results file.
    One run gives one page; several (a checkpoint without ``run_id``, a results file) give a batch page at
    ``out`` and a page per run in the folder ``<out stem>_runs`` beside it. ``graph``: the Graph that wrote
    a checkpoint; its runs are replayed from their records (no model) for full pages. Call it from
    synchronous code (a replay runs its own event loop).
    """
    runs = read_source(source, run_id, graph)
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
