/**
 * The outbox: FHIR resources waiting for the remote servers. Entries are written in the same
 * transaction as the local change; the sync engine drains this table and never guesses changes
 * from the live tables.
 */
import type { Db } from './database.js';

export interface OutboxResource {
  resourceType: string;
  id?: string | undefined;
}

export class Outbox {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  enqueue(operation: 'create' | 'update' | 'delete', resource: OutboxResource & { id: string }): void {
    if (!this.db.inTransaction) throw new Error('Outbox.enqueue must run inside the transaction of the change');
    this.db
      .prepare('INSERT INTO outbox (resource_type, resource_id, operation, resource_json, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(resource.resourceType, resource.id, operation, JSON.stringify(resource), this.now().toISOString());
  }

  pendingCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
  }
}
