import { RsmError } from "./errors.ts";
/**
 * The daemon's register of secret values (passwords, passphrases, tokens) it has seen.
 * Anything written to a log, the audit log, state or an error text goes through
 * {@link redact}, so a secret that slipped into a message is replaced by `***`.
 * Register every secret as soon as it is read from an argument, env var or file.
 */
const known = new Set<string>();

/** Remembers `value` as a secret (values shorter than 4 characters are too common to scrub). */
export function addSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) known.add(value);
}

/** Replaces every registered secret in `text` with `***`. */
export function redact(text: string): string {
  let out = text;
  for (const secret of known) {
    if (out.includes(secret)) out = out.split(secret).join("***");
  }
  return out;
}

/**
 * A secret a connection needs that no reference (`password_env`, a key file …) provides, so a
 * person types it on the daemon's loopback page (see the README, "A person in control").
 */
export interface SecretNeed {
  /** Where the typed value is kept, e.g. `password:deploy@127.0.0.1:2222`. */
  key: string;
  kind: "password" | "passphrase" | "answer" | "sudo";
  /** What the person is asked, e.g. `Password for deploy@127.0.0.1:2222`. */
  label: string;
  /** The server's own question (keyboard-interactive), shown as it came. */
  prompt?: string;
  /** A one-time answer (an OTP): used once, then forgotten. */
  once?: boolean;
}

/** Thrown when a secret from a person is needed; the tool layer asks for it and tries again. */
export class SecretNeededError extends RsmError {
  readonly need: SecretNeed;
  constructor(need: SecretNeed, message: string) {
    super("SECRET_NEEDED", message);
    this.name = "SecretNeededError";
    this.need = need;
  }
}

const typed = new Map<string, string>();

/** Keeps a secret a person typed (memory only) and registers it for redaction. */
export function putTypedSecret(key: string, value: string): void {
  addSecret(value);
  typed.set(key, value);
}

/** The secret a person typed for `key`; a `once` secret is forgotten as it is handed out. */
export function typedSecret(key: string, once = false): string | undefined {
  const v = typed.get(key);
  if (once) typed.delete(key);
  return v;
}

/** Forgets a typed secret (it was wrong). */
export function forgetTypedSecret(key: string): void {
  typed.delete(key);
}
