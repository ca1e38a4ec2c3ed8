/** Container listing and lifecycle (README "Docker"). */
import type Docker from "dockerode";
import type { DockerHost } from "./host.ts";
import { isEngineError } from "./errors.ts";

/** ContainerRow (README "Docker"). */
export interface ContainerRow {
  id: string;
  name: string;
  image: string;
  state: string;
  status: string;
  ports: string;
}

/** Options for {@link listContainers}. */
export interface ListContainersOptions {
  all?: boolean | undefined;
  limit?: number | undefined;
  /** Engine filters, e.g. `{name: ["web"], status: ["running"], label: ["a=b"]}`. */
  filters?: Record<string, string[]> | undefined;
  signal?: AbortSignal | undefined;
}

/** `127.0.0.1:8080->80/tcp, 443/tcp`, like `docker ps`. */
export function formatPorts(ports: Docker.Port[] | undefined): string {
  if (!ports?.length) return "";
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of ports) {
    const ip = p.IP ? (p.IP.includes(":") ? `[${p.IP}]` : p.IP) : "";
    const s = p.PublicPort
      ? `${ip ? `${ip}:` : ""}${p.PublicPort}->${p.PrivatePort}/${p.Type}`
      : `${p.PrivatePort}/${p.Type}`;
    if (!seen.has(s)) {
      seen.add(s);
      out.push(s);
    }
  }
  return out.join(", ");
}

/** Lists containers as flat rows. */
export function listContainers(
  host: DockerHost,
  options: ListContainersOptions = {},
): Promise<ContainerRow[]> {
  return host.use("list containers", async (d) => {
    // only defined keys: `limit=&filters=` in the query is an error for Podman
    const query: Record<string, unknown> = {
      all: options.all ?? false,
      abortSignal: options.signal,
    };
    if (options.limit !== undefined) query.limit = options.limit;
    if (options.filters) query.filters = JSON.stringify(options.filters);
    const list = await d.listContainers(query as Docker.ContainerListOptions);
    return list.map((c) => ({
      id: c.Id.slice(0, 12),
      name: (c.Names?.[0] ?? "").replace(/^\//, ""),
      image: c.Image,
      state: c.State,
      status: c.Status,
      ports: formatPorts(c.Ports),
    }));
  });
}

/** Docker's inspect object. */
export function inspectContainer(
  host: DockerHost,
  container: string,
  signal?: AbortSignal,
): Promise<Docker.ContainerInspectInfo> {
  return host.use(
    `inspect container ${container}`,
    (d) =>
      d.getContainer(container).inspect({ abortSignal: signal } as Docker.ContainerInspectOptions),
  );
}

/** Lifecycle actions on one container. */
export type LifecycleAction =
  | { action: "start" }
  | { action: "stop"; timeoutSec?: number | undefined }
  | { action: "restart"; timeoutSec?: number | undefined }
  | { action: "kill"; signal?: string | undefined }
  | { action: "remove"; force?: boolean | undefined; removeVolumes?: boolean | undefined };

/**
 * Runs one lifecycle action. Starting a running container or stopping a stopped one is not an
 * error (the engine's 304 means "already so").
 */
export function containerAction(
  host: DockerHost,
  container: string,
  a: LifecycleAction,
): Promise<void> {
  const verb = a.action;
  return host.use(`${verb} container ${container}`, async (d) => {
    const c = d.getContainer(container);
    try {
      switch (a.action) {
        case "start":
          await c.start();
          break;
        case "stop":
          await c.stop(a.timeoutSec !== undefined ? { t: a.timeoutSec } : {});
          break;
        case "restart":
          await c.restart(a.timeoutSec !== undefined ? { t: a.timeoutSec } : {});
          break;
        case "kill":
          await c.kill(a.signal ? { signal: a.signal } : {});
          break;
        case "remove":
          await c.remove({ force: a.force ?? false, v: a.removeVolumes ?? false });
          break;
      }
    } catch (err) {
      if (isEngineError(err) && err.statusCode === 304) return; // already started / stopped
      throw err;
    }
  });
}
