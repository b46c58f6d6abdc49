/**
 * Child process of test/integration/schedule-race.test.ts: opens CONNECTIONS connections of its own to
 * the store the test prepared, waits for the common start instant, then tries to book the same time
 * once per connection (each attempt in its own transaction, as the app's dispatcher runs a call) and
 * prints one JSON line with the outcomes. Bundled with esbuild by the test.
 */
import { NwError } from '../../src/shared/errors.js';
import { BookingService } from '../../src/main/crm/booking.js';
import { openEncryptedDatabase } from '../../src/main/store/database.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const key = Buffer.from(env('RACE_KEY'), 'hex');
const patients = env('RACE_PATIENTS').split(',');
const resourceIds = env('RACE_RESOURCES').split(',');
const now = () => new Date(env('RACE_NOW'));
const goAt = Number(env('RACE_GO_AT'));
const connections = patients.map(() => openEncryptedDatabase(env('RACE_DB'), key, { create: false }));

while (Date.now() < goAt) await new Promise((r) => setTimeout(r, 1));
const outcomes: { patientId: string; outcome: string }[] = [];
for (const [i, db] of connections.entries()) {
  const patientId = patients[i]!;
  try {
    const booked = db.transaction(() => new BookingService(db, now).book({ patientId, service: 'race', start: env('RACE_START'), end: env('RACE_END'), resourceIds }, { userId: `race-${process.pid}`, name: 'Race' }))();
    outcomes.push({ patientId, outcome: `booked ${booked.id}` });
  } catch (error) {
    outcomes.push({ patientId, outcome: error instanceof NwError ? `${error.code}: ${error.message}` : `error: ${(error as Error).message}` });
  }
}
for (const db of connections) db.close();
process.stdout.write(`${JSON.stringify(outcomes)}\n`);
