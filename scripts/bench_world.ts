/**
 * What the benchmark runs against, started once and torn down whatever happens: a plain-shell
 * user (no rc files), an OpenSSH sshd on loopback that offers only the chosen cipher (so rsm
 * and OpenSSH negotiate the same one), byte sources for the forward rows, and — on demand — a
 * 1 Gbit/s `tc tbf`-shaped veth link to an sshd in a network namespace, and a private dockerd.
 */
import { join } from "node:path";
import { ROOT, run } from "../tests/support/env.ts";
import { readHandle, type RsmClient, rsmSession } from "../tests/support/mcp.ts";
import { createNet, type Net } from "../tests/support/netns.ts";
import { createUser, type Sshd, startSshd, type TestUser } from "../tests/support/sshd.ts";
import type { Dockerd } from "../tests/support/dockerd.ts";

/** Cleanup steps run last-in first-out, each at most once, errors logged and ignored. */
export class Cleanup {
  #steps: { what: string; fn: () => PromiseLike<void> | void }[] = [];
  /** Set once {@link run} started: anything registered later is undone at once. */
  closed = false;
  /** Registers a step (runs it now if cleanup already happened, e.g. after a signal). */
  push(what: string, fn: () => PromiseLike<void> | void): void {
    this.#steps.push({ what, fn });
    if (this.closed) this.run();
  }
  /** Runs (and forgets) every step, newest first. */
  async run(): Promise<void> {
    this.closed = true;
    while (this.#steps.length) {
      const s = this.#steps.pop()!;
      try {
        await s.fn();
      } catch (err) {
        log(`cleanup of ${s.what} failed: ${err}`);
      }
    }
  }
}

/** Progress goes to stderr so `--json` keeps stdout clean. */
export function log(msg: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** An sshd the benchmark can reach, with the address to give both clients. */
export interface Target {
  sshd: Sshd;
  host: string;
  port: number;
  /** `host:port` for rsm's spec. */
  address: string;
  /** Port of the byte source next to this sshd (127.0.0.1 from the sshd's side). */
  sourcePort: number;
}

/** Everything the rows share. */
export interface World {
  quick: boolean;
  cipher: string;
  dir: string;
  user: TestUser;
  loopback: Target;
  cleanup: Cleanup;
  /** The 1 Gbit/s link, started by {@link shapedLink} on first use. */
  link?: Promise<Target>;
  docker?: Promise<Dockerd | null>;
}

/** OpenSSH client options both `ssh` and `sftp` get: no config, our key, the chosen cipher. */
export function opensshBase(w: World): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    w.user.keyPath,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-c",
    w.cipher,
  ];
}

/** rsm's `ssh_connect` spec for the user on `t`. */
export function rsmSpec(w: World, t: Target): Record<string, unknown> {
  return {
    user: w.user.name,
    addresses: [t.address],
    auth: { key_path: w.user.keyPath },
    host_key_policy: "insecure",
  };
}

/** Starts the byte source (scripts/bench_source.ts), in `netns` if given; returns its port. */
async function startSource(w: World, netns?: string): Promise<number> {
  const script = join(ROOT, "scripts", "bench_source.ts");
  const deno = ["deno", "run", "-q", "--allow-net", script, "127.0.0.1", "0"];
  const [program, ...args] = netns ? ["ip", "netns", "exec", netns, ...deno] : deno;
  const child = new Deno.Command(program!, { // both lists start with a program name
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  w.cleanup.push("byte source", async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!/ready \d+/.test(text)) {
    if (Date.now() > deadline) throw new Error("the byte source did not start");
    const { value, done } = await reader.read();
    if (done) throw new Error(`the byte source exited: ${text}`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return Number(text.match(/ready (\d+)/)![1]);
}

/** Creates the user, the loopback sshd and its byte source. */
export async function createWorld(
  options: { quick: boolean; cipher: string },
  cleanup: Cleanup,
): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "rsm-bench-" });
  await Deno.chmod(dir, 0o755);
  cleanup.push("temp dir", () => Deno.remove(dir, { recursive: true }));
  const user = await createUser({ plainShell: true });
  cleanup.push("user", () => user.remove());
  const sshd = await startSshd({ extraConfig: `Ciphers ${options.cipher}` });
  cleanup.push("sshd", () => sshd[Symbol.asyncDispose]());
  const w: World = {
    quick: options.quick,
    cipher: options.cipher,
    dir,
    user,
    cleanup,
    loopback: { sshd, host: sshd.host, port: sshd.port, address: sshd.address, sourcePort: 0 },
  };
  w.loopback.sourcePort = await startSource(w);
  return w;
}

const extraTargets = new Map<string, Promise<Target>>();

/**
 * Another loopback sshd for the same user and byte source, with `extraConfig` on top (e.g.
 * `Ciphers aes256-gcm@openssh.com`, or `MaxSessions 10`); one per distinct config.
 */
export function loopbackWith(w: World, extraConfig: string): Promise<Target> {
  let t = extraTargets.get(extraConfig);
  if (!t) {
    t = (async () => {
      const sshd = await startSshd({ extraConfig });
      w.cleanup.push("sshd", () => sshd[Symbol.asyncDispose]());
      return {
        sshd,
        host: sshd.host,
        port: sshd.port,
        address: sshd.address,
        sourcePort: w.loopback.sourcePort,
      };
    })();
    extraTargets.set(extraConfig, t);
  }
  return t;
}

/**
 * The 1 Gbit/s link: a netns host behind a veth pair with `tbf rate 1gbit` on both ends, an
 * sshd listening on its side and a byte source on its loopback.
 */
export function shapedLink(w: World): Promise<Target> {
  w.link ??= (async () => {
    const net: Net = await createNet();
    w.cleanup.push("netns", () => net.close());
    const far = await net.host("far");
    const l = await net.link("root", far);
    const tbf = ["root", "tbf", "rate", "1gbit", "burst", "256kb", "latency", "50ms"];
    for (const [ns, dev] of [[undefined, l.ifA], [far.ns, l.ifB]] as const) {
      const args = [...(ns ? ["-n", ns] : []), "qdisc", "add", "dev", dev, ...tbf];
      const r = await run("tc", args);
      if (r.code !== 0) throw new Error(`tc ${args.join(" ")} failed: ${r.stderr}`);
    }
    const sshd = await startSshd({
      netns: far.ns,
      listen: l.addrB,
      port: 22,
      extraConfig: `Ciphers ${w.cipher}`,
    });
    w.cleanup.push("netns sshd", () => sshd[Symbol.asyncDispose]());
    const sourcePort = await startSource(w, far.ns);
    return { sshd, host: l.addrB, port: 22, address: `${l.addrB}:22`, sourcePort };
  })();
  return w.link;
}

/** The private Docker engine with the busybox image, or null when Docker is not here. */
export function dockerEngine(w: World): Promise<Dockerd | null> {
  w.docker ??= (async () => {
    const { dockerdMissing, startDockerd } = await import("../tests/support/dockerd.ts");
    if (dockerdMissing) return null;
    const d = await startDockerd({ image: true });
    w.cleanup.push("dockerd", () => d.close());
    return d;
  })();
  return w.docker;
}

/** A new rsm client (own temp config dir, own daemon), stopped by the world's cleanup. */
export async function newRsm(
  w: World,
  extraEnv: Record<string, string> = {},
  json = true,
): Promise<RsmClient & { dispose(): Promise<void> }> {
  const c = await rsmSession({ json, extraEnv });
  let done = false;
  const dispose = async () => {
    if (done) return;
    done = true;
    await c[Symbol.asyncDispose]();
  };
  w.cleanup.push("rsm daemon", dispose);
  return Object.assign(c, { dispose });
}

/** The daemon pid of an rsm client. */
export async function daemonPid(c: RsmClient): Promise<number> {
  const h = await readHandle(c.env);
  if (!h) throw new Error("no daemon handle");
  return h.pid;
}

/** CPU time (user + system, ms) the process `pid` has used so far. */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (100/s)
}

/** VmRSS of `pid` in MB (10^6 bytes). */
export async function rssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(status.match(/VmRSS:\s+(\d+)\s+kB/)?.[1]);
  return (kb * 1024) / 1e6;
}

/** Runs a command; throws with its stderr unless it exits 0. */
export async function must(cmd: string, args: string[], env?: Record<string, string>) {
  const r = await run(cmd, args, env ? { env } : {});
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
