/**
 * Network namespaces as extra "hosts" for tests (needs root and `ip`).
 *
 * Usage:
 * ```ts
 * import { createNet } from "./support/netns.ts";
 * import { startSshd } from "./support/sshd.ts";
 *
 * await using net = await createNet();
 * const bastion = await net.host("b1");          // netns "rsm<rand>-b1", lo up
 * const target = await net.host("t");
 * const l1 = await net.link("root", bastion);    // veth pair, addresses from a private /30
 * const l2 = await net.link(bastion, target);    // the test process cannot reach l2.addrB
 * await using sshdB = await startSshd({ netns: bastion.ns, listen: l1.addrB, port: 22 });
 * await using sshdT = await startSshd({ netns: target.ns, listen: l2.addrB, port: 22 });
 * await l1.down();  await l1.up();               // cut / restore the link (root-side veth)
 * await bastion.exec(["ss", "-tn"]);             // run a command inside the namespace
 * const hole = await net.blackhole();            // an address whose packets vanish (SYN hangs)
 * ```
 *
 * - `link(a, b)` with `a`/`b` = `"root"` (the test process's namespace) or a host. `addrA` is
 *   the address on `a`'s side, `addrB` on `b`'s side. `down()`/`up()` act on `a`'s end by
 *   default (`down("b")` for the other end); `up()` restores the addresses.
 * - The whole private /24 the links use is routed `unreachable` in the root namespace, so
 *   the test process really cannot reach an address behind a bastion (fails fast) and a
 *   link that is `down()` gives "No route to host" to new connections.
 * - `blackhole()` routes a fresh /32 from the root namespace to a namespace that neither owns
 *   it nor forwards: TCP connects to it hang until their timeout (no RST, no ICMP).
 * - Names carry a random suffix; `close()` / `await using` kills every process left in the
 *   namespaces and deletes them (veth pairs and routes go with them). `removeStaleNetns()`
 *   cleans what crashed tests left (names starting with `rsm`).
 */
import { randomHex } from "./sshd.ts";
import { run } from "./env.ts";

async function ip(args: string[]): Promise<string> {
  const r = await run("ip", args);
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A namespace "host". */
export interface NetHost {
  /** Short name given to `host()`. */
  name: string;
  /** The netns name (use with `startSshd({ netns })`, `ip netns exec`). */
  ns: string;
  /** Runs a command inside the namespace. */
  exec(cmd: string[], options?: { stdin?: string }): Promise<{
    code: number;
    stdout: string;
    stderr: string;
  }>;
}

/** A veth pair between two namespaces. */
export interface NetLink {
  ifA: string;
  ifB: string;
  addrA: string;
  addrB: string;
  /** Sets the link down (side "a" by default). */
  down(side?: "a" | "b"): Promise<void>;
  /** Sets the link up again and restores addresses. */
  up(side?: "a" | "b"): Promise<void>;
}

/** A set of namespaces and links with one cleanup. */
export interface Net extends AsyncDisposable {
  prefix: string;
  host(name: string): Promise<NetHost>;
  link(a: NetHost | "root", b: NetHost | "root"): Promise<NetLink>;
  /** An IPv4 address that silently drops packets sent to it from the root namespace. */
  blackhole(): Promise<string>;
  close(): Promise<void>;
}

async function pickSubnet(): Promise<string> {
  const used = await ip(["-o", "addr"]) + await ip(["route"]);
  for (let i = 0; i < 50; i++) {
    const a = 100 + Math.floor(Math.random() * 150);
    const b = Math.floor(Math.random() * 256);
    const base = `10.${a}.${b}.`;
    if (!used.includes(base)) return base;
  }
  throw new Error("no free 10.x.y.0/24 subnet found");
}

/** Creates an empty set of namespaces (with a random prefix). */
export async function createNet(): Promise<Net> {
  const prefix = `rsm${randomHex(4)}`;
  const base = await pickSubnet();
  // The whole /24 is unreachable from the root namespace except through links made here
  // (more specific routes win): without this, the machine's default route may answer.
  await ip(["route", "add", "unreachable", `${base}0/24`]);
  const hosts: NetHost[] = [];
  const rootIfs: string[] = [];
  let links = 0;
  let closed = false;

  const nsArgs = (h: NetHost | "root") => (h === "root" ? [] : ["-n", h.ns]);

  const net: Net = {
    prefix,
    async host(name) {
      if (closed) throw new Error("Net is closed");
      const ns = `${prefix}-${name}`;
      await ip(["netns", "add", ns]);
      const h: NetHost = {
        name,
        ns,
        exec: (cmd, options = {}) => run("ip", ["netns", "exec", ns, ...cmd], options),
      };
      hosts.push(h);
      await ip(["-n", ns, "link", "set", "lo", "up"]);
      return h;
    },
    async link(a, b) {
      const n = ++links;
      if (n > 60) throw new Error("too many links in one Net");
      const ifA = `${prefix}a${n}`;
      const ifB = `${prefix}b${n}`;
      const addrA = `${base}${n * 4 + 1}`;
      const addrB = `${base}${n * 4 + 2}`;
      await ip(["link", "add", ifA, "type", "veth", "peer", "name", ifB]);
      if (a === "root") rootIfs.push(ifA);
      else await ip(["link", "set", ifA, "netns", a.ns]);
      if (b === "root") rootIfs.push(ifB);
      else await ip(["link", "set", ifB, "netns", b.ns]);
      const setUp = async (side: "a" | "b") => {
        const [h, ifn, addr] = side === "a" ? [a, ifA, addrA] : [b, ifB, addrB];
        await ip([...nsArgs(h), "link", "set", ifn, "up"]);
        const have = await ip([...nsArgs(h), "-o", "addr", "show", "dev", ifn]);
        if (!have.includes(`${addr}/`)) {
          await ip([...nsArgs(h), "addr", "add", `${addr}/30`, "dev", ifn]);
        }
      };
      await setUp("a");
      await setUp("b");
      return {
        ifA,
        ifB,
        addrA,
        addrB,
        down: (side = "a") =>
          ip([...nsArgs(side === "a" ? a : b), "link", "set", side === "a" ? ifA : ifB, "down"])
            .then(() => {}),
        up: (side = "a") => setUp(side),
      };
    },
    async blackhole() {
      const sink = await net.host(`sink${links + 1}`);
      const l = await net.link("root", sink);
      const hole = `${base}${250 - links}`;
      await ip(["route", "add", `${hole}/32`, "via", l.addrB]);
      // the sink drops every IP packet (ARP still works, so the next hop resolves)
      const nft = [
        "add table inet rsm_hole",
        "add chain inet rsm_hole pre { type filter hook prerouting priority -300; policy drop; }",
      ];
      for (const line of nft) {
        const r = await sink.exec(["nft", ...line.split(" ")]);
        if (r.code !== 0) throw new Error(`nft ${line} failed: ${r.stderr}`);
      }
      return hole;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const h of hosts) {
        const pids = (await run("ip", ["netns", "pids", h.ns])).stdout.split(/\s+/).filter(Boolean);
        for (const p of pids) {
          try {
            Deno.kill(Number(p), "SIGKILL");
          } catch { /* gone */ }
        }
      }
      for (const ifn of rootIfs) await run("ip", ["link", "del", ifn]).catch(() => {});
      await run("ip", ["route", "del", "unreachable", `${base}0/24`]).catch(() => {});
      for (const h of hosts) await run("ip", ["netns", "del", h.ns]).catch(() => {});
    },
    [Symbol.asyncDispose]() {
      return net.close();
    },
  };
  return net;
}

/** Deletes namespaces whose names start with `prefix` (left by crashed tests). */
export async function removeStaleNetns(prefix = "rsm"): Promise<void> {
  const out = (await run("ip", ["netns", "list"])).stdout;
  for (const line of out.split("\n")) {
    const ns = line.split(" ")[0];
    if (!ns?.startsWith(prefix)) continue;
    const pids = (await run("ip", ["netns", "pids", ns])).stdout.split(/\s+/).filter(Boolean);
    for (const p of pids) {
      try {
        Deno.kill(Number(p), "SIGKILL");
      } catch { /* gone */ }
    }
    await run("ip", ["netns", "del", ns]).catch(() => {});
  }
}
