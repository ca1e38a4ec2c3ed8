/**
 * Test environment helpers: temp HOME / XDG_CONFIG_HOME, capability checks, and the rule that
 * a missing capability skips with a reason on a laptop but fails under RSM_TEST_REQUIRE_ALL=1.
 */
import { join } from "node:path";

/** True when CI demands that nothing is skipped. */
export const REQUIRE_ALL = Deno.env.get("RSM_TEST_REQUIRE_ALL") === "1";

/** The project root (where deno.json lives). */
export const ROOT: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** A temp dir tree for one test: `home`, `config` (XDG_CONFIG_HOME), and the rsm dir. */
export interface TempEnv {
  root: string;
  home: string;
  xdg: string;
  /** `$XDG_CONFIG_HOME/remote-shell-mcp` */
  rsmDir: string;
  /** Full environment with HOME/XDG_CONFIG_HOME overridden (and extra vars). */
  env: Record<string, string>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Makes a fresh temp HOME and config dir; `await using` removes it. */
export async function tempEnv(extra: Record<string, string> = {}): Promise<TempEnv> {
  const root = await Deno.makeTempDir({ prefix: "rsm-test-" });
  await Deno.chmod(root, 0o755); // sshd and test users must be able to traverse it
  const home = join(root, "home");
  const xdg = join(root, "config");
  await Deno.mkdir(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  await Deno.mkdir(xdg, { recursive: true });
  const base: Record<string, string> = Deno.env.toObject();
  for (const k of Object.keys(base)) {
    if (k.startsWith("REMOTE_SHELL_MCP_") || k === "SSH_AUTH_SOCK" || k === "DOCKER_HOST") {
      delete base[k];
    }
  }
  // Keep Deno's module cache where it is: a new HOME would make every spawned deno fetch
  // every npm package again.
  const denoDir = base.DENO_DIR ?? join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");
  const env = { ...base, DENO_DIR: denoDir, HOME: home, XDG_CONFIG_HOME: xdg, ...extra };
  return {
    root,
    home,
    xdg,
    rsmDir: join(xdg, "remote-shell-mcp"),
    env,
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/** Whether we are root (netns, useradd, dockerd need it). */
export function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/** Whether `cmd` is on PATH. */
export async function have(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * `Deno.test` that needs something: when `missing` is a reason string, the test is skipped
 * with that reason on a laptop, and fails with it under RSM_TEST_REQUIRE_ALL=1.
 *
 * @example
 * ```ts
 * testIf(await need(["sshd"]), "ssh_exec runs a command", async () => { ... });
 * ```
 */
export function testIf(
  missing: string | null,
  name: string,
  fn: (t: Deno.TestContext) => Promise<void> | void,
  options: { sanitize?: boolean } = {},
): void {
  const sanitize = options.sanitize ?? false;
  if (missing && !REQUIRE_ALL) {
    Deno.test({ name: `${name} (skipped: ${missing})`, ignore: true, fn });
    return;
  }
  Deno.test({
    name,
    sanitizeOps: sanitize,
    sanitizeResources: sanitize,
    fn: missing
      ? () => {
        throw new Error(`required for this test but missing: ${missing}`);
      }
      : fn,
  });
}

/**
 * An end-to-end test (real processes, the SDK client): sanitizers off, because the SDK and
 * child-process plumbing keep timers and pipes that outlive one test by design; the test
 * itself must still stop every process it started.
 */
export function e2eTest(name: string, fn: (t: Deno.TestContext) => Promise<void> | void): void {
  testIf(null, name, fn);
}

/** Returns a reason string when one of `cmds` is missing or root is needed, else null. */
export async function need(cmds: string[], root = false): Promise<string | null> {
  if (root && !isRoot()) return "needs root";
  for (const c of cmds) if (!(await have(c))) return `needs ${c}`;
  return null;
}

/** Runs a command, returns {code, stdout, stderr} as text. */
export async function run(
  cmd: string,
  args: string[],
  options: {
    env?: Record<string, string> | undefined;
    stdin?: string | undefined;
    cwd?: string | undefined;
  } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    clearEnv: options.env !== undefined,
    stdin: options.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
