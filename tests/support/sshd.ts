/**
 * Real OpenSSH `sshd` instances and throw-away Unix users for tests (needs root).
 *
 * Usage:
 * ```ts
 * import { createUser, startSshd } from "./support/sshd.ts";
 *
 * await using user = await createUser({ sudo: true });       // useradd + chpasswd + keys
 * await using sshd = await startSshd();                        // 127.0.0.1:<free port>
 * // connect as user.name with user.keyPath, user.encKeyPath + user.keyPassphrase, or
 * // user.password, to sshd.host:sshd.port; sshd.hostKeyFingerprint is "SHA256:…".
 * await sshd.restart();                       // same port, same config; kills live sessions
 * await sshd.replaceHostKey();                // new host key (+ restart): a "changed key"
 * ```
 *
 * - `startSshd({ netns: "rsm-ab12-b1", listen: "10.77.3.2", port: 22 })` runs sshd inside a
 *   network namespace made with `tests/support/netns.ts` (readiness is read from its log, so
 *   the test process need not reach the address).
 * - `kbdInteractiveOnly: true` gives a server with `PasswordAuthentication no`,
 *   `KbdInteractiveAuthentication yes` (PAM asks for the password), public keys still allowed.
 * - `passwordAuth: false` turns password auth off (keys only).
 * - `extraConfig` goes verbatim at the top of sshd_config (sshd takes the first value of a
 *   keyword, so it overrides the defaults below; no `Match` blocks there).
 * - `stop()` kills the listener **and every per-connection sshd under it** (so a test can
 *   simulate a server going away); `restart()` = stop + start on the same address and port.
 * - Every user gets: a password (`password`), an unencrypted ed25519 key (`keyPath`), a
 *   passphrase-protected ed25519 key (`encKeyPath`, `keyPassphrase`), both authorized;
 *   `sudo: true` adds a sudoers entry that requires the password; `plainShell: true` gives
 *   `/bin/sh` and an empty home (no rc file is sourced: fast exec for benchmarks).
 *   Private keys live in a root-owned temp dir, never in the user's home.
 * - Everything is removed by `await using` / `remove()` / `stop()`; `removeStaleUsers()`
 *   cleans users a crashed test left behind (names start with `rsmt`).
 */
import { join } from "node:path";
import { run } from "./env.ts";

const SSHD = "/usr/sbin/sshd";

/** A random lowercase hex string of `n` characters. */
export function randomHex(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, n);
}

async function must(cmd: string, args: string[], stdin?: string): Promise<string> {
  const r = await run(cmd, args, { stdin });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Options for {@link genKey}. */
export interface GenKeyOptions {
  /** `ed25519` (default), `ecdsa`, `rsa`. */
  type?: "ed25519" | "ecdsa" | "rsa";
  /** Passphrase; default none. */
  passphrase?: string;
  comment?: string;
}

/**
 * Generates a key pair with `ssh-keygen` at `path` (and `path.pub`); returns the public key
 * line and its `SHA256:…` fingerprint.
 */
export async function genKey(
  path: string,
  options: GenKeyOptions = {},
): Promise<{ publicKey: string; fingerprint: string }> {
  await Deno.remove(path).catch(() => {});
  await Deno.remove(`${path}.pub`).catch(() => {});
  const args = ["-q", "-t", options.type ?? "ed25519", "-N", options.passphrase ?? "", "-f", path];
  if (options.type === "rsa") args.push("-b", "2048");
  args.push("-C", options.comment ?? "rsm-test");
  await must("ssh-keygen", args);
  const publicKey = (await Deno.readTextFile(`${path}.pub`)).trim();
  return { publicKey, fingerprint: await fingerprint(`${path}.pub`) };
}

/** The `SHA256:…` fingerprint of a public key file. */
export async function fingerprint(pubPath: string): Promise<string> {
  const out = await must("ssh-keygen", ["-l", "-E", "sha256", "-f", pubPath]);
  const m = out.match(/SHA256:[A-Za-z0-9+/=]+/);
  if (!m) throw new Error(`no fingerprint in: ${out}`);
  return m[0];
}

/** A throw-away Unix user made by {@link createUser}. */
export interface TestUser extends AsyncDisposable {
  name: string;
  uid: number;
  home: string;
  shell: string;
  password: string;
  /** Unencrypted ed25519 private key (authorized). */
  keyPath: string;
  publicKey: string;
  /** Passphrase-protected ed25519 private key (authorized). */
  encKeyPath: string;
  keyPassphrase: string;
  /** Root-owned temp dir holding the private keys. */
  keyDir: string;
  sudo: boolean;
  /** Kills the user's processes, deletes user, home, sudoers entry and keys. Idempotent. */
  remove(): Promise<void>;
}

/** Options for {@link createUser}. */
export interface CreateUserOptions {
  /** Name prefix (default `rsmt`); a random suffix is added. */
  prefix?: string;
  /** Password (default random). */
  password?: string;
  /** Add `/etc/sudoers.d` entry `NAME ALL=(ALL) ALL` (password required). */
  sudo?: boolean;
  /** `/bin/sh` and an empty home: nothing sources rc files on exec. Default bash + skel. */
  plainShell?: boolean;
}

/** Creates a user with a password and authorized keys (needs root). */
export async function createUser(options: CreateUserOptions = {}): Promise<TestUser> {
  const name = `${options.prefix ?? "rsmt"}${randomHex(6)}`;
  const password = options.password ?? `pw-${randomHex(16)}`;
  const keyPassphrase = `pp-${randomHex(16)}`;
  const shell = options.plainShell ? "/bin/sh" : "/bin/bash";
  const home = `/home/${name}`;
  const args = ["-m", "-d", home, "-s", shell];
  if (options.plainShell) args.push("-k", "/nonexistent-skel");
  await must("useradd", [...args, name]);
  const keyDir = await Deno.makeTempDir({ prefix: `rsm-keys-${name}-` });
  let removed = false;
  const sudoers = `/etc/sudoers.d/rsm-${name}`;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await run("pkill", ["-KILL", "-u", name]).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    await run("userdel", ["-r", "-f", name]).catch(() => {});
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(sudoers).catch(() => {});
    await Deno.remove(keyDir, { recursive: true }).catch(() => {});
  };
  try {
    await must("chpasswd", [], `${name}:${password}\n`);
    const uid = Number((await must("id", ["-u", name])).trim());
    const keyPath = join(keyDir, "id_ed25519");
    const encKeyPath = join(keyDir, "id_ed25519_enc");
    const { publicKey } = await genKey(keyPath, { comment: `${name}@rsm-test` });
    const enc = await genKey(encKeyPath, {
      passphrase: keyPassphrase,
      comment: `${name}-enc@rsm-test`,
    });
    const sshDir = join(home, ".ssh");
    await Deno.mkdir(sshDir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(join(sshDir, "authorized_keys"), `${publicKey}\n${enc.publicKey}\n`, {
      mode: 0o600,
    });
    await must("chown", ["-R", `${name}:${name}`, home]);
    await Deno.chmod(home, 0o755);
    if (options.sudo) {
      await Deno.writeTextFile(sudoers, `${name} ALL=(ALL:ALL) ALL\n`, { mode: 0o440 });
    }
    return {
      name,
      uid,
      home,
      shell,
      password,
      keyPath,
      publicKey,
      encKeyPath,
      keyPassphrase,
      keyDir,
      sudo: !!options.sudo,
      remove,
      [Symbol.asyncDispose]: remove,
    };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** Deletes users (named `rsmt…`) and sudoers entries that crashed tests left behind. */
export async function removeStaleUsers(prefix = "rsmt"): Promise<void> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  for (const line of passwd.split("\n")) {
    const name = line.split(":")[0];
    if (!name?.startsWith(prefix)) continue;
    await run("pkill", ["-KILL", "-u", name]).catch(() => {});
    await run("userdel", ["-r", "-f", name]).catch(() => {});
    await Deno.remove(`/etc/sudoers.d/rsm-${name}`).catch(() => {});
  }
}

/** Options for {@link startSshd}. */
export interface SshdOptions {
  /** Listen address (default 127.0.0.1). */
  listen?: string;
  /** Port (default: a free loopback port; 22 inside a netns is fine). */
  port?: number;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** PasswordAuthentication (default true). */
  passwordAuth?: boolean;
  /** PasswordAuthentication no + KbdInteractiveAuthentication yes through PAM. */
  kbdInteractiveOnly?: boolean;
  /** Host key type (default ed25519). */
  hostKeyType?: "ed25519" | "ecdsa" | "rsa";
  /** Appended to sshd_config. */
  extraConfig?: string | undefined;
  /**
   * Run sshd through a symlink with this name: sshd uses its program name as its PAM service,
   * so a test can install its own `/etc/pam.d/NAME` without touching the system's `sshd` stack.
   */
  programName?: string;
  /** Arguments of `internal-sftp`, e.g. `-P setstat` to refuse setting modes by path. */
  sftpArgs?: string;
  /** Allowed users (AllowUsers); default everyone. */
  users?: string[];
}

/** A running sshd from {@link startSshd}. */
export interface Sshd extends AsyncDisposable {
  host: string;
  port: number;
  /** `host:port` (`[v6]:port` for IPv6). */
  address: string;
  /** Pid of the listening sshd (changes on restart). */
  pid: number;
  dir: string;
  hostKeyPath: string;
  /** `SHA256:…` of the current host key. */
  hostKeyFingerprint: string;
  /** The `known_hosts` line for this server (`[host]:port key`). */
  knownHostsLine: string;
  configPath: string;
  logPath: string;
  netns?: string | undefined;
  /** Kills the listener and all its per-connection children. Idempotent. */
  stop(): Promise<void>;
  /** stop() then start again on the same address, port and config. */
  restart(): Promise<void>;
  /** Generates a new host key (same type unless given) and restarts. */
  replaceHostKey(type?: "ed25519" | "ecdsa" | "rsa"): Promise<void>;
  /** Reads the sshd log (for debugging failed tests). */
  log(): Promise<string>;
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    const p = Number(e.name);
    if (!p) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(p);
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Starts a real OpenSSH sshd (needs root and `/usr/sbin/sshd`). */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const dir = await Deno.makeTempDir({ prefix: "rsm-sshd-" });
  await Deno.chmod(dir, 0o755);
  const host = options.listen ?? "127.0.0.1";
  let port = options.port ?? 0;
  if (!port) {
    if (options.netns) port = 22;
    else {
      const l = Deno.listen({ hostname: host, port: 0 });
      port = (l.addr as Deno.NetAddr).port;
      l.close();
    }
  }
  const type = options.hostKeyType ?? "ed25519";
  const hostKeyPath = join(dir, `ssh_host_${type}_key`);
  const configPath = join(dir, "sshd_config");
  const logPath = join(dir, "sshd.log");
  const pidPath = join(dir, "sshd.pid");
  const kbd = !!options.kbdInteractiveOnly;
  const password = kbd ? false : options.passwordAuth ?? true;
  const lines = [
    ...(options.extraConfig ? [options.extraConfig] : []),
    `Port ${port}`,
    `ListenAddress ${host.includes(":") ? `[${host}]` : host}`,
    `HostKey ${hostKeyPath}`,
    `PidFile ${pidPath}`,
    `AuthorizedKeysFile .ssh/authorized_keys`,
    `StrictModes no`,
    `UsePAM ${kbd ? "yes" : "no"}`,
    `PubkeyAuthentication yes`,
    `PasswordAuthentication ${password ? "yes" : "no"}`,
    `KbdInteractiveAuthentication ${kbd ? "yes" : "no"}`,
    `PermitRootLogin yes`,
    `AllowTcpForwarding yes`,
    `AllowAgentForwarding yes`,
    `GatewayPorts clientspecified`,
    `MaxStartups 100:30:200`,
    `MaxSessions 100`,
    `LogLevel VERBOSE`,
    `PrintMotd no`,
    `UseDNS no`,
    `Subsystem sftp internal-sftp${options.sftpArgs ? ` ${options.sftpArgs}` : ""}`,
  ];
  if (options.users?.length) lines.push(`AllowUsers ${options.users.join(" ")}`);
  await Deno.writeTextFile(configPath, lines.join("\n") + "\n");

  let hostKeyFingerprint = "";
  let knownHostsLine = "";
  const makeHostKey = async (t: string) => {
    for (const f of await Array.fromAsync(Deno.readDir(dir))) {
      if (f.name.startsWith("ssh_host_")) await Deno.remove(join(dir, f.name));
    }
    const k = await genKey(hostKeyPath, {
      type: t as NonNullable<GenKeyOptions["type"]>,
      comment: "host",
    });
    hostKeyFingerprint = k.fingerprint;
    const hostPart = port === 22 ? host : `[${host}]:${port}`;
    knownHostsLine = `${hostPart} ${k.publicKey.split(" ").slice(0, 2).join(" ")}`;
    self.hostKeyFingerprint = hostKeyFingerprint;
    self.knownHostsLine = knownHostsLine;
  };

  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    let bin = SSHD;
    if (options.programName) {
      bin = join(dir, options.programName);
      await Deno.symlink(SSHD, bin).catch(() => {});
    }
    const cmd: [string, ...string[]] = options.netns
      ? ["ip", "netns", "exec", options.netns, bin, "-D", "-f", configPath, "-E", logPath]
      : [bin, "-D", "-f", configPath, "-E", logPath];
    const before = await Deno.readTextFile(logPath).catch(() => "");
    child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    self.pid = child.pid;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const text = (await Deno.readTextFile(logPath).catch(() => "")).slice(before.length);
      if (text.includes("Server listening on")) return;
      if (!alive(child.pid) || Date.now() > deadline) {
        const c = child;
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
        await c.status;
        throw new Error(`sshd did not start: ${text}`);
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  };
  const stop = async () => {
    const c = child;
    if (!c) return;
    child = undefined;
    const pids = [c.pid, ...descendants(c.pid)];
    for (const p of pids.reverse()) {
      try {
        Deno.kill(p, "SIGKILL");
      } catch { /* gone */ }
    }
    await c.status;
    const deadline = Date.now() + 5000;
    while (pids.some(alive) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const self: Sshd = {
    host,
    port,
    address: host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
    pid: 0,
    dir,
    hostKeyPath,
    hostKeyFingerprint,
    knownHostsLine,
    configPath,
    logPath,
    netns: options.netns,
    stop: async () => {
      await stop();
    },
    restart: async () => {
      await stop();
      await start();
    },
    replaceHostKey: async (t?: string) => {
      await stop();
      await makeHostKey(t ?? type);
      await start();
    },
    log: () => Deno.readTextFile(logPath).catch(() => ""),
    async [Symbol.asyncDispose]() {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  await makeHostKey(type);
  try {
    await start();
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  return self;
}
