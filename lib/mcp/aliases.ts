/**
 * Old argument forms of the original remote-shell-mcp, accepted where their meaning is clear.
 * Each tool's rewrite runs before validation, so the listed schemas stay as they are (tools/list
 * does not grow beyond one short note per tool); a form whose meaning is not clear gets an
 * error that says what to send instead.
 */
import { parseDuration } from "../duration.ts";

type Args = Record<string, unknown>;

/** One tool's old forms: a note for its description and the rewrite. */
interface Alias {
  note: string;
  rewrite(args: Args): Args;
}

/** The longest `timeout_ms` the command tools accept (1 h); old `0` ("no limit") maps to it. */
const MAX_TIMEOUT_MS = 3_600_000;

const isObject = (v: unknown): v is Args => !!v && typeof v === "object" && !Array.isArray(v);

/** `timeout_ms: 0` (no limit in the original) → the longest allowed. */
function zeroTimeout(args: Args): Args {
  return args.timeout_ms === 0 ? { ...args, timeout_ms: MAX_TIMEOUT_MS } : args;
}

const timeoutAlias: Alias = { note: "timeout_ms 0 = 1 h.", rewrite: zeroTimeout };

/** A numeric mode like 644 or 4755 is read as octal digits; other numbers are ambiguous. */
function numericMode(args: Args): Args {
  const mode = args.mode;
  if (typeof mode !== "number") return args;
  if (Number.isInteger(mode) && mode >= 0 && /^[0-7]{1,4}$/.test(String(mode))) {
    return { ...args, mode: String(mode) };
  }
  throw new Error(
    `mode ${mode} is not octal digits: send the mode as a string of octal digits, e.g. "0755" ` +
      `(a number is read digit by digit, so 755 means 0755; 493 has no octal reading)`,
  );
}

const modeAlias: Alias = {
  note: "mode as a number (644).",
  rewrite: numericMode,
};

/** `tail: "100"` → 100; `"all"` stays. */
function stringTail(args: Args): Args {
  const tail = args.tail;
  if (typeof tail !== "string" || tail === "all") return args;
  if (/^\s*\d{1,7}\s*$/.test(tail)) return { ...args, tail: Number(tail) };
  throw new Error(
    `tail must be a number of lines or "all"; ${JSON.stringify(tail.slice(0, 40))} is neither ` +
      `(e.g. 100 or "all")`,
  );
}

/** `docker_run` `detach` (spec or top level): true is the default; false means `wait: true`. */
function detach(args: Args): Args {
  let out = args;
  if ("detach" in out && isObject(out.spec) && !("detach" in out.spec)) {
    const { detach, ...rest } = out;
    out = { ...rest, spec: { ...out.spec, detach } };
  }
  if (!isObject(out.spec) || !("detach" in out.spec)) return out;
  const { detach: d, ...spec } = out.spec;
  if (typeof d !== "boolean") {
    throw new Error(
      `spec.detach must be true or false (false waits for the exit, like wait: true)`,
    );
  }
  if (spec.wait !== undefined && spec.wait === d) {
    throw new Error(
      `spec.detach: ${d} contradicts spec.wait: ${spec.wait}; send only wait (true waits for the ` +
        `exit and returns exit_code and logs)`,
    );
  }
  return { ...out, spec: d ? spec : { ...spec, wait: true } };
}

/** `jump_hosts[].timeout`: the spec's timeout covers every hop; a hop's raises it to at least that. */
function hopTimeouts(args: Args): Args {
  const spec = args.spec;
  if (!isObject(spec) || !Array.isArray(spec.jump_hosts)) return args;
  let longest = -1;
  const hops = spec.jump_hosts.map((hop, i) => {
    if (!isObject(hop) || !("timeout" in hop)) return hop;
    const { timeout, ...rest } = hop;
    try {
      longest = Math.max(longest, parseDuration(timeout as string | number));
    } catch {
      throw new Error(
        `jump_hosts[${i}].timeout must be a duration like "30s" or a number of ms, not ` +
          `${JSON.stringify(timeout)?.slice(0, 40)}`,
      );
    }
    return rest;
  });
  if (longest < 0) return args;
  const out: Args = { ...spec, jump_hosts: hops };
  if (spec.timeout === undefined) out.timeout = Math.max(longest, 15_000);
  return { ...args, spec: out };
}

const DOCKER_SPEC = new Set([
  "host",
  "tls_ca_path",
  "tls_cert_path",
  "tls_key_path",
  "api_version",
  "user",
  "auth",
  "known_hosts_path",
  "host_key_policy",
  "timeout",
  "persistent",
  "ssh_session",
]);
const SSH_AUTH = new Set([
  "key_path",
  "key_passphrase",
  "key_passphrase_env",
  "use_agent",
  "agent_socket",
  "password",
  "password_env",
  "password_file",
]);

/**
 * `docker_connect` with the SSH fields flat: in `spec` or beside `id` (`key_path`, `password`,
 * … and their `ssh_`-prefixed forms go into `spec.auth`; `ssh_user` → `user`,
 * `ssh_known_hosts_path` → `known_hosts_path`, `ssh_insecure: true` → host_key_policy
 * "insecure"); spec fields beside `id` go into `spec`.
 */
function flatDocker(args: Args): Args {
  const top: Args = {};
  let spec: Args = isObject(args.spec) ? { ...args.spec } : {};
  const hadSpec = isObject(args.spec);
  for (const [k, v] of Object.entries(args)) {
    if (k === "id" || k === "spec") top[k] = v;
    else if (DOCKER_SPEC.has(k) || SSH_AUTH.has(k) || k.startsWith("ssh_") || k === "insecure") {
      if (k in spec) throw new Error(`${k} is given twice, beside id and in spec; keep one`);
      spec[k] = v;
    } else top[k] = v; // left for validation to name
  }
  const auth: Args = isObject(spec.auth) ? { ...spec.auth } : {};
  let moved = false;
  for (const [k, v] of Object.entries(spec)) {
    if (k === "ssh_session") continue;
    const bare = k.startsWith("ssh_") ? k.slice(4) : k;
    let target: [Args, string] | undefined;
    if (SSH_AUTH.has(bare)) target = [auth, bare];
    else if (k === "ssh_user") target = [spec, "user"];
    else if (k === "ssh_known_hosts_path") target = [spec, "known_hosts_path"];
    else if (k === "ssh_insecure" || k === "insecure") {
      if (typeof v !== "boolean") throw new Error(`spec.${k} must be true or false`);
      delete spec[k];
      if (!v) continue;
      if (spec.host_key_policy !== undefined && spec.host_key_policy !== "insecure") {
        throw new Error(
          `spec.${k}: true contradicts host_key_policy "${spec.host_key_policy}"; keep one`,
        );
      }
      spec.host_key_policy = "insecure";
      continue;
    }
    if (!target) continue;
    const [obj, key] = target;
    delete spec[k];
    if (obj === auth) moved = true;
    if (obj[key] !== undefined && JSON.stringify(obj[key]) !== JSON.stringify(v)) {
      throw new Error(
        `spec.${k} and spec.${obj === auth ? "auth." : ""}${key} differ; send only ${
          obj === auth ? "auth." : ""
        }${key}`,
      );
    }
    obj[key] = v;
  }
  if (moved) spec = { ...spec, auth };
  if (!hadSpec && Object.keys(spec).length === 0) return top;
  return { ...top, spec };
}

/** The old forms per tool. */
export const ALIASES: Record<string, Alias> = {
  ssh_exec: timeoutAlias,
  ssh_shell_run: timeoutAlias,
  docker_exec: timeoutAlias,
  docker_shell_run: timeoutAlias,
  ssh_file_chmod: modeAlias,
  ssh_file_write: modeAlias,
  docker_container_logs: { note: 'tail "100".', rewrite: stringTail },
  docker_run: { note: "detach: false = wait: true.", rewrite: detach },
  ssh_connect: {
    note: "jump_hosts[].timeout (raises timeout).",
    rewrite: hopTimeouts,
  },
  docker_connect: {
    note: "flat SSH fields (key_path, ssh_insecure…).",
    rewrite: flatDocker,
  },
};

/** `args` with the old forms of `tool` rewritten; throws a plain message when unclear. */
export function applyAliases(tool: string, args: unknown): unknown {
  const alias = ALIASES[tool];
  if (!alias || !isObject(args)) return args;
  return alias.rewrite(args);
}

/** The description of `tool` with its old-forms note. */
export function describeWithAliases(tool: string, description: string): string {
  const alias = ALIASES[tool];
  return alias ? `${description}\nAliases: ${alias.note}` : description;
}
