"""The HTML page's inline assets: CSS, the few lines of JavaScript (filtering, heatmap
clicks), and the variant colours. Nothing here is fetched; the page embeds it all.
"""

from __future__ import annotations

COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2")

CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { margin: 32px 0 8px; font-size: 18px; }
h3 { margin: 24px 0 8px; font-size: 16px; }
h2.model { border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 48px; }
.sub, .note { color: var(--muted); } .note { font-size: 12px; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 6px 10px; margin: 8px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
        min-width: 190px; }
.card .big { font-size: 28px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; }
table { border-collapse: collapse; background: #fff; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.heat { text-align: center; cursor: pointer; min-width: 70px; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
pre { margin: 2px 0; white-space: pre-wrap; word-break: break-word; font-size: 12px;
      max-height: 220px; overflow: auto; background: #f6f6f6; padding: 4px; }
details { background: #fff; border: 1px solid var(--line); margin: 4px 0; padding: 4px 8px; }
summary { cursor: pointer; } svg text { font: 12px system-ui, sans-serif; }
#filter { padding: 4px 8px; width: 320px; }
"""

JS = """
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var box = document.getElementById("filter");
  var shown = document.getElementById("shown");
  function apply() {
    var q = box.value.trim().toLowerCase(), n = 0;
    document.querySelectorAll("#drill details").forEach(function (d) {
      var hit = !q || d.textContent.toLowerCase().indexOf(q) >= 0;
      d.style.display = hit ? "" : "none";
      if (hit) { n += 1; }
    });
    shown.textContent = n + " of " + data.scenarios.length + " scenarios";
  }
  box.addEventListener("input", apply);
  document.querySelectorAll("td.heat").forEach(function (td) {
    td.addEventListener("click", function () {
      var target = document.getElementById("s-" + td.dataset.scenario);
      if (target) { target.open = true; target.scrollIntoView(); }
    });
  });
  document.getElementById("expand").addEventListener("click", function () {
    document.querySelectorAll("#drill details").forEach(function (d) { d.open = true; });
  });
  apply();
})();
"""
