/**
 * The console's overview: one server-rendered section per kind of thing the daemon holds.
 * The page renders every section; the live stream re-renders them each tick and sends only
 * the sections whose HTML changed, so an idle console costs one render per second.
 */
import type { App } from "../app.ts";
import { formatUptime } from "../mcp/meta.ts";
import { sessionRows } from "../mcp/views.ts";
import { VERSION } from "../version.ts";
import { bytes, esc, layout } from "./page.ts";
import { shellHref } from "./shell_view.ts";
import { auditTail } from "./audit_tail.ts";
import { jobsSection } from "./jobs.ts";
import { personSection } from "./person.ts";
import type { Section } from "./section.ts";

export type { Section };

type Row = Record<string, unknown>;

/** A table with a caption-less header; `empty` when there are no rows. */
function table(headers: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  const head = headers.map((h) => `<th scope="col">${esc(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function state(s: string): string {
  return `<span class="state state-${esc(s.replace(/[^a-z-]/g, ""))}">${esc(s)}</span>`;
}

/** The sections, in page order: what waits for the person first. */
export const SECTIONS: Section[] = [
  personSection,
  {
    id: "sessions",
    title: "SSH sessions",
    render: (app) =>
      table(
        ["id", "user@address", "state", "forwards", "shells", "last error"],
        sessionRows(app).map((r) => [
          esc(r.id),
          esc(`${r.user}@${r.address}`),
          state(r.state) + (r.persistent ? ` <span class="tag">persistent</span>` : ""),
          String(r.forwards),
          String(r.shells),
          `<span class="err">${esc(r.last_error)}</span>`,
        ]),
        "No SSH sessions.",
      ),
  },
  {
    id: "hosts",
    title: "Docker hosts",
    render: (app) =>
      table(
        ["id", "host", "state", "shells", "last error"],
        app.docker.rows().map((r) => [
          esc(r.id),
          esc(r.host),
          state(r.state),
          String(r.shells),
          `<span class="err">${esc(r.last_error)}</span>`,
        ]),
        "No Docker hosts.",
      ),
  },
  {
    id: "forwards",
    title: "Forwards",
    render: (app) =>
      table(
        ["id", "session", "forward", "connections", "bytes in", "bytes out"],
        app.forwards.list().map((f) => [
          esc(f.id),
          esc(f.session_id),
          `<code>${esc(f.spec)}</code>`,
          `${f.active_connections} open / ${f.total_connections}`,
          `<span class="num" data-bytes="${f.bytes_in}">${bytes(f.bytes_in)}</span>`,
          `<span class="num" data-bytes="${f.bytes_out}">${bytes(f.bytes_out)}</span>`,
        ]),
        "No forwards.",
      ),
  },
  jobsSection,
  {
    id: "shells",
    title: "Shells",
    render: (app) =>
      table(
        ["shell", "on", "state", "watching", ""],
        app.shells.refs().map(({ kind, owner, info: s }) => {
          const st = s.closed ? s.lost ? "lost" : `exited ${s.exit_code ?? ""}`.trim() : "running";
          let viewers = 0;
          try {
            viewers = app.shells.get(kind, owner, s.id).watch.viewers;
          } catch { /* gone meanwhile */ }
          return [
            esc(s.id),
            esc(
              typeof s.container === "string"
                ? `${owner}/${s.container}`
                : app.shells.where(kind, owner),
            ),
            state(st.split(" ")[0]!) + (st.includes(" ") ? ` ${esc(st.split(" ")[1])}` : "") +
            (s.durable ? ` <span class="tag">durable</span>` : ""),
            viewers ? `${viewers} viewer${viewers > 1 ? "s" : ""}` : "",
            `<a href="${esc(shellHref(kind, owner, s.id))}">watch / take over</a>`,
          ];
        }),
        "No shells.",
      ),
  },
  {
    id: "audit",
    title: "Audit log (latest first)",
    render: (app) =>
      table(
        ["time", "tool", "target", "command / path", "exit"],
        auditTail(app.paths.audit, 15).map((e: Row) => [
          esc(String(e.time ?? "").replace("T", " ").replace(/\.\d+Z$/, "Z")),
          esc(e.tool),
          esc(e.target),
          `<code>${esc(truncate(String(e.command ?? e.path ?? ""), 160))}</code>`,
          esc(e.exit_code ?? e.error ?? ""),
        ]),
        "Nothing audited yet.",
      ),
  },
];

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

/** Renders one section's inner HTML, never throwing (an error shows in the section). */
export function renderSection(section: Section, app: App): string {
  try {
    return section.render(app);
  } catch (err) {
    return `<p class="err">Cannot show ${esc(section.title)}: ${esc((err as Error).message)}</p>`;
  }
}

/** The header line: pid, version, uptime. */
export function summary(app: App): string {
  return `rsm ${esc(VERSION)} · pid ${Deno.pid} · up ${
    esc(formatUptime(Date.now() - app.startedAt))
  }`;
}

/** The full overview page. */
export function overviewPage(app: App, csrf: string): string {
  const body = SECTIONS.map((s) =>
    `<section aria-labelledby="h-${s.id}"><h2 id="h-${s.id}">${esc(s.title)}</h2>` +
    `<div id="s-${s.id}" class="section">${renderSection(s, app)}</div></section>`
  ).join("");
  return layout(
    `<h1>Overview</h1><p id="s-summary" class="summary">${summary(app)}</p>${body}`,
    {
      title: "Overview",
      scripts: ["overview.js"],
      data: { events: "/web/console/events", csrf },
    },
  );
}
