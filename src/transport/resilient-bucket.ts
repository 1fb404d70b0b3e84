// A NATS KV bucket that outlives the server forgetting it. A nats-server restart loses memory-storage streams,
// so a write that fails re-creates the bucket (same options) and tries once more; `reopened` lets a watcher
// start over on the new stream.
import type { KV, KvOptions, NatsConnection } from "nats";

export interface ResilientBucket {
  /** The bucket as last opened. */
  readonly current: () => Promise<KV>;
  readonly put: (key: string, value: Uint8Array | string) => Promise<void>;
  readonly delete: (key: string) => Promise<void>;
  /** Opens (creates when missing) the bucket again; the next `current()` returns the new handle. */
  readonly reopen: () => Promise<KV>;
}

export const openResilientBucket = async (
  connection: NatsConnection,
  bucket: string,
  options: Partial<KvOptions>,
): Promise<ResilientBucket> => {
  const open = () => connection.jetstream().views.kv(bucket, options);
  let kv = open();
  await kv;
  const withRetry = async (write: (kv: KV) => Promise<unknown>) => {
    try {
      await write(await kv);
    } catch {
      kv = open();
      await write(await kv);
    }
  };
  return {
    current: () => kv,
    put: (key, value) => withRetry((b) => b.put(key, value)),
    delete: (key) => withRetry((b) => b.delete(key)),
    reopen: () => {
      kv = open();
      return kv;
    },
  };
};
