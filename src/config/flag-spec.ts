/** What a flag is (`FlagSpec`) and the parsers flag tables share (flags.ts, icepush-flags.ts). */

/** Thrown by a flag parser; the loader prefixes the flag's name. */
export class FlagValueError extends Error {}

export interface FlagSpec<T> {
  /** Kebab-case name without the dashes, e.g. `hold-seconds`. */
  readonly name: string;
  /** `value` placeholder for --help; absent for booleans. */
  readonly arg?: string;
  readonly help: string;
  /** Shown in --help and the docs. */
  readonly defaultText: string;
  readonly defaultValue: () => T;
  readonly parse: (raw: string) => T;
  readonly boolean?: true;
}

export function integer(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new FlagValueError(
        `must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`,
      );
    }
    return value;
  };
}

export function list(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function boolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on', ''].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new FlagValueError(`must be true or false (got ${JSON.stringify(raw)})`);
}

export function flag<T>(spec: FlagSpec<T>): FlagSpec<T> {
  return spec;
}
