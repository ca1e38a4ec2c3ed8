/** Image and copy tools: list, pull, remove, upload, download (README "Docker"). */
import { resolve } from "node:path";
import { z } from "zod";
import {
  dockerExec,
  type DockerHost,
  download,
  listImages,
  pullImage,
  removeImage,
  upload,
} from "../docker/mod.ts";
import { compareHashes, localSha256 } from "../ssh/mod.ts";
import { RsmError } from "../errors.ts";
import { defineTool, fields, Text, type ToolDef } from "./tool.ts";
import { resultOutcome, runLong, waitField } from "./job.ts";

const hostId = () => fields.id("Docker host id (from docker_connect)");
const container = () => z.string().min(1).max(300).describe("container name or id");
const image = () => z.string().min(1).max(500).describe("image reference or id");

const verifyField = () =>
  z.boolean().optional().describe("compare SHA-256 end to end (single files)");

/** The SHA-256 of a local file and of its copy in the container (`sha256sum` there), compared. */
async function verifiedCopy(
  host: DockerHost,
  container: string,
  local: string,
  inside: string,
  signal: AbortSignal,
) {
  if ((await Deno.stat(local)).isDirectory) {
    throw new RsmError(
      "BAD_ARGUMENT",
      `Cannot verify ${local}: verify: true compares single files and this is a directory; ` +
        `drop verify, or copy and verify its files one by one`,
    );
  }
  const [here, r] = await Promise.all([
    localSha256(local, signal),
    dockerExec(host, container, { cmd: ["sha256sum", "--", inside], timeoutMs: 3600_000, signal }),
  ]);
  const there = r.stdout.text().slice(0, 64);
  if (r.exit_code !== 0 || !/^[0-9a-f]{64}$/.test(there)) {
    throw new RsmError(
      "VERIFY_FAILED",
      `Cannot verify ${inside}: sha256sum in the container failed (exit ${r.exit_code}: ` +
        `${r.stderr.text().trim().slice(0, 300)}); the image needs sha256sum (coreutils or ` +
        `busybox), or drop verify`,
    );
  }
  return compareHashes(here, there, inside);
}

/** Transfer progress in bytes, reported as measured (the registry throttles notifications). */
const bytesProgress =
  (report: (done: number, total: number | undefined, message: string) => void) =>
  (bytes: number, message: string) => report(bytes, undefined, message);

/** Image and copy tools. */
export const imageTools: ToolDef[] = [
  defineTool({
    name: "docker_image_list",
    group: "docker",
    description: "Lists images on the engine, one row per tag: id, tag, size, created.",
    input: {
      host_id: hostId(),
      all: z.boolean().optional().describe("include intermediate images"),
    },
    annotations: { readOnlyHint: true },
    run: (a, ctx) => listImages(ctx.app.docker.get(a.host_id), { all: a.all, signal: ctx.signal }),
  }),
  defineTool({
    name: "docker_image_pull",
    group: "docker",
    description:
      "Pulls an image (default tag latest) with progress notifications. Registry credentials " +
      "come from ~/.docker/config.json (auths, as written by docker login).",
    input: { host_id: hostId(), image: image(), wait_ms: waitField() },
    run: (a, ctx) => {
      const host = ctx.app.docker.get(a.host_id);
      return runLong(ctx, {
        kind: "docker_image_pull",
        target: a.host_id,
        summary: a.image,
        waitMs: a.wait_ms,
        work: (job) => pullImage(host, a.image, { onProgress: job.progress, signal: job.signal }),
        outcome: resultOutcome,
      });
    },
  }),
  defineTool({
    name: "docker_image_remove",
    group: "docker",
    description: "Removes an image (force: even when a container uses it).",
    input: {
      host_id: hostId(),
      image: image(),
      force: z.boolean().optional(),
      prune_children: z.boolean().optional().describe(
        "also delete untagged parents (default true)",
      ),
    },
    annotations: { destructiveHint: true },
    audit: (a) => ({ target: a.host_id, command: `rmi ${a.image}` }),
    run: async (a, ctx) => {
      await removeImage(ctx.app.docker.get(a.host_id), a.image, {
        force: a.force,
        pruneChildren: a.prune_children,
      });
      return new Text(`removed ${a.image}`);
    },
  }),
  defineTool({
    name: "docker_upload",
    group: "docker",
    description:
      "Copies a local file or directory tree into a container so that it becomes remote_path " +
      "(permission bits kept; missing parent directories are created).",
    input: {
      host_id: hostId(),
      container: container(),
      local_path: z.string().min(1).max(4096),
      remote_path: z.string().min(1).max(4096).describe("absolute path in the container"),
      wait_ms: waitField(),
      verify: verifyField(),
    },
    policy: (a) => ({ kind: "docker", target: a.host_id, writes: [a.remote_path] }),
    audit: (a) => ({ target: `${a.host_id}/${a.container}`, path: a.remote_path }),
    run: (a, ctx) => {
      const host = ctx.app.docker.get(a.host_id);
      return runLong(ctx, {
        kind: "docker_upload",
        target: `${a.host_id}/${a.container}`,
        summary: `${a.local_path} -> ${a.remote_path}`,
        waitMs: a.wait_ms,
        work: async (job) => {
          const from = resolve(a.local_path);
          if (a.verify && (await Deno.stat(from)).isDirectory) {
            await verifiedCopy(host, a.container, from, a.remote_path, job.signal); // explains
          }
          const r = await upload(host, a.container, from, a.remote_path, {
            onProgress: bytesProgress(job.progress),
            signal: job.signal,
          });
          if (!a.verify) return r;
          return {
            ...r,
            ...await verifiedCopy(host, a.container, from, a.remote_path, job.signal),
          };
        },
        outcome: resultOutcome,
      });
    },
  }),
  defineTool({
    name: "docker_download",
    group: "docker",
    description:
      "Copies a file or directory tree out of a container to become local_path. Entries that " +
      "would land outside it (absolute, .., symlinks out) are skipped and listed in `skipped`.",
    input: {
      host_id: hostId(),
      container: container(),
      remote_path: z.string().min(1).max(4096).describe("path in the container"),
      local_path: z.string().min(1).max(4096),
      wait_ms: waitField(),
      verify: verifyField(),
    },
    audit: (a) => ({ target: `${a.host_id}/${a.container}`, path: a.local_path }),
    run: (a, ctx) => {
      const host = ctx.app.docker.get(a.host_id);
      return runLong(ctx, {
        kind: "docker_download",
        target: `${a.host_id}/${a.container}`,
        summary: `${a.remote_path} -> ${a.local_path}`,
        waitMs: a.wait_ms,
        work: async (job) => {
          const to = resolve(a.local_path);
          const r = await download(host, a.container, a.remote_path, to, {
            onProgress: bytesProgress(job.progress),
            signal: job.signal,
          });
          if (!a.verify) return r;
          return {
            ...r,
            ...await verifiedCopy(host, a.container, to, a.remote_path, job.signal),
          };
        },
        outcome: resultOutcome,
      });
    },
  }),
];
