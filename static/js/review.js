// The annotation queue's keyboard (templates/failures/review_run.html).
// j/k: next/previous step · w: the run as a whole · 1-9: a category (then the
// sentence box has the focus) · Enter in a box: save and go to the next run ·
// n/p: next/previous run · x/v/c: skip (not a failure / environment / can't
// tell) · Esc: leave a text box so the keys work again.
(function () {
  "use strict";
  const form = document.getElementById("label-form");
  const steps = Array.from(document.querySelectorAll("#review-steps .rstep"));
  const select = document.getElementById("label-step");
  const sentence = document.getElementById("label-sentence");

  function current() {
    return steps.findIndex((li) => li.classList.contains("rstep-current"));
  }

  function choose(index) {
    steps.forEach((li) => li.classList.remove("rstep-current"));
    if (index < 0 || index >= steps.length) {
      if (select) select.value = "-1";
      return;
    }
    const li = steps[index];
    li.classList.add("rstep-current");
    li.scrollIntoView({ block: "nearest" });
    if (select) select.value = li.dataset.step;
  }

  if (select) {
    select.addEventListener("change", () => {
      choose(steps.findIndex((li) => li.dataset.step === select.value));
    });
  }
  steps.forEach((li, i) => li.addEventListener("click", (event) => {
    if (event.target.closest("a, summary, details")) return;
    choose(i);
  }));

  function follow(id) {
    const link = document.getElementById(id);
    if (link) window.location.href = link.href;
  }

  function skip(reason) {
    const button = document.getElementById("skip-" + reason);
    if (button) button.click();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest("input[type=text], textarea, select");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return; // Enter in a text box submits the form: save and go on.
    }
    const key = event.key;
    if (key === "j" || key === "ArrowDown") {
      event.preventDefault();
      choose(Math.min(current() + 1, steps.length - 1));
    } else if (key === "k" || key === "ArrowUp") {
      event.preventDefault();
      choose(Math.max(current() - 1, 0));
    } else if (key === "w") {
      choose(-1);
    } else if (/^[1-9]$/.test(key) && form) {
      const radios = form.querySelectorAll("input[name=category]");
      const radio = radios[Number(key) - 1];
      if (radio) {
        event.preventDefault();
        radio.checked = true;
        if (sentence) sentence.focus();
      }
    } else if (key === "Enter" && form) {
      event.preventDefault();
      form.requestSubmit();
    } else if (key === "n") {
      follow("next-run");
    } else if (key === "p") {
      follow("prev-run");
    } else if (key === "x") {
      skip("not_failure");
    } else if (key === "v") {
      skip("environment");
    } else if (key === "c") {
      skip("cant_tell");
    }
  });
})();
