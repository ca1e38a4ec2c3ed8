// A job's page: its output grows as the job prints (server-sent events), and the state
// follows. Output is text; it is added as text, never as HTML.
(() => {
  "use strict";
  const out = document.getElementById("job-output");
  const state = document.getElementById("job-state");
  const live = document.getElementById("live");
  const events = new EventSource(document.body.dataset.stream);
  const stick = () => {
    const atEnd = out.scrollHeight - out.scrollTop - out.clientHeight < 40;
    return () => {
      if (atEnd) out.scrollTop = out.scrollHeight;
    };
  };
  events.addEventListener("open", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  events.addEventListener("reset", (ev) => {
    out.textContent = JSON.parse(ev.data);
    out.scrollTop = out.scrollHeight;
  });
  events.addEventListener("out", (ev) => {
    const after = stick();
    out.append(JSON.parse(ev.data));
    after();
  });
  events.addEventListener("state", (ev) => {
    state.textContent = ev.data;
    state.className = "state state-" + ev.data.split(" ")[0];
    if (ev.data !== "running") {
      events.close();
      live.textContent = "ended";
      live.className = "live";
    }
  });
})();
