/**
 * A scripted agent session: six realistic remote tasks done the way an agent does them with
 * the tools the server offers — fix a broken service, run a slow job, search a big log, deploy
 * files, run a container, drive a REPL — counting calls, bytes returned to the model and
 * errors. Against a real sshd and dockerd on this machine (as root), through `rsm stdio` and
 * the MCP SDK client, in the default (TOON) format.
 *
 * The same script runs against an older tree to compare (`--root DIR`, e.g. a `git worktree`
 * of an earlier commit): where that tree lacks a tool or field (jobs, output_read,
 * `wait_until`, `verify`, docker_run's ports and logs), the session does what an agent had to
 * do without it, and says so in the task's notes.
 *
 * ```sh
 * deno run -A scripts/agent_session.ts                 # this tree
 * git worktree add /tmp/before b7d2792
 * deno run -A scripts/agent_session.ts --root /tmp/before
 * ```
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ROOT, run, tempEnv } from "../tests/support/env.ts";
import { createUser, startSshd } from "../tests/support/sshd.ts";
import { stopDaemon } from "../tests/support/mcp.ts";
import { startDockerd, TEST_IMAGE } from "../tests/support/dockerd.ts";

const { values } = parseArgs({ options: { root: { type: "string", default: ROOT } } });
const root = values.root!;
const enc = new TextEncoder();

/** One task's counts. */
interface Tally {
  task: string;
  calls: number;
  bytes: number;
  errors: number;
  ms: number;
  notes: string[];
}

await using user = await createUser();
await using sshd = await startSshd();
await using d = await startDockerd();
await using tmp = await tempEnv();

const transport = new StdioClientTransport({
  command: "deno",
  args: ["run", "-q", "-P=rsm", join(root, "main.ts"), "stdio"],
  env: tmp.env,
  cwd: root,
  stderr: "pipe",
});
const client = new Client({ name: "agent-session", version: "1.0.0" });
await client.connect(transport);
const tools = new Map(
  (await client.listTools()).tools.map((
    t: { name: string; inputSchema: { properties?: object } },
  ) => [
    t.name,
    t.inputSchema.properties ?? {},
  ]),
);
const has = (tool: string, field?: string) =>
  tools.has(tool) && (!field || field in (tools.get(tool) as Record<string, unknown>));

const tallies: Tally[] = [];
let current: Tally;

/** One tool call as the agent makes it: counted, its text returned. */
async function call(name: string, args: Record<string, unknown> = {}): Promise<string> {
  const r = await client.callTool({ name, arguments: args }, undefined, {
    timeout: 600_000,
  }) as CallToolResult;
  const text = r.content.map((
    c: { type: string; text?: string },
  ) => (c.type === "text" ? c.text : "")).join("");
  current.calls++;
  current.bytes += enc.encode(text).length;
  if (r.isError) current.errors++;
  return text;
}

/** A scalar field of a TOON or JSON result (`key: value` line). */
function field(text: string, key: string): string | undefined {
  return new RegExp(`^\\s*"?${key}"?: "?([^"\\n,]*)"?,?$`, "m").exec(text)?.[1];
}

async function task(name: string, fn: () => Promise<void>): Promise<void> {
  current = { task: name, calls: 0, bytes: 0, errors: 0, ms: 0, notes: [] };
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    current.notes.push(`FAILED: ${(err as Error).message}`);
  }
  current.ms = Date.now() - t0;
  tallies.push(current);
}

const home = user.home;
const asUser = async (path: string, text: string, mode = 0o644) => {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text, { mode });
  await run("chown", ["-R", `${user.name}:`, home]);
};

// The world the agent is asked about (set up by hand, not counted).
await asUser(`${home}/app/app.conf`, "port=eighty\nworkers=2\n");
await asUser(
  `${home}/app/ctl`,
  `#!/bin/sh
cd "$(dirname "$0")"; . ./app.conf
case "$1" in
start)
  case "$port" in ''|*[!0-9]*) echo "$(date +%T) error: port '$port' in app.conf is not a number" >> app.log; exit 2;; esac
  (while :; do sleep 5; done) >/dev/null 2>&1 & echo $! > app.pid
  echo "$(date +%T) listening on $port with $workers workers" >> app.log ;;
status)
  if [ -f app.pid ] && kill -0 "$(cat app.pid)" 2>/dev/null; then echo running; else echo stopped; exit 3; fi ;;
esac
`,
  0o755,
);
await asUser(`${home}/app/app.log`, "09:00:00 error: port 'eighty' in app.conf is not a number\n");
await asUser(
  `${home}/slow.sh`,
  '#!/bin/sh\nfor i in $(seq 1 10); do echo "migrating batch $i/10"; sleep 3; done\necho DONE\n',
  0o755,
);
{
  const lines: string[] = [];
  for (let i = 1; i <= 60_000; i++) {
    lines.push(
      `2026-12-01T10:${String(i % 60).padStart(2, "0")}:00Z INFO request ${i} ok 200 12ms`,
    );
    if (i === 31_337) lines.push("2026-12-01T10:17:00Z FATAL db pool exhausted (max 20)");
  }
  await asUser(`${home}/big.log`, lines.join("\n") + "\n");
}
const site = join(tmp.root, "site");
await Deno.mkdir(site);
await Deno.writeTextFile(join(site, "index.html"), "<h1>v2</h1>\n");
await Deno.writeTextFile(join(site, "app.js"), "console.log('v2');\n".repeat(200));
await run("tar", ["czf", join(tmp.root, "site.tgz"), "-C", site, "."]);
const siteSum = (await run("sha256sum", [join(tmp.root, "site.tgz")])).stdout.slice(0, 64);

try {
  await task("connect", async () => {
    await call("ssh_connect", {
      id: "web1",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    await call("docker_connect", { id: "local", spec: { host: d.host } });
  });

  await task("fix a broken service", async () => {
    await call("ssh_exec", {
      session_id: "web1",
      command: "~/app/ctl status; tail -n 5 ~/app/app.log",
    });
    await call("ssh_file_read", { session_id: "web1", path: "app/app.conf" });
    await call("ssh_file_write", {
      session_id: "web1",
      path: "app/app.conf",
      data: "port=8080\nworkers=2\n",
    });
    const up = await call("ssh_exec", {
      session_id: "web1",
      command: "~/app/ctl start && ~/app/ctl status && tail -n 1 ~/app/app.log",
    });
    if (!/running/.test(up)) throw new Error(`service not running: ${up.slice(0, 200)}`);
  });

  await task("run a slow job (30 s)", async () => {
    if (has("job_wait")) {
      const first = await call("ssh_exec", { session_id: "web1", command: "~/slow.sh" });
      const id = field(first, "job_id");
      if (!id) throw new Error(`no job: ${first.slice(0, 200)}`);
      let out = first;
      while (field(out, "state") !== "exited" && field(out, "state") !== "failed") {
        out = await call("job_wait", { job_id: id, wait_ms: 30_000 });
      }
      if (!/DONE/.test(out)) throw new Error("no DONE");
      current.notes.push("ssh_exec became a job after 20 s; job_wait");
    } else {
      // without jobs the default 30 s timeout kills it: the agent reads the script first
      await call("ssh_exec", { session_id: "web1", command: "cat ~/slow.sh" });
      const out = await call("ssh_exec", {
        session_id: "web1",
        command: "~/slow.sh",
        timeout_ms: 120_000,
      });
      if (!/DONE/.test(out)) throw new Error("no DONE");
      current.notes.push("read the script, guessed timeout_ms: 120000, blocked 30 s");
    }
  });

  await task("search a big log (5 MB)", async () => {
    const cat = await call("ssh_exec", { session_id: "web1", command: "cat ~/big.log" });
    const id = field(cat, "output_id");
    const found = id && has("output_read")
      ? await call("output_read", { output_id: id, grep: "FATAL", context: 2 })
      : await call("ssh_exec", { session_id: "web1", command: "grep -n -C2 FATAL ~/big.log" });
    if (!/FATAL db pool exhausted/.test(found)) throw new Error("FATAL line not found");
    current.notes.push(id ? "output_read grep on the cut output" : "grep -n on the server");
  });

  await task("deploy files (verified)", async () => {
    const verify = has("ssh_upload", "verify");
    const up = await call("ssh_upload", {
      session_id: "web1",
      local_path: join(tmp.root, "site.tgz"),
      remote_path: "site.tgz",
      ...(verify ? { verify: true } : {}),
    });
    if (verify) {
      if (!up.includes(siteSum)) throw new Error("upload not verified");
    } else {
      const sum = await call("ssh_exec", { session_id: "web1", command: "sha256sum site.tgz" });
      if (!sum.includes(siteSum)) throw new Error("checksum differs");
    }
    const ls = await call("ssh_exec", {
      session_id: "web1",
      command: "mkdir -p www && tar xzf site.tgz -C www && ls www",
    });
    if (!/index\.html/.test(ls)) throw new Error("not deployed");
    current.notes.push(verify ? "verify: true" : "sha256sum on the server");
  });

  await task("run a container", async () => {
    const ran = await call("docker_run", {
      host_id: "local",
      spec: {
        image: TEST_IMAGE,
        name: "web",
        cmd: ["sh", "-c", "echo ready on 80; httpd -f -p 80"],
        ports: ["127.0.0.1:0:80"],
      },
    });
    let text = ran;
    if (!/127\.0\.0\.1:\d+->80/.test(text)) {
      text += await call("docker_containers", { host_id: "local" });
      current.notes.push("docker_containers for the port");
    }
    if (!/ready on 80/.test(text)) {
      text += await call("docker_container_logs", { host_id: "local", container: "web" });
      current.notes.push("docker_container_logs for the first lines");
    }
    if (!/127\.0\.0\.1:\d+->80/.test(text) || !/ready on 80/.test(text)) {
      throw new Error("no port or logs");
    }
    await call("docker_container_remove", { host_id: "local", container: "web", force: true });
  });

  await task("drive a REPL (python)", async () => {
    const sh = { session_id: "web1", shell_id: "py" };
    await call("ssh_shell_open", sh);
    if (has("ssh_shell_write", "wait_until")) {
      await call("ssh_shell_write", { ...sh, data: "python3 -q\n", wait_until: ">>> $" });
      const r = await call("ssh_shell_write", { ...sh, data: "2**100\n", wait_until: ">>> $" });
      if (!/1267650600228229401496703205376/.test(r)) throw new Error("no result");
      await call("ssh_shell_write", { ...sh, data: "exit()\n", wait_ms: 3000 });
      current.notes.push("write with wait_until");
    } else {
      await call("ssh_shell_write", { ...sh, data: "python3 -q\n" });
      await call("ssh_shell_read", { ...sh, until: ">>> $", timeout_ms: 10_000 });
      await call("ssh_shell_write", { ...sh, data: "2**100\n" });
      const r = await call("ssh_shell_read", { ...sh, until: ">>> $", timeout_ms: 10_000 });
      if (!/1267650600228229401496703205376/.test(r)) throw new Error("no result");
      await call("ssh_shell_write", { ...sh, data: "exit()\n" });
      current.notes.push("write, then read");
    }
    await call("ssh_shell_close", sh);
  });
} finally {
  await client.close().catch(() => {});
  await stopDaemon(tmp.env);
}

const total = tallies.reduce(
  (t, x) => ({ calls: t.calls + x.calls, bytes: t.bytes + x.bytes, errors: t.errors + x.errors }),
  { calls: 0, bytes: 0, errors: 0 },
);
const commit = (await run("git", ["-C", root, "rev-parse", "--short", "HEAD"])).stdout.trim();
console.log(`rsm at ${root} (${commit})`);
console.log("task".padEnd(28), "calls", "bytes".padStart(8), "errors", "ms".padStart(7), " notes");
for (const t of tallies) {
  console.log(
    t.task.padEnd(28),
    String(t.calls).padStart(5),
    String(t.bytes).padStart(8),
    String(t.errors).padStart(6),
    String(t.ms).padStart(7),
    "",
    t.notes.join("; "),
  );
}
console.log(
  "total".padEnd(28),
  String(total.calls).padStart(5),
  String(total.bytes).padStart(8),
  String(total.errors).padStart(6),
);
console.log(JSON.stringify({ root, commit, ...total, tasks: tallies }));
