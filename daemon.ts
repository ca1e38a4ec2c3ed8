/**
 * `rsm daemon`: takes the lock, mints the token, serves MCP over loopback HTTP, writes the
 * handle, restores persisted state in the background, and on SIGTERM/SIGINT or `rsm stop`
 * persists state first, then closes everything (SPEC §2).
 */
import { type Level, Logger } from "./lib/log.ts";
import { ensureDir, resolvePaths, setting } from "./lib/paths.ts";
import { DEFAULT_MAX_OUTPUT, type Format } from "./lib/mcp/format.ts";
import { type Group, GROUPS } from "./lib/mcp/tool.ts";
import { type Handle, readHandle, writeHandle } from "./lib/http/handle.ts";
import { VERSION } from "./lib/version.ts";
import { errorMessage } from "./lib/errors.ts";
import { dirname, join } from "node:path";
import { type Front, serveFront } from "./lib/http/front.ts";

/** Flags of `rsm daemon` (each also has a REMOTE_SHELL_MCP_* env var). */
export interface DaemonFlags {
  addr?: string;
  state?: string;
  handle?: string;
  format?: string;
  logLevel?: string;
  /** Started by a launcher: output already goes to daemon.log, so no stderr logging. */
  detached?: boolean;
}

/** Parses the tool profile `ssh,shell,…` (SPEC §4.9); unknown names are an error. */
export function parseGroups(value: string | undefined): Set<Group> {
  if (!value || value.trim() === "" || value.trim() === "all") return new Set(GROUPS);
  const out = new Set<Group>();
  for (const raw of value.split(",")) {
    const g = raw.trim() as Group;
    if (!g) continue;
    if (!GROUPS.includes(g)) {
      throw new Error(
        `unknown tool group "${g}" in REMOTE_SHELL_MCP_TOOLS; use ${GROUPS.join(",")}`,
      );
    }
    out.add(g);
  }
  // the long tools of these groups hand back job ids: their job tools come with them
  if (["ssh", "shell", "file", "docker"].some((g) => out.has(g as Group))) out.add("job");
  return out;
}

/** Runs the daemon until it is stopped; returns the exit code. */
export async function runDaemon(flags: DaemonFlags): Promise<number> {
  const paths = resolvePaths({ state: flags.state, handle: flags.handle });
  const format = setting(flags.format, "FORMAT", "toon") as Format;
  if (format !== "toon" && format !== "json") {
    console.error(`rsm daemon: --format must be toon or json, not "${format}"`);
    return 2;
  }
  const level = setting(flags.logLevel, "LOG_LEVEL", "info") as Level;
  if (!["debug", "info", "warn", "error"].includes(level)) {
    console.error(`rsm daemon: --log-level must be debug, info, warn or error`);
    return 2;
  }
  let groups: Set<Group>;
  try {
    groups = parseGroups(setting(undefined, "TOOLS"));
  } catch (err) {
    console.error(`rsm daemon: ${errorMessage(err)}`);
    return 2;
  }
  const maxOutput = Number(setting(undefined, "MAX_OUTPUT", String(DEFAULT_MAX_OUTPUT)));
  if (!Number.isInteger(maxOutput) || maxOutput < 1024) {
    console.error("rsm daemon: REMOTE_SHELL_MCP_MAX_OUTPUT must be a whole number of bytes ≥ 1024");
    return 2;
  }
  const addr = setting(flags.addr, "ADDR", "127.0.0.1:0");
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr);
  if (!m) {
    console.error(`rsm daemon: --addr must be HOST:PORT (e.g. 127.0.0.1:0), not "${addr}"`);
    return 2;
  }
  const [hostname, port] = [m[1], Number(m[2])];

  await ensureDir(paths.dir);
  await Deno.mkdir(dirname(paths.handle), { recursive: true, mode: 0o700 });
  const log = new Logger({ file: paths.log, stderr: !flags.detached, level });

  // Single instance: exclusive lock on daemon.lock; the holder's pid is written inside.
  const lock = await Deno.open(paths.lock, { read: true, write: true, create: true, mode: 0o600 });
  if (!(await lock.tryLock(true))) {
    const pid = (await Deno.readTextFile(paths.lock).catch(() => "")).trim() || "unknown";
    console.error(`rsm daemon: daemon already running (pid ${pid})`);
    lock.close();
    return 1;
  }
  await lock.truncate(0);
  await lock.write(new TextEncoder().encode(`${Deno.pid}\n`));

  // Only now load the heavy parts (ssh2, dockerode, the SDK): the lock is taken first, so a
  // daemon that lost a start-up race exits at once instead of after loading everything.
  const { App } = await import("./lib/app.ts");
  const { buildRegistry } = await import("./lib/mcp/mod.ts");
  const { createRoutes } = await import("./lib/http/routes.ts");

  const token = Array.from(crypto.getRandomValues(new Uint8Array(32)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const app = new App({ paths, log, format, maxOutput, groups });
  const registry = buildRegistry(groups);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= shutdown();
    return stopping;
  };
  const registries = new Map<string, typeof registry>([[[...groups].sort().join(), registry]]);
  const registryFor = (g: ReadonlySet<Group>) => {
    const key = [...g].sort().join();
    let r = registries.get(key);
    if (!r) registries.set(key, r = buildRegistry(g));
    return r;
  };
  const routes = createRoutes({
    app,
    registry,
    token,
    boundHost: hostname,
    onShutdown: stop,
    registryFor,
  });

  // The HTTP server listens on a Unix socket only this user can reach; the TCP address is
  // served by the front (lib/http/front.ts), which passes on a connection only once a whole
  // request head arrived, so slow or stuck clients cannot pile up connections.
  const socketPath = await httpSocketPath(paths.dir);
  let server: Deno.HttpServer;
  let front: Front;
  try {
    front = serveFront({
      hostname,
      port,
      upstream: socketPath,
      onSlow: (why) => log.debug("closed a slow connection", { why }),
    });
  } catch (err) {
    console.error(`rsm daemon: cannot listen on ${addr}: ${errorMessage(err)}`);
    return 1;
  }
  try {
    server = Deno.serve({
      path: socketPath,
      onListen: () => {},
      onError: (err) => {
        log.error("http error", { error: errorMessage(err) });
        return new Response("internal error", { status: 500 });
      },
    }, (req) => routes.handle(req));
  } catch (err) {
    front.close();
    console.error(`rsm daemon: cannot listen on ${socketPath}: ${errorMessage(err)}`);
    return 1;
  }
  const bound = front.addr;
  const urlHost = bound.hostname.includes(":") ? `[${bound.hostname}]` : bound.hostname;
  const handle: Handle = {
    url: `http://${urlHost}:${bound.port}`,
    token,
    pid: Deno.pid,
    version: VERSION,
    started_at: new Date().toISOString(),
  };
  app.web.base = handle.url;
  await writeHandle(paths.handle, handle);
  log.info("daemon started", {
    pid: Deno.pid,
    url: handle.url,
    version: VERSION,
    tools: registry.names().length,
  });

  // The handle is how launchers find us: if it is deleted or overwritten, write it again.
  const handleWatch = setInterval(async () => {
    const h = await readHandle(paths.handle);
    if (!h || h.token !== token) {
      if (h && h.pid !== Deno.pid && h.token !== token) {
        log.warn("handle names another daemon; restoring ours", { other: h.pid });
      }
      await writeHandle(paths.handle, handle).catch((err) =>
        log.error("cannot rewrite handle", { error: errorMessage(err) })
      );
    }
  }, 2000);

  await app.start();

  async function shutdown(): Promise<void> {
    log.info("daemon stopping", { pid: Deno.pid });
    clearInterval(handleWatch);
    await app.close(); // persists state first
    await routes.close();
    front.close();
    await server.shutdown().catch(() => {});
    await Deno.remove(socketPath).catch(() => {});
    const h = await readHandle(paths.handle);
    if (h && h.token === token) await Deno.remove(paths.handle).catch(() => {});
    try {
      await lock.truncate(0);
      await lock.unlock();
    } catch { /* released on exit anyway */ }
    lock.close();
    log.info("daemon stopped", { pid: Deno.pid });
  }

  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    try {
      Deno.addSignalListener(sig, () => void stop());
    } catch { /* signal unsupported on this OS */ }
  }
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log.error("unhandled rejection", { error: errorMessage(e.reason) });
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    log.error("uncaught error", { error: errorMessage(e.error) });
  });

  await server.finished;
  await stopping;
  return 0;
}

/**
 * Where the HTTP server's Unix socket goes: `daemon.sock` in the config dir (mode 0700; the
 * lock is held, so a socket left by a killed daemon is ours to remove), or a private temp dir
 * when that path is too long for a socket address.
 */
async function httpSocketPath(dir: string): Promise<string> {
  const inDir = join(dir, "daemon.sock");
  if (new TextEncoder().encode(inDir).length <= 100) {
    await Deno.remove(inDir).catch(() => {});
    return inDir;
  }
  return join(await Deno.makeTempDir({ prefix: "rsm-http-" }), "daemon.sock");
}
