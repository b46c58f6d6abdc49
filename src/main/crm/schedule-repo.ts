/**
 * Bookable resources and their schedules in the store (migration 14): a practitioner, a room or a
 * device, its time zone, slot grid and buffer, its recurring availability templates and its blocks.
 * Each change puts the resource's FHIR form in the outbox (crm/fhir.ts) in the caller's transaction.
 */
import { randomUUID } from 'node:crypto';
import { NwError } from '../../shared/errors.js';
import type { ResourceKind, ScheduleResource } from '../../shared/ipc.js';
import type { Db } from '../store/database.js';
import { Outbox } from '../store/outbox.js';
import { assertTimeZone, expandTemplate, normalise, parseTemplate, subtract, templatesOverlap, type AvailabilityTemplate, type Interval } from './availability.js';
import { toFhirResourceEntries } from './fhir.js';

interface ResourceRow {
  id: string;
  kind: ResourceKind;
  name: string;
  role: string | null;
  active: number;
  time_zone: string;
  slot_minutes: number;
  buffer_minutes: number;
}
interface TemplateRow {
  id: string;
  resource_id: string;
  rrule: string;
  start_time: string;
  end_time: string;
  valid_from: string;
  valid_until: string | null;
}
interface BlockRow {
  id: string;
  resource_id: string;
  kind: 'block' | 'holiday';
  start_at: string;
  end_at: string;
  reason: string;
}

export interface NewResource {
  kind: ResourceKind;
  name: string;
  role?: string | undefined;
  timeZone: string;
  slotMinutes: number;
  bufferMinutes?: number | undefined;
}

const toTemplate = (t: TemplateRow) => ({ id: t.id, rrule: t.rrule, startTime: t.start_time, endTime: t.end_time, validFrom: t.valid_from, validUntil: t.valid_until });

export class ScheduleRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  create(input: NewResource, by: string): ScheduleResource {
    assertTimeZone(input.timeZone);
    if (input.kind !== 'practitioner' && input.role) throw new NwError('bad-request', 'Only a practitioner has a role.');
    const id = randomUUID();
    try {
      this.db
        .prepare('INSERT INTO crm_resources (id, kind, name, role, time_zone, slot_minutes, buffer_minutes, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, input.kind, input.name, input.role ?? null, input.timeZone, input.slotMinutes, input.bufferMinutes ?? 0, this.now().toISOString(), by);
    } catch (error) {
      if (/UNIQUE/.test((error as Error).message)) throw new NwError('conflict', `There is already a ${input.kind} called "${input.name}".`);
      throw error;
    }
    return this.changed(id);
  }

  /** Adds a template; refused when it opens at a time another template of the resource already does. */
  addAvailability(resourceId: string, template: AvailabilityTemplate, by: string): ScheduleResource {
    const resource = this.require(resourceId);
    parseTemplate(template);
    for (const other of resource.availability) {
      if (templatesOverlap(template, other, resource.timeZone)) {
        throw new NwError('conflict', `This template overlaps the existing one ${other.rrule} ${other.startTime}–${other.endTime} from ${other.validFrom}: change or end that one first.`);
      }
    }
    this.db
      .prepare('INSERT INTO crm_availability (id, resource_id, rrule, start_time, end_time, valid_from, valid_until, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(randomUUID(), resourceId, template.rrule.replace(/^RRULE:/i, ''), template.startTime, template.endTime, template.validFrom, template.validUntil, this.now().toISOString(), by);
    return this.changed(resourceId);
  }

  addBlock(resourceId: string, block: { kind: 'block' | 'holiday'; start: string; end: string; reason: string }, by: string): ScheduleResource {
    this.require(resourceId);
    const start = Date.parse(block.start);
    const end = Date.parse(block.end);
    if (!(end > start)) throw new NwError('bad-request', 'A block must end after it starts.');
    this.db
      .prepare('INSERT INTO crm_blocks (id, resource_id, kind, start_at, end_at, reason, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(randomUUID(), resourceId, block.kind, new Date(start).toISOString(), new Date(end).toISOString(), block.reason, this.now().toISOString(), by);
    return this.changed(resourceId);
  }

  get(id: string): ScheduleResource | null {
    const row = this.db.prepare('SELECT * FROM crm_resources WHERE id = ?').get(id) as ResourceRow | undefined;
    return row ? this.view(row) : null;
  }

  require(id: string): ScheduleResource {
    const resource = this.get(id);
    if (!resource) throw new NwError('not-found', `No practitioner, room or device ${id}.`);
    return resource;
  }

  list(includeInactive = false): ScheduleResource[] {
    const rows = this.db.prepare(`SELECT * FROM crm_resources ${includeInactive ? '' : 'WHERE active = 1'} ORDER BY kind, name`).all() as ResourceRow[];
    return rows.map((r) => this.view(r));
  }

  /** When the resource is open in [fromMs, toMs): its templates' openings minus its blocks (read from the store for that range). */
  openings(resource: ScheduleResource, fromMs: number, toMs: number): Interval[] {
    const open = normalise(resource.availability.flatMap((t) => expandTemplate(t, resource.timeZone, fromMs, toMs)));
    const rows = this.db.prepare('SELECT start_at, end_at FROM crm_blocks WHERE resource_id = ? AND start_at < ? AND end_at > ?').all(resource.id, new Date(toMs).toISOString(), new Date(fromMs).toISOString()) as {
      start_at: string;
      end_at: string;
    }[];
    return subtract(open, normalise(rows.map((b) => ({ start: Date.parse(b.start_at), end: Date.parse(b.end_at) }))));
  }

  private changed(id: string): ScheduleResource {
    const resource = this.require(id);
    const outbox = new Outbox(this.db, this.now);
    for (const entry of toFhirResourceEntries(resource)) outbox.enqueue('update', entry);
    return resource;
  }

  private view(row: ResourceRow): ScheduleResource {
    const templates = this.db.prepare('SELECT * FROM crm_availability WHERE resource_id = ? ORDER BY valid_from, start_time').all(row.id) as TemplateRow[];
    // The blocks not over yet (a resource's past meetings and holidays pile up; the search reads blocks by range).
    const blocks = this.db.prepare('SELECT * FROM crm_blocks WHERE resource_id = ? AND end_at > ? ORDER BY start_at').all(row.id, this.now().toISOString()) as BlockRow[];
    return {
      id: row.id,
      kind: row.kind,
      name: row.name,
      role: row.role,
      active: row.active === 1,
      timeZone: row.time_zone,
      slotMinutes: row.slot_minutes,
      bufferMinutes: row.buffer_minutes,
      availability: templates.map(toTemplate),
      blocks: blocks.map((b) => ({ id: b.id, kind: b.kind, start: b.start_at, end: b.end_at, reason: b.reason })),
    };
  }
}
