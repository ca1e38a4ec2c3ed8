// The shell view: xterm.js fed from the daemon's event stream; keys typed here go to the
// shell (take-over). The terminal keeps the shell's size unless "size follows the window" is
// on, so watching never changes what the agent sees.
(() => {
  "use strict";
  const d = document.body.dataset;
  const stateEl = document.getElementById("shell-state");
  const sizeEl = document.getElementById("size");
  const fitBox = document.getElementById("fit");
  const live = document.getElementById("live");
  const term = new globalThis.Terminal({
    rows: Number(d.rows),
    cols: Number(d.cols),
    cursorBlink: true,
    scrollback: 5000,
    fontSize: 14,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
    theme: { background: "#101418", foreground: "#d8dee9" },
  });
  const fit = new globalThis.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("term"));
  globalThis.rsmTerm = term; // tests and curious people can read the buffer
  // The terminal takes every key, Tab included; Shift+Escape gives the keyboard back.
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type === "keydown" && ev.key === "Escape" && ev.shiftKey) {
      fitBox.focus();
      return false;
    }
    return true;
  });

  const headers = { "x-rsm-csrf": d.csrf };
  const showError = (text) => {
    live.textContent = text.trim();
    live.className = "live off";
  };
  const decode = (b64) => {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  };

  const events = new EventSource(d.stream);
  events.addEventListener("open", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  events.addEventListener("reset", (ev) => {
    term.reset();
    term.write(decode(ev.data));
  });
  events.addEventListener("out", (ev) => term.write(decode(ev.data)));
  events.addEventListener("state", (ev) => {
    stateEl.textContent = ev.data;
    stateEl.className = "state state-" + ev.data.split(" ")[0];
    if (ev.data !== "running") events.close();
  });

  // Keys: sent in order, batched while a request is in flight.
  let queue = "";
  let sending = false;
  const flush = async () => {
    if (sending || !queue) return;
    sending = true;
    const body = queue;
    queue = "";
    try {
      const r = await fetch(d.input, {
        method: "POST",
        body,
        headers: { ...headers, "content-type": "text/plain; charset=utf-8" },
      });
      if (!r.ok) showError(await r.text());
    } catch (err) {
      showError(String(err));
    } finally {
      sending = false;
      flush();
    }
  };
  term.onData((data) => {
    queue += data;
    flush();
  });

  // Size: follow the window only when asked.
  let sizeTimer;
  term.onResize(({ rows, cols }) => {
    sizeEl.textContent = `${rows}×${cols}`;
    if (!fitBox.checked) return;
    clearTimeout(sizeTimer);
    sizeTimer = setTimeout(() => {
      fetch(d.resize, {
        method: "POST",
        body: JSON.stringify({ rows, cols }),
        headers: { ...headers, "content-type": "application/json" },
      }).then(async (r) => r.ok || showError(await r.text()), (err) => showError(String(err)));
    }, 150);
  });
  const refit = () => {
    if (fitBox.checked) fit.fit();
  };
  fitBox.checked = false;
  fitBox.addEventListener("change", refit);
  globalThis.addEventListener("resize", refit);
})();
