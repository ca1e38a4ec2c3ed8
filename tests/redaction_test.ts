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

/** The strings of a JSON result joined (or the text itself when it is not JSON). */
function stringsOf(text: string): string {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "string") out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  try {
    walk(JSON.parse(text));
  } catch {
    return text;
  }
  return out.join("\n");
}

/** Asserts no secret of the corpus and every look-alike is in `text` (JSON-decoded strings). */
function assertRedacted(where: string, text: string, lookalikes = true): void {
  for (const s of SECRETS) {
    assert.ok(!text.includes(s.secret), `${where} shows the secret of: ${s.text}`);
  }
  if (!lookalikes) return;
  assert.ok((text.match(/\[redacted:[a-z_]+\]/g) ?? []).length >= SECRETS.length, where);
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

    await t.step("output_read of a cut result", async () => {
      const cut = await rsm.call("ssh_exec", {
        session_id: "box",
        command: `cat ${file}`,
        max_output: 2048,
      });
      const id = /"output_id":\s*"([^"]+)"/.exec(cut)?.[1];
      assert.ok(id, `no output_id in: ${cut.slice(0, 400)}`);
      let text = "";
      let offset = 0;
      for (let i = 0; i < 50; i++) {
        const page = await rsm.callJson("output_read", { output_id: id, offset });
        text += page.data;
        if (page.eof) break;
        offset = page.next_offset;
      }
      assertRedacted("output_read", text);
      const grep = await rsm.callJson("output_read", { output_id: id, grep: "AKIA|ASIA|Bearer" });
      assertRedacted("output_read grep", grep.output, false);
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
      const shown = JSON.parse(screen).screen as string;
      assert.ok(shown.split("\n").length > 80, shown.slice(0, 300));
      assertRedacted("ssh_shell_screen", shown);
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
      assertRedacted("docker_container_logs", stringsOf(logs));
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
