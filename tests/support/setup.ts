/**
 * Helpers for `rsm setup` tests: run it in-process against a temp HOME with captured output.
 */
import { join } from "node:path";
import { runSetup, type ServerCommand } from "../../lib/setup/mod.ts";

/** What one in-process `rsm setup` run printed and returned. */
export interface SetupRun {
  code: number;
  out: string;
  err: string;
}

/** Options for {@link setupIn}. */
export interface SetupInOptions {
  os?: typeof Deno.build.os;
  /** XDG_CONFIG_HOME (unset by default). */
  xdg?: string;
  /** Extra env vars (CODEX_HOME, …). */
  env?: Record<string, string>;
  isTTY?: boolean;
  /** Answer to the prompt (only asked when isTTY). */
  answer?: boolean;
  command?: ServerCommand;
  now?: Date;
}

/** The command the tests register unless they say otherwise. */
export const RSM_BIN: ServerCommand = { command: "/opt/rsm/bin/rsm", args: ["stdio"] };

/** Runs `rsm setup ARGS` in-process with HOME=`home`. */
export async function setupIn(
  home: string,
  args: string[],
  options: SetupInOptions = {},
): Promise<SetupRun & { asked: boolean }> {
  const vars: Record<string, string | undefined> = {
    HOME: home,
    XDG_CONFIG_HOME: options.xdg,
    ...options.env,
  };
  let out = "";
  let err = "";
  let asked = false;
  const now = options.now;
  const code = await runSetup(args, {
    env: { get: (k) => vars[k], os: options.os ?? "linux" },
    out: (t) => out += t + "\n",
    err: (t) => err += t + "\n",
    isTTY: options.isTTY ?? false,
    confirm: () => {
      asked = true;
      return options.answer ?? false;
    },
    ...(now ? { now: () => now } : {}),
    command: options.command ?? RSM_BIN,
  });
  return { code, out, err, asked };
}

/** Makes a temp HOME; `await using` removes it. */
export async function tempHome(): Promise<{ home: string } & AsyncDisposable> {
  const home = await Deno.makeTempDir({ prefix: "rsm-setup-" });
  return {
    home,
    async [Symbol.asyncDispose]() {
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

/** Writes `text` to `home/rel`, creating dirs. */
export async function put(home: string, rel: string, text: string): Promise<string> {
  const path = join(home, rel);
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text);
  return path;
}

/** Every file under `dir` (relative paths), sorted — to see that nothing else was written. */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}
