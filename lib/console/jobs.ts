/**
 * Jobs in the console: a section of the overview (state, duration, latest line) and a page
 * per job whose output grows live as the job prints.
 */
import type { App } from "../app.ts";
import { duration, esc, html, layout, textError } from "./page.ts";
import type { Section } from "./section.ts";
import { sseStream } from "./sse.ts";

/** Output a job page starts with (the end of the job's output), bytes. */
const FIRST_BYTES = 64 * 1024;

/** The page address of one job. */
export function jobHref(id: string): string {
  return `/web/console/job?${new URLSearchParams({ id })}`;
}

/** The overview's jobs section. */
export const jobsSection: Section = {
  id: "jobs",
  title: "Jobs",
  render(app) {
    const jobs = app.jobs.jobs();
    if (jobs.length === 0) return `<p class="empty">No jobs.</p>`;
    const rows = jobs.map((j) => {
      const r = j.row();
      const st = r.state === "running"
        ? "running"
        : `${r.state}${r.exit_code !== null ? ` ${r.exit_code}` : ""}`;
      return `<tr><td><a href="${esc(jobHref(r.id))}">${esc(r.id)}</a></td>` +
        `<td>${esc(r.kind)}</td><td>${esc(r.target)}</td>` +
        `<td><code>${esc(r.summary.slice(0, 120))}</code></td>` +
        `<td><span class="state state-${esc(r.state)}">${esc(st)}</span></td>` +
        `<td class="num">${duration(r.duration_ms)}</td>` +
        `<td><code>${esc(j.latestLine())}</code></td></tr>`;
    }).join("");
    return `<table><thead><tr><th scope="col">job</th><th scope="col">kind</th>` +
      `<th scope="col">target</th><th scope="col">what</th><th scope="col">state</th>` +
      `<th scope="col">duration</th><th scope="col">latest output</th></tr></thead>` +
      `<tbody>${rows}</tbody></table>`;
  },
};

function findJob(app: App, url: URL) {
  const id = url.searchParams.get("id") ?? "";
  try {
    return app.jobs.get(id);
  } catch (err) {
    return textError(404, `${(err as Error).message}. Back to the overview: /web/console`);
  }
}

/** `GET /web/console/job?id=…`: the job's facts and its output, growing live. */
export function jobPage(app: App, url: URL): Response {
  const job = findJob(app, url);
  if (job instanceof Response) return job;
  const r = job.row();
  const main = `<h1>Job ${esc(r.id)} <small>${esc(r.kind)} on ${esc(r.target)}</small></h1>` +
    `<p><code>${esc(r.summary)}</code></p>` +
    `<p>State: <span id="job-state" class="state state-${esc(r.state)}">${esc(r.state)}</span> ` +
    `· started ${esc(r.started_at.replace("T", " ").replace(/\.\d+Z$/, "Z"))}</p>` +
    `<pre id="job-output" class="output" tabindex="0" aria-label="output of job ${
      esc(r.id)
    }" aria-live="off"></pre><p><a href="/web/console">← Overview</a></p>`;
  return html(layout(main, {
    title: `Job ${r.id}`,
    scripts: ["job.js"],
    data: { stream: `/web/console/job/stream?${new URLSearchParams({ id: r.id })}` },
  }));
}

/**
 * `GET /web/console/job/stream?id=…`: `reset` with the end of the output so far, then `out`
 * with each new piece, and `state` (`running`, `exited 0`, `killed`, …).
 */
export function jobStream(app: App, url: URL): Response {
  const job = findJob(app, url);
  if (job instanceof Response) return job;
  return sseStream((send, close) => {
    const dec = new TextDecoder();
    let offset = Math.max(0, job.output.size("both") - FIRST_BYTES);
    let lastState = "";
    const pump = (first = false) => {
      const size = job.output.size("both");
      if (size > offset) {
        const bytes = job.output.read("both", offset, size - offset);
        offset += bytes.length;
        send(first ? "reset" : "out", JSON.stringify(dec.decode(bytes, { stream: true })));
      } else if (first) send("reset", JSON.stringify(""));
      const r = job.row();
      const st = r.state === "running"
        ? "running"
        : `${r.state}${r.exit_code !== null ? ` ${r.exit_code}` : ""}`;
      if (st !== lastState) send("state", st);
      lastState = st;
      if (r.state !== "running") close();
    };
    // coalesce bursts: at most one read per 100 ms
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = job.onChange(() => {
      timer ??= setTimeout(() => {
        timer = undefined;
        pump();
      }, 100);
    });
    pump(true);
    return () => {
      off();
      clearTimeout(timer);
    };
  });
}
