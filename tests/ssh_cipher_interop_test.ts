/**
 * Every cipher rsm offers against OpenSSH's sshd forced to that one cipher, on both crypto
 * paths (libcrypto through FFI, and `REMOTE_SHELL_MCP_CRYPTO=portable`), directly and through
 * a jump host whose own connection uses the same cipher (a netns bastion: the inner SSH
 * connection then runs inside an outer one — where ssh2's own chacha20 path used to stall):
 * exec, a 256 MiB `-L` transfer and an SFTP upload/download, checked byte for byte.
 *
 * Topology: root ─l1─ bastion ─l2─ target. The byte source for `-L` runs next to each sshd.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Client } from "ssh2";
import { freePort, need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { createNet } from "./support/netns.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";
import { cipherInstances, CRYPTO_ENV } from "../lib/ssh/crypto/mod.ts";
import { loadSsh2 } from "../lib/ssh/ssh2.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip", "socat"], true);

const MiB = 1 << 20;
const FORWARD_BYTES = 256 * MiB;
const SFTP_BYTES = 16 * MiB;
const AEAD = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"];
const CTR = ["aes128-ctr", "aes192-ctr", "aes256-ctr"];
/**
 * AES-CTR with each other MAC rsm offers (the CTR rows above use ssh2's first choice,
 * hmac-sha2-256-etm): `cipher+mac`, sshd forced to both.
 */
const CTR_MACS = [
  "aes128-ctr+hmac-sha2-256",
  "aes256-ctr+hmac-sha2-512",
  "aes192-ctr+hmac-sha1",
  "aes256-ctr+hmac-sha2-512-etm@openssh.com",
  "aes128-ctr+hmac-sha1-etm@openssh.com",
];

/** A file of `bytes` pseudo-random bytes and its SHA-256. */
async function randomFile(path: string, bytes: number): Promise<string> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const hash = createHash("sha256");
  const chunk = new Uint8Array(MiB);
  for (let done = 0; done < bytes; done += chunk.length) {
    for (let i = 0; i < chunk.length; i += 65536) {
      crypto.getRandomValues(chunk.subarray(i, i + 65536));
    }
    hash.update(chunk);
    await f.write(chunk);
  }
  f.close();
  return hash.digest("hex");
}

/** socat serving `file` to every connection on 127.0.0.1:`port` (in `ns` if given). */
function serveFile(file: string, port: number, ns?: string): Deno.ChildProcess {
  const args = [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `OPEN:${file},rdonly`];
  return new Deno.Command(ns ? "ip" : "socat", {
    args: ns ? ["netns", "exec", ns, "socat", ...args] : args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Reads everything from 127.0.0.1:`port`; returns the SHA-256 and the byte count. */
async function pull(port: number): Promise<{ sha: string; bytes: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const hash = createHash("sha256");
  let bytes = 0;
  const buf = new Uint8Array(1 << 18);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    bytes += n;
  }
  conn.close();
  return { sha: hash.digest("hex"), bytes };
}

async function sha256File(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

testIf(
  missing,
  "every offered cipher interoperates with OpenSSH, directly and through a jump host, on both crypto paths",
  async (t) => {
    await using user = await createUser();
    await using net = await createNet();
    const bastion = await net.host("b");
    const target = await net.host("t");
    const l1 = await net.link("root", bastion);
    const l2 = await net.link(bastion, target);
    const dir = await Deno.makeTempDir({ prefix: "rsm-ciphers-" });
    const children: Deno.ChildProcess[] = [];
    const stops: (() => PromiseLike<void>)[] = [];
    try {
      const big = join(dir, "big.bin");
      const bigSha = await randomFile(big, FORWARD_BYTES);
      const small = join(dir, "small.bin");
      const smallSha = await randomFile(small, SFTP_BYTES);
      await Deno.chmod(dir, 0o755);
      const SRC = freePort();
      children.push(serveFile(big, SRC), serveFile(big, SRC, target.ns));

      // One sshd per cipher (and MAC) and place, each offering only that cipher (and MAC).
      const ciphers = [...AEAD, ...CTR, ...CTR_MACS];
      const direct = new Map<string, string>();
      const jump = new Map<string, { bastion: string; target: string }>();
      for (const [i, c] of ciphers.entries()) {
        const [cipher, mac] = c.split("+");
        const extraConfig = `Ciphers ${cipher}\n${mac ? `MACs ${mac}\n` : ""}`;
        const d = await startSshd({ extraConfig });
        const b = await startSshd({
          netns: bastion.ns,
          listen: l1.addrB,
          port: 2200 + i,
          extraConfig,
        });
        const tg = await startSshd({
          netns: target.ns,
          listen: l2.addrB,
          port: 2200 + i,
          extraConfig,
        });
        stops.push(
          () => d[Symbol.asyncDispose](),
          () => b[Symbol.asyncDispose](),
          () => tg[Symbol.asyncDispose](),
        );
        direct.set(c, d.address);
        jump.set(c, { bastion: `${l1.addrB}:${2200 + i}`, target: `${l2.addrB}:${2200 + i}` });
      }
      const auth = { key_path: user.keyPath };

      await t.step(
        "ssh2 really runs rsm's ciphers once loaded (raw ssh2, nested)",
        async () => {
          // The class must come from loadSsh2(): a static `import "ssh2"` loads ssh2's kex.js before
          // rsm's ciphers are installed, and ssh2 then keeps its own.
          const { Client: LoadedClient } = await loadSsh2();
          const before = cipherInstances();
          const connect = (opts: Record<string, unknown>) =>
            new Promise<Client>((resolve, reject) => {
              const c = new LoadedClient();
              const timer = setTimeout(
                () => reject(new Error("no SSH handshake within 20 s")),
                20_000,
              );
              c.once("ready", () => clearTimeout(timer));
              c.once("ready", () => resolve(c)).once("error", reject);
              c.connect({
                username: user.name,
                privateKey: Deno.readTextFileSync(user.keyPath),
                ...opts,
              });
            });
          const [host, port] = direct.get("chacha20-poly1305@openssh.com")!.split(":");
          assert.ok(host && port);
          const outer = await connect({ host, port: Number(port) });
          const ch = await new Promise<import("node:stream").Duplex>((resolve, reject) =>
            outer.forwardOut(
              "127.0.0.1",
              0,
              host,
              Number(port),
              (e, s) => e ? reject(e) : resolve(s),
            )
          );
          const inner = await connect({ sock: ch });
          const out = await new Promise<string>((resolve, reject) =>
            inner.exec("echo nested", (e, s) => {
              if (e) {
                return reject(e);
              }
              let o = "";
              s.on("data", (d: Uint8Array) => o += new TextDecoder().decode(d)).on(
                "close",
                () => resolve(o),
              );
            })
          );
          inner.end();
          outer.end();
          assert.equal(out, "nested\n");
          assert.ok(cipherInstances() >= before + 4, "the connections did not use rsm's ciphers");
        },
      );

      for (const mode of ["libcrypto", "portable"] as const) {
        await using rsm = await rsmWithEnv(mode === "portable" ? { [CRYPTO_ENV]: "portable" } : {});
        // AES-CTR is rsm's code on the libcrypto path and ssh2's own on the portable path; the
        // other MACs are checked on the libcrypto path.
        for (const cipher of mode === "portable" ? [...AEAD, ...CTR] : ciphers) {
          for (const route of ["direct", "jump"] as const) {
            await t.step(`${mode} ${cipher} ${route}`, async () => {
              const id = `${mode}-${cipher}-${route}`.replace(/[^a-z0-9-]/gi, "-");
              const spec = route === "direct"
                ? { user: user.name, addresses: [direct.get(cipher)!], auth }
                : {
                  user: user.name,
                  addresses: [jump.get(cipher)!.target],
                  auth,
                  jump_hosts: [{ user: user.name, addresses: [jump.get(cipher)!.bastion], auth }],
                };
              const info = await rsm.callJson("ssh_connect", { id, spec });
              assert.equal(info.state, "connected");
              const ex = await rsm.callJson("ssh_exec", {
                session_id: id,
                command: "echo ok; exit 3",
              });
              assert.equal(ex.stdout, "ok\n");
              assert.equal(ex.exit_code, 3);

              const fw = await rsm.callJson("ssh_forward_local", {
                session_id: id,
                forward_id: "big",
                bind_port: 0,
                remote_host: "127.0.0.1",
                remote_port: SRC,
              });
              const got = await pull(fw.bind_port);
              await rsm.call("ssh_forward_cancel", { session_id: id, forward_id: "big" });
              assert.equal(got.bytes, FORWARD_BYTES);
              assert.equal(got.sha, bigSha);

              const remote = `/tmp/rsm-cipher-${id}.bin`;
              const back = join(dir, `${id}.bin`);
              await rsm.callJson("ssh_upload", {
                session_id: id,
                local_path: small,
                wait_ms: 300_000,
                remote_path: remote,
              });
              await rsm.callJson("ssh_download", {
                session_id: id,
                wait_ms: 300_000, // never a job: the file is checked right after
                remote_path: remote,
                local_path: back,
              });
              await rsm.callJson("ssh_exec", { session_id: id, command: `rm -f ${remote}` });
              assert.equal(await sha256File(back), smallSha);
              await Deno.remove(back);
              await rsm.call("ssh_disconnect", { id });
            });
          }
        }
      }
    } finally {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch {
          /* gone */
        }
        await c.status;
      }
      for (const stop of stops) await Promise.resolve(stop()).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
