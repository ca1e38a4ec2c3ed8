/**
 * A raw `rsm stdio` process for tests that must write exact bytes to the launcher's stdin
 * (malformed lines, blank lines) and read its stdout line by line.
 */
import { ROOT } from "./env.ts";
import { RSM_CMD } from "./mcp.ts";

/** A launcher process with line-level access. */
export interface RawLauncher extends AsyncDisposable {
  child: Deno.ChildProcess;
  /** Writes text to stdin as is. */
  write(text: string): Promise<void>;
  /** Sends one JSON-RPC message as a line. */
  send(msg: unknown): Promise<void>;
  /** The next stdout line parsed as JSON (waits up to `timeoutMs`). */
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Reads messages until one has `id` (others are returned too). */
  until(id: number | string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Closes stdin and waits for exit; returns the exit code. */
  closeStdin(): Promise<number>;
}

/** Spawns `rsm stdio` with `env`. */
export function rawLauncher(env: Record<string, string>, args: string[] = []): RawLauncher {
  const child = new Deno.Command(RSM_CMD[0], {
    args: [...RSM_CMD.slice(1), "stdio", ...args],
    env,
    clearEnv: true,
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const enc = new TextEncoder();
  async function nextLine(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return line;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line from rsm stdio within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        lines.read(),
        new Promise<null>((res) => (timer = setTimeout(() => res(null), left))),
      ]);
      clearTimeout(timer);
      if (r === null) continue;
      if (r.done) throw new Error("rsm stdio closed stdout");
      buf += r.value;
    }
  }
  const self: RawLauncher = {
    child,
    async write(text) {
      await writer.write(enc.encode(text));
    },
    async send(msg) {
      await writer.write(enc.encode(JSON.stringify(msg) + "\n"));
    },
    async next(timeoutMs = 60_000) {
      return JSON.parse(await nextLine(timeoutMs));
    },
    async until(id, timeoutMs = 60_000) {
      while (true) {
        const m = await self.next(timeoutMs);
        if (m.id === id) return m;
      }
    },
    async closeStdin() {
      await writer.close().catch(() => {});
      const status = await child.status;
      return status.code;
    },
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await lines.cancel().catch(() => {});
    },
  };
  return self;
}

/** The client's `initialize` request as a real client sends it. */
export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "raw-test", version: "1" },
  },
};
