/**
 * Small helpers shared by the tests/ssh_*_test.ts files: an rsm session whose daemon gets
 * extra environment variables (tempEnv() drops SSH_AUTH_SOCK on purpose), a real ssh-agent,
 * and `ps`/`pgrep` checks.
 */
import { run, type TempEnv, tempEnv } from "./env.ts";
import { type RsmClient, startRsm, stopDaemon } from "./mcp.ts";
import { randomHex } from "./sshd.ts";

/** `rsmSession` with `extraEnv` applied after tempEnv's scrubbing (e.g. SSH_AUTH_SOCK). */
export async function rsmWithEnv(
  extraEnv: Record<string, string> = {},
): Promise<RsmClient & { tmp: TempEnv }> {
  const tmp = await tempEnv();
  Object.assign(tmp.env, extraEnv);
  const c = await startRsm(tmp.env, { json: true });
  const close = c.close;
  return Object.assign(c, {
    tmp,
    async [Symbol.asyncDispose]() {
      await close();
      await stopDaemon(tmp.env);
      await tmp[Symbol.asyncDispose]();
    },
  });
}

/** A real `ssh-agent -D` on a temp socket; `add(key, passphrase?)` runs ssh-add. */
export interface Agent extends AsyncDisposable {
  socket: string;
  pid: number;
  add(keyPath: string): Promise<void>;
}

/** Starts `ssh-agent -D -a SOCKET`. */
export async function startAgent(): Promise<Agent> {
  const dir = await Deno.makeTempDir({ prefix: "rsm-agent-" });
  const socket = `${dir}/agent.${randomHex(4)}.sock`;
  const child = new Deno.Command("ssh-agent", {
    args: ["-D", "-a", socket],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      if (Deno.statSync(socket).isSocket) break;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    socket,
    pid: child.pid,
    async add(keyPath) {
      const r = await run("ssh-add", [keyPath], {
        env: { ...Deno.env.toObject(), SSH_AUTH_SOCK: socket },
      });
      if (r.code !== 0) throw new Error(`ssh-add failed: ${r.stderr}`);
    },
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Full command lines of the processes of `user` (via ps). */
export async function userProcesses(user: string): Promise<string[]> {
  const r = await run("ps", ["-u", user, "-o", "args="]);
  return r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
}
