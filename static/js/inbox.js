/* AgentDesk inbox: bulk selection, and a live region that says what arrived.
 *
 * Selection: a checkbox per row (it belongs to #bulk-form, so without this file a plain
 * form post still sends the ticked ids), shift-click for a range, "Select all on this
 * page", and the x key (console.js clicks the box of the focused row, as c clicks Claim).
 *
 * The list (#inbox-results) is replaced whole on every live update, so the selection lives
 * here, as a set of escalation ids re-applied after each swap, not in the boxes. A row
 * that leaves the list meanwhile (another operator decided it) stays selected: it was
 * chosen, and the bulk action reports what became of it ("someone else decided first")
 * instead of quietly acting on fewer. Another filter or page starts a new selection.
 *
 * Arrivals: after a live refresh, escalations not listed before since the page (or the
 * filter) was opened are announced in #inbox-announcer (role=status).
 */
(function () {
  "use strict";

  var picked = new Set(); // escalation ids (strings) selected for a bulk action
  var anchor = null; // the id last toggled: a shift-click selects the range from it
  var seen = null; // ids listed since the page or its filters were opened
  var newView = false; // a filter or page change is on its way: a fresh selection

  function bar() { return document.getElementById("bulk-form"); }

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("#inbox-list [data-row-select]"));
  }

  function listed() { return boxes().map(function (box) { return box.value; }); }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  // The set → the boxes, the count, "select all", the buttons and their confirmations.
  function sync() {
    var form = bar();
    if (!form) return;
    var all = boxes(), shown = 0;
    all.forEach(function (box) {
      box.checked = picked.has(box.value);
      if (box.checked) shown++;
      var row = box.closest(".esc-row");
      if (row) row.classList.toggle("is-picked", box.checked);
    });
    var n = picked.size, gone = n - shown;
    var count = document.getElementById("bulk-count");
    count.textContent = n === 0 ? "Tick escalations to act on several at once." :
      n + " selected" + (gone ? " (" + gone + " no longer listed: the results will say why)" : "");
    var master = document.getElementById("bulk-all");
    master.checked = all.length > 0 && shown === all.length;
    master.indeterminate = shown > 0 && shown < all.length;
    master.disabled = all.length === 0;
    form.classList.toggle("has-selection", n > 0);
    var assignee = document.getElementById("bulk-assignee");
    form.querySelectorAll("button[name=action]").forEach(function (button) {
      button.disabled = n === 0 || (button.value === "assign" && assignee && !assignee.value);
      if (button.value === "approve" || button.value === "reject") {
        var verb = button.value === "approve" ? "Approve " : "Reject ";
        button.setAttribute("data-confirm", verb + plural(n, "escalation") + "?");
      }
    });
  }

  function toggle(ids, on) {
    ids.forEach(function (id) { if (on) picked.add(id); else picked.delete(id); });
  }

  // A click on a box (or its label, or x): the click has already flipped it.
  document.addEventListener("click", function (e) {
    var box = e.target.closest && e.target.closest("[data-row-select]");
    if (box) {
      var ids = listed(), from = ids.indexOf(anchor), to = ids.indexOf(box.value);
      if (e.shiftKey && from >= 0 && to >= 0 && from !== to) {
        toggle(ids.slice(Math.min(from, to), Math.max(from, to) + 1), box.checked);
      } else {
        toggle([box.value], box.checked);
      }
      anchor = box.value;
      sync();
      return;
    }
    if (e.target.closest && e.target.closest("[data-bulk-dismiss]")) {
      var panel = document.getElementById("bulk-results");
      var empty = document.createElement("div");
      empty.id = "bulk-results";
      empty.hidden = true;
      panel.replaceWith(empty);
      document.getElementById("bulk-all").focus();
    }
  });

  document.addEventListener("change", function (e) {
    if (e.target.id === "bulk-assignee") { sync(); return; }
    if (e.target.id !== "bulk-all") return;
    toggle(listed(), e.target.checked);
    anchor = null;
    sync();
  });

  // Enter in the reason field must not press a bulk button (the browser's implicit submit).
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target.id === "bulk-message") e.preventDefault();
  });

  // The ids sent are the selection (rows that left the list included), in inbox order.
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.elt !== bar()) return;
    var inOrder = listed().filter(function (id) { return picked.has(id); });
    picked.forEach(function (id) { if (inOrder.indexOf(id) < 0) inOrder.push(id); });
    e.detail.formData.delete("ids");
    inOrder.forEach(function (id) { e.detail.formData.append("ids", id); });
  });

  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.closest && elt.closest("[hx-push-url='true']")) newView = true;
  });

  function announce(text) {
    var region = document.getElementById("inbox-announcer");
    if (!region) return;
    region.textContent = ""; // the same words twice must be read twice
    setTimeout(function () { region.textContent = text; }, 60);
  }

  function describe(id) {
    var row = document.getElementById("esc-" + id);
    if (!row) return "";
    var reason = row.querySelector(".badge.reason"), question = row.querySelector(".esc-question");
    return (reason ? reason.textContent.trim() + ": " : "") +
      (question ? question.textContent.trim().slice(0, 160) : "");
  }

  function arrivals() {
    var now = listed();
    if (seen === null) {
      seen = new Set(now);
      return;
    }
    var fresh = now.filter(function (id) { return !seen.has(id); });
    fresh.forEach(function (id) { seen.add(id); });
    if (fresh.length === 1) announce("New escalation. " + describe(fresh[0]));
    else if (fresh.length > 1) {
      announce(fresh.length + " new escalations. First: " + describe(fresh[0]));
    }
  }

  document.addEventListener("htmx:afterSettle", function (e) {
    if (!bar()) return;
    var settled = e.target;
    if (settled.id === "bulk-results" && !settled.hidden) {
      // decisions are done with: a fresh selection; a claim usually comes before deciding
      if (/^(approve|reject)$/.test(settled.getAttribute("data-action") || "")) {
        picked.clear();
        anchor = null;
      }
      unhide(settled);
      settled.focus({ preventScroll: true });
      settled.scrollIntoView({ block: "nearest" });
    } else if (settled.id === "inbox-results") {
      if (newView) { picked.clear(); anchor = null; seen = null; }
      newView = false;
      arrivals();
    }
    sync();
  });

  function unhide(root) {
    root.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  }

  function onReady() {
    if (!bar()) return;
    unhide(document);
    arrivals();
    sync();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onReady);
  else onReady();
})();
