// Shared machinery for the per-vendor fault classifiers: a rule table (one row per real vendor code, with
// the patterns that recognise it in a log line or exception text) and one pure function that turns a
// structured code or a raw message into a DriverFault. The tables themselves live in one file per vendor.
import { DriverFault, type FaultClass } from "../engine.ts";

/**
 * Who a fault condemns. `device`: the device or the driver process on it (the class policy applies as is).
 * `request`: only the payload of one request, e.g. a KV state the engine refuses to load; the device is
 * healthy, so a `fatal` request-scoped fault fails (or re-prefills) that request and never quarantines.
 */
export type FaultScope = "device" | "request";

export interface FaultRule {
  /** Canonical code put in `DriverFault.code` (the vendor's own enum name where it has one). */
  readonly code: string;
  /** Numeric values of the vendor's primary enum (cudaError_t, hipError_t, synStatus, Xid…) that mean this rule. */
  readonly numbers?: ReadonlyArray<number>;
  /** Other spellings accepted as a structured code (exact, case-insensitive). */
  readonly aliases?: ReadonlyArray<string>;
  /** Recognise the fault in free text (kernel log line, exception message). Tried in table order. */
  readonly patterns: ReadonlyArray<RegExp>;
  readonly meaning: string;
  readonly faultClass: FaultClass;
  readonly scope: FaultScope;
  /** Where the code and its meaning come from. */
  readonly source: string;
  /** Set when the mapping or the wording is not confirmed by a primary source. */
  readonly uncertain?: string;
  /** A realistic message, used by the fault schedule and the tests (must match `patterns`). */
  readonly sample: string;
}

/** What a classifier accepts: a vendor enum number, a code name, a raw message, an exception, or both parts. */
export type FaultInput =
  | number
  | string
  | Error
  | { readonly code?: string | number | undefined; readonly message?: string | undefined };

export const UNKNOWN_CODE = "unknown";

export interface VendorTable {
  /** Value of `DriverFault.vendor`. */
  readonly vendor: string;
  readonly rules: ReadonlyArray<FaultRule>;
}

const byNumber = (table: VendorTable, n: number): FaultRule | undefined =>
  table.rules.find((r) => r.numbers?.includes(n) === true);

const byName = (table: VendorTable, name: string): FaultRule | undefined => {
  const want = name.trim().toLowerCase();
  if (want === "") return undefined;
  if (/^-?\d+$/.test(want)) return byNumber(table, Number(want));
  return table.rules.find((r) => r.code.toLowerCase() === want || r.aliases?.some((a) => a.toLowerCase() === want) === true);
};

const byMessage = (table: VendorTable, message: string): FaultRule | undefined =>
  table.rules.find((r) => r.patterns.some((p) => p.test(message)));

const fault = (table: VendorTable, rule: FaultRule | undefined, message: string | undefined, rawCode?: string): DriverFault =>
  rule === undefined
    ? new DriverFault({
        vendor: table.vendor,
        code: rawCode === undefined || rawCode === "" ? UNKNOWN_CODE : rawCode,
        message: message ?? "",
        faultClass: "transient",
      })
    : new DriverFault({
        vendor: table.vendor,
        code: rule.code,
        message: message === undefined || message === "" ? rule.meaning : message,
        faultClass: rule.faultClass,
      });

/**
 * Maps a vendor code or message to a DriverFault. A structured code wins over the message; a string is
 * tried as a code name first, then parsed as a message. Anything unrecognised is `transient` with the raw
 * text kept: the bounded retry budget of the transient policy (and the K-in-T quarantine) caps the cost of
 * guessing wrong, whereas guessing `fatal` would take a healthy device out of routing on a typo.
 */
export const classifyWith = (table: VendorTable, input: FaultInput): DriverFault => {
  if (typeof input === "number") return fault(table, byNumber(table, input), undefined, String(input));
  if (typeof input === "string") return fault(table, byName(table, input) ?? byMessage(table, input), input);
  const code = (input as { code?: unknown }).code;
  const message = input.message;
  const fromCode =
    typeof code === "number" ? byNumber(table, code) : typeof code === "string" ? byName(table, code) : undefined;
  const rule = fromCode ?? (message === undefined ? undefined : byMessage(table, message));
  const rawCode = typeof code === "number" || typeof code === "string" ? String(code) : undefined;
  return fault(table, rule, message, rawCode);
};

/** The rule behind a fault's code, if the code is one of the table's. */
export const ruleFor = (table: VendorTable, code: string): FaultRule | undefined =>
  table.rules.find((r) => r.code === code);
