// The trace page: read a long run with the keyboard. Steps are a tree (ol.steps
// of li.step); this folds subtrees and long texts, searches within the run,
// jumps between errors and the diagnosed step, and has a compact mode.
// Keys: J / K next / previous step, N / Shift+N next / previous error or
// diagnosed step, / search, C compact, E fold or unfold all, Escape leaves search.
(function () {
  "use strict";
  var root = document.querySelector(".steps-root");
  if (!root) return;
  var search = document.getElementById("run-search");
  var count = document.getElementById("run-search-count");
  var current = null;
  var matches = [];

  function visibleSteps() {
    return Array.prototype.filter.call(root.querySelectorAll("li.step"), function (step) {
      return !step.parentElement.closest("li.step.folded");
    });
  }

  function unfoldAncestors(step) {
    var up = step.parentElement.closest("li.step");
    while (up) {
      setFolded(up, false);
      up = up.parentElement.closest("li.step");
    }
  }

  function setFolded(step, folded) {
    var toggle = step.querySelector(":scope > .step-head > .tree-toggle");
    if (!toggle) return;
    step.classList.toggle("folded", folded);
    toggle.setAttribute("aria-expanded", folded ? "false" : "true");
    toggle.textContent = folded ? "▸" : "▾";
  }

  function go(step) {
    if (!step) return;
    unfoldAncestors(step);
    if (current) current.classList.remove("step-current");
    current = step;
    step.classList.add("step-current");
    step.focus({ preventScroll: true });
    step.scrollIntoView({ block: "center" });
  }

  function move(delta, filter) {
    var steps = visibleSteps();
    if (filter) {
      // Errors and diagnosed steps, wherever they are (unfold to reach them).
      steps = Array.prototype.filter.call(root.querySelectorAll("li.step"), filter);
    }
    if (!steps.length) return;
    var all = Array.prototype.slice.call(root.querySelectorAll("li.step"));
    var at = current ? all.indexOf(current) : -1;
    var next = null;
    if (delta > 0) {
      next = steps.find(function (s) { return all.indexOf(s) > at; }) || (filter ? steps[0] : null);
    } else {
      var before = steps.filter(function (s) { return all.indexOf(s) < at; });
      next = before.length ? before[before.length - 1] : (filter ? steps[steps.length - 1] : null);
    }
    go(next || (delta > 0 ? steps[0] : steps[steps.length - 1]));
  }

  function flagged(step) {
    return step.classList.contains("step-error") || step.classList.contains("step-diagnosed");
  }

  function foldAll(folded) {
    root.querySelectorAll("li.step").forEach(function (step) { setFolded(step, folded); });
    root.querySelectorAll(".fold").forEach(function (fold) { setOpen(fold, !folded); });
  }

  function setOpen(fold, open) {
    fold.classList.toggle("open", open);
    var button = fold.querySelector(".fold-toggle");
    if (!button) return;
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = open ? "Show less" : button.dataset.label;
  }

  function runSearch() {
    var query = search.value.trim().toLowerCase();
    matches = [];
    root.querySelectorAll("li.step").forEach(function (step) {
      step.classList.remove("step-match");
      if (!query) return;
      var own = "";
      step.querySelectorAll(":scope > .step-head, :scope > .step-body").forEach(function (part) {
        own += " " + part.textContent;
      });
      if (own.toLowerCase().indexOf(query) >= 0) {
        step.classList.add("step-match");
        matches.push(step);
      }
    });
    count.textContent = query ? (matches.length === 1 ? "1 step matches" : matches.length + " steps match") +
      (matches.length ? " · Enter: next" : "") : "";
  }

  function compact(on) {
    root.classList.toggle("steps-compact", on);
    var button = document.querySelector("[data-run=compact]");
    if (button) button.setAttribute("aria-pressed", on ? "true" : "false");
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest(".fold-toggle")) {
      var fold = target.closest(".fold");
      setOpen(fold, !fold.classList.contains("open"));
      return;
    }
    if (target.closest(".tree-toggle")) {
      var step = target.closest("li.step");
      setFolded(step, !step.classList.contains("folded"));
      return;
    }
    var action = target.closest("[data-run]");
    if (!action) return;
    var name = action.getAttribute("data-run");
    if (name === "next-error") move(1, flagged);
    else if (name === "prev-error") move(-1, flagged);
    else if (name === "fold-all") foldAll(true);
    else if (name === "unfold-all") foldAll(false);
    else if (name === "compact") compact(!root.classList.contains("steps-compact"));
  });

  var timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(runSearch, 120);
  });
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      runSearch();
      if (matches.length) move(event.shiftKey ? -1 : 1, function (s) { return s.classList.contains("step-match"); });
    } else if (event.key === "Escape") {
      search.value = "";
      runSearch();
      search.blur();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) return;
    var key = event.key;
    if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "n") move(1, flagged);
    else if (key === "N") move(-1, flagged);
    else if (key === "/") { event.preventDefault(); search.focus(); }
    else if (key === "c") compact(!root.classList.contains("steps-compact"));
    else if (key === "e") foldAll(!root.querySelector("li.step.folded"));
    else return;
  });

  // The diagnosis is served by the failures app as a partial; it names the
  // diagnosed steps (data-diagnosed), which are highlighted and scrolled to.
  var scrolled = false;
  document.addEventListener("htmx:afterSettle", function () {
    var section = document.getElementById("trace-incidents");
    if (!section || !section.dataset.diagnosed) return;
    var first = null;
    section.dataset.diagnosed.split(" ").forEach(function (index) {
      var step = document.getElementById("step-" + index);
      if (!step || step.classList.contains("step-diagnosed")) return;
      step.classList.add("step-diagnosed");
      var head = step.querySelector(":scope > .step-head");
      var badge = document.createElement("span");
      badge.className = "badge badge-warn";
      badge.textContent = "diagnosed here";
      head.insertBefore(badge, head.children[2] || null);
      first = first || step;
    });
    var next = document.querySelector("[data-run=next-error]");
    if (first && next) {
      next.disabled = false;
      document.querySelector("[data-run=prev-error]").disabled = false;
    }
    if (first && !scrolled && !location.hash && window.scrollY === 0) go(first);
    scrolled = scrolled || Boolean(first);
  });
})();
