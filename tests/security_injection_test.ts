/**
 * Hostile values inside valid arguments (issue 10, acceptance 1, the other half): strings with
 * shell metacharacters, control characters, lone surrogates and format specifiers reach real
 * tools through env values, working directories, file paths and shell input. They are passed
 * on verbatim — never interpreted by a shell on the way — or refused with a clear error; the
 * daemon keeps serving.
 */
import assert from "node:assert/strict";
import { need, testIf } from "./support/env.ts";
import { hostileStrings } from "./support/fuzz.ts";
import { createUser, randomHex, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

testIf(missing, "hostile values in valid arguments are passed verbatim, never run", async () => {
  await using user = await createUser({ plainShell: true });
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const canary = `/tmp/rsm-pwned-${randomHex(6)}`;
  const evil = [
    ...hostileStrings("not-a-secret"),
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `'; touch ${canary}; '`,
    `"; touch ${canary}; "`,
    `\\'; touch ${canary} #`,
    `x\ntouch ${canary}\n`,
  ];
  const problems: string[] = [];
  for (const value of evil) {
    const label = JSON.stringify(value).slice(0, 40);
    // env values: printed back exactly (NUL cannot live in an env var: an error is fine).
    const r = await rsm.callRaw("ssh_exec", {
      session_id: "box",
      command: 'printf %s "$RSM_X"',
      env: { RSM_X: value },
    });
    const text = r.content.map((c: { type: string; text?: string }) => c.text ?? "").join("");
    if (!r.isError) {
      const out = JSON.parse(text).stdout;
      const expected = new TextDecoder().decode(new TextEncoder().encode(value)); // lone surrogates → U+FFFD
      if (out !== expected && !value.includes("\u0000")) {
        problems.push(`env ${label}: got ${JSON.stringify(out).slice(0, 80)}`);
      }
    } else if (!text.trim()) problems.push(`env ${label}: empty error`);
    // cwd: a directory that does not exist is an error; it is never evaluated.
    const c = await rsm.callRaw("ssh_exec", { session_id: "box", command: "pwd", cwd: value });
    const ct = c.content.map((x: { type: string; text?: string }) => x.text ?? "").join("");
    if (!c.isError && JSON.parse(ct).exit_code === 0 && value !== "" && !value.startsWith("/")) {
      const pwd = JSON.parse(ct).stdout.trim();
      if (!pwd.endsWith(value.replace(/\n$/, ""))) problems.push(`cwd ${label}: ran in ${pwd}`);
    }
    // file names: created under exactly that name (or refused).
    if (value && !value.includes("/") && !value.includes("\u0000")) {
      const path = `${user.home}/f-${value}`;
      const w = await rsm.callRaw("ssh_file_write", { session_id: "box", path, data: value });
      if (!w.isError) {
        const back = await rsm.callJson("ssh_file_read", { session_id: "box", path });
        const expected = new TextDecoder().decode(new TextEncoder().encode(value));
        if (back.data !== expected) problems.push(`file ${label}: read back differently`);
        await rsm.call("ssh_file_delete", { session_id: "box", path });
      }
    }
    // No value may cost the session its connection.
    const info = await rsm.callJson("ssh_info", { id: "box" });
    if (info.state !== "connected") {
      problems.push(`${label}: session ${info.state} (${info.last_error})`);
      await rsm.callJson("ssh_reconnect", { id: "box" });
    }
  }
  // Shell input: written as data, the shell sees it as one literal argument.
  await rsm.callJson("ssh_shell_open", { session_id: "box", shell_id: "s" });
  // deno-lint-ignore no-control-regex
  for (const value of evil.filter((v) => !/[\u0000-\u001f\u007f]/.test(v) && v.length < 200)) {
    const quoted = `'${value.replaceAll("'", `'\\''`)}'`;
    const r = await rsm.callJson("ssh_shell_run", {
      session_id: "box",
      shell_id: "s",
      command: `printf '%s' ${quoted}`,
    });
    const expected = new TextDecoder().decode(new TextEncoder().encode(value));
    if (r.output !== expected) {
      problems.push(`shell ${JSON.stringify(value).slice(0, 40)}: ${JSON.stringify(r.output)}`);
    }
  }
  // A NUL anywhere that goes into an SSH string must not cost the connection (OpenSSH drops
  // the whole connection for a NUL in an exec, pty, direct-tcpip or tcpip-forward request).
  const nul = "a\u0000b";
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("ok"),
  );
  try {
    const nulCalls: [string, Record<string, unknown>][] = [
      ["ssh_exec", { command: `echo ${nul}` }],
      ["ssh_exec", { command: "true", env: { X: nul } }],
      ["ssh_exec", { command: "true", cwd: nul }],
      ["ssh_exec", { command: "true", pty: true, stdin: nul }],
      ["ssh_shell_open", { shell_id: "n1", command: nul }],
      ["ssh_shell_open", { shell_id: "n2", term: nul }],
      ["ssh_shell_open", { shell_id: "n3", env: { X: nul } }],
      ["ssh_file_write", { path: `${user.home}/${nul}`, data: "x" }],
      ["ssh_file_stat", { path: nul }],
      ["ssh_file_list", { path: nul }],
      ["ssh_forward_remote", { forward_id: "nr", bind_port: 0, local_port: 1, bind_addr: nul }],
      ["ssh_forward_local", {
        forward_id: "nl",
        bind_port: 0,
        remote_host: nul,
        remote_port: web.addr.port,
      }],
    ];
    for (const [tool, args] of nulCalls) {
      const r = await rsm.callRaw(tool, { session_id: "box", ...args });
      const text = r.content.map((c: { type: string; text?: string }) => c.text ?? "").join("");
      if (tool === "ssh_forward_local" && !r.isError) {
        // the NUL reaches the server when a connection is made through the forward
        await fetch(`http://127.0.0.1:${JSON.parse(text).bind_port}/`).then((x) => x.text())
          .catch(() => {});
      }
      const info = await rsm.callJson("ssh_info", { id: "box" });
      if (info.state !== "connected") {
        problems.push(
          `${tool} ${JSON.stringify(args)}: session ${info.state} (${info.last_error})`,
        );
        await rsm.callJson("ssh_reconnect", { id: "box" });
      }
    }
    // A SOCKS5 client asking for a domain with a NUL in it (any local process can).
    const d = await rsm.callJson("ssh_forward_dynamic", {
      session_id: "box",
      forward_id: "nd",
      bind_port: 0,
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.bind_port });
    try {
      const buf = new Uint8Array(64);
      await conn.write(new Uint8Array([5, 1, 0]));
      await conn.read(buf);
      const name = new TextEncoder().encode("bad\u0000.example");
      await conn.write(new Uint8Array([5, 1, 0, 3, name.length, ...name, 0, 80]));
      const n = await conn.read(buf);
      if (n && buf[1] === 0) problems.push("SOCKS5 with a NUL in the domain: reply succeeded");
    } finally {
      conn.close();
    }
    const info = await rsm.callJson("ssh_info", { id: "box" });
    if (info.state !== "connected") problems.push(`SOCKS5 NUL domain: session ${info.state}`);
  } finally {
    await web.shutdown();
  }
  assert.deepEqual(problems, []);
  await Deno.stat(canary).then(
    () => assert.fail("a hostile value was run by a shell"),
    () => {},
  );
  const status = await rsm.callJson("status");
  assert.equal(status.sessions[0].state, "connected");
});
