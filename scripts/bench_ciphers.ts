/**
 * Which cipher is fastest for ssh2 under Deno here: for each candidate, raw ssh2 `forwardOut`
 * throughput (no rsm layers) against a real sshd, next to `ssh -L` with the same cipher, plus
 * the raw `node:crypto` rate of the primitive. Needs root (test user, sshd).
 *
 * `deno run --allow-all scripts/bench_ciphers.ts [MiB]` (default 256 MiB per measurement).
 * ssh2 runs with rsm's transport ciphers (lib/ssh/crypto/); `REMOTE_SHELL_MCP_CRYPTO=portable`
 * measures the portable path.
 */
import type { Buffer } from "node:buffer";
import { createCipheriv, randomBytes } from "node:crypto";
import { loadSsh2 } from "../lib/ssh/ssh2.ts";
import { cryptoPath } from "../lib/ssh/crypto/mod.ts";
import { createUser, startSshd } from "../tests/support/sshd.ts";
import { Cleanup, log } from "./bench_world.ts";

const CIPHERS = [
  "aes128-gcm@openssh.com",
  "chacha20-poly1305@openssh.com",
  "aes128-ctr",
  "aes256-gcm@openssh.com",
];
const MiB = 1 << 20;

/** node:crypto rate of the primitive behind `cipher`, one 32 KiB packet at a time (MiB/s). */
function primitiveRate(cipher: string): number {
  const packet = randomBytes(32 * 1024);
  const total = 128 * MiB;
  const t = performance.now();
  for (let done = 0; done < total; done += packet.length) {
    if (cipher.includes("gcm")) {
      const c = createCipheriv(
        cipher.startsWith("aes256") ? "aes-256-gcm" : "aes-128-gcm",
        randomBytes(cipher.startsWith("aes256") ? 32 : 16),
        randomBytes(12),
      );
      c.update(packet);
      c.final();
      c.getAuthTag();
    } else if (cipher.startsWith("chacha")) {
      const c = createCipheriv("chacha20", randomBytes(32), randomBytes(16));
      c.update(packet);
    } else {
      const c = createCipheriv("aes-128-ctr", randomBytes(16), randomBytes(16));
      c.update(packet);
    }
  }
  return total / MiB / ((performance.now() - t) / 1000);
}

/** scripts/bench_source.ts in its own process (not on the ssh2 client's event loop). */
async function serveSource(): Promise<{ port: number; close(): Promise<void> }> {
  const child = new Deno.Command("deno", {
    args: ["run", "-q", "--allow-net", new URL("./bench_source.ts", import.meta.url).pathname],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/ready \d+/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the byte source exited");
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    port: Number(text.match(/ready (\d+)/)![1]),
    close: async () => {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

const { Client } = await loadSsh2();

async function ssh2Rate(
  opts: { port: number; user: string; key: string; cipher: string; source: number; size: number },
): Promise<number> {
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", () => resolve()).once("error", reject);
    client.connect({
      host: "127.0.0.1",
      port: opts.port,
      username: opts.user,
      privateKey: Deno.readTextFileSync(opts.key),
      algorithms: { cipher: [opts.cipher] } as never,
    });
    // setNoDelay as lib/ssh/dial.ts does
    client.once("connect", () => {
      // deno-lint-ignore no-explicit-any
      ((client as any)._sock as { setNoDelay?: (b: boolean) => void })?.setNoDelay?.(true);
    });
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      client.forwardOut("127.0.0.1", 0, "127.0.0.1", opts.source, (err, stream) => {
        if (err) return reject(err);
        let got = 0;
        const t = performance.now();
        stream.on("data", (d: Buffer) => (got += d.length));
        stream.on("error", reject);
        stream.on("end", () => {
          if (got !== opts.size) reject(new Error(`got ${got} of ${opts.size}`));
          else resolve(opts.size / MiB / ((performance.now() - t) / 1000));
        });
        stream.write(`${opts.size}\n`);
      });
    });
  } finally {
    client.end();
  }
}

async function sshRate(
  opts: { port: number; user: string; key: string; cipher: string; source: number; size: number },
): Promise<number> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lp = (l.addr as Deno.NetAddr).port;
  l.close();
  const child = new Deno.Command("ssh", {
    args: [
      "-F",
      "/dev/null",
      "-i",
      opts.key,
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "ExitOnForwardFailure=yes",
      "-c",
      opts.cipher,
      "-p",
      String(opts.port),
      "-N",
      "-L",
      `127.0.0.1:${lp}:127.0.0.1:${opts.source}`,
      `${opts.user}@127.0.0.1`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let conn: Deno.Conn | undefined;
    const deadline = Date.now() + 10_000;
    while (!conn) {
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port: lp });
      } catch {
        if (Date.now() > deadline) throw new Error("ssh -L did not listen");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const t = performance.now();
    await conn.write(new TextEncoder().encode(`${opts.size}\n`));
    const buf = new Uint8Array(1 << 18);
    let got = 0;
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += n;
    }
    conn.close();
    if (got !== opts.size) throw new Error(`ssh -L gave ${got} of ${opts.size}`);
    return opts.size / MiB / ((performance.now() - t) / 1000);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

if (import.meta.main) {
  const size = Number(Deno.args[0] ?? 256) * MiB;
  const cleanup = new Cleanup();
  const onSignal = async () => {
    await cleanup.run();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const timer = setTimeout(() => {
    log("over 8 minutes; giving up");
    onSignal();
  }, 480_000);
  try {
    const user = await createUser({ plainShell: true });
    cleanup.push("user", () => user.remove());
    const sshd = await startSshd({ extraConfig: `Ciphers ${CIPHERS.join(",")}` });
    cleanup.push("sshd", () => sshd[Symbol.asyncDispose]());
    const src = await serveSource();
    cleanup.push("source", () => src.close());
    const path = cryptoPath();
    console.log(`crypto path: ${path?.path} (${path?.detail})`);
    console.log(
      `| cipher | node:crypto primitive (Deno) | ssh2 forwardOut (Deno) | ssh -L | ssh2/ssh |`,
    );
    console.log("|---|---|---|---|---|");
    for (const cipher of CIPHERS) {
      const o = {
        port: sshd.port,
        user: user.name,
        key: user.keyPath,
        cipher,
        source: src.port,
        size,
      };
      log(cipher);
      const prim = primitiveRate(cipher);
      const raw = await ssh2Rate(o);
      const ssh = await sshRate(o);
      console.log(
        `| ${cipher} | ${prim.toFixed(0)} MiB/s | ${raw.toFixed(1)} MiB/s | ${
          ssh.toFixed(1)
        } MiB/s | ${(raw / ssh).toFixed(2)}× |`,
      );
    }
  } finally {
    clearTimeout(timer);
    await cleanup.run();
  }
  Deno.exit(0);
}
