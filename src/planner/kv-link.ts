// The KV-cache hop between a prefill and a decode pool: what it adds to TTFT (it costs no chip time here).
// Pipelined layer by layer, only the fixed overhead, the last layer's bytes and (across vendors) translation show.
import type { ModelSpec } from "../hardware/model-catalog.ts";

export interface KvLink {
  readonly gbps: number;
  /** Fixed cost per transfer (setup, pipeline fill): BRIEF says pipelined transfer adds 5–10 ms. */
  readonly fixedMs: number;
  /** Layout translation per layer when the vendors differ: BRIEF 20–50 µs, measured 18–40 µs on an H200. */
  readonly translateUsPerLayer: number;
}

/** Defaults: 50 GB/s (400 Gb/s RDMA NIC), the top of 5–10 ms, the top of 20–50 µs — pessimistic on purpose. */
export const DEFAULT_KV_LINK: KvLink = { gbps: 50, fixedMs: 10, translateUsPerLayer: 50 };

export function kvTransferSeconds(link: KvLink, model: ModelSpec, tokens: number, kvBytesPerToken: number, crossVendor: boolean): number {
  const lastLayerBytes = (tokens * kvBytesPerToken) / model.layers;
  const translate = crossVendor ? (model.layers * link.translateUsPerLayer) / 1e6 : 0;
  return link.fixedMs / 1e3 + lastLayerBytes / (link.gbps * 1e9) + translate;
}
