/** Prepared statements kept per repository: preparing costs as much as running the small statements of a hot path. */
import type { Db, Statement } from './database.js';

export class StatementCache {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: Db) {}

  get(sql: string): Statement {
    let prepared = this.statements.get(sql);
    if (!prepared) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }
}

/** A class that keeps its SQL statements prepared once per store connection (sync state, pull cursors, pulled resources). */
export abstract class StatementOwner {
  private readonly statements: StatementCache;

  constructor(
    protected readonly db: Db,
    protected readonly now: () => Date,
  ) {
    this.statements = new StatementCache(db);
  }

  protected sql(text: string): Statement {
    return this.statements.get(text);
  }
}
