/**
 * Handle trouble (issue 10, acceptance 5): the handle deleted or corrupted while the daemon
 * runs — launchers recover without killing it, including a launcher that starts before the
 * daemon has rewritten its handle (its own daemon loses the lock and exits; it must then find
 * the first one); a stale handle from a dead daemon whose pid now belongs to another process
 * is not trusted (health is token-authenticated), and that process is left alone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { e2eTest, run, tempEnv, waitFor } from "./support/env.ts";
import { alive, readHandle, startRsm, stopDaemon } from "./support/mcp.ts";

/** Pids of `rsm daemon` processes whose environment names this config dir. */
async function daemonsOf(env: Record<string, string>): Promise<number[]> {
  const ps = await run("pgrep", ["-f", "main.ts daemon"]);
  const out: number[] = [];
  for (const line of ps.stdout.split("\n")) {
    const pid = Number(line.trim());
    if (!pid) continue;
    try {
      const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
      if (environ.includes(`XDG_CONFIG_HOME=${env.XDG_CONFIG_HOME}\0`)) out.push(pid);
    } catch { /* gone */ }
  }
  return out;
}

for (
  const [what, damage] of [
    ["deleted", (p: string) => Deno.remove(p)],
    ["corrupted", (p: string) => Deno.writeTextFile(p, '{"url": "http://127.0.0.1:1", "tok')],
    [
      "overwritten with a wrong token",
      async (p: string) => {
        const h = JSON.parse(await Deno.readTextFile(p));
        await Deno.writeTextFile(p, JSON.stringify({ ...h, token: "0".repeat(64) }));
      },
    ],
  ] as const
) {
  e2eTest(
    `a handle ${what} while the daemon runs: old and new launchers reach the same daemon`,
    async () => {
      await using tmp = await tempEnv();
      const first = await startRsm(tmp.env, { json: true });
      let second: Awaited<ReturnType<typeof startRsm>> | undefined;
      try {
        const s1 = await first.callJson("status");
        const handlePath = join(tmp.rsmDir, "daemon.json");
        await damage(handlePath);
        // A new launcher right away: before the daemon rewrites its handle (every 2 s).
        second = await startRsm(tmp.env, { json: true });
        const s2 = await second.callJson("status");
        assert.equal(s2.pid, s1.pid, "the new launcher found the running daemon");
        const again = await first.callJson("status");
        assert.equal(again.pid, s1.pid, "the first launcher still reaches it");
        assert.ok(alive(s1.pid));
        await waitFor("one daemon", async () => (await daemonsOf(tmp.env)).length === 1, 15_000);
        assert.deepEqual(await daemonsOf(tmp.env), [s1.pid]);
        const h = await waitFor("the handle rewritten", () => readHandle(tmp.env), 10_000);
        assert.equal(h!.pid, s1.pid);
        assert.notEqual(h!.token, "0".repeat(64));
      } finally {
        await second?.close();
        await first.close();
        await stopDaemon(tmp.env);
      }
    },
  );
}

e2eTest(
  "a stale handle whose pid now belongs to another process is not trusted nor killed",
  async () => {
    await using tmp = await tempEnv();
    const first = await startRsm(tmp.env, { json: true });
    const s1 = await first.callJson("status");
    const old = await readHandle(tmp.env);
    assert.ok(old);
    await first.close();
    Deno.kill(s1.pid, "SIGKILL");
    await waitFor("the daemon gone", () => !alive(s1.pid), 10_000);
    // The pid is "reused" by an unrelated process, and the old port by an unrelated server
    // that does not know the token.
    const squatter = new Deno.Command("sleep", { args: ["300"] }).spawn();
    const port = Number(new URL(old.url).port);
    let server: Deno.HttpServer | undefined;
    try {
      server = Deno.serve(
        { hostname: "127.0.0.1", port, onListen: () => {} },
        () => new Response("who are you", { status: 401 }),
      );
    } catch { /* port taken again already: the check below still holds */ }
    await Deno.writeTextFile(
      join(tmp.rsmDir, "daemon.json"),
      JSON.stringify({ ...old, pid: squatter.pid }),
    );
    const next = await startRsm(tmp.env, { json: true });
    try {
      const s2 = await next.callJson("status");
      assert.notEqual(s2.pid, squatter.pid);
      assert.notEqual(s2.pid, s1.pid);
      assert.ok(alive(squatter.pid), "the process with the reused pid was left alone");
      const h = await readHandle(tmp.env);
      assert.equal(h?.pid, s2.pid);
      const st = await run("deno", ["run", "-q", "-P=rsm", "main.ts", "status", "--json"], {
        env: tmp.env,
        cwd: new URL("..", import.meta.url).pathname,
      });
      assert.equal(st.code, 0, st.stderr);
      assert.equal(JSON.parse(st.stdout).pid, s2.pid);
    } finally {
      await next.close();
      await stopDaemon(tmp.env);
      await server?.shutdown();
      squatter.kill("SIGKILL");
      await squatter.status;
    }
  },
);
