/**
 * Redaction through `rsm stdio` (TOON and JSON): the corpus of true secrets and look-alikes
 * printed by ssh_exec, read by ssh_file_read, shown by ssh_shell_screen and logged by a
 * container comes back with every secret `[redacted:<kind>]` and every look-alike intact;
 * `redact = false` in policy.toml turns it off.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";
import { startRsm } from "./support/mcp.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";
import { LOOKALIKES, SECRETS } from "./support/redaction_corpus.ts";

const missing = (await need(["sshd", "ssh-keygen", "useradd"], true)) ?? dockerdMissing;
const CORPUS = [...SECRETS.map((s) => s.text), ...LOOKALIKES].join("\n") + "\n";

/** Asserts no secret of the corpus and every look-alike is in `text` (JSON-decoded strings). */
function assertRedacted(where: string, text: string, lookalikes = true): void {
  for (const s of SECRETS) {
    assert.ok(!text.includes(s.secret), `${where} shows the secret of: ${s.text}`);
  }
  assert.ok((text.match(/\[redacted:[a-z_]+\]/g) ?? []).length >= SECRETS.length, where);
  if (!lookalikes) return;
  for (const l of LOOKALIKES) {
    for (const line of l.split("\n")) assert.ok(text.includes(line), `${where} lost: ${line}`);
  }
}

testIf(missing, "credential shapes are redacted in everything the model sees", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using docker = await startDockerd();
  await using rsm = await rsmWithEnv();
  const file = `/tmp/rsm-corpus-${crypto.randomUUID()}.txt`;
  await Deno.writeTextFile(file, CORPUS, { mode: 0o644 });
  try {
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });

    await t.step("ssh_exec output", async () => {
      const r = await rsm.callJson("ssh_exec", { session_id: "box", command: `cat ${file}` });
      assertRedacted("ssh_exec", r.stdout);
    });

    await t.step("ssh_file_read", async () => {
      const r = await rsm.callJson("ssh_file_read", { session_id: "box", path: file });
      assertRedacted("ssh_file_read", r.data);
    });

    await t.step("ssh_shell_screen and ssh_shell_run", async () => {
      await rsm.callJson("ssh_shell_open", {
        session_id: "box",
        shell_id: "s",
        rows: 200,
        cols: 400,
      });
      const run = await rsm.callJson("ssh_shell_run", {
        session_id: "box",
        shell_id: "s",
        command: `clear; cat ${file}`,
        strip_ansi: true,
      });
      assertRedacted("ssh_shell_run", run.output);
      const screen = await rsm.call("ssh_shell_screen", { session_id: "box", shell_id: "s" });
      // the screen as JSON: its rows joined back into text
      const rows: string[] = JSON.parse(screen).rows;
      assert.ok(rows.length > 100);
      assertRedacted("ssh_shell_screen", rows.join("\n"));
    });

    await t.step("container logs", async () => {
      await rsm.callJson("docker_connect", { id: "d", spec: { host: docker.host } });
      await rsm.callJson("docker_run", {
        host_id: "d",
        spec: {
          image: TEST_IMAGE,
          name: "corpus",
          cmd: ["sh", "-c", 'printf "%s" "$CORPUS"'],
          env: { CORPUS },
          wait: true,
        },
      });
      const logs = await rsm.call("docker_container_logs", {
        host_id: "d",
        container: "corpus",
        tail: "all",
      });
      assertRedacted("docker_container_logs", logs);
    });

    await t.step("the same in TOON, the default format", async () => {
      const toon = await startRsm(rsm.tmp.env);
      try {
        const text = await toon.call("ssh_exec", { session_id: "box", command: `cat ${file}` });
        assertRedacted("ssh_exec (TOON)", text, false);
      } finally {
        await toon.close();
      }
    });

    await t.step("redact = false in policy.toml turns it off", async () => {
      await Deno.writeTextFile(join(rsm.tmp.rsmDir, "policy.toml"), "redact = false\n");
      const r = await rsm.callJson("ssh_exec", { session_id: "box", command: `cat ${file}` });
      assert.equal(r.stdout, CORPUS);
    });
  } finally {
    await Deno.remove(file).catch(() => {});
  }
});
