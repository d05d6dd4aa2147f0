// Draw every figure spec the server put in the page; make heatmap cells and drift points links.
(function () {
  "use strict";
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
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var spec = readJSON(el.getAttribute("data-figure"));
    if (!spec || typeof Plotly === "undefined") return;
    var config = { responsive: true, displaylogo: false };
    if (spec.layout && spec.layout.height) el.style.height = spec.layout.height + "px";
    Plotly.newPlot(el, spec.data, spec.layout, config).then(function () {
      el.setAttribute("data-rendered", "1");
    });
    var click = el.getAttribute("data-click") && readJSON(el.getAttribute("data-click"));
    if (!click) return;
    el.on("plotly_click", function (ev) {
      var pt = ev.points && ev.points[0];
      if (!pt) return;
      var when = new Date(pt.x.replace(" ", "T") + (/[zZ+]/.test(pt.x.slice(10)) ? "" : "Z")).toISOString();
      if (click.features) {
        var name = click.features[pt.pointIndex[0]];
        window.location = click.base + encodeURIComponent(name) + query(click.query, { window: when });
      } else {
        window.location = click.base + query(click.query, { window: when });
      }
    });
  });
})();
