// Reading a TCP socket straight into buffers the caller names, without Node allocating a buffer per read and
// the caller copying out of it: Node's documented `onread` option. Only client sockets take it, so the handle
// of a server's socket (accepted with `pauseOnConnect`, so nothing is read yet) is moved by hand into a socket
// made with it. Deno's node:net has no such handle; there the caller reads 'data' events and copies.
import { Socket } from "node:net";

/**
 * On Node, moves an accepted socket's handle into a socket that reads straight into the buffers `want` names
 * (Node's documented `onread` option, which only client sockets take; the handle of a server's socket is moved
 * by hand). Undefined elsewhere (Deno): the caller reads 'data' events and copies.
 */
export const readingInPlace = (socket: Socket, want: () => Uint8Array, advance: (n: number) => void): Socket | undefined => {
  if ("Deno" in globalThis) return undefined;
  const internals = socket as unknown as { _handle?: object | null };
  const handle = internals._handle;
  if (handle == null) return undefined;
  internals._handle = null;
  const options = { handle, readable: true, writable: true, onread: { buffer: want, callback: (n: number) => void advance(n) } };
  return new Socket(options as ConstructorParameters<typeof Socket>[0]);
};

