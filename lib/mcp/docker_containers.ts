/** Container tools: list, inspect, lifecycle, logs, exec, run (README "Docker"). */
import { z } from "zod";
import {
  containerAction,
  containerLogs,
  dockerExec,
  inspectContainer,
  listContainers,
  runContainer,
} from "../docker/mod.ts";
import { Capture, execView } from "../output/mod.ts";
import { defineTool, fields, Text, type ToolContext, type ToolDef } from "./tool.ts";
import {
  isRunning,
  JOB_TIMEOUT_DEFAULT_MS,
  jobTimeoutField,
  resultOutcome,
  runLong,
  waitField,
} from "./job.ts";

const hostId = () => fields.id("Docker host id (from docker_connect)");
const container = () => z.string().min(1).max(300).describe("container name or id");
const argv = (what: string) => z.array(z.string().max(1 << 16)).max(10_000).describe(what);

/** A stream collector that keeps what a result leaves out in the output store. */
function capture(ctx: ToolContext, label: string, maxOutput?: number): Capture {
  return new Capture({
    keep: Math.max(64 * 1024, maxOutput ?? 0),
    store: ctx.app.outputs,
    label,
  });
}

const lifecycle: ToolDef[] = [
  defineTool({
    name: "docker_container_start",
    group: "docker",
    description: "Starts a stopped container.",
    input: { host_id: hostId(), container: container() },
    run: async (a, ctx) => {
      await containerAction(ctx.app.docker.get(a.host_id), a.container, { action: "start" });
      return new Text(`started ${a.container}`);
    },
  }),
  defineTool({
    name: "docker_container_restart",
    group: "docker",
    description: "Restarts a container (stop with a grace period, then start).",
    input: {
      host_id: hostId(),
      container: container(),
      timeout_sec: z.number().int().min(0).max(3600).optional().describe(
        "seconds to wait for a clean stop before killing (engine default 10)",
      ),
    },
    run: async (a, ctx) => {
      await containerAction(ctx.app.docker.get(a.host_id), a.container, {
        action: "restart",
        timeoutSec: a.timeout_sec,
      });
      return new Text(`restarted ${a.container}`);
    },
  }),
  defineTool({
    name: "docker_container_stop",
    group: "docker",
    description: "Stops a container: SIGTERM, then SIGKILL after timeout_sec.",
    input: {
      host_id: hostId(),
      container: container(),
      timeout_sec: z.number().int().min(0).max(3600).optional().describe(
        "seconds before SIGKILL (engine default 10)",
      ),
    },
    run: async (a, ctx) => {
      await containerAction(ctx.app.docker.get(a.host_id), a.container, {
        action: "stop",
        timeoutSec: a.timeout_sec,
      });
      return new Text(`stopped ${a.container}`);
    },
  }),
  defineTool({
    name: "docker_container_kill",
    group: "docker",
    description: "Sends a signal to a container's main process (default SIGKILL).",
    input: {
      host_id: hostId(),
      container: container(),
      signal: z.string().regex(/^(SIG)?[A-Z0-9+-]+$|^\d+$/).max(20).optional().describe(
        "e.g. SIGTERM, SIGHUP, 9",
      ),
    },
    annotations: { destructiveHint: true },
    audit: (a) => ({ target: a.host_id, command: `kill ${a.signal ?? "SIGKILL"} ${a.container}` }),
    run: async (a, ctx) => {
      await containerAction(ctx.app.docker.get(a.host_id), a.container, {
        action: "kill",
        signal: a.signal,
      });
      return new Text(`killed ${a.container}`);
    },
  }),
  defineTool({
    name: "docker_container_remove",
    group: "docker",
    description: "Removes a container (force: also a running one).",
    input: {
      host_id: hostId(),
      container: container(),
      force: z.boolean().optional().describe("kill it first if it runs"),
      remove_volumes: z.boolean().optional().describe("also remove its anonymous volumes"),
    },
    annotations: { destructiveHint: true },
    audit: (a) => ({ target: a.host_id, command: `rm ${a.container}` }),
    run: async (a, ctx) => {
      await containerAction(ctx.app.docker.get(a.host_id), a.container, {
        action: "remove",
        force: a.force,
        removeVolumes: a.remove_volumes,
      });
      return new Text(`removed ${a.container}`);
    },
  }),
];

const runSpec = z.strictObject({
  image: z.string().min(1).max(500).describe("image reference, e.g. busybox:1.36"),
  name: z.string().max(200).optional(),
  cmd: argv("command (argv) instead of the image's CMD").optional(),
  entrypoint: argv("entrypoint (argv)").optional(),
  env: fields.env().optional(),
  ports: z.array(z.string().max(100)).max(200).optional().describe(
    'published ports: "8080:80", "127.0.0.1:8080:80/tcp", "[::1]:8080:80", "127.0.0.1:0:80" (0 = any free port)',
  ),
  volumes: z.array(z.string().max(4096)).max(200).optional().describe(
    '"/host/path:/ctr/path[:ro]", "volume:/ctr/path", or "/ctr/path" (anonymous)',
  ),
  labels: z.record(z.string().max(1000), z.string().max(10_000)).optional(),
  network_mode: z.string().max(200).optional().describe("bridge, host, none, or a network name"),
  restart_policy: z.string().max(40).optional().describe(
    "no, always, unless-stopped, on-failure[:N]",
  ),
  auto_remove: z.boolean().optional().describe("remove the container when it exits"),
  tty: z.boolean().optional(),
  working_dir: z.string().max(4096).optional(),
  user: z.string().max(200).optional(),
  hostname: z.string().max(255).optional(),
  pull_if_missing: z.boolean().optional().describe(
    "pull the image if the engine lacks it (default true)",
  ),
  memory: z.union([z.string().max(40), z.number().int().positive()]).optional().describe(
    'memory limit: "512m", "1g" or bytes',
  ),
  cpus: z.number().positive().max(1024).optional().describe("CPU limit, e.g. 0.5"),
  wait: z.boolean().optional().describe(
    "wait for the container to exit; return exit_code and logs",
  ),
});

const work: ToolDef[] = [
  defineTool({
    name: "docker_containers",
    group: "docker",
    description:
      "Lists containers (running ones; all: true for stopped too) as rows: 12-char id, name, " +
      "image, state, status, published ports.",
    input: {
      host_id: hostId(),
      all: z.boolean().optional(),
      limit: z.number().int().min(1).max(10_000).optional(),
      filters: z.record(z.string().max(100), z.array(z.string().max(1000)).max(100)).optional()
        .describe('engine filters, e.g. {"name": ["web"], "status": ["exited"], "label": ["a=b"]}'),
    },
    annotations: { readOnlyHint: true },
    run: (a, ctx) =>
      listContainers(ctx.app.docker.get(a.host_id), {
        all: a.all,
        limit: a.limit,
        filters: a.filters,
        signal: ctx.signal,
      }),
  }),
  defineTool({
    name: "docker_container_inspect",
    group: "docker",
    description:
      "Shows Docker's full inspect object of one container (config, state, mounts, network).",
    input: { host_id: hostId(), container: container() },
    annotations: { readOnlyHint: true },
    run: (a, ctx) => inspectContainer(ctx.app.docker.get(a.host_id), a.container, ctx.signal),
  }),
  ...lifecycle,
  defineTool({
    name: "docker_container_logs",
    group: "docker",
    description:
      "Reads a container's logs: stdout and stderr interleaved in the order they were written, " +
      "last `tail` lines (default 200), bounded.",
    input: {
      host_id: hostId(),
      container: container(),
      tail: z.union([z.number().int().min(0).max(1_000_000), z.literal("all")]).optional()
        .describe('last N lines (default 200) or "all"'),
      since: z.string().max(100).optional().describe(
        'RFC3339 time or a duration back from now like "5m"',
      ),
      until: z.string().max(100).optional().describe(
        'RFC3339 time or a duration back from now like "1m"',
      ),
      timestamps: z.boolean().optional().describe("prefix each line with its RFC3339 timestamp"),
      stdout: z.boolean().optional().describe("include stdout (default true)"),
      stderr: z.boolean().optional().describe("include stderr (default true)"),
      ...fields.output(),
    },
    annotations: { readOnlyHint: true },
    run: async (a, ctx) => {
      const r = await containerLogs(ctx.app.docker.get(a.host_id), a.container, {
        sink: capture(ctx, `docker_container_logs ${a.host_id}/${a.container}`, a.max_output),
        tail: a.tail,
        since: a.since,
        until: a.until,
        timestamps: a.timestamps,
        stdout: a.stdout,
        stderr: a.stderr,
        signal: ctx.signal,
      });
      return { lines: r.lines, logs: r.logs };
    },
  }),
  defineTool({
    name: "docker_exec",
    group: "docker",
    description:
      "Runs a command (argv, no shell unless you call one) in a running container and returns " +
      "exit code, stdout, stderr. On timeout the command and its children are killed.",
    input: {
      host_id: hostId(),
      container: container(),
      cmd: argv('argv, e.g. ["sh", "-c", "ls -l /app | head"]').min(1),
      working_dir: z.string().max(4096).optional(),
      user: z.string().max(200).optional().describe("user[:group] or uid[:gid]"),
      env: fields.env().optional(),
      stdin: z.string().max(16 << 20).optional().describe("text written to the command's stdin"),
      wait_ms: waitField(),
      timeout_ms: jobTimeoutField(),
      ...fields.output(),
    },
    policy: (a) => ({
      kind: "docker",
      target: a.host_id,
      argv: a.cmd,
      user: a.user,
      cwd: a.working_dir,
    }),
    audit: (a) => ({ target: `${a.host_id}/${a.container}`, command: JSON.stringify(a.cmd) }),
    run: async (a, ctx) => {
      const host = ctx.app.docker.get(a.host_id);
      let stopped: AbortSignal | undefined;
      const label = `docker_exec ${a.host_id}/${a.container}`;
      const value = await runLong(ctx, {
        kind: "docker_exec",
        target: `${a.host_id}/${a.container}`,
        summary: a.cmd.join(" ").slice(0, 200),
        waitMs: a.wait_ms,
        work: (job) => {
          stopped = job.signal;
          return dockerExec(host, a.container, {
            cmd: a.cmd,
            workingDir: a.working_dir,
            user: a.user,
            env: a.env,
            stdin: a.stdin,
            timeoutMs: a.timeout_ms ?? JOB_TIMEOUT_DEFAULT_MS,
            stdout: capture(ctx, `${label} stdout`, a.max_output),
            stderr: capture(ctx, `${label} stderr`, a.max_output),
            signal: job.signal,
            onOutput: (chunk, stream) => job.write(stream, chunk),
          });
        },
        // a stop through job_signal kills the process tree: the job ends killed, not timed out
        outcome: (r) => ({ exit_code: r.exit_code, timed_out: r.timed_out && !stopped?.aborted }),
      });
      return isRunning(value) ? value : execView(value);
    },
  }),
  defineTool({
    name: "docker_run",
    group: "docker",
    description:
      "Creates and starts a container (pulling the image if missing) and returns its state, " +
      "bound ports and first log lines (exit_code too if it exited at once). With wait: true " +
      "it waits for the exit and returns exit_code and all logs.",
    input: { host_id: hostId(), spec: runSpec, wait_ms: waitField(), ...fields.output() },
    policy: (a) => ({
      kind: "docker",
      target: a.host_id,
      argv: [a.spec.image, ...(a.spec.entrypoint ?? []), ...(a.spec.cmd ?? [])],
      user: a.spec.user,
      cwd: a.spec.working_dir,
    }),
    audit: (a) => ({
      target: a.host_id,
      command: JSON.stringify([a.spec.image, ...(a.spec.cmd ?? [])]),
    }),
    run: async (a, ctx) => {
      const host = ctx.app.docker.get(a.host_id);
      const start = (
        signal: AbortSignal,
        progress: (done: number, total: number | undefined, message: string) => void,
      ) =>
        runContainer(host, a.spec, {
          onPullProgress: progress,
          logs: capture(ctx, `docker_run ${a.host_id} ${a.spec.image} logs`, a.max_output),
          signal,
        });
      if (!a.spec.wait) {
        const r = await start(ctx.signal, ctx.progress);
        ctx.audit.set({ exit_code: r.exit_code ?? null });
        return r;
      }
      return runLong(ctx, {
        kind: "docker_run",
        target: a.host_id,
        summary: [a.spec.image, ...(a.spec.cmd ?? [])].join(" ").slice(0, 200),
        waitMs: a.wait_ms,
        work: (job) => start(job.signal, job.progress),
        outcome: (r) => ({ ...resultOutcome(r), exit_code: r.exit_code ?? null }),
      });
    },
  }),
];

/** Container tools. */
export const containerTools: ToolDef[] = work;
