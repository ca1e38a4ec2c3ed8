/**
 * Requests for secrets a person types on the daemon's secret page (a password, a key
 * passphrase, a one-time code, a sudo password). The value goes straight into the daemon's
 * memory ({@link putTypedSecret}); only the fact that it was entered is audited.
 */
import type { AuditLog } from "../audit.ts";
import { putTypedSecret, type SecretNeed } from "../secrets.ts";

/** One request for a secret. */
export interface SecretAsk {
  id: string;
  need: SecretNeed;
  state: "pending" | "entered" | "expired";
  expires: number;
  /** Resolves when the person has entered the secret. */
  entered: Promise<void>;
}

/** The daemon's open secret requests (memory only). */
export class SecretAsks {
  #byId = new Map<string, SecretAsk & { resolve(): void }>();
  #audit: AuditLog | undefined;

  constructor(audit?: AuditLog) {
    this.#audit = audit;
  }

  /** The open request for `need.key`, or a new one valid for `ttlMs`. */
  request(need: SecretNeed, ttlMs: number): SecretAsk {
    this.#sweep();
    for (const a of this.#byId.values()) {
      if (a.need.key === need.key && a.state === "pending") {
        a.need = need; // the newest question (a server may word it differently)
        return a;
      }
    }
    let resolve!: () => void;
    const entered = new Promise<void>((r) => (resolve = r));
    const ask = {
      id: crypto.randomUUID(),
      need,
      state: "pending" as const,
      expires: Date.now() + ttlMs,
      entered,
      resolve,
    };
    this.#byId.set(ask.id, ask);
    return ask;
  }

  /** One request by id. */
  get(id: string): SecretAsk | undefined {
    this.#sweep();
    return this.#byId.get(id);
  }

  /** Requests still waiting for a person (the console lists them). */
  pending(): SecretAsk[] {
    this.#sweep();
    return [...this.#byId.values()].filter((a) => a.state === "pending");
  }

  /** Stores what the person typed. Throws when the request is unknown or no longer open. */
  submit(id: string, value: string): SecretAsk {
    const a = this.#byId.get(id);
    this.#sweep();
    if (!a) throw new Error("no such request");
    if (a.state !== "pending") throw new Error(`this request is ${a.state}`);
    putTypedSecret(a.need.key, value);
    a.state = "entered";
    this.#audit?.record({ event: "secret_entered", kind: a.need.kind, target: a.need.label });
    a.resolve();
    return a;
  }

  #sweep(): void {
    const now = Date.now();
    for (const a of this.#byId.values()) {
      if (a.state === "pending" && a.expires <= now) {
        a.state = "expired";
        this.#audit?.record({ event: "secret_expired", kind: a.need.kind, target: a.need.label });
      } else if (a.state !== "pending" && a.expires + 3_600_000 < now) this.#byId.delete(a.id);
    }
  }
}
