// Draw every figure spec the server put in the page; make heatmap cells and drift points links.
(function () {
  "use strict";
  var NARROW = 600;
  function readJSON(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function query(base, extra) {
    var params = new URLSearchParams();
    Object.keys(base || {}).forEach(function (k) { if (!(k in extra)) params.set(k, base[k]); });
    Object.keys(extra).forEach(function (k) { params.set(k, extra[k]); });
    var s = params.toString();
    return s ? "?" + s : "";
  }
  function decoded(text) {
    // spec titles are HTML-escaped for plotly's SVG labels; as page text they are decoded
    // through an RCDATA element (nothing parses as markup) and set as plain text
    var t = document.createElement("textarea");
    t.innerHTML = text;
    return t.value;
  }
  // The title becomes an HTML heading above the chart: it wraps on a phone, where plotly's
  // single-line SVG title would be cut, and screen readers can navigate by it.
  function titleAbove(el, layout) {
    var text = layout.title && layout.title.text;
    if (!text) return;
    var h = document.createElement("h3");
    h.className = "chart-title";
    h.textContent = decoded(text);
    el.parentNode.insertBefore(h, el);
    el.setAttribute("aria-label", h.textContent);
    el.setAttribute("role", "figure");
    delete layout.title;
    layout.margin = Object.assign({}, layout.margin || {}, { t: 12 });
    if (layout.height) layout.height -= 20;
  }
  function fitNarrow(el, layout, data) {
    if (el.clientWidth >= NARROW) return;
    layout.margin = Object.assign({}, layout.margin || {}, { l: 46, r: 8 });
    if (layout.legend) {
      layout.legend = Object.assign({}, layout.legend, { font: { size: 10 } });
      var named = data.filter(function (t) { return t.showlegend !== false; }).length;
      if (named > 2) layout.height = (layout.height || 280) + 18 * Math.ceil((named - 2) / 2);
    }
    layout.xaxis = Object.assign({}, layout.xaxis || {}, { nticks: 4 });
    data.forEach(function (t) {
      if (t.type === "heatmap" && t.colorbar) {
        // a vertical colour bar would take a third of a phone's width
        t.colorbar = Object.assign({}, t.colorbar, {
          orientation: "h", thickness: 8, y: -0.12, yanchor: "top", len: 1, title: { text: "" },
        });
        layout.margin.b = 90;
        layout.height = (layout.height || 280) + 40;
      }
    });
  }
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var spec = readJSON(el.getAttribute("data-figure"));
    if (!spec || typeof Plotly === "undefined") return;
    var layout = spec.layout || {};
    titleAbove(el, layout);
    fitNarrow(el, layout, spec.data);
    var config = { responsive: true, displaylogo: false };
    if (layout.height) el.style.height = layout.height + "px";
    Plotly.newPlot(el, spec.data, layout, config).then(function () {
      el.setAttribute("data-rendered", "1");
    });
    var click = el.getAttribute("data-click") && readJSON(el.getAttribute("data-click"));
    if (!click) return;
    el.on("plotly_click", function (ev) {
      var pt = ev.points && ev.points[0];
      if (!pt) return;
      // a point may carry its own window (a bucket of a long range starts before it)
      var own = pt.customdata && typeof pt.customdata[0] === "string" ? pt.customdata[0] : null;
      var x = own || String(pt.x);
      var when = new Date(x.replace(" ", "T") + (/[zZ+]/.test(x.slice(10)) ? "" : "Z")).toISOString();
      if (click.features) {
        var name = click.features[pt.pointIndex[0]];
        window.location = click.base + encodeURIComponent(name) + query(click.query, { window: when });
      } else {
        window.location = click.base + query(click.query, { window: when });
      }
    });
  });
})();
