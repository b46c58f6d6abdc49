/**
 * Configuration: built-in defaults ← config file ← environment variables ← command-line flags.
 * With no config at all the workstation runs the embedded default (local store in the user data
 * dir, embedded broker, synthetic demo data). Every problem names the setting and where it came from.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultModelDir } from '../analysis/model/model-check.js';
import { z } from 'zod';
import { resolveServers, syncServerSettingsSchema, type SyncServer } from '../fhir/sync/settings.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * A server as hospital IT wrote it before the sync engine: `{ name, baseUrl, tokenEnv }`. Such files are
 * still accepted: `tokenEnv` is read as bearer auth (and cannot be combined with an `auth` setting).
 */
const fhirServerSchema = z.preprocess((raw) => {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || !('tokenEnv' in raw)) return raw;
  const { tokenEnv, ...rest } = raw as Record<string, unknown>;
  // Both given: left as is, so the schema names the unknown `tokenEnv` rather than picking one silently.
  if ('auth' in rest) return raw;
  return { ...rest, auth: { kind: 'bearer', tokenEnv } };
}, syncServerSettingsSchema);

export const configFileSchema = z.strictObject({
  dataDir: z.string().min(1).optional(),
  demo: z.boolean().optional(),
  host: z
    .strictObject({
      port: z.number().int().min(0).max(65535).optional(),
    })
    .optional(),
  store: z
    .strictObject({
      passphrase: z
        .strictObject({
          source: z.enum(['prompt', 'env', 'file', 'safe-storage']),
          /** For source `env`: the variable that holds the passphrase. */
          env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').optional(),
          /** For source `file`: a file readable only by the service account. */
          file: z.string().min(1).optional(),
        })
        .optional(),
    })
    .optional(),
  security: z
    .strictObject({
      idleLockMinutes: z.number().min(0.05).max(120).optional(),
      sessionHours: z.number().min(1).max(24).optional(),
      maxFailedSignIns: z.number().int().min(3).max(20).optional(),
      lockoutMinutes: z.number().min(1).max(1440).optional(),
      /** Refusals per source and minute audited one by one; past that they are counted into one summary entry. */
      auditedRefusalsPerMinute: z.number().int().min(1).max(100_000).optional(),
      /** Calls one window may have in flight at once; more are refused (rate-limited). */
      maxCallsInFlight: z.number().int().min(1).max(1000).optional(),
    })
    .optional(),
  mqtt: z
    .strictObject({
      url: z
        .url({ protocol: /^(mqtts?|wss?)$/, error: 'must be an mqtt://, mqtts://, ws:// or wss:// URL' })
        // It would be printed, logged and shown on the ward board: the password goes in passwordEnv.
        .refine((url) => !/^[a-z]+:\/\/[^/?#]*@/i.test(url), 'must not hold a user name or password (user:pass@): use mqtt.username and mqtt.passwordEnv')
        .optional(),
      /** Port of the embedded broker on 127.0.0.1 when no url is set; 0 picks a free one. */
      embeddedPort: z.number().int().min(0).max(65535).optional(),
      /** Interface the embedded broker listens on; anything but loopback needs embeddedTls. */
      embeddedHost: z.union([z.ipv4(), z.ipv6()], { error: 'an IP address of this machine (e.g. 127.0.0.1 or 0.0.0.0)' }).optional(),
      /** The embedded broker speaks MQTT over TLS only: its PEM certificate and key, and the CA that signed it (absent: self-signed). */
      embeddedTls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1), caFile: z.string().min(1).optional() }).optional(),
      username: z.string().min(1).max(256).optional(),
      /** Environment variable holding the broker password (never the password itself in the file). */
      passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').optional(),
      /** PEM files for mqtts://: the CA that signed the broker, and this workstation's client certificate. */
      caFile: z.string().min(1).optional(),
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
      keepaliveSeconds: z.number().int().min(1).max(600).optional(),
    })
    .optional(),
  fhir: z.strictObject({ servers: z.array(fhirServerSchema).max(16).optional() }).optional(),
  imaging: z
    .strictObject({
      /** Folders radiologists may browse and import from; default: the home folder, /media and /mnt. */
      importRoots: z.array(z.string().min(1)).max(32).optional(),
    })
    .optional(),
  analysis: z
    .strictObject({
      /** The AI read's model folder (model.json, weights.bin, manifest.json); default: the one shipped in models/lesion-cnn. */
      modelDir: z.string().min(1).optional(),
    })
    .optional(),
  /** Appointment reminders (crm/reminders.ts). */
  reminders: z
    .strictObject({
      /** The SMTP server email reminders go through; without it, email reminders wait with that reason. */
      smtp: z
        .strictObject({
          host: z.string().min(1),
          port: z.number().int().min(1).max(65535),
          /** TLS from the start (port 465); otherwise STARTTLS when offered. */
          secure: z.boolean().optional(),
          from: z.string().min(3),
          username: z.string().min(1).optional(),
          /** The environment variable holding the password (never the password itself). */
          passwordEnv: z.string().min(1).optional(),
        })
        .optional(),
      /** Where the file channel (letters) writes each message; default <data dir>/outgoing-messages. */
      messagesDir: z.string().min(1).optional(),
      /** No reminder is sent between these times on the clinic's clock; default 21:00–08:00. */
      quietHours: z.strictObject({ start: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/), end: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/) }).optional(),
    })
    .optional(),
});
export type ConfigFile = z.infer<typeof configFileSchema>;

export interface AppConfig {
  dataDir: string;
  /** Where the file settings came from, for messages; null when running on built-in defaults. */
  configFile: string | null;
  demo: boolean;
  port: number;
  passphrase: {
    source: 'auto' | 'prompt' | 'env' | 'file' | 'safe-storage';
    /** The variable named for source `env`, and its value read once at start (a secret: never print the config). */
    env: string;
    fromEnv: string | null;
    file: string | null;
  };
  security: { idleLockMs: number; sessionMs: number; maxFailedSignIns: number; lockoutMs: number; auditedRefusalsPerMinute: number; maxCallsInFlight: number };
  mqttUrl: string | null;
  mqttEmbeddedPort: number;
  /** Interface the embedded broker binds; 127.0.0.1 unless configured (then with TLS). */
  mqttEmbeddedHost: string;
  /** TLS of the embedded broker (certificate, key, the CA that signed it); null: plain MQTT on loopback. */
  mqttEmbeddedTls: { certFile: string; keyFile: string; caFile: string | null } | null;
  mqtt: { username: string | null; password: string | null; caFile: string | null; certFile: string | null; keyFile: string | null; keepaliveSeconds: number };
  /** The FHIR servers with their secrets read (once, at start); empty: changes queue in the outbox. */
  fhirServers: SyncServer[];
  imaging: { importRoots: string[] };
  analysis: { modelDir: string };
  reminders: {
    smtp: { host: string; port: number; secure: boolean; from: string; username: string | null; password: string | null } | null;
    messagesDir: string;
    quietHours: { start: string; end: string };
  };
}

export const DEFAULT_PORT = 4780;
export const DEFAULT_MQTT_PORT = 1883;
export const DEFAULT_PASSPHRASE_ENV = 'NEUROWARD_STORE_PASSPHRASE';

/** Where Electron's app.getPath('userData') would put it, so both hosts share one store. */
export function defaultUserDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const home = os.homedir();
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'NeuroWard');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'NeuroWard');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'NeuroWard');
}

/** The name a FHIR server entry gives itself, so a problem in it names the server, not only its index. */
function serverNameAt(raw: unknown, index: unknown): string | null {
  const servers = (raw as { fhir?: { servers?: unknown } } | null)?.fhir?.servers;
  if (!Array.isArray(servers) || typeof index !== 'number') return null;
  const name = (servers[index] as { name?: unknown } | null)?.name;
  return typeof name === 'string' && name ? name : null;
}

function describeIssues(error: z.ZodError, origin: string, raw?: unknown): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
      const server = issue.path[0] === 'fhir' && issue.path[1] === 'servers' ? serverNameAt(raw, issue.path[2]) : null;
      return `setting "${where}" (${origin}${server ? `, FHIR server "${server}"` : ''}): ${issue.message}`;
    })
    .join('\n');
}

/** Environment variables, each mapped onto one setting of the file schema. */
const ENV_SETTINGS: { name: string; setting: string; parse: (v: string) => unknown }[] = [
  { name: 'NEUROWARD_DATA_DIR', setting: 'dataDir', parse: (v) => v },
  { name: 'NEUROWARD_DEMO', setting: 'demo', parse: parseBoolean },
  { name: 'NEUROWARD_PORT', setting: 'host.port', parse: parseNumber },
  { name: 'NEUROWARD_PASSPHRASE_SOURCE', setting: 'store.passphrase.source', parse: (v) => v },
  { name: 'NEUROWARD_STORE_PASSPHRASE_FILE', setting: 'store.passphrase.file', parse: (v) => v },
  { name: 'NEUROWARD_IDLE_LOCK_MINUTES', setting: 'security.idleLockMinutes', parse: parseNumber },
  { name: 'NEUROWARD_MQTT_URL', setting: 'mqtt.url', parse: (v) => v },
  { name: 'NEUROWARD_MQTT_PORT', setting: 'mqtt.embeddedPort', parse: parseNumber },
  { name: 'NEUROWARD_IMPORT_ROOTS', setting: 'imaging.importRoots', parse: (v) => v.split(path.delimiter).filter(Boolean) },
  {
    name: 'NEUROWARD_FHIR_SERVERS',
    setting: 'fhir.servers',
    // `URL,URL` (named server-1, server-2, …) or `name=URL,name=URL`; everything else from the file's defaults.
    parse: (v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((entry, i) => {
          const named = /^([A-Za-z0-9._-]{1,64})=(.+)$/.exec(entry);
          return named ? { name: named[1], baseUrl: named[2] } : { name: `server-${i + 1}`, baseUrl: entry };
        }),
  },
];

function parseBoolean(v: string): unknown {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  return v; // left as a string so the schema reports it, naming the variable
}
function parseNumber(v: string): unknown {
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : v;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (i < 0) return undefined;
  const arg = argv[i]!;
  if (arg.includes('=')) return arg.slice(flag.length + 1);
  const value = argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new ConfigError(`${flag} needs a value`);
  return value;
}

/**
 * Reads configuration. The file is `--config FILE`, else $NEUROWARD_CONFIG, else
 * `<dataDir>/neuroward.config.json` if it exists. `--data-dir DIR` overrides everything.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): AppConfig {
  const explicitFile = flagValue(argv, '--config') ?? env.NEUROWARD_CONFIG;
  const dataDirFlag = flagValue(argv, '--data-dir');
  let fileSettings: ConfigFile = {};
  let configFile: string | null = null;

  const candidate = explicitFile
    ? path.resolve(explicitFile)
    : path.join(path.resolve(dataDirFlag ?? env.NEUROWARD_DATA_DIR ?? defaultUserDataDir(env)), 'neuroward.config.json');
  if (explicitFile && !existsSync(candidate)) throw new ConfigError(`config file not found: ${candidate}`);
  if (existsSync(candidate)) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(candidate, 'utf8'));
    } catch (error) {
      throw new ConfigError(`config file ${candidate} is not valid JSON: ${(error as Error).message}`);
    }
    const parsed = configFileSchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, `in ${candidate}`, raw));
    fileSettings = parsed.data;
    configFile = candidate;
  }

  // Environment variables are applied one at a time so that an error names the variable.
  const merged = structuredClone(fileSettings) as Record<string, unknown>;
  for (const { name, setting, parse } of ENV_SETTINGS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const probe: Record<string, unknown> = {};
    setPath(probe, setting, parse(value));
    const check = configFileSchema.safeParse(probe);
    if (!check.success) throw new ConfigError(describeIssues(check.error, `from environment variable ${name}`, probe));
    setPath(merged, setting, parse(value));
  }
  if (dataDirFlag) merged.dataDir = dataDirFlag;
  const portFlag = flagValue(argv, '--port');
  if (portFlag !== undefined) setPath(merged, 'host.port', parseNumber(portFlag));
  const settings = configFileSchema.safeParse(merged);
  if (!settings.success) throw new ConfigError(describeIssues(settings.error, 'from the command line', merged));
  const s = settings.data;

  // Setting the passphrase variable is choosing it: with no source configured, its presence means `env`.
  const passphraseEnv = s.store?.passphrase?.env ?? DEFAULT_PASSPHRASE_ENV;
  const passphraseSource = s.store?.passphrase?.source ?? (env[passphraseEnv] ? 'env' : 'auto');
  if ((s.mqtt?.certFile === undefined) !== (s.mqtt?.keyFile === undefined)) {
    throw new ConfigError('settings "mqtt.certFile" and "mqtt.keyFile" go together: give both or neither');
  }
  const embeddedHost = s.mqtt?.embeddedHost ?? '127.0.0.1';
  if (!s.mqtt?.embeddedTls && !/^(127\.\d+\.\d+\.\d+|::1)$/.test(embeddedHost)) {
    // Monitors' passwords and patients' vitals would cross the ward network in clear.
    throw new ConfigError(`setting "mqtt.embeddedHost" is ${embeddedHost}, reachable from the network: it needs "mqtt.embeddedTls" (certFile and keyFile)`);
  }
  if (s.mqtt?.passwordEnv && !env[s.mqtt.passwordEnv]) {
    throw new ConfigError(`setting "mqtt.passwordEnv" names environment variable ${s.mqtt.passwordEnv}, which is empty or unset`);
  }
  const passphraseFile = s.store?.passphrase?.file ?? null;
  if (passphraseSource === 'file' && !passphraseFile) {
    throw new ConfigError('setting "store.passphrase.file": required when store.passphrase.source is "file"');
  }
  if (passphraseSource === 'env' && !env[passphraseEnv]) {
    throw new ConfigError(`setting "store.passphrase.source" is "env" but environment variable ${passphraseEnv} is empty or unset`);
  }

  // Secrets (tokens, passwords, key files) are read once, here: a missing one stops the start, naming the server.
  let fhirServers: SyncServer[];
  try {
    fhirServers = resolveServers(s.fhir?.servers ?? [], env);
  } catch (error) {
    throw new ConfigError(`setting "fhir.servers": ${(error as Error).message}`);
  }

  return {
    dataDir: path.resolve(s.dataDir ?? defaultUserDataDir(env)),
    configFile,
    // The embedded default (no config file) carries synthetic demo data; a configured site does not unless asked.
    demo: s.demo ?? configFile === null,
    port: s.host?.port ?? DEFAULT_PORT,
    passphrase: { source: passphraseSource, env: passphraseEnv, fromEnv: env[passphraseEnv] || null, file: passphraseFile },
    security: {
      idleLockMs: Math.round((s.security?.idleLockMinutes ?? 10) * 60_000),
      sessionMs: Math.round((s.security?.sessionHours ?? 12) * 3_600_000),
      maxFailedSignIns: s.security?.maxFailedSignIns ?? 5,
      lockoutMs: Math.round((s.security?.lockoutMinutes ?? 15) * 60_000),
      auditedRefusalsPerMinute: s.security?.auditedRefusalsPerMinute ?? 30,
      maxCallsInFlight: s.security?.maxCallsInFlight ?? 32,
    },
    mqttUrl: s.mqtt?.url ?? null,
    mqttEmbeddedPort: s.mqtt?.embeddedPort ?? DEFAULT_MQTT_PORT,
    mqttEmbeddedHost: embeddedHost,
    mqttEmbeddedTls: s.mqtt?.embeddedTls
      ? { certFile: path.resolve(s.mqtt.embeddedTls.certFile), keyFile: path.resolve(s.mqtt.embeddedTls.keyFile), caFile: s.mqtt.embeddedTls.caFile ? path.resolve(s.mqtt.embeddedTls.caFile) : null }
      : null,
    mqtt: {
      username: s.mqtt?.username ?? null,
      password: s.mqtt?.passwordEnv ? (env[s.mqtt.passwordEnv] ?? null) : null,
      caFile: s.mqtt?.caFile ?? null,
      certFile: s.mqtt?.certFile ?? null,
      keyFile: s.mqtt?.keyFile ?? null,
      keepaliveSeconds: s.mqtt?.keepaliveSeconds ?? 10,
    },
    imaging: {
      importRoots: (s.imaging?.importRoots ?? [os.homedir(), '/media', '/mnt'].filter((dir) => process.platform !== 'win32' || dir === os.homedir())).map((dir) => path.resolve(dir)),
    },
    analysis: { modelDir: s.analysis?.modelDir ? path.resolve(s.analysis.modelDir) : defaultModelDir() },
    reminders: {
      smtp: s.reminders?.smtp
        ? {
            host: s.reminders.smtp.host,
            port: s.reminders.smtp.port,
            secure: s.reminders.smtp.secure ?? s.reminders.smtp.port === 465,
            from: s.reminders.smtp.from,
            username: s.reminders.smtp.username ?? null,
            password: s.reminders.smtp.passwordEnv ? (env[s.reminders.smtp.passwordEnv] ?? null) : null,
          }
        : null,
      messagesDir: path.resolve(s.reminders?.messagesDir ?? path.join(path.resolve(s.dataDir ?? defaultUserDataDir(env)), 'outgoing-messages')),
      quietHours: s.reminders?.quietHours ?? { start: '21:00', end: '08:00' },
    },
    fhirServers,
  };
}
