/**
 * Throughput rows: `-L` forwards (`ssh_forward_local` vs `ssh -L`) and SFTP
 * (`ssh_upload`/`ssh_download` vs `sftp -b`), on loopback and over the 1 Gbit/s shaped link.
 * Both sides use the one cipher the sshd offers.
 */
import { join } from "node:path";
import { fmtRate, type Row } from "./bench_report.ts";
import { type Ctx, naRow } from "./bench_rows.ts";
import {
  log,
  loopbackWith,
  must,
  opensshBase,
  shapedLink,
  type Target,
  type World,
} from "./bench_world.ts";

const MiB = 1 << 20;

/** Connects to the byte source through `port`, asks for `bytes`, reads to EOF; MiB/s. */
async function pull(port: number, bytes: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const t = performance.now();
    await conn.write(new TextEncoder().encode(`${bytes}\n`));
    const buf = new Uint8Array(1 << 18);
    let got = 0;
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += n;
    }
    const s = (performance.now() - t) / 1000;
    if (got !== bytes) throw new Error(`got ${got} of ${bytes} bytes through the tunnel`);
    return bytes / MiB / s;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

async function waitListening(port: number, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error("ssh -L exited before listening");
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error("ssh -L did not listen");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function freeLoopbackPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** rsm `ssh_forward_local` and `ssh -L -c cipher` to `t`, `size` bytes through each (MiB/s). */
async function measureForward(
  c: Ctx,
  t: Target,
  size: number,
  id: string,
  cipher: string,
): Promise<{ rsm: number; ssh: number }> {
  const { w } = c;
  const { rsm, session } = await c.main();
  const sid = await session(t);
  const lp = freeLoopbackPort();
  const base = opensshBase(w);
  base[base.indexOf("-c") + 1] = cipher;
  const ssh = new Deno.Command("ssh", {
    args: [
      ...base,
      "-o",
      "ExitOnForwardFailure=yes",
      "-p",
      String(t.port),
      "-N",
      "-L",
      `127.0.0.1:${lp}:127.0.0.1:${t.sourcePort}`,
      `${w.user.name}@${t.host}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let sshRate: number;
  try {
    await waitListening(lp, ssh);
    sshRate = await pull(lp, size);
  } finally {
    try {
      ssh.kill("SIGTERM");
    } catch { /* gone */ }
    await ssh.status;
  }
  log(`${id}: OpenSSH ${fmtRate(sshRate)}`);
  const info = await rsm.callJson("ssh_forward_local", {
    session_id: sid,
    forward_id: id,
    bind_port: 0,
    remote_host: "127.0.0.1",
    remote_port: t.sourcePort,
  });
  try {
    return { rsm: await pull(info.bind_port, size), ssh: sshRate };
  } finally {
    await rsm.call("ssh_forward_cancel", { session_id: sid, forward_id: id }).catch(() => {});
  }
}

/** `-L` over `where`: rsm `ssh_forward_local` vs `ssh -L`, `size` bytes pulled through each. */
export async function forwardRow(c: Ctx, where: "loopback" | "link"): Promise<Row> {
  const { w } = c;
  const id = `forward_${where}`;
  const size = where === "loopback" ? (w.quick ? 64 : 1024) * MiB : (w.quick ? 32 : 1024) * MiB;
  const label = `${size / MiB >= 1024 ? `${size / MiB / 1024} GiB` : `${size / MiB} MiB`}`;
  const name = where === "loopback"
    ? `-L ${label}, loopback (CPU-bound)`
    : `-L ${label}, 1 Gbit/s shaped veth`;
  const { tools } = await c.main();
  if (!tools.has("ssh_forward_local")) return naRow(id, name, "tool missing");
  const t: Target = where === "loopback" ? w.loopback : await shapedLink(w);
  const r = await measureForward(c, t, size, id, w.cipher);
  const goal = where === "loopback" ? 0.5 : 0.95;
  return {
    id,
    name,
    status: "ok",
    rsm: fmtRate(r.rsm),
    baseline: fmtRate(r.ssh),
    ratio: r.rsm / r.ssh,
    target: `≥ ${goal}×`,
    met: r.rsm / r.ssh >= goal,
    better: "higher",
    ratioTarget: goal,
    values: { rsm_mibs: r.rsm, ssh_mibs: r.ssh, bytes: size },
  };
}

/** Every cipher rsm offers, in a fixed order for the per-cipher `-L` rows. */
export const ROW_CIPHERS = [
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
  "chacha20-poly1305@openssh.com",
  "aes128-ctr",
  "aes192-ctr",
  "aes256-ctr",
];

/** The row id of `cipher`'s `-L` row. */
export function cipherRowId(cipher: string): string {
  return `forward_loopback_${cipher.replace(/@.*/, "").replace(/[^a-z0-9]+/g, "_")}`;
}

/**
 * `-L` on loopback once per cipher rsm offers, each through an sshd that offers only that
 * cipher (OpenSSH gets `-c` with it): where each cipher stands against OpenSSH's.
 */
export async function forwardCipherRows(c: Ctx): Promise<Row[]> {
  const { w } = c;
  const size = 256 * MiB;
  const { tools } = await c.main();
  const offered = await rsmCiphers();
  const rows: Row[] = [];
  for (const cipher of ROW_CIPHERS) {
    const id = cipherRowId(cipher);
    const name = `-L ${size / MiB} MiB, loopback, ${cipher}`;
    if (!tools.has("ssh_forward_local")) {
      rows.push(naRow(id, name, "tool missing"));
      continue;
    }
    if (!offered.includes(cipher)) {
      rows.push(naRow(id, name, "not offered by rsm"));
      continue;
    }
    const t = await loopbackWith(w, `Ciphers ${cipher}`);
    const r = await measureForward(c, t, size, id, cipher);
    rows.push({
      id,
      name,
      status: "ok",
      rsm: fmtRate(r.rsm),
      baseline: fmtRate(r.ssh),
      ratio: r.rsm / r.ssh,
      target: "≥ 0.5×",
      met: r.rsm / r.ssh >= 0.5,
      better: "higher",
      ratioTarget: 0.5,
      values: { rsm_mibs: r.rsm, ssh_mibs: r.ssh, bytes: size },
    });
  }
  return rows;
}

/** The ciphers rsm offers, in its order (lib/ssh/dial.ts, after the crypto path is chosen). */
export async function rsmCiphers(): Promise<string[]> {
  await (await import("../lib/ssh/crypto/mod.ts")).installCiphers();
  return (await import("../lib/ssh/dial.ts")).cipherOrder();
}

let payload: Promise<string> | undefined;

/** A random local file of the SFTP size (made once). */
function localPayload(w: World, size: number): Promise<string> {
  payload ??= (async () => {
    const path = join(w.dir, "payload.bin");
    await must("sh", ["-c", `head -c ${size} /dev/urandom > '${path}'`]);
    return path;
  })();
  return payload;
}

async function fileSize(path: string): Promise<number> {
  return (await Deno.stat(path)).size;
}

/**
 * SFTP upload and download of `size` bytes over `where`: rsm `ssh_upload`/`ssh_download`
 * vs `sftp -b` (whose time includes its own connect, ~0.1 s).
 */
export async function sftpRows(c: Ctx, where: "loopback" | "link"): Promise<Row[]> {
  const { w } = c;
  const size = (w.quick ? 32 : 512) * MiB;
  const names = {
    up: `SFTP upload ${size / MiB} MiB, ${where === "loopback" ? "loopback" : "1 Gbit/s link"}`,
    down: `SFTP download ${size / MiB} MiB, ${where === "loopback" ? "loopback" : "1 Gbit/s link"}`,
  };
  const { rsm, tools, session } = await c.main();
  const missing = ["ssh_upload", "ssh_download"].filter((n) => !tools.has(n));
  if (missing.length) {
    return [
      naRow(`sftp_upload_${where}`, names.up, `tool missing`),
      naRow(`sftp_download_${where}`, names.down, `tool missing`),
    ];
  }
  const t: Target = where === "loopback" ? w.loopback : await shapedLink(w);
  const sid = await session(t);
  const local = await localPayload(w, size);
  const home = w.user.home;
  const remoteSrc = join(home, "bench-src.bin");
  const remoteUp = join(home, "bench-up.bin");
  const localDown = join(w.dir, "down.bin");
  await must("cp", [local, remoteSrc]);
  await must("chown", [`${w.user.name}:`, remoteSrc]);
  const batch = join(w.dir, "batch");
  const sftp = async (cmd: string) => {
    await Deno.writeTextFile(batch, `${cmd}\n`);
    const t0 = performance.now();
    await must("sftp", [
      ...opensshBase(w),
      "-P",
      String(t.port),
      "-b",
      batch,
      `${w.user.name}@${t.host}`,
    ]);
    return performance.now() - t0;
  };
  const clean = async () => {
    await Deno.remove(remoteUp).catch(() => {});
    await Deno.remove(localDown).catch(() => {});
  };
  const check = async (path: string, what: string) => {
    const got = await fileSize(path);
    if (got !== size) throw new Error(`${what} wrote ${got} of ${size} bytes`);
  };
  const rate = (ms: number) => size / MiB / (ms / 1000);
  try {
    await clean();
    const sshUp = rate(await sftp(`put ${local} ${remoteUp}`));
    await check(remoteUp, "sftp put");
    await clean();
    const sshDown = rate(await sftp(`get ${remoteSrc} ${localDown}`));
    await check(localDown, "sftp get");
    await clean();
    log(`sftp ${where}: OpenSSH up ${fmtRate(sshUp)}, down ${fmtRate(sshDown)}`);
    let t0 = performance.now();
    await rsm.call("ssh_upload", { session_id: sid, local_path: local, remote_path: remoteUp });
    const rsmUp = rate(performance.now() - t0);
    await check(remoteUp, "ssh_upload");
    await clean();
    t0 = performance.now();
    await rsm.call("ssh_download", {
      session_id: sid,
      remote_path: remoteSrc,
      local_path: localDown,
    });
    const rsmDown = rate(performance.now() - t0);
    await check(localDown, "ssh_download");
    const goal = where === "loopback" ? 0.5 : 0.95;
    const row = (dir: "upload" | "download", r: number, s: number): Row => ({
      id: `sftp_${dir}_${where}`,
      name: dir === "upload" ? names.up : names.down,
      status: "ok",
      rsm: fmtRate(r),
      baseline: `sftp -b: ${fmtRate(s)}`,
      ratio: r / s,
      target: `≥ ${goal}×`,
      met: r / s >= goal,
      better: "higher",
      ratioTarget: goal,
      values: { rsm_mibs: r, ssh_mibs: s, bytes: size },
    });
    return [row("upload", rsmUp, sshUp), row("download", rsmDown, sshDown)];
  } finally {
    await clean();
    await Deno.remove(remoteSrc).catch(() => {});
  }
}
