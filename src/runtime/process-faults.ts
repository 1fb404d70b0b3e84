// Ways to make a worker process die at a chosen point, for recovery tests: `TANDEM_FAULT` names the point and
// `TANDEM_FAULT_ONLY` (optional) the one worker id it applies to, so one pool member can fail while the
// others serve. Unset means no hook. The process exits with 137, as if SIGKILLed.

export type ProcessFault =
  /** Decode worker: exit once told of a transfer (and subscribed), before any KV arrives. */
  | { readonly _tag: "ExitAfterKvExpect" }
  /** Decode worker: exit right after publishing this many tokens of one answer. */
  | { readonly _tag: "ExitAfterTokens"; readonly tokens: number }
  /** Prefill worker: exit on any prompt containing this text (a poison request). */
  | { readonly _tag: "ExitOnPrompt"; readonly text: string };

export class ProcessFaultError extends Error {}

const FORMS = "decode-exit-after-kv-expect | decode-exit-after-tokens:<n> | prefill-exit-on-prompt:<text>";

export const parseProcessFault = (value: string): ProcessFault => {
  if (value === "decode-exit-after-kv-expect") return { _tag: "ExitAfterKvExpect" };
  const [name, ...rest] = value.split(":");
  const argument = rest.join(":");
  if (name === "decode-exit-after-tokens") {
    const tokens = Number(argument);
    if (Number.isInteger(tokens) && tokens > 0) return { _tag: "ExitAfterTokens", tokens };
  }
  if (name === "prefill-exit-on-prompt" && argument !== "") return { _tag: "ExitOnPrompt", text: argument };
  throw new ProcessFaultError(`TANDEM_FAULT="${value}" is not one of: ${FORMS}`);
};

/** The hook for worker `id` from the environment, if any. */
export const processFaultFor = (id: string, env: Readonly<Record<string, string | undefined>> = process.env): ProcessFault | undefined => {
  const value = env.TANDEM_FAULT;
  if (value === undefined || value === "") return undefined;
  const fault = parseProcessFault(value);
  const only = env.TANDEM_FAULT_ONLY;
  return only === undefined || only === "" || only === id ? fault : undefined;
};

/** Dies like a SIGKILLed process would (after the caller flushed whatever it wants seen). */
export const dieNow = (): never => process.exit(137);
