/**
 * A real Docker engine and a real registry for tests, on private paths and random ports.
 *
 * API (reuse it from any test or script):
 * - `dockerdMissing` — a skip reason (`"needs root"`, `"needs dockerd"`…) or null; pass it to
 *   `testIf(dockerdMissing, …)`.
 * - `startDockerd({tls?, image?})` → {@link Dockerd}: `dockerd` on `unix://<tmp>/docker.sock`
 *   with its own data-root, exec-root, pidfile and a unique bridge (`rsm…`, random 10.x.y.0/24
 *   subnet, `--iptables=false`, so several engines can run side by side). With `image` (default
 *   true) the busybox test image {@link TEST_IMAGE} is imported from `/bin/busybox`. With `tls`,
 *   it also listens on `tcp://127.0.0.1:PORT` with mutual TLS; `tls.dir` holds `ca.pem`,
 *   `cert.pem`, `key.pem` (client) and `wrong-ca.pem` (a CA that did not sign the server).
 *   `stop()` (SIGTERM, data kept), `start()` (again, same socket), `cli(args)` runs the `docker`
 *   CLI against it, `close()` / `await using` removes containers, stops everything it started
 *   (by pid), removes the bridge and the temp dir.
 * - `sharedDockerd()` — one lazily started engine per test module (the first caller starts it);
 *   call `closeSharedDockerd()` in the module's last test.
 * - `startRegistry({auth?})` → {@link Registry}: `docker-registry serve` on
 *   `127.0.0.1:PORT` (loopback registries are "insecure"-allowed by dockerd, no TLS needed);
 *   with `auth: {user, password}` it requires htpasswd basic auth.
 * - `pushTestImage(d, registry, name)` tags {@link TEST_IMAGE} as `<registry>/<name>` and pushes
 *   it (with `docker login` into a private DOCKER_CONFIG when the registry needs auth).
 */
import { join } from "node:path";
import { freePort, need, run, waitFor } from "./env.ts";

/** The busybox image every test engine has (made by `docker import`). */
export const TEST_IMAGE = "rsm-busybox:test";

/** Why Docker tests cannot run here, or null. */
export const dockerdMissing: string | null = await need(
  ["dockerd", "docker", "docker-registry", "busybox", "openssl"],
  true,
);

/** TLS material made by {@link startDockerd} with `tls: true`. */
export interface DockerTls {
  port: number;
  /** `tcp://127.0.0.1:PORT` */
  host: string;
  dir: string;
  ca: string;
  cert: string;
  key: string;
  wrongCa: string;
}

/** A running test engine. */
export interface Dockerd extends AsyncDisposable {
  dir: string;
  socket: string;
  /** `unix://…/docker.sock` */
  host: string;
  /** dockerd's pid (changes after `start()`). */
  pid: number;
  tls?: DockerTls | undefined;
  /** Env for the `docker` CLI pointed at this engine (full env + DOCKER_HOST). */
  env: Record<string, string>;
  /** Runs the docker CLI against this engine; throws on a non-zero exit unless `ok: false`. */
  cli(args: string[], options?: { ok?: boolean; stdin?: string }): Promise<string>;
  /** Stops dockerd (SIGTERM, waits); data and socket path are kept for `start()`. */
  stop(): Promise<void>;
  /** Starts dockerd again with the same paths. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A running registry. */
export interface Registry extends AsyncDisposable {
  /** `127.0.0.1:PORT` */
  address: string;
  pid: number;
  auth?: { user: string; password: string } | undefined;
  close(): Promise<void>;
}

function rand(n = 6): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, n);
}

async function sh(cmd: string, args: string[], what: string): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function killWait(pid: number, timeoutMs = 15_000): Promise<void> {
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

/** Pids of processes whose command line mentions `needle` (our unique temp dir). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!pid || pid === Deno.pid) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      if (cmdline.includes(needle)) out.push(pid);
    } catch { /* gone */ }
  }
  return out;
}

async function freeSubnet(): Promise<string> {
  const used = (await run("ip", ["-4", "addr"])).stdout;
  for (let i = 0; i < 50; i++) {
    const a = 100 + Math.floor(Math.random() * 150);
    const b = 1 + Math.floor(Math.random() * 250);
    if (!used.includes(`10.${a}.${b}.`)) return `10.${a}.${b}`;
  }
  throw new Error("no free 10.x.y.0/24 subnet for a test bridge");
}

/** Makes a CA, a server cert for 127.0.0.1, a client cert, and an unrelated CA. */
async function makeTls(dir: string): Promise<Omit<DockerTls, "port" | "host">> {
  await Deno.mkdir(dir, { recursive: true });
  const o = (args: string[]) => sh("openssl", args, `openssl ${args[0]}`);
  const p = (f: string) => join(dir, f);
  for (const ca of ["ca", "wrong-ca"]) {
    await o(["genrsa", "-out", p(`${ca}-key.pem`), "2048"]);
    await o([
      "req",
      "-x509",
      "-new",
      "-key",
      p(`${ca}-key.pem`),
      "-days",
      "2",
      "-subj",
      `/CN=rsm test ${ca}`,
      "-out",
      p(`${ca}.pem`),
    ]);
  }
  await Deno.writeTextFile(p("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await Deno.writeTextFile(p("client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const [name, ext] of [["server", "server.ext"], ["client", "client.ext"]] as const) {
    await o(["genrsa", "-out", p(`${name}-key.pem`), "2048"]);
    await o([
      "req",
      "-new",
      "-key",
      p(`${name}-key.pem`),
      "-subj",
      `/CN=${name}`,
      "-out",
      p(`${name}.csr`),
    ]);
    await o([
      "x509",
      "-req",
      "-in",
      p(`${name}.csr`),
      "-CA",
      p("ca.pem"),
      "-CAkey",
      p("ca-key.pem"),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      p(ext),
      "-out",
      p(`${name}.pem`),
    ]);
  }
  return {
    dir,
    ca: p("ca.pem"),
    cert: p("client.pem"),
    key: p("client-key.pem"),
    wrongCa: p("wrong-ca.pem"),
  };
}

/** Builds a busybox root filesystem and imports it as {@link TEST_IMAGE}. */
async function importBusybox(dir: string, env: Record<string, string>): Promise<void> {
  const root = join(dir, "rootfs");
  for (const d of ["bin", "etc", "root", "tmp", "var"]) {
    await Deno.mkdir(join(root, d), { recursive: true });
  }
  await Deno.chmod(join(root, "tmp"), 0o1777);
  await Deno.copyFile("/bin/busybox", join(root, "bin/busybox"));
  await Deno.chmod(join(root, "bin/busybox"), 0o755);
  const list = (await sh("/bin/busybox", ["--list"], "busybox --list")).split("\n");
  for (const name of list) {
    if (!name || name === "busybox" || name.includes("/")) continue;
    await Deno.symlink("busybox", join(root, "bin", name)).catch(() => {});
  }
  await Deno.writeTextFile(
    join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n",
  );
  await Deno.writeTextFile(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  const tar = join(dir, "rootfs.tar");
  await sh("tar", ["-C", root, "-cf", tar, "."], "tar rootfs");
  const r = await run("sh", [
    "-c",
    `docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - ${TEST_IMAGE} < '${tar}'`,
  ], { env });
  if (r.code !== 0) throw new Error(`docker import failed: ${r.stderr}`);
  await Deno.remove(root, { recursive: true });
  await Deno.remove(tar);
}

/** Starts a private dockerd (see the module doc). */
export async function startDockerd(
  options: { tls?: boolean; image?: boolean } = {},
): Promise<Dockerd> {
  const dir = await Deno.makeTempDir({ prefix: "rsm-dockerd-" });
  await Deno.chmod(dir, 0o755);
  const socket = join(dir, "docker.sock");
  const bridge = `rsm${rand(8)}`;
  const subnet = await freeSubnet();
  await sh("ip", ["link", "add", "name", bridge, "type", "bridge"], "ip link add");
  await sh("ip", ["addr", "add", `${subnet}.1/24`, "dev", bridge], "ip addr add");
  await sh("ip", ["link", "set", bridge, "up"], "ip link set up");

  let tls: DockerTls | undefined;
  const args = [
    "--data-root",
    join(dir, "data"),
    "--exec-root",
    join(dir, "exec"),
    "--pidfile",
    join(dir, "dockerd.pid"),
    "--host",
    `unix://${socket}`,
    "--bridge",
    bridge,
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--userland-proxy=true",
    "--storage-driver=overlay2",
  ];
  if (options.tls) {
    const port = freePort();
    const m = await makeTls(join(dir, "tls"));
    tls = { ...m, port, host: `tcp://127.0.0.1:${port}` };
    args.push(
      "--host",
      `tcp://127.0.0.1:${port}`,
      "--tlsverify",
      "--tlscacert",
      m.ca,
      "--tlscert",
      join(m.dir, "server.pem"),
      "--tlskey",
      join(m.dir, "server-key.pem"),
    );
  }
  const env: Record<string, string> = { ...Deno.env.toObject(), DOCKER_HOST: `unix://${socket}` };
  delete (env as Record<string, string | undefined>).DOCKER_CONTEXT;
  env.DOCKER_CONFIG = join(dir, "cli-config");

  let pid = 0;
  const start = async () => {
    const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
    const child = new Deno.Command("sh", {
      args: ["-c", `exec dockerd ${args.map(q).join(" ")} >>${q(join(dir, "dockerd.log"))} 2>&1`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    child.status.catch(() => {});
    pid = child.pid;
    self.pid = pid;
    await waitFor(
      "dockerd to answer",
      async () => {
        if (!alive(pid)) {
          throw new Error(`dockerd exited; see ${join(dir, "dockerd.log")}`);
        }
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
      throw new Error(`docker ${a.join(" ")} failed (${r.code}): ${r.stderr}`);
    }
    return r.stdout + (o.ok === false ? r.stderr : "");
  };

  let closed = false;
  const self: Dockerd = {
    dir,
    socket,
    host: `unix://${socket}`,
    pid,
    tls,
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
      // unmount anything dockerd left behind under its data root
      const mounts = (await Deno.readTextFile("/proc/mounts")).split("\n")
        .map((l) => l.split(" ")[1]).filter((m): m is string => !!m?.startsWith(dir)).reverse();
      for (const m of mounts) await run("umount", ["-l", m]);
      await run("ip", ["link", "del", bridge]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };
  try {
    await start();
    if (options.image ?? true) await importBusybox(dir, env);
  } catch (err) {
    await self.close();
    throw err;
  }
  return self;
}

let shared: Promise<Dockerd> | undefined;

/** One engine per test module, started by the first caller (with TLS). */
export function sharedDockerd(): Promise<Dockerd> {
  shared ??= startDockerd({ tls: true });
  return shared;
}

/** Stops the module's shared engine, if one was started. */
export async function closeSharedDockerd(): Promise<void> {
  const s = shared;
  shared = undefined;
  if (s) await (await s).close();
}

/** bcrypt hash for htpasswd (registry accepts only bcrypt). */
async function bcrypt(password: string): Promise<string> {
  const py = await run("python3", [
    "-W",
    "ignore",
    "-c",
    "import crypt,sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH)))",
  ], { env: Deno.env.toObject(), stdin: password });
  if (py.code === 0 && py.stdout.startsWith("$2")) return py.stdout.trim();
  const mk = await run("mkpasswd", ["-m", "bcrypt", "--stdin"], { stdin: password });
  if (mk.code === 0 && mk.stdout.startsWith("$2")) return mk.stdout.trim();
  throw new Error("cannot make a bcrypt hash: needs python3 (crypt) or mkpasswd");
}

/** Starts `docker-registry serve` on a random loopback port. */
export async function startRegistry(
  options: { auth?: { user: string; password: string } } = {},
): Promise<Registry> {
  const dir = await Deno.makeTempDir({ prefix: "rsm-registry-" });
  const port = freePort();
  let authCfg = "";
  if (options.auth) {
    await Deno.writeTextFile(
      join(dir, "htpasswd"),
      `${options.auth.user}:${await bcrypt(options.auth.password)}\n`,
    );
    authCfg = `auth:\n  htpasswd:\n    realm: rsm-test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  const config = join(dir, "config.yml");
  await Deno.writeTextFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${
      join(dir, "data")
    }\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${authCfg}`,
  );
  const child = new Deno.Command("sh", {
    args: ["-c", `exec docker-registry serve '${config}' >'${join(dir, "registry.log")}' 2>&1`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  child.status.catch(() => {});
  const self: Registry = {
    address: `127.0.0.1:${port}`,
    pid: child.pid,
    auth: options.auth,
    async close() {
      await killWait(child.pid);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };
  try {
    await waitFor("registry to listen", async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return true;
    }, 15_000);
  } catch (err) {
    await self.close();
    throw err;
  }
  return self;
}

/** Tags {@link TEST_IMAGE} as `<registry>/<name>` and pushes it; returns the full reference. */
export async function pushTestImage(d: Dockerd, registry: Registry, name: string): Promise<string> {
  const ref = `${registry.address}/${name}`;
  await d.cli(["tag", TEST_IMAGE, ref]);
  if (registry.auth) {
    await d.cli(["login", "-u", registry.auth.user, "--password-stdin", registry.address], {
      stdin: registry.auth.password,
    });
  }
  await d.cli(["push", ref]);
  await d.cli(["rmi", ref]);
  return ref;
}
