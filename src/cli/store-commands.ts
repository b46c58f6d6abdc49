/**
 * The `neuroward` commands that work on the encrypted store: `audit verify`, `audit export`, `store key`
 * (and `openStore`, which sync-commands.ts shares).
 * Loaded by neuroward.ts only when one of them runs.
 */
import os from 'node:os';
import readline from 'node:readline';
import type { AppConfig } from '../main/app/config.js';
import { StoreService } from '../main/store/store-service.js';
import { AuditLedger, verifySummary } from '../main/security/audit-ledger.js';
import { toFhirAuditEvent } from '../main/fhir/resources.js';
import { NwError } from '../shared/errors.js';
import { SHELL_PRAGMAS } from '../main/store/database.js';

function promptHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput.bind(rl);
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      // Echo the question, nothing of what is typed.
      if (s.startsWith(question)) write(question);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

/** Opens the app's store with its configured passphrase source (a prompt only on a terminal). */
export async function openStore(config: AppConfig): Promise<StoreService> {
  const store = new StoreService(config, undefined, () => new Date());
  await store.start();
  if (store.state === 'locked') {
    if (!process.stdin.isTTY) {
      throw new NwError(
        'store-locked',
        config.passphrase.source === 'file'
          ? `The store is locked and its passphrase file ${config.passphrase.file ?? '(unset)'} did not open it.`
          : `The store is locked and there is no terminal to ask for its passphrase: put it in ${config.passphrase.env} (that alone selects it), or set NEUROWARD_PASSPHRASE_SOURCE=file with NEUROWARD_STORE_PASSPHRASE_FILE.`,
      );
    }
    await store.unlock(await promptHidden('Store passphrase: '));
  }
  void store.db; // uninitialized / error: throws the store's own explanation
  return store;
}

export async function auditVerify(config: AppConfig, json: boolean): Promise<number> {
  const store = await openStore(config);
  try {
    const ledger = new AuditLedger(store.db, () => new Date());
    // Every problem, however many: the terminal is where a broken chain gets investigated.
    const result = ledger.verify({ maxProblems: Infinity });
    store.transaction(() =>
      ledger.append({
        actor: null,
        connection: `cli:${os.userInfo().username}@${os.hostname()}`,
        action: 'audit.verify',
        outcome: 'success',
        detail: { ...verifySummary(result), via: 'neuroward audit verify' },
      }),
    );
    if (json) console.log(JSON.stringify(result, null, 2));
    else if (result.ok) console.log(`audit chain intact: ${result.entries} entries, head #${result.headSeq} ${result.headHash}`);
    else {
      const found = result.problems.length + result.unlisted;
      console.log(`audit chain BROKEN: ${found} problem${found === 1 ? '' : 's'} found checking ${result.entries} entries (last stored #${result.headSeq})`);
      for (const problem of result.problems) {
        console.log(`- ${problem.kind} ${problem.seq > 0 ? `at entry #${problem.seq}` : '(schema)'}: ${problem.message}`);
      }
      if (result.unlisted > 0) console.log(`- and ${result.unlisted} more not listed`);
    }
    return result.ok ? 0 : 1;
  } finally {
    store.close();
  }
}

export async function auditExport(config: AppConfig, since: number): Promise<number> {
  const store = await openStore(config);
  try {
    const ledger = new AuditLedger(store.db, () => new Date());
    const observer = `NeuroWard workstation ${os.hostname()}`;
    let count = 0;
    for (const entry of ledger.iterate(since)) {
      process.stdout.write(`${JSON.stringify(toFhirAuditEvent(entry, observer))}\n`);
      count += 1;
    }
    store.transaction(() => ledger.append({ actor: null, connection: `cli:${os.userInfo().username}@${os.hostname()}`, action: 'audit.export', outcome: 'success', detail: { since, entries: count } }));
    return 0;
  } finally {
    store.close();
  }
}

export async function storeKey(config: AppConfig): Promise<number> {
  const store = await openStore(config);
  try {
    const key = store.rawKeyForRecovery();
    const ledger = new AuditLedger(store.db, () => new Date());
    store.transaction(() => ledger.append({ actor: null, connection: `cli:${os.userInfo().username}@${os.hostname()}`, action: 'store.key-revealed', outcome: 'success', detail: { via: 'neuroward store key' } }));
    console.log(`PRAGMA key = "x'${key.toString('hex')}'";`);
    for (const pragma of SHELL_PRAGMAS) console.log(pragma);
    return 0;
  } finally {
    store.close();
  }
}
