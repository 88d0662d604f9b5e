// What the pages do in the browser; each works without it (progressive enhancement).
// - Times in the viewer's own zone: every <time data-local> the server wrote in UTC
//   ("2026-12-04 21:48 UTC", the title holding the exact UTC moment) is rewritten as
//   "2026-12-04 22:48 CET"; the title keeps UTC, so hovering shows it. Idempotent (an
//   htmx swap finds the rewritten ones marked).
// - Whole rows as links: a click anywhere on a <tr data-href> opens it (its first cell
//   keeps a real link for the keyboard and for readers without scripts).
// - Copy buttons: <button data-copy="id"> copies the text of the element with that id.
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function zoneName(date) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i++) {
        if (parts[i].type === "timeZoneName") { return parts[i].value; }
      }
    } catch (e) { /* an old browser: no zone name */ }
    var offset = -date.getTimezoneOffset();
    return "UTC" + (offset >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(offset) / 60)) + ":" + pad(Math.abs(offset) % 60);
  }
  function localise(root) {
    var times = (root || document).querySelectorAll("time[data-local]:not([data-localised])");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) { continue; }
      var text = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
        " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
      if (el.getAttribute("data-local") === "seconds") { text += ":" + pad(date.getSeconds()); }
      el.textContent = text + " " + zoneName(date);
      if (!el.title) { el.title = el.getAttribute("datetime"); }
      el.setAttribute("data-localised", "");
    }
  }
  function rowClick(event) {
    var row = event.target.closest("tr[data-href]");
    if (!row || event.defaultPrevented || event.button !== 0) { return; }
    if (event.target.closest("a, button, input, select, textarea, summary, label, details")) { return; }
    if (window.getSelection && String(window.getSelection())) { return; }  // selecting text
    if (event.ctrlKey || event.metaKey) { window.open(row.getAttribute("data-href")); return; }
    window.location.href = row.getAttribute("data-href");
  }
  function copyClick(event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  }
  function start() {
    localise(document);
    var copies = document.querySelectorAll("button[data-copy][hidden]");
    for (var i = 0; i < copies.length; i++) {
      if (navigator.clipboard) { copies[i].hidden = false; }  // no clipboard: no button
    }
  }
  if (window.__registryPages) { return; }  // included twice: once is enough
  window.__registryPages = true;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  document.addEventListener("htmx:afterSettle", function (event) { localise(event.target); });
  document.addEventListener("click", rowClick);
  document.addEventListener("click", copyClick);
})();
