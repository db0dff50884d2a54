// Small enhancements of the server-rendered pages; everything works without them.
(function () {
  "use strict";

  function updateSelection(root) {
    var table = root.closest("#lead-table");
    if (!table) return;
    var checks = table.querySelectorAll(".row-check");
    var checked = table.querySelectorAll(".row-check:checked").length;
    var counter = table.querySelector("[data-selected-count]");
    if (counter) counter.textContent = checked;
    var all = table.querySelector("[data-check-all]");
    if (all) {
      all.checked = checked > 0 && checked === checks.length;
      all.indeterminate = checked > 0 && checked < checks.length;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-check-all]")) {
      target.closest("#lead-table").querySelectorAll(".row-check").forEach(function (box) {
        box.checked = target.checked;
      });
      updateSelection(target);
    } else if (target.matches(".row-check")) {
      updateSelection(target);
    }
  });

  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-dismiss]");
    if (close) close.parentElement.remove();
  });

  // Forms that ask first (no inline onclick: the Content-Security-Policy forbids inline script).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Bars whose width comes from the data (no style="" attribute: the CSP forbids inline styles).
  function applyWidths(root) {
    root.querySelectorAll("[data-width-percent]").forEach(function (bar) {
      var percent = Math.max(0, Math.min(100, parseFloat(bar.getAttribute("data-width-percent")) || 0));
      bar.style.width = percent + "%";
    });
  }
  applyWidths(document);
  document.addEventListener("htmx:load", function (event) {
    applyWidths(event.target);
  });

  // The activity form clears itself after a successful post (the server re-renders it empty).
})();
