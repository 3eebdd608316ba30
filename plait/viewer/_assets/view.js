// plait run viewer: draws the data embedded in #plait-data (written for plait, no third-party code).
// Every value from the run is set with textContent or setAttribute, never parsed as HTML.
"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("plait-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var MAX_TEXT = 20000;        // characters of one value shown before "... N more"
  var MAX_ACTS_SHOWN = 100;    // activations listed when a node is clicked
  var DIRECT_ROWS = 1000;      // timeline rows drawn at once; above this, rows are drawn as they scroll in
  var DIRECT_NODES = 2000;     // graph nodes drawn at once; above this, nodes are drawn as they scroll in
  var ROW_H = 18, LABEL_W = 220;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function statusClass(s) { return "s-" + String(s).replace(/[^a-z]+/g, "-"); }
  function secs(s) { return s >= 10 ? s.toFixed(1) + " s" : s >= 0.01 ? s.toFixed(2) + " s" : (s * 1000).toFixed(1) + " ms"; }
  function show(v) {
    var text = typeof v === "string" ? v : JSON.stringify(v, null, 2);
    if (text === undefined) text = String(v);
    if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT) + "\n... " + (text.length - MAX_TEXT) + " more characters";
    return el("pre", null, text);
  }
  var COLORS = {"ok": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e", "cancelled": "#ef6c00",
                "restored": "#1565c0", "interrupted": "#6a1b9a", "not run": "#b0bec5"};
  function color(s) { return COLORS[s] || "#607d8b"; }

  // -- graph -------------------------------------------------------------------------------------
  var selected = null;
  function drawGraph() {
    var lay = DATA.layout, wrap = document.getElementById("graph-wrap");
    var root = svg("svg", {width: lay.w + 20, height: lay.h + 20, id: "graph"});
    var g = svg("g", {transform: "translate(10,10)"});
    root.appendChild(g);
    var groups = svg("g", {}), edges = svg("g", {}), nodes = svg("g", {});
    g.appendChild(groups); g.appendChild(edges); g.appendChild(nodes);
    document.getElementById("graph-summary").textContent = lay.items.length + " nodes, " + lay.edges.length +
      " edges" + (lay.items.length > DIRECT_NODES ? "; nodes are drawn as they scroll into view" : "");
    function edgeEl(e) {
      var my = (e.y1 + e.y2) / 2, d;
      if (e.kind === "back") {
        var side = Math.max(e.x1, e.x2) + 100;
        d = "M" + e.x1 + "," + e.y1 + " C" + side + "," + (e.y1 + 40) + " " + side + "," + (e.y2 - 40) + " " + e.x2 + "," + e.y2;
      } else {
        d = "M" + e.x1 + "," + e.y1 + " C" + e.x1 + "," + my + " " + e.x2 + "," + my + " " + e.x2 + "," + e.y2;
      }
      return svg("path", {"class": "edge " + e.kind, d: d});
    }
    function nodeEl(it) {
      var info = DATA.nodes[it.name] || {status: "not run", runs: 0, busy: 0, tokens: 0, acts: []};
      var node = svg("g", {"class": it.group ? "node group" : "node", transform: "translate(" + it.x + "," + it.y + ")"});
      node.setAttribute("data-node", it.name);
      node.setAttribute("data-status", info.status);
      var box = svg("rect", {"class": "box", width: it.w, height: it.h, rx: 6, stroke: color(info.status)});
      if (!it.group) box.setAttribute("fill", "#fff");
      node.appendChild(box);
      node.appendChild(svg("rect", {x: 0, y: 0, width: 6, height: it.group ? 22 : it.h, rx: 3, fill: color(info.status), stroke: "none"}));
      var title = svg("text", {x: 12, y: 16, "font-weight": "600"});
      var short = it.name.split("/").pop();
      title.textContent = short.length > 24 ? short.slice(0, 23) + "…" : short;
      node.appendChild(title);
      var stats = it.group ? svg("text", {x: it.w - 8, y: 16, "text-anchor": "end", fill: "#5b6773"})
                           : svg("text", {x: 12, y: 34, fill: "#5b6773"});
      stats.textContent = info.runs + (info.runs === 1 ? " run" : " runs") + " · " + secs(info.busy) + " · " +
        info.tokens + " tok";
      node.appendChild(stats);
      var tip = svg("title", {});
      tip.textContent = it.name + " (" + info.status + ")";
      node.appendChild(tip);
      node.addEventListener("click", function (ev) { ev.stopPropagation(); selectNode(it.name, node); });
      return node;
    }
    wrap.appendChild(root);
    if (lay.items.length <= DIRECT_NODES) {
      lay.edges.forEach(function (e) { edges.appendChild(edgeEl(e)); });
      lay.items.forEach(function (it) { (it.group ? groups : nodes).appendChild(nodeEl(it)); });
      return;
    }
    // A large graph: only what is within a margin of the visible area is in the DOM.
    var drawnNodes = {}, drawnEdges = {}, pending = false, MARGIN = 400;
    function visible() {
      pending = false;
      var x0 = wrap.scrollLeft - 10 - MARGIN, y0 = wrap.scrollTop - 10 - MARGIN;
      var x1 = x0 + wrap.clientWidth + 2 * MARGIN, y1 = y0 + wrap.clientHeight + 2 * MARGIN;
      lay.items.forEach(function (it, i) {
        var seen = it.x < x1 && it.x + it.w > x0 && it.y < y1 && it.y + it.h > y0;
        if (seen && !drawnNodes[i]) { drawnNodes[i] = nodeEl(it); (it.group ? groups : nodes).appendChild(drawnNodes[i]); }
        else if (!seen && drawnNodes[i]) { drawnNodes[i].remove(); delete drawnNodes[i]; }
      });
      lay.edges.forEach(function (e, i) {
        var seen = Math.min(e.x1, e.x2) < x1 && Math.max(e.x1, e.x2) + 100 > x0 && Math.min(e.y1, e.y2) < y1 &&
          Math.max(e.y1, e.y2) > y0;
        if (seen && !drawnEdges[i]) { drawnEdges[i] = edgeEl(e); edges.appendChild(drawnEdges[i]); }
        else if (!seen && drawnEdges[i]) { drawnEdges[i].remove(); delete drawnEdges[i]; }
      });
    }
    wrap.addEventListener("scroll", function () { if (!pending) { pending = true; requestAnimationFrame(visible); } });
    visible();
  }

  function selectNode(name, elem) {
    if (selected) selected.classList.remove("selected");
    selected = elem || document.querySelector('[data-node="' + CSS.escape(name) + '"]');
    if (selected) selected.classList.add("selected");
    var info = DATA.nodes[name] || {status: "not run", runs: 0, busy: 0, tokens: 0, acts: []};
    var box = document.getElementById("details");
    box.textContent = "";
    box.appendChild(el("h2", "details-title", name));
    var t = el("table");
    [["type", DATA.types[name] || ""], ["status", info.status], ["runs", info.runs], ["busy", secs(info.busy)],
     ["tokens", info.tokens]].forEach(function (r) {
      var tr = el("tr"); tr.appendChild(el("th", null, r[0])); tr.appendChild(el("td", null, r[1])); t.appendChild(tr);
    });
    box.appendChild(t);
    if (!info.acts.length) box.appendChild(el("p", "muted", "This node did not run."));
    info.acts.slice(0, MAX_ACTS_SHOWN).forEach(function (i) { box.appendChild(activation(i)); });
    if (info.acts.length > MAX_ACTS_SHOWN)
      box.appendChild(el("p", "muted", "Showing " + MAX_ACTS_SHOWN + " of " + info.acts.length +
        " activations; click a bar in the timeline to open any of them."));
  }

  function activation(i) {
    var a = DATA.acts[i], div = el("div", "act");
    div.setAttribute("data-act", i);
    var head = el("div");
    head.appendChild(el("b", null, a.label + " "));
    head.appendChild(el("span", "badge " + statusClass(a.status), a.status));
    head.appendChild(el("span", "muted", "  " + secs(Math.max(0, a.end - a.start)) + " · attempts " + a.attempts +
      " · tokens " + (a.tokens[0] + a.tokens[2])));
    div.appendChild(head);
    function part(label, cls, value) {
      div.appendChild(el("div", "muted", label));
      var pre = show(value); pre.className = cls; div.appendChild(pre);
    }
    if (a.inputs !== null && a.inputs !== undefined) part("inputs", "inputs", a.inputs);
    if (a.status === "ok" || a.status === "restored") part("output", "output", a.output);
    if (a.route) part("route", "route", a.route);
    if (a.error) part(a.status === "skipped" ? "reason" : "error", "error", a.error);
    if (a.retries.length) {
      div.appendChild(el("div", "muted", "retries"));
      var ul = el("ul", "retries");
      a.retries.forEach(function (r) {
        ul.appendChild(el("li", null, "attempt " + r.attempt + " after " + secs(r.delay) + ": " + r.error));
      });
      div.appendChild(ul);
    }
    return div;
  }

  function openActivation(i) {
    var box = document.getElementById("details");
    box.textContent = "";
    box.appendChild(el("h2", "details-title", DATA.acts[i].label));
    box.appendChild(activation(i));
  }

  // -- timeline ----------------------------------------------------------------------------------
  function drawTimeline() {
    var wrap = document.getElementById("timeline-wrap");
    if (!wrap) return;
    var rows = [], byLabel = {}, end = 0;
    DATA.acts.forEach(function (a, i) {
      var r = byLabel[a.label];
      if (r === undefined) { r = byLabel[a.label] = rows.length; rows.push({label: a.label, acts: []}); }
      rows[r].acts.push(i);
      if (a.end > end) end = a.end;
    });
    end = Math.max(end, DATA.totals.wall, 1e-6);
    var width = Math.max(600, wrap.clientWidth - LABEL_W - 40);
    var scale = width / end;
    var inner = el("div");
    inner.style.position = "relative";
    inner.style.height = (rows.length * ROW_H + ROW_H) + "px";
    inner.style.width = (LABEL_W + width + 10) + "px";
    var axis = el("div", "axis");
    for (var k = 0; k < 10; k++) {
      var tick = el("div", "tick", end < 1 ? (end * k * 100).toFixed(end < 0.1 ? 2 : 1) + " ms" : (end * k / 10).toFixed(2) + " s");
      tick.style.left = (LABEL_W + width * k / 10) + "px";
      axis.appendChild(tick);
    }
    wrap.appendChild(axis);
    wrap.appendChild(inner);
    var critical = {};
    DATA.critical.forEach(function (i) { critical[i] = true; });
    document.getElementById("timeline-summary").textContent = DATA.acts.length + " activations in " + rows.length +
      " rows over " + secs(end) + "; the critical path (" + DATA.critical.length + " activations) is outlined" +
      (rows.length > DIRECT_ROWS ? "; rows are drawn as they scroll into view" : "");
    function row(r) {
      var div = el("div", "tl-row");
      div.style.top = (r * ROW_H) + "px";
      div.style.width = (LABEL_W + width) + "px";
      var label = el("div", "tl-label", rows[r].label);
      label.setAttribute("title", rows[r].label);
      div.appendChild(label);
      rows[r].acts.forEach(function (i) {
        var a = DATA.acts[i], bar = el("div", critical[i] ? "bar critical" : "bar");
        bar.style.left = (LABEL_W + a.start * scale) + "px";
        bar.style.width = Math.max(2, (a.end - a.start) * scale) + "px";
        bar.style.background = color(a.status);
        bar.setAttribute("data-act", i);
        bar.setAttribute("data-status", a.status);
        bar.setAttribute("title", a.label + " · " + a.status + " · " + secs(a.end - a.start));
        bar.addEventListener("click", function () { openActivation(i); });
        div.appendChild(bar);
      });
      return div;
    }
    if (rows.length <= DIRECT_ROWS) {
      var frag = document.createDocumentFragment();
      for (var r = 0; r < rows.length; r++) frag.appendChild(row(r));
      inner.appendChild(frag);
      return;
    }
    var drawn = {}, pending = false;
    function visible() {
      pending = false;
      var first = Math.max(0, Math.floor(wrap.scrollTop / ROW_H) - 20);
      var last = Math.min(rows.length, first + Math.ceil(wrap.clientHeight / ROW_H) + 40);
      for (var key in drawn) if (key < first || key >= last) { inner.removeChild(drawn[key]); delete drawn[key]; }
      for (var r = first; r < last; r++) if (!drawn[r]) { drawn[r] = row(r); inner.appendChild(drawn[r]); }
    }
    wrap.addEventListener("scroll", function () { if (!pending) { pending = true; requestAnimationFrame(visible); } });
    visible();
  }

  // -- totals ------------------------------------------------------------------------------------
  function drawTotals() {
    var t = DATA.totals, table = document.getElementById("totals");
    function add(cells, head) {
      var tr = el("tr");
      cells.forEach(function (c) { tr.appendChild(el(head ? "th" : "td", null, c)); });
      table.appendChild(tr);
    }
    add(["", "prompt", "cached", "generated", "cache hit rate"], true);
    add(["all models", t.prompt, t.cached, t.generated, (100 * t.hit_rate).toFixed(1) + " %"]);
    Object.keys(t.models).sort().forEach(function (m) {
      var x = t.models[m];
      add([m, x.prompt, x.cached, x.generated, x.prompt ? (100 * x.cached / x.prompt).toFixed(1) + " %" : "-"]);
    });
    document.getElementById("wall").textContent = secs(t.wall);
  }

  function drawRun() {
    var run = DATA.run;
    var input = document.getElementById("run-input"), output = document.getElementById("run-output");
    if (run.inputs !== null && run.inputs !== undefined) input.appendChild(show(run.inputs));
    else input.appendChild(el("span", "muted", "not recorded"));
    if (DATA.output !== null && DATA.output !== undefined) output.appendChild(show(DATA.output));
    else output.appendChild(el("span", "muted", "none"));
    if (run.error) document.getElementById("run-error").appendChild(show(run.error));
  }

  drawRun();
  drawTotals();
  drawTimeline();  // before the graph: it measures its width, which is cheap before the SVG is in
  drawGraph();
  document.body.setAttribute("data-ready", "1");
})();
