// Times in the viewer's timezone. Pages render UTC (readable without JavaScript); this shows each
// <time data-local> in the browser's timezone, fills schedule forms' hidden `tz` field so typed
// times are read in that timezone, and moves their UTC values into it.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  var pad = function (n) { return String(n).padStart(2, "0"); };
  var localInput = function (date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  };
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZoneName: "short"
  });
  function apply(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) { return; }
      el.title = el.title || el.textContent;
      el.textContent = format.format(date);
      el.removeAttribute("data-local");
    });
    root.querySelectorAll("input[data-browser-tz]").forEach(function (el) { el.value = zone; });
    root.querySelectorAll("[data-tz-name]").forEach(function (el) { el.textContent = zone; });
    root.querySelectorAll("input[data-utc]").forEach(function (el) {
      var date = new Date(el.getAttribute("data-utc"));
      if (!isNaN(date)) { el.value = localInput(date); }
      el.removeAttribute("data-utc");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { apply(document); });
  document.addEventListener("htmx:afterSwap", function (event) { apply(event.target); });
})();
