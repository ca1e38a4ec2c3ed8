/**
 * Many clients (issue 10, acceptance 6): six launchers, each its own MCP client, drive one
 * shared SSH session, shells and forwards at once for a minute (RSM_MANY_CLIENTS_SECONDS=10
 * for a quick local run; CI always runs the full minute) and see no error that a single client would not see: every exec echoes exactly its
 * own token, every shell run returns its own output and exit code, every forwarded request
 * gets the right answer, and forwards made and cancelled by one client never disturb another.
 */
import assert from "node:assert/strict";
import { need, REQUIRE_ALL, tempEnv, testIf } from "./support/env.ts";
import { type RsmClient, startRsm, stopDaemon } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { psSampler, scanForSecrets } from "./support/secrets_scan.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);
const SECONDS = Number(Deno.env.get("RSM_MANY_CLIENTS_SECONDS") ?? 60);

testIf(missing, "six MCP clients share sessions, shells and forwards without errors", async () => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using tmp = await tempEnv({ RSM_MANY_PW: user.password, RSM_MANY_PP: user.keyPassphrase });
  await using web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => new Response(`pong ${new URL(req.url).pathname.slice(1)}`),
  );
  const ps = psSampler();
  const clients: RsmClient[] = [];
  try {
    for (let i = 0; i < 6; i++) clients.push(await startRsm(tmp.env, { json: true }));
    const [first] = clients;
    assert.ok(first);
    await first.callJson("ssh_connect", {
      id: "shared",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        persistent: true,
        auth: { password_env: "RSM_MANY_PW" },
      },
    });
    await first.callJson("ssh_connect", {
      id: "keyed",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        auth: { key_path: user.encKeyPath, key_passphrase_env: "RSM_MANY_PP" },
      },
    });
    const fw = await first.callJson("ssh_forward_local", {
      session_id: "shared",
      forward_id: "web",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: web.addr.port,
    });
    const pids = new Set<number>();
    for (const c of clients) pids.add((await c.callJson("status")).pid);
    assert.equal(pids.size, 1, "all six launchers reach one daemon");

    const errors: string[] = [];
    const counts = new Map<string, number>();
    const deadline = Date.now() + SECONDS * 1000;
    const drive = async (c: RsmClient, i: number) => {
      const shell = `sh${i}`;
      const session = i % 2 ? "shared" : "keyed";
      await c.callJson("ssh_shell_open", { session_id: session, shell_id: shell });
      let n = 0;
      while (Date.now() < deadline) {
        n++;
        const token = `c${i}n${n}`;
        const op = ["exec", "shell", "forward", "own-forward", "list", "file"][n % 6]!; // n % 6 < 6
        counts.set(op, (counts.get(op) ?? 0) + 1);
        try {
          if (op === "exec") {
            const r = await c.callJson("ssh_exec", {
              session_id: "shared",
              command: `echo ${token}`,
            });
            if (r.stdout !== `${token}\n` || r.exit_code !== 0) {
              errors.push(`exec ${token}: ${JSON.stringify(r)}`);
            }
          } else if (op === "shell") {
            const r = await c.callJson("ssh_shell_run", {
              session_id: session,
              shell_id: shell,
              command: `echo ${token}; (exit ${n % 7})`,
            });
            if (r.output.trim() !== token || r.exit_code !== n % 7) {
              errors.push(`shell ${token}: ${JSON.stringify(r)}`);
            }
          } else if (op === "forward") {
            const body = await (await fetch(`http://127.0.0.1:${fw.bind_port}/${token}`)).text();
            if (body !== `pong ${token}`) errors.push(`forward ${token}: ${body}`);
          } else if (op === "own-forward") {
            const f = await c.callJson("ssh_forward_local", {
              session_id: "shared",
              forward_id: `f${i}`,
              bind_port: 0,
              remote_host: "127.0.0.1",
              remote_port: web.addr.port,
            });
            const body = await (await fetch(`http://127.0.0.1:${f.bind_port}/${token}`)).text();
            if (body !== `pong ${token}`) errors.push(`own forward ${token}: ${body}`);
            await c.call("ssh_forward_cancel", { session_id: "shared", forward_id: `f${i}` });
          } else if (op === "list") {
            const rows = await c.callJson("ssh_forwards_list", { session_id: "shared" });
            if (!rows.some((r: { id: string }) => r.id === "web")) {
              errors.push(`list ${token}: web forward missing`);
            }
            const shells = await c.callJson("ssh_shell_list", {});
            if (!shells.some((s: { id: string }) => s.id === shell)) {
              errors.push(`list ${token}: own shell missing`);
            }
          } else {
            const path = `${user.home}/many-${i}.txt`;
            await c.callJson("ssh_file_write", { session_id: "shared", path, data: token });
            const r = await c.callJson("ssh_file_read", { session_id: "shared", path });
            if (r.data !== token) errors.push(`file ${token}: ${r.data}`);
          }
        } catch (err) {
          errors.push(`${op} ${token}: ${(err as Error).message}`);
        }
      }
      await c.call("ssh_shell_close", { session_id: session, shell_id: shell });
    };
    const driveStart = Date.now();
    await Promise.all(clients.map(drive));
    const elapsed = Date.now() - driveStart;
    if (REQUIRE_ALL) {
      assert.ok(SECONDS >= 60 && elapsed >= 60_000, `CI runs the full minute, not ${elapsed} ms`);
    }
    console.log(
      `six clients, ${SECONDS} s: ${[...counts].map(([k, v]) => `${k} ${v}`).join(", ")}; ` +
        `${errors.length} errors`,
    );
    assert.deepEqual(errors.slice(0, 20), []);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    assert.ok(total >= 60, `only ${total} operations in ${SECONDS} s`);
    ps.stop();
    const leaks = await scanForSecrets(
      tmp.rsmDir,
      [user.password, user.keyPassphrase],
      [ps.text()],
    );
    assert.deepEqual(leaks, []);
  } finally {
    ps.stop();
    for (const c of clients) await c.close();
    await stopDaemon(tmp.env);
  }
});
