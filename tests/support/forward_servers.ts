/**
 * Small TCP/HTTP servers for the forward tests, run as a separate process (optionally inside a
 * netns, so only the SSH server can reach them):
 * - `--http HOST:PORT`: `GET /hello` → 200 `hello from <label>`; anything else → 404 `nope`.
 * - `--sink HOST:PORT`: reads until EOF, answers the SHA-256 (hex) and the byte count, closes.
 * - `--echo HOST:PORT`: echoes everything back; ends after the client's EOF.
 * Prints `ready` on stdout once every listener is up.
 *
 * ```ts
 * await using srv = await startServers({ netns: host.ns, http: ["127.0.0.1:8080"] });
 * ```
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

/** Options for {@link startServers}. */
export interface ServersOptions {
  netns?: string;
  http?: string[];
  sink?: string[];
  echo?: string[];
  label?: string;
}

/** Starts the servers in a child process; `await using` kills it. */
export async function startServers(
  options: ServersOptions,
): Promise<AsyncDisposable & { pid: number }> {
  const args = ["run", "-A", fileURLToPath(import.meta.url), "--label", options.label ?? "srv"];
  for (const a of options.http ?? []) args.push("--http", a);
  for (const a of options.sink ?? []) args.push("--sink", a);
  for (const a of options.echo ?? []) args.push("--echo", a);
  const cmd: [string, ...string[]] = options.netns
    ? ["ip", "netns", "exec", options.netns, "deno", ...args]
    : [
      "deno",
      ...args,
    ];
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done || Date.now() > deadline) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      throw new Error(`test servers did not start: ${text}`);
    }
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

function split(a: string): { hostname: string; port: number } {
  const i = a.lastIndexOf(":");
  return { hostname: a.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(a.slice(i + 1)) };
}

async function sink(conn: Deno.Conn) {
  const h = createHash("sha256");
  let n = 0;
  const buf = new Uint8Array(256 * 1024);
  for (;;) {
    const r = await conn.read(buf);
    if (r === null) break;
    h.update(buf.subarray(0, r));
    n += r;
  }
  await conn.write(new TextEncoder().encode(`${h.digest("hex")} ${n}\n`));
  conn.close();
}

async function echo(conn: Deno.Conn) {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const r = await conn.read(buf);
      if (r === null) break;
      let off = 0;
      while (off < r) off += await conn.write(buf.subarray(off, r));
    }
  } finally {
    conn.close();
  }
}

async function main() {
  const argv = Deno.args;
  let label = "srv";
  const tasks: Promise<void>[] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`forward_servers: ${flag} needs a value`);
    if (flag === "--label") label = value;
    else if (flag === "--http") {
      const { hostname, port } = split(value);
      await new Promise<void>((resolve) => {
        Deno.serve({ hostname, port, onListen: () => resolve() }, (req) => {
          const url = new URL(req.url);
          if (url.pathname === "/hello") return new Response(`hello from ${label}\n`);
          return new Response("nope\n", { status: 404 });
        });
      });
    } else {
      const l = Deno.listen(split(value));
      const handler = flag === "--sink" ? sink : echo;
      tasks.push((async () => {
        for await (const c of l) handler(c).catch(() => {});
      })());
    }
  }
  console.log("ready");
  await Promise.all(tasks);
  await new Promise(() => {});
}

if (import.meta.main) await main();
