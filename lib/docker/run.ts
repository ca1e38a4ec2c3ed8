/** `docker_run`: create + start a container from a spec, optionally wait for it to exit. */
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import { RsmError } from "../errors.ts";
import type { DockerHost } from "./host.ts";
import { isEngineError } from "./errors.ts";
import { Capture } from "../output/mod.ts";
import { containerLogs } from "./logs.ts";
import { pullImage, type PullProgress } from "./images.ts";
import { FrameSplitter } from "./frames.ts";
import { waitAtMost } from "../timeout.ts";

/** `docker_run`'s spec (README "Docker"). */
export interface RunSpec {
  image: string;
  name?: string | undefined;
  cmd?: string[] | undefined;
  entrypoint?: string[] | undefined;
  env?: Record<string, string> | undefined;
  /** `"8080:80"`, `"127.0.0.1:8080:80/tcp"`, `"[::1]:8080:80"`, `"127.0.0.1:0:80"`, `"80"`. */
  ports?: string[] | undefined;
  /** `"/host:/ctr[:ro]"`, `"volume:/ctr"`, or `"/ctr"` (anonymous volume). */
  volumes?: string[] | undefined;
  labels?: Record<string, string> | undefined;
  network_mode?: string | undefined;
  /** `no`, `always`, `unless-stopped`, `on-failure[:N]`. */
  restart_policy?: string | undefined;
  auto_remove?: boolean | undefined;
  tty?: boolean | undefined;
  working_dir?: string | undefined;
  user?: string | undefined;
  hostname?: string | undefined;
  /** Pull the image when it is not on the engine. Default true. */
  pull_if_missing?: boolean | undefined;
  /** `"512m"`, `"1g"`, or bytes. */
  memory?: string | number | undefined;
  /** CPUs, e.g. 0.5. */
  cpus?: number | undefined;
  /** Wait for the container to exit; return exit code and logs. */
  wait?: boolean | undefined;
}

/** `docker_run`'s result: what a person would check right after `docker run`. */
export interface RunResult {
  id: string;
  name?: string | undefined;
  warnings?: string[] | undefined;
  /** `running`, `exited`, `created`, … */
  state: string;
  /** Set once the container has exited. */
  exit_code?: number | null | undefined;
  /** Published ports as bound, e.g. `127.0.0.1:49153->80/tcp`. */
  ports?: string[] | undefined;
  /** Its first log lines (all of them with `wait`). */
  logs?: Capture | undefined;
}

/** One parsed port mapping. */
export interface PortMapping {
  hostIp: string;
  hostPort: string;
  containerPort: string;
}

/**
 * Parses a port mapping.
 *
 * @example
 * ```ts
 * parsePort("[::1]:8080:80"); // {hostIp: "::1", hostPort: "8080", containerPort: "80/tcp"}
 * ```
 */
export function parsePort(spec: string): PortMapping {
  const bad = () =>
    new RsmError(
      "BAD_ARGUMENT",
      `Cannot read port mapping "${spec}": expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp|sctp] like "8080:80", "127.0.0.1:0:80/tcp", "[::1]:8080:80", or just "80"`,
    );
  let s = spec.trim();
  let proto = "tcp";
  const slash = s.lastIndexOf("/");
  if (slash >= 0) {
    proto = s.slice(slash + 1).toLowerCase();
    s = s.slice(0, slash);
    if (!["tcp", "udp", "sctp"].includes(proto)) throw bad();
  }
  let hostIp = "";
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0 || s[end + 1] !== ":") throw bad();
    hostIp = s.slice(1, end);
    s = s.slice(end + 2);
  }
  const parts = s.split(":");
  let hostPort = "";
  let cport: string;
  if (parts.length === 1) cport = parts[0] ?? "";
  else if (parts.length === 2) [hostPort = "", cport = ""] = parts;
  else if (parts.length === 3 && !hostIp) [hostIp = "", hostPort = "", cport = ""] = parts;
  else throw bad();
  const num = (p: string, zeroOk: boolean) =>
    /^\d+$/.test(p) && Number(p) <= 65535 && (zeroOk || Number(p) > 0);
  if (!num(cport, false)) throw bad();
  if (hostPort && !num(hostPort, true)) throw bad();
  if (hostPort === "0") hostPort = "";
  return { hostIp, hostPort, containerPort: `${cport}/${proto}` };
}

/** `"512m"` → bytes. */
export function parseMemory(v: string | number): number {
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) {
    throw new RsmError(
      "BAD_ARGUMENT",
      `Cannot read memory "${v}": expected bytes or a size like "512m", "1g"`,
    );
  }
  const mult: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.round(Number(m[1]) * (mult[(m[2] ?? "").toLowerCase()] ?? 1));
}

/** `"on-failure:3"` → the engine's restart policy. */
export function parseRestart(v: string): { Name: string; MaximumRetryCount?: number } {
  const [name = "", count] = v.split(":");
  if (
    !["no", "always", "unless-stopped", "on-failure"].includes(name) ||
    (count && name !== "on-failure")
  ) {
    throw new RsmError(
      "BAD_ARGUMENT",
      `Cannot read restart_policy "${v}": expected no, always, unless-stopped or on-failure[:N]`,
    );
  }
  return count
    ? { Name: name, MaximumRetryCount: Number(count) }
    : { Name: name === "no" ? "" : name };
}

/** Builds the engine's create body from a spec. */
export function createOptions(spec: RunSpec): Docker.ContainerCreateOptions {
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of spec.ports ?? []) {
    const m = parsePort(p);
    exposed[m.containerPort] = {};
    (bindings[m.containerPort] ??= []).push({ HostIp: m.hostIp, HostPort: m.hostPort });
  }
  const binds: string[] = [];
  const anon: Record<string, Record<string, never>> = {};
  for (const v of spec.volumes ?? []) {
    if (v.includes(":")) binds.push(v);
    else anon[v] = {};
  }
  const hostConfig: Docker.HostConfig = {
    Binds: binds.length ? binds : undefined,
    PortBindings: Object.keys(bindings).length ? bindings : undefined,
    NetworkMode: spec.network_mode,
    RestartPolicy: spec.restart_policy ? parseRestart(spec.restart_policy) : undefined,
    AutoRemove: spec.auto_remove ?? false,
    Memory: spec.memory !== undefined ? parseMemory(spec.memory) : undefined,
    NanoCpus: spec.cpus !== undefined ? Math.round(spec.cpus * 1e9) : undefined,
  };
  return {
    Image: spec.image,
    name: spec.name,
    Cmd: spec.cmd,
    Entrypoint: spec.entrypoint,
    Env: spec.env ? Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) : undefined,
    Labels: spec.labels,
    WorkingDir: spec.working_dir,
    User: spec.user,
    Hostname: spec.hostname,
    Tty: spec.tty ?? false,
    AttachStdout: true,
    AttachStderr: true,
    ExposedPorts: Object.keys(exposed).length ? exposed : undefined,
    Volumes: Object.keys(anon).length ? anon : undefined,
    HostConfig: hostConfig,
  };
}

/** Options for {@link runContainer}. */
export interface RunOptions {
  onPullProgress?: PullProgress | undefined;
  /** Where the logs go (default: a Capture without a store). */
  logs?: Capture | undefined;
  /** How long to watch a started container before describing it (default 700 ms). */
  settleMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Creates and starts a container (pulling the image when missing), optionally waiting. */
export async function runContainer(
  host: DockerHost,
  spec: RunSpec,
  options: RunOptions = {},
): Promise<RunResult> {
  const body = createOptions(spec);
  const create = () =>
    host.use(`create a container from ${spec.image}`, async (d) => {
      try {
        return { c: await d.createContainer(body), missing: false };
      } catch (err) {
        if (
          isEngineError(err) && err.statusCode === 404 &&
          /no such image/i.test(JSON.stringify(err.json ?? err.message))
        ) {
          return { c: undefined, missing: true };
        }
        throw err;
      }
    }, "check image and spec");
  let made = await create();
  if (made.missing) {
    if (spec.pull_if_missing === false) {
      throw new RsmError(
        "NOT_FOUND",
        `Cannot run ${spec.image}: the image is not on this engine; pull it with docker_image_pull or set pull_if_missing: true`,
      );
    }
    try {
      await pullImage(host, spec.image, {
        ...(options.onPullProgress ? { onProgress: options.onPullProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new RsmError(
        "NOT_FOUND",
        `Cannot run ${spec.image}: the image is not on this engine and pulling it failed (${msg})`,
      );
    }
    made = await create();
  }
  const c = made.c!;
  const id = c.id.slice(0, 12);
  const out = options.logs ?? new Capture();
  const result = await host.use(`start container ${spec.name ?? id}`, async (d) => {
    const container = d.getContainer(c.id);
    let attached: Promise<void> | undefined;
    let waited: Promise<{ StatusCode: number }> | undefined;
    if (spec.wait) {
      const stream = await container.attach({
        stream: true,
        stdout: true,
        stderr: true,
        logs: false, // attached before the start: a replay of the logs would repeat what streams
      }) as unknown as Duplex;
      attached = collect(stream, out, spec.tty ?? false);
      waited = container.wait(
        { condition: "next-exit", abortSignal: options.signal } as Record<string, unknown>,
      ) as Promise<{ StatusCode: number }>;
    }
    try {
      await container.start();
    } catch (err) {
      if (!spec.auto_remove) await container.remove({ force: true }).catch(() => {});
      throw err;
    }
    const result: RunResult = { id, state: "running" };
    if (spec.name) result.name = spec.name;
    if (waited && attached) {
      const w = await waited;
      await waitAtMost(attached, 5000);
      await out.end();
      result.state = "exited";
      result.exit_code = w.StatusCode;
      result.logs = out;
      return result;
    }
    // Watch it briefly, the way a person glances at `docker ps` and `docker logs` after a run.
    const info = await settle(container, options.settleMs ?? 700, options.signal).catch(() => null);
    if (!info) return result; // removed at once (auto_remove)
    // Podman's Docker API says "stopped" where Docker says "exited" for a finished container;
    // one word for one state, whichever engine answers.
    const status = info.State?.Status ?? "unknown";
    result.state = status === "stopped" && info.State?.Running === false ? "exited" : status;
    if (!info.State?.Running) result.exit_code = info.State?.ExitCode ?? null;
    result.ports = boundPorts(info.NetworkSettings?.Ports);
    return result;
  }, "check the spec (ports already in use, bad volume paths, command not found in the image)");
  if (!result.logs) {
    try {
      await containerLogs(host, c.id, { tail: "all", sink: out, signal: options.signal });
      result.logs = out;
    } catch { /* gone already (auto_remove): state and exit code still say what happened */ }
  }
  return result;
}

/** Inspects until the container stops running or `ms` have passed. */
async function settle(
  container: Docker.Container,
  ms: number,
  signal?: AbortSignal,
): Promise<Docker.ContainerInspectInfo> {
  const until = Date.now() + ms;
  for (;;) {
    const info = await container.inspect();
    if (!info.State?.Running || Date.now() >= until || signal?.aborted) return info;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `{"80/tcp": [{HostIp, HostPort}]}` → `["0.0.0.0:49153->80/tcp"]`. */
export function boundPorts(
  ports: Record<string, { HostIp: string; HostPort: string }[] | null> | undefined,
): string[] {
  const out: string[] = [];
  for (const [inner, binds] of Object.entries(ports ?? {})) {
    for (const b of binds ?? []) {
      const ip = b.HostIp.includes(":") ? `[${b.HostIp}]` : b.HostIp;
      out.push(`${ip}:${b.HostPort}->${inner}`);
    }
  }
  return out;
}

function collect(stream: Duplex, sink: Capture, tty: boolean): Promise<void> {
  const frames = new FrameSplitter((_which, body) => sink.push(body));
  return new Promise((resolve, reject) => {
    stream.on("data", (chunk: Uint8Array) => (tty ? sink.push(chunk) : frames.push(chunk)));
    stream.on("end", () => resolve());
    stream.on("close", () => resolve());
    stream.on("error", reject);
  });
}
