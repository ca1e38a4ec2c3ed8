/**
 * Forwards across reconnects and daemon crashes (issue 5, acceptance 5 and 8): after a cut
 * and restored link, -L and -D work again without being re-created and -R is back on the
 * same port; a persistent session's forwards come back after kill -9 of the daemon.
 */
import assert from "node:assert/strict";
import { freePort, need, run, testIf, waitFor } from "./support/env.ts";
import { forwardLab } from "./support/forward_lab.ts";
import { startServers } from "./support/forward_servers.ts";
import { alive, readHandle } from "./support/mcp.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip", "curl"], true);

// deno-lint-ignore no-explicit-any
type Row = any;

/** GET through a SOCKS5 proxy (the name resolved by the proxy). */
async function socksGet(port: number, url: string): Promise<string> {
  const r = await run("curl", [
    "-sS",
    "--max-time",
    "40",
    "--socks5-hostname",
    `127.0.0.1:${port}`,
    url,
  ]);
  return r.stdout + r.stderr;
}

testIf(
  missing,
  "forwards survive a cut link: -L and -D work again and -R is back on the same port",
  async (t) => {
    await using lab = await forwardLab({
      // the server notices the dead connection and frees its -R port
      extraConfig: "ClientAliveInterval 2\nClientAliveCountMax 2",
    });
    await using _srv = await startServers({
      netns: lab.host.ns,
      label: "far",
      http: ["127.0.0.1:8080"],
    });
    await using web = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => new Response("near\n"),
    );
    const rsm = lab.rsm;
    await lab.connect("box", { keepalive: "1s", auto_reconnect: true, timeout: "3s" });
    const l = await rsm.callJson("ssh_forward_local", {
      session_id: "box",
      forward_id: "l",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 8080,
    });
    const d = await rsm.callJson("ssh_forward_dynamic", {
      session_id: "box",
      forward_id: "d",
      bind_port: 0,
    });
    const r = await rsm.callJson("ssh_forward_remote", {
      session_id: "box",
      forward_id: "r",
      bind_port: 0,
      local_port: web.addr.port,
    });
    const curlOnServer = async () =>
      (await rsm.callJson("ssh_exec", {
        session_id: "box",
        command: `curl -sS --max-time 10 http://127.0.0.1:${r.bind_port}/`,
      })).stdout;
    assert.equal(
      await (await fetch(`http://127.0.0.1:${l.bind_port}/hello`)).text(),
      "hello from far\n",
    );
    assert.equal(await socksGet(d.bind_port, "http://127.0.0.1:8080/hello"), "hello from far\n");
    assert.equal(await curlOnServer(), "near\n");
    const state = async () => (await rsm.callJson("ssh_info", { id: "box" })).state;

    let pending: Promise<string> | undefined;
    await t.step("cut the link: the session goes reconnecting, the listeners stay", async () => {
      await lab.link.down();
      await waitFor("reconnecting", async () => (await state()) === "reconnecting", 15_000, 200);
      const rows: Row[] = await rsm.callJson("ssh_forwards_list", { session_id: "box" });
      assert.deepEqual(rows.map((x) => x.id).sort(), ["d", "l", "r"]);
      // a connection made now waits for the session instead of failing
      pending = fetch(`http://127.0.0.1:${l.bind_port}/hello`).then((x) => x.text());
      await new Promise((res) => setTimeout(res, 500));
    });

    await t.step("restore the link: -L, -D and the waiting connection work again", async () => {
      await lab.link.up();
      await waitFor("connected", async () => (await state()) === "connected", 30_000, 250);
      assert.equal(await pending, "hello from far\n");
      assert.equal(
        await (await fetch(`http://127.0.0.1:${l.bind_port}/hello`)).text(),
        "hello from far\n",
      );
      assert.equal(
        await socksGet(d.bind_port, "http://127.0.0.1:8080/hello"),
        "hello from far\n",
      );
    });

    await t.step("-R is re-established on the same port", async () => {
      await waitFor("-R back", async () => (await curlOnServer()) === "near\n", 40_000, 1000);
      const rows: Row[] = await rsm.callJson("ssh_forwards_list", { session_id: "box" });
      const byId = Object.fromEntries(rows.map((x) => [x.id, x]));
      assert.equal(byId.r.bind_port, r.bind_port);
      assert.equal(byId.l.bind_port, l.bind_port);
      assert.equal(byId.d.bind_port, d.bind_port);
    });
  },
);

testIf(
  missing,
  "a persistent session's forwards come back after kill -9 of the daemon",
  async () => {
    await using lab = await forwardLab();
    await using _srv = await startServers({
      netns: lab.host.ns,
      label: "far",
      http: ["127.0.0.1:8080"],
    });
    await using web = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => new Response("near\n"),
    );
    const rsm = lab.rsm;
    await lab.connect("keep", { persistent: true });
    await lab.connect("temp");
    const fixed = freePort();
    const mk = (tool: string, args: Record<string, unknown>) => rsm.callJson(tool, args);
    const lFixed = await mk("ssh_forward_local", {
      session_id: "keep",
      forward_id: "fixed",
      bind_port: fixed,
      remote_host: "127.0.0.1",
      remote_port: 8080,
    });
    assert.equal(lFixed.bind_port, fixed);
    await mk("ssh_forward_local", {
      session_id: "keep",
      forward_id: "any",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 8080,
    });
    await mk("ssh_forward_dynamic", { session_id: "keep", forward_id: "socks", bind_port: 0 });
    await mk("ssh_forward_remote", {
      session_id: "keep",
      forward_id: "back",
      bind_port: 0,
      local_port: web.addr.port,
    });
    await mk("ssh_forward_local", {
      session_id: "temp",
      forward_id: "gone",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 8080,
    });
    await rsm.callJson("snapshot");

    const handle = await readHandle(rsm.env);
    assert.ok(handle);
    Deno.kill(handle.pid, "SIGKILL");
    await waitFor("old daemon gone", () => !alive(handle.pid), 10_000);

    const rows: Row[] = (await waitFor(
      "forwards restored",
      async () => {
        const all: Row[] = await rsm.callJson("ssh_forwards_list");
        return all.length === 4 && all.every((x) => x.bind_port > 0) ? all : null;
      },
      60_000,
      500,
    ))!;
    const byId = Object.fromEntries(rows.map((x) => [x.id, x]));
    assert.ok(!byId.gone, "a forward of a non-persistent session is not restored");
    assert.equal(byId.fixed.bind_port, fixed, "a fixed port keeps its port");
    await waitFor(
      "session back",
      async () => {
        const i = await rsm.callJson("ssh_info", { id: "keep" });
        return i.state === "connected";
      },
      30_000,
      250,
    );
    for (const id of ["fixed", "any"]) {
      const text = await (await fetch(`http://127.0.0.1:${byId[id].bind_port}/hello`)).text();
      assert.equal(text, "hello from far\n");
    }
    assert.equal(
      await socksGet(byId.socks.bind_port, "http://127.0.0.1:8080/hello"),
      "hello from far\n",
    );
    await waitFor(
      "-R back",
      async () => {
        const now: Row[] = await rsm.callJson("ssh_forwards_list", { session_id: "keep" });
        const back = now.find((x) => x.id === "back");
        const res = await rsm.callJson("ssh_exec", {
          session_id: "keep",
          command: `curl -sS --max-time 10 http://127.0.0.1:${back.bind_port}/`,
        });
        return res.stdout === "near\n";
      },
      30_000,
      500,
    );
  },
);
