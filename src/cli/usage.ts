// Command-line argument errors shared by the `tandem` commands: a mistake the user can fix, shown with help.
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses `--name raw` as a positive integer or throws a UsageError that names the flag. */
export const positiveInt = (name: string, raw: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, got "${raw}"`);
  return n;
};
