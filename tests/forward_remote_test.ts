/**
 * Remote forwards (issue 5, acceptance 3) and the rules of acceptance 7: with bind_port 0 the
 * server picks the port and a curl run on the server (ssh_exec) reaches an HTTP server in the
 * test process; non-loopback bind addresses need allow_remote_clients; a port in use is a
 * clear error and the daemon keeps serving.
 */
import assert from "node:assert/strict";
import { need, testIf, waitFor } from "./support/env.ts";
import { forwardLab } from "./support/forward_lab.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip", "curl"], true);

// deno-lint-ignore no-explicit-any
type Row = any;

testIf(
  missing,
  "a remote forward with bind_port 0 lets curl on the server reach a local HTTP server",
  async () => {
    await using lab = await forwardLab();
    await using web = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => new Response(`local dev server saw ${new URL(req.url).pathname}\n`),
    );
    await lab.connect("box");
    const f = await lab.rsm.callJson("ssh_forward_remote", {
      session_id: "box",
      forward_id: "dev",
      bind_port: 0,
      local_port: web.addr.port,
    });
    assert.equal(f.kind, "remote");
    assert.ok(f.bind_port > 0, "server-picked port returned");
    assert.equal(f.target_host, "127.0.0.1");
    assert.equal(f.target_port, web.addr.port);
    // The spec shows the port the server really bound, not the 0 asked for.
    assert.equal(f.spec, `-R 127.0.0.1:${f.bind_port}:127.0.0.1:${web.addr.port}`);

    const r = await lab.rsm.callJson("ssh_exec", {
      session_id: "box",
      command: `curl -sS --max-time 20 http://127.0.0.1:${f.bind_port}/from-server`,
    });
    assert.equal(r.exit_code, 0, r.stderr);
    assert.equal(r.stdout, "local dev server saw /from-server\n");

    // a local port nobody listens on: the server side sees the connection closed, no hang
    const dead = await lab.rsm.callJson("ssh_forward_remote", {
      session_id: "box",
      forward_id: "dead",
      bind_port: 0,
      local_port: 1,
    });
    const r2 = await lab.rsm.callJson("ssh_exec", {
      session_id: "box",
      command: `curl -sS --max-time 20 http://127.0.0.1:${dead.bind_port}/`,
    });
    assert.notEqual(r2.exit_code, 0);
    assert.doesNotMatch(r2.stderr, /timed out/i);

    const row = await waitFor("counters settled", async () => {
      const rows: Row[] = await lab.rsm.callJson("ssh_forwards_list", { session_id: "box" });
      const dev = rows.find((x) => x.id === "dev");
      return dev.active_connections === 0 ? dev : null;
    }, 10_000);
    assert.equal(row.total_connections, 1);
    assert.ok(row.bytes_in > 0 && row.bytes_out > 0);

    // cancel: the server stops listening
    assert.equal(
      await lab.rsm.call("ssh_forward_cancel", { session_id: "box", forward_id: "dev" }),
      "cancelled dev",
    );
    const r3 = await lab.rsm.callJson("ssh_exec", {
      session_id: "box",
      command: `curl -sS --max-time 20 http://127.0.0.1:${f.bind_port}/`,
    });
    assert.notEqual(r3.exit_code, 0);
    assert.match(r3.stderr, /refused|Failed to connect/i);
  },
);

testIf(
  missing,
  "0.0.0.0 needs allow_remote_clients, a port in use is a clear error, the daemon keeps serving",
  async () => {
    await using lab = await forwardLab();
    await lab.connect("box");
    const base = { session_id: "box", bind_port: 0, remote_host: "127.0.0.1", remote_port: 22 };
    const e1 = await lab.rsm.callError("ssh_forward_local", {
      ...base,
      forward_id: "wide",
      bind_addr: "0.0.0.0",
    });
    assert.match(e1, /not a loopback address/);
    assert.match(e1, /allow_remote_clients/);
    const e2 = await lab.rsm.callError("ssh_forward_dynamic", {
      session_id: "box",
      forward_id: "wide",
      bind_port: 0,
      bind_addr: "0.0.0.0",
    });
    assert.match(e2, /allow_remote_clients/);
    const wide = await lab.rsm.callJson("ssh_forward_local", {
      ...base,
      forward_id: "wide",
      bind_addr: "0.0.0.0",
      allow_remote_clients: true,
    });
    assert.equal(wide.bind_addr, "0.0.0.0");

    // the port is taken by someone else
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    const e3 = await lab.rsm.callError("ssh_forward_local", {
      ...base,
      forward_id: "busy",
      bind_port: port,
    });
    assert.match(
      e3,
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`),
    );
    // the failed forward is not listed, a duplicate id is refused, the daemon still answers
    const e4 = await lab.rsm.callError("ssh_forward_local", { ...base, forward_id: "wide" });
    assert.match(e4, /exists/);
    const e5 = await lab.rsm.callError("ssh_forward_local", {
      ...base,
      session_id: "nope",
      forward_id: "x",
    });
    assert.match(e5, /Cannot find SSH session "nope"/);
    const rows: Row[] = await lab.rsm.callJson("ssh_forwards_list");
    assert.deepEqual(rows.map((r) => r.id), ["wide"]);
    const r = await lab.rsm.callJson("ssh_exec", { session_id: "box", command: "echo alive" });
    assert.equal(r.stdout, "alive\n");

    // the remote side refuses a port already taken there
    const first = await lab.rsm.callJson("ssh_forward_remote", {
      session_id: "box",
      forward_id: "r1",
      bind_port: 0,
      local_port: 9,
    });
    const e6 = await lab.rsm.callError("ssh_forward_remote", {
      session_id: "box",
      forward_id: "r2",
      bind_port: first.bind_port,
      local_port: 9,
    });
    assert.match(e6, /Cannot listen on 127\.0\.0\.1:\d+ on the server/);

    // ssh_disconnect closes the session's forwards
    await lab.rsm.call("ssh_disconnect", { id: "box" });
    assert.deepEqual(await lab.rsm.callJson("ssh_forwards_list"), []);
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: wide.bind_port }));
  },
);
