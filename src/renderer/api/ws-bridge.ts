/**
 * Browser-mode implementation of NeurowardBridge over the headless host's WebSocket (WS_PATH).
 * Requests: {id, channel, payload}; replies {id, ok, value} | {id, ok:false, error}; events {event, payload}.
 * Reconnects with exponential backoff; calls in flight when the socket drops are rejected with a
 * TransportError saying so (the host may or may not have carried them out).
 */
import { CHANNEL_NAMES, channels, events, type ChannelName, type EventName, type EventPayload } from '../../shared/ipc.js';
import { ERROR_CODES, type Envelope, type WireError } from '../../shared/errors.js';
import { WS_PATH, type ChannelMethods, type NeurowardBridge, type WsRequest } from '../../shared/bridge.js';
import { TransportError } from './errors.js';

export type ConnectionState = 'connecting' | 'open' | 'closed';
export interface ConnectionInfo {
  state: ConnectionState;
  /** Consecutive failed attempts since the last successful open. */
  attempt: number;
  /** When the next attempt starts (ms since epoch), while closed. */
  retryAt: number | null;
  /** True once the socket has been open at least once. */
  everOpened: boolean;
  /**
   * The host refuses this page's launch key (it was restarted, with a new key): reconnecting cannot
   * help, only opening the address it printed at its new start.
   */
  launchKeyRefused: boolean;
}

interface Pending {
  channel: ChannelName;
  resolve: (envelope: Envelope<unknown>) => void;
  reject: (error: TransportError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const CALL_TIMEOUT_MS = 120_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export function defaultWsUrl(loc: Location = window.location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${WS_PATH}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isWireError(value: unknown): value is WireError {
  return isRecord(value) && typeof value.message === 'string' && typeof value.code === 'string' && (ERROR_CODES as readonly string[]).includes(value.code);
}

export class WsConnection {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Requests made while the socket was still opening; sent on open. */
  private queue: { request: WsRequest; pending: Pending }[] = [];
  private readonly eventListeners = new Map<EventName, Set<(payload: unknown) => void>>();
  private readonly stateListeners = new Set<(info: ConnectionInfo, reconnected: boolean) => void>();
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private info: ConnectionInfo = { state: 'closed', attempt: 0, retryAt: null, everOpened: false, launchKeyRefused: false };
  private stopped = false;

  constructor(private readonly url: string) {}

  get connection(): ConnectionInfo {
    return this.info;
  }

  start(): void {
    this.stopped = false;
    if (!this.ws) this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.ws?.close();
  }

  /** Tries now instead of waiting for the backoff timer. */
  retryNow(): void {
    if (this.info.state !== 'closed' || this.stopped) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.open();
  }

  onState(listener: (info: ConnectionInfo, reconnected: boolean) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void {
    let set = this.eventListeners.get(event);
    if (!set) {
      set = new Set();
      this.eventListeners.set(event, set);
    }
    // Payloads are validated against the contract before listeners see them (see handleMessage).
    const wrapped = listener as (payload: unknown) => void;
    set.add(wrapped);
    return () => set.delete(wrapped);
  }

  request(channel: ChannelName, payload: unknown): Promise<Envelope<unknown>> {
    return new Promise((resolve, reject) => {
      if (this.info.state === 'closed') {
        reject(
          new TransportError(
            'not-connected',
            `Not connected to the NeuroWard host (reconnecting). "${channel}" was not sent; try again in a moment.`,
          ),
        );
        if (!this.stopped) this.retryNow();
        return;
      }
      const id = this.nextId++;
      const pending: Pending = {
        channel,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.pending.delete(id);
          this.queue = this.queue.filter((q) => q.request.id !== id);
          reject(new TransportError('timeout', `The NeuroWard host did not answer "${channel}" within ${CALL_TIMEOUT_MS / 1000} s.`));
        }, CALL_TIMEOUT_MS),
      };
      const request: WsRequest = { id, channel, payload };
      if (this.info.state === 'open' && this.ws) {
        this.pending.set(id, pending);
        this.ws.send(JSON.stringify(request));
      } else {
        this.queue.push({ request, pending });
      }
    });
  }

  private setInfo(next: Partial<ConnectionInfo>, reconnected = false): void {
    this.info = { ...this.info, ...next };
    for (const listener of this.stateListeners) listener(this.info, reconnected);
  }

  private open(): void {
    const wasOpened = this.info.everOpened;
    this.setInfo({ state: 'connecting', retryAt: null });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.handleClose();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      const queued = this.queue;
      this.queue = [];
      for (const { request, pending } of queued) {
        this.pending.set(request.id, pending);
        ws.send(JSON.stringify(request));
      }
      this.setInfo({ state: 'open', attempt: 0, retryAt: null, everOpened: true }, wasOpened);
    });
    ws.addEventListener('message', (ev: MessageEvent) => {
      if (this.ws === ws) this.handleMessage(ev.data);
    });
    ws.addEventListener('close', () => {
      if (this.ws === ws) this.handleClose();
    });
    // 'error' is always followed by 'close'; nothing to do here.
  }

  private handleClose(): void {
    this.ws = null;
    const lost = [...this.pending.values()];
    this.pending.clear();
    for (const p of lost) {
      clearTimeout(p.timer);
      p.reject(
        new TransportError(
          'connection-lost',
          `The connection to the NeuroWard host dropped before it answered "${p.channel}". The action may or may not have been carried out; check before repeating it.`,
        ),
      );
    }
    const unsent = this.queue;
    this.queue = [];
    for (const { pending } of unsent) {
      clearTimeout(pending.timer);
      pending.reject(new TransportError('not-connected', `Could not reach the NeuroWard host; "${pending.channel}" was not sent.`));
    }
    if (this.stopped) {
      this.setInfo({ state: 'closed', retryAt: null });
      return;
    }
    const attempt = this.info.attempt + 1;
    // A browser is not told why an upgrade failed; the page's own address answers 401 when the key is stale.
    if (attempt > 1) void this.checkLaunchKey();
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt - 1, 10));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open();
    }, delay);
    this.setInfo({ state: 'closed', attempt, retryAt: Date.now() + delay });
  }

  private async checkLaunchKey(): Promise<void> {
    try {
      const response = await fetch('/', { method: 'HEAD', cache: 'no-store', credentials: 'same-origin' });
      if (response.status === 401 && !this.info.launchKeyRefused) this.setInfo({ launchKeyRefused: true });
    } catch {
      // The host is down: the ordinary reconnecting banner says so.
    }
  }

  private handleMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!isRecord(msg)) return;

    if (typeof msg.event === 'string') {
      const name = msg.event;
      if (!Object.prototype.hasOwnProperty.call(events, name)) return;
      const eventName = name as EventName;
      const parsed = events[eventName].safeParse(msg.payload);
      if (!parsed.success) {
        console.warn(`NeuroWard: ignored malformed "${eventName}" event`, parsed.error.issues);
        return;
      }
      for (const listener of this.eventListeners.get(eventName) ?? []) {
        try {
          listener(parsed.data);
        } catch (error) {
          console.error(error);
        }
      }
      return;
    }

    if (typeof msg.id !== 'number') return;
    const pending = this.pending.get(msg.id);
    if (!pending) return;
    this.pending.delete(msg.id);
    clearTimeout(pending.timer);

    if (msg.ok === true) {
      const parsed = channels[pending.channel].response.safeParse(msg.value);
      if (parsed.success) pending.resolve({ ok: true, value: parsed.data });
      else
        pending.resolve({
          ok: false,
          error: { code: 'internal', message: `The host's answer to "${pending.channel}" does not match the contract.` },
        });
    } else if (msg.ok === false && isWireError(msg.error)) {
      pending.resolve({ ok: false, error: msg.error });
    } else {
      pending.reject(new TransportError('bad-reply', `The host sent an unreadable answer to "${pending.channel}".`));
    }
  }
}

/** A NeurowardBridge backed by a WsConnection; methods are built from the contract's channel list. */
export function createWsBridge(connection: WsConnection): NeurowardBridge {
  const methods: Record<string, (request: unknown) => Promise<Envelope<unknown>>> = {};
  for (const name of CHANNEL_NAMES) {
    methods[name] = (request: unknown) => connection.request(name, request);
  }
  // Each method returns the envelope of its own channel's response (validated in handleMessage).
  const typed = methods as unknown as ChannelMethods;
  return {
    ...typed,
    on: (event, listener) => connection.on(event, listener),
  };
}

