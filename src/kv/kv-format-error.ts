// Every refusal and every malformed KV buffer surfaces as one typed error naming the two formats involved,
// so whoever catches it can say exactly which pair of engines cannot exchange KV and why.

export class KvFormatError extends Error {
  readonly _tag = "KvFormatError";

  constructor(
    /** Label of the format the bytes come from (see `formatLabel`). */
    readonly from: string,
    /** Label of the format the bytes were to become. */
    readonly to: string,
    readonly reason: string,
  ) {
    super(`KV ${from} → ${to}: ${reason}`);
    this.name = "KvFormatError";
  }
}
