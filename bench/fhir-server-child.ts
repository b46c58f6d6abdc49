/**
 * The loopback FHIR server of the FHIR benchmarks (fhir-sync, fhir-pull) in a child process of its own,
 * so its CPU is measured apart from the workstation's: @medplum/fhir-router + MemoryRepository behind
 * test/support/fhir-server.ts. The bench's own bundle is the child's script: `startFhirServerChild`
 * spawns it with `--server`, and the bench's entry calls `serveFhirServerChild` when it sees that flag.
 * Over IPC the child reports its URL once, then its figures on each `stats` request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface FhirServerChildStats {
  /** Resources whose newest version is not a deletion, by resource type. */
  current: Record<string, number>;
  /** Versions stored (deletions not counted), by resource type. */
  versions: Record<string, number>;
  /** CPU seconds (user + system) the server process has used since it started. */
  cpuSeconds: number;
  maxRssMb: number;
}

export interface FhirServerChild {
  baseUrl: string;
  stats(): Promise<FhirServerChildStats>;
  stop(): Promise<void>;
}

/** In the child: starts the server, reports its URL, answers `stats`. */
export async function serveFhirServerChild(): Promise<void> {
  const { startLoopbackFhirServer } = await import('../test/support/fhir-server.js');
  const server = await startLoopbackFhirServer();
  process.on('message', (message: unknown) => {
    if (message !== 'stats') return;
    const current: Record<string, number> = {};
    const versions: Record<string, number> = {};
    for (const [key, chain] of server.repo.allChains()) {
      const type = key.slice(0, key.indexOf('/'));
      if (chain.at(-1) && !chain.at(-1)!.deleted) current[type] = (current[type] ?? 0) + 1;
      versions[type] = (versions[type] ?? 0) + chain.filter((v) => !v.deleted).length;
    }
    const cpu = process.cpuUsage();
    const stats: FhirServerChildStats = { current, versions, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMb: process.resourceUsage().maxRSS / 1024 };
    process.send!(stats);
  });
  process.send!({ baseUrl: server.baseUrl });
}

/** Spawns `script` (the bench's own bundle, `import.meta.url` of its entry) as the server child. */
export function startFhirServerChild(script: string): Promise<FhirServerChild> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(script), '--server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the FHIR server process exited (${code}) before it listened`)));
    child.once('message', (message) => {
      const { baseUrl } = message as { baseUrl: string };
      resolve({
        baseUrl,
        stats: () =>
          new Promise((done) => {
            child.once('message', (m) => done(m as FhirServerChildStats));
            child.send('stats');
          }),
        stop: () =>
          new Promise((done) => {
            child.removeAllListeners('exit');
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
