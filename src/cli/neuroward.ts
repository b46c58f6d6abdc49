#!/usr/bin/env node
/**
 * `neuroward` command line. Works on the same encrypted store as the app, with the same config.
 * Exit codes: 0 ok, 1 the check failed (e.g. a broken audit chain, a sync server that failed), 2 usage/config/store error.
 */
// Only what every command needs is imported here; each command loads its own modules when it runs, so
// `--version`, `--help` and `dti` start without the store, the config schema or the MQTT client.
import { appVersion } from '../main/app/version.js';

const HELP = `neuroward ${appVersion()}: NeuroWard clinical workstation, command line

Usage:
  neuroward audit verify [--json]      check the whole audit hash chain; names every edited, deleted,
                                       reordered, cut-off or added entry and a removed append-only
                                       guard (exit 1 when broken)
  neuroward audit export [--since N]   print audit entries as FHIR R4 AuditEvent resources (NDJSON)
  neuroward dti info <dicom-dir | file.nii[.gz]> [--json] [--series UID] [--bval F --bvec F]
                                       series, dimensions, b-values and b-vectors of a diffusion scan
  neuroward dti fit <dicom-dir | file.nii[.gz]> --out DIR [--no-mask] [--series UID] [--bval F --bvec F]
                                       fit tensors; writes fa, md, ad, rd, v1, colour-fa, mask (.nii.gz)
                                       and summary.json into DIR
  neuroward analyze <dicom-dir | file.nii[.gz]> --out DIR [--json] [--model DIR] [--backend NAME]
                    [--series UID] [--bval F --bvec F]
                                       AI second read (PCA → KMeans → CNN): writes clusters.nii.gz,
                                       heatmap.nii.gz and report.json (FHIR R4 Bundle) into DIR; stage
                                       times and backend on stderr; --json prints the finding on stdout.
                                       Exit 1 for input or a model it cannot use, 2 for usage
  neuroward simulate-ward --broker URL --beds N --interval SECONDS [--scenario NAME] [--ward W]
                         [--duration SECONDS] [--drift-seconds S] [--credentials FILE]
                         [--username U --password P] [--patients REF,REF,...]
                                       simulated bedside monitors; scenarios: stable, deteriorating,
                                       dropout, malformed, burst. The embedded broker needs
                                       --credentials FILE: the per-bed credentials copied from
                                       Admin → Monitors (--broker defaults to the file's).
                                       --patients: bed 1 names the first patient (mrn:<MRN> or
                                       Patient/<id>), bed 2 the second…, checked against admissions
  neuroward sync status [--json]       per FHIR server: URL, routing, pending and in-doubt changes, last
                                       success, last error, next attempt, open conflicts, dead letters
  neuroward sync run [--json]          one sync pass to every server now (retry times ignored); prints
                                       each server's result. Exit 0 when every server drained with no
                                       new conflict or dead letter, 1 otherwise, 2 with no server
                                       configured or a bad config
  neuroward store key                  print the SQLCipher pragmas (raw key) that open the store in
                                       Debian's \`sqlcipher\` shell, for recovery by IT (audited)
  neuroward --version                  print the version
  neuroward --help                     this help

Options for every command:
  --data-dir DIR     the store's folder (default: the user data dir; env NEUROWARD_DATA_DIR)
  --config FILE      a config file (env NEUROWARD_CONFIG); see README "Configuration"

The store passphrase comes from the configured source: env NEUROWARD_STORE_PASSPHRASE,
a passphrase file, or, on a terminal, a prompt.
`;

class UsageError extends Error {}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return value;
}

function numberOption(args: string[], name: string, fallback: number, min: number, max: number): number {
  const raw = option(args, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new UsageError(`${name} takes a number from ${min} to ${max}`);
  return value;
}

async function simulate(args: string[]): Promise<number> {
  const [{ PATIENT_REF, SCENARIOS, readCredentialsFile, simulateWard }, { redactBrokerUrl }] = await Promise.all([import('./simulate-ward.js'), import('../main/vitals/broker.js')]);
  const credentialsFile = option(args, '--credentials');
  let credentials;
  try {
    credentials = credentialsFile ? readCredentialsFile(credentialsFile) : null;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const broker = option(args, '--broker') ?? credentials?.broker ?? undefined;
  if (!broker) throw new UsageError('neuroward simulate-ward needs --broker URL (e.g. mqtt://127.0.0.1:1883)');
  if (credentials && (option(args, '--username') || option(args, '--password'))) throw new UsageError('--credentials and --username/--password exclude each other');
  const scenario = option(args, '--scenario') ?? 'stable';
  if (!(SCENARIOS as readonly string[]).includes(scenario)) throw new UsageError(`--scenario is one of ${SCENARIOS.join(', ')}`);
  const ward = option(args, '--ward') ?? 'A';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(ward)) throw new UsageError('--ward takes letters, digits, _ and - (at most 32)');
  const patients = option(args, '--patients')?.split(',').map((p) => p.trim()).filter(Boolean);
  const badPatient = patients?.find((p) => !PATIENT_REF.test(p));
  if (badPatient !== undefined) throw new UsageError(`--patients takes mrn:<MRN> or Patient/<id>, comma-separated (not ${JSON.stringify(badPatient.slice(0, 40))})`);
  const options = {
    broker,
    ward,
    scenario: scenario as (typeof SCENARIOS)[number],
    beds: numberOption(args, '--beds', 10, 1, 10_000),
    intervalSeconds: numberOption(args, '--interval', 1, 0.05, 3600),
    durationSeconds: numberOption(args, '--duration', 0, 0, 86_400),
    driftSeconds: numberOption(args, '--drift-seconds', 120, 1, 86_400),
    username: option(args, '--username'),
    password: option(args, '--password'),
    credentials: credentials?.monitors ?? null,
    patients,
    log: (line: string) => process.stderr.write(`${line}\n`),
  };
  console.log(`simulating ${options.beds} beds on ward ${ward} (${scenario}) every ${options.intervalSeconds} s → ${redactBrokerUrl(broker)}${credentials ? ' (one credential per bed)' : ''}`);
  if (credentials) {
    const missing = Array.from({ length: options.beds }, (_, i) => String(i + 1)).filter((bed) => !credentials.monitors.some((c) => c.ward === ward && c.bed === bed));
    if (missing.length) throw new UsageError(`${credentialsFile} has no credential for bed(s) ${missing.slice(0, 5).map((b) => `${ward}/${b}`).join(', ')}${missing.length > 5 ? ', …' : ''}: create them in Admin → Monitors`);
  }
  let result: Awaited<ReturnType<typeof simulateWard>>;
  try {
    result = await simulateWard(options);
  } catch (error) {
    // e.g. "Connection refused: Not authorized": no stack trace for that.
    console.error(`neuroward: simulate-ward: ${(error as Error).message}`);
    return 2;
  }
  console.log(`published ${result.published} readings${result.malformed ? ` and ${result.malformed} malformed messages` : ''}`);
  return 0;
}

/** `dti` works on files alone: no store, no passphrase. */
async function dti(command: string | undefined, args: string[]): Promise<number> {
  const input = args.find((a, i) => !a.startsWith('--') && !['--out', '--series', '--bval', '--bvec'].includes(args[i - 1] ?? ''));
  if (!input) throw new UsageError(`neuroward dti ${command ?? ''}: name a DICOM folder or a .nii/.nii.gz file`);
  const source = { input, series: option(args, '--series'), bval: option(args, '--bval'), bvec: option(args, '--bvec') };
  const [{ inProcessImagingEngines }, { dtiFit, dtiInfo }] = await Promise.all([import('../main/imaging/engines.js'), import('./dti.js')]);
  // The CLI's thread does nothing else while it reads: no worker needed to keep a loop free.
  const engines = inProcessImagingEngines();
  if (command === 'info') {
    console.log(await dtiInfo(engines, source, args.includes('--json')));
    return 0;
  }
  if (command === 'fit') {
    const out = option(args, '--out');
    if (!out) throw new UsageError('neuroward dti fit needs --out DIR');
    const summary = await dtiFit(engines, source, out, {
      mask: !args.includes('--no-mask'),
      log: (line) => process.stderr.write(`${line}\n`),
      // On a terminal progress is one line rewritten in place; in a log or pipe a line every 10 %.
      terminal: process.stderr.isTTY ? process.stderr : null,
    });
    console.log(JSON.stringify(summary, null, 2));
    return 0;
  }
  throw new UsageError(`unknown command: dti ${command ?? ''}`);
}

/** `analyze` works on files alone, like `dti`. Exit 1 for input or a model it cannot use (said on stderr). */
async function analyzeCommand(args: string[]): Promise<number> {
  const valued = ['--out', '--series', '--bval', '--bvec', '--model', '--backend'];
  const input = args.find((a, i) => !a.startsWith('--') && !valued.includes(args[i - 1] ?? ''));
  if (!input) throw new UsageError('neuroward analyze: name a DICOM folder or a .nii/.nii.gz file');
  const out = option(args, '--out');
  if (!out) throw new UsageError('neuroward analyze needs --out DIR');
  const backend = option(args, '--backend');
  const [{ inProcessImagingEngines }, { analyze, defaultModelDir }, { isBackendName, BACKEND_CHAIN }] = await Promise.all([
    import('../main/imaging/engines.js'),
    import('./analyze.js'),
    import('../main/analysis/backends.js'),
  ]);
  if (backend !== undefined && !isBackendName(backend)) throw new UsageError(`--backend is one of ${BACKEND_CHAIN.join(', ')}`);
  try {
    const summary = await analyze(inProcessImagingEngines(), { input, series: option(args, '--series'), bval: option(args, '--bval'), bvec: option(args, '--bvec') }, out, {
      model: option(args, '--model') ?? defaultModelDir(),
      backend,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    if (args.includes('--json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else console.error(`finding: ${summary.finding} (probability ${summary.probability.toFixed(3)}, ${summary.regions.length} region(s)); written to ${out}`);
    return 0;
  } catch (error) {
    if (!(error instanceof Error) || !['ImagingInputError', 'ModelFileError'].includes(error.name)) throw error;
    console.error(`neuroward: analyze: ${error.message}`);
    return 1;
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return argv.length === 0 ? 2 : 0;
  }
  if (argv.includes('--version')) {
    console.log(appVersion());
    return 0;
  }
  const [group, command] = argv;
  if (group === 'dti') return dti(command, argv.slice(2));
  if (group === 'simulate-ward') return simulate(argv.slice(1));
  if (group === 'analyze') return analyzeCommand(argv.slice(1));
  const known = (group === 'audit' && (command === 'verify' || command === 'export')) || (group === 'store' && command === 'key') || (group === 'sync' && (command === 'status' || command === 'run'));
  if (!known) throw new UsageError(`unknown command: ${argv.filter((a) => !a.startsWith('--')).slice(0, 2).join(' ')}`);
  let since = 1;
  if (group === 'audit' && command === 'export') {
    since = Number(option(argv, '--since') ?? '1');
    if (!Number.isSafeInteger(since) || since < 1) throw new UsageError('--since takes an entry number (1 or more)');
  }
  const [{ loadConfig }, store] = await Promise.all([import('../main/app/config.js'), import('./store-commands.js')]);
  const config = loadConfig(argv, process.env);
  if (group === 'sync') {
    const sync = await import('./sync-commands.js');
    return command === 'status' ? sync.syncStatus(config, argv.includes('--json')) : sync.syncRun(config, argv.includes('--json'));
  }
  if (group === 'audit' && command === 'verify') return store.auditVerify(config, argv.includes('--json'));
  if (group === 'audit') return store.auditExport(config, since);
  return store.storeKey(config);
}

/** The errors whose message is meant for the user as it is (matched by name: their modules load lazily). */
const USER_ERRORS = new Set(['NwError', 'ImagingInputError']);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`neuroward: ${error.message}\nRun \`neuroward --help\` for usage.`);
    else if (error instanceof Error && error.name === 'ConfigError') console.error(`neuroward: configuration error:\n${error.message}`);
    else if (error instanceof Error && USER_ERRORS.has(error.name)) console.error(`neuroward: ${error.message}`);
    else console.error(`neuroward: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
