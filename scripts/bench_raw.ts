/**
 * A bare ssh2 client on the benchmark's sshd — ssh2 as rsm loads it (rsm's ciphers), on a
 * `node:net` socket with Nagle off, and nothing else: no MCP, no daemon, no channel gate. The
 * exec rows print what it reaches next to rsm, so a reader sees how much of a row is the
 * server (sshd forking a session and the user's shell) and how much is rsm.
 */
import net from "node:net";
import type { Client } from "ssh2";
import { loadSsh2 } from "../lib/ssh/ssh2.ts";
import type { World } from "./bench_world.ts";

/** A connected bare client; `exec` runs one command to its close. */
export interface RawSsh2 extends AsyncDisposable {
  exec(command: string): Promise<void>;
}

/** Connects a bare ssh2 client to the loopback sshd as the benchmark user. */
export async function rawSsh2(w: World): Promise<RawSsh2> {
  const { Client } = await loadSsh2();
  const t = w.loopback;
  const sock = net.connect({ host: t.host, port: t.port });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", () => resolve()).once("error", reject);
  });
  const client: Client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", () => resolve()).once("error", reject);
    client.connect({
      sock,
      username: w.user.name,
      privateKey: Deno.readTextFileSync(w.user.keyPath),
      readyTimeout: 20_000,
    });
  });
  return {
    exec: (command) =>
      new Promise((resolve, reject) => {
        client.exec(command, (err, ch) => {
          if (err) return reject(err);
          ch.on("data", () => {});
          ch.stderr.on("data", () => {});
          ch.once("close", () => resolve());
        });
      }),
    [Symbol.asyncDispose]() {
      client.end();
      return Promise.resolve();
    },
  };
}

/**
 * `total` execs of `command` through `raw`, at most `inFlight` at once: calls per second and
 * the wall time of each round of `perRound`.
 */
export async function rawThroughput(
  raw: RawSsh2,
  command: (i: number) => string,
  rounds: number,
  perRound: number,
  inFlight: number,
): Promise<{ callsPerS: number; roundMs: number }> {
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(inFlight, perRound) }, async () => {
      while (next < perRound) await raw.exec(command(next++));
    }));
  }
  const wall = performance.now() - t0;
  return { callsPerS: (rounds * perRound) / (wall / 1000), roundMs: wall / rounds };
}
