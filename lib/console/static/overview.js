// The overview's live updates: each `section` event replaces one section's HTML (rendered and
// escaped by the daemon). Keyboard focus stays on the same link across an update.
(() => {
  "use strict";
  const live = document.getElementById("live");
  const events = new EventSource(document.body.dataset.events);
  events.addEventListener("open", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  events.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  });
  events.addEventListener("section", (ev) => {
    const { id, html } = JSON.parse(ev.data);
    const el = document.getElementById("s-" + id);
    if (!el) return;
    const active = document.activeElement;
    const href = active && el.contains(active) ? active.getAttribute("href") : null;
    el.innerHTML = html;
    if (href) {
      const again = [...el.querySelectorAll("a[href]")].find((a) =>
        a.getAttribute("href") === href
      );
      if (again) again.focus();
    }
  });
})();
