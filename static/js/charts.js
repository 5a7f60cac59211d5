// Draws every figure embedded with json_script into its chart element.
// Figure JSON is built server-side; this file only hands it to plotly.js.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("script[type='application/json'][id$='-figure']").forEach(function (node) {
    var target = document.getElementById(node.id.replace(/-figure$/, "-chart"));
    if (!target || !window.Plotly) return;
    var figure = JSON.parse(node.textContent);
    window.Plotly.newPlot(target, figure.data, figure.layout, {displayModeBar: false, responsive: true});
  });
});
