/**
 * `rsm stdio` on the daemon's machine talks to the daemon's own Unix socket (named in
 * daemon.json), skipping the TCP front door; a socket that is gone or not that daemon's
 * leaves it on the TCP URL, and calls work either way.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, tempEnv, testIf } from "./support/env.ts";
import { readHandle, startRsm, stopDaemon } from "./support/mcp.ts";

const missing = await need(["ss"]);

/** Unix socket connections of `pid` whose other end is a socket of `path` in `daemon`. */
async function unixLinks(pid: number, daemon: number, path: string): Promise<number> {
  const out = await new Deno.Command("ss", { args: ["-xpnH"], stdout: "piped" }).output();
  const lines = new TextDecoder().decode(out.stdout).split("\n");
  // "u_str ESTAB 0 0 <local path or *> <inode> <peer path or *> <peer inode> users:((...))"
  const served = new Set<string>();
  const mine: string[] = [];
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[1] !== "ESTAB") continue;
    if (f[4] === path && line.includes(`pid=${daemon},`)) served.add(f[7]!);
    if (line.includes(`pid=${pid},`)) mine.push(f[5]!);
  }
  return mine.filter((inode) => served.has(inode)).length;
}

testIf(missing, "the launcher talks to the daemon over its Unix socket", async () => {
  await using tmp = await tempEnv();
  try {
    const rsm = await startRsm(tmp.env, { json: true });
    try {
      const status = await rsm.callJson("status");
      const handle = JSON.parse(
        await Deno.readTextFile(join(tmp.rsmDir, "daemon.json")),
      ) as { socket?: string; pid: number };
      assert.equal(handle.socket, join(tmp.rsmDir, "daemon.sock"));
      assert.equal(status.daemon?.pid ?? handle.pid, handle.pid);
      const launcher = rsm.transport.pid;
      assert.ok(launcher, "the launcher has a pid");
      const links = await unixLinks(launcher, handle.pid, handle.socket);
      assert.ok(links >= 1, "no Unix socket connection from the launcher to daemon.sock");
    } finally {
      await rsm.close();
    }
  } finally {
    await stopDaemon(tmp.env);
  }
});

testIf(missing, "a handle whose socket is gone leaves the launcher on TCP", async () => {
  await using tmp = await tempEnv();
  try {
    const first = await startRsm(tmp.env, { json: true });
    await first.callJson("status");
    await first.close();
    const file = join(tmp.rsmDir, "daemon.json");
    const handle = JSON.parse(await Deno.readTextFile(file));
    // the same daemon and token; the socket it names does not exist
    handle.socket = join(tmp.root, "no-such.sock");
    await Deno.writeTextFile(file, JSON.stringify(handle));
    const rsm = await startRsm(tmp.env, { json: true });
    try {
      const listed = await rsm.client.listTools();
      assert.ok(listed.tools.some((t: { name: string }) => t.name === "ssh_exec"));
      assert.equal((await readHandle(tmp.env))?.pid, handle.pid, "still the first daemon");
      assert.equal(
        await unixLinks(rsm.transport.pid!, handle.pid, join(tmp.rsmDir, "daemon.sock")),
        0,
      );
    } finally {
      await rsm.close();
    }
  } finally {
    await stopDaemon(tmp.env);
  }
});
