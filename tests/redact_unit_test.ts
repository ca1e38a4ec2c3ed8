/** Redaction of credential shapes: every true secret of the corpus hidden, every look-alike kept. */
import assert from "node:assert/strict";
import { redactShapes } from "../lib/redact.ts";
import { LOOKALIKES, SECRETS } from "./support/redaction_corpus.ts";

Deno.test("the corpus has at least 40 secrets and 40 look-alikes", () => {
  assert.ok(SECRETS.length >= 40 && LOOKALIKES.length >= 40);
});

Deno.test("every true secret becomes [redacted:<kind>]", () => {
  for (const s of SECRETS) {
    const out = redactShapes(s.text);
    assert.ok(!out.includes(s.secret), `not redacted: ${s.text} -> ${out}`);
    assert.match(out, /\[redacted:[a-z_]+\]/, s.text);
  }
});

Deno.test("look-alikes (hashes, UUIDs, checksums, base64, versions) stay intact", () => {
  for (const l of LOOKALIKES) assert.equal(redactShapes(l), l);
});

Deno.test("the whole corpus at once, and a key block cut by an output bound", () => {
  const all = [...SECRETS.map((s) => s.text), ...LOOKALIKES].join("\n");
  const out = redactShapes(all);
  for (const s of SECRETS) assert.ok(!out.includes(s.secret), s.text);
  for (const l of LOOKALIKES) assert.ok(out.includes(l), l);
  const cut =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHC\n[… 9 bytes omitted …]\n" +
    "ozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0\n-----END RSA PRIVATE KEY-----\n";
  const r = redactShapes(cut);
  assert.ok(!r.includes("MIIEowIBAAKCAQEAu1SU1LfVLPHC") && !r.includes("ozMxH2Mo4lgOEeP"), r);
});
