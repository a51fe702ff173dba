import { parseStompUrl } from '../backplane/stomp/stomp-url.js';
import {
  FLAGS,
  FlagValueError,
  envName,
  type EpushConfig,
  type FlagKey,
  type FlagSpec,
} from './flags.js';

/** A configuration the node cannot start with; the message is one line naming the flag. */
export class ConfigError extends Error {}

export interface ConfigSources {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the --config file; injectable for tests. */
  readonly readFile: (path: string) => string;
}

const KEYS = Object.keys(FLAGS) as FlagKey[];
const BY_NAME = new Map<string, FlagKey>(KEYS.map((key) => [FLAGS[key].name, key]));

function specOf(key: FlagKey): FlagSpec<unknown> {
  return FLAGS[key];
}

/** Parses `--name value`, `--name=value` and bare boolean flags; `--config` is taken aside. */
function parseArgv(argv: readonly string[]): { raw: Map<FlagKey, string>; configPath?: string } {
  const raw = new Map<FlagKey, string>();
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--'))
      throw new ConfigError(`unexpected argument "${arg}" (flags start with --)`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    let value = eq === -1 ? undefined : arg.slice(eq + 1);
    if (name === 'config') {
      value ??= argv[++i];
      if (value === undefined) throw new ConfigError('--config needs a file path');
      configPath = value;
      continue;
    }
    const key = BY_NAME.get(name);
    if (!key) throw new ConfigError(`unknown flag --${name} (see epush --help)`);
    const spec = specOf(key);
    if (value === undefined) {
      if (spec.boolean) value = 'true';
      else {
        value = argv[++i];
        if (value === undefined) throw new ConfigError(`--${name} needs a value`);
      }
    }
    raw.set(key, value);
  }
  return configPath === undefined ? { raw } : { raw, configPath };
}

function readConfigFile(path: string, readFile: (path: string) => string): Map<FlagKey, string> {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new ConfigError(`--config: cannot read ${path} (${(error as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`--config: ${path} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`--config: ${path} must hold a JSON object of flag names to values`);
  }
  const raw = new Map<FlagKey, string>();
  for (const [name, value] of Object.entries(parsed)) {
    // Both the flag's own name ("hold-seconds") and its camelCase form are accepted.
    const key = BY_NAME.get(name) ?? (name in FLAGS ? (name as FlagKey) : undefined);
    if (!key) throw new ConfigError(`--config: unknown key "${name}" in ${path}`);
    if (Array.isArray(value)) raw.set(key, value.map(String).join(','));
    else if (['string', 'number', 'boolean'].includes(typeof value)) raw.set(key, String(value));
    else
      throw new ConfigError(
        `--config: key "${name}" in ${path} must be a string, number, boolean or list`,
      );
  }
  return raw;
}

/** Resolves the configuration: flag > environment > config file > default. */
export function loadConfig(sources: ConfigSources): EpushConfig {
  const { raw: fromArgv, configPath } = parseArgv(sources.argv);
  const path = configPath ?? sources.env.EPUSH_CONFIG;
  const fromFile = path ? readConfigFile(path, sources.readFile) : new Map<FlagKey, string>();
  const config: Record<string, unknown> = {};
  for (const key of KEYS) {
    const spec = specOf(key);
    const env = envName(spec);
    const candidates: [string | undefined, string][] = [
      [fromArgv.get(key), `--${spec.name}`],
      [sources.env[env], `${env} (--${spec.name})`],
      [fromFile.get(key), `--${spec.name} (from ${path ?? ''})`],
    ];
    const chosen = candidates.find(([value]) => value !== undefined);
    if (!chosen) {
      config[key] = spec.defaultValue();
      continue;
    }
    const [value, label] = chosen as [string, string];
    try {
      config[key] = spec.parse(value);
    } catch (error) {
      if (error instanceof FlagValueError) throw new ConfigError(`${label} ${error.message}`);
      throw error;
    }
  }
  return validate(config as EpushConfig);
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

function validate(config: EpushConfig): EpushConfig {
  if (config.apiKey.length === 0 && !config.insecureDev) {
    throw new ConfigError(
      '--api-key is required (or --insecure-dev for a loopback-only development node)',
    );
  }
  if (config.insecureDev && !LOOPBACK.test(config.host)) {
    throw new ConfigError(
      `--insecure-dev is refused unless --host is a loopback address (got "${config.host}")`,
    );
  }
  if (config.headersTimeoutSeconds > config.bodyTimeoutSeconds) {
    throw new ConfigError(
      `--headers-timeout-seconds (${config.headersTimeoutSeconds}) must not exceed --body-timeout-seconds (${config.bodyTimeoutSeconds})`,
    );
  }
  if (config.backplane.startsWith('stomp:')) {
    try {
      parseStompUrl(config.backplane);
    } catch (error) {
      throw new ConfigError(`--backplane: ${(error as Error).message}`);
    }
  }
  return config;
}

/** The text of `epush --help`, generated from the flags table. */
export function helpText(): string {
  const rows = KEYS.map((key) => {
    const spec = specOf(key);
    const left = `  --${spec.name}${spec.arg ? ` ${spec.arg}` : ''}`;
    return `${left.padEnd(34)}${spec.help} [${envName(spec)}, default ${spec.defaultText}]`;
  });
  return [
    'epush — clustered Ajax Push server',
    '',
    'Usage:',
    '  epush start [flags]     start a node',
    '  epush --help            this text',
    '',
    'Flags (each also EPUSH_<NAME> in the environment, or a key of the --config JSON file;',
    'precedence: flag > environment > file > default):',
    `  --config FILE                     JSON file of flag names to values [EPUSH_CONFIG]`,
    ...rows,
    '',
  ].join('\n');
}
