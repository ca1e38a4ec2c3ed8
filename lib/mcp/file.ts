/**
 * File tools over SFTP (README "Files (SFTP)"): ssh_file_list/stat/read/write/delete/mkdir/chmod/rename,
 * ssh_upload and ssh_download. Validation, output bounds, progress and audit only; the work is
 * in lib/ssh (sftp.ts, transfer.ts).
 */
import { z } from "zod";
import { isAbsolute } from "node:path";
import type { SshSession } from "../ssh/mod.ts";
import type { App } from "../app.ts";
import { errorMessage, RsmError } from "../errors.ts";
import { homeDir } from "../paths.ts";
import {
  chmodPath,
  compareHashes,
  download,
  listDir,
  localSha256,
  makeDir,
  MAX_READ_BYTES,
  parseMode,
  readRange,
  remoteSha256,
  removePath,
  renamePath,
  statPath,
  type TransferResult,
  upload,
  writeData,
} from "../ssh/mod.ts";
import { HASH_ALGORITHMS, remoteHash } from "../ssh/mod.ts";
import { prevBoundary } from "../output/mod.ts";
import { renderResult } from "./render.ts";
import { defineTool, fields, Text, type ToolContext, type ToolDef } from "./tool.ts";
import { resultOutcome, runLong, waitField } from "./job.ts";

const sessionId = () => fields.id("session id (see ssh_list)");
const remote = (what: string) =>
  z.string().min(1).max(4096).describe(
    `${what} on the remote host (relative to the login dir; ~/ works)`,
  );
const local = (what: string) =>
  z.string().min(1).max(4096).describe(`${what} on the machine running rsm (absolute; ~/ works)`);
const modeField = () =>
  z.string().min(1).max(8).describe('octal permission bits: "0644", "644" or "0o644"');

/** The session's SFTP channel, waiting up to 15 s for a reconnecting session. */
async function sftpOf(ctx: ToolContext, id: string): ReturnType<SshSession["sftp"]> {
  const session = ctx.app.ssh.get(id);
  try {
    return await session.sftp(AbortSignal.any([ctx.signal, AbortSignal.timeout(15_000)]));
  } catch (err) {
    if (err instanceof RsmError) throw err;
    if (ctx.signal.aborted) throw err;
    session.client(); // throws the NOT_CONNECTED explanation
    throw new RsmError("SFTP_FAILED", `Cannot open SFTP on session ${id}: ${errorMessage(err)}`);
  }
}

function localPath(path: string): string {
  const p = path === "~" ? homeDir() : path.replace(/^~(?=\/)/, homeDir());
  if (!isAbsolute(p)) {
    throw new RsmError(
      "BAD_ARGUMENT",
      `Cannot use local_path ${path}: it must be absolute (or start with ~/), because the ` +
        `daemon's working directory is not yours`,
    );
  }
  return p;
}

const MiB = 1024 * 1024;
const human = (n: number) =>
  n >= MiB * 1024
    ? `${(n / MiB / 1024).toFixed(2)} GiB`
    : n >= MiB
    ? `${(n / MiB).toFixed(1)} MiB`
    : `${Math.round(n / 1024)} KiB`;

/** Progress callback for transfers: bytes of total (the registry throttles notifications). */
function transferProgress(
  report: (done: number, total: number | undefined, message: string) => void,
  verb: string,
) {
  return (done: number, total: number, current: string) =>
    report(done, total, `${verb} ${human(done)} of ${human(total)}: ${current}`);
}

function transferValue(r: TransferResult, started: number) {
  return { ...r, duration_ms: Date.now() - started };
}

const verifyField = () =>
  z.boolean().optional().describe("compare SHA-256 end to end (single files)");

/** Refuses `verify` for a directory before anything is copied. */
function verifiable(isDir: boolean, path: string): void {
  if (isDir) {
    throw new RsmError(
      "BAD_ARGUMENT",
      `Cannot verify ${path}: verify: true compares single files and this is a directory; ` +
        `drop verify, or transfer and verify its files one by one`,
    );
  }
}

/** The SHA-256 of the local and the remote copy, compared (see lib/ssh/verify.ts). */
async function verified(
  ctx: ToolContext,
  sessionId: string,
  local: string,
  remotePath: string,
  signal: AbortSignal,
) {
  const client = await ctx.app.ssh.get(sessionId).ready(signal);
  const [here, there] = await Promise.all([
    localSha256(local, signal),
    remoteSha256(client, remotePath, signal),
  ]);
  return compareHashes(here, there, remotePath);
}

/** The largest prefix of `bytes` (at a character boundary) whose rendered result fits `max`. */
function fitRead(
  app: App,
  base: { offset: number; size: number },
  bytes: Uint8Array,
): Record<string, unknown> {
  const dec = new TextDecoder();
  const build = (n: number) => {
    const end = base.offset + n;
    const eof = end >= base.size;
    return {
      offset: base.offset,
      bytes: n,
      size: base.size,
      eof,
      ...(eof ? {} : { next_offset: end }),
      data: dec.decode(bytes.subarray(0, n)),
    };
  };
  const fits = (n: number) =>
    new TextEncoder().encode(renderResult(build(n), { format: app.format, max: Infinity }).text)
      .length <= app.maxOutput;
  if (fits(bytes.length)) return build(bytes.length);
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return build(prevBoundary(bytes, lo)); // whole characters only
}

/** The file tools. */
export const fileTools: ToolDef[] = [
  defineTool({
    name: "ssh_file_list",
    group: "file",
    description:
      "Lists a remote directory over SFTP: one row per entry {name, size, mode (ls -l style), " +
      "perm (octal), mod_time, is_dir, target (symlinks only)}. Symlinks are not followed.",
    input: { session_id: sessionId(), path: remote("directory") },
    annotations: { readOnlyHint: true },
    run: async (a, ctx) => await listDir(await sftpOf(ctx, a.session_id), a.path),
  }),
  defineTool({
    name: "ssh_file_stat",
    group: "file",
    description:
      "Describes one remote path: {name, size, mode, perm, mod_time, is_dir, target?}. Follows " +
      "symlinks unless lstat: true (then the link itself, with its target).",
    input: {
      session_id: sessionId(),
      path: remote("path"),
      lstat: z.boolean().optional().describe("describe a symlink itself instead of its target"),
    },
    annotations: { readOnlyHint: true },
    run: async (a, ctx) =>
      await statPath(await sftpOf(ctx, a.session_id), a.path, { lstat: a.lstat }),
  }),
  defineTool({
    name: "ssh_file_hash",
    group: "file",
    description: "Hashes a remote file on the server without moving it: {path, algorithm, " +
      "hash} (sha256sum's hex).",
    input: {
      session_id: sessionId(),
      path: remote("file"),
      algorithm: z.enum(Object.keys(HASH_ALGORITHMS) as ["sha256"]).optional().describe(
        "default sha256",
      ),
    },
    annotations: { readOnlyHint: true },
    run: async (a, ctx) => {
      const session = ctx.app.ssh.get(a.session_id);
      const client = await session.ready(
        AbortSignal.any([ctx.signal, AbortSignal.timeout(15_000)]),
      );
      const algorithm = (a.algorithm ?? "sha256") as keyof typeof HASH_ALGORITHMS;
      const hash = await remoteHash(client, a.path, algorithm, ctx.signal);
      return { path: a.path, algorithm, hash };
    },
  }),
  defineTool({
    name: "ssh_file_read",
    group: "file",
    description:
      "Reads a remote text file (UTF-8): offset, bytes, size, eof, next_offset, then the text " +
      "as data. Not eof: call again with offset = next_offset. Binary files are refused " +
      "(use ssh_download).",
    input: {
      session_id: sessionId(),
      path: remote("file"),
      offset: z.number().int().nonnegative().optional().describe("byte offset (default 0)"),
      length: z.number().int().positive().max(MAX_READ_BYTES).optional().describe(
        "bytes to read (default and effective maximum: what fits the output bound)",
      ),
    },
    annotations: { readOnlyHint: true },
    run: async (a, ctx) => {
      const sftp = await sftpOf(ctx, a.session_id);
      const range = await readRange(sftp, a.path, {
        offset: a.offset,
        length: Math.min(a.length ?? ctx.app.maxOutput, ctx.app.maxOutput),
      });
      return fitRead(ctx.app, range, range.bytes);
    },
  }),
  defineTool({
    name: "ssh_file_write",
    group: "file",
    description:
      "Writes text to a remote file (created if missing, replaced unless append: true) and " +
      "returns {bytes_written}. mode sets the permission bits. For large or binary files use " +
      "ssh_upload.\n" +
      'Example: {"session_id": "web1", "path": "/tmp/hello.txt", "data": "hi\\n", "mode": "0644"}',
    input: {
      session_id: sessionId(),
      path: remote("file"),
      data: z.string().max(16 << 20).describe("text to write (UTF-8; at most 16 MiB)"),
      append: z.boolean().optional().describe("append instead of replacing"),
      mode: modeField().optional(),
    },
    annotations: { destructiveHint: true },
    policy: (a) => ({ kind: "ssh", target: a.session_id, writes: [a.path] }),
    audit: (a) => ({ target: a.session_id, path: a.path }),
    run: async (a, ctx) => {
      const mode = a.mode !== undefined ? parseMode(a.mode) : undefined;
      const sftp = await sftpOf(ctx, a.session_id);
      const data = new TextEncoder().encode(a.data);
      const n = await writeData(sftp, a.path, data, { append: a.append, mode });
      return { bytes_written: n };
    },
  }),
  defineTool({
    name: "ssh_file_delete",
    group: "file",
    description:
      "Deletes a remote file, symlink (not its target) or empty directory; recursive: true " +
      "deletes a whole tree (symlinks inside are removed, never followed).",
    input: {
      session_id: sessionId(),
      path: remote("path"),
      recursive: z.boolean().optional().describe("delete a directory and everything in it"),
    },
    annotations: { destructiveHint: true },
    policy: (a) => ({ kind: "ssh", target: a.session_id, writes: [a.path] }),
    audit: (a) => ({ target: a.session_id, path: a.path }),
    run: async (a, ctx) => {
      const sftp = await sftpOf(ctx, a.session_id);
      const n = await removePath(sftp, a.path, { recursive: a.recursive, signal: ctx.signal });
      return new Text(`deleted ${a.path}${n > 1 ? ` (${n} entries)` : ""}`);
    },
  }),
  defineTool({
    name: "ssh_file_mkdir",
    group: "file",
    description:
      "Creates a remote directory; recursive: true also creates missing parents and accepts " +
      "an existing directory (mkdir -p).",
    input: {
      session_id: sessionId(),
      path: remote("directory"),
      recursive: z.boolean().optional().describe("create parents; no error if it exists"),
    },
    annotations: { destructiveHint: false, idempotentHint: true },
    policy: (a) => ({ kind: "ssh", target: a.session_id, writes: [a.path] }),
    audit: (a) => ({ target: a.session_id, path: a.path }),
    run: async (a, ctx) => {
      const sftp = await sftpOf(ctx, a.session_id);
      await makeDir(sftp, a.path, { recursive: a.recursive });
      return new Text(`created ${a.path}`);
    },
  }),
  defineTool({
    name: "ssh_file_chmod",
    group: "file",
    description: 'Sets the permission bits of a remote path. Example: {"mode": "0640"}.',
    input: { session_id: sessionId(), path: remote("path"), mode: modeField() },
    annotations: { destructiveHint: false, idempotentHint: true },
    policy: (a) => ({ kind: "ssh", target: a.session_id, writes: [a.path] }),
    audit: (a) => ({ target: a.session_id, path: `${a.path} ${a.mode}` }),
    run: async (a, ctx) => {
      const mode = parseMode(a.mode);
      const sftp = await sftpOf(ctx, a.session_id);
      await chmodPath(sftp, a.path, mode);
      return new Text("chmod ok");
    },
  }),
  defineTool({
    name: "ssh_file_rename",
    group: "file",
    description: "Renames or moves a remote path. An existing destination is an error unless " +
      "overwrite: true (replaced atomically where the server supports posix-rename).",
    input: {
      session_id: sessionId(),
      from: remote("current path"),
      to: remote("new path"),
      overwrite: z.boolean().optional().describe("replace an existing destination"),
    },
    annotations: { destructiveHint: true },
    policy: (a) => ({ kind: "ssh", target: a.session_id, writes: [a.from, a.to] }),
    audit: (a) => ({ target: a.session_id, path: `${a.from} -> ${a.to}` }),
    run: async (a, ctx) => {
      const sftp = await sftpOf(ctx, a.session_id);
      await renamePath(sftp, a.from, a.to, { overwrite: a.overwrite });
      return new Text(`renamed ${a.from} to ${a.to}`);
    },
  }),
  defineTool({
    name: "ssh_upload",
    group: "file",
    description: "Copies a local file or tree over SFTP to become remote_path (directories " +
      "merged, parents created, permission bits kept); returns {bytes, files, dirs, skipped?, " +
      "mode_errors?, duration_ms}. Symlinks pointing out of the tree are skipped.\n" +
      'Example: {"session_id": "web1", "local_path": "/home/me/site", "remote_path": "/srv/site"}',
    input: {
      session_id: sessionId(),
      local_path: local("file or directory to send"),
      remote_path: remote("destination path"),
      verify: verifyField(),
      wait_ms: waitField(),
    },
    annotations: { destructiveHint: true },
    policy: (a) => ({ kind: "ssh", target: a.session_id, writes: [a.remote_path] }),
    run: async (a, ctx) => {
      const from = localPath(a.local_path);
      if (a.verify) verifiable((await Deno.stat(from)).isDirectory, a.local_path);
      const sftp = await sftpOf(ctx, a.session_id);
      const started = Date.now();
      const path = `${from} -> ${a.remote_path}`;
      ctx.audit.set({ target: a.session_id, path });
      return await runLong(ctx, {
        kind: "ssh_upload",
        target: a.session_id,
        summary: path,
        waitMs: a.wait_ms,
        work: async (job) => {
          const r = await upload(sftp, from, a.remote_path, {
            signal: job.signal,
            onProgress: transferProgress(job.progress, "uploaded"),
          });
          if (!a.verify) return transferValue(r, started);
          job.note(`verifying ${a.remote_path} (SHA-256 on both ends)`);
          const v = await verified(ctx, a.session_id, from, a.remote_path, job.signal);
          return { ...transferValue(r, started), ...v };
        },
        outcome: resultOutcome,
      });
    },
  }),
  defineTool({
    name: "ssh_download",
    group: "file",
    description:
      "Copies a remote file or tree over SFTP to become local_path here (directories merged, " +
      "permission bits kept); returns {bytes, files, dirs, skipped?, mode_errors?, " +
      "duration_ms}. Never writes outside local_path: unsafe names and symlinks out are skipped.\n" +
      'Example: {"session_id": "web1", "remote_path": "/var/log/nginx", "local_path": "/tmp/logs"}',
    input: {
      session_id: sessionId(),
      remote_path: remote("file or directory to fetch"),
      local_path: local("destination path"),
      verify: verifyField(),
      wait_ms: waitField(),
    },
    annotations: { destructiveHint: true },
    run: async (a, ctx) => {
      const to = localPath(a.local_path);
      const sftp = await sftpOf(ctx, a.session_id);
      if (a.verify) verifiable((await statPath(sftp, a.remote_path)).is_dir, a.remote_path);
      const started = Date.now();
      const path = `${a.remote_path} -> ${to}`;
      ctx.audit.set({ target: a.session_id, path });
      return await runLong(ctx, {
        kind: "ssh_download",
        target: a.session_id,
        summary: path,
        waitMs: a.wait_ms,
        work: async (job) => {
          const r = await download(sftp, a.remote_path, to, {
            signal: job.signal,
            onProgress: transferProgress(job.progress, "downloaded"),
          });
          if (!a.verify) return transferValue(r, started);
          job.note(`verifying ${to} (SHA-256 on both ends)`);
          const v = await verified(ctx, a.session_id, to, a.remote_path, job.signal);
          return { ...transferValue(r, started), ...v };
        },
        outcome: resultOutcome,
      });
    },
  }),
];
