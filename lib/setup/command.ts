/**
 * The command line `rsm setup` registers: the compiled binary itself, or — when rsm runs from
 * source — `deno run` with the project's permission set and absolute paths, so a source
 * checkout works in a GUI client whose cwd and PATH are unknown.
 */
import { basename, delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServerCommand } from "./clients.ts";

/** Options for {@link serverCommand} (defaults: this process). */
export interface ServerCommandOptions {
  /** `Deno.execPath()`. */
  execPath?: string;
  /** `Deno.build.standalone`: true inside a `deno compile`d binary. */
  standalone?: boolean;
  /** Project root holding deno.json and main.ts (default: two dirs above this file). */
  root?: string;
  /** PATH to look for a stable name of the deno binary (default: env PATH). */
  path?: string;
}

/** True when the running binary is `deno` itself (rsm from source), not a compiled rsm. */
export function runningFromSource(options: ServerCommandOptions = {}): boolean {
  const standalone = options.standalone ??
    (Deno.build as { standalone?: boolean }).standalone;
  if (standalone !== undefined) return !standalone;
  const exe = basename(options.execPath ?? Deno.execPath()).toLowerCase();
  return exe === "deno" || exe === "deno.exe";
}

/**
 * `{command, args, env}` that starts `rsm stdio` the way this process was started.
 *
 * Compiled: `{"command": "<abs path to rsm>", "args": ["stdio"]}`.
 * From source: `deno run -q -P=rsm --config <root>/deno.json <root>/main.ts stdio`
 * (`--config` makes `-P=rsm` resolve from any working directory — checked by running it from
 * `/tmp`; `-q` keeps Deno's "permissions in config are experimental" notice off the client's
 * log).
 *
 * @example
 * ```ts
 * serverCommand(); // { command: "/usr/local/bin/rsm", args: ["stdio"] }
 * ```
 */
export function serverCommand(options: ServerCommandOptions = {}): ServerCommand {
  const execPath = options.execPath ?? Deno.execPath();
  if (!runningFromSource(options)) {
    return { command: execPath, args: ["stdio"], ...pathEnv(execPath) };
  }
  const root = options.root ?? fileURLToPath(new URL("../../", import.meta.url));
  const clean = root.replace(/[\\/]+$/, "");
  const deno = stableDenoPath(execPath, options.path ?? Deno.env.get("PATH") ?? "");
  return {
    command: deno,
    args: [
      "run",
      "-q",
      "-P=rsm",
      "--config",
      join(clean, "deno.json"),
      join(clean, "main.ts"),
      "stdio",
    ],
    ...pathEnv(deno),
  };
}

/**
 * `env.PATH` for the entry: the command's own dir first, then the usual system dirs.
 *
 * Why: the permission set allows running `rsm`/`deno` by name, and Deno resolves those names
 * on PATH when it starts; the launcher auto-spawns the daemon as itself. GUI clients start
 * servers with a minimal PATH (macOS apps get /usr/bin:/bin:/usr/sbin:/sbin), so without its
 * own dir on PATH a launcher in /usr/local/bin, ~/.local/bin or ~/.deno/bin could not spawn
 * the daemon (measured: "deno" not on PATH → the spawn fails; run permission for a name not
 * found on PATH → NotCapable). Fixed and deterministic, so a second run changes nothing.
 * Not written on Windows, where PATH has another form.
 */
function pathEnv(command: string): { env?: Record<string, string> } {
  if (Deno.build.os === "windows") return {};
  const dirs = [dirname(command), "/usr/local/bin", "/usr/bin", "/bin"];
  return { env: { PATH: [...new Set(dirs)].join(":") } };
}

/**
 * The first `deno` on PATH that is the same file as `execPath` (e.g. `/opt/homebrew/bin/deno`
 * instead of the versioned Cellar path it links to, which breaks on upgrade); else `execPath`.
 */
function stableDenoPath(execPath: string, path: string): string {
  let real: string;
  try {
    real = Deno.realPathSync(execPath);
  } catch {
    return execPath;
  }
  const exe = Deno.build.os === "windows" ? "deno.exe" : "deno";
  for (const dir of path.split(delimiter)) {
    if (!dir || !dir.startsWith("/") && Deno.build.os !== "windows") continue;
    const candidate = join(dir, exe);
    try {
      if (Deno.realPathSync(candidate) === real) return candidate;
    } catch {
      // not there
    }
  }
  return execPath;
}
