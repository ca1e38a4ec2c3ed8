import { defineTool, type ToolDef } from "./tool.ts";
import { VERSION } from "../version.ts";
import { mayRun } from "../perms.ts";
import type { App } from "../app.ts";
import { sessionRows } from "./views.ts";

/** The `status` document (README "Meta"), also served as JSON on `GET /status` for `rsm status`. */
export function statusReport(app: App) {
  return {
    version: VERSION,
    uptime: formatUptime(Date.now() - app.startedAt),
    pid: Deno.pid,
    format: app.format,
    state_path: app.store.path,
    sessions: sessionRows(app),
    hosts: app.docker.rows(),
    forwards: app.forwards.list(),
    shells: app.shells.list(),
    jobs: app.jobs.rows(),
    policy: app.policy.status(),
    // only when audit.log could not be written (see lib/audit.ts)
    ...(app.audit.failures ? { audit_log_errors: app.audit.failures } : {}),
    may_run: mayRun(), // local programs this daemon may start (README "Security model")
    outputs: app.outputs.stats(),
    memory: memoryMiB(),
  };
}

/** Meta tools: `status` and `snapshot` (README "Meta"). */
export const metaTools: ToolDef[] = [
  defineTool({
    name: "status",
    group: "meta",
    description:
      "Shows the daemon's status: version, uptime, output format, state file, and every SSH " +
      "session, Docker host, forward, shell and job it holds.",
    input: {},
    annotations: { readOnlyHint: true },
    run: (_args, { app }) => Promise.resolve(statusReport(app)),
  }),
  defineTool({
    name: "snapshot",
    group: "meta",
    description:
      "Writes the daemon's state (persistent sessions, forwards, hosts) to state.json now.",
    input: {},
    annotations: { idempotentHint: true },
    run: async (_args, { app }) => {
      await app.store.flush();
      return { saved: true, path: app.store.path };
    },
  }),
];

/** The daemon's memory in MiB (resident set, V8 heap, memory outside the heap such as buffers). */
function memoryMiB() {
  const m = Deno.memoryUsage();
  const mib = (n: number) => Math.round(n / 1048576 * 10) / 10;
  return {
    rss: mib(m.rss),
    heap_used: mib(m.heapUsed),
    heap_total: mib(m.heapTotal),
    external: mib(m.external),
  };
}

/** `93s` → `1m33s`. */
export function formatUptime(ms: number): string {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${d ? d + "d" : ""}${d || h ? h + "h" : ""}${d || h || m ? m + "m" : ""}${s}s`;
}
