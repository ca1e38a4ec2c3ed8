/**
 * Dynamic forwards (issue 5, acceptance 4): curl --socks5-hostname fetches a name that only
 * the SSH server resolves (a private /etc/hosts of its netns), an IPv6 literal target works,
 * and failures give the right SOCKS5 reply code instead of a hang.
 */
import assert from "node:assert/strict";
import { need, run, testIf } from "./support/env.ts";
import { forwardLab } from "./support/forward_lab.ts";
import { startServers } from "./support/forward_servers.ts";
import { createNet } from "./support/netns.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip", "curl"], true);

/** Sends a SOCKS5 greeting + `request` and returns the reply code (or "closed"). */
async function socksReply(port: number, request: number[]): Promise<number | string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new Uint8Array([5, 1, 0]));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    assert.deepEqual([...buf.subarray(0, n ?? 0)], [5, 0]);
    await conn.write(new Uint8Array(request));
    let got = new Uint8Array(0);
    const deadline = Date.now() + 40_000;
    while (got.length < 2 && Date.now() < deadline) {
      const r = await conn.read(buf);
      if (r === null) return "closed";
      got = new Uint8Array([...got, ...buf.subarray(0, r)]);
    }
    assert.equal(got[0], 5);
    return got[1] ?? "no reply code";
  } finally {
    conn.close();
  }
}

const portBytes = (p: number) => [p >> 8, p & 0xff];

testIf(
  missing,
  "a SOCKS5 forward resolves names on the server, reaches IPv6 literals and answers failures",
  async (t) => {
    await using lab = await forwardLab({
      hosts: "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 secret-web.rsm.test\n",
    });
    await using _srv = await startServers({
      netns: lab.host.ns,
      label: "the far side",
      http: ["127.0.0.1:8080", "[::1]:8081"],
    });
    await lab.connect("box");
    const f = await lab.rsm.callJson("ssh_forward_dynamic", {
      session_id: "box",
      forward_id: "socks",
      bind_port: 0,
    });
    assert.equal(f.kind, "dynamic");
    assert.ok(f.bind_port > 0);
    assert.equal(f.spec, `-D 127.0.0.1:${f.bind_port}`, "the port really bound");
    const curl = (url: string) =>
      run("curl", [
        "-sS",
        "--max-time",
        "40",
        "--socks5-hostname",
        `127.0.0.1:${f.bind_port}`,
        url,
      ]);

    await t.step("a name only the server resolves", async () => {
      const direct = await run("getent", ["hosts", "secret-web.rsm.test"]);
      assert.notEqual(direct.code, 0, "the test process must not resolve the name");
      const r = await curl("http://secret-web.rsm.test:8080/hello");
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "hello from the far side\n");
    });

    await t.step("an IPv6 literal target", async () => {
      const r = await curl("http://[::1]:8081/hello");
      assert.equal(r.stdout, "hello from the far side\n", r.stderr);
      // and the IPv6 address type on the wire (ATYP 4)
      const req = [5, 1, 0, 4, ...Array(15).fill(0), 1, ...portBytes(8081)];
      assert.equal(await socksReply(f.bind_port, req), 0);
    });

    await t.step("reply codes: refused, unresolvable, bad command, bad address type", async () => {
      const refused = [5, 1, 0, 1, 127, 0, 0, 1, ...portBytes(1)];
      assert.equal(await socksReply(f.bind_port, refused), 0x05);
      const name = new TextEncoder().encode("no-such-host.invalid");
      const unresolvable = [5, 1, 0, 3, name.length, ...name, ...portBytes(80)];
      assert.equal(await socksReply(f.bind_port, unresolvable), 0x04);
      const bind = [5, 2, 0, 1, 127, 0, 0, 1, ...portBytes(8080)];
      assert.equal(await socksReply(f.bind_port, bind), 0x07);
      const badType = [5, 1, 0, 9, 1, 2, 3, 4, ...portBytes(8080)];
      assert.equal(await socksReply(f.bind_port, badType), 0x08);
      const r = await curl("http://127.0.0.1:1/");
      assert.notEqual(r.code, 0);
    });

    await t.step("the counters saw the traffic", async () => {
      const rows = await lab.rsm.callJson("ssh_forwards_list", { session_id: "box" });
      assert.equal(rows.length, 1);
      assert.ok(rows[0].total_connections >= 8, JSON.stringify(rows[0]));
      assert.ok(rows[0].bytes_out > 0 && rows[0].bytes_in > 0);
    });
  },
);

testIf(
  missing,
  "a target that never answers gets SOCKS reply 4 and a closed -L connection after 30 s",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using net = await createNet();
    const hole = await net.blackhole(); // the SSH server's connect to it hangs
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    const d = await rsm.callJson("ssh_forward_dynamic", {
      session_id: "box",
      forward_id: "socks",
      bind_port: 0,
    });
    const l = await rsm.callJson("ssh_forward_local", {
      session_id: "box",
      forward_id: "l",
      bind_port: 0,
      remote_host: hole,
      remote_port: 80,
    });
    const started = Date.now();
    const [code, closed] = await Promise.all([
      socksReply(d.bind_port, [5, 1, 0, 1, ...hole.split(".").map(Number), ...portBytes(80)]),
      (async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: l.bind_port });
        try {
          return await conn.read(new Uint8Array(16)).catch(() => null);
        } finally {
          conn.close();
        }
      })(),
    ]);
    const secs = (Date.now() - started) / 1000;
    assert.equal(code, 0x04);
    assert.equal(closed, null);
    assert.ok(secs >= 25 && secs < 45, `gave up after ${secs} s`);
    const rows = await rsm.callJson("ssh_forwards_list");
    assert.ok(rows.every((r: { active_connections: number }) => r.active_connections === 0));
  },
);
