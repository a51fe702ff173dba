/**
 * A small `--name value` / `--name=value` / `--flag` parser for the bench scripts. Every flag must
 * be declared; unknown ones are an error so a typo never silently runs the default.
 */
export type ArgKind = 'number' | 'string' | 'boolean';

export class ArgError extends Error {}

export class Args {
  private constructor(
    private readonly values: ReadonlyMap<string, string>,
    readonly positional: readonly string[],
  ) {}

  static parse(argv: readonly string[], spec: Readonly<Record<string, ArgKind>>): Args {
    const values = new Map<string, string>();
    const positional: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i] ?? '';
      if (!arg.startsWith('--')) {
        positional.push(arg);
        continue;
      }
      const eq = arg.indexOf('=');
      let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      let value = eq === -1 ? undefined : arg.slice(eq + 1);
      let kind = spec[name];
      if (kind === undefined && name.startsWith('no-') && spec[name.slice(3)] === 'boolean') {
        name = name.slice(3);
        kind = 'boolean';
        value = 'false';
      }
      if (kind === undefined) throw new ArgError(`unknown flag --${name}`);
      if (value === undefined) {
        if (kind === 'boolean') value = 'true';
        else {
          value = argv[++i];
          if (value === undefined) throw new ArgError(`--${name} needs a value`);
        }
      }
      values.set(name, value);
    }
    return new Args(values, positional);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  number(name: string, fallback: number, min = -Infinity, max = Infinity): number {
    const raw = this.values.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw.replace(/_/g, ''));
    if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
      throw new ArgError(`--${name} must be a number from ${min} to ${max} (got "${raw}")`);
    }
    return value;
  }

  integer(name: string, fallback: number, min = -Infinity, max = Infinity): number {
    const value = this.number(name, fallback, min, max);
    if (!Number.isInteger(value)) throw new ArgError(`--${name} must be an integer`);
    return value;
  }

  string(name: string, fallback: string): string {
    return this.values.get(name) ?? fallback;
  }

  optionalString(name: string): string | undefined {
    return this.values.get(name);
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.values.get(name);
    if (raw === undefined) return fallback;
    const value = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on', ''].includes(value)) return true;
    if (['0', 'false', 'no', 'off'].includes(value)) return false;
    throw new ArgError(`--${name} must be true or false (got "${raw}")`);
  }
}
