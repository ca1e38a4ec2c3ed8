/**
 * Helpers of the reliability and security suite: a line-level launcher client that keeps
 * many requests in flight (answers matched by id), a `ps` sampler, the daemon's RSS, and the
 * secrets scan (no test secret in any file under the config dir, nor in captured `ps` output).
 */
import { join } from "node:path";
import { ROOT } from "./env.ts";
import { RSM_CMD } from "./mcp.ts";
import { INITIALIZE } from "./raw_stdio.ts";

// deno-lint-ignore no-explicit-any
type Msg = any;

/** A raw `rsm stdio` with many requests in flight; see {@link lineClient}. */
export interface LineClient extends AsyncDisposable {
  child: Deno.ChildProcess;
  /** Sends `initialize` + `notifications/initialized`. */
  initialize(): Promise<Msg>;
  /** Sends a request and resolves with its answer (rejects after `timeoutMs`). */
  request(method: string, params: unknown, timeoutMs?: number): Promise<Msg>;
  /** Sends a line whose first `"id":ID` is replaced by a fresh id; resolves with its answer. */
  requestLine(line: string | Uint8Array, timeoutMs?: number): Promise<Msg>;
  /** `ps` output captured while this client ran. */
  psLog(): string;
  close(): Promise<void>;
}

/** Spawns `rsm stdio` with `env` and matches answers to requests by id. */
export function lineClient(env: Record<string, string>): LineClient {
  const child = new Deno.Command(RSM_CMD[0], {
    args: [...RSM_CMD.slice(1), "stdio"],
    env,
    clearEnv: true,
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  const pending = new Map<number, (m: Msg) => void>();
  let nextId = 1;
  let writing = Promise.resolve();
  const ps = psSampler();
  const reading = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let m: Msg;
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        const done = typeof m.id === "number" ? pending.get(m.id) : undefined;
        if (done) {
          pending.delete(m.id);
          done(m);
        }
      }
    }
  })().catch(() => {});
  const send = (bytes: Uint8Array) => {
    writing = writing.then(() => writer.write(bytes)).catch(() => {});
    return writing;
  };
  const requestLine = (line: string | Uint8Array, timeoutMs = 60_000): Promise<Msg> => {
    const id = nextId++;
    let bytes = typeof line === "string" ? enc.encode(line) : line;
    const marker = enc.encode('"id":ID');
    const at = indexOf(bytes, marker);
    if (at < 0) throw new Error('requestLine needs an "id":ID placeholder');
    bytes = concat(
      bytes.subarray(0, at),
      enc.encode(`"id":${id}`),
      bytes.subarray(at + 7),
      enc.encode("\n"),
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`no answer to request ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      send(bytes);
    });
  };
  let closed = false;
  const self: LineClient = {
    child,
    async initialize() {
      const r = await requestLine(
        JSON.stringify({ ...INITIALIZE, id: "ID" }).replace('"id":"ID"', '"id":ID'),
      );
      await send(
        enc.encode(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n"),
      );
      return r;
    },
    request(method, params, timeoutMs) {
      return requestLine(
        `{"jsonrpc":"2.0","id":ID,"method":${JSON.stringify(method)},"params":${
          JSON.stringify(params)
        }}`,
        timeoutMs,
      );
    },
    requestLine,
    psLog: () => ps.text(),
    async close() {
      if (closed) return;
      closed = true;
      ps.stop();
      await writing;
      await writer.close().catch(() => {});
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(t);
      await reading;
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };
  return self;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Samples `ps -eo pid,args` every `intervalMs` until stopped; `text()` is all samples. */
export function psSampler(intervalMs = 1000): { text(): string; stop(): void } {
  const samples: string[] = [];
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    try {
      const out = await new Deno.Command("ps", {
        args: ["-eo", "pid,args"],
        stdout: "piped",
        stderr: "null",
      })
        .output();
      samples.push(new TextDecoder().decode(out.stdout));
    } catch { /* ps missing */ }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  let timer = setTimeout(tick, 0);
  return {
    text: () => samples.join("\n"),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Resident set size of `pid` in KiB (VmRSS). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /VmRSS:\s+(\d+)/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/**
 * Every place a secret was found: files under `dir` (recursively: state.json, daemon.log,
 * audit.log, handle, known_hosts, rotated logs, corrupt-state copies) and the given texts
 * (e.g. captured `ps` output). Returns `"<where>: <secret #n>"` lines (secrets not echoed).
 */
export async function scanForSecrets(
  dir: string,
  secrets: string[],
  texts: string[] = [],
): Promise<string[]> {
  const found: string[] = [];
  const check = (where: string, text: string) => {
    secrets.forEach((s, i) => {
      if (s && text.includes(s)) found.push(`${where}: secret #${i}`);
    });
  };
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        // A file written atomically (temp file, then rename) may be gone by now: what
        // replaced it is scanned under its own name.
        let bytes: Uint8Array;
        try {
          bytes = await Deno.readFile(p);
        } catch (err) {
          if (err instanceof Deno.errors.NotFound) continue;
          throw err;
        }
        check(p, new TextDecoder().decode(bytes));
      }
    }
  };
  // A missing dir is an error, not "no findings": a scan of nothing proves nothing.
  await walk(dir);
  texts.forEach((t, i) => check(`text #${i}`, t));
  return found;
}
