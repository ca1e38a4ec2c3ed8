/**
 * Server faults (issue 10, acceptance 3): sshd killed during a 256 MiB download → a clear
 * error and nothing under the final name; the link cut during a -L transfer → that connection
 * ends (no hang) and the forward works once the link heals; dockerd restarted during a
 * docker_exec → a clear error, and the next call works.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";
import { exchange, forwardLab } from "./support/forward_lab.ts";
import { startServers } from "./support/forward_servers.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";

const sshMissing = await need(["sshd", "ssh-keygen", "useradd"], true);
const netMissing = await need(["sshd", "ssh-keygen", "useradd", "ip"], true);

testIf(
  sshMissing,
  "sshd killed during a 256 MiB download: clear error, no partial file",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    const remote = `${user.home}/big.bin`;
    const mk = await rsm.callJson("ssh_exec", {
      session_id: "box",
      command: `head -c 268435456 /dev/urandom > ${remote} && stat -c %s ${remote}`,
      timeout_ms: 120_000,
    });
    assert.equal(mk.stdout.trim(), "268435456");
    const dest = join(rsm.tmp.root, "dl");
    await Deno.mkdir(dest);
    const local = join(dest, "big.bin");
    let progressed = 0;
    const started = Date.now();
    const call = rsm.callRaw("ssh_download", {
      session_id: "box",
      remote_path: remote,
      local_path: local,
    }, {
      onprogress: (p) => void (progressed = p.progress),
    });
    // Kill sshd (listener and the session's process) once the transfer is under way.
    await waitFor(
      "the download under way",
      async () => {
        if (progressed > 8 << 20) return true;
        for (const e of Deno.readDirSync(dest)) {
          if ((await Deno.stat(join(dest, e.name))).size > 8 << 20) return true;
        }
        return false;
      },
      60_000,
      50,
    );
    await sshd.stop();
    const r = await call;
    const text = r.content.map((
      c: { type: string; text?: string },
    ) => (c.type === "text" ? c.text : "")).join("");
    assert.equal(r.isError, true, `the download must fail, got: ${text.slice(0, 300)}`);
    assert.match(text, /ssh_download|download|connection|closed|lost|reset|ended/i);
    assert.ok(text.length < 2000, "a short, clear message");
    console.log(`error after ${Date.now() - started} ms: ${text}`);
    await Deno.stat(local).then(
      (s) => assert.fail(`a partial file of ${s.size} bytes is under the final name`),
      (err) => assert.ok(err instanceof Deno.errors.NotFound),
    );
    const leftovers = [...Deno.readDirSync(dest)].map((e) => e.name);
    assert.deepEqual(leftovers, [], "no temp file left in the destination either");
    // The daemon still serves.
    const status = await rsm.callJson("status");
    assert.equal(status.sessions.length, 1);
  },
);

testIf(sshMissing, "sshd killed under ssh_shell_run: an error, not an empty result", async () => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  await rsm.callJson("ssh_shell_open", { session_id: "box", shell_id: "s" });
  const call = rsm.callRaw("ssh_shell_run", {
    session_id: "box",
    shell_id: "s",
    command: "echo begun; sleep 20",
  });
  await new Promise((r) => setTimeout(r, 1500));
  await sshd.stop();
  const r = await call;
  const text = r.content.map((c: { type: string; text?: string }) => c.text ?? "").join("");
  assert.equal(r.isError, true, `a cut run must be an error, got: ${text}`);
  assert.match(text, /shell ended during the command.*begun/s);
});

testIf(
  netMissing,
  "link cut during a -L transfer: that connection ends, the forward works after the link heals",
  async () => {
    await using lab = await forwardLab();
    await using _srv = await startServers({ netns: lab.host.ns, echo: ["127.0.0.1:7007"] });
    const rsm = lab.rsm;
    await lab.connect("box", { keepalive: "1s", auto_reconnect: true, timeout: "3s" });
    const l = await rsm.callJson("ssh_forward_local", {
      session_id: "box",
      forward_id: "l",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 7007,
    });
    // A long echo transfer: keep writing and reading until the connection breaks.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: l.bind_port });
    let echoed = 0;
    const chunk = new Uint8Array(16 * 1024).fill(120);
    const writing = (async () => {
      try {
        for (;;) {
          await conn.write(chunk);
          await new Promise((r) => setTimeout(r, 5));
        }
      } catch (err) {
        return err;
      }
    })();
    const reading = (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) return "eof";
          echoed += n;
        }
      } catch (err) {
        return `error ${err}`;
      }
    })();
    await waitFor("bytes flowing", () => echoed > 1 << 20, 30_000, 50);
    const cutAt = Date.now();
    await lab.link.down();
    const end = await Promise.race([
      reading,
      new Promise<string>((r) => setTimeout(() => r("hang"), 45_000)),
    ]);
    assert.notEqual(end, "hang", "the connection through the cut link ends");
    console.log(`-L connection ended (${end}) ${Date.now() - cutAt} ms after the cut`);
    try {
      conn.close();
    } catch { /* closed */ }
    await writing;

    await lab.link.up();
    await waitFor(
      "connected again",
      async () => {
        return (await rsm.callJson("ssh_info", { id: "box" })).state === "connected";
      },
      60_000,
      300,
    );
    const back = await exchange(l.bind_port, "after the heal\n");
    assert.equal(new TextDecoder().decode(back), "after the heal\n");
    const rows = await rsm.callJson("ssh_forwards_list", { session_id: "box" });
    assert.equal(rows.length, 1);
  },
);

testIf(
  dockerdMissing,
  "dockerd restarted during docker_exec: clear error, next call works",
  async () => {
    await using d = await startDockerd({ image: true });
    await using rsm = await rsmWithEnv();
    await d.cli(["run", "-d", "--name", "c1", TEST_IMAGE, "sleep", "3600"]);
    await rsm.callJson("docker_connect", { id: "eng", spec: { host: d.host } });
    const ok = await rsm.callJson("docker_exec", {
      host_id: "eng",
      container: "c1",
      cmd: ["echo", "hi"],
    });
    assert.equal(ok.stdout.trim(), "hi");
    const started = Date.now();
    const call = rsm.callRaw("docker_exec", {
      host_id: "eng",
      container: "c1",
      cmd: ["sleep", "60"],
      timeout_ms: 120_000,
    });
    await new Promise((r) => setTimeout(r, 1500));
    await d.stop();
    const r = await call;
    const text = r.content.map((
      c: { type: string; text?: string },
    ) => (c.type === "text" ? c.text : "")).join("");
    console.log(`docker_exec answered after ${Date.now() - started} ms: ${text.slice(0, 300)}`);
    assert.ok(Date.now() - started < 50_000, "answered well before the command would end");
    // An exec whose engine went away is an error that names the host and says why, never a
    // result (an exit code or empty output would read as the command's own outcome).
    assert.equal(r.isError, true, `a cut docker_exec must be an error, not: ${text}`);
    assert.match(text, /^Cannot exec in container c1: /);
    assert.match(text, /Docker host eng|engine|connection|socket|closed|reset|ended|hang up/i);
    await d.start();
    await d.cli(["start", "c1"]);
    const again = await waitFor(
      "docker_exec works again",
      async () => {
        const x = await rsm.callRaw("docker_exec", {
          host_id: "eng",
          container: "c1",
          cmd: ["echo", "back"],
        });
        return x.isError ? null : x;
      },
      60_000,
      500,
    );
    const t2 = again.content.map((
      c: { type: string; text?: string },
    ) => (c.type === "text" ? c.text : "")).join("");
    assert.equal(JSON.parse(t2).stdout.trim(), "back");
    const rows = await rsm.callJson("docker_list_hosts");
    assert.equal(rows[0].state, "connected");
  },
);
