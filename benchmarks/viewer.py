"""Size and render time of `plait view` pages for runs of 100, 1,000 and 10,000 nodes.

Each run is a real traced plait run of a synthetic graph: layers of 20 nodes, each fed by one node of the
layer above; every fifth node asks a scripted model (so tokens and models are on the page). The trace is
turned into a page by ``plait.write_view``; the page is opened in headless chromium (Debian's, through
selenium) and ``render_s`` is the time from navigation start to the ``load`` event plus two animation
frames after it (the page draws its graph and timeline in its script, so the frames cover the first paint
of everything). Median of ``--rounds`` loads (a fresh tab each time).

    python benchmarks/viewer.py [--json out.json] [--rounds 3] [--sizes 100,1000,10000] [--screenshot docs/viewer.png]

``--json`` writes ``{"nodes": {"100": {"html_bytes": n, "render_s": f}, ...}}``. ``--screenshot`` also saves
the page of ``examples/subgraph.py`` (scripted model) with one node opened: the README's picture.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "viewer"))

from plait import Graph, Request, RunContext, SamplingParams, ScriptedBackend, write_view  # noqa: E402

WIDTH = 20  # nodes per layer


def synthetic_graph(n: int) -> Graph:
    graph = Graph(f"synthetic_{n}")

    def plain(x: str) -> str:
        return x[:40] + "."

    async def asks(x: str, ctx: RunContext) -> str:
        completion = await ctx.generate(Request(prompt=f"Summarise: {x[:40]}", params=SamplingParams(max_tokens=8)))
        return completion.text

    for i in range(n):
        graph.add(asks if i % 5 == 0 else plain, name=f"n{i}")
    for i in range(WIDTH, n):
        graph.edge(f"n{i - WIDTH}", f"n{i}", param="x")
    return graph


def traced_page(n: int, folder: Path) -> tuple[Path, float]:
    graph = synthetic_graph(n)
    trace = folder / f"{n}.jsonl"
    backend = ScriptedBackend(lambda request: "a short summary")
    anyio.run(lambda: graph.run({"x": "the input text"}, backend=backend, trace=trace))
    t0 = time.perf_counter()
    page = write_view(trace, folder / f"{n}.html")
    return page, time.perf_counter() - t0


def render_seconds(browser, page: Path) -> float:
    browser.get("about:blank")
    browser.get(page.as_uri())  # returns after the load event
    return browser.execute_async_script(
        "const done = arguments[0];"
        "const finish = () => requestAnimationFrame(() => requestAnimationFrame("
        "  () => done(performance.now() / 1000)));"
        "if (document.readyState === 'complete') finish(); else addEventListener('load', finish);")


def screenshot(browser, out: Path, folder: Path) -> None:
    from view_traces import example_trace

    page = write_view(example_trace("subgraph", folder), folder / "subgraph.html")
    browser.set_window_size(1200, 860)
    browser.get(page.as_uri())
    node = browser.find_element("css selector", "#graph .node[data-node='left/grade']")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));"
                           "document.querySelector('#graph-wrap').closest('section').scrollIntoView()", node)
    browser.save_screenshot(str(out))


def main(args: argparse.Namespace) -> dict:
    from browser_harness import start_browser  # the tests' headless chromium

    sizes = [int(s) for s in args.sizes.split(",")]
    figures = {}
    browser, reason = start_browser()
    if browser is None:
        sys.exit(f"benchmarks/viewer.py: {reason}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.screenshot:
                screenshot(browser, Path(args.screenshot), Path(tmp))
            for n in sizes:
                page, build = traced_page(n, Path(tmp))
                times = [render_seconds(browser, page) for _ in range(args.rounds)]
                figures[str(n)] = {"html_bytes": page.stat().st_size, "render_s": round(statistics.median(times), 3)}
                print(f"{n:>7} nodes  {page.stat().st_size / 1e6:8.2f} MB  page written in {build:6.2f} s  "
                      f"rendered in {statistics.median(times):6.2f} s (median of {args.rounds})", flush=True)
    finally:
        browser.quit()
    return {"nodes": figures}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--rounds", type=int, default=3, help="page loads per size (median)")
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated node counts")
    parser.add_argument("--screenshot", default=None, help="save a screenshot of an example's page here (PNG)")
    arguments = parser.parse_args()
    result = main(arguments)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(result, indent=1) + "\n")
