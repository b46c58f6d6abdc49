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

  /**
   * `validated`: the caller checked the resource against the R4 definitions (fhir/validation.ts
   * ValidatingOutbox), so the sync engine need not check it again; unchecked rows are checked before
   * they are first sent.
   */
  enqueue(operation: 'create' | 'update' | 'delete', resource: OutboxResource & { id: string }, options: { validated?: boolean } = {}): void {
    if (!this.db.inTransaction) throw new Error('Outbox.enqueue must run inside the transaction of the change');
    this.db
      .prepare('INSERT INTO outbox (resource_type, resource_id, operation, resource_json, created_at, fhir_valid) VALUES (?, ?, ?, ?, ?, ?)')
      .run(resource.resourceType, resource.id, operation, JSON.stringify(resource), this.now().toISOString(), options.validated ? 1 : null);
  }

  /** The newest row's id (0 when empty): a cheap way to tell that something was queued since. */
  lastId(): number {
    return (this.db.prepare('SELECT coalesce(max(id), 0) AS id FROM outbox').get() as { id: number }).id;
  }

  /** Rows some configured server has not finished yet (after the last retirement mark; retired rows wait only for their deletion). */
  pendingCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM outbox WHERE id > coalesce((SELECT max(upto_id) FROM outbox_retired), 0)').get() as { n: number }).n;
  }
}
