/**
 * The renderer's only way to the main process. Uses the Electron preload's `window.neuroward` when
 * present, otherwise a WebSocket bridge to the headless host. `call` unwraps the Envelope and throws
 * ApiError; listeners registered with `onApiError` see every failure (the stores use that to react to
 * expired or locked sessions).
 */
import type { ChannelMethods, NeurowardBridge } from '../../shared/bridge.js';
import type { Envelope } from '../../shared/errors.js';
import type { ChannelName, EventName, EventPayload, RequestOf, ResponseOf } from '../../shared/ipc.js';
import { ApiError, toApiError } from './errors.js';
import { WsConnection, createWsBridge, defaultWsUrl, type ConnectionInfo } from './ws-bridge.js';

export type Transport = { kind: 'electron'; bridge: NeurowardBridge } | { kind: 'ws'; bridge: NeurowardBridge; connection: WsConnection };

function preloadBridge(): NeurowardBridge | null {
  const candidate: unknown = Reflect.get(window, 'neuroward');
  if (typeof candidate !== 'object' || candidate === null) return null;
  const on: unknown = Reflect.get(candidate, 'on');
  const status: unknown = Reflect.get(candidate, 'app.status');
  if (typeof on !== 'function' || typeof status !== 'function') return null;
  // The preload implements NeurowardBridge (src/shared/bridge.ts); checked above for its key members.
  return candidate as NeurowardBridge;
}

let transport: Transport | null = null;

export function getTransport(): Transport {
  if (transport) return transport;
  const preload = preloadBridge();
  if (preload) {
    transport = { kind: 'electron', bridge: preload };
  } else {
    const connection = new WsConnection(defaultWsUrl());
    transport = { kind: 'ws', bridge: createWsBridge(connection), connection };
    connection.start();
  }
  return transport;
}

/** For tests: use a given bridge (e.g. a fake). */
export function setBridgeForTesting(bridge: NeurowardBridge): void {
  transport = { kind: 'electron', bridge };
}

type ErrorListener = (error: ApiError, channel: ChannelName) => void;
const errorListeners = new Set<ErrorListener>();
export function onApiError(listener: ErrorListener): () => void {
  errorListeners.add(listener);
  return () => errorListeners.delete(listener);
}

/** Calls one channel; resolves with its response or throws ApiError (code, message, issues). */
export async function call<C extends ChannelName>(channel: C, request: RequestOf<C>): Promise<ResponseOf<C>> {
  let envelope: Envelope<ResponseOf<C>>;
  try {
    const methods: ChannelMethods = getTransport().bridge;
    const method: ChannelMethods[C] = methods[channel];
    envelope = await method(request);
  } catch (error) {
    const apiError = toApiError(error, channel);
    notify(apiError, channel);
    throw apiError;
  }
  if (envelope.ok) return envelope.value;
  const apiError = ApiError.fromWire(envelope.error, channel);
  notify(apiError, channel);
  throw apiError;
}

function notify(error: ApiError, channel: ChannelName): void {
  for (const listener of errorListeners) {
    try {
      listener(error, channel);
    } catch (e) {
      console.error(e);
    }
  }
}

export function subscribe<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void {
  return getTransport().bridge.on(event, listener);
}

/** Connection state changes of the WebSocket transport; Electron IPC has none (always "open"). */
export function onConnection(listener: (info: ConnectionInfo, reconnected: boolean) => void): () => void {
  const t = getTransport();
  if (t.kind !== 'ws') {
    listener({ state: 'open', attempt: 0, retryAt: null, everOpened: true, launchKeyRefused: false }, false);
    return () => {};
  }
  listener(t.connection.connection, false);
  return t.connection.onState(listener);
}

export function retryConnectionNow(): void {
  const t = getTransport();
  if (t.kind === 'ws') t.connection.retryNow();
}

export type { ConnectionInfo };
