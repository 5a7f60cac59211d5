// Behaviour the pages used to write inline, moved here so the Content-Security-
// Policy can forbid inline script: confirm before a destructive form posts,
// submit a form when its select changes, copy a command to the clipboard.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
}, true);

document.addEventListener("change", function (event) {
  var field = event.target;
  if (field.hasAttribute && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
  }
});

document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.innerText);
  }
});

// A box that scrolls sideways (a wide table on a phone) must be reachable by
// keyboard: make it focusable, and name it after its heading for screen readers.
function focusableScrollers(root) {
  (root || document).querySelectorAll(".card, .table-scroll, pre").forEach(function (box) {
    if (box.scrollWidth <= box.clientWidth + 1 || box.hasAttribute("tabindex")) return;
    box.setAttribute("tabindex", "0");
    if (!box.getAttribute("role") && box.tagName !== "PRE") {
      var heading = box.querySelector("h2, h3");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", heading ? heading.textContent.trim() : "Scrollable content");
    }
  });
}
document.addEventListener("DOMContentLoaded", function () { focusableScrollers(); });
window.addEventListener("resize", function () { focusableScrollers(); });
document.addEventListener("htmx:afterSettle", function (event) { focusableScrollers(event.target.parentNode); });

// "Choose all" over a table of checkboxes (the candidates of a label).
document.addEventListener("change", (event) => {
  if (event.target.id !== "all-candidates") return;
  const form = event.target.closest("form");
  form.querySelectorAll("input[name=candidate]").forEach((box) => {
    box.checked = event.target.checked;
  });
});
