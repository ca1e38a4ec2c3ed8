/**
 * `rsm stdio` on the daemon's machine talks to the daemon's stream link (`mcp.sock`, JSON
 * lines, named in daemon.json); with REMOTE_SHELL_MCP_LINK=http to `/mcp` over the daemon's
 * own HTTP socket; with neither socket there, to the TCP URL. Calls work every way. The stream
 * link itself checks the token, the profile and every line like `/mcp` does.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, tempEnv, testIf } from "./support/env.ts";
import { readHandle, startRsm, stopDaemon } from "./support/mcp.ts";
import { LineReader, LineWriter } from "../lib/lines.ts";
import { INITIALIZE } from "./support/raw_stdio.ts";

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

/** Established connections the daemon serves on the socket at `path`. */
async function servedOn(daemon: number, path: string): Promise<number> {
  const out = await new Deno.Command("ss", { args: ["-xpnH"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === "ESTAB" && f[4] === path && line.includes(`pid=${daemon},`);
  }).length;
}

interface DaemonFile {
  pid: number;
  token: string;
  socket?: string;
  mcp_socket?: string;
}

async function daemonFile(rsmDir: string): Promise<DaemonFile> {
  return JSON.parse(await Deno.readTextFile(join(rsmDir, "daemon.json")));
}

testIf(missing, "the launcher talks to the daemon over its stream link (mcp.sock)", async () => {
  await using tmp = await tempEnv();
  try {
    const rsm = await startRsm(tmp.env, { json: true });
    let handle: DaemonFile;
    try {
      await rsm.callJson("status");
      handle = await daemonFile(tmp.rsmDir);
      assert.equal(handle.mcp_socket, join(tmp.rsmDir, "mcp.sock"));
      const launcher = rsm.transport.pid!;
      assert.equal(await unixLinks(launcher, handle.pid, handle.mcp_socket), 1);
      assert.equal(await unixLinks(launcher, handle.pid, handle.socket!), 0, "no HTTP link too");
      const listed = await rsm.client.listTools();
      assert.ok(listed.tools.some((t: { name: string }) => t.name === "ssh_exec"));
    } finally {
      await rsm.close();
    }
    // the launcher's exit ends its session: the daemon holds no connection on mcp.sock
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i++) {
      left = await servedOn(handle.pid, handle.mcp_socket);
      if (left) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(left, 0, "the daemon still holds the closed launcher's stream link");
  } finally {
    await stopDaemon(tmp.env);
  }
});

testIf(missing, "REMOTE_SHELL_MCP_LINK=http: the launcher uses /mcp over daemon.sock", async () => {
  await using tmp = await tempEnv();
  try {
    const rsm = await startRsm({ ...tmp.env, REMOTE_SHELL_MCP_LINK: "http" }, { json: true });
    try {
      await rsm.callJson("status");
      const handle = await daemonFile(tmp.rsmDir);
      assert.equal(handle.socket, join(tmp.rsmDir, "daemon.sock"));
      const launcher = rsm.transport.pid!;
      assert.ok(
        await unixLinks(launcher, handle.pid, handle.socket) >= 1,
        "no link to daemon.sock",
      );
      assert.equal(await unixLinks(launcher, handle.pid, handle.mcp_socket!), 0);
    } finally {
      await rsm.close();
    }
  } finally {
    await stopDaemon(tmp.env);
  }
});

testIf(missing, "a handle whose sockets are gone leaves the launcher on TCP", async () => {
  await using tmp = await tempEnv();
  try {
    const first = await startRsm(tmp.env, { json: true });
    await first.callJson("status");
    await first.close();
    const file = join(tmp.rsmDir, "daemon.json");
    const handle = JSON.parse(await Deno.readTextFile(file));
    // the same daemon and token; the sockets it names do not exist
    handle.socket = join(tmp.root, "no-such.sock");
    handle.mcp_socket = join(tmp.root, "no-such-mcp.sock");
    await Deno.writeTextFile(file, JSON.stringify(handle));
    const rsm = await startRsm(tmp.env, { json: true });
    try {
      const listed = await rsm.client.listTools();
      assert.ok(listed.tools.some((t: { name: string }) => t.name === "ssh_exec"));
      assert.equal((await readHandle(tmp.env))?.pid, handle.pid, "still the first daemon");
      const pid = rsm.transport.pid!;
      assert.equal(await unixLinks(pid, handle.pid, join(tmp.rsmDir, "daemon.sock")), 0);
      assert.equal(await unixLinks(pid, handle.pid, join(tmp.rsmDir, "mcp.sock")), 0);
    } finally {
      await rsm.close();
    }
  } finally {
    await stopDaemon(tmp.env);
  }
});

/** A raw client of the stream link: one connection, lines both ways. */
async function rawLink(path: string) {
  const conn = await Deno.connect({ transport: "unix", path });
  const lines = new LineReader(conn, 64 * 1024 * 1024);
  const writer = new LineWriter(conn);
  return {
    send: (v: unknown) => writer.write(typeof v === "string" ? v : JSON.stringify(v)),
    next: async () => {
      const line = await lines.next();
      return line === null ? null : JSON.parse(line);
    },
    close: () => {
      try {
        conn.close();
      } catch { /* closed */ }
    },
  };
}

testIf(missing, "the stream link checks the token, the profile and each line", async () => {
  await using tmp = await tempEnv();
  try {
    const first = await startRsm(tmp.env, { json: true });
    await first.callJson("status");
    await first.close();
    const handle = await daemonFile(tmp.rsmDir);
    const path = handle.mcp_socket!;

    const bad = await rawLink(path);
    await bad.send({ token: "0".repeat(64) });
    const refused = await bad.next();
    assert.equal(refused.ok, false);
    assert.match(refused.error, /token/);
    assert.equal(await bad.next(), null, "closed after refusing");
    bad.close();

    const profile = await rawLink(path);
    await profile.send({ token: handle.token, tools: "nosuchgroup" });
    const badProfile = await profile.next();
    assert.equal(badProfile.ok, false);
    assert.match(badProfile.error, /nosuchgroup/);
    profile.close();

    const link = await rawLink(path);
    try {
      await link.send({ token: handle.token, tools: "meta", format: "json" });
      assert.deepEqual(await link.next(), { ok: true, pid: handle.pid });
      await link.send({ ...INITIALIZE, id: 1 });
      const init = await link.next();
      assert.equal(init.id, 1);
      assert.ok(init.result?.serverInfo, "initialize answered");
      await link.send({ jsonrpc: "2.0", method: "notifications/initialized" });
      await link.send({ jsonrpc: "2.0", id: 2, method: "tools/list" });
      const names = (await link.next()).result.tools.map((t: { name: string }) => t.name);
      assert.ok(names.includes("status") && !names.includes("ssh_exec"), "the meta profile only");
      await link.send("{not json");
      assert.equal((await link.next()).error.code, -32700);
      await link.send(
        '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"status","arguments":{"__proto__":{"x":1}}}}',
      );
      const proto = await link.next();
      assert.equal(proto.id, 3);
      assert.equal(proto.error.code, -32602);
      assert.match(proto.error.message, /__proto__/);
      await link.send({
        jsonrpc: "2.0",
        id: 4,
        method: "tools/call",
        params: { name: "status", arguments: [1] },
      });
      const arr = await link.next();
      assert.equal(arr.id, 4);
      assert.equal(arr.error.code, -32602);
      assert.match(arr.error.message, /JSON object/);
      // and the session goes on serving
      await link.send({
        jsonrpc: "2.0",
        id: 5,
        method: "tools/call",
        params: { name: "status", arguments: {} },
      });
      const status = await link.next();
      assert.equal(status.id, 5);
      assert.equal(status.result.isError ?? false, false);
      assert.match(status.result.content[0].text, new RegExp(`${handle.pid}`));
    } finally {
      link.close();
    }
  } finally {
    await stopDaemon(tmp.env);
  }
});
