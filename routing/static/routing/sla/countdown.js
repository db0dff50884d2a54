// Live SLA countdowns: every element with data-sla-due (an ISO time) shows the time left, or how
// late it is, refreshed each second. No dependencies; the server re-renders the lists by polling.
(function () {
  if (window.slaCountdown) return;
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function format(seconds) {
    var s = Math.abs(Math.round(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-sla-due]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-sla-due")) - now) / 1000;
      var warnAt = Date.parse(el.getAttribute("data-sla-warn") || "") || null;
      el.textContent = left >= 0 ? format(left) : "late " + format(left);
      el.classList.toggle("sla-late", left < 0);
      el.classList.toggle("sla-warn", left >= 0 && warnAt !== null && now >= warnAt);
    });
  }
  window.slaCountdown = tick;
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
})();
