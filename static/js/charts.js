// Draws every figure embedded with json_script into its chart element.
// Figure JSON is built server-side; this file only hands it to plotly.js.
// In dark mode (the system setting) the chart takes the page's colours, and each
// agent's colour is lightened the same way on the chart and on its swatch, so the
// twelve colours stay distinct and readable on a dark background.
(function () {
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;

  function lighten(hex) {
    var n = parseInt(hex.slice(1), 16), out = "#";
    [16, 8, 0].forEach(function (shift) {
      var c = (n >> shift) & 255;
      c = Math.round(c + (255 - c) * 0.4);
      out += ("0" + c.toString(16)).slice(-2);
    });
    return out;
  }

  function recolour(value) {
    if (typeof value === "string") {
      if (/^#[0-9a-fA-F]{6}$/.test(value)) return lighten(value);
      var rgba = /^rgba\((\d+),(\d+),(\d+),([\d.]+)\)$/.exec(value);
      if (rgba) {
        var hex = "#" + [1, 2, 3].map(function (i) { return ("0" + (+rgba[i]).toString(16)).slice(-2); }).join("");
        var light = lighten(hex);
        return "rgba(" + [1, 3, 5].map(function (i) { return parseInt(light.slice(i, i + 2), 16); }).join(",") + "," + rgba[4] + ")";
      }
      return value;
    }
    if (Array.isArray(value)) return value.map(recolour);
    if (value && typeof value === "object") {
      var copy = {};
      Object.keys(value).forEach(function (key) { copy[key] = recolour(value[key]); });
      return copy;
    }
    return value;
  }

  function themed(layout) {
    if (!dark) return layout;
    var style = getComputedStyle(document.documentElement);
    var fg = style.getPropertyValue("--fg").trim(), muted = style.getPropertyValue("--muted").trim();
    var grid = style.getPropertyValue("--chart-grid").trim();
    layout = recolour(layout);
    layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.plot_bgcolor = "rgba(0,0,0,0)";
    layout.font = Object.assign({}, layout.font || {}, {color: fg});
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        layout[key] = Object.assign({gridcolor: grid, zerolinecolor: grid, linecolor: grid}, layout[key]);
      }
    });
    (layout.annotations || []).forEach(function (note) {
      if (note.font && note.font.color === lighten("#5b6478")) note.font.color = muted;
    });
    return layout;
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (dark) {
      document.querySelectorAll(".swatch[style]").forEach(function (el) {
        var colour = el.style.getPropertyValue("background-color");
        var rgb = /rgb\((\d+), (\d+), (\d+)\)/.exec(colour);
        if (rgb) {
          el.style.background = lighten("#" + [1, 2, 3].map(function (i) { return ("0" + (+rgb[i]).toString(16)).slice(-2); }).join(""));
        }
      });
    }
    document.querySelectorAll("script[type='application/json'][id$='-figure']").forEach(function (node) {
      var target = document.getElementById(node.id.replace(/-figure$/, "-chart"));
      if (!target || !window.Plotly) return;
      var figure = JSON.parse(node.textContent);
      var data = dark ? recolour(figure.data) : figure.data;
      window.Plotly.newPlot(target, data, themed(figure.layout), {displayModeBar: false, responsive: true});
    });
  });
})();
