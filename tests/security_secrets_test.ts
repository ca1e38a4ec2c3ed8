/**
 * Secrets scan (issue 10, acceptance 7): every way a secret reaches rsm — inline password,
 * `password_env`, `password_file`, inline and env key passphrases, sudo passwords, wrong
 * passwords — is exercised with debug logging on, across a graceful stop and a restart; then
 * no secret appears in any file under the config dir (state.json, daemon.log, audit.log,
 * known_hosts, the handle), in any tool answer, or in `ps` output sampled all along.
 * (The other reliability/security tests run the same scan over their own config dirs.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, tempEnv, testIf, waitFor } from "./support/env.ts";
import { rsmCli, startRsm, stopDaemon } from "./support/mcp.ts";
import { createUser, randomHex, startSshd } from "./support/sshd.ts";
import { psSampler, scanForSecrets } from "./support/secrets_scan.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "sudo"], true);

// deno-lint-ignore no-explicit-any
type Row = any;

testIf(missing, "no secret reaches the config dir, logs, audit, answers or ps", async () => {
  await using user = await createUser({ sudo: true });
  await using sshd = await startSshd();
  const wrong = `wrong-${randomHex(12)}`;
  const wrongSudo = `badsudo-${randomHex(12)}`;
  await using tmp = await tempEnv({
    RSM_S_PW: user.password,
    RSM_S_PP: user.keyPassphrase,
    RSM_S_BAD: wrongSudo,
    REMOTE_SHELL_MCP_LOG_LEVEL: "debug",
  });
  const pwFile = join(tmp.root, "pw.txt");
  await Deno.writeTextFile(pwFile, user.password + "\n", { mode: 0o600 });
  const secrets = [user.password, user.keyPassphrase, wrong, wrongSudo];
  const ps = psSampler(300);
  const answers: string[] = [];
  let rsm = await startRsm(tmp.env, { json: true });
  const keep = async (p: Promise<string>) => {
    const t = await p;
    answers.push(t);
    return t;
  };
  try {
    const base = { user: user.name, addresses: [sshd.address], persistent: true };
    const specs: Record<string, Record<string, unknown>> = {
      inline: { ...base, auth: { password: user.password } },
      env: { ...base, auth: { password_env: "RSM_S_PW" } },
      file: { ...base, auth: { password_file: pwFile } },
      pp_inline: {
        ...base,
        auth: { key_path: user.encKeyPath, key_passphrase: user.keyPassphrase },
      },
      pp_env: { ...base, auth: { key_path: user.encKeyPath, key_passphrase_env: "RSM_S_PP" } },
    };
    for (const [id, spec] of Object.entries(specs)) {
      await keep(rsm.call("ssh_connect", { id, spec }));
    }
    // Failures whose messages must not carry the secret either.
    await keep(rsm.callError("ssh_connect", {
      id: "bad",
      spec: { user: user.name, addresses: [sshd.address], auth: { password: wrong } },
    }));
    await keep(rsm.callError("ssh_connect", {
      id: "bad2",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        auth: { key_path: user.encKeyPath, key_passphrase: wrong },
      },
    }));
    const sudo = JSON.parse(
      await keep(rsm.call("ssh_exec", {
        session_id: "env",
        command: "id -u",
        sudo: true,
        sudo_password_env: "RSM_S_PW",
      })),
    );
    assert.equal(sudo.stdout.trim(), "0");
    await keep(
      rsm.callRaw("ssh_exec", {
        session_id: "env",
        command: "id -u",
        sudo: true,
        sudo_password_env: "RSM_S_BAD",
      }).then((r) => JSON.stringify(r)),
    );
    await keep(rsm.call("ssh_shell_open", { session_id: "file", shell_id: "s" }));
    await keep(rsm.call("ssh_shell_run", { session_id: "file", shell_id: "s", command: "whoami" }));
    await keep(rsm.call("ssh_file_write", {
      session_id: "pp_env",
      path: `${user.home}/note.txt`,
      data: "hello",
    }));
    await keep(rsm.call("status"));
    await keep(rsm.call("snapshot"));
    // A graceful stop (state flushed) and a restart that restores from state.json.
    await rsm.close();
    const stop = await rsmCli(tmp.env, ["stop"]);
    assert.equal(stop.code, 0, stop.stderr);
    rsm = await startRsm(tmp.env, { json: true });
    const rows = await waitFor(
      "sessions restored",
      async () => {
        const r: Row[] = await rsm.callJson("ssh_list");
        const byId = Object.fromEntries(r.map((x) => [x.id, x.state]));
        return byId.env === "connected" && byId.file === "connected" && byId.pp_env === "connected"
          ? r
          : null;
      },
      60_000,
      500,
    );
    answers.push(JSON.stringify(rows));
    await keep(rsm.call("ssh_exec", { session_id: "env", command: "true" }));
    await keep(rsm.call("status"));
    const audit = await Deno.readTextFile(join(tmp.rsmDir, "audit.log"));
    assert.match(audit, /ssh_exec/, "the audit log recorded the commands");
    ps.stop();
    const leaks = await scanForSecrets(tmp.rsmDir, secrets, [ps.text(), ...answers]);
    assert.deepEqual(leaks, []);
    assert.ok(ps.text().length > 0, "ps was sampled");
  } finally {
    ps.stop();
    await rsm.close();
    await stopDaemon(tmp.env);
  }
});
