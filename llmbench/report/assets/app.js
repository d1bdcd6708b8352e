/* llmbench leaderboard: sorting, filters, sample browser, side-by-side.
 *
 * Model-written text only ever reaches the page through textContent (never innerHTML),
 * read from JSON in <script type="application/json">, which the browser does not execute.
 * No network access: the page's Content-Security-Policy forbids it and nothing here asks.
 */
(function () {
  "use strict";

  var PAGE = 200; // rows rendered per "show more"

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  /* ---------------------------------------------------------------- sortable tables */
  function sortKey(td, type) {
    var raw = td ? td.getAttribute("data-sort") : null;
    if (raw === null) raw = td ? td.textContent.trim() : "";
    if (raw === "") return null;
    if (type === "num") {
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    return raw.toLowerCase();
  }

  function initSortable(table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) return;
    Array.prototype.forEach.call(head.cells, function (th, index) {
      var type = th.getAttribute("data-type");
      var button = th.querySelector("button");
      if (!type || !button) return;
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        var better = th.getAttribute("data-better");
        var current = th.getAttribute("aria-sort");
        // First click: best first (descending when higher is better); next clicks toggle.
        var desc = current === "none" ? better === "high" : current === "ascending";
        Array.prototype.forEach.call(head.cells, function (other) {
          if (other.hasAttribute("aria-sort")) other.setAttribute("aria-sort", "none");
        });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        sortRows(table, index, type, desc);
      });
    });
  }

  function sortRows(table, index, type, desc) {
    // Each tbody sorts on its own: the baselines' group stays below the ranked models.
    Array.prototype.forEach.call(table.tBodies, function (body) { sortBody(body, index, type, desc); });
  }

  function sortBody(body, index, type, desc) {
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("group"); });
    var keyed = rows.map(function (row, i) { return { row: row, key: sortKey(row.cells[index], type), i: i }; });
    keyed.sort(function (a, b) {
      if (a.key === null && b.key === null) return a.i - b.i;
      if (a.key === null) return 1; // unknown values always last
      if (b.key === null) return -1;
      var c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      return (desc ? -c : c) || a.i - b.i;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }

  /* ---------------------------------------------------------------- filters */
  /* The kind filter hides the other kinds' columns, drops the rows left without any value,
     and recomputes each model's overall rank over the tasks still shown (coverage first, then
     the mean of its per-task ranks), as the page was built: a model ranked on fewer of the
     shown tasks never moves above one ranked on more. */
  function initKindFilter(select) {
    var table = document.getElementById(select.getAttribute("data-table"));
    if (!table) return;
    select.addEventListener("change", function () {
      var kind = select.value;
      table.querySelectorAll("[data-kind]").forEach(function (node) {
        node.classList.toggle("hidden", kind !== "all" && node.getAttribute("data-kind") !== kind);
      });
      rerank(table);
    });
  }

  /* Scoring mode is a property of each system (shown, never a reason to exclude): this filter
     dims the cells scored in another mode and hides models with none left; ranks and stars
     stay the decision's (report.decision), they are not recomputed. */
  function initModeFilter(select) {
    var table = document.getElementById(select.getAttribute("data-table"));
    if (!table) return;
    select.addEventListener("change", function () {
      var mode = select.value;
      table.querySelectorAll("tbody.ranked tr").forEach(function (row) {
        var left = 0;
        row.querySelectorAll("td.cell[data-mode]").forEach(function (td) {
          var off = mode !== "all" && td.getAttribute("data-mode") !== mode;
          td.classList.toggle("mode-off", off);
          if (!off) left++;
        });
        row.classList.toggle("mode-hidden", mode !== "all" && left === 0);
      });
    });
  }

  function rerank(table) {
    var nShown = table.querySelectorAll("thead th.task-col:not(.hidden)").length;
    var ranked = [], hidden = [];
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var shownRows = 0;
      Array.prototype.forEach.call(body.rows, function (row) {
        if (row.classList.contains("group")) return;
        var cells = row.querySelectorAll("td.cell:not(.hidden)");
        var any = false, ranks = [];
        cells.forEach(function (td) {
          if (td.getAttribute("data-sort") !== "") any = true;
          if (td.hasAttribute("data-rank")) ranks.push(parseFloat(td.getAttribute("data-rank")));
        });
        row.classList.toggle("filtered-out", !any);
        if (!any) hidden.push(row);
        if (any) shownRows++;
        if (body.classList.contains("ranked") && any) {
          var mean = ranks.length ? ranks.reduce(function (a, b) { return a + b; }, 0) / ranks.length : null;
          ranked.push({ row: row, cov: ranks.length, mean: mean, name: row.cells[0].getAttribute("data-sort") });
        }
      });
      body.classList.toggle("filtered-out", shownRows === 0);
    });
    ranked.sort(function (a, b) {
      if ((a.mean === null) !== (b.mean === null)) return a.mean === null ? 1 : -1;
      return (b.cov - a.cov) || ((a.mean || 0) - (b.mean || 0)) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    });
    var prev = null;
    ranked.forEach(function (r, i) {
      var pos = null;
      if (r.mean !== null) pos = prev && prev.cov === r.cov && prev.mean === r.mean ? prev.pos : i + 1;
      r.pos = pos; prev = r;
      var td = r.row.querySelector("td.rank");
      td.setAttribute("data-sort", pos === null ? "" : String(pos));
      td.querySelector(".pos").textContent = pos === null ? "—" : "#" + pos;
      td.querySelector(".cov").textContent = (r.mean === null ? "" : "avg " + r.mean.toFixed(1) + " · ") +
        r.cov + "/" + nShown + " tasks";
      r.row.parentNode.appendChild(r.row);
    });
    hidden.forEach(function (row) { row.parentNode.appendChild(row); }); // out of the way, order kept
    table.querySelectorAll("thead th[aria-sort]").forEach(function (th) { th.setAttribute("aria-sort", "none"); });
  }

  /* The Pareto front counts the models only; this toggle redraws it with the baselines. */
  function initFrontToggle(input) {
    var svg = input.closest(".chart-pane").querySelector("svg.chart");
    input.addEventListener("change", function () { svg.classList.toggle("with-refs", input.checked); });
  }

  /* Hovering (or focusing) a legend entry brings that model's line and CI band forward. */
  function initLegendFocus(list) {
    var svg = list.previousElementSibling;
    if (!svg || !svg.matches("svg.chart")) return;
    list.querySelectorAll("li[data-c]").forEach(function (li) {
      function on() {
        svg.classList.add("focus");
        svg.querySelectorAll(".c" + li.getAttribute("data-c")).forEach(function (n) { n.classList.add("on"); });
      }
      function off() {
        svg.classList.remove("focus");
        svg.querySelectorAll(".on").forEach(function (n) { n.classList.remove("on"); });
      }
      li.addEventListener("mouseenter", on); li.addEventListener("mouseleave", off);
      li.addEventListener("focus", on); li.addEventListener("blur", off);
    });
  }

  function initChartSwitch(select) {
    var group = select.getAttribute("data-group");
    select.addEventListener("change", function () {
      document.querySelectorAll('.chart-pane[data-group="' + group + '"]').forEach(function (pane) {
        pane.classList.toggle("hidden", pane.getAttribute("data-x") !== select.value);
      });
    });
  }

  /* A budget on a quality-vs-cost (or latency) chart: models above it fade, and the best one
     within it is named (the same question ``llmbench select`` answers from the command line). */
  function initBudget(input) {
    var pane = input.closest(".chart-pane");
    var svg = pane.querySelector("svg.chart");
    var out = pane.querySelector(".budget-best");
    var hib = svg.getAttribute("data-hib") === "1";
    input.addEventListener("input", function () {
      var limit = parseFloat(input.value);
      var best = null;
      pane.querySelectorAll("g.pt[data-x]").forEach(function (g) {
        var over = !isNaN(limit) && parseFloat(g.getAttribute("data-x")) > limit;
        g.classList.toggle("over-budget", over);
        var y = parseFloat(g.getAttribute("data-y"));
        if (!over && (best === null || (hib ? y > best.y : y < best.y))) { best = { y: y, model: g.getAttribute("data-model") }; }
      });
      if (isNaN(limit)) { out.textContent = ""; return; }
      out.textContent = best === null ? "no model within the budget" : "best within the budget: " + best.model;
    });
  }

  /* ---------------------------------------------------------------- samples */
  /* Per-sample scores are on the metric's declared scale, as the tables are (F1 0-100 on
     both): the page is told the scale's decimals and full mark instead of guessing. */
  var SCALE = { decimals: 3, full: 1 };

  function fmtScore(s) {
    if (s === null || s === undefined) return "—";
    return s.toFixed(SCALE.decimals);
  }

  function isRight(pred) {
    return !!pred && !pred.e && pred.s !== null && pred.s !== undefined && pred.s >= SCALE.full / 2;
  }

  function textCell(cls, text, label) {
    var td = el("td", cls);
    if (label) td.setAttribute("data-label", label);
    td.appendChild(el("div", "txt", text));
    return td;
  }

  function inputCell(sample) {
    var td = textCell("input", sample.input, "input");
    if (sample.context) {
      var det = el("details", "context");
      det.open = true; // the passage is what a QA answer is judged against: shown, foldable
      det.appendChild(el("summary", null, "passage (the prompt as the model saw it)"));
      det.appendChild(el("div", "txt", sample.context));
      td.appendChild(det);
    }
    return td;
  }

  function refsCell(refs) {
    var td = el("td", "refs");
    td.setAttribute("data-label", "reference");
    (refs || []).forEach(function (r) { td.appendChild(el("div", "txt ref", r)); });
    return td;
  }

  function predCell(pred, withScore, label) {
    var td = el("td", "pred");
    td.setAttribute("data-label", label || "prediction");
    if (!pred) { td.appendChild(el("span", "na", "not run")); return td; }
    if (pred.e) td.appendChild(el("div", "txt err", "failed: " + pred.e));
    else td.appendChild(el("div", "txt", pred.p === null ? "" : pred.p));
    if (withScore) td.appendChild(el("div", "score-tag " + scoreClass(pred.s), fmtScore(pred.s)));
    return td;
  }

  function scoreClass(s) {
    if (s === null || s === undefined) return "s-na";
    return s <= 0 ? "s-bad" : s >= SCALE.full ? "s-good" : "s-mid";
  }

  function fillSelect(select, models, pick) {
    models.forEach(function (m) { select.appendChild(el("option", null, m)).value = m; });
    if (pick !== undefined && models[pick] !== undefined) select.value = models[pick];
  }

  function Pager(tbody, moreButton, countNode) {
    this.tbody = tbody; this.more = moreButton; this.count = countNode; this.rows = []; this.shown = 0;
    var self = this;
    moreButton.addEventListener("click", function () { self.render(self.shown + PAGE); });
  }
  Pager.prototype.set = function (rows, describe) {
    this.rows = rows; this.describe = describe;
    while (this.tbody.firstChild) this.tbody.removeChild(this.tbody.firstChild);
    this.shown = 0;
    this.render(PAGE);
  };
  Pager.prototype.render = function (upto) {
    var end = Math.min(upto, this.rows.length);
    for (var i = this.shown; i < end; i++) this.tbody.appendChild(this.rows[i]());
    this.shown = end;
    this.more.classList.toggle("hidden", this.shown >= this.rows.length);
    this.count.textContent = this.describe(this.shown, this.rows.length);
  };

  function haystack(id, sample, pred) {
    return [id, sample.input, (sample.refs || []).join("\n"), pred ? pred.p || "" : "", pred ? pred.e || "" : ""]
      .join("\n").toLowerCase();
  }

  /* The id opens the sample page (everything stored about that sample, every model). */
  function idCell(data, id, model) {
    var td = el("td", "sid");
    td.setAttribute("data-label", "id");
    var a = el("a", "sample-link", id);
    a.href = data.sample_page + "#" + encodeURIComponent(id) + (model ? "&model=" + encodeURIComponent(model) : "");
    td.appendChild(a);
    return td;
  }

  var FIELD_NAMES = { prompt: "rendered prompt", prediction: "prediction", error: "error", latency_s: "latency (s)",
                      prompt_tokens: "prompt tokens", completion_tokens: "completion tokens", cost_usd: "cost (USD)" };

  function fieldText(v) {
    return typeof v === "string" ? v : JSON.stringify(v, null, 1);
  }

  function addField(dl, name, value) {
    dl.appendChild(el("dt", null, FIELD_NAMES[name] || name.replace(/_/g, " ")));
    dl.appendChild(el("dd", "f-" + name.replace(/[^a-z0-9]/gi, "-"), fieldText(value)));
  }

  function initSamplePage(data) {
    var pick = document.getElementById("sp-id");
    if (!pick) return;
    data.order.forEach(function (id) { pick.appendChild(el("option", null, id)).value = id; });
    function current() {
      var raw = decodeURIComponent(location.hash.replace(/^#/, "").split("&")[0] || "");
      return data.samples[raw] ? raw : data.order[0];
    }
    function render() {
      var id = current();
      if (id === undefined) return;
      pick.value = id;
      var i = data.order.indexOf(id);
      document.getElementById("sp-prev").href = "#" + encodeURIComponent(data.order[Math.max(i - 1, 0)]);
      document.getElementById("sp-next").href = "#" + encodeURIComponent(data.order[Math.min(i + 1, data.order.length - 1)]);
      document.getElementById("sp-title").textContent = "Sample " + id;
      var common = document.getElementById("sp-common");
      common.textContent = "";
      addField(common, "input", data.samples[id].input);
      addField(common, "reference", (data.samples[id].refs || []).join("\n"));
      if (data.samples[id].shared_prompt) addField(common, "prompt", data.samples[id].shared_prompt);
      var host = document.getElementById("sp-models");
      host.textContent = "";
      data.models.forEach(function (m) {
        var rec = (data.records[m] || {})[id];
        if (!rec) return;
        var card = el("section", "card sample-model");
        card.setAttribute("data-model", m);
        card.appendChild(el("h2", null, m));
        var dl = el("dl", "sample-fields");
        Object.keys(rec).forEach(function (k) { addField(dl, k, rec[k]); });
        card.appendChild(dl);
        host.appendChild(card);
      });
    }
    pick.addEventListener("change", function () { location.hash = "#" + encodeURIComponent(pick.value); });
    window.addEventListener("hashchange", render);
    render();
  }

  function initSampleBrowser(data) {
    var model = document.getElementById("sb-model");
    var show = document.getElementById("sb-show");
    var search = document.getElementById("sb-search");
    if (!model || !search) return;
    fillSelect(model, data.models, 0);
    var pager = new Pager(document.querySelector("#sb-table tbody"), document.getElementById("sb-more"),
                          document.getElementById("sb-count"));
    function update() {
      var preds = data.predictions[model.value] || {};
      var q = search.value.trim().toLowerCase();
      var rows = [];
      data.order.forEach(function (id) {
        var sample = data.samples[id], pred = preds[id];
        if (!pred) return;
        if (show.value === "wrong" && !(pred.s !== null && pred.s <= 0)) return;
        if (show.value === "error" && !pred.e) return;
        if (q && haystack(id, sample, pred).indexOf(q) < 0) return;
        rows.push(function () {
          var tr = el("tr");
          tr.setAttribute("data-id", id);
          tr.appendChild(idCell(data, id, model.value));
          tr.appendChild(inputCell(sample));
          tr.appendChild(refsCell(sample.refs));
          tr.appendChild(predCell(pred, false));
          var score = el("td", "num");
          score.setAttribute("data-label", "score");
          score.appendChild(el("span", "score-tag " + scoreClass(pred.s), fmtScore(pred.s)));
          tr.appendChild(score);
          return tr;
        });
      });
      var capped = data.total > data.order.length ? " (first " + data.order.length + " of " + data.total + " kept)" : "";
      pager.set(rows, function (shown, n) { return "Showing " + shown + " of " + n + " matching samples" + capped; });
    }
    model.addEventListener("change", update);
    show.addEventListener("change", update);
    search.addEventListener("input", update);
    update();
  }

  function disagree(a, b) {
    if (!a || !b) return false;
    var pa = a.e ? "\u0000error" : (a.p || "").trim(), pb = b.e ? "\u0000error" : (b.p || "").trim();
    return pa !== pb || a.s !== b.s;
  }

  /* Which shared samples to list: where the answers differ (the default), or by who got it
     right — "right" is a score of at least half the full mark (1 for 0/1 scores, 50 on a 0-100
     scale), so two models that both scored 0 are "both wrong", not a disagreement. */
  var OUTCOME = {
    differ: function (a, b) { return disagree(a, b); },
    "both-right": function (a, b) { return isRight(a) && isRight(b); },
    "both-wrong": function (a, b) { return !isRight(a) && !isRight(b); },
    "only-a": function (a, b) { return isRight(a) && !isRight(b); },
    "only-b": function (a, b) { return !isRight(a) && isRight(b); },
    all: function () { return true; }
  };
  var OUTCOME_TEXT = { differ: "answers differ", "both-right": "both right", "both-wrong": "both wrong",
                       "only-a": "only A right", "only-b": "only B right", all: "shown" };

  function initSideBySide(data) {
    var selA = document.getElementById("sbs-a"), selB = document.getElementById("sbs-b");
    var which = document.getElementById("sbs-show");
    if (!selA || !selB) return;
    fillSelect(selA, data.models, 0);
    fillSelect(selB, data.models, data.models.length > 1 ? 1 : 0);
    var pager = new Pager(document.querySelector("#sbs-table tbody"), document.getElementById("sbs-more"),
                          document.getElementById("sbs-count"));
    function update() {
      document.getElementById("sbs-head-a").textContent = "A: " + selA.value;
      document.getElementById("sbs-head-b").textContent = "B: " + selB.value;
      var pa = data.predictions[selA.value] || {}, pb = data.predictions[selB.value] || {};
      var mode = which ? which.value : "differ";
      var shared = 0, rows = [], tally = { "both-right": 0, "both-wrong": 0, "only-a": 0, "only-b": 0 };
      data.order.forEach(function (id) {
        if (!pa[id] || !pb[id]) return;
        shared++;
        ["both-right", "both-wrong", "only-a", "only-b"].forEach(function (k) { if (OUTCOME[k](pa[id], pb[id])) tally[k]++; });
        if (!OUTCOME[mode](pa[id], pb[id])) return;
        var sample = data.samples[id];
        rows.push(function () {
          var tr = el("tr");
          tr.setAttribute("data-id", id);
          tr.appendChild(idCell(data, id, null));
          tr.appendChild(inputCell(sample));
          tr.appendChild(refsCell(sample.refs));
          tr.appendChild(predCell(pa[id], true, "A"));
          tr.appendChild(predCell(pb[id], true, "B"));
          return tr;
        });
      });
      var tallyNode = document.getElementById("sbs-tally");
      if (tallyNode) {
        tallyNode.textContent = selA.value === selB.value ? "" : "both right " + tally["both-right"] +
          " · both wrong " + tally["both-wrong"] + " · only A right " + tally["only-a"] +
          " · only B right " + tally["only-b"];
      }
      pager.set(rows, function (shown, n) {
        return selA.value === selB.value ? "Pick two different models."
          : n + " of " + shared + " shared samples: " + OUTCOME_TEXT[mode] + (shown < n ? " (showing " + shown + ")" : "");
      });
    }
    selA.addEventListener("change", update);
    selB.addEventListener("change", update);
    if (which) which.addEventListener("change", update);
    update();
  }

  document.querySelectorAll("table.sortable").forEach(initSortable);
  document.querySelectorAll("#kind-filter").forEach(initKindFilter);
  document.querySelectorAll("#mode-filter").forEach(initModeFilter);
  document.querySelectorAll("select.chart-x").forEach(initChartSwitch);
  document.querySelectorAll("input.budget-max").forEach(initBudget);
  document.querySelectorAll("input.front-refs").forEach(initFrontToggle);
  document.querySelectorAll("ul.chart-legend").forEach(initLegendFocus);
  var sampleData = readJSON("sample-data");
  if (sampleData) initSamplePage(sampleData);
  var data = readJSON("task-data");
  if (data) {
    if (typeof data.decimals === "number") SCALE = { decimals: data.decimals, full: data.full };
    initSampleBrowser(data);
    initSideBySide(data);
  }
})();
