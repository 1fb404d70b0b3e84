// Which JavaScript runtime this process is, e.g. "node 20.20.2" or "deno 2.9.6" (shown in `$SRV.INFO`).
export const runtimeName = (): string => {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  return deno ? `deno ${deno.version.deno}` : `node ${process.versions.node}`;
};
