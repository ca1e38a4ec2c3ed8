/**
 * The setup most forward tests share: a throw-away user, a netns "host" reached over a veth
 * link, a real sshd inside it (with an optional private `/etc/hosts`, through the
 * `/etc/netns/<ns>/hosts` convention of `ip netns exec`), and an rsm daemon.
 *
 * ```ts
 * await using lab = await forwardLab({ hosts: "127.0.0.1 secret.rsm.test\n" });
 * await lab.connect("box");
 * ```
 */
import { createUser, type Sshd, startSshd, type TestUser } from "./sshd.ts";
import { createNet, type Net, type NetHost, type NetLink } from "./netns.ts";
import { rsmWithEnv } from "./ssh_test_helpers.ts";

/** What {@link forwardLab} gives. */
export interface ForwardLab extends AsyncDisposable {
  user: TestUser;
  net: Net;
  host: NetHost;
  link: NetLink;
  sshd: Sshd;
  rsm: Awaited<ReturnType<typeof rsmWithEnv>>;
  /** ssh_connect `id` to the netns sshd (key auth) with extra spec fields. */
  connect(id: string, extra?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Options for {@link forwardLab}. */
export interface ForwardLabOptions {
  /** Contents of the netns host's private /etc/hosts. */
  hosts?: string;
  /** Appended to sshd_config. */
  extraConfig?: string;
}

/** Builds the lab (needs root, sshd, ip). */
export async function forwardLab(options: ForwardLabOptions = {}): Promise<ForwardLab> {
  const cleanups: (() => PromiseLike<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    cleanups.length = 0;
  };
  try {
    const user = await createUser();
    cleanups.push(() => user.remove());
    const net = await createNet();
    cleanups.push(() => net.close());
    const host = await net.host("srv");
    if (options.hosts !== undefined) {
      const dir = `/etc/netns/${host.ns}`;
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(`${dir}/hosts`, options.hosts);
      cleanups.push(() => Deno.remove(dir, { recursive: true }));
    }
    const link = await net.link("root", host);
    const sshd = await startSshd({
      netns: host.ns,
      listen: link.addrB,
      port: 22,
      extraConfig: options.extraConfig,
    });
    cleanups.push(() => sshd[Symbol.asyncDispose]());
    const rsm = await rsmWithEnv();
    cleanups.push(() => rsm[Symbol.asyncDispose]());
    return {
      user,
      net,
      host,
      link,
      sshd,
      rsm,
      connect: (id, extra = {}) =>
        rsm.callJson("ssh_connect", {
          id,
          spec: {
            user: user.name,
            addresses: [link.addrB],
            auth: { key_path: user.keyPath },
            ...extra,
          },
        }),
      [Symbol.asyncDispose]: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Connects to 127.0.0.1:`port`, writes `data`, half-closes (shutdown write), and returns
 * everything read until the peer closes.
 */
export async function exchange(port: number, data: Uint8Array | string): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const reading = readAll(conn);
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    await conn.closeWrite();
    return await reading;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** Reads `conn` until EOF. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const r = await conn.read(buf);
    if (r === null) break;
    parts.push(buf.slice(0, r));
    n += r;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
