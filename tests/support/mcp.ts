/**
 * Drives rsm the way MCP clients do: the official SDK `Client` over `StdioClientTransport`
 * spawning `rsm stdio` (from source, with the permission set of deno.json).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  type CallToolResult,
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
} from "@modelcontextprotocol/sdk/types.js";
import { join } from "node:path";
import { ROOT, run } from "./env.ts";

/** The command line that runs rsm from source, as `deno task rsm` does. */
export const RSM_CMD: [string, ...string[]] = [
  "deno",
  "run",
  "-q",
  "-P=rsm",
  join(ROOT, "main.ts"),
];

/** Options for {@link startRsm}. */
export interface StartOptions {
  /** Extra launcher args after `stdio`. */
  args?: string[];
  /** Ask for JSON output (REMOTE_SHELL_MCP_FORMAT=json) so results parse with JSON.parse. */
  json?: boolean;
  /** Stderr of the launcher: "inherit" to see it, default "pipe" (ignored). */
  stderr?: "inherit" | "pipe";
  /**
   * Declare elicitation support (`{form: {}, url: {}}` or a part) and answer each request with
   * `onElicit`. Without it the client declares no elicitation at all.
   */
  elicitation?: { form?: Record<string, never>; url?: Record<string, never> };
  onElicit?: (params: ElicitRequest["params"]) => Promise<ElicitResult> | ElicitResult;
}

/** A connected MCP client talking to `rsm stdio`. */
export interface RsmClient extends AsyncDisposable {
  client: Client;
  transport: StdioClientTransport;
  env: Record<string, string>;
  /** Calls a tool; returns its text; throws if the result is an error. */
  call(name: string, args?: Record<string, unknown>, options?: CallOptions): Promise<string>;
  /** Calls a tool and parses its JSON text (needs `json: true`). */
  // deno-lint-ignore no-explicit-any
  callJson<T = any>(
    name: string,
    args?: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<T>;
  /** Calls a tool that must fail; returns the error text. */
  callError(name: string, args?: Record<string, unknown>, options?: CallOptions): Promise<string>;
  /** Raw tool result. */
  callRaw(
    name: string,
    args?: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<CallToolResult>;
  /** Closes the client (the launcher exits; the daemon stays). */
  close(): Promise<void>;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  timeout?: number;
  onprogress?: (p: { progress: number; total?: number; message?: string }) => void;
}

/** Spawns `rsm stdio` with `env` (start from a full env; see tests/support/env.ts) and connects. */
export async function startRsm(
  env: Record<string, string>,
  options: StartOptions = {},
): Promise<RsmClient> {
  const fullEnv = { ...env };
  if (options.json) fullEnv.REMOTE_SHELL_MCP_FORMAT = "json";
  const transport = new StdioClientTransport({
    command: RSM_CMD[0],
    args: [...RSM_CMD.slice(1), "stdio", ...(options.args ?? [])],
    env: fullEnv,
    cwd: ROOT,
    stderr: options.stderr ?? "pipe",
  });
  const client = new Client(
    { name: "rsm-tests", version: "1.0.0" },
    options.elicitation ? { capabilities: { elicitation: options.elicitation } } : {},
  );
  if (options.elicitation && options.onElicit) {
    const answer = options.onElicit;
    client.setRequestHandler(ElicitRequestSchema, (req: ElicitRequest) => answer(req.params));
  }
  await client.connect(transport);
  const callRaw = async (name: string, args: Record<string, unknown> = {}, o: CallOptions = {}) =>
    (await client.callTool({ name, arguments: args }, undefined, {
      signal: o.signal,
      timeout: o.timeout ?? 600_000,
      onprogress: o.onprogress,
      resetTimeoutOnProgress: true,
    })) as CallToolResult;
  const text = (r: CallToolResult) =>
    r.content.map((c: { type: string; text?: string }) => (c.type === "text" ? c.text : "")).join(
      "",
    );
  const self: RsmClient = {
    client,
    transport,
    env: fullEnv,
    callRaw,
    async call(name, args, o) {
      const r = await callRaw(name, args, o);
      if (r.isError) throw new Error(`${name} failed: ${text(r)}`);
      return text(r);
    },
    async callJson(name, args, o) {
      return JSON.parse(await self.call(name, args, o));
    },
    async callError(name, args, o) {
      const r = await callRaw(name, args, o);
      if (!r.isError) throw new Error(`${name} was expected to fail but returned: ${text(r)}`);
      return text(r);
    },
    async close() {
      await client.close().catch(() => {});
    },
    async [Symbol.asyncDispose]() {
      await self.close();
    },
  };
  return self;
}

/** Runs `rsm ARGS…` from source with `env`; returns exit code and output. */
export function rsmCli(
  env: Record<string, string>,
  args: string[],
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(RSM_CMD[0], [...RSM_CMD.slice(1), ...args], { env, cwd: ROOT, stdin });
}

/** The daemon handle in the config dir under `env`, or null. */
export async function readHandle(
  env: Record<string, string>,
): Promise<{ url: string; token: string; pid: number; version: string } | null> {
  const config = env.XDG_CONFIG_HOME;
  const file = env.REMOTE_SHELL_MCP_HANDLE ??
    (config !== undefined ? join(config, "remote-shell-mcp", "daemon.json") : undefined);
  if (file === undefined) {
    throw new Error("readHandle: env has neither REMOTE_SHELL_MCP_HANDLE nor XDG_CONFIG_HOME");
  }
  try {
    return JSON.parse(await Deno.readTextFile(file));
  } catch {
    return null;
  }
}

/** Whether a process with `pid` exists. */
export function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Stops the daemon of `env` (SIGTERM, then SIGKILL after 10 s) and waits until it is gone. */
export async function stopDaemon(env: Record<string, string>): Promise<void> {
  const h = await readHandle(env);
  const pids = new Set<number>();
  if (h) pids.add(h.pid);
  // also any daemon started with this config dir whose handle is gone
  const ps = await run("pgrep", ["-f", "main.ts daemon"]).catch(() => null);
  for (const line of ps?.stdout.split("\n") ?? []) {
    const pid = Number(line.trim());
    if (!pid) continue;
    try {
      const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
      if (environ.includes(`XDG_CONFIG_HOME=${env.XDG_CONFIG_HOME}\0`)) pids.add(pid);
    } catch { /* gone */ }
  }
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone */ }
  }
  const deadline = Date.now() + 10_000;
  for (const pid of pids) {
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
}

/**
 * A temp env plus a connected client; disposing closes the client, stops the daemon and
 * removes the temp dirs. The usual start of an end-to-end test:
 *
 * @example
 * ```ts
 * await using rsm = await rsmSession({ json: true });
 * const status = await rsm.callJson("status");
 * ```
 */
export async function rsmSession(
  options: StartOptions & { extraEnv?: Record<string, string> } = {},
): Promise<RsmClient & { tmp: import("./env.ts").TempEnv }> {
  const { tempEnv } = await import("./env.ts");
  const tmp = await tempEnv(options.extraEnv);
  const c = await startRsm(tmp.env, options);
  const close = c.close;
  return Object.assign(c, {
    tmp,
    async [Symbol.asyncDispose]() {
      await close();
      await stopDaemon(tmp.env);
      await tmp[Symbol.asyncDispose]();
    },
  });
}
