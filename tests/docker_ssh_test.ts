/** Docker hosts reached over SSH: `ssh://user@host:port/socket` and `ssh_session`, real sshd + dockerd. */
import assert from "node:assert/strict";
import { need, testIf, waitFor } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";

const missing = dockerdMissing ?? await need(["sshd", "ssh-keygen"], true);

testIf(missing, "docker hosts work over ssh:// and through an existing SSH session", async (t) => {
  await using d = await startDockerd();
  await using user = await createUser();
  await using sshd = await startSshd();
  // the test user may use this private engine's socket
  await Deno.chown(d.socket, user.uid, null);
  await d.cli(["run", "-d", "--name", "box", TEST_IMAGE, "sleep", "1000"]);
  await using rsm = await rsmSession({ json: true });
  const url = `ssh://${user.name}@${sshd.host}:${sshd.port}${d.socket}`;

  await t.step("an unknown host key is refused under host_key_policy strict", async () => {
    const err = await rsm.callError("docker_connect", {
      id: "strict",
      spec: {
        host: url,
        auth: { key_path: user.keyPath },
        host_key_policy: "strict",
        timeout: "10s",
      },
    });
    assert.match(err, /host key|known_hosts/i);
  });

  await t.step(
    "ssh://user@host:port/socket lists containers and execs over the hijacked stream, timeout kill included",
    async () => {
      const info = await rsm.callJson("docker_connect", {
        id: "viassh",
        spec: { host: url, auth: { key_path: user.keyPath } },
      });
      assert.equal(info.state, "connected");
      assert.equal(info.host, `ssh://${user.name}@${sshd.host}:${sshd.port}${d.socket}`);
      const rows = await rsm.callJson("docker_containers", { host_id: "viassh" });
      assert.ok(rows.some((r: { name: string }) => r.name === "box"));
      const r = await rsm.callJson("docker_exec", {
        host_id: "viassh",
        container: "box",
        cmd: ["sh", "-c", "cat; echo err >&2; exit 4"],
        stdin: "through ssh\n",
      });
      assert.deepEqual([r.exit_code, r.stdout, r.stderr], [4, "through ssh\n", "err\n"]);
      const timed = await rsm.callJson("docker_exec", {
        host_id: "viassh",
        container: "box",
        cmd: ["sleep", "300"],
        timeout_ms: 1000,
      });
      assert.equal(timed.timed_out, true);
      assert.doesNotMatch(await d.cli(["top", "box"]), /sleep 300/);
      // the key was recorded under accept-new
      const kh = await Deno.readTextFile(`${rsm.tmp.rsmDir}/known_hosts`);
      assert.match(kh, new RegExp(`\\[${sshd.host}\\]:${sshd.port}`));
    },
  );

  await t.step(
    "ssh_session reaches the engine socket through an existing SSH session",
    async () => {
      const s = await rsm.callJson("ssh_connect", {
        id: "sess",
        spec: {
          user: user.name,
          addresses: [`${sshd.host}:${sshd.port}`],
          auth: { key_path: user.keyPath },
          auto_reconnect: true,
        },
      });
      assert.equal(s.state, "connected");
      const info = await rsm.callJson("docker_connect", {
        id: "viasession",
        spec: { ssh_session: "sess", host: `unix://${d.socket}` },
      });
      assert.equal(info.state, "connected");
      assert.equal(info.source, "ssh_session sess");
      const r = await rsm.callJson("docker_exec", {
        host_id: "viasession",
        container: "box",
        cmd: ["hostname"],
      });
      assert.equal(r.exit_code, 0);
      const unknown = await rsm.callError("docker_connect", {
        id: "nos",
        spec: { ssh_session: "nope" },
      });
      assert.match(unknown, /Cannot find SSH session "nope"/);
      const hosts = await rsm.callJson("docker_list_hosts");
      assert.deepEqual(hosts.map((h: { id: string; state: string }) => [h.id, h.state]), [
        ["viassh", "connected"],
        ["viasession", "connected"],
      ]);
    },
  );

  await t.step(
    "after sshd restarts, both hosts work again without docker_connect (own redial, session reconnect)",
    async () => {
      await sshd.restart();
      await waitFor(
        "session sess to reconnect",
        async () => {
          const info = await rsm.callJson("ssh_info", { id: "sess" });
          return info.state === "connected";
        },
        60_000,
        500,
      );
      for (const host_id of ["viasession", "viassh"]) {
        const r = await waitFor(
          `docker_exec through ${host_id}`,
          async () => {
            const res = await rsm.callRaw("docker_exec", {
              host_id,
              container: "box",
              cmd: ["echo", "back"],
            });
            return res.isError ? null : JSON.parse((res.content[0] as { text: string }).text);
          },
          30_000,
          500,
        );
        assert.equal(r.stdout, "back\n");
      }
      const hosts = await rsm.callJson("docker_list_hosts");
      assert.ok(
        hosts.every((h: { state: string }) => h.state === "connected"),
        JSON.stringify(hosts),
      );
    },
  );
});
