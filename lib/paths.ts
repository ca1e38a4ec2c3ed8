import { homedir } from "node:os";
import { join } from "node:path";

/** Where rsm keeps its files; see README "Configuration and files" */
export interface Paths {
  dir: string;
  handle: string;
  lock: string;
  state: string;
  knownHosts: string;
  log: string;
  audit: string;
}

/** The user's home directory (HOME first, so tests can point it at a temp dir). */
export function homeDir(): string {
  return Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? homedir();
}

/** The config dir: `$XDG_CONFIG_HOME/remote-shell-mcp` on Linux, Application Support on macOS. */
export function configDir(): string {
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  if (xdg) return join(xdg, "remote-shell-mcp");
  if (Deno.build.os === "darwin") {
    return join(homeDir(), "Library", "Application Support", "remote-shell-mcp");
  }
  if (Deno.build.os === "windows") {
    const appData = Deno.env.get("APPDATA");
    if (appData) return join(appData, "remote-shell-mcp");
  }
  return join(homeDir(), ".config", "remote-shell-mcp");
}

/**
 * Resolves an option: the flag beats `REMOTE_SHELL_MCP_<NAME>` beats the default.
 *
 * @example
 * ```ts
 * import { setting } from "./paths.ts";
 *
 * // a command-line flag wins over REMOTE_SHELL_MCP_STATE and the default
 * console.assert(setting("/srv/rsm/state.json", "STATE", "/default") === "/srv/rsm/state.json");
 * ```
 */
export function setting(flag: string | undefined, name: string, fallback: string): string;
export function setting(flag: string | undefined, name: string): string | undefined;
export function setting(flag: string | undefined, name: string, fallback?: string) {
  if (flag !== undefined && flag !== "") return flag;
  const env = Deno.env.get(`REMOTE_SHELL_MCP_${name}`);
  if (env !== undefined && env !== "") return env;
  return fallback;
}

/** All file paths, with `--state` / `--handle` overrides applied (flag, then env, then default). */
export function resolvePaths(
  overrides: { state?: string | undefined; handle?: string | undefined } = {},
): Paths {
  const dir = configDir();
  const handle = setting(overrides.handle, "HANDLE", join(dir, "daemon.json"));
  return {
    dir,
    handle,
    lock: join(dir, "daemon.lock"),
    state: setting(overrides.state, "STATE", join(dir, "state.json")),
    knownHosts: join(dir, "known_hosts"),
    log: join(dir, "daemon.log"),
    audit: join(dir, "audit.log"),
  };
}

/** Creates the config dir (0700) and tightens its mode if it already existed. */
export async function ensureDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  if (Deno.build.os !== "windows") await Deno.chmod(dir, 0o700);
}
