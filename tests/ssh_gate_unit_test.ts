/**
 * The exec channel gate's decisions, driven directly: what it learns from a refusal, and when
 * a refusal is final. The end-to-end behaviour against sshd's MaxSessions is in
 * ssh_channels_test.ts; these cases pin the bookkeeping a loaded machine made flaky there.
 */
import assert from "node:assert/strict";
import type { Client } from "ssh2";
import { ChannelGate } from "../lib/ssh/channels.ts";

/** A connection with no session channels in ssh2's table (the gate reads only that table). */
function idleClient(): Client {
  return { _chanMgr: { _channels: {} } } as unknown as Client;
}

Deno.test("a burst refused at once while nothing is held here: every caller retries", async () => {
  // 96 callers whose opens all meet sshd still counting sessions closed here: the cap of
  // 40 refusals per connection once made the 41st fail with "open failed"
  const gate = new ChannelGate(idleClient());
  const slots = await Promise.all(Array.from({ length: 96 }, () => gate.acquire()));
  const retry = await Promise.all(slots.map((slot) => {
    gate.failed();
    return gate.refused(slot);
  }));
  assert.equal(retry.filter((r) => r).length, 96);
  assert.equal(gate.limit, Infinity, "a refusal with nothing held teaches no cap");
  assert.equal(gate.open, 0);
});

Deno.test("a server that keeps refusing with nothing held: final after the window", async () => {
  const gate = new ChannelGate(idleClient(), { emptyRefusalWindowMs: 400 });
  const started = Date.now();
  let attempts = 0;
  while (true) {
    const slot = await gate.acquire();
    gate.failed();
    attempts++;
    if (!await gate.refused(slot)) break;
  }
  const took = Date.now() - started;
  assert.ok(took >= 400, `final after ${took} ms, before the window`);
  assert.ok(took < 5000, `final only after ${took} ms`);
  assert.ok(attempts >= 2, `${attempts} attempts`);
});

Deno.test("an open that succeeds restarts the window", async () => {
  const gate = new ChannelGate(idleClient(), { emptyRefusalWindowMs: 300 });
  for (let i = 0; i < 3; i++) {
    const slot = await gate.acquire();
    gate.failed();
    assert.equal(await gate.refused(slot), true);
    await new Promise((r) => setTimeout(r, 150));
    await gate.acquire();
    gate.opened();
    gate.closed();
  }
  // 3 × (retry + 150 ms) is past the window, but each success began it again
  const slot = await gate.acquire();
  gate.failed();
  assert.equal(await gate.refused(slot), true);
});

Deno.test("a refusal while channels are held learns the cap: held less the kill helper", async () => {
  const gate = new ChannelGate(idleClient());
  const held = await Promise.all(Array.from({ length: 10 }, () => gate.acquire()));
  const extra = await gate.acquire();
  held.forEach(() => gate.opened());
  gate.failed();
  // ssh2's table here holds none of them, so the gate is not full and refused returns after
  // its short pause; one of the ten closes meanwhile
  const retry = gate.refused(extra);
  assert.equal(gate.limit, 9);
  gate.closed();
  assert.equal(await retry, true);
  assert.equal(gate.open, 9);
});

Deno.test("a refusal just after closes never learns a cap below what the server held", async () => {
  // ten channels open at once; two close, and the opens sent right after them reach sshd in
  // the same read as the closes: it refuses while still counting the two
  const table: Record<string, unknown> = {};
  const client = { _chanMgr: { _channels: table } } as unknown as Client;
  const gate = new ChannelGate(client);
  for (let i = 0; i < 10; i++) {
    await gate.acquire();
    table[i] = { type: "session" };
    gate.opened();
  }
  for (const i of [0, 1]) {
    delete table[i];
    gate.closed();
  }
  const slot = await gate.acquire();
  gate.failed();
  const retry = gate.refused(slot);
  // held by this side's count: 8; the server was seen holding 10 at once; less the kill
  // helper's slot: 9 (it was 7, and long commands then ran a round short)
  assert.equal(gate.limit, 9);
  assert.equal(await retry, true);
});
