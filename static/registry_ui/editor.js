/* The new-version editor, over a page that works without JavaScript: CodeMirror (vendored,
   static/registry_ui/vendor/) with line numbers and the template's variables highlighted,
   the check's errors marked at their line and column, the suggested version following the
   change, rows added to the metadata tables, and the JSON view's checkbox. */
(function () {
  "use strict";

  var form = document.getElementById("version-form");
  if (!form) return;
  var textarea = document.getElementById("version-template");
  var version = document.getElementById("version-version");
  var editor = null;
  var marks = [];

  // A str.format template: "{name}", "{name:fmt}", "{name!r}" are fields, "{{" and "}}" are
  // literal braces; a lone "{" or "}" is an error the check reports.
  function formatMode() {
    return {
      token: function (stream) {
        if (stream.match("{{") || stream.match("}}")) return "literal-brace";
        if (stream.peek() === "{") {
          if (stream.match(/^\{[^{}]*\}/)) return "variable";
          stream.next();
          return "error";
        }
        if (stream.peek() === "}") { stream.next(); return "error"; }
        stream.eatWhile(/[^{}]/);
        return null;
      },
    };
  }

  function notifyChange() {
    // htmx listens for "input" on the form: the editor's changes reach it as typing would.
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  if (window.CodeMirror && textarea) {
    window.CodeMirror.defineMode("str-format", formatMode);
    editor = window.CodeMirror.fromTextArea(textarea, {
      mode: "str-format",
      lineNumbers: true,
      lineWrapping: true,
      viewportMargin: Infinity,
      // A chat template's text is made from its messages: shown, not edited here.
      readOnly: textarea.readOnly,
      screenReaderLabel: "Template text (code editor)",
    });
    editor.getWrapperElement().classList.add("template-editor");
    var input = editor.getInputField();
    input.setAttribute("aria-describedby", "version-template-help");
    input.id = "version-template-input";
    // The label stays the form textarea's (CodeMirror hides it but keeps it in step); a
    // click on it goes to the editor, whose input is labelled "Template text" itself.
    var label = document.querySelector('label[for="version-template"]');
    if (label) label.addEventListener("click", function (event) {
      event.preventDefault();
      editor.focus();
    });
    editor.on("change", function () {
      editor.save();
      notifyChange();
    });
  }

  // The check's errors at line:column, marked in the editor.
  function markErrors() {
    if (!editor) return;
    marks.forEach(function (mark) { mark.clear(); });
    marks = [];
    editor.eachLine(function (line) { editor.removeLineClass(line, "background", "has-error"); });
    document.querySelectorAll("#version-check [data-line]").forEach(function (item) {
      var line = parseInt(item.getAttribute("data-line"), 10) - 1;
      var column = parseInt(item.getAttribute("data-column"), 10) - 1;
      if (isNaN(line) || line < 0 || line >= editor.lineCount()) return;
      editor.addLineClass(line, "background", "has-error");
      var from = { line: line, ch: Math.max(column, 0) };
      var to = { line: line, ch: Math.max(column, 0) + 1 };
      marks.push(editor.markText(from, to, { className: "error-at", attributes: { title: item.textContent } }));
      item.classList.add("linked");
      item.addEventListener("click", function () {
        editor.focus();
        editor.setCursor(from);
      });
    });
  }

  // The suggested version follows the change while the version is the one suggested before
  // (or empty); once the author types their own, only the button offers it.
  var lastSuggested = null;
  var typedOwn = false;
  if (version) version.addEventListener("input", function (event) {
    if (event.isTrusted) typedOwn = version.value.trim() !== "" && version.value.trim() !== lastSuggested;
  });
  function followSuggestion() {
    var suggestion = document.querySelector("#version-check [data-suggested]");
    if (!suggestion || !version) return;
    var suggested = suggestion.getAttribute("data-suggested");
    var current = version.value.trim();
    var follows = !typedOwn && (current === "" || current === lastSuggested || lastSuggested === null && isStart(current));
    lastSuggested = suggested;
    if (follows && current !== suggested) {
      version.value = suggested;
      notifyChange();
    }
  }
  function isStart(current) {
    return version.defaultValue.trim() === current;
  }

  document.addEventListener("click", function (event) {
    var take = event.target.closest && event.target.closest(".take-suggestion");
    if (take && version) {
      event.preventDefault();
      version.value = take.value;
      typedOwn = false;
      lastSuggested = take.value;
      version.focus();
      notifyChange();
      return;
    }
    var add = event.target.closest && event.target.closest(".add-row");
    if (add) {
      var body = document.querySelector("#" + add.getAttribute("data-rows") + " tbody");
      var last = body && body.rows[body.rows.length - 1];
      if (!last) return;
      var row = last.cloneNode(true);
      row.querySelectorAll("input").forEach(function (field) {
        field.value = "";
        field.setAttribute("aria-label", field.getAttribute("aria-label").replace(/\d+/, String(body.rows.length + 1)));
      });
      body.appendChild(row);
      row.querySelector("input").focus();
    }
  });

  function showAddButtons() {
    document.querySelectorAll(".add-row").forEach(function (button) { button.hidden = false; });
  }

  // Editing the JSON itself turns the fields off (they are ignored), and back.
  document.addEventListener("change", function (event) {
    if (event.target.id !== "metadata-as-json") return;
    var fields = document.getElementById("metadata-fields");
    if (fields) fields.disabled = event.target.checked;
  });

  document.addEventListener("htmx:afterSettle", function () {
    markErrors();
    followSuggestion();
    showAddButtons();
  });
  markErrors();
  followSuggestion();
  showAddButtons();
})();
