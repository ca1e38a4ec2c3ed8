/**
 * Readable results and the output store through `rsm stdio` against a real sshd: raw text
 * sections, structuredContent, plain screens, exact bounds for `seq 1 N` in both formats,
 * output_read paging and grep of a 5 MiB output, and the small one-call fixes (stat name,
 * forward spec, ssh_file_hash).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { need, run, tempEnv, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { type RsmClient, startRsm, stopDaemon } from "./support/mcp.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "sha256sum", "vi", "top"], true);
const enc = new TextEncoder();

/** Two clients on one daemon's env: the default (TOON) and JSON through a second daemon. */
async function clients(user: { name: string; keyPath: string }, address: string) {
  const made: { rsm: RsmClient; env: Record<string, string>; dispose(): Promise<void> }[] = [];
  for (const json of [false, true]) {
    const tmp = await tempEnv();
    const rsm = await startRsm(tmp.env, { json });
    await rsm.call("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [address], auth: { key_path: user.keyPath } },
    });
    made.push({
      rsm,
      env: tmp.env,
      async dispose() {
        await rsm.close();
        await stopDaemon(tmp.env);
        await tmp[Symbol.asyncDispose]();
      },
    });
  }
  return {
    toon: made[0]!.rsm,
    json: made[1]!.rsm,
    async [Symbol.asyncDispose]() {
      for (const m of made) await m.dispose();
    },
  };
}

const textOf = (r: CallToolResult) =>
  r.content.map((c: { type: string; text?: string }) => (c.type === "text" ? c.text : ""))
    .join("");

/** The body of one `--- name (…) ---` section of a TOON result (its bytes as shown). */
function section(text: string, name: string): { header: string; body: string } {
  const at = text.indexOf(`--- ${name} (`);
  assert.ok(at >= 0, `no ${name} section in:\n${text.slice(0, 400)}`);
  const nl = text.indexOf("\n", at);
  const header = text.slice(at, nl);
  const rest = text.slice(nl + 1);
  const next = rest.search(/^--- (stdout|stderr|output|data|logs|screen) \(\d+ bytes/m);
  let body = next < 0 ? rest : rest.slice(0, next);
  // a newline put in only to start the next header on its own line is not part of the text
  const size = Number(/\((\d+) bytes/.exec(header)![1]);
  const cut = /shown/.test(header);
  if (!cut && body.endsWith("\n") && enc.encode(body).length === size + 1) body = body.slice(0, -1);
  return { header, body };
}

/** Checks a shown `seq` output against the full one: exact omitted counts and flags. */
function checkSeq(where: string, full: string, shown: string, o: Record<string, unknown>) {
  const m = /\[… (\d+) bytes omitted; output_read output_id=(o-\w+) …\]/.exec(shown);
  const parts = shown.split(/\[… \d+ bytes omitted[^\]]*\]\n/);
  let kept = 0;
  if (parts.length === 2) {
    assert.ok(full.startsWith(parts[0]!), `${where}: head`);
    assert.ok(full.endsWith(parts[1]!), `${where}: tail`);
    kept = enc.encode(parts[0]!).length + enc.encode(parts[1]!).length;
  } else {
    assert.equal(shown, full, where);
    kept = full.length;
  }
  const omitted = full.length - kept;
  assert.equal(o.truncated === true, omitted > 0, where);
  if (omitted > 0) {
    assert.ok(m, `${where}: marker`);
    assert.equal(Number(m![1]), omitted, `${where}: marker count`);
    assert.equal(o.omitted_bytes, omitted, `${where}: omitted_bytes`);
    assert.equal(o.total_bytes, full.length, `${where}: total_bytes`);
    assert.equal(o.output_id, m![2]);
  }
}

testIf(missing, "results read like a terminal, and nothing cut is lost", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using c = await clients(user, sshd.address);
  const exec = (rsm: RsmClient, args: Record<string, unknown>) =>
    rsm.client.callTool({ name: "ssh_exec", arguments: { session_id: "box", ...args } }) as Promise<
      CallToolResult
    >;

  await t.step("quotes, tabs, backslashes and UTF-8 appear as themselves", async () => {
    const command = `printf 'say "hi"\\tthere\\nback\\\\slash ünï ✓\\nthird\\n'; ` +
      `printf 'err "q"\\t\\\\\\nline2\\nline3\\n' >&2; exit 3`;
    const expectOut = 'say "hi"\tthere\nback\\slash ünï ✓\nthird\n';
    const expectErr = 'err "q"\t\\\nline2\nline3\n';
    const r = await exec(c.toon, { command });
    const text = textOf(r);
    assert.match(text, /^exit_code: 3$/m);
    assert.ok(!text.includes("\\n") && !text.includes('\\"') && !text.includes("\\t"), text);
    assert.equal(section(text, "stdout").body, expectOut);
    assert.equal(section(text, "stderr").body, expectErr);
    assert.match(
      section(text, "stdout").header,
      new RegExp(`\\(${enc.encode(expectOut).length} bytes\\)`),
    );
    assert.equal((r.structuredContent as Record<string, unknown>).stdout, expectOut);
    const j = await exec(c.json, { command });
    const parsed = JSON.parse(textOf(j));
    assert.equal(parsed.stdout, expectOut);
    assert.equal(parsed.stderr, expectErr);
    assert.equal(parsed.exit_code, 3);
    assert.equal(parsed.truncated, false);
    assert.deepEqual(j.structuredContent, parsed);
  });

  await t.step("seq 1 N: truncated exactly when bytes are left out, counts exact", async () => {
    for (const n of [1000, 5000, 6000, 7000, 20_000, 100_000, 400_000]) {
      const full = Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");
      for (const [format, rsm] of [["toon", c.toon], ["json", c.json]] as const) {
        const r = await exec(rsm, { command: `seq 1 ${n}` });
        const text = textOf(r);
        const where = `seq 1 ${n} (${format})`;
        assert.ok(enc.encode(text).length <= 32 * 1024, `${where}: ${text.length} bytes`);
        const o = r.structuredContent as Record<string, unknown>;
        const shown = format === "json"
          ? String(JSON.parse(text).stdout)
          : section(text, "stdout").body;
        checkSeq(`seq 1 ${n} (${format})`, full, shown, o);
      }
    }
  });

  await t.step("ssh_shell_run output is bounded by the same rule, both formats", async () => {
    for (const [format, rsm] of [["toon", c.toon], ["json", c.json]] as const) {
      const sh = { session_id: "box", shell_id: `seq-${format}` };
      await rsm.call("ssh_shell_open", sh);
      for (const n of [1000, 7000, 100_000]) {
        const full = Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");
        const r = await rsm.client.callTool({
          name: "ssh_shell_run",
          arguments: { ...sh, command: `seq 1 ${n}` },
        }) as CallToolResult;
        const text = textOf(r);
        const where = `shell seq 1 ${n} (${format})`;
        assert.ok(enc.encode(text).length <= 32 * 1024, `${where}: ${text.length} bytes`);
        const o = r.structuredContent as Record<string, unknown>;
        const shown = format === "json"
          ? String(JSON.parse(text).output)
          : section(text, "output").body;
        checkSeq(where, full, shown, o);
      }
      await rsm.call("ssh_shell_close", sh);
    }
  });

  await t.step(
    "5 MiB: output_read pages back every byte, grep finds the planted line",
    async () => {
      const command =
        "head -c 2621440 /dev/zero | tr '\\0' a; echo; echo 'NEEDLE in the middle'; " +
        "head -c 2621417 /dev/zero | tr '\\0' b; echo";
      const r = JSON.parse(textOf(await exec(c.json, { command })));
      assert.equal(r.total_bytes, 5242880);
      assert.equal(r.truncated, true);
      const want = createHash("sha256");
      const got = createHash("sha256");
      want.update("a".repeat(2621440) + "\nNEEDLE in the middle\n" + "b".repeat(2621417) + "\n");
      let offset = 0;
      let pages = 0;
      for (;;) {
        const p = await c.json.callJson("output_read", { output_id: r.output_id, offset });
        got.update(p.data);
        pages++;
        if (p.eof) break;
        offset = p.next_offset;
      }
      assert.equal(got.digest("hex"), want.digest("hex"), `${pages} pages`);
      const g = await c.json.callJson("output_read", {
        output_id: r.output_id,
        grep: "NEEDLE",
      });
      assert.equal(g.matches, 1);
      assert.equal(g.output, "2:NEEDLE in the middle\n");
      const tail = JSON.parse(textOf(await exec(c.json, { command, keep: "tail" })));
      assert.ok(tail.stdout.endsWith("bbbb\n"));
      assert.ok(tail.stdout.startsWith("[… "));
      const unknown = await c.json.callError("output_read", { output_id: "o-nothere1" });
      assert.match(unknown, /no such output/);
    },
  );

  await t.step(
    "the screen is plain lines, matching the terminal's rows, after vi and top",
    async () => {
      const file = `${user.home}/screen.txt`;
      await Deno.writeTextFile(
        file,
        Array.from({ length: 40 }, (_, i) => `row ${i + 1}`).join("\n"),
      );
      await run("chown", [user.name, file]);
      const sh = { session_id: "box", shell_id: "s" };
      await c.toon.call("ssh_shell_open", sh);
      await c.toon.call("ssh_shell_write", { ...sh, data: "vi screen.txt\n" });
      const vi: string = (await waitFor("vi to draw", async () => {
        const t = await c.toon.call("ssh_shell_screen", sh);
        return t.includes("row 23") ? t : null;
      }))!;
      assert.match(vi, /^rows: 24$/m);
      assert.match(vi, /^cursor_row: 0$/m);
      const lines = section(vi, "screen").body.replace(/\n$/, "").split("\n");
      assert.equal(lines[0], "row 1");
      assert.equal(lines[22], "row 23");
      assert.match(lines[23]!, /screen\.txt/);
      for (const l of lines) assert.ok(!/\s$/.test(l), `no trailing blanks: ${JSON.stringify(l)}`);
      assert.ok(!vi.includes('"row'), "no quoting");
      await c.toon.call("ssh_shell_write", { ...sh, data: "\x1b:q!\r" });
      await waitFor("vi to leave", async () => {
        const t = await c.toon.call("ssh_shell_screen", sh);
        return !t.includes("row 23");
      });
      await c.toon.call("ssh_shell_read", { ...sh, idle_ms: 300 });
      await c.toon.call("ssh_shell_write", { ...sh, data: "top -d 1\n" });
      const top: string = (await waitFor("top to draw", async () => {
        const t = await c.toon.call("ssh_shell_screen", sh);
        return /load average/.test(t) && /PID/.test(t) ? t : null;
      }, 30_000))!;
      const topLines = section(top, "screen").body.split("\n");
      assert.match(topLines[0]!, /^top - .*load average/);
      assert.ok(topLines.some((l) => /^\s*PID\s+USER/.test(l)));
      assert.ok(!top.includes(',"'), "not a comma-joined quoted list");
      await c.toon.call("ssh_shell_write", { ...sh, data: "q" });
    },
  );

  await t.step("stat names the base name; ssh_file_hash equals sha256sum", async () => {
    const file = `${user.home}/hash me.bin`;
    await Deno.writeFile(file, crypto.getRandomValues(new Uint8Array(65536)));
    await run("chown", [user.name, file]);
    const st = await c.json.callJson("ssh_file_stat", { session_id: "box", path: file });
    assert.equal(st.name, "hash me.bin");
    const h = await c.json.callJson("ssh_file_hash", { session_id: "box", path: file });
    const expected = (await run("sha256sum", [file])).stdout.split(" ")[0];
    assert.equal(h.hash, expected);
    assert.equal(h.algorithm, "sha256");
  });

  await t.step("a forward opened on port 0 shows the bound port in spec", async () => {
    const f = await c.json.callJson("ssh_forward_local", {
      session_id: "box",
      forward_id: "p0",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 22,
    });
    assert.ok(f.bind_port > 0);
    assert.match(f.spec, new RegExp(`:${f.bind_port}:127\\.0\\.0\\.1:22$`));
    await c.json.call("ssh_forward_cancel", { session_id: "box", forward_id: "p0" });
  });
});
