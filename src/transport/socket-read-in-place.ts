// Reading a TCP socket straight into buffers the caller names, without Node allocating a buffer per read and
// the caller copying out of it: Node's documented `onread` option. Only client sockets take it, so the handle
// of a server's socket (accepted with `pauseOnConnect`, so nothing is read yet) is moved by hand into a socket
// made with it. Deno's node:net has no such handle; there each 'data' event is copied into the named buffers.
import { connect, Socket } from "node:net";

/**
 * Starts reading `accepted` into the buffers `want` names (never empty), calling `advance(n)` after each `n`
 * bytes land at the start of the last one named. Returns the socket to use from now on (to write, end, listen
 * for errors): on Node a new one holding the accepted socket's handle.
 */
export const readInto = (accepted: Socket, want: () => Uint8Array, advance: (n: number) => void): Socket => {
  const internals = accepted as unknown as { _handle?: object | null };
  const handle = internals._handle;
  let socket = accepted;
  if (!onDeno && handle != null) {
    internals._handle = null;
    const options = { handle, readable: true, writable: true, onread: inPlace(want, advance) };
    socket = new Socket(options as ConstructorParameters<typeof Socket>[0]);
  } else copyEachRead(accepted, want, advance);
  socket.resume();
  return socket;
};

/** Connects to `host:port` and reads the socket into the buffers `want` names, as {@link readInto} does. */
export const connectReadingInto = (to: { host: string; port: number }, want: () => Uint8Array, advance: (n: number) => void): Socket => {
  if (!onDeno) return connect({ ...to, onread: inPlace(want, advance) });
  const socket = connect(to);
  copyEachRead(socket, want, advance);
  return socket;
};

const onDeno = "Deno" in globalThis;

/** Node's `onread`: each read lands in the buffer `want` names, then `advance(n)`; reading goes on. */
const inPlace = (want: () => Uint8Array, advance: (n: number) => void) => ({ buffer: want, callback: (n: number) => (advance(n), true) });

/** Where a socket cannot read in place (Deno's node:net): each 'data' event is copied into the named buffers. */
const copyEachRead = (socket: Socket, want: () => Uint8Array, advance: (n: number) => void) =>
  socket.on("data", (data: Uint8Array) => {
    for (let at = 0; at < data.length && !socket.destroyed;) {
      const into = want();
      const n = Math.min(into.length, data.length - at);
      into.set(data.subarray(at, at + n));
      at += n;
      advance(n);
    }
  });
