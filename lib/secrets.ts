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
