import assert from "node:assert/strict";
import { join } from "node:path";
import { App } from "../lib/app.ts";
import { silentLogger } from "../lib/log.ts";
import { resolvePaths } from "../lib/paths.ts";
import { buildRegistry, GROUPS } from "../lib/mcp/mod.ts";
import { ShellBackends } from "../lib/term/mod.ts";
import { createRoutes } from "../lib/http/routes.ts";
import { e2eTest, tempEnv, waitFor } from "./support/env.ts";
import { readHandle, RSM_CMD, rsmCli, rsmSession, stopDaemon } from "./support/mcp.ts";
import { ROOT } from "./support/env.ts";

const TOKEN = "a".repeat(64);

async function withRoutes(fn: (handle: (req: Request) => Promise<Response>) => Promise<void>) {
  await using tmp = await tempEnv();
  const paths = { ...resolvePaths(), dir: tmp.xdg, state: join(tmp.xdg, "state.json") };
  const app = new App({
    paths,
    log: silentLogger,
    format: "toon",
    maxOutput: 32768,
    groups: new Set(GROUPS),
  });
  const routes = createRoutes({
    app,
    registry: buildRegistry(new Set(["meta"]), new ShellBackends()),
    token: TOKEN,
    boundHost: "127.0.0.1",
    onShutdown: () => {},
  });
  try {
    await fn((req) => routes.handle(req));
  } finally {
    await routes.close();
    await app.close();
  }
}

const url = "http://127.0.0.1:4000";

Deno.test("HTTP: no token is 401 with WWW-Authenticate; a wrong token too", async () => {
  await withRoutes(async (handle) => {
    const none = await handle(new Request(`${url}/health`));
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    await none.body?.cancel();
    const wrong = await handle(
      new Request(`${url}/health`, { headers: { authorization: `Bearer ${"b".repeat(64)}` } }),
    );
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const short = await handle(
      new Request(`${url}/health`, { headers: { authorization: "Bearer a" } }),
    );
    assert.equal(short.status, 401);
    await short.body?.cancel();
  });
});

Deno.test("HTTP: the bearer scheme is case-insensitive", async () => {
  await withRoutes(async (handle) => {
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      const res = await handle(
        new Request(`${url}/health`, { headers: { authorization: `${scheme} ${TOKEN}` } }),
      );
      assert.equal(res.status, 200, scheme);
      const body = await res.json();
      assert.equal(body.ok, true);
      assert.equal(body.pid, Deno.pid);
    }
  });
});

Deno.test("HTTP: a foreign Host or Origin is 403 even with the token", async () => {
  await withRoutes(async (handle) => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const host = await handle(new Request("http://evil.example:4000/health", { headers: auth }));
    assert.equal(host.status, 403);
    await host.body?.cancel();
    const origin = await handle(
      new Request(`${url}/health`, { headers: { ...auth, origin: "https://evil.example" } }),
    );
    assert.equal(origin.status, 403);
    await origin.body?.cancel();
    const local = await handle(
      new Request("http://localhost:4000/health", {
        headers: { ...auth, origin: "http://localhost:3000" },
      }),
    );
    assert.equal(local.status, 200);
    await local.body?.cancel();
  });
});

Deno.test("HTTP: a 20 MiB body is refused with 413", async () => {
  await withRoutes(async (handle) => {
    const big = new Uint8Array(20 * 1024 * 1024).fill(0x20);
    const res = await handle(
      new Request(`${url}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: big,
      }),
    );
    assert.equal(res.status, 413);
    await res.body?.cancel();
    // and a chunked body without Content-Length is counted while streaming
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(1024 * 1024).fill(0x20));
        c.close();
      },
    });
    const res2 = await handle(
      new Request(`${url}/mcp`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: stream,
      }),
    );
    assert.equal(res2.status, 413);
    await res2.body?.cancel();
  });
});

e2eTest("the handle and token files are 0600 in a 0700 dir; a second daemon exits 1", async () => {
  await using rsm = await rsmSession({ json: true });
  const status = await rsm.callJson("status");
  const dir = rsm.tmp.rsmDir;
  assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
  for (const f of ["daemon.json", "daemon.lock", "daemon.log"]) {
    assert.equal((await Deno.stat(join(dir, f))).mode! & 0o777, 0o600, f);
  }
  const handle = await readHandle(rsm.env);
  assert.match(handle!.token, /^[0-9a-f]{64}$/);
  const second = await rsmCli(rsm.env, ["daemon"]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, new RegExp(`daemon already running \\(pid ${status.pid}\\)`));
  // the token rotates on every start
  await stopDaemon(rsm.env);
  await rsm.callJson("status");
  const again = await readHandle(rsm.env);
  assert.notEqual(again!.token, handle!.token);
});

e2eTest("rsm daemon --format json serves JSON to a launcher with --no-spawn", async () => {
  await using tmp = await tempEnv();
  const daemon = new Deno.Command(RSM_CMD[0], {
    args: [...RSM_CMD.slice(1), "daemon", "--format", "json"],
    env: tmp.env,
    clearEnv: true,
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor("handle", () => readHandle(tmp.env), 60_000);
    const { startRsm } = await import("./support/mcp.ts");
    const c = await startRsm(tmp.env, { args: ["--no-spawn"] });
    const parsed = JSON.parse(await c.call("status"));
    assert.equal(parsed.format, "json");
    await c.close();
  } finally {
    daemon.kill("SIGTERM");
    const st = await daemon.status;
    assert.equal(st.code, 0, "daemon exits 0 on SIGTERM");
  }
});

e2eTest(
  "legacy SSE transport: GET /sse announces the endpoint and answers over the stream",
  async () => {
    await using rsm = await rsmSession({ json: true });
    await rsm.callJson("status");
    const handle = (await readHandle(rsm.env))!;
    const auth = { authorization: `Bearer ${handle.token}` };
    const ctl = new AbortController();
    const res = await fetch(`${handle.url}/sse`, { headers: auth, signal: ctl.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    const readUntil = async (re: RegExp) => {
      while (!re.test(buf)) {
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        buf += value;
      }
      return re.exec(buf)!;
    };
    const endpoint = (await readUntil(/event: endpoint\ndata: (\S+)\n/))[1];
    const post = (msg: unknown) =>
      fetch(`${handle.url}${endpoint}`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify(msg),
      }).then((r) => r.body?.cancel().then(() => r.status));
    assert.equal(
      await post({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2024-11-05",
          capabilities: {},
          clientInfo: { name: "old", version: "1" },
        },
      }),
      202,
    );
    await readUntil(/"id":1/);
    await post({ jsonrpc: "2.0", method: "notifications/initialized" });
    await post({ jsonrpc: "2.0", id: 2, method: "tools/list" });
    await readUntil(/"id":2/);
    assert.match(buf, /"name":"status"/);
    ctl.abort();
    await reader.cancel().catch(() => {});
  },
);
