/* New escalations while the operator looks elsewhere (issue 17).
 *
 * The inbox's websocket says "escalation.opened" with a small signal element
 * (templates/runs/inbox.html#inbox-signal: id, reason, priority, question). Here:
 * - while the tab is hidden, each arrival adds one to a count in the tab title,
 *   "(3) Inbox · AgentDesk"; the count is cleared when the tab is shown again;
 * - an operator who opted in (the "Desktop notifications" button; the choice is kept in
 *   localStorage, per browser) gets a desktop notification through the Notification API
 *   for each arrival while the tab is hidden or the window is not focused. Clicking it
 *   opens the escalation.
 * No inline script or handler anywhere (the Content-Security-Policy forbids them).
 */
(function () {
  "use strict";

  var OPT_IN = "agentdesk.desktopNotifications";
  var unread = 0;
  var seen = {};

  function supported() { return typeof window.Notification === "function"; }
  function permission() { return supported() ? window.Notification.permission : "denied"; }
  function hidden() { return document.visibilityState === "hidden" || document.hidden === true; }
  function away() {
    return hidden() || (typeof document.hasFocus === "function" && !document.hasFocus());
  }

  function optedIn() {
    try { return window.localStorage.getItem(OPT_IN) === "on"; } catch (e) { return false; }
  }
  function setOptedIn(on) {
    try { window.localStorage.setItem(OPT_IN, on ? "on" : "off"); } catch (e) { /* private mode */ }
  }

  // ---- the count in the tab title --------------------------------------------------------
  function plainTitle() { return document.title.replace(/^\(\d+\) /, ""); }
  function showCount() {
    document.title = (unread ? "(" + unread + ") " : "") + plainTitle();
  }
  document.addEventListener("visibilitychange", function () {
    if (!hidden() && unread) { unread = 0; showCount(); }
  });

  // ---- desktop notifications ---------------------------------------------------------------
  function notify(signal) {
    if (!optedIn() || permission() !== "granted" || !away()) return;
    var id = signal.getAttribute("data-esc");
    var reason = signal.getAttribute("data-reason") || "escalation";
    var priority = signal.getAttribute("data-priority");
    var note;
    try {
      note = new window.Notification("New escalation: " + reason, {
        body: (signal.getAttribute("data-question") || "") +
          (priority ? "\n(priority " + priority + ")" : ""),
        tag: "agentdesk-escalation-" + id,
      });
    } catch (e) {
      return; // some browsers only allow notifications from a service worker
    }
    note.onclick = function () {
      window.focus();
      window.location.assign("/escalations/" + encodeURIComponent(id) + "/");
      note.close();
    };
  }

  function arrivedIn(message) {
    if (typeof message !== "string" || message.indexOf("escalation.opened") < 0) return;
    var holder = document.createElement("template"); // inert: nothing in it runs
    holder.innerHTML = message;
    var signal = holder.content.querySelector('#inbox-signal[data-kind="escalation.opened"]');
    if (!signal) return;
    var id = signal.getAttribute("data-esc");
    if (seen[id]) return;
    seen[id] = true;
    if (hidden()) { unread += 1; showCount(); }
    notify(signal);
  }

  document.addEventListener("htmx:wsAfterMessage", function (e) {
    arrivedIn(e.detail && e.detail.message);
  });

  // ---- the opt-in button -------------------------------------------------------------------
  function label(button) {
    var state = permission();
    var on = optedIn() && state === "granted";
    button.textContent = "Desktop notifications: " + (on ? "on" : state === "denied" ? "blocked" : "off");
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.title = state === "denied"
      ? "This browser blocks notifications from this site: allow them in its site settings."
      : on ? "New escalations pop up on your desktop while this tab is in the background."
        : "Get a desktop notification for each new escalation while this tab is in the background.";
  }

  function toggle(button) {
    if (optedIn() && permission() === "granted") {
      setOptedIn(false);
      label(button);
      return;
    }
    if (permission() === "granted") {
      setOptedIn(true);
      label(button);
      return;
    }
    var asked = window.Notification.requestPermission(function (answer) {
      setOptedIn(answer === "granted");
      label(button);
    });
    if (asked && typeof asked.then === "function") {
      asked.then(function (answer) { setOptedIn(answer === "granted"); label(button); });
    }
  }

  function ready() {
    var button = document.getElementById("notify-toggle");
    if (!button || !supported()) return;
    button.hidden = false;
    label(button);
    button.addEventListener("click", function () { toggle(button); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
