/* Small conveniences over pages that work without JavaScript. */
(function () {
  "use strict";

  // "/" focuses the search: the list's own filter where there is one, else the header's.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], .CodeMirror")) return;
    var search = document.getElementById("filter-q") || document.getElementById("site-search");
    if (!search) return;
    event.preventDefault();
    search.focus();
    search.select();
  });

  // The header's menu is open in the markup (so it shows without JavaScript); on a narrow
  // screen it starts folded, and on a wide one it is always open (its summary is hidden).
  function fitMenu() {
    var menu = document.querySelector("details.site-menu");
    if (!menu) return;
    var narrow = window.matchMedia("(max-width: 47.99rem)");
    var apply = function () { menu.open = !narrow.matches; };
    apply();
    narrow.addEventListener("change", apply);
  }
  // On a phone a table shows one card per row (app.css): each cell is labelled with its
  // column's name, taken from the table's header.
  function labelCells(root) {
    (root || document).querySelectorAll("table:not(.diff)").forEach(function (table) {
      var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
      if (!head) return;
      var names = Array.prototype.map.call(head.cells, function (cell) { return cell.textContent.trim(); });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (cell.tagName === "TD" && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", names[column] || "");
            column += cell.colSpan || 1;
          });
        });
      });
    });
  }
  function start() { fitMenu(); labelCells(document); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  document.addEventListener("htmx:afterSettle", function (event) { labelCells(event.target); });
})();
