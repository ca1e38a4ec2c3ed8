/**
 * `rsm daemon`: takes the lock, mints the token, serves MCP over loopback HTTP, writes the
 * handle, restores persisted state in the background, and on SIGTERM/SIGINT or `rsm stop`
 * persists state first, then closes everything (docs/architecture.md "The daemon").
 */
import { type Level, Logger } from "./lib/log.ts";
import { ensureDir, resolvePaths, setting } from "./lib/paths.ts";
import { DEFAULT_MAX_OUTPUT, type Format, type Group, parseGroups } from "./lib/config.ts";
import { type Handle, readHandle, writeHandle } from "./lib/http/handle.ts";
import { VERSION } from "./lib/version.ts";
import { errorMessage } from "./lib/errors.ts";
import { dirname, join } from "node:path";
import { type Front, serveFront } from "./lib/http/front.ts";
import { randomHex } from "./lib/random.ts";

/** Flags of `rsm daemon` (each also has a REMOTE_SHELL_MCP_* env var). */
export interface DaemonFlags {
  addr?: string | undefined;
  state?: string | undefined;
  handle?: string | undefined;
  format?: string | undefined;
  logLevel?: string | undefined;
  /** Started by a launcher: output already goes to daemon.log, so no stderr logging. */
  detached?: boolean | undefined;
}

/** The daemon's settings from flags and REMOTE_SHELL_MCP_* variables, once checked. */
interface DaemonSettings {
  paths: ReturnType<typeof resolvePaths>;
  format: Format;
  level: Level;
  groups: Set<Group>;
  maxOutput: number;
  addr: string;
  hostname: string;
  port: number;
}

/** Reads and checks the settings; prints what is wrong and gives exit code 2 instead. */
function daemonSettings(flags: DaemonFlags): DaemonSettings | number {
  const fail = (why: string) => {
    console.error(`rsm daemon: ${why}`);
    return 2;
  };
  const paths = resolvePaths({ state: flags.state, handle: flags.handle });
  const format = setting(flags.format, "FORMAT", "toon") as Format;
  if (format !== "toon" && format !== "json") {
    return fail(`--format must be toon or json, not "${format}"`);
  }
  const level = setting(flags.logLevel, "LOG_LEVEL", "info") as Level;
  if (!["debug", "info", "warn", "error"].includes(level)) {
    return fail(`--log-level must be debug, info, warn or error`);
  }
  let groups: Set<Group>;
  try {
    groups = parseGroups(setting(undefined, "TOOLS"));
  } catch (err) {
    return fail(errorMessage(err));
  }
  const maxOutput = Number(setting(undefined, "MAX_OUTPUT", String(DEFAULT_MAX_OUTPUT)));
  if (!Number.isInteger(maxOutput) || maxOutput < 1024) {
    return fail("REMOTE_SHELL_MCP_MAX_OUTPUT must be a whole number of bytes ≥ 1024");
  }
  const addr = setting(flags.addr, "ADDR", "127.0.0.1:0");
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr);
  if (!m) return fail(`--addr must be HOST:PORT (e.g. 127.0.0.1:0), not "${addr}"`);
  return { paths, format, level, groups, maxOutput, addr, hostname: m[1]!, port: Number(m[2]) };
}

/** Single instance: an exclusive lock on daemon.lock with the holder's pid inside; or exit 1. */
async function takeLock(lockPath: string): Promise<Deno.FsFile | number> {
  const lock = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  if (!(await lock.tryLock(true))) {
    const pid = (await Deno.readTextFile(lockPath).catch(() => "")).trim() || "unknown";
    console.error(`rsm daemon: daemon already running (pid ${pid})`);
    lock.close();
    return 1;
  }
  await lock.truncate(0);
  await lock.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return lock;
}

/**
 * The HTTP server listens on a Unix socket only this user can reach; the TCP address is
 * served by the front (lib/http/front.ts), which passes on a connection only once a whole
 * request head arrived, so slow or stuck clients cannot pile up connections.
 */
async function listen(
  settings: DaemonSettings,
  log: Logger,
  handler: (req: Request) => Response | Promise<Response>,
): Promise<{ front: Front; server: Deno.HttpServer; socketPath: string } | number> {
  const socketPath = await httpSocketPath(settings.paths.dir);
  let front: Front;
  try {
    front = serveFront({
      hostname: settings.hostname,
      port: settings.port,
      upstream: socketPath,
      onSlow: (why) => log.debug("closed a slow connection", { why }),
    });
  } catch (err) {
    console.error(`rsm daemon: cannot listen on ${settings.addr}: ${errorMessage(err)}`);
    return 1;
  }
  try {
    const server = Deno.serve({
      path: socketPath,
      onListen: () => {},
      onError: (err) => {
        log.error("http error", { error: errorMessage(err) });
        return new Response("internal error", { status: 500 });
      },
    }, handler);
    return { front, server, socketPath };
  } catch (err) {
    front.close();
    console.error(`rsm daemon: cannot listen on ${socketPath}: ${errorMessage(err)}`);
    return 1;
  }
}

/** The handle is how launchers find us: if it is deleted or overwritten, write it again. */
function watchHandle(
  path: string,
  handle: Handle,
  log: Logger,
): ReturnType<typeof setInterval> {
  return setInterval(async () => {
    const h = await readHandle(path);
    if (!h || h.token !== handle.token) {
      if (h && h.pid !== Deno.pid && h.token !== handle.token) {
        log.warn("handle names another daemon; restoring ours", { other: h.pid });
      }
      await writeHandle(path, handle).catch((err) =>
        log.error("cannot rewrite handle", { error: errorMessage(err) })
      );
    }
  }, 2000);
}

/** Stops on SIGTERM/SIGINT; logs stray errors instead of dying of them. */
function onSignalsAndStrays(stop: () => void, log: Logger) {
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    try {
      Deno.addSignalListener(sig, stop);
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
}

/** Runs the daemon until it is stopped; returns the exit code. */
export async function runDaemon(flags: DaemonFlags): Promise<number> {
  const settings = daemonSettings(flags);
  if (typeof settings === "number") return settings;
  const { paths, format, groups, maxOutput } = settings;
  await ensureDir(paths.dir);
  await Deno.mkdir(dirname(paths.handle), { recursive: true, mode: 0o700 });
  const log = new Logger({ file: paths.log, stderr: !flags.detached, level: settings.level });
  const taken = await takeLock(paths.lock);
  if (typeof taken === "number") return taken;
  const lock: Deno.FsFile = taken;

  // Only now load the heavy parts (ssh2, dockerode, the SDK): the lock is taken first, so a
  // daemon that lost a start-up race exits at once instead of after loading everything.
  const { App } = await import("./lib/app.ts");
  const { buildRegistry } = await import("./lib/mcp/mod.ts");
  const { createRoutes, sessionServerFor } = await import("./lib/http/routes.ts");
  const { serveStream } = await import("./lib/http/stream.ts");

  const token = randomHex(32);
  const app = new App({ paths, log, format, maxOutput, groups });
  const registry = buildRegistry(groups, app.shells.backends);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= shutdown();
    return stopping;
  };
  const registries = new Map<string, typeof registry>([[[...groups].sort().join(), registry]]);
  const registryFor = (g: ReadonlySet<Group>) => {
    const key = [...g].sort().join();
    let r = registries.get(key);
    if (!r) registries.set(key, r = buildRegistry(g, app.shells.backends));
    return r;
  };
  const routes = createRoutes({
    app,
    registry,
    token,
    boundHost: settings.hostname,
    onShutdown: stop,
    registryFor,
  });
  const listening = await listen(settings, log, (req) => routes.handle(req));
  if (typeof listening === "number") return listening;
  const { front, server, socketPath } = listening;
  const streamPath = join(dirname(socketPath), "mcp.sock");
  const stream = await serveStream({
    path: streamPath,
    token,
    log,
    open: (tools, format) => sessionServerFor({ app, registry, registryFor }, tools, format),
  }).catch((err) => noStream(log, streamPath, err));
  const bound = front.addr;
  const urlHost = bound.hostname.includes(":") ? `[${bound.hostname}]` : bound.hostname;
  const handle: Handle = {
    url: `http://${urlHost}:${bound.port}`,
    token,
    pid: Deno.pid,
    version: VERSION,
    started_at: new Date().toISOString(),
    socket: socketPath,
    ...(stream ? { mcp_socket: streamPath } : {}),
  };
  app.web.base = handle.url;
  await writeHandle(paths.handle, handle);
  log.info("daemon started", {
    pid: Deno.pid,
    url: handle.url,
    version: VERSION,
    tools: registry.names().length,
  });
  const handleWatch = watchHandle(paths.handle, handle, log);
  await app.start();

  async function shutdown(): Promise<void> {
    log.info("daemon stopping", { pid: Deno.pid });
    clearInterval(handleWatch);
    await app.close(); // persists state first
    await routes.close();
    await stream?.close();
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

  onSignalsAndStrays(() => void stop(), log);
  await server.finished;
  await stopping;
  return 0;
}

/** Without the stream link, launchers use `/mcp` over daemon.sock or TCP. */
function noStream(log: Logger, path: string, err: unknown): null {
  log.warn("no stream link", { path, error: errorMessage(err) });
  return null;
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
