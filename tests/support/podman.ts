/**
 * A real Podman engine serving the Docker-compatible API (`podman system service`) for tests,
 * with private storage (`--root`, `--runroot`, `--tmpdir` in a temp dir) and its own
 * containers.conf (cgroupfs, file events, ulimits the sandbox allows).
 *
 * `startPodman()` returns the same {@link Dockerd} shape as `startDockerd()` (socket, host,
 * `cli()` — the docker CLI pointed at Podman —, `stop()`, `start()`, `close()`), with the busybox
 * test image imported, so suites written for dockerd run against Podman unchanged.
 * `podmanMissing` is the skip reason or null.
 */
import { join } from "node:path";
import { need, run, waitFor } from "./env.ts";
import { type Dockerd, TEST_IMAGE } from "./dockerd.ts";

/** Why Podman tests cannot run here, or null. */
export const podmanMissing: string | null = await need(["podman", "docker", "busybox"], true);

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function killWait(pid: number, timeoutMs = 10_000): Promise<void> {
  try {
    Deno.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

async function pidsMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!pid || pid === Deno.pid) continue;
    try {
      if ((await Deno.readTextFile(`/proc/${pid}/cmdline`)).includes(needle)) out.push(pid);
    } catch { /* gone */ }
  }
  return out;
}

/** Starts `podman system service` on a private socket (see module doc). */
export async function startPodman(): Promise<Dockerd> {
  const dir = await Deno.makeTempDir({ prefix: "rsm-podman-" });
  await Deno.chmod(dir, 0o755);
  const socket = join(dir, "podman.sock");
  const conf = join(dir, "containers.conf");
  await Deno.writeTextFile(
    conf,
    [
      "[containers]",
      'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
      "[engine]",
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      "[network]",
      'network_backend = "cni"',
      "",
    ].join("\n"),
  );
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: join(dir, "cli-config"),
    CONTAINERS_CONF: conf,
  };
  delete env.DOCKER_CONTEXT;
  const args = [
    "--root",
    join(dir, "root"),
    "--runroot",
    join(dir, "run"),
    "--tmpdir",
    join(dir, "tmp"),
    "system",
    "service",
    "--time=0",
    `unix://${socket}`,
  ];
  let pid = 0;
  const start = async () => {
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        `exec podman ${args.map((a) => `'${a}'`).join(" ")} >>'${join(dir, "podman.log")}' 2>&1`,
      ],
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    child.status.catch(() => {});
    pid = child.pid;
    self.pid = pid;
    await waitFor(
      "podman to answer",
      async () => {
        if (!alive(pid)) throw new Error(`podman exited; see ${join(dir, "podman.log")}`);
        return (await run("docker", ["version", "--format", "{{.Server.Version}}"], { env }))
          .code === 0;
      },
      30_000,
      100,
    );
  };
  const cli = async (a: string[], o: { ok?: boolean; stdin?: string } = {}) => {
    const r = await run("docker", a, { env, stdin: o.stdin });
    if (r.code !== 0 && o.ok !== false) {
      throw new Error(`docker ${a.join(" ")} (podman) failed (${r.code}): ${r.stderr}`);
    }
    return r.stdout + (o.ok === false ? r.stderr : "");
  };
  let closed = false;
  const self: Dockerd = {
    dir,
    socket,
    host: `unix://${socket}`,
    pid,
    env,
    cli,
    async stop() {
      await killWait(pid);
    },
    start,
    async close() {
      if (closed) return;
      closed = true;
      if (alive(pid)) {
        const ids = (await cli(["ps", "-aq"], { ok: false })).split("\n").filter((l) =>
          /^[0-9a-f]{12}$/.test(l.trim())
        );
        if (ids.length) await cli(["rm", "-f", ...ids], { ok: false });
      }
      await killWait(pid);
      for (const p of await pidsMentioning(dir)) await killWait(p, 5_000);
      const mounts = (await Deno.readTextFile("/proc/mounts")).split("\n")
        .map((l) => l.split(" ")[1]).filter((m): m is string => !!m?.startsWith(dir)).reverse();
      for (const m of mounts) await run("umount", ["-l", m]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };
  try {
    await start();
    // the busybox test image
    const root = join(dir, "rootfs");
    for (const d of ["bin", "etc", "root", "tmp"]) {
      await Deno.mkdir(join(root, d), { recursive: true });
    }
    await Deno.chmod(join(root, "tmp"), 0o1777);
    await Deno.copyFile("/bin/busybox", join(root, "bin/busybox"));
    const list = (await run("/bin/busybox", ["--list"])).stdout.split("\n");
    for (const name of list) {
      if (name && name !== "busybox") {
        await Deno.symlink("busybox", join(root, "bin", name)).catch(() => {});
      }
    }
    await Deno.writeTextFile(
      join(root, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n",
    );
    await Deno.writeTextFile(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    const tar = join(dir, "rootfs.tar");
    await run("tar", ["-C", root, "-cf", tar, "."]);
    const r = await run("sh", [
      "-c",
      `docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - ${TEST_IMAGE} < '${tar}'`,
    ], { env });
    if (r.code !== 0) throw new Error(`docker import (podman) failed: ${r.stderr}`);
    await Deno.remove(root, { recursive: true });
    await Deno.remove(tar);
  } catch (err) {
    await self.close();
    throw err;
  }
  return self;
}
