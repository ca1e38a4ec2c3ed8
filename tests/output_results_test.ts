/**
 * Readable results and the output store through `rsm stdio` against a real sshd: raw text
 * sections, structuredContent, plain screens, output_read paging and grep of a 5 MiB output,
 * and the small one-call fixes (stat name, forward spec, ssh_file_hash). Exact bounds for
 * every tool are in output_bounds_test.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { need, run, tempEnv, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { type RsmClient, startRsm, stopDaemon } from "./support/mcp.ts";
import { section, textOf } from "./support/bounds.ts";

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

/** A headless terminal (the emulator a person's terminal would be) fed by the test. */
async function personTerminal(rows: number, cols: number) {
  const { Terminal } = (await import("@xterm/headless")).default;
  const term = new Terminal({ rows, cols, scrollback: 200, allowProposedApi: true });
  const flush = () => new Promise<void>((resolve) => term.write("", resolve));
  return {
    async feed(text: string) {
      term.write(text);
      await flush();
    },
    /** Its rows as plain lines (trailing blanks and blank bottom lines left out) and cursor. */
    async rows() {
      await flush();
      const b = term.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < rows; i++) {
        lines.push((b.getLine(b.viewportY + i)?.translateToString(true) ?? "").replace(/\s+$/, ""));
      }
      while (lines.length && !lines[lines.length - 1]) lines.pop();
      return { rows: lines, cursorRow: b.cursorY, cursorCol: b.cursorX };
    },
    [Symbol.asyncDispose]() {
      term.dispose();
      return Promise.resolve();
    },
  };
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
      // A terminal of the test's own, fed every byte the shell printed (ssh_shell_read): what
      // a person's terminal would show. rsm's screen must equal its rows, line for line.
      await using person = await personTerminal(24, 80);
      const drain = async () => {
        const r = await c.toon.call("ssh_shell_read", { ...sh, idle_ms: 500, timeout_ms: 3000 });
        if (/--- data \(/.test(r)) await person.feed(section(r, "data").body);
      };
      /** The screen now, checked against the person's terminal once the shell is quiet. */
      const screenMatches = async (what: string) => {
        await drain();
        const shown = await c.toon.call("ssh_shell_screen", sh);
        await drain(); // nothing came in between (else the two could differ for that reason)
        const lines = section(shown, "screen").body.replace(/\n$/, "").split("\n");
        const want = await person.rows();
        assert.deepEqual(lines, want.rows, `${what}: rsm's screen differs from the terminal's`);
        assert.match(shown, new RegExp(`^cursor_row: ${want.cursorRow}$`, "m"), what);
        assert.match(shown, new RegExp(`^cursor_col: ${want.cursorCol}$`, "m"), what);
        for (const l of lines) {
          assert.ok(!/\s$/.test(l), `no trailing blanks: ${JSON.stringify(l)}`);
        }
        return { shown, lines };
      };
      await c.toon.call("ssh_shell_write", { ...sh, data: "vi screen.txt\n" });
      await waitFor("vi to draw", async () => {
        const t = await c.toon.call("ssh_shell_screen", sh);
        return t.includes("row 23") && /screen\.txt/.test(t);
      });
      const vi = await screenMatches("vi");
      assert.match(vi.shown, /^rows: 24$/m);
      assert.match(vi.shown, /^cursor_row: 0$/m);
      assert.equal(vi.lines[0], "row 1");
      assert.equal(vi.lines[22], "row 23");
      assert.match(vi.lines[23]!, /screen\.txt/);
      assert.ok(!vi.shown.includes('"row'), "no quoting");
      await c.toon.call("ssh_shell_write", { ...sh, data: "\x1b:q!\r" });
      await waitFor("vi to leave", async () => {
        const t = await c.toon.call("ssh_shell_screen", sh);
        return !t.includes("row 23");
      });
      await screenMatches("after vi");
      // a long delay keeps top from redrawing while the two screens are compared
      await c.toon.call("ssh_shell_write", { ...sh, data: "top -d 60\n" });
      await waitFor("top to draw", async () => {
        const t = await c.toon.call("ssh_shell_screen", sh);
        return /load average/.test(t) && /PID\s+USER/.test(t);
      }, 30_000);
      const top = await screenMatches("top");
      assert.match(top.lines[0]!, /^top - .*load average/);
      assert.ok(top.lines.some((l) => /^\s*PID\s+USER/.test(l)));
      assert.ok(!top.shown.includes(',"'), "not a comma-joined quoted list");
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
