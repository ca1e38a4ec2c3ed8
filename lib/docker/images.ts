/** Images: pull (registry auth from the docker CLI config, progress), list, remove. */
import { join } from "node:path";
import type Docker from "dockerode";
import { RsmError } from "../errors.ts";
import { addSecret } from "../secrets.ts";
import { dockerConfigDir } from "./endpoint.ts";
import type { DockerHost } from "./host.ts";

/** ImageRow (README "Docker"). */
export interface ImageRow {
  id: string;
  tag: string;
  size: string;
  created: string;
}

/** Progress callback: bytes done, bytes total (when known), a message. */
export type PullProgress = (done: number, total: number | undefined, message: string) => void;

/** Registry host of an image reference (`docker.io` when none is named). */
export function registryOf(ref: string): string {
  const first = ref.split("/")[0] ?? "";
  if (ref.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) {
    return first;
  }
  return "docker.io";
}

/** Adds `:latest` when the reference has no tag or digest. */
export function withTag(ref: string): string {
  if (ref.includes("@")) return ref;
  const last = ref.split("/").pop()!;
  return last.includes(":") ? ref : `${ref}:latest`;
}

interface AuthConfig {
  username?: string | undefined;
  password?: string | undefined;
  identitytoken?: string | undefined;
  serveraddress: string;
}

/**
 * Credentials for `registry` from `config.json` in the docker CLI config dir (`auths` entries;
 * credential helpers are not run). Null when there are none.
 */
export async function registryAuth(
  registry: string,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<AuthConfig | null> {
  let cfg: {
    auths?: Record<
      string,
      {
        auth?: string | undefined;
        username?: string | undefined;
        password?: string | undefined;
        identitytoken?: string | undefined;
      }
    >;
  };
  try {
    cfg = JSON.parse(await Deno.readTextFile(join(dockerConfigDir(env), "config.json")));
  } catch {
    return null;
  }
  const norm = (k: string) => k.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  const want = registry === "docker.io" ? "index.docker.io" : registry;
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    const k = norm(key);
    if (
      k !== want &&
      !(registry === "docker.io" && (k === "docker.io" || k === "registry-1.docker.io"))
    ) continue;
    let username = entry.username;
    let password = entry.password;
    if (entry.auth) {
      const decoded = atob(entry.auth);
      const i = decoded.indexOf(":");
      username = decoded.slice(0, i);
      password = decoded.slice(i + 1);
    }
    addSecret(password);
    addSecret(entry.identitytoken);
    addSecret(entry.auth);
    if (!username && !entry.identitytoken) continue;
    return {
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(entry.identitytoken !== undefined ? { identitytoken: entry.identitytoken } : {}),
      serveraddress: registry === "docker.io" ? "https://index.docker.io/v1/" : registry,
    };
  }
  return null;
}

interface PullEvent {
  status?: string | undefined;
  id?: string | undefined;
  progressDetail?: { current?: number | undefined; total?: number | undefined };
  error?: string | undefined;
  errorDetail?: { message?: string | undefined } | undefined;
}

/** Pulls `image`; returns the engine's last status line. */
export function pullImage(
  host: DockerHost,
  image: string,
  options: { onProgress?: PullProgress | undefined; signal?: AbortSignal | undefined } = {},
): Promise<{ image: string; status: string }> {
  const ref = withTag(image);
  return host.use(`pull image ${ref}`, async (d) => {
    const auth = await registryAuth(registryOf(ref));
    const stream = await d.pull(ref, {
      ...(auth ? { authconfig: auth } : {}),
      abortSignal: options.signal,
    } as Record<string, unknown>) as NodeJS.ReadableStream;
    const layers = new Map<string, { current: number; total: number }>();
    let last = "";
    let lastSent = 0;
    const events: PullEvent[] = await new Promise((resolve, reject) => {
      d.modem.followProgress(
        stream,
        (err: unknown, out: PullEvent[]) => err ? reject(err) : resolve(out),
        (ev: PullEvent) => {
          if (ev.error) return;
          if (ev.status) last = ev.id ? `${ev.id}: ${ev.status}` : ev.status;
          if (ev.id && ev.progressDetail?.total) {
            layers.set(ev.id, {
              current: ev.progressDetail.current ?? 0,
              total: ev.progressDetail.total,
            });
          }
          const now = Date.now();
          if (options.onProgress && now - lastSent > 200) {
            lastSent = now;
            let done = 0;
            let total = 0;
            for (const l of layers.values()) {
              done += l.current;
              total += l.total;
            }
            options.onProgress(done, total || undefined, last);
          }
        },
      );
    });
    const failed = events.find((e) => e.error);
    if (failed) {
      const msg = failed.errorDetail?.message ?? failed.error ?? "unknown error";
      const hint = /unauthorized|authentication required|denied/i.test(msg)
        ? `; log in so that ${
          join(dockerConfigDir(Deno.env.toObject()), "config.json")
        } holds credentials for ${registryOf(ref)} (docker login)`
        : /not found|unknown|does not exist/i.test(msg)
        ? "; check the image name and tag"
        : "";
      throw new RsmError("PULL_FAILED", `Cannot pull image ${ref}: ${msg}${hint}`);
    }
    const status = [...events].reverse().find((e) => e.status && !e.id)?.status ?? last;
    options.onProgress?.(1, 1, status);
    return { image: ref, status };
  }, "check the image name, and that the registry is reachable from the engine");
}

/** `1.98MB`, like `docker images`. */
export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)}${units[i]}`;
}

/** Lists images, one row per tag (untagged ones as `<none>`). */
export function listImages(
  host: DockerHost,
  options: { all?: boolean | undefined; signal?: AbortSignal | undefined } = {},
): Promise<ImageRow[]> {
  return host.use("list images", async (d) => {
    const list = await d.listImages(
      { all: options.all ?? false, abortSignal: options.signal } as Docker.ListImagesOptions,
    );
    const rows: ImageRow[] = [];
    for (const img of list) {
      const tags = img.RepoTags?.filter((t) => t !== "<none>:<none>") ?? [];
      const base = {
        id: img.Id.replace(/^sha256:/, "").slice(0, 12),
        size: humanSize(img.Size),
        created: new Date(img.Created * 1000).toISOString(),
      };
      if (!tags.length) rows.push({ ...base, tag: "<none>" });
      for (const tag of tags) rows.push({ ...base, tag });
    }
    return rows;
  });
}

/** Removes an image. */
export function removeImage(
  host: DockerHost,
  image: string,
  options: { force?: boolean | undefined; pruneChildren?: boolean | undefined } = {},
): Promise<void> {
  return host.use(`remove image ${image}`, async (d) => {
    await d.getImage(image).remove({
      force: options.force ?? false,
      noprune: !(options.pruneChildren ?? true),
    });
  }, "see docker_image_list; an image used by a container needs force: true");
}
