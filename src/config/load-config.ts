import { parseStompUrl } from './stomp-url.js';
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
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (flags start with --)`);
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
    if (!key)
      throw new ConfigError(
        `unknown flag ${JSON.stringify(`--${name}`).slice(1, -1)} (see epush --help)`,
      );
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

/** A config-file or option value as the flag's text (lists joined with commas). */
function flagText(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.map(String).join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
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
    const key = BY_NAME.get(name) ?? (Object.hasOwn(FLAGS, name) ? (name as FlagKey) : undefined);
    if (!key) throw new ConfigError(`--config: unknown key ${JSON.stringify(name)} in ${path}`);
    const text = flagText(value);
    if (text === undefined)
      throw new ConfigError(
        `--config: key ${JSON.stringify(name)} in ${path} must be a string, number, boolean or list`,
      );
    raw.set(key, text);
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

/**
 * Flags that mean nothing to an embedded epush (`createEpush`): the host application owns the
 * server, its address, its timeouts, its connection and header limits and its processes.
 */
export const SERVER_ONLY_FLAGS = [
  'host',
  'port',
  'workers',
  'headersTimeoutSeconds',
  'bodyTimeoutSeconds',
  'idleTimeoutSeconds',
  'maxConnections',
  'maxConnectionsPerIp',
  'maxHeaderKb',
] as const satisfies readonly FlagKey[];

/** The flags an embedded epush takes, by their camelCase names. */
export type EmbeddedFlagKey = Exclude<FlagKey, (typeof SERVER_ONLY_FLAGS)[number]>;

/**
 * The configuration of an embedded epush from an options object keyed by the flags' camelCase
 * names (values typed, or as the flag's text): absent ones take the flags table's defaults,
 * present ones pass the flag's own parser, so a bad value fails with the CLI's message, e.g.
 * `createEpush: holdSeconds (--hold-seconds) must be an integer from 1 to 3600 (got "0")`.
 * Unlike `epush start`, no API key is required (the application API is then not served over
 * HTTP; the in-process API needs none) and `insecureDev` is checked per request, not per bind.
 */
export function embeddedConfig(
  options: Readonly<Record<string, unknown>>,
  label = 'createEpush',
): EpushConfig {
  const serverOnly = new Set<string>(SERVER_ONLY_FLAGS);
  const config: Record<string, unknown> = {};
  for (const key of KEYS) config[key] = specOf(key).defaultValue();
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (serverOnly.has(name)) {
      throw new ConfigError(
        `${label}: ${name} is not an option of an embedded epush (the host application owns the server)`,
      );
    }
    if (!Object.hasOwn(FLAGS, name))
      throw new ConfigError(`${label}: unknown option ${JSON.stringify(name)}`);
    const key = name as FlagKey;
    const spec = specOf(key);
    const text = flagText(value);
    if (text === undefined) {
      throw new ConfigError(`${label}: ${name} must be a string, number, boolean or list`);
    }
    try {
      config[key] = spec.parse(text);
    } catch (error) {
      if (error instanceof FlagValueError) {
        throw new ConfigError(`${label}: ${name} (--${spec.name}) ${error.message}`);
      }
      throw error;
    }
  }
  return validateBackplane(
    validateListenTokens(config as EpushConfig, `${label}: requireListenTokens`),
  );
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
      `--insecure-dev is refused unless --host is a loopback address (got ${JSON.stringify(config.host)})`,
    );
  }
  validateListenTokens(config, '--require-listen-tokens');
  validateWebhook(config);
  if (config.headersTimeoutSeconds > config.bodyTimeoutSeconds) {
    throw new ConfigError(
      `--headers-timeout-seconds (${config.headersTimeoutSeconds}) must not exceed --body-timeout-seconds (${config.bodyTimeoutSeconds})`,
    );
  }
  return validateBackplane(config);
}

/** Requiring listen tokens without a secret to verify them would refuse every listen. */
function validateListenTokens(config: EpushConfig, label: string): EpushConfig {
  if (config.requireListenTokens && config.listenTokenSecret.length === 0) {
    throw new ConfigError(
      `${label} needs --listen-token-secret (no secret: no token could ever be valid)`,
    );
  }
  return config;
}

/** A webhook needs both its URL and its secret: one without the other is a mistake. */
function validateWebhook(config: EpushConfig): void {
  if (config.webhookUrl !== '' && config.webhookSecret === '') {
    throw new ConfigError('--webhook-url needs --webhook-secret (the key that signs each batch)');
  }
  if (config.webhookSecret !== '' && config.webhookUrl === '') {
    throw new ConfigError('--webhook-secret needs --webhook-url (where to send the webhooks)');
  }
}

function validateBackplane(config: EpushConfig): EpushConfig {
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
