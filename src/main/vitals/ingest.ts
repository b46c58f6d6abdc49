/**
 * The vitals ingest: subscribes (QoS 1) to `ward/+/bed/+/vitals` on the ward's MQTT broker (or the
 * embedded one, see broker.ts), checks every message and stores the accepted readings.
 *
 * Delivery: a persistent session (clean: false, one fixed client id per workstation) so the broker
 * queues readings while the workstation is away. Readings are stored in batches (vitals-repo: readings
 * + outbox + optional audit in one transaction, see handleMessage) BEFORE their PUBACKs leave: a crash
 * between the two means the broker redelivers and the duplicates are dropped by (deviceId, seq), which
 * the store keeps across restarts. When storing fails for a reason that may pass (store locked, disk
 * full, busy), the batch is not acknowledged and the connection is dropped, so the broker redelivers
 * it after the reconnect.
 *
 * Checks, in order, each counted per reason and never a crash: topic (VITALS_TOPIC; the broker only
 * delivers what matches the subscription, so odd topics such as `ward/../bed/x/vitals` are what
 * arrives here) → size (MAX_PAYLOAD_BYTES) → UTF-8 + JSON → the v1 schema → physically possible values
 * (PLAUSIBLE, and diastolic below systolic) → duplicate. A rejected message is acknowledged (it will
 * never become valid) and reported with `onRejected(bedKey, reason)` when its topic names a bed.
 *
 * Link state: `onLink(true)` once connected and subscribed, `onLink(false)` when the connection ends,
 * or when a PINGREQ goes unanswered for `pingTimeoutMs` (default keepalive/4). MQTT.js pings after
 * `keepalive` seconds without a PINGRESP, so a silent link loss is seen within 1.25 × keepalive; a
 * closed connection (broker stopped, cable pulled on this side) at once. Reconnects back off
 * exponentially from `reconnectPeriodMs` up to `maxReconnectDelayMs`, with ±20 % jitter.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import mqtt from 'mqtt';
import type { IClientOptions, IPublishPacket, MqttClient, Packet } from 'mqtt';
import { MAX_PAYLOAD_BYTES, VITALS_SUBSCRIPTION, VITALS_TOPIC, vitalsPayloadSchema, type VitalsPayload } from './payload.js';
import type { BatchOutcome, BedRef, IncomingReading, StoredReading } from './vitals-repo.js';

export const REJECT_REASONS = ['malformed-json', 'schema', 'impossible-value', 'oversized', 'bad-topic', 'duplicate'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** `<ward>/<bed>`, as named by the topic. */
export type BedKey = string;

export function bedKeyOf(bed: BedRef): BedKey {
  return `${bed.ward}/${bed.bed}`;
}

/**
 * Where accepted readings go; VitalsRepo is one. Stores a batch in one transaction, answering per
 * reading; throws when the batch could not be stored (then none of it is).
 */
export interface VitalsSink {
  storeBatch(readings: readonly IncomingReading[], receivedAt: Date): BatchOutcome[];
}

/** At most this many messages per transaction: bounds the latency a batch adds to its first reading. */
export const MAX_BATCH = 256;
/**
 * At most one commit per this many ms. A commit costs ~0.4 ms plus ~0.1 ms per reading (measured;
 * synchronous=FULL: the readings are on disk before their PUBACKs; page encryption); under load,
 * messages gather for this long instead of paying the fixed part each. Measured at 2000 beds/1 Hz (bench/ward-load): 2 ms → 4.8 readings per
 * commit, WS CPU 62–69 %, p99 31–42 ms; 5 ms → 14 per commit, CPU 49–58 %, p99 37–50 ms; 10 ms → p99
 * 39–63 ms. A message arriving after a quiet spell is stored at once.
 */
export const MIN_COMMIT_INTERVAL_MS = 3;

/** MQTT 3.1.1 PUBACK (§3.4): fixed header 0x40, remaining length 2, packet identifier (big-endian). */
function pubackBytes(messageId: number): Buffer {
  return Buffer.from([0x40, 0x02, (messageId >> 8) & 0xff, messageId & 0xff]);
}

interface PendingMessage {
  message: ClassifiedMessage;
  /** Null for QoS 0 (nothing to acknowledge). */
  messageId: number | null;
  /** The connection it came on: a PUBACK may only go back on that one. */
  stream: MqttClient['stream'];
}

export type ClassifiedMessage =
  | { ok: true; bed: BedRef; bedKey: BedKey; payload: VitalsPayload }
  | { ok: false; reason: Exclude<RejectReason, 'duplicate'>; bedKey: BedKey | null; detail: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Checks one message (topic + raw payload) without touching the store. */
export function classifyMessage(topic: string, payload: Uint8Array): ClassifiedMessage {
  const match = VITALS_TOPIC.exec(topic);
  if (!match) return { ok: false, reason: 'bad-topic', bedKey: null, detail: `topic ${JSON.stringify(topic.slice(0, 200))} is not ward/<ward>/bed/<bed>/vitals` };
  const bed: BedRef = { ward: match[1]!, bed: match[2]! };
  const bedKey = bedKeyOf(bed);
  if (payload.byteLength > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'oversized', bedKey, detail: `${payload.byteLength} bytes > ${MAX_PAYLOAD_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(payload));
  } catch (error) {
    return { ok: false, reason: 'malformed-json', bedKey, detail: (error as Error).message };
  }
  const parsed = vitalsPayloadSchema.safeParse(json);
  if (!parsed.success) {
    // Refinements (code 'custom') are the physical-range and diastolic < systolic checks; anything else is the shape.
    const impossible = parsed.error.issues.every((issue) => issue.code === 'custom');
    const detail = parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(message)'}: ${issue.message}`).join('; ');
    return { ok: false, reason: impossible ? 'impossible-value' : 'schema', bedKey, detail };
  }
  return { ok: true, bed, bedKey, payload: parsed.data };
}

/** A fixed MQTT client id for this workstation (23 characters: the MQTT 3.1.1 limit every broker accepts). */
export function workstationClientId(seed: string, hostname: string = os.hostname()): string {
  return `nw-vitals-${createHash('sha256').update(`${hostname}\0${seed}`).digest('hex').slice(0, 13)}`;
}

/** Delay before reconnect attempt `attempt` (1, 2, …): base·2^(attempt-1), capped, ±20 % jitter. */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.max(1, Math.round(Math.min(maxMs, raw * (0.8 + 0.4 * random()))));
}

export interface VitalsTlsOptions {
  /** PEM file of the CA that signed the broker's certificate. */
  caFile?: string;
  /** PEM client certificate and key, when the broker wants mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** Default true; false only for a test bench. */
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface VitalsIngestOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the broker. */
  url: string;
  /** Fixed per workstation (see workstationClientId): the broker keeps the session and queue under it. */
  clientId: string;
  sink: VitalsSink;
  /** Seconds; default 30. */
  keepaliveSeconds?: number;
  /** How long a PINGREQ may go unanswered before the link counts as lost; default keepalive/4. */
  pingTimeoutMs?: number;
  /** First reconnect delay; default 1000 ms. */
  reconnectPeriodMs?: number;
  /** Reconnect delay cap; default 30 000 ms. */
  maxReconnectDelayMs?: number;
  /** Time allowed for the CONNACK; default 10 000 ms. */
  connectTimeoutMs?: number;
  username?: string;
  password?: string;
  tls?: VitalsTlsOptions;
  /** After the reading is stored; `stored` is the row as stored (the patient it was attributed to among it). */
  onReading?: (bedKey: BedKey, payload: VitalsPayload, stored: StoredReading) => void;
  /** For each rejected message whose topic names a bed. */
  onRejected?: (bedKey: BedKey, reason: RejectReason) => void;
  onLink?: (up: boolean, at: Date) => void;
  now?: () => Date;
  log?: (message: string) => void;
  random?: () => number;
}

export interface VitalsIngestStats {
  received: number;
  accepted: number;
  rejected: Record<RejectReason, number>;
  /** Messages left unacknowledged because storing failed (the broker redelivers them). */
  storeErrors: number;
  /** Transactions that stored messages (a batch per turn of the event loop, see handleMessage). */
  batches: number;
  linkUp: boolean;
  /** Connection attempts after the first. */
  reconnects: number;
  lastError: string | null;
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
}

/** Tells MQTT.js not to send the PUBACK itself (see handleMessage). */
const DEFERRED_ACK = new Error('acknowledged after the batch is stored');

export class VitalsIngest {
  private client: MqttClient | null = null;
  private linkUp = false;
  private attempt = 0;
  private pingTimer: NodeJS.Timeout | null = null;
  private pending: PendingMessage[] = [];
  private flushScheduled = false;
  private lastCommitAt = Number.NEGATIVE_INFINITY;
  private readonly counts: Omit<VitalsIngestStats, 'linkUp' | 'rejected'> = { received: 0, accepted: 0, storeErrors: 0, batches: 0, reconnects: 0, lastError: null };
  private readonly rejected: Record<RejectReason, number> = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  private readonly keepalive: number;
  private readonly pingTimeoutMs: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly now: () => Date;
  private readonly log: (message: string) => void;

  constructor(private readonly options: VitalsIngestOptions) {
    this.keepalive = options.keepaliveSeconds ?? 30;
    if (!(this.keepalive >= 1 && this.keepalive <= 65535 && Number.isInteger(this.keepalive))) throw new Error('vitals ingest: keepaliveSeconds must be an integer 1–65535');
    this.pingTimeoutMs = options.pingTimeoutMs ?? Math.max(100, Math.round((this.keepalive * 1000) / 4));
    this.baseDelay = options.reconnectPeriodMs ?? 1000;
    this.maxDelay = Math.max(this.baseDelay, options.maxReconnectDelayMs ?? 30_000);
    this.now = options.now ?? (() => new Date());
    this.log = options.log ?? (() => undefined);
  }

  get stats(): VitalsIngestStats {
    return { ...this.counts, rejected: { ...this.rejected }, linkUp: this.linkUp };
  }

  get running(): boolean {
    return this.client !== null;
  }

  /** Connects (in the background) and keeps reconnecting until `stop`. Throws only for unreadable TLS files. */
  start(): void {
    if (this.client) throw new Error('vitals ingest already started');
    const { tls } = this.options;
    const clientOptions: IClientOptions = {
      clientId: this.options.clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: this.keepalive,
      reconnectPeriod: this.baseDelay,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      reconnectOnConnackError: true,
      resubscribe: false,
      ...(this.options.username !== undefined ? { username: this.options.username } : {}),
      ...(this.options.password !== undefined ? { password: this.options.password } : {}),
      ...(tls?.caFile ? { ca: readFileSync(tls.caFile) } : {}),
      ...(tls?.certFile ? { cert: readFileSync(tls.certFile) } : {}),
      ...(tls?.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
      ...(tls?.servername ? { servername: tls.servername } : {}),
      rejectUnauthorized: tls?.rejectUnauthorized ?? true,
    };
    const client = mqtt.connect(this.options.url, clientOptions);
    this.client = client;
    client.handleMessage = (packet: IPublishPacket, callback: (error?: Error) => void) => this.handleMessage(client, packet, callback);

    client.on('connect', () => {
      this.attempt = 0;
      client.options.reconnectPeriod = this.baseDelay;
      client.subscribe(VITALS_SUBSCRIPTION, { qos: 1 }, (error, granted) => {
        if (error) {
          if (client.connected) this.noteError(`subscribe failed: ${error.message}`);
          return;
        }
        if (granted?.some((g) => g.qos === 128)) {
          this.noteError(`the broker refused the subscription to ${VITALS_SUBSCRIPTION}`);
          return;
        }
        if (this.client === client && client.connected) this.setLink(true);
      });
    });
    client.on('reconnect', () => {
      this.attempt += 1;
      this.counts.reconnects += 1;
      // The delay before the attempt after this one, should this one fail.
      client.options.reconnectPeriod = backoffDelayMs(this.attempt + 1, this.baseDelay, this.maxDelay, this.options.random);
    });
    client.on('close', () => {
      this.clearPingTimer();
      this.setLink(false);
    });
    client.on('error', (error) => this.noteError(error.message));
    client.on('packetsend', (packet: Packet) => {
      if (packet.cmd === 'pingreq' && !this.pingTimer) {
        this.pingTimer = setTimeout(() => {
          this.pingTimer = null;
          this.noteError(`no PINGRESP within ${this.pingTimeoutMs} ms: link lost`);
          this.setLink(false);
          client.stream?.destroy();
        }, this.pingTimeoutMs);
      }
    });
    client.on('packetreceive', () => this.clearPingTimer());
  }

  /**
   * Disconnects. `force` drops the connection without a DISCONNECT (like a crash); either way the
   * broker keeps the persistent session and queues for the next start.
   */
  async stop(options: { force?: boolean } = {}): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.flush(client); // store and acknowledge what has arrived, rather than leave it to redelivery
    this.client = null;
    this.clearPingTimer();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => client.end(true, {}, () => resolve()), 2000);
      client.end(options.force ?? false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.setLink(false);
  }

  private clearPingTimer(): void {
    if (this.pingTimer) {
      clearTimeout(this.pingTimer);
      this.pingTimer = null;
    }
  }

  private noteError(message: string): void {
    this.counts.lastError = message;
    this.log(`vitals ingest: ${message}`);
  }

  private setLink(up: boolean): void {
    if (this.linkUp === up) return;
    this.linkUp = up;
    const at = this.now();
    this.log(`vitals ingest: link ${up ? 'up' : 'down'} (${this.options.url})`);
    try {
      this.options.onLink?.(up, at);
    } catch (error) {
      this.log(`vitals ingest: onLink callback failed: ${(error as Error).message}`);
    }
  }

  /**
   * MQTT.js hands over one message at a time and sends its PUBACK when `callback` is called without
   * an error; it reads the next message only after that. One transaction per reading cannot keep up
   * with a large ward, so each message joins a batch and `callback` gets an error at once: MQTT.js
   * then sends no PUBACK and goes on to the next message. The batch is stored when this turn of the
   * event loop has read all it can (setImmediate) and MIN_COMMIT_INTERVAL_MS have passed since the
   * last commit, or at MAX_BATCH; the PUBACKs go out after the commit, in the order the messages came
   * (MQTT-4.6.0-2), on the connection they came on. If that connection is gone by then, the broker
   * redelivers them and they are dropped as duplicates.
   */
  private handleMessage(client: MqttClient, packet: IPublishPacket, callback: (error?: Error) => void): void {
    this.counts.received += 1;
    let message: ClassifiedMessage;
    try {
      message = classifyMessage(packet.topic, typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : packet.payload);
    } catch (error) {
      message = { ok: false, reason: 'schema', bedKey: null, detail: `unreadable message: ${(error as Error).message}` };
    }
    this.pending.push({ message, messageId: packet.qos > 0 && packet.messageId !== undefined ? packet.messageId : null, stream: client.stream });
    callback(DEFERRED_ACK);
    if (this.pending.length >= MAX_BATCH) this.flush(client);
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      const run = (): void => {
        this.flushScheduled = false;
        this.flush(client);
      };
      const wait = this.lastCommitAt + MIN_COMMIT_INTERVAL_MS - performance.now();
      if (wait > 0) setTimeout(run, wait);
      else setImmediate(run);
    }
  }

  /** Stores the pending batch, reports each message, then acknowledges them all, in order. */
  private flush(client: MqttClient): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const accepted = batch.filter((m): m is PendingMessage & { message: Extract<ClassifiedMessage, { ok: true }> } => m.message.ok);
    let outcomes: BatchOutcome[];
    try {
      outcomes = accepted.length ? this.options.sink.storeBatch(accepted.map(({ message }) => ({ bed: message.bed, payload: message.payload })), this.now()) : [];
      if (outcomes.length !== accepted.length) throw new Error(`the store answered ${outcomes.length} outcomes for ${accepted.length} readings`);
    } catch (error) {
      // Nothing of the batch was stored. No PUBACK for any of it (a later one would acknowledge the
      // earlier ones, MQTT-4.6.0-2): drop the connection so the broker redelivers all of it.
      this.counts.storeErrors += accepted.length;
      this.noteError(`${accepted.length} reading(s) not stored (${errorCode(error) || 'error'}: ${(error as Error).message}); left for redelivery`);
      for (const stream of new Set(batch.map((m) => m.stream))) stream?.destroy();
      return;
    }
    this.counts.batches += 1;
    this.lastCommitAt = performance.now();
    let next = 0;
    for (const { message } of batch) {
      if (!message.ok) this.reject(message.reason, message.bedKey, message.detail);
      else this.settle(message, outcomes[next++]!);
    }
    for (const { messageId, stream } of batch) {
      if (messageId !== null && stream && stream === client.stream && client.connected && !stream.destroyed) stream.write(pubackBytes(messageId));
    }
  }

  private settle(message: Extract<ClassifiedMessage, { ok: true }>, outcome: BatchOutcome): void {
    if (outcome.status === 'refused') {
      // The store's own range checks refused it: as permanent as a schema failure.
      this.reject('impossible-value', message.bedKey, outcome.error.message);
    } else if (outcome.status === 'duplicate') {
      this.reject('duplicate', message.bedKey, `${message.payload.deviceId}:${message.payload.seq} already stored`);
    } else {
      this.counts.accepted += 1;
      try {
        this.options.onReading?.(message.bedKey, message.payload, outcome.reading);
      } catch (error) {
        this.log(`vitals ingest: onReading callback failed: ${(error as Error).message}`);
      }
    }
  }

  private reject(reason: RejectReason, bedKey: BedKey | null, detail: string): void {
    this.rejected[reason] += 1;
    if (reason !== 'duplicate') this.log(`vitals ingest: rejected (${reason}) ${bedKey ?? '(no bed)'}: ${detail}`);
    if (bedKey === null) return;
    try {
      this.options.onRejected?.(bedKey, reason);
    } catch (error) {
      this.log(`vitals ingest: onRejected callback failed: ${(error as Error).message}`);
    }
  }
}
