/**
 * The shared piping/accounting helper (lib/ssh/pipe.ts) between real TCP sockets: half-close
 * in both directions, byte counters, active/total connections, destroy closing both sides,
 * and a large transfer to a slow reader (backpressure) arriving intact.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { Traffic } from "../lib/ssh/pipe.ts";

type Target = (s: net.Socket) => void;

/** A front listener piping every connection to a back listener that runs `target`. */
async function relay(target: Target) {
  const traffic = new Traffic();
  const back = net.createServer({ allowHalfOpen: true }, target);
  await new Promise<void>((r) => back.listen(0, "127.0.0.1", r));
  const backPort = (back.address() as net.AddressInfo).port;
  const front = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
    const conn = traffic.open(sock);
    const up = net.connect({ host: "127.0.0.1", port: backPort, allowHalfOpen: true });
    up.once("connect", () => conn.attach(up));
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  const port = (front.address() as net.AddressInfo).port;
  return {
    traffic,
    port,
    async [Symbol.asyncDispose]() {
      traffic.closeAll();
      await new Promise((r) => front.close(r));
      await new Promise((r) => back.close(r));
    },
  };
}

function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on("data", (d: Buffer) => parts.push(d));
    s.once("end", () => resolve(Buffer.concat(parts)));
    s.once("error", reject);
  });
}

async function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function settled(traffic: Traffic) {
  const deadline = Date.now() + 5000;
  while (traffic.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(traffic.active, 0, "all connections closed");
}

Deno.test("pipe: the client's EOF reaches the target, which answers and closes", async () => {
  await using r = await relay((s) => {
    readAll(s).then((got) => s.end(`got ${got.length} bytes`));
  });
  const c = net.connect({ host: "127.0.0.1", port: r.port, allowHalfOpen: true });
  const reply = readAll(c);
  c.end("x".repeat(1000));
  assert.equal((await reply).toString(), "got 1000 bytes");
  c.destroy();
  await settled(r.traffic);
  assert.equal(r.traffic.bytesIn, 1000);
  assert.equal(r.traffic.bytesOut, "got 1000 bytes".length);
  assert.equal(r.traffic.total, 1);
});

Deno.test("pipe: the target's EOF first still lets the client send afterwards", async () => {
  let received: Promise<Buffer> | undefined;
  await using r = await relay((s) => {
    s.end("bye"); // half-close first
    received = readAll(s);
  });
  const c = net.connect({ host: "127.0.0.1", port: r.port, allowHalfOpen: true });
  assert.equal((await readAll(c)).toString(), "bye");
  c.end("late data");
  const deadline = Date.now() + 5000;
  while (!received && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  assert.equal((await received!).toString(), "late data");
  await settled(r.traffic);
  assert.equal(r.traffic.bytesIn, 9);
  assert.equal(r.traffic.bytesOut, 3);
});

Deno.test("pipe: 64 MiB to a slow reader arrive intact", async () => {
  const size = 64 << 20;
  const block = randomBytes(1 << 20);
  const sent = createHash("sha256");
  await using r = await relay((s) => {
    let n = 0;
    const write = () => {
      while (n < size) {
        n += block.length;
        sent.update(block);
        if (!s.write(block)) return void s.once("drain", write);
      }
      s.end();
    };
    write();
  });
  const c = net.connect({ host: "127.0.0.1", port: r.port, allowHalfOpen: true });
  const got = createHash("sha256");
  let n = 0;
  c.on("data", (d: Buffer) => {
    got.update(d);
    n += d.length;
    if (n < 4 << 20) { // read slowly at first
      c.pause();
      setTimeout(() => c.resume(), 5);
    }
  });
  await new Promise((res) => c.once("end", res));
  c.end();
  assert.equal(n, size);
  assert.equal(got.digest("hex"), sent.digest("hex"));
  await settled(r.traffic);
  assert.equal(r.traffic.bytesOut, size);
});

Deno.test("pipe: closeAll closes both sides of live connections", async () => {
  let targetClosed: Promise<unknown> | undefined;
  await using r = await relay((s) => {
    // the target sees the relay's side closed (EOF or reset)
    targetClosed = new Promise((res) => {
      s.once("end", res);
      s.once("error", res);
    }).finally(() => s.destroy());
    s.resume();
  });
  const c = net.connect({ host: "127.0.0.1", port: r.port, allowHalfOpen: true });
  const closed = new Promise((res) => {
    c.once("end", res);
    c.once("error", res);
  }).finally(() => c.destroy());
  c.resume();
  c.write("hello");
  const deadline = Date.now() + 5000;
  while ((r.traffic.bytesIn < 5 || !targetClosed) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.equal(r.traffic.active, 1);
  r.traffic.closeAll();
  // (a timer keeps Deno's event loop alive while node:net sockets wind down)
  await within(closed, "the client side closed");
  await within(targetClosed!, "the target side closed");
  assert.equal(r.traffic.active, 0);
});
