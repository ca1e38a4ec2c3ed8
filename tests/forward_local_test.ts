/**
 * Local forwards (issue 5, acceptance 1, 2, 6): an HTTP server on the loopback of a netns host
 * (unreachable from the test process) fetched through -L, 404 passed through; 1 GiB with equal
 * SHA-256; 50 concurrent connections; counters that match the traffic; cancel closes the
 * listener and the live connections; half-close works.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { need, testIf, waitFor } from "./support/env.ts";
import { exchange, forwardLab } from "./support/forward_lab.ts";
import { startServers } from "./support/forward_servers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip"], true);

// deno-lint-ignore no-explicit-any
type Row = any;

testIf(missing, "a local forward reaches an HTTP server only the SSH server can see", async () => {
  await using lab = await forwardLab();
  await using _srv = await startServers({
    netns: lab.host.ns,
    label: "netns",
    http: ["127.0.0.1:8080"],
  });
  await lab.connect("box");
  const f = await lab.rsm.callJson("ssh_forward_local", {
    session_id: "box",
    forward_id: "web",
    bind_port: 0,
    remote_host: "127.0.0.1",
    remote_port: 8080,
  });
  assert.equal(f.kind, "local");
  assert.equal(f.bind_addr, "127.0.0.1");
  assert.ok(f.bind_port > 0, "effective port returned");
  assert.equal(f.target_host, "127.0.0.1");
  assert.equal(f.target_port, 8080);
  assert.equal(f.spec, `-L 127.0.0.1:${f.bind_port}:127.0.0.1:8080`, "the port really bound");

  {
    using client = Deno.createHttpClient({}); // its kept-alive connection closes with it
    const ok = await fetch(`http://127.0.0.1:${f.bind_port}/hello`, { client });
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), "hello from netns\n");
    const nf = await fetch(`http://127.0.0.1:${f.bind_port}/missing`, { client });
    assert.equal(nf.status, 404);
    assert.equal(await nf.text(), "nope\n");
  }

  // 50 concurrent connections through the one forward
  const bodies = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: f.bind_port });
      try {
        await conn.write(
          new TextEncoder().encode("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        const parts: string[] = [];
        const buf = new Uint8Array(4096);
        for (;;) {
          const r = await conn.read(buf);
          if (r === null) break;
          parts.push(new TextDecoder().decode(buf.subarray(0, r)));
        }
        return parts.join("");
      } finally {
        conn.close();
      }
    }),
  );
  assert.equal(bodies.filter((b) => b.includes("hello from netns")).length, 50);
  const rows: Row[] = await lab.rsm.callJson("ssh_forwards_list", { session_id: "box" });
  assert.equal(rows.length, 1);
  // fetch() may reuse its connection for the two requests
  assert.ok([51, 52].includes(rows[0].total_connections), `${rows[0].total_connections}`);
  await waitFor("connections closed", async () => {
    const r: Row[] = await lab.rsm.callJson("ssh_forwards_list");
    return r[0].active_connections === 0;
  }, 10_000);
});

testIf(
  missing,
  "1 GiB through a local forward arrives intact and the counters match",
  async () => {
    await using lab = await forwardLab();
    await using _srv = await startServers({ netns: lab.host.ns, sink: ["127.0.0.1:9000"] });
    await lab.connect("box");
    const f = await lab.rsm.callJson("ssh_forward_local", {
      session_id: "box",
      forward_id: "bulk",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 9000,
    });
    const size = 1 << 30;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: f.bind_port });
    const hash = createHash("sha256");
    // a stream of pseudo-random 1 MiB blocks (never the whole GiB in memory)
    const block = crypto.getRandomValues(new Uint8Array(64 * 1024));
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < 16; i++) chunk.set(block, i * block.length);
    const started = Date.now();
    const reading = (async () => {
      const parts: string[] = [];
      const buf = new Uint8Array(1024);
      for (;;) {
        const r = await conn.read(buf);
        if (r === null) break;
        parts.push(new TextDecoder().decode(buf.subarray(0, r)));
      }
      return parts.join("");
    })();
    for (let sent = 0, i = 0; sent < size; sent += chunk.length, i++) {
      chunk[0] = i & 0xff; // vary every block
      chunk[1] = (i >> 8) & 0xff;
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += await conn.write(chunk.subarray(off));
    }
    await conn.closeWrite();
    const answer = (await reading).trim();
    conn.close();
    const secs = (Date.now() - started) / 1000;
    console.log(`1 GiB through -L in ${secs.toFixed(1)} s (${(1024 / secs).toFixed(0)} MiB/s)`);
    assert.equal(answer, `${hash.digest("hex")} ${size}`);
    const row = await waitFor("counters settled", async () => {
      const r: Row[] = await lab.rsm.callJson("ssh_forwards_list", { session_id: "box" });
      return r[0].active_connections === 0 ? r[0] : null;
    }, 10_000);
    assert.equal(row.bytes_in, size);
    assert.equal(row.bytes_out, answer.length + 1);
    assert.equal(row.total_connections, 1);
  },
);

testIf(
  missing,
  "ssh_forward_cancel closes the listener and the live connections; counters match an echo",
  async () => {
    await using lab = await forwardLab();
    await using _srv = await startServers({ netns: lab.host.ns, echo: ["127.0.0.1:7000"] });
    await lab.connect("box");
    const f = await lab.rsm.callJson("ssh_forward_local", {
      session_id: "box",
      forward_id: "echo",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 7000,
    });
    // half-close: the echo server answers after our EOF, and only then closes
    const payload = "x".repeat(100_000);
    const back = await exchange(f.bind_port, payload);
    assert.equal(new TextDecoder().decode(back), payload);
    const row = await waitFor("counters", async () => {
      const r: Row[] = await lab.rsm.callJson("ssh_forwards_list");
      return r[0].active_connections === 0 ? r[0] : null;
    }, 10_000);
    assert.equal(row.bytes_in, 100_000);
    assert.equal(row.bytes_out, 100_000);

    // a connection that stays open
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: f.bind_port });
    await conn.write(new TextEncoder().encode("ping"));
    const buf = new Uint8Array(16);
    assert.equal(await conn.read(buf), 4);
    const live: Row[] = await lab.rsm.callJson("ssh_forwards_list");
    assert.equal(live[0].active_connections, 1);
    assert.equal(live[0].total_connections, 2);

    const text = await lab.rsm.call("ssh_forward_cancel", {
      session_id: "box",
      forward_id: "echo",
    });
    assert.equal(text, "cancelled echo");
    // the live connection is closed (EOF or reset) …
    const end = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise((r) => setTimeout(() => r("hang"), 10_000)),
    ]);
    assert.equal(end, null);
    conn.close();
    // … and the listener is gone
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: f.bind_port }));
    assert.deepEqual(await lab.rsm.callJson("ssh_forwards_list"), []);
    const err = await lab.rsm.callError("ssh_forward_cancel", {
      session_id: "box",
      forward_id: "echo",
    });
    assert.match(err, /Cannot find forward "echo"/);
  },
);
