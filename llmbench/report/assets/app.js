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
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
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
  function initKindFilter(select) {
    var table = document.getElementById(select.getAttribute("data-table"));
    if (!table) return;
    select.addEventListener("change", function () {
      var kind = select.value;
      table.querySelectorAll("[data-kind]").forEach(function (node) {
        node.classList.toggle("hidden", kind !== "all" && node.getAttribute("data-kind") !== kind);
      });
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
  function fmtScore(s) {
    if (s === null || s === undefined) return "—";
    if (Number.isInteger(s)) return String(s);
    return Math.abs(s) <= 1 ? s.toFixed(3) : s.toFixed(1); // 0-1 stats vs sentence-level 0-100 scores
  }

  function textCell(cls, text) {
    var td = el("td", cls);
    td.appendChild(el("div", "txt", text));
    return td;
  }

  function refsCell(refs) {
    var td = el("td", "refs");
    (refs || []).forEach(function (r) { td.appendChild(el("div", "txt ref", r)); });
    return td;
  }

  function predCell(pred, withScore) {
    var td = el("td", "pred");
    if (!pred) { td.appendChild(el("span", "na", "not run")); return td; }
    if (pred.e) td.appendChild(el("div", "txt err", "failed: " + pred.e));
    else td.appendChild(el("div", "txt", pred.p === null ? "" : pred.p));
    if (withScore) td.appendChild(el("div", "score-tag " + scoreClass(pred.s), fmtScore(pred.s)));
    return td;
  }

  function scoreClass(s) {
    if (s === null || s === undefined) return "s-na";
    return s <= 0 ? "s-bad" : s === 1 || s >= 100 ? "s-good" : "s-mid";
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
          tr.appendChild(textCell("sid", id));
          tr.appendChild(textCell("input", sample.input));
          tr.appendChild(refsCell(sample.refs));
          tr.appendChild(predCell(pred, false));
          var score = el("td", "num");
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

  function initSideBySide(data) {
    var selA = document.getElementById("sbs-a"), selB = document.getElementById("sbs-b");
    if (!selA || !selB) return;
    fillSelect(selA, data.models, 0);
    fillSelect(selB, data.models, data.models.length > 1 ? 1 : 0);
    var pager = new Pager(document.querySelector("#sbs-table tbody"), document.getElementById("sbs-more"),
                          document.getElementById("sbs-count"));
    function update() {
      document.getElementById("sbs-head-a").textContent = "A: " + selA.value;
      document.getElementById("sbs-head-b").textContent = "B: " + selB.value;
      var pa = data.predictions[selA.value] || {}, pb = data.predictions[selB.value] || {};
      var shared = 0, rows = [];
      data.order.forEach(function (id) {
        if (!pa[id] || !pb[id]) return;
        shared++;
        if (!disagree(pa[id], pb[id])) return;
        var sample = data.samples[id];
        rows.push(function () {
          var tr = el("tr");
          tr.setAttribute("data-id", id);
          tr.appendChild(textCell("sid", id));
          tr.appendChild(textCell("input", sample.input));
          tr.appendChild(refsCell(sample.refs));
          tr.appendChild(predCell(pa[id], true));
          tr.appendChild(predCell(pb[id], true));
          return tr;
        });
      });
      pager.set(rows, function (shown, n) {
        return selA.value === selB.value ? "Pick two different models."
          : n + " of " + shared + " shared samples differ" + (shown < n ? " (showing " + shown + ")" : "");
      });
    }
    selA.addEventListener("change", update);
    selB.addEventListener("change", update);
    update();
  }

  document.querySelectorAll("table.sortable").forEach(initSortable);
  document.querySelectorAll("#kind-filter").forEach(initKindFilter);
  document.querySelectorAll("select.chart-x").forEach(initChartSwitch);
  document.querySelectorAll("input.budget-max").forEach(initBudget);
  var data = readJSON("task-data");
  if (data) {
    initSampleBrowser(data);
    initSideBySide(data);
  }
})();
