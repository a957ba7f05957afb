// unlearnkit comparison page: draws five views of a chosen method beside Retrain and the Original
// from the JSON in #compare-data, then marks <body data-status> "ok" or "failed: VIEW: reason; ...".
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("compare-data").textContent);
  var failures = [];
  var COLOR = {original: "#8a94a6", method: "#e8590c", retrain: "#1c7ed6"};
  var CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                      "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
                      "#e6550d", "#31a354", "#756bb1", "#636363"];
  var SPLITS = ["forget", "retain", "test"];
  var SYMBOL = ["circle", "diamond", "square"];
  var HEAT = [[0, "#ffffff"], [0.02, "#eef4fb"], [0.5, "#6fa8dc"], [1, "#0b3d74"]];
  var CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]};
  var FONT = {family: "-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif", size: 12, color: "#1f2933"};

  window.addEventListener("error", function (e) { failures.push("script: " + e.message); finish(); });

  function base(extra) {
    var layout = {font: FONT, margin: {l: 56, r: 16, t: 64, b: 48}, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
                  legend: {orientation: "h", x: 0, xanchor: "left", y: 1.2, yanchor: "bottom"},
                  hoverlabel: {font: {size: 12}}};
    for (var k in extra) { layout[k] = extra[k]; }
    return layout;
  }
  function label(name) { return name === "original" ? "Original" : name === "retrain" ? "Retrain" : name; }
  function models(m) { return [["original", D.views.original], [m, D.views[m]], ["retrain", D.views.retrain]]
    .filter(function (p) { return p[1]; }); }
  function colorOf(name) { return COLOR[name] || COLOR.method; }
  function pct(v) { return v === null || v === undefined ? null : 100 * v; }
  function range(n) { var r = []; for (var i = 0; i < n; i++) { r.push(i); } return r; }
  function axis(i, extra) { var a = {anchor: "y" + (i ? i + 1 : ""), domain: [i / 3 + 0.02, (i + 1) / 3 - 0.02]};
    for (var k in extra) { a[k] = extra[k]; } return a; }
  function panelTitles(names) { return names.map(function (t, i) {
    return {text: "<b>" + t + "</b>", xref: "x" + (i ? i + 1 : "") + " domain", yref: "paper", x: 0.5, y: 1.01, yanchor: "bottom",
            showarrow: false, font: {size: 13}}; }); }

  // -- per-class accuracy: forget | retain | test, the three models side by side per class -------------
  function perClass(m) {
    var traces = [], layout = base({height: 340, annotations: panelTitles(SPLITS)});
    var classes = range(D.num_classes), ms = models(m), lo = 100;
    SPLITS.forEach(function (split, i) {
      var sfx = i ? String(i + 1) : "";
      ms.forEach(function (p, j) {
        var acc = (p[1].per_class[split] || []).map(pct);
        acc.forEach(function (a) { if (a !== null && a < lo) { lo = a; } });
        traces.push({type: "scatter", mode: "markers", name: label(p[0]), xaxis: "x" + sfx, yaxis: "y" + sfx,
                     x: classes.map(function (c) { return c + (j - (ms.length - 1) / 2) * 0.24; }), y: acc,
                     customdata: classes, marker: {color: colorOf(p[0]), size: 9, symbol: SYMBOL[j % SYMBOL.length],
                     line: {width: 1, color: "#fff"}}, legendgroup: p[0], showlegend: i === 0,
                     hovertemplate: label(p[0]) + ", " + split + ", class %{customdata}: %{y:.1f}%<extra></extra>"});
      });
    });
    var floor = Math.max(0, Math.floor((lo - 4) / 5) * 5);
    SPLITS.forEach(function (split, i) {
      var sfx = i ? String(i + 1) : "";
      layout["xaxis" + sfx] = axis(i, {title: {text: "class"}, tickvals: classes, range: [-0.6, D.num_classes - 0.4],
                                       anchor: "y" + sfx, showgrid: false});
      layout["yaxis" + sfx] = {domain: [0, 1], range: [floor, 101.5], anchor: "x" + sfx, gridcolor: "#eef1f4",
                               title: i ? undefined : {text: "accuracy (%)"}};
    });
    return Plotly.react("per-class", traces, layout, CONFIG);
  }

  // -- prediction matrices of the forget set ----------------------------------------------------------
  function predictionMatrix(m) {
    var ms = models(m), traces = [], layout = base({height: 380, annotations: panelTitles(ms.map(function (p) {
      return label(p[0]); }))});
    var ticks = range(D.num_classes);
    ms.forEach(function (p, i) {
      var sfx = i ? String(i + 1) : "", rows = p[1].forget_matrix;
      var share = rows.map(function (r) { var s = r.reduce(function (a, b) { return a + b; }, 0);
        return r.map(function (v) { return s ? 100 * v / s : null; }); });
      layout["xaxis" + sfx] = axis(i, {title: {text: "predicted"}, tickvals: ticks, anchor: "y" + sfx, constrain: "domain"});
      layout["yaxis" + sfx] = {domain: [0, 1], anchor: "x" + sfx, tickvals: ticks, autorange: "reversed",
                               scaleanchor: "x" + sfx, title: i ? undefined : {text: "true class"}};
      var shown = rows.map(function (r) { return r.map(function (v) { return v ? String(v) : ""; }); });
      traces.push({type: "heatmap", z: share, x: ticks, y: ticks, text: shown, customdata: rows, xaxis: "x" + sfx,
                   yaxis: "y" + sfx, zmin: 0, zmax: 100, colorscale: HEAT, showscale: i === ms.length - 1, xgap: 1, ygap: 1,
                   colorbar: {title: {text: "% of row"}, len: 0.9}, texttemplate: "%{text}",
                   hovertemplate: label(p[0]) + ": true %{y} → predicted %{x}: %{customdata} (%{z:.0f}%)<extra></extra>"});
    });
    return Plotly.react("prediction-matrix", traces, layout, CONFIG);
  }

  // -- 2-D embeddings of penultimate features ------------------------------------------------------
  var STYLE = {forget: {size: 9, opacity: 0.95, symbol: "circle", line: {width: 1.2, color: "#111"}},
               retain: {size: 5, opacity: 0.35, symbol: "circle", line: {width: 0}},
               test: {size: 5, opacity: 0.55, symbol: "triangle-up-open", line: {width: 1}}};
  function embedding(m) {
    var ms = models(m), traces = [], layout = base({height: 420, annotations: panelTitles(ms.map(function (p) {
      return label(p[0]); }))});
    var labels = D.layout.labels, splits = D.layout.split;
    ms.forEach(function (p, i) {
      var sfx = i ? String(i + 1) : "", xy = p[1].embedding, pred = p[1].predicted;
      layout["xaxis" + sfx] = axis(i, {showticklabels: false, zeroline: false, showgrid: false, anchor: "y" + sfx});
      layout["yaxis" + sfx] = {domain: [0, 1], anchor: "x" + sfx, showticklabels: false, zeroline: false, showgrid: false};
      ["retain", "test", "forget"].forEach(function (split) {
        var idx = range(labels.length).filter(function (j) { return splits[j] === split; });
        if (!idx.length) { return; }
        var st = STYLE[split];
        traces.push({type: "scatter", mode: "markers", name: split, legendgroup: split, showlegend: i === 0,
                     x: idx.map(function (j) { return xy[2 * j]; }), y: idx.map(function (j) { return xy[2 * j + 1]; }),
                     xaxis: "x" + sfx, yaxis: "y" + sfx,
                     customdata: idx.map(function (j) { return [labels[j], pred[j]]; }),
                     marker: {size: st.size, opacity: st.opacity, symbol: st.symbol,
                              color: idx.map(function (j) { return CLASS_COLORS[labels[j] % CLASS_COLORS.length]; }),
                              line: st.line.color ? st.line : {width: st.line.width,
                                color: idx.map(function (j) { return CLASS_COLORS[labels[j] % CLASS_COLORS.length]; })}},
                     hovertemplate: label(p[0]) + ", " + split + ": class %{customdata[0]}, predicted %{customdata[1]}<extra></extra>"});
      });
    });
    return Plotly.react("embedding", traces, layout, CONFIG);
  }

  // -- linear CKA per layer ------------------------------------------------------------------------
  function layerSimilarity(m) {
    var v = D.views[m], traces = [], x = D.layers;
    var lines = [["retrain", "forget", "solid"], ["retrain", "retain", "dash"], ["original", "forget", "solid"],
                 ["original", "retain", "dash"]];
    lines.forEach(function (l) {
      var y = ((v.cka[l[0]] || {})[l[1]]);
      if (!y) { return; }
      traces.push({type: "scatter", mode: "lines+markers", x: x, y: y, name: label(m) + " vs " + label(l[0]) + " (" + l[1] + ")",
                   line: {color: colorOf(l[0]), dash: l[2], width: 2.5}, marker: {size: 7},
                   hovertemplate: "%{x}: CKA %{y:.3f}<extra>" + label(m) + " vs " + label(l[0]) + ", " + l[1] + "</extra>"});
    });
    var ref = ((D.views.original.cka.retrain || {}).forget);
    if (ref && m !== "original") {
      traces.push({type: "scatter", mode: "lines", x: x, y: ref, name: "Original vs Retrain (forget)",
                   line: {color: "#adb5bd", dash: "dot", width: 2}, hovertemplate: "%{x}: CKA %{y:.3f}<extra>Original vs Retrain, forget</extra>"});
    }
    // the axis follows the data: CKA values of related models often differ in the second decimal only
    var layout = base({height: 360, yaxis: {title: {text: "linear CKA"}, autorange: true, tickformat: ".3f"},
                       xaxis: {title: {text: "layer (input → output)"}, type: "category"},
                       margin: {l: 64, r: 16, t: 24, b: 120},
                       legend: {orientation: "h", x: 0, xanchor: "left", y: -0.32, yanchor: "top"}});
    return Plotly.react("layer-similarity", traces, layout, CONFIG);
  }

  // -- per-example membership evidence and the most exposed examples --------------------------------
  function perExample(m) {
    var v = D.views[m], r = D.views.retrain, o = D.views.original, traces = [];
    var note = document.getElementById("per-example-note");
    if (v.evidence) {
      return perExampleEvidence(m, v, note);
    }
    if (!v.membership) {
      note.textContent = "No unseen (test) data: no membership scores.";
      return Plotly.react("per-example", [], base({height: 120}), CONFIG).then(function () { return drawExposed([]); });
    }
    note.textContent = "Loss-based score of each forget example: the share of unseen test examples the model is " +
      "less sure of (0.5 ≈ looks unseen, 1 = more confident than on any unseen example). Points above the " +
      "diagonal are more exposed than under Retrain; the examples most exposed are drawn below.";
    var base_ = r && r.membership ? r.membership : null, n = v.membership.length;
    var xs = base_ || range(n).map(function (i) { return i / n; });
    if (o && o.membership && m !== "original") {
      traces.push({type: "scatter", mode: "markers", name: "Original", x: xs, y: o.membership,
                   marker: {color: COLOR.original, size: 5, opacity: 0.4}, hovertemplate: "Original: %{y:.2f}<extra></extra>"});
    }
    traces.push({type: "scatter", mode: "markers", name: label(m), x: xs, y: v.membership,
                 marker: {color: colorOf(m), size: 6, opacity: 0.8},
                 hovertemplate: label(m) + ": %{y:.2f}, Retrain: %{x:.2f}<extra></extra>"});
    traces.push({type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "same as Retrain", line: {color: "#adb5bd", dash: "dot"},
                 hoverinfo: "skip"});
    var layout = base({height: 360, xaxis: {title: {text: base_ ? "Retrain's score" : "forget example"}, range: [-0.02, 1.02]},
                       yaxis: {title: {text: "membership score"}, range: [-0.02, 1.02]}});
    return Plotly.react("per-example", traces, layout, CONFIG).then(function () { return drawExposed(v.exposed || []); });
  }

  function perExampleEvidence(m, v, note) {
    note.textContent = "The audit's evidence per forget example: " + v.evidence.label + ", sorted; the examples " +
      "with the strongest evidence are drawn below.";
    var sorted = v.evidence.values.slice().sort(function (a, b) { return b - a; });
    var trace = {type: "bar", x: range(sorted.length), y: sorted, marker: {color: colorOf(m)}, name: label(m),
                 hovertemplate: "%{y:.3f}<extra></extra>"};
    var layout = base({height: 340, bargap: 0.05, xaxis: {title: {text: "forget examples, strongest evidence first"}},
                       yaxis: {title: {text: v.evidence.label.split(" (")[0]}}});
    return Plotly.react("per-example", [trace], layout, CONFIG).then(function () { return drawExposed(v.exposed || []); });
  }

  function drawExposed(items) {
    var box = document.getElementById("exposed");
    box.textContent = "";
    return Promise.all(items.map(function (e, k) {
      var div = document.createElement("div");
      div.className = "item";
      div.id = "exposed-" + k;
      box.appendChild(div);
      var title = (e.index === null ? "" : "#" + e.index + " · ") + "class " + e.label + "<br>score " + e.score.toFixed(3) +
                  (e.baseline === null ? "" : " · Retrain " + e.baseline.toFixed(2));
      var shape = e.shape.filter(function (s) { return s > 1; }), trace;
      var layout = base({height: 168, margin: {l: 8, r: 8, t: 38, b: 8}, showlegend: false,
                         title: {text: title, font: {size: 11}, x: 0.5},
                         xaxis: {visible: false}, yaxis: {visible: false}});
      if (shape.length <= 1) {
        trace = {type: "scatter", mode: "lines", y: e.x, line: {color: COLOR.method, width: 2}, hoverinfo: "skip"};
      } else {
        var c = e.shape.length === 3 ? e.shape[0] : 1, h = e.shape[e.shape.length - 2], w = e.shape[e.shape.length - 1];
        var rows = range(h).map(function (y) { return range(w).map(function (x) {
          return c === 3 ? [0, 1, 2].map(function (ch) { return e.x[ch * h * w + y * w + x]; }) : e.x[y * w + x]; }); });
        if (c === 3) {
          var lo = Math.min.apply(null, e.x), hi = Math.max.apply(null, e.x), span = hi - lo || 1;
          trace = {type: "image", z: rows.map(function (r) { return r.map(function (p) {
            return p.map(function (q) { return 255 * (q - lo) / span; }); }); }), hoverinfo: "skip"};
        } else {
          trace = {type: "heatmap", z: rows, colorscale: "Greys", reversescale: true, showscale: false, hoverinfo: "skip"};
          layout.yaxis = {visible: false, autorange: "reversed", scaleanchor: "x"};
        }
      }
      return Plotly.newPlot(div, [trace], layout, {staticPlot: true});
    }));
  }

  // -- the page ---------------------------------------------------------------------------------------
  var VIEWS = {"per-class": perClass, "prediction-matrix": predictionMatrix, "embedding": embedding,
               "layer-similarity": layerSimilarity, "per-example": perExample};

  function stats(m) {
    var box = document.getElementById("stats"), s = D.summary || {}, mine = s[m], ret = s.retrain;
    box.textContent = "";
    if (!mine) { return; }
    [["forget_acc", "forget accuracy", 100, "%"], ["test_acc", "test accuracy", 100, "%"],
     ["mia_efficacy", "MIA-efficacy", 100, "%"], ["avg_gap", "avg gap to Retrain", 100, " pts"],
     ["time_s", "time", 1, " s"]].forEach(function (k) {
      if (mine[k[0]] === undefined || mine[k[0]] === null) { return; }
      var div = document.createElement("div");
      div.className = "stat";
      var ref = ret && ret[k[0]] !== undefined && k[0] !== "avg_gap" ? "Retrain " + (k[2] * ret[k[0]]).toFixed(k[0] === "time_s" ? 2 : 1) + k[3] : "";
      div.innerHTML = '<div class="k"></div><div class="v"></div><div class="r"></div>';
      div.children[0].textContent = k[1];
      div.children[1].textContent = (k[2] * mine[k[0]]).toFixed(k[0] === "time_s" ? 2 : 1) + k[3];
      div.children[2].textContent = ref;
      box.appendChild(div);
    });
  }

  function finish() {
    var fetched = (performance.getEntriesByType ? performance.getEntriesByType("resource") : []).filter(function (e) {
      return /^(https?|wss?):/.test(e.name); });
    if (fetched.length) { failures.push("network: the page loaded " + fetched[0].name); }
    document.body.setAttribute("data-status", failures.length ? "failed: " + failures.join("; ") : "ok");
  }

  function render(m) {
    stats(m);
    return Promise.all(D.view_ids.map(function (id) {
      var el = document.getElementById(id);
      return Promise.resolve().then(function () { return VIEWS[id](m); }).then(function () {
        el.classList.remove("failed");
      }, function (err) {
        failures.push(id + ": " + (err && err.message ? err.message : String(err)));
        el.classList.add("failed");
        el.textContent = "This view failed: " + (err && err.message ? err.message : String(err));
      });
    })).then(finish);
  }

  var ctx = D.context || {}, opts = ctx.scenario_options || {};
  document.getElementById("context").textContent = "Seed " + D.seed + " · " + (D.methods.length) + " method(s) · " +
    Object.keys(opts).map(function (k) { return k + "=" + opts[k]; }).join(", ");
  var select = document.getElementById("method");
  var choices = D.methods.length ? D.methods : [D.views.retrain ? "retrain" : "original"];
  choices.forEach(function (m) { var o = document.createElement("option"); o.value = m; o.textContent = label(m);
    select.appendChild(o); });
  select.addEventListener("change", function () { failures = []; render(select.value); });
  render(choices[0]);
})();
