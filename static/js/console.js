/* AgentDesk console: keyboard shortcuts and small behaviours. No build step, no CDN.
 *
 * Every action stays a plain button, link or form (it works without this file); keys only
 * find the element that carries data-key="…" (or the selected inbox row) and click it.
 */
(function () {
  "use strict";

  // Reconnect a dropped websocket soon (capped backoff with jitter); the pages re-fetch
  // their state on htmx:wsOpen, so a reconnect catches up on everything missed.
  if (window.htmx) {
    htmx.config.wsReconnectDelay = function (retry) {
      var ceiling = Math.min(8000, 500 * Math.pow(2, retry));
      return ceiling * (0.5 + Math.random() / 2);
    };
  }

  var TYPING = "input, textarea, select, [contenteditable=''], [contenteditable='true']";
  var pendingKey = null; // an action waiting for its field (reply, take over, edit, budget)
  var SELECTED = "inbox-selected";

  function visible(el) {
    return el && !el.disabled && el.getClientRects().length > 0;
  }

  function openDetails(el) {
    for (var d = el.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
  }

  function byKey(key) {
    var all = document.querySelectorAll('[data-key="' + key + '"]');
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (visible(el) || (el.closest("details") && !el.closest("details").open)) return el;
    }
    return null;
  }

  function activate(el) {
    var ask = el.getAttribute("data-key-confirm");
    if (ask && !window.confirm(ask)) return;
    var focusSel = el.getAttribute("data-key-focus");
    if (focusSel) {
      var field = document.querySelector(focusSel);
      var onlyIfEmpty = el.hasAttribute("data-key-focus-empty");
      if (field && !(onlyIfEmpty && field.value.trim())) {
        openDetails(field);
        field.focus();
        if (field.select && field.tagName === "INPUT") field.select();
        pendingKey = el.getAttribute("data-key");
        hint(field, "Ctrl+Enter: " + el.textContent.trim().toLowerCase() + " · Esc: leave");
        return;
      }
    }
    pendingKey = null;
    el.click();
  }

  function hint(field, text) {
    var note = document.getElementById("key-pending");
    if (!note) {
      note = document.createElement("p");
      note.id = "key-pending";
      note.className = "key-pending";
      note.setAttribute("role", "status");
    }
    note.textContent = text;
    field.insertAdjacentElement("afterend", note);
  }

  function clearHint() {
    var note = document.getElementById("key-pending");
    if (note) note.remove();
  }

  // ---- inbox rows: j/k to move, Enter/o to open, c to claim -------------------------------
  function rows() {
    var list = document.querySelector('[data-keynav="rows"]');
    return list ? Array.prototype.slice.call(list.querySelectorAll(".esc-row")) : [];
  }

  function select(row, focus) {
    rows().forEach(function (r) { r.classList.toggle("is-selected", r === row); });
    if (!row) return;
    sessionStorage.setItem(SELECTED, row.getAttribute("data-esc-id"));
    var link = row.querySelector("[data-row-link]");
    if (focus && link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.findIndex(function (r) { return r.classList.contains("is-selected"); });
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, at + step));
    select(all[next], true);
  }

  function selectedRow() {
    return rows().find(function (r) { return r.classList.contains("is-selected"); }) || null;
  }

  function restoreSelection() {
    var id = sessionStorage.getItem(SELECTED);
    if (!id) return;
    var row = document.getElementById("esc-" + id);
    if (!row) return;
    var lost = !document.activeElement || document.activeElement === document.body;
    select(row, lost);
  }

  function inboxKey(key, target) {
    if (key === "j" || key === "n") { move(1); return true; }
    if (key === "k" || key === "p") { move(-1); return true; }
    var row = selectedRow();
    // Enter on a focused link opens it natively; elsewhere (say, focus lost to a live
    // refresh of the list) it opens the selected row, as "o" does.
    var onControl = target.closest && target.closest("a, button");
    if (row && (key === "o" || (key === "Enter" && !onControl))) {
      row.querySelector("[data-row-link]").click();
      return true;
    }
    if (key === "c" && row) {
      var claim = row.querySelector('[data-row-key="c"]');
      if (claim) claim.click();
      return true;
    }
    if (key === "/") {
      var search = document.getElementById("inbox-q");
      if (search) { search.focus(); search.select(); return true; }
    }
    return false;
  }

  // ---- the one key handler ---------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    var target = e.target;
    var help = document.getElementById("key-help");
    if (target.closest && target.closest(TYPING)) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        var key = pendingKey || target.getAttribute("data-ctrl-enter");
        var button = key && byKey(key);
        if (button && button.form === target.form) {
          e.preventDefault();
          pendingKey = null;
          clearHint();
          button.click();
        }
      } else if (e.key === "Escape") {
        pendingKey = null;
        clearHint();
        target.blur();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") {
      e.preventDefault();
      if (!help) return;
      if (help.open) help.close(); else help.showModal();
      return;
    }
    if (help && help.open) return;
    if (rows().length || document.querySelector('[data-keynav="rows"]')) {
      if (inboxKey(e.key, target)) { e.preventDefault(); return; }
    }
    if (e.key === "u" && !document.querySelector('[data-keynav="rows"]')) {
      var back = document.querySelector(".crumbs a[href^='/inbox/']");
      if (back) { e.preventDefault(); back.click(); return; }
    }
    var alias = { n: "j", p: "k" }[e.key] || e.key;
    var el = byKey(alias);
    if (el) {
      e.preventDefault();
      activate(el);
    }
  });

  // Remember the row that was opened, so coming back selects it again.
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("[data-row-link]");
    if (link) sessionStorage.setItem(SELECTED, link.closest(".esc-row").getAttribute("data-esc-id"));
  });

  // Forms whose selects apply at once (without htmx on that form).
  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (form && form.hasAttribute("data-autosubmit") && e.target.tagName === "SELECT") {
      form.requestSubmit();
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    restoreSelection();
    if (pendingKey && !byKey(pendingKey)) { pendingKey = null; clearHint(); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector('[data-keynav="rows"]')) restoreSelection();
  });
})();
