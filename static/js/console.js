/* AgentDesk console: keyboard shortcuts and small behaviours. No build step, no CDN.
 *
 * Every action stays a plain button, link or form (it works without this file); keys only
 * find the element that carries data-key="…" (or the selected inbox row) and click it.
 *
 * Safety (issue 11): no decision by accident.
 *  - A button with data-confirm (approving a side effect, reject, take over, abort, cancel
 *    run) asks first in a dialog, whether it was clicked or pressed by key: Enter or a
 *    click on "Confirm …" goes on, Esc / Cancel / any other key does nothing.
 *  - Keys act only once the page is ready, never while focus is in a field, never with a
 *    modifier held, never while a navigation is under way (keys typed after "j" meant for
 *    the next page must not act on this one, nor on the next before it is shown).
 *  - A lost session (401) or CSRF token (403) on an htmx action: what was typed is saved,
 *    a clear alert says so, and after logging in it is restored on the same page.
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

  // A checkbox takes no letters: j/k/x still work after ticking an inbox row.
  var TYPING = "input:not([type=checkbox]), textarea, select, [contenteditable]:not([contenteditable='false'])";
  var SELECTED = "inbox-selected";
  var KEPT = "agentdesk:typed:"; // sessionStorage prefix: what was typed when a session was lost
  var READY_GUARD_MS = 200; // after DOMContentLoaded: keys typed before the page showed are dropped
  var ARM_MS = 300; // a confirm button cannot be hit by the same double click / held key
  var QUIET_MS = 1000; // after a stray key dismissed a confirmation: the rest of the burst is ignored
  var MODIFIERS = ["Shift", "Control", "Alt", "Meta", "CapsLock", "AltGraph"];
  var pendingKey = null; // an action waiting for its field (reply, take over, edit, budget)
  var ready = false; // set READY_GUARD_MS after DOMContentLoaded
  var leavingPage = false; // a link or form is loading another page
  var quietUntil = 0;

  function navigating() {
    // … or an htmx request that stands for a navigation is on its way (its element carries
    // the mark until the answer is in; an element swapped out takes its mark with it)
    return leavingPage || document.querySelector("[data-navigating]") !== null;
  }

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

  function leaving(el) {
    // A link that loads another page: keys stop until that page is ready.
    if (el.tagName === "A" && el.getAttribute("href") && el.getAttribute("href").charAt(0) !== "#") {
      leavingPage = true;
    }
  }

  function activate(el) {
    var focusSel = el.getAttribute("data-key-focus");
    if (focusSel) {
      var field = document.querySelector(focusSel);
      var onlyIfEmpty = el.hasAttribute("data-key-focus-empty");
      if (field && !(onlyIfEmpty && field.value.trim())) {
        openDetails(field);
        field.focus();
        if (field.select && field.tagName === "INPUT") field.select();
        pendingKey = el.getAttribute("data-key");
        hint(field, "Ctrl+Enter: " + el.textContent.trim().toLowerCase() +
             (el.hasAttribute("data-confirm") ? " (asks to confirm)" : "") + " · Esc: leave");
        return;
      }
    }
    pendingKey = null;
    leaving(el);
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

  // ---- confirmation of irreversible actions ----------------------------------------------
  // One <dialog> for the page. The button that asked is clicked again, flagged, once
  // "Confirm …" is chosen: htmx (or the plain form post) then sees an ordinary click.
  var confirmState = { button: null, returnTo: null, openedAt: 0, timer: 0 };

  function confirmDialog() {
    var dialog = document.getElementById("confirm-dialog");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.setAttribute("aria-describedby", "confirm-detail");
    dialog.setAttribute("data-testid", "confirm-dialog");
    dialog.tabIndex = -1;
    dialog.innerHTML =
      '<h2 id="confirm-title" data-testid="confirm-title"></h2>' +
      '<p id="confirm-detail" class="confirm-detail" data-testid="confirm-detail"></p>' +
      '<div class="confirm-actions">' +
      '<button type="button" class="btn" data-testid="confirm-cancel">Cancel</button>' +
      '<button type="button" class="btn" data-testid="confirm-ok"></button>' +
      "</div>" +
      '<p class="confirm-keys muted"><kbd>Enter</kbd> confirms · <kbd>Esc</kbd> cancels</p>';
    document.body.appendChild(dialog);
    dialog.querySelector('[data-testid="confirm-cancel"]').addEventListener("click", function () {
      closeConfirm(false);
    });
    dialog.querySelector('[data-testid="confirm-ok"]').addEventListener("click", function () {
      closeConfirm(true);
    });
    dialog.addEventListener("cancel", function (e) { e.preventDefault(); closeConfirm(false); });
    // Keys inside the dialog: Tab moves, Enter/Space activate the focused button (not a
    // held or too-early Enter), Esc cancels; anything else, typed by mistake, cancels too.
    dialog.addEventListener("keydown", function (e) {
      if (e.key === "Tab" || MODIFIERS.indexOf(e.key) >= 0) return;
      e.stopPropagation();
      if (e.key === "Enter" || e.key === " ") {
        if (e.repeat || Date.now() - confirmState.openedAt < ARM_MS) e.preventDefault();
        return;
      }
      e.preventDefault();
      if (e.key !== "Escape") quietUntil = Date.now() + QUIET_MS; // typing, not choosing
      closeConfirm(false);
    });
    return dialog;
  }

  function askConfirm(button) {
    var dialog = confirmDialog();
    var ok = dialog.querySelector('[data-testid="confirm-ok"]');
    var tone = /\bbtn-(approve|reject|abort)\b/.exec(button.className);
    dialog.querySelector("#confirm-title").textContent = button.getAttribute("data-confirm");
    dialog.querySelector("#confirm-detail").textContent = button.getAttribute("data-confirm-detail") || "";
    ok.textContent = button.getAttribute("data-confirm-ok") || "Confirm";
    ok.className = "btn " + (tone ? tone[0] : "btn-primary");
    // Briefly disabled: the second click of a double click must not land on it.
    ok.disabled = true;
    confirmState.button = button;
    confirmState.returnTo = document.activeElement;
    confirmState.openedAt = Date.now();
    clearTimeout(confirmState.timer);
    dialog.showModal();
    dialog.focus();
    confirmState.timer = setTimeout(function () {
      if (!dialog.open) return;
      ok.disabled = false;
      ok.focus();
    }, ARM_MS);
  }

  function closeConfirm(go) {
    var dialog = document.getElementById("confirm-dialog");
    var button = confirmState.button, back = confirmState.returnTo;
    confirmState.button = confirmState.returnTo = null;
    clearTimeout(confirmState.timer);
    if (dialog && dialog.open) dialog.close();
    if (!button || !document.body.contains(button)) return;
    if (go && !button.disabled) {
      button.confirmed = true;
      button.click();
      return;
    }
    // Cancelled: focus goes back where it was (the message being typed, or the button).
    var to = back && back !== document.body && document.body.contains(back) ? back : button;
    to.focus({ preventScroll: true });
  }

  // Capture phase: runs before htmx sees the click (it listens on the form).
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button[data-confirm]");
    if (!button) return;
    if (button.confirmed) { button.confirmed = false; return; }
    e.preventDefault();
    e.stopImmediatePropagation();
    if (!button.disabled) askConfirm(button);
  }, true);

  // ---- inbox rows: j/k to move, Enter/o to open, c to claim, x to select ------------------
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
    // from the row that has focus (its box, its Claim button), else the selected one
    var focused = document.activeElement && document.activeElement.closest &&
      document.activeElement.closest(".esc-row");
    var at = focused ? all.indexOf(focused)
      : all.findIndex(function (r) { return r.classList.contains("is-selected"); });
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
    var onControl = target.closest && target.closest("a, button, input");
    if (row && (key === "o" || (key === "Enter" && !onControl))) {
      var link = row.querySelector("[data-row-link]");
      leaving(link);
      link.click();
      return true;
    }
    if (key === "c" && row) {
      var claim = row.querySelector('[data-row-key="c"]');
      if (claim) claim.click();
      return true;
    }
    // x: select the focused row for a bulk action (or unselect it); inbox.js keeps the set
    var focused = target.closest && target.closest(".esc-row");
    if (key === "x" && (focused || row)) {
      var pick = (focused || row).querySelector("[data-row-select]");
      if (pick) pick.click();
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
    var asking = document.getElementById("confirm-dialog");
    if (asking && asking.open) return; // the dialog handles its own keys
    // Not ours yet (or no longer): a key typed for the next page must not act on this one.
    if (!ready || navigating() || Date.now() < quietUntil) return;
    if (target.closest && target.closest(TYPING)) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.repeat) {
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
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
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
      if (back) { e.preventDefault(); leaving(back); back.click(); return; }
    }
    var alias = { n: "j", p: "k" }[e.key] || e.key;
    var el = byKey(alias);
    if (el) {
      e.preventDefault();
      activate(el);
    }
  });

  // Any navigation away (a click on a link, a form post, typing a URL) stops the keys; a
  // page restored from the back/forward cache starts them again.
  window.addEventListener("beforeunload", function () { leavingPage = true; });
  window.addEventListener("pageshow", function (e) { if (e.persisted) leavingPage = false; });
  // htmx requests that stand for a navigation (boosted, or pushing a URL) do the same
  // until their answer is in.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.setAttribute && (e.detail.boosted || elt.closest("[hx-push-url='true']"))) {
      elt.setAttribute("data-navigating", "");
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.removeAttribute) elt.removeAttribute("data-navigating");
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

  // Live filter forms (data-live-filters, with hx-trigger="submit, filters-changed"): a
  // changed select or radio refreshes at once, typing in the search box after a 350 ms
  // pause. htmx's trigger filters could say this in the markup, but they need eval, which
  // the Content-Security-Policy forbids.
  var FILTER_PAUSE_MS = 350;
  var filterTimer = 0;
  function filtersChanged(field) {
    var form = field.form; // the search box is hx-preserved: its form is the current one
    if (form && form.hasAttribute("data-live-filters") && window.htmx) {
      htmx.trigger(form, "filters-changed");
    }
  }
  document.addEventListener("change", function (e) {
    if (!e.target.form || e.target.type === "search") return;
    clearTimeout(filterTimer);
    filtersChanged(e.target);
  });
  document.addEventListener("input", function (e) {
    if (!e.target.form || e.target.type !== "search") return;
    var field = e.target;
    clearTimeout(filterTimer);
    filterTimer = setTimeout(function () { filtersChanged(field); }, FILTER_PAUSE_MS);
  });

  // A live count of a field's characters against its limit (data-char-count-for): the
  // server refuses a longer message (the textarea has no maxlength, so a long paste is never
  // cut silently).
  function charCounts() {
    document.querySelectorAll("[data-char-count-for]").forEach(function (count) {
      var field = document.getElementById(count.dataset.charCountFor);
      if (!field) return;
      var limit = Number(field.dataset.maxChars), fmt = new Intl.NumberFormat("en-US");
      function update() {
        var n = field.value.trim().length, over = n > limit;
        count.hidden = false;
        count.textContent = "· " + fmt.format(n) + " / " + fmt.format(limit) +
          (over ? " — " + fmt.format(n - limit) + " too many" : "");
        count.classList.toggle("is-over", over);
        field.classList.toggle("is-over", over);
      }
      field.addEventListener("input", update);
      update();
    });
  }

  // ---- a lost session: keep what was typed, say so, restore it after logging in ----------
  function keptFields(form) {
    return Array.prototype.filter.call(form.elements, function (f) {
      return f.name && (f.tagName === "TEXTAREA" || (f.tagName === "INPUT" &&
        /^(text|number|search|email|url)$/.test(f.type)));
    });
  }

  function keepTyped() {
    document.querySelectorAll("form[data-keep-typed]").forEach(function (form) {
      var values = {};
      keptFields(form).forEach(function (f) { values[f.name] = f.value; });
      try {
        sessionStorage.setItem(KEPT + form.getAttribute("data-keep-typed"), JSON.stringify(values));
      } catch (err) { /* storage full or off: the alert still says what happened */ }
    });
  }

  function restoreTyped() {
    document.querySelectorAll("form[data-keep-typed]").forEach(function (form) {
      var storeKey = KEPT + form.getAttribute("data-keep-typed");
      var saved = sessionStorage.getItem(storeKey);
      if (!saved) return;
      sessionStorage.removeItem(storeKey);
      var values;
      try { values = JSON.parse(saved); } catch (err) { return; }
      var restored = false;
      keptFields(form).forEach(function (f) {
        if (Object.prototype.hasOwnProperty.call(values, f.name) && values[f.name] !== f.value) {
          f.value = values[f.name];
          restored = restored || f.value.trim() !== "";
        }
      });
      if (!restored) return;
      var note = document.createElement("p");
      note.className = "typed-restored";
      note.setAttribute("role", "status");
      note.setAttribute("data-testid", "typed-restored");
      note.textContent = "Restored what you typed before logging in again. Nothing was sent yet.";
      form.insertAdjacentElement("beforebegin", note);
    });
  }

  function sessionLost(xhr) {
    return xhr && (xhr.getResponseHeader("X-AgentDesk-Session") ||
      // a login page reached by following a redirect (should the server not say so)
      /\/accounts\/login\//.test(xhr.responseURL || ""));
  }

  function showSessionAlert(elt, xhr) {
    keepTyped();
    var holder = document.createElement("div");
    holder.innerHTML = xhr.getResponseHeader("X-AgentDesk-Session") ? xhr.responseText : "";
    var alert = holder.querySelector("[data-session-alert]");
    if (!alert) {
      alert = document.createElement("div");
      alert.className = "session-alert alert alert-error";
      alert.setAttribute("role", "alert");
      alert.setAttribute("data-session-alert", "expired");
      alert.setAttribute("data-testid", "session-expired");
      var next = location.pathname + location.search;
      alert.innerHTML = '<p class="session-alert-text"><b>Your session expired</b> — log in again; ' +
        "what you typed is kept. Nothing was decided.</p>" +
        '<a class="btn btn-primary btn-small" data-testid="session-login" href="/accounts/login/?next=' +
        encodeURIComponent(next) + '">Log in again</a>';
    }
    document.querySelectorAll("[data-session-alert]").forEach(function (old) { old.remove(); });
    var form = elt && elt.closest && elt.closest("form");
    var main = document.querySelector("main") || document.body;
    if (form && document.body.contains(form)) form.insertAdjacentElement("beforebegin", alert);
    else main.insertAdjacentElement("afterbegin", alert);
    // Save again on the way out: anything typed after the alert appeared counts too.
    var login = alert.querySelector("a[href]");
    if (login) login.addEventListener("click", keepTyped);
  }

  document.addEventListener("htmx:beforeSwap", function (e) {
    if (!sessionLost(e.detail.xhr)) return;
    e.detail.shouldSwap = false;
    e.detail.isError = false; // handled here: no second report through htmx:responseError
    showSessionAlert(e.detail.requestConfig && e.detail.requestConfig.elt || e.detail.elt, e.detail.xhr);
  });

  document.addEventListener("htmx:afterSettle", function () {
    // A live update replaced the button being confirmed (decided elsewhere, run ended):
    // there is nothing left to confirm.
    if (confirmState.button && !document.body.contains(confirmState.button)) closeConfirm(false);
    restoreSelection();
    if (pendingKey && !byKey(pendingKey)) { pendingKey = null; clearHint(); }
  });

  function onReady() {
    charCounts();
    if (document.querySelector('[data-keynav="rows"]')) restoreSelection();
    restoreTyped();
    setTimeout(function () {
      ready = true;
      document.documentElement.setAttribute("data-keys", "ready"); // tests wait on this
    }, READY_GUARD_MS);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onReady);
  else onReady();
})();
