/**
 * `docker_upload` / `docker_download`: directory trees to and from containers as tar streams
 * (tar-stream), permission bits kept. Downloads are traversal-safe: an entry that would land
 * outside the destination (absolute, `..`, under a symlink) or a symlink pointing outside it
 * is skipped and reported, never written.
 */
import { basename, dirname, join, posix } from "node:path";
import type { Readable } from "node:stream";
import tar from "tar-stream";
import { RsmError } from "../errors.ts";
import type { DockerHost } from "./host.ts";
import { isEngineError } from "./errors.ts";

/** Result of a transfer. */
export interface TransferResult {
  bytes: number;
  files: number;
  /** Entries not written because they would escape the destination (downloads). */
  skipped?: string[] | undefined;
}

/** Transfer options. */
export interface TransferOptions {
  onProgress?: ((bytes: number, message: string) => void) | undefined;
  signal?: AbortSignal | undefined;
}

async function lstatOrNull(p: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(p);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Writes the tree at `local` into `pack` under the archive name `name`. */
async function packTree(
  pack: tar.Pack,
  local: string,
  name: string,
  count: TransferResult,
  options: TransferOptions,
): Promise<void> {
  const st = await Deno.lstat(local);
  const mode = (st.mode ?? 0o644) & 0o7777;
  const mtime = st.mtime ?? new Date();
  if (st.isSymlink) {
    const target = await Deno.readLink(local);
    await addEntry(pack, { name, type: "symlink", linkname: target, mode, mtime });
    count.files++;
  } else if (st.isDirectory) {
    await addEntry(pack, { name, type: "directory", mode, mtime });
    const kids: string[] = [];
    for await (const e of Deno.readDir(local)) kids.push(e.name);
    kids.sort();
    for (const k of kids) await packTree(pack, join(local, k), `${name}/${k}`, count, options);
  } else if (st.isFile) {
    const file = await Deno.open(local, { read: true });
    try {
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry(
          { name, type: "file", size: st.size, mode, mtime },
          (err) => err ? reject(err) : resolve(),
        ) as unknown as {
          write(c: Uint8Array): boolean;
          once(e: "drain", f: () => void): void;
          end(): void;
        };
        (async () => {
          for await (const chunk of file.readable) {
            options.signal?.throwIfAborted();
            count.bytes += chunk.length;
            if (!entry.write(chunk)) await new Promise<void>((r) => entry.once("drain", () => r()));
          }
          entry.end();
        })().catch(reject);
      });
    } finally {
      try {
        file.close();
      } catch { /* closed by readable */ }
    }
    count.files++;
    options.onProgress?.(count.bytes, name);
  }
}

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) =>
    pack.entry(header, new Uint8Array(0), (err) => err ? reject(err) : resolve())
  );
}

/** Uploads `localPath` (file or directory) so that it becomes `remotePath` in the container. */
export function upload(
  host: DockerHost,
  container: string,
  localPath: string,
  remotePath: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  if (!remotePath.startsWith("/")) {
    throw new RsmError(
      "BAD_ARGUMENT",
      `Cannot upload to ${remotePath}: remote_path must be absolute`,
    );
  }
  const target = posix.normalize(remotePath).replace(/\/+$/, "") || "/";
  if (target === "/") {
    throw new RsmError(
      "BAD_ARGUMENT",
      "Cannot upload to /: name the destination path, e.g. /tmp/dir",
    );
  }
  return host.use(`upload ${localPath} to ${container}:${target}`, async (d) => {
    try {
      await Deno.lstat(localPath);
    } catch (err) {
      throw new RsmError(
        "NOT_FOUND",
        `Cannot upload ${localPath}: ${err instanceof Error ? err.message : err}`,
      );
    }
    const c = d.getContainer(container);
    // extract next to the target when its parent exists, else at / with the full path (parents made)
    let base = posix.dirname(target);
    let name = posix.basename(target);
    await c.inspect(); // a missing container is a clear 404 here (HEAD answers carry no message)
    try {
      await c.infoArchive({ path: base });
    } catch (err) {
      if (!(isEngineError(err) && err.statusCode === 404)) throw err;
      base = "/";
      name = target.slice(1);
    }
    const count: TransferResult = { bytes: 0, files: 0 };
    const pack = tar.pack();
    const parents = name.split("/").slice(0, -1);
    const producing = (async () => {
      for (let i = 1; i <= parents.length; i++) {
        await addEntry(pack, {
          name: parents.slice(0, i).join("/"),
          type: "directory",
          mode: 0o755,
        });
      }
      await packTree(pack, localPath, name, count, options);
      pack.finalize();
    })().catch((err) => {
      pack.destroy(err);
      throw err;
    });
    await Promise.all([c.putArchive(pack as unknown as Readable, { path: base }), producing]);
    return count;
  }, "the container must exist and the destination's parent must be a directory");
}

/** Maps an archive entry name onto the destination, or null when it would escape. */
export function safeTarget(dest: string, root: string, entryName: string): string | null {
  const name = entryName.replace(/\/+$/, "");
  if (name.startsWith("/") || name.includes("\0")) return null;
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) return null;
  if (parts[0] !== root) return null;
  return parts.length === 1 ? dest : join(dest, ...parts.slice(1));
}

/** Whether every directory between `dest` and `path` is a real directory (no symlink). */
async function parentsAreDirs(dest: string, path: string): Promise<boolean> {
  let p = dirname(path);
  const chain: string[] = [];
  while (p.length >= dest.length && p !== dirname(p)) {
    chain.push(p);
    if (p === dest) break;
    p = dirname(p);
  }
  for (const dir of chain) {
    const st = await lstatOrNull(dir);
    if (!st || !st.isDirectory || st.isSymlink) return false;
  }
  return true;
}

/**
 * Extracts a tar stream (entries rooted at `root`) into `dest` (see module doc). Returns
 * counts and the skipped entry names.
 */
export async function extractTo(
  stream: Readable,
  dest: string,
  root: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const count: TransferResult = { bytes: 0, files: 0, skipped: [] };
  const dirModes: [string, number][] = [];
  const skip = (n: string) => {
    if (count.skipped!.length < 50) count.skipped!.push(n);
  };
  await Deno.mkdir(dirname(dest), { recursive: true });
  const extract = tar.extract();
  stream.pipe(extract);
  stream.on("error", (err) => extract.destroy(err));
  for await (const entry of extract) {
    options.signal?.throwIfAborted();
    const h = entry.header;
    const target = safeTarget(dest, root, h.name);
    const mode = (h.mode ?? 0o644) & 0o777;
    let drained = false;
    try {
      if (!target || (target !== dest && !(await parentsAreDirs(dest, target)))) {
        skip(h.name);
        continue;
      }
      const existing = await lstatOrNull(target);
      if (h.type === "directory") {
        if (existing && !existing.isDirectory) await Deno.remove(target, { recursive: true });
        if (!existing || !existing.isDirectory) await Deno.mkdir(target, { mode: 0o700 });
        dirModes.push([target, mode]);
        continue;
      }
      if (existing?.isDirectory) {
        skip(h.name);
        continue;
      }
      if (existing) await Deno.remove(target);
      if (h.type === "file" || h.type === "contiguous-file") {
        const f = await Deno.open(target, { write: true, createNew: true, mode: 0o600 });
        try {
          for await (const chunk of entry) {
            await writeAll(f, chunk as Uint8Array);
            count.bytes += (chunk as Uint8Array).length;
          }
          drained = true;
        } finally {
          f.close();
        }
        await Deno.chmod(target, mode);
        if (h.mtime) await Deno.utime(target, h.mtime, h.mtime).catch(() => {});
        count.files++;
        options.onProgress?.(count.bytes, h.name);
      } else if (h.type === "symlink" && h.linkname) {
        // the link must resolve inside the destination
        const rel = posix.normalize(posix.join(posix.dirname(h.name), h.linkname));
        if (h.linkname.startsWith("/") || safeTarget(dest, root, rel) === null) {
          skip(`${h.name} -> ${h.linkname}`);
          continue;
        }
        await Deno.symlink(h.linkname, target);
        count.files++;
      } else if (h.type === "link" && h.linkname) {
        const from = safeTarget(dest, root, h.linkname);
        const st = from ? await lstatOrNull(from) : null;
        if (!from || !st?.isFile || !(await parentsAreDirs(dest, from))) {
          skip(`${h.name} => ${h.linkname}`);
          continue;
        }
        await Deno.link(from, target);
        count.files++;
      } else {
        skip(`${h.name} (${h.type})`);
      }
    } finally {
      if (!drained) entry.resume();
    }
  }
  for (const [dir, mode] of dirModes.reverse()) await Deno.chmod(dir, mode).catch(() => {});
  return count;
}

async function writeAll(f: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await f.write(data.subarray(off));
}

/** Downloads `remotePath` from the container so that it becomes `localPath`. */
export function download(
  host: DockerHost,
  container: string,
  remotePath: string,
  localPath: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const src = posix.normalize(remotePath).replace(/(.)\/+$/, "$1");
  return host.use(`download ${container}:${src}`, async (d) => {
    const stream = await d.getContainer(container).getArchive({ path: src }) as unknown as Readable;
    const root = src === "/" ? "." : posix.basename(src);
    const dest = localPath.replace(/(.)\/+$/, "$1");
    const res = await extractTo(stream, dest, root === "." ? basename(dest) : root, options);
    if (!res.skipped!.length) delete res.skipped;
    return res;
  }, "check the container and that remote_path exists in it");
}
