// poold timeline: draws the data of the element #timeline-data (JSON) as a Gantt
// chart on a canvas. Only what is visible is drawn, and runs narrower than a
// pixel are merged, so 100,000 runs stay fast. window.timeline is a small
// hook for tests.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("timeline-data").textContent);
  var B = D.bars, N = B.ts.length, T = D.tracks.length;
  var canvas = document.getElementById("chart");
  var ctx = canvas.getContext("2d");
  var details = document.getElementById("details");

  var ROW = 22, BAR = 16, AXIS = 24, PAD = 8;
  var OK = "#4caf50";
  var KNOWN = {
    worker_lost: "#d62728", timeout: "#ff7f0e", memory_limit: "#9467bd",
    panic: "#e377c2", error: "#8c564b", exit_status: "#bcbd22",
    protocol: "#17becf", canceled: "#9e9e9e", terminated: "#7f7f7f"
  };
  var SPARE = ["#1f77b4", "#aec7e8", "#ffbb78", "#c49c94", "#f7b6d2", "#dbdb8d"];
  var colors = D.kinds.map(function (k, i) {
    return i === 0 ? OK : KNOWN[k] || SPARE[i % SPARE.length];
  });

  // Per track: the first bar index, the bar count, the longest run (for
  // the binary search of the first visible bar).
  var tStart = new Int32Array(T), tCount = new Int32Array(T), tMaxDur = new Float64Array(T);
  for (var i = 0; i < N; i++) {
    var tr = B.track[i];
    if (tCount[tr] === 0) tStart[tr] = i;
    tCount[tr]++;
    if (B.dur[i] > tMaxDur[tr]) tMaxDur[tr] = B.dur[i];
  }
  var deaths = 0, replacements = 0;
  D.marks.forEach(function (m) {
    m.kind = markKind(m.name);
    if (m.kind === "death") deaths++;
    if (m.kind === "replaced") replacements++;
  });
  function markKind(name) {
    var n = (name || "").toLowerCase();
    if (/death|died|lost|crash|kill/.test(n)) return "death";
    if (/replac|restart|recycl/.test(n)) return "replaced";
    if (/start/.test(n)) return "start";
    return "other";
  }
  var MARK = { death: "#d00000", replaced: "#ff8c00", start: "#2e7d32", other: "#555" };

  // Summary and legend: one element per kind, not per run.
  var kindCount = D.kinds.map(function () { return 0; });
  for (i = 0; i < N; i++) kindCount[B.kind[i]]++;
  var failed = N - kindCount[0];
  document.getElementById("summary").textContent =
    plural(N, "task run") + " on " + plural(T, "worker track") + " · " + num(failed) + " failed · " +
    plural(deaths, "worker death") + " · " + plural(replacements, "replacement") + " · " + fmtTime(D.end);
  function plural(n, what) { return num(n) + " " + what + (n === 1 ? "" : "s"); }
  function num(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  var legend = document.getElementById("legend");
  D.kinds.forEach(function (k, i) {
    if (!kindCount[i]) return;
    var s = document.createElement("span"), sw = document.createElement("i");
    sw.style.background = colors[i];
    s.appendChild(sw);
    s.appendChild(document.createTextNode((k || "ok") + " (" + num(kindCount[i]) + ")"));
    legend.appendChild(s);
  });
  if (deaths || replacements) {
    [["death", "worker death"], ["replaced", "worker replaced"]].forEach(function (p) {
      var s = document.createElement("span"), sw = document.createElement("i");
      sw.style.background = MARK[p[0]];
      sw.style.width = "3px";
      s.appendChild(sw);
      s.appendChild(document.createTextNode(p[1]));
      legend.appendChild(s);
    });
  }

  // View: the time range shown [t0, t1] in µs, the first row shown.
  var full = Math.max(D.end, 1);
  var t0 = 0, t1 = full * 1.02, row0 = 0;
  var labelW = 80, W = 0, H = 0, rowsShown = 0;
  ctx.font = "12px system-ui, sans-serif";
  D.tracks.forEach(function (t) { labelW = Math.max(labelW, Math.min(220, ctx.measureText(t.name).width + 2 * PAD)); });

  function resize() {
    var dpr = window.devicePixelRatio || 1;
    W = canvas.parentNode.clientWidth;
    var avail = Math.max(200, window.innerHeight - canvas.getBoundingClientRect().top - 120);
    H = Math.min(AXIS + Math.max(T, 1) * ROW + 4, Math.max(avail, AXIS + 5 * ROW));
    rowsShown = Math.floor((H - AXIS) / ROW);
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    canvas.style.height = H + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    clampRows();
    draw();
  }
  function clampRows() { row0 = Math.max(0, Math.min(row0, T - rowsShown)); }
  function xOf(t) { return labelW + (t - t0) / (t1 - t0) * (W - labelW); }
  function tOf(x) { return t0 + (x - labelW) / (W - labelW) * (t1 - t0); }
  function yOf(tr) { return AXIS + (tr - row0) * ROW; }

  function fmtTime(us) {
    var a = Math.abs(us);
    if (a >= 1e6) return +(us / 1e6).toFixed(3) + " s";
    if (a >= 1e3) return +(us / 1e3).toFixed(3) + " ms";
    return +us.toFixed(1) + " µs";
  }

  // firstVisible: the first bar of track tr that may end after t.
  function firstVisible(tr, t) {
    var lo = tStart[tr], hi = tStart[tr] + tCount[tr], want = t - tMaxDur[tr];
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (B.ts[mid] < want) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  var hook = {
    bars: N, deaths: deaths, replacements: replacements, marks: D.marks.length, tracks: T,
    drawn: false, frames: 0, firstDrawMs: 0, barsDrawn: 0, deathsDrawn: 0, selected: -1
  };
  var hover = -1, selected = -1, hoverMark = -1;

  function draw() {
    var i, tr, y;
    ctx.clearRect(0, 0, W, H);
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    var rowEnd = Math.min(T, row0 + rowsShown + 1);
    // Rows.
    for (tr = row0; tr < rowEnd; tr++) {
      y = yOf(tr);
      if (tr % 2) { ctx.fillStyle = "#f5f5f5"; ctx.fillRect(0, y, W, ROW); }
    }
    // Axis and grid.
    var span = t1 - t0, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    if (span / step > 40) step *= 5; else if (span / step > 16) step *= 2;
    ctx.fillStyle = "#333";
    ctx.textAlign = "center";
    for (var g = Math.ceil(t0 / step) * step; g <= t1; g += step) {
      var gx = xOf(g);
      if (gx < labelW) continue;
      ctx.fillStyle = "#e0e0e0";
      ctx.fillRect(Math.round(gx), AXIS - 4, 1, H - AXIS + 4);
      ctx.fillStyle = "#333";
      ctx.fillText(fmtTime(g), gx, AXIS / 2);
    }
    ctx.fillStyle = "#999";
    ctx.fillRect(labelW, AXIS - 1, W - labelW, 1);
    // Bars, clipped to the plot area.
    ctx.save();
    ctx.beginPath();
    ctx.rect(labelW, AXIS, W - labelW, H - AXIS);
    ctx.clip();
    var drawn = 0;
    for (tr = row0; tr < rowEnd; tr++) {
      if (!tCount[tr]) continue;
      y = yOf(tr) + (ROW - BAR) / 2;
      var end = tStart[tr] + tCount[tr];
      // Two passes: ok runs, then failed ones on top, so a failure stays
      // visible when the runs around it are merged into one pixel.
      for (var pass = 0; pass < 2; pass++) {
        var runX0 = -1, runX1 = -1, runC = -1;
        for (i = firstVisible(tr, t0); i < end && B.ts[i] <= t1; i++) {
          var k = B.kind[i];
          if ((k === 0) !== (pass === 0)) continue;
          var x0 = xOf(B.ts[i]), x1 = xOf(B.ts[i] + B.dur[i]);
          if (x1 < labelW) continue;
          if (x1 - x0 < 1) x1 = x0 + 1;
          drawn++;
          // Merge with the rect being built when it touches it and has
          // the same colour: one fillRect for many sub-pixel runs.
          if (k === runC && x0 <= runX1 + 0.5 && x1 - x0 < 3) { if (x1 > runX1) runX1 = x1; continue; }
          if (runC >= 0) { ctx.fillStyle = colors[runC]; ctx.fillRect(runX0, y, runX1 - runX0, BAR); }
          if (x1 - x0 >= 3) {
            ctx.fillStyle = colors[k];
            ctx.fillRect(x0, y, x1 - x0 - 1, BAR);
            if (x1 - x0 > 40) {
              ctx.fillStyle = "#fff";
              ctx.textAlign = "left";
              ctx.save();
              ctx.beginPath(); ctx.rect(x0, y, x1 - x0 - 1, BAR); ctx.clip();
              ctx.fillText(B.id[i], Math.max(x0, labelW) + 3, y + BAR / 2);
              ctx.restore();
            }
            runC = -1;
          } else { runX0 = x0; runX1 = x1; runC = k; }
        }
        if (runC >= 0) { ctx.fillStyle = colors[runC]; ctx.fillRect(runX0, y, runX1 - runX0, BAR); }
      }
    }
    // Hover and selection outlines.
    [[hover, "#000"], [selected, "#1565c0"]].forEach(function (p) {
      var b = p[0];
      if (b < 0 || B.track[b] < row0 || B.track[b] >= rowEnd) return;
      var bx0 = xOf(B.ts[b]), bx1 = Math.max(xOf(B.ts[b] + B.dur[b]), bx0 + 1);
      ctx.strokeStyle = p[1];
      ctx.lineWidth = 2;
      ctx.strokeRect(bx0 - 1, yOf(B.track[b]) + (ROW - BAR) / 2 - 1, bx1 - bx0 + 1, BAR + 2);
    });
    // Marks: a line over the row and a triangle on top, labelled.
    var deathsDrawn = 0, labelEnd = {};
    ctx.textAlign = "left";
    for (i = 0; i < D.marks.length; i++) {
      var m = D.marks[i];
      if (m.ts < t0 || m.ts > t1) continue;
      var mx = Math.round(xOf(m.ts));
      var my0 = m.track < 0 ? AXIS : yOf(m.track), my1 = m.track < 0 ? H : my0 + ROW;
      if (m.track >= 0 && (m.track < row0 || m.track >= rowEnd)) continue;
      var col = MARK[m.kind];
      ctx.fillStyle = col;
      if (m.kind === "start") { ctx.fillRect(mx, my0 + 3, 1, ROW - 6); continue; }
      ctx.fillRect(mx - 1, my0, 2, my1 - my0);
      ctx.beginPath();
      ctx.moveTo(mx - 5, my0); ctx.lineTo(mx + 5, my0); ctx.lineTo(mx, my0 + 7); ctx.closePath();
      ctx.fill();
      if (m.kind === "death") deathsDrawn++;
      var label = m.kind === "death" ? "✕ " + m.name + (argText(m.args, "reason") ? ": " + argText(m.args, "reason") : "") : m.name;
      var lw = ctx.measureText(label).width;
      // One label at a time per row: a later one that would overlap the
      // one before it is left out (hover over its marker for it).
      if (mx + 4 < (labelEnd[m.track] || -Infinity)) continue;
      labelEnd[m.track] = mx + lw + 12;
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(mx + 4, my0 + 3, lw + 4, ROW - 6);
      ctx.fillStyle = col;
      ctx.fillText(label, mx + 6, my0 + ROW / 2);
    }
    ctx.restore();
    // Labels.
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, AXIS, labelW, H - AXIS);
    ctx.fillStyle = "#ccc";
    ctx.fillRect(labelW - 1, 0, 1, H);
    ctx.textAlign = "left";
    for (tr = row0; tr < rowEnd; tr++) {
      ctx.fillStyle = "#222";
      ctx.save();
      ctx.beginPath(); ctx.rect(0, yOf(tr), labelW - 2, ROW); ctx.clip();
      ctx.fillText(D.tracks[tr].name, PAD, yOf(tr) + ROW / 2);
      ctx.restore();
    }
    if (T > rowsShown) {
      ctx.fillStyle = "#777";
      ctx.fillText("rows " + (row0 + 1) + "–" + Math.min(T, row0 + rowsShown) + " of " + T, PAD, AXIS / 2);
    }
    hook.frames++;
    hook.barsDrawn = drawn;
    hook.deathsDrawn = deathsDrawn;
    if (!hook.drawn) { hook.drawn = true; hook.firstDrawMs = performance.now(); }
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; draw(); });
  }

  function argText(args, k) {
    if (!args || args[k] === undefined || args[k] === null) return "";
    return typeof args[k] === "string" ? args[k] : JSON.stringify(args[k]);
  }

  function barText(b) {
    var kind = D.kinds[B.kind[b]];
    var lines = [
      "task      " + B.id[b],
      "function  " + (D.funcs[B.func[b]] || "?"),
      "start     " + fmtTime(B.ts[b]),
      "duration  " + fmtTime(B.dur[b]),
      "end       " + fmtTime(B.ts[b] + B.dur[b]),
      "attempts  " + B.attempts[b],
      "pid       " + B.pid[b],
      "worker    " + D.tracks[B.track[b]].name,
      "outcome   " + (kind ? "failed: " + kind : "ok")
    ];
    var ex = B.extra && B.extra[b];
    if (ex) Object.keys(ex).sort().forEach(function (k) { lines.push((k + "          ").slice(0, 10) + argText(ex, k)); });
    return lines.join("\n");
  }
  function markText(m) {
    var lines = [m.name + " at " + fmtTime(m.ts) + (m.track >= 0 ? " on " + D.tracks[m.track].name : "")];
    if (m.args) Object.keys(m.args).sort().forEach(function (k) { lines.push((k + "          ").slice(0, 10) + argText(m.args, k)); });
    return lines.join("\n");
  }
  function showDetails() {
    if (hover >= 0) details.textContent = barText(hover);
    else if (hoverMark >= 0) details.textContent = markText(D.marks[hoverMark]);
    else if (selected >= 0) details.textContent = barText(selected);
    else details.textContent = "Hover over or click a bar for its details.";
    details.setAttribute("data-bar", hover >= 0 ? hover : selected);
  }

  // barAt: the bar under canvas point (x, y), or the nearest within 3 px.
  function barAt(x, y) {
    if (x < labelW || y < AXIS) return -1;
    var tr = row0 + Math.floor((y - AXIS) / ROW);
    if (tr >= T || !tCount[tr]) return -1;
    var yy = y - yOf(tr);
    if (yy < (ROW - BAR) / 2 - 1 || yy > (ROW + BAR) / 2 + 1) return -1;
    var slack = 3 * (t1 - t0) / (W - labelW), t = tOf(x);
    var best = -1, bestD = Infinity, end = tStart[tr] + tCount[tr];
    for (var i = firstVisible(tr, t - slack); i < end && B.ts[i] <= t + slack; i++) {
      var d = t < B.ts[i] ? B.ts[i] - t : t > B.ts[i] + B.dur[i] ? t - B.ts[i] - B.dur[i] : 0;
      if (d <= slack && (d < bestD || (d === bestD && B.kind[i] !== 0))) { best = i; bestD = d; }
    }
    return best;
  }
  function markAt(x, y) {
    var tr = row0 + Math.floor((y - AXIS) / ROW);
    for (var i = 0; i < D.marks.length; i++) {
      var m = D.marks[i];
      if (m.kind === "start" || (m.track >= 0 && m.track !== tr)) continue;
      if (Math.abs(xOf(m.ts) - x) <= 5) return i;
    }
    return -1;
  }
  function point(e) {
    var r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  var drag = null;
  canvas.addEventListener("mousedown", function (e) {
    var p = point(e);
    drag = { x: p[0], y: p[1], t0: t0, t1: t1, row0: row0, moved: false };
  });
  window.addEventListener("mousemove", function (e) {
    var p = point(e);
    if (drag) {
      var dx = p[0] - drag.x, dy = p[1] - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; canvas.classList.add("dragging"); }
      if (drag.moved) {
        var dt = dx / (W - labelW) * (drag.t1 - drag.t0);
        t0 = drag.t0 - dt; t1 = drag.t1 - dt;
        row0 = drag.row0 - Math.round(dy / ROW);
        clampRows();
        redraw();
        return;
      }
    }
    if (e.target !== canvas) return;
    var b = barAt(p[0], p[1]), m = b < 0 ? markAt(p[0], p[1]) : -1;
    if (b !== hover || m !== hoverMark) { hover = b; hoverMark = m; showDetails(); redraw(); }
  });
  window.addEventListener("mouseup", function (e) {
    if (drag && !drag.moved && e.target === canvas) {
      var p = point(e), b = barAt(p[0], p[1]);
      select(b);
    }
    drag = null;
    canvas.classList.remove("dragging");
  });
  canvas.addEventListener("mouseleave", function () {
    if (hover >= 0 || hoverMark >= 0) { hover = -1; hoverMark = -1; showDetails(); redraw(); }
  });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = point(e);
    if (e.shiftKey && T > rowsShown) {
      row0 += e.deltaY > 0 ? 1 : -1;
      clampRows();
    } else if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      var dt = e.deltaX / (W - labelW) * (t1 - t0);
      t0 += dt; t1 += dt;
    } else {
      var at = tOf(Math.max(p[0], labelW)), f = Math.exp(e.deltaY * 0.002);
      var span = Math.min(Math.max((t1 - t0) * f, 1), full * 20);
      t0 = at - (at - t0) / (t1 - t0) * span;
      t1 = t0 + span;
    }
    redraw();
  }, { passive: false });
  canvas.addEventListener("dblclick", function () { t0 = 0; t1 = full * 1.02; row0 = 0; redraw(); });
  window.addEventListener("resize", resize);

  function select(b) {
    selected = b >= 0 && b < N ? b : -1;
    hook.selected = selected;
    showDetails();
    draw();
    return selected >= 0 ? barText(selected) : "";
  }

  hook.select = select;
  // barPoint: where bar i is drawn, in client (page viewport) pixels, or
  // null when it is not in view.
  hook.barPoint = function (b) {
    var tr = B.track[b];
    if (tr < row0 || tr >= row0 + rowsShown) return null;
    var r = canvas.getBoundingClientRect();
    var x0 = Math.max(xOf(B.ts[b]), labelW), x1 = Math.min(Math.max(xOf(B.ts[b] + B.dur[b]), x0 + 1), W);
    return { x: r.left + (x0 + x1) / 2, y: r.top + yOf(tr) + ROW / 2 };
  };
  hook.markPoint = function (i) {
    var m = D.marks[i], r = canvas.getBoundingClientRect();
    return { x: r.left + Math.round(xOf(m.ts)), y: r.top + (m.track < 0 ? AXIS : yOf(m.track)) + ROW / 2, kind: m.kind };
  };
  hook.view = function () { return { t0: t0, t1: t1, row0: row0, full: full }; };
  window.timeline = hook;
  resize();
})();
