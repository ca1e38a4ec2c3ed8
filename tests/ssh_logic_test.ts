/**
 * Unit tests of the pure parts of lib/ssh: addresses, known_hosts matching, ssh_config
 * lookups, secret scrubbing, output bounds, and the exec wrapper (run by a real local sh).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHmac, randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import { parseAddress, scrubSpec } from "../lib/ssh/spec.ts";
import {
  checkHostKey,
  fingerprintOf,
  hostKeyFromBlob,
  knownHostsName,
  patternsMatch,
} from "../lib/ssh/known_hosts.ts";
import { lookupHost } from "../lib/ssh/ssh_config.ts";
import { shellQuote, wrapCommand } from "../lib/ssh/exec.ts";
import { SshSession } from "../lib/ssh/session.ts";
import { silentLogger } from "../lib/log.ts";
import { run } from "./support/env.ts";

Deno.test("parseAddress understands host, host:port, [v6]:port, user@host and bare IPv6", () => {
  assert.deepEqual(parseAddress("box"), { host: "box", port: undefined, user: undefined });
  assert.deepEqual(parseAddress("10.0.0.5:2222"), {
    host: "10.0.0.5",
    port: 2222,
    user: undefined,
  });
  assert.deepEqual(parseAddress("[::1]:22"), { host: "::1", port: 22, user: undefined });
  assert.deepEqual(parseAddress("fe80::1"), { host: "fe80::1", port: undefined, user: undefined });
  assert.deepEqual(parseAddress("bob@h:7"), { host: "h", port: 7, user: "bob" });
  assert.throws(() => parseAddress("h:99999"), /Cannot parse address/);
  assert.throws(() => parseAddress("h:abc"), /Cannot parse address/);
  assert.throws(() => parseAddress(""), /Cannot parse address/);
});

function blob(type: string, body: Uint8Array): Uint8Array {
  const t = Buffer.from(type);
  const out = Buffer.alloc(4 + t.length + 4 + body.length);
  out.writeUInt32BE(t.length, 0);
  t.copy(out, 4);
  out.writeUInt32BE(body.length, 4 + t.length);
  Buffer.from(body).copy(out, 8 + t.length);
  return out;
}

Deno.test("known_hosts patterns: plain, [host]:port, wildcards, negation, hashed", () => {
  assert.equal(knownHostsName("h", 22), "h");
  assert.equal(knownHostsName("h", 2222), "[h]:2222");
  assert.ok(patternsMatch("a,h,b", "h"));
  assert.ok(patternsMatch("*.example.com", "x.example.com"));
  assert.ok(!patternsMatch("*.example.com,!bad.example.com", "bad.example.com"));
  assert.ok(patternsMatch("[h]:2222", "[h]:2222"));
  assert.ok(!patternsMatch("h", "[h]:2222"));
  const salt = randomBytes(20);
  const hash = createHmac("sha1", salt).update("[10.1.2.3]:2200").digest("base64");
  const hashed = `|1|${salt.toString("base64")}|${hash}`;
  assert.ok(patternsMatch(hashed, "[10.1.2.3]:2200"));
  assert.ok(!patternsMatch(hashed, "10.1.2.3"));
});

Deno.test("checkHostKey tells known, new, changed and revoked keys apart", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = hostKeyFromBlob(blob("ssh-ed25519", new Uint8Array(32).fill(1)));
    const b = hostKeyFromBlob(blob("ssh-ed25519", new Uint8Array(32).fill(2)));
    const c = hostKeyFromBlob(blob("ecdsa-sha2-nistp256", new Uint8Array(40).fill(3)));
    assert.equal(a.type, "ssh-ed25519");
    assert.match(a.fingerprint, /^SHA256:[A-Za-z0-9+/]+$/);
    assert.equal(a.fingerprint, fingerprintOf(Buffer.from(a.base64, "base64")));
    const file = join(dir, "kh");
    await Deno.writeTextFile(
      file,
      `# comment\n[h]:2222 ${a.type} ${a.base64}\n@revoked r ${a.type} ${a.base64}\n`,
    );
    assert.equal((await checkHostKey([file], "h", 2222, a)).status, "known");
    const changed = await checkHostKey([file], "h", 2222, b);
    assert.equal(changed.status, "changed");
    assert.equal(changed.status === "changed" && changed.knownFingerprint, a.fingerprint);
    assert.equal((await checkHostKey([file], "h", 2222, c)).status, "new"); // other key type
    assert.equal((await checkHostKey([file], "other", 22, a)).status, "new");
    assert.equal((await checkHostKey([file], "r", 22, a)).status, "revoked");
    assert.equal((await checkHostKey([join(dir, "missing")], "h", 22, a)).status, "new");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lookupHost applies the first value, IdentityFile lists and ProxyJump none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "config");
    await Deno.writeTextFile(
      path,
      [
        "Host box",
        "  HostName 10.9.8.7",
        "  Port 2200",
        "  User alice",
        "  IdentityFile /keys/one",
        "  ProxyJump bastion",
        "  ServerAliveInterval 5",
        "Host direct",
        "  ProxyJump none",
        "Host *",
        "  User nobody",
        "  IdentityFile /keys/two",
        "  ConnectTimeout 7",
        "",
      ].join("\n"),
    );
    const box = lookupHost("box", { path });
    assert.equal(box.hostName, "10.9.8.7");
    assert.equal(box.port, 2200);
    assert.equal(box.user, "alice");
    assert.deepEqual(box.identityFiles, ["/keys/one", "/keys/two"]);
    assert.equal(box.proxyJump, "bastion");
    assert.equal(box.serverAliveIntervalMs, 5000);
    assert.equal(box.connectTimeoutMs, 7000);
    const direct = lookupHost("direct", { path });
    assert.equal(direct.proxyJump, undefined);
    assert.equal(direct.user, "nobody");
    assert.deepEqual(lookupHost("x", { path: join(dir, "nope") }), {
      identityFiles: [],
      certificateFiles: [],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scrubSpec drops inline secrets, keeps references, and leaves the live spec alone", () => {
  const spec = {
    addresses: ["h"],
    auth: { password: "pw-secret", key_passphrase: "pp", password_env: "PW", key_path: "/k" },
    jump_hosts: [{ addresses: "j", auth: { password: "jump-secret", password_file: "/f" } }],
    persistent: true,
  };
  const copy = scrubSpec(spec);
  assert.deepEqual(copy.auth, { password_env: "PW", key_path: "/k" });
  assert.deepEqual(copy.jump_hosts?.[0]?.auth, { password_file: "/f" });
  assert.ok(!JSON.stringify(copy).includes("secret"));
  assert.equal(spec.auth.password, "pw-secret");
  assert.equal(spec.jump_hosts[0]?.auth.password, "jump-secret");
});

Deno.test("wrapCommand prints the process group, quotes env and cwd, and keeps $$", async () => {
  const marker = "RSMPGtest:";
  const script = wrapCommand(
    `printf '%s|%s|' "$V" "$(pwd)"; echo "$$"`,
    { env: { V: `a'b"c $HOME \\n` }, cwd: "/tmp" },
    marker,
  );
  const r = await run("sh", ["-c", script]);
  assert.equal(r.code, 0, r.stderr);
  const pid = r.stderr.match(/RSMPGtest:(\d+)\n/)?.[1];
  assert.ok(pid, r.stderr);
  assert.equal(r.stdout, `a'b"c $HOME \\n|/tmp|${pid}\n`);
  assert.throws(() => wrapCommand("true", { env: { "BAD-NAME": "x" } }, marker), /not a valid/);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

Deno.test("a disconnected session reports CLOSED, not NOT_FOUND, to those who still hold it", async () => {
  const session = new SshSession("box", { addresses: ["127.0.0.1:1"], user: "nobody" }, {
    daemonKnownHosts: "/nonexistent/known_hosts",
    log: silentLogger,
  });
  await session.close();
  await assert.rejects(session.ready(), {
    code: "CLOSED",
    message: /Session box was disconnected/,
  });
  await assert.rejects(session.reconnect(), { code: "CLOSED" });
});
