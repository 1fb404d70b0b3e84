// The bulk reader on a real nats-server: every message — with headers or without, empty, smaller than a socket
// read, or many times larger than its read buffer, interleaved on two subscriptions — lands byte-exact where its
// sink named, with its headers; a message the sink skips costs the next one nothing; an unsubscribed sink hears
// nothing more, even of a message under way; and after the server restarts the reader reconnects and re-subscribes.
import { randomFillSync } from "node:crypto";
import { connect, headers, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServerHandle, startNatsServer } from "../../src/cluster/nats-server.ts";
import { type BulkHeaders, type BulkSink, type NatsBulkReader, openNatsBulkReader } from "../../src/transport/nats-bulk-reader.ts";

const MIB = 1024 * 1024;
let server: NatsServerHandle;
let publisher: NatsConnection;
let reader: NatsBulkReader;
beforeAll(async () => {
  server = await startNatsServer({ maxPayload: 8 * MIB });
  publisher = await connect({ servers: server.url, name: "bulk-publisher", maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  reader = openNatsBulkReader({ server: () => `127.0.0.1:${server.port}`, name: "bulk-test", reconnectWaitMs: 100 });
});
afterAll(async () => {
  reader?.close();
  await publisher?.close();
  await server?.stop();
});

interface Received {
  readonly headers: BulkHeaders | undefined;
  readonly bytes: Uint8Array;
}

/** A sink that lands every message in a fresh buffer, or skips those `skip` names. */
const collecting = (skip: (headers: BulkHeaders | undefined, length: number) => boolean = () => false) => {
  const received: Received[] = [];
  let pending: BulkHeaders | undefined;
  const sink: BulkSink = {
    begin: (h, length) => {
      if (skip(h, length)) return undefined;
      pending = h;
      return new Uint8Array(length);
    },
    end: (bytes) => void received.push({ headers: pending, bytes }),
  };
  return { sink, received };
};

const until = async (done: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("NATS bulk reader", () => {
  it("lands messages of every size, with and without headers, on interleaved subscriptions, byte-exact", async () => {
    const a = collecting();
    const b = collecting();
    const subA = await reader.subscribe("bulk.a", a.sink);
    const subB = await reader.subscribe("bulk.b", b.sink);
    const sizes = [0, 1, 100, 64 * 1024 - 3, 256 * 1024, 256 * 1024 + 1, MIB, 3 * MIB + 7, 8 * MIB - 4096];
    const sent: Array<{ subject: string; bytes: Uint8Array; index: number }> = [];
    sizes.forEach((size, index) => {
      for (const subject of ["bulk.a", "bulk.b"]) {
        const bytes = randomFillSync(new Uint8Array(size));
        // Every third message without headers, the rest with two (one of them long).
        const h = index % 3 === 0 ? undefined : headers();
        h?.set("Kv-Index", String(index));
        h?.set("Long-One", "x".repeat(500 + index));
        publisher.publish(subject, bytes, h ? { headers: h } : undefined);
        sent.push({ subject, bytes, index });
      }
    });
    await until(() => a.received.length === sizes.length && b.received.length === sizes.length, "every message");
    for (const [subject, got] of [["bulk.a", a.received], ["bulk.b", b.received]] as const) {
      const mine = sent.filter((s) => s.subject === subject);
      got.forEach((message, i) => {
        expect(Buffer.from(message.bytes).equals(Buffer.from(mine[i]!.bytes))).toBe(true);
        if (mine[i]!.index % 3 === 0) expect(message.headers).toBeUndefined();
        else {
          expect(message.headers?.get("Kv-Index")).toBe(String(mine[i]!.index));
          expect(message.headers?.get("Long-One")).toBe("x".repeat(500 + mine[i]!.index));
        }
      });
    }
    subA.unsubscribe();
    subB.unsubscribe();
  });

  it("skips what its sink declines without disturbing the messages after it", async () => {
    const c = collecting((_h, length) => length === 2 * MIB);
    const sub = await reader.subscribe("bulk.c", c.sink);
    const kept = [randomFillSync(new Uint8Array(1000)), randomFillSync(new Uint8Array(5 * MIB)), randomFillSync(new Uint8Array(3))];
    publisher.publish("bulk.c", kept[0]!);
    publisher.publish("bulk.c", new Uint8Array(2 * MIB));
    publisher.publish("bulk.c", kept[1]!);
    publisher.publish("bulk.c", new Uint8Array(2 * MIB));
    publisher.publish("bulk.c", kept[2]!);
    await until(() => c.received.length === 3, "the kept messages");
    c.received.forEach((message, i) => expect(Buffer.from(message.bytes).equals(Buffer.from(kept[i]!))).toBe(true));
    sub.unsubscribe();
  });

  it("after unsubscribe, lands nothing more, not even the rest of a message under way", async () => {
    let landed = 0;
    let began = 0;
    let into: Uint8Array | undefined;
    let sub: { unsubscribe: () => void } | undefined = undefined;
    sub = await reader.subscribe("bulk.d", {
      begin: (_h, length) => {
        began++;
        into = new Uint8Array(length);
        // Unsubscribe as the first message starts (its headers are in, its payload not yet copied).
        sub!.unsubscribe();
        return into;
      },
      end: () => void landed++,
    });
    publisher.publish("bulk.d", new Uint8Array(8 * MIB - 4096).fill(7));
    publisher.publish("bulk.d", new Uint8Array(100).fill(9));
    await publisher.flush();
    // The server has sent both; give the reader time to read them all.
    const probe = collecting();
    const probeSub = await reader.subscribe("bulk.probe", probe.sink);
    publisher.publish("bulk.probe", new Uint8Array(1));
    await until(() => probe.received.length === 1, "the probe after them");
    probeSub.unsubscribe();
    expect(began).toBe(1);
    expect(landed).toBe(0);
    expect(into!.indexOf(7)).toBe(-1);
  });

  it("reconnects after the server restarts and keeps its subscriptions", async () => {
    const e = collecting();
    const sub = await reader.subscribe("bulk.e", e.sink);
    publisher.publish("bulk.e", new Uint8Array([1]));
    await until(() => e.received.length === 1, "the first message");
    await server.restart(300);
    // Publish until one arrives: the reader is back and subscribed again.
    await until(() => {
      if (!publisher.isClosed()) publisher.publish("bulk.e", new Uint8Array([2]));
      return e.received.length >= 2;
    }, "a message after the restart", 15_000);
    expect(e.received.at(-1)!.bytes[0]).toBe(2);
    sub.unsubscribe();
  });

  it("refuses a subject with whitespace instead of writing a broken SUB line", async () => {
    await expect(reader.subscribe("bad subject", collecting().sink)).rejects.toThrow(/not a NATS subject/);
  });
});
