import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { type Handle, readHandle } from "../handle.ts";
import { checkHealth } from "./health.ts";
import { ensureDir, type Paths } from "../../paths.ts";
import { RsmError } from "../../errors.ts";
import { proxyCommandEnabled } from "../../ssh/proxy_command.ts";

/**
 * The argv that starts this same rsm as `rsm ARGS…`: the compiled binary itself, or — when
 * running from source — `deno run -P=rsm --config <root>/deno.json <root>/main.ts`, so the
 * daemon gets exactly the permission set the launcher has; `-P=rsm-proxy` (which may also run
 * `sh`) when REMOTE_SHELL_MCP_PROXY_COMMAND turns ssh_config ProxyCommand on.
 */
export function selfCommand(args: string[]): { cmd: string; args: string[] } {
  const exe = Deno.execPath();
  const base = exe.split(/[\\/]/).pop() ?? "";
  if (/^deno(\.exe)?$/.test(base)) {
    const main = fileURLToPath(Deno.mainModule);
    const root = dirname(main);
    // By name: the permission set allows "deno" as resolved on PATH (see deno.json).
    return {
      cmd: "deno",
      args: [
        "run",
        "-q",
        `-P=${proxyCommandEnabled() ? "rsm-proxy" : "rsm"}`,
        "--config",
        `${root}/deno.json`,
        main,
        ...args,
      ],
    };
  }
  return { cmd: exe, args };
}

/** Options for {@link findOrSpawnDaemon}. */
export interface SpawnOptions {
  /** Do not start a daemon when none answers. */
  noSpawn?: boolean | undefined;
  /** How long to wait for a spawned daemon. Default 10 s. */
  timeoutMs?: number | undefined;
  /** Extra args for `rsm daemon` (e.g. `--state`). */
  daemonArgs?: string[] | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Finds a healthy daemon through the handle file, or starts one detached (own session and
 * process group, stdin /dev/null, output appended to daemon.log) and waits for its handle.
 * Two racing callers end with one daemon: the loser's daemon fails the lock and exits.
 */
export async function findOrSpawnDaemon(paths: Paths, options: SpawnOptions = {}): Promise<Handle> {
  const existing = await readHandle(paths.handle);
  if (existing && await checkHealth(existing)) return existing;
  if (options.noSpawn) {
    throw new RsmError(
      "NO_DAEMON",
      `Cannot reach the rsm daemon: no healthy daemon behind ${paths.handle}; start one with ` +
        "`rsm daemon` or drop --no-spawn",
    );
  }
  await ensureDir(paths.dir);
  spawnDaemon(paths, options.daemonArgs ?? []);
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
    const h = await readHandle(paths.handle);
    if (h && await checkHealth(h)) return h;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new RsmError(
    "NO_DAEMON",
    `Cannot start the rsm daemon: no healthy handle at ${paths.handle} after ${
      (options.timeoutMs ?? 10_000) / 1000
    } s; see ${paths.log}`,
  );
}

/** Starts `rsm daemon --detached` in the background, fully detached from this process. */
export function spawnDaemon(paths: Paths, extraArgs: string[]): void {
  const { cmd, args } = selfCommand(["daemon", "--detached", ...extraArgs]);
  const fd = openSync(paths.log, "a", 0o600);
  try {
    let child: ReturnType<typeof spawn> | undefined;
    try {
      child = spawn(cmd, args, {
        stdio: ["ignore", fd, fd],
        detached: true,
        env: daemonEnv(),
      });
    } catch (err) {
      throw cannotStart(cmd, err);
    }
    if (!child || child.pid === undefined) throw cannotStart(cmd);
    child.on("error", () => {});
    child.unref();
  } finally {
    closeSync(fd);
  }
}

/**
 * The spawned daemon's environment: the launcher's, minus the tool profile and format, which
 * are per client (each launcher sends its own with its MCP session), not the daemon's.
 */
function daemonEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.REMOTE_SHELL_MCP_TOOLS;
  delete env.REMOTE_SHELL_MCP_FORMAT;
  return env;
}

function cannotStart(cmd: string, cause?: unknown): RsmError {
  return new RsmError(
    "NO_DAEMON",
    `Cannot start the rsm daemon: "${cmd}" could not be run (is it on PATH? GUI clients often ` +
      `start servers with a minimal PATH — add rsm's directory to the server's env.PATH)`,
    { cause },
  );
}
