/**
 * Keepalive and auto-reconnect (issue 3, acceptance 6): a cut link (netns `ip link set down`)
 * is noticed through keepalive and the session comes back when the link does; killing and
 * restarting sshd does the same; ssh_reconnect re-dials on demand.
 */
import assert from "node:assert/strict";
import { need, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { createNet } from "./support/netns.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip"], true);

testIf(
  missing,
  "a session with keepalive and auto_reconnect survives a cut link and an sshd restart",
  async (t) => {
    await using user = await createUser();
    await using net = await createNet();
    const srv = await net.host("srv");
    const link = await net.link("root", srv);
    await using sshd = await startSshd({ netns: srv.ns, listen: link.addrB, port: 22 });
    await using rsm = await rsmWithEnv();
    const info = await rsm.callJson("ssh_connect", {
      id: "box",
      spec: {
        user: user.name,
        addresses: [link.addrB],
        auth: { key_path: user.keyPath },
        keepalive: "1s",
        auto_reconnect: true,
        timeout: "3s",
      },
    });
    assert.equal(info.state, "connected");
    const state = async () => (await rsm.callJson("ssh_info", { id: "box" })).state;

    await t.step("cutting the link turns the state to reconnecting within 10 s", async () => {
      await link.down();
      const started = Date.now();
      await waitFor("reconnecting", async () => (await state()) === "reconnecting", 10_000, 200);
      assert.ok(Date.now() - started < 10_000);
      const during = await rsm.callJson("ssh_info", { id: "box" });
      assert.notEqual(during.last_error, "");
    });

    await t.step(
      "restoring the link brings connected back within 20 s and exec works",
      async () => {
        await link.up();
        await waitFor("connected", async () => (await state()) === "connected", 20_000, 250);
        const r = await rsm.callJson("ssh_exec", { session_id: "box", command: "echo back" });
        assert.equal(r.stdout, "back\n");
      },
    );

    await t.step(
      "killing sshd turns the state to reconnecting; restarting it brings it back",
      async () => {
        const before = (await rsm.callJson("ssh_info", { id: "box" })).connected_at;
        await sshd.stop();
        await waitFor("reconnecting", async () => (await state()) === "reconnecting", 10_000, 200);
        await sshd.restart();
        await waitFor("connected", async () => (await state()) === "connected", 20_000, 250);
        const after = await rsm.callJson("ssh_info", { id: "box" });
        assert.notEqual(after.connected_at, before);
        const r = await rsm.callJson("ssh_exec", { session_id: "box", command: "echo again" });
        assert.equal(r.stdout, "again\n");
      },
    );

    await t.step("ssh_exec while reconnecting waits for the connection", async () => {
      await sshd.stop();
      await waitFor("reconnecting", async () => (await state()) === "reconnecting", 10_000, 200);
      const call = rsm.callJson("ssh_exec", {
        session_id: "box",
        command: "echo waited",
        timeout_ms: 30_000,
      });
      await new Promise((r) => setTimeout(r, 300));
      await sshd.restart();
      const r = await call;
      assert.equal(r.stdout, "waited\n");
    });
  },
);

testIf(
  missing,
  "without auto_reconnect a dropped session is disconnected until ssh_reconnect",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    await sshd.restart(); // kills the live connection
    await waitFor(
      "disconnected",
      async () => {
        const i = await rsm.callJson("ssh_info", { id: "box" });
        return i.state === "disconnected" && i.last_error !== "";
      },
      10_000,
      200,
    );
    const err = await rsm.callError("ssh_exec", { session_id: "box", command: "true" });
    assert.match(err, /ssh_reconnect/);
    const info = await rsm.callJson("ssh_reconnect", { id: "box" });
    assert.equal(info.state, "connected");
    const r = await rsm.callJson("ssh_exec", { session_id: "box", command: "echo ok" });
    assert.equal(r.stdout, "ok\n");
  },
);
