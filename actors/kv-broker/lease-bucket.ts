// The lease table's copy in NATS: a memory-storage KV bucket whose max_age is the longest lease the broker grants,
// so an entry left behind by a broker that died disappears by itself within one TTL (nats-server 2.9 has no
// per-message TTL; the bucket's age limit is the lease's). A bucket made earlier with another max_age is brought
// to this broker's TTL.
import { type NatsConnection, nanos, StorageType } from "nats";
import { openResilientBucket, type ResilientBucket } from "../../src/transport/resilient-bucket.ts";

export const openLeaseBucket = async (connection: NatsConnection, bucket: string, ttlMs: number): Promise<ResilientBucket> => {
  const leases = await openResilientBucket(connection, bucket, { history: 1, ttl: ttlMs, storage: StorageType.Memory });
  const status = await (await leases.current()).status();
  if (status.ttl !== ttlMs) {
    const jsm = await connection.jetstreamManager();
    const { config } = status.streamInfo;
    await jsm.streams.update(config.name, { ...config, max_age: nanos(ttlMs) });
  }
  return leases;
};
