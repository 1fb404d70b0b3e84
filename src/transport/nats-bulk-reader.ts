// A second NATS connection that only receives bulk messages (KV chunks), and hands each one's payload to its
// subscriber as it streams in: the subscriber names where the payload goes when the message's headers have
// arrived, and the reader copies it there straight from one reusable read buffer. nats.js allocates every
// message it delivers (and grows a buffer for it several times while it spans socket reads), so a worker
// receiving a 256 MiB cache through it allocated over a GiB and paused for hundreds of garbage collections;
// this reader allocates nothing per message or per read. Only what a KV receiver needs: SUB, UNSUB, MSG, HMSG,
// PING/PONG, and a reconnect that re-subscribes (chunks lost meanwhile are asked for again by the receiver).
import type { Socket } from "node:net";
import { connectReadingInto } from "./socket-read-in-place.ts";

/** A message's headers (NATS header names as sent). */
export type BulkHeaders = ReadonlyMap<string, string>;

/** What a subscription does with its messages. Called on the socket's turn of the event loop; must not throw. */
export interface BulkSink {
  /** Where the `length`-byte payload of the next message goes (exactly `length` bytes), or undefined to skip it. */
  readonly begin: (headers: BulkHeaders | undefined, length: number) => Uint8Array | undefined;
  /** The payload is whole in the buffer `begin` named. */
  readonly end: (payload: Uint8Array) => void;
}

export interface BulkSubscription {
  /** Stops delivery at once: the rest of a message already under way is skipped. */
  readonly unsubscribe: () => void;
}

export interface NatsBulkReader {
  /** Subscribes `sink` to `subject`; resolves once the server has the subscription. */
  readonly subscribe: (subject: string, sink: BulkSink) => Promise<BulkSubscription>;
  readonly close: () => void;
}

export interface NatsBulkReaderOptions {
  /** The server to connect to, as `host:port` (read at each connect: the main connection's current server). */
  readonly server: () => string;
  readonly name: string;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** How long to wait between attempts to reconnect. */
  readonly reconnectWaitMs?: number;
}

/** The reusable read buffer's size: a few socket reads' worth. */
const STAGING_BYTES = 256 * 1024;
const CR = 13;
const LF = 10;
const text = new TextDecoder();

class BulkProtocolError extends Error {}

/** Parses a NATS header block: `NATS/1.0[ status]\r\n(Name: value\r\n)*\r\n`. */
const parseHeaders = (block: Uint8Array): BulkHeaders => {
  const headers = new Map<string, string>();
  const lines = text.decode(block).split("\r\n");
  if (!lines[0]?.startsWith("NATS/1.0")) throw new BulkProtocolError(`not a NATS header block: ${lines[0]}`);
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return headers;
};

interface Subscribed {
  readonly subject: string;
  readonly sink: BulkSink;
}

/** The message being read: its subscriber's sink and where its payload goes. */
interface Incoming {
  readonly sid: number;
  readonly headerBytes: number;
  readonly length: number;
  sink: BulkSink | undefined;
  destination: Uint8Array | undefined;
  filled: number;
}

export const openNatsBulkReader = (options: NatsBulkReaderOptions): NatsBulkReader => {
  const subscriptions = new Map<number, Subscribed>();
  let nextSid = 1;
  let closed = false;
  let connection: Promise<Connection> | undefined;

  interface Connection {
    readonly socket: Socket;
    /** Resolves once the server has answered a PING sent after everything written so far. */
    readonly ping: () => Promise<void>;
  }

  const connect = (): Promise<Connection> =>
    new Promise((resolve, reject) => {
      const [host, port] = splitServer(options.server());
      const pongs: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
      let staging = new Uint8Array(STAGING_BYTES);
      let start = 0;
      let end = 0;
      let state: "line" | "headers" | "payload" | "trailer" = "line";
      let incoming: Incoming | undefined;
      let greeted = false;
      let ready = false;

      const write = (line: string) => void self.socket.write(line);
      const ping = () =>
        new Promise<void>((resolvePong, rejectPong) => {
          if (self.socket.destroyed) return rejectPong(new Error("the NATS bulk connection is closed"));
          pongs.push({ resolve: resolvePong, reject: rejectPong });
          write("PING\r\n");
        });
      const control = (line: string) => {
        const words = line.split(" ").filter((w) => w.length > 0);
        const op = words[0]?.toUpperCase();
        if (op === "MSG" || op === "HMSG") {
          // MSG <subject> <sid> [reply] <bytes>; HMSG <subject> <sid> [reply] <header bytes> <total bytes>
          const hasHeaders = op === "HMSG";
          const total = Number(words[words.length - 1]);
          const headerBytes = hasHeaders ? Number(words[words.length - 2]) : 0;
          const sid = Number(words[2]);
          if (!Number.isSafeInteger(total) || !Number.isSafeInteger(headerBytes) || headerBytes < 0 || headerBytes > total) {
            throw new BulkProtocolError(`bad message line: ${line}`);
          }
          incoming = { sid, headerBytes, length: total - headerBytes, sink: subscriptions.get(sid)?.sink, destination: undefined, filled: 0 };
          state = hasHeaders ? "headers" : "payload";
          if (!hasHeaders) beginPayload(undefined);
        } else if (op === "PING") write("PONG\r\n");
        else if (op === "PONG") {
          if (!ready) {
            ready = true;
            resolve(self);
          } else pongs.shift()?.resolve();
        } else if (op === "INFO") {
          if (!greeted) {
            greeted = true;
            const info = JSON.parse(line.slice(4)) as { tls_required?: boolean };
            if (info.tls_required) throw new BulkProtocolError("the server requires TLS, which the bulk reader does not speak");
            const connectOptions = {
              verbose: false,
              pedantic: false,
              headers: true,
              no_responders: false,
              protocol: 1,
              lang: "tandem-bulk",
              version: "1",
              name: options.name,
              ...(options.user !== undefined ? { user: options.user, pass: options.pass ?? "" } : {}),
              ...(options.token !== undefined ? { auth_token: options.token } : {}),
            };
            write(`CONNECT ${JSON.stringify(connectOptions)}\r\nPING\r\n`);
          }
        } else if (op === "-ERR") throw new BulkProtocolError(`the server said ${line}`);
        // +OK and anything newer: nothing to do.
      };

      const beginPayload = (headers: BulkHeaders | undefined) => {
        const message = incoming!;
        if (message.sink !== undefined) {
          const destination = message.sink.begin(headers, message.length);
          if (destination !== undefined && destination.length !== message.length) {
            throw new Error(`a bulk sink named ${destination.length} bytes for a ${message.length}-byte payload`);
          }
          message.destination = destination;
        }
        state = "payload";
        if (message.length === 0) endPayload();
      };
      const endPayload = () => {
        const { sink, destination } = incoming!;
        incoming = undefined;
        state = "trailer";
        if (sink !== undefined && destination !== undefined) sink.end(destination);
      };

      const parse = () => {
        while (true) {
          const available = end - start;
          if (state === "line") {
            const eol = indexOfLineEnd(staging, start, end);
            if (eol < 0) break;
            const line = text.decode(staging.subarray(start, eol));
            start = eol + 2;
            control(line);
          } else if (state === "headers") {
            const needed = incoming!.headerBytes;
            if (available < needed) {
              if (needed > staging.length) grow(needed);
              break;
            }
            const headers = parseHeaders(staging.subarray(start, start + needed));
            start += needed;
            beginPayload(headers);
          } else if (state === "payload") {
            const message = incoming!;
            // Unsubscribed while its message streams in: the rest is skipped.
            if (message.sink !== undefined && subscriptions.get(message.sid)?.sink !== message.sink) {
              message.sink = undefined;
              message.destination = undefined;
            }
            const take = Math.min(available, message.length - message.filled);
            if (take === 0) break;
            message.destination?.set(staging.subarray(start, start + take), message.filled);
            message.filled += take;
            start += take;
            if (message.filled === message.length) endPayload();
          } else {
            if (available < 2) break;
            if (staging[start] !== CR || staging[start + 1] !== LF) throw new BulkProtocolError("a message did not end with CRLF");
            start += 2;
            state = "line";
          }
        }
        if (start === end) start = end = 0;
      };
      const grow = (atLeast: number) => {
        const larger = new Uint8Array(Math.max(atLeast, staging.length * 2));
        larger.set(staging.subarray(start, end));
        end -= start;
        start = 0;
        staging = larger;
      };
      /** Where the next read lands: the free end of the staging buffer, compacted or grown first when full. */
      const want = () => {
        if (end === staging.length) {
          if (start > 0) {
            staging.copyWithin(0, start, end);
            end -= start;
            start = 0;
          } else grow(staging.length * 2); // a control line longer than the buffer
        }
        return staging.subarray(end);
      };
      const advance = (n: number) => {
        end += n;
        try {
          parse();
        } catch (error) {
          self.socket.destroy(error instanceof Error ? error : new Error(String(error)));
        }
      };

      const socket = connectReadingInto({ host, port }, want, advance);
      const self: Connection = { socket, ping };
      socket.setNoDelay(true);
      const fail = (error: Error) => {
        for (const pong of pongs.splice(0)) pong.reject(error);
        if (!ready) reject(error);
      };
      socket.on("error", (error) => fail(error));
      socket.once("close", () => {
        fail(new Error("the NATS bulk connection closed"));
        if (ready) lost(self);
      });
    });

  /** The live connection, connecting (and re-subscribing everything) when there is none. */
  const current = () => {
    if (closed) return Promise.reject(new Error("the NATS bulk reader is closed"));
    connection ??= connect().then(
      (c) => {
        for (const [sid, { subject }] of subscriptions) c.socket.write(`SUB ${subject} ${sid}\r\n`);
        return c;
      },
      (error) => {
        connection = undefined;
        throw error;
      },
    );
    return connection;
  };
  /** A connection dropped: reconnect while anyone is subscribed, so transfers under way resume. */
  const lost = (dropped: Connection) => {
    void connection?.then((c) => {
      if (c !== dropped) return;
      connection = undefined;
      const retry = () => {
        if (closed || subscriptions.size === 0 || connection !== undefined) return;
        current().catch(() => setTimeout(retry, options.reconnectWaitMs ?? 250));
      };
      retry();
    });
  };

  return {
    subscribe: async (subject, sink) => {
      if (/\s/.test(subject) || subject.length === 0) throw new Error(`not a NATS subject: "${subject}"`);
      const sid = nextSid++;
      subscriptions.set(sid, { subject, sink });
      try {
        const c = await current();
        c.socket.write(`SUB ${subject} ${sid}\r\n`);
        await c.ping();
      } catch (error) {
        subscriptions.delete(sid);
        throw error;
      }
      return {
        unsubscribe: () => {
          if (!subscriptions.delete(sid)) return;
          void connection?.then((c) => c.socket.destroyed || c.socket.write(`UNSUB ${sid}\r\n`), () => undefined);
        },
      };
    },
    close: () => {
      closed = true;
      subscriptions.clear();
      void connection?.then((c) => c.socket.destroy(), () => undefined);
    },
  };
};

/** Where the first CRLF in `bytes[from, to)` starts, or -1. */
const indexOfLineEnd = (bytes: Uint8Array, from: number, to: number) => {
  for (let i = from; i + 1 < to; i++) {
    if (bytes[i] === CR && bytes[i + 1] === LF) return i;
  }
  return -1;
};

/** `host:port` (nats.js's `getServer()` form, IPv6 bracketed) into its parts. */
const splitServer = (server: string): [string, number] => {
  const colon = server.lastIndexOf(":");
  const host = server.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return [host, Number(server.slice(colon + 1))];
};
