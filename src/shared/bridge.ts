/**
 * The shape of `window.neuroward`: one method per channel of the contract, plus event subscription.
 * The Electron preload and the browser-mode WebSocket client both implement exactly this.
 */
import type { Envelope } from './errors.js';
import type { ChannelName, EventName, EventPayload, RequestOf, ResponseOf } from './ipc.js';

export type ChannelMethods = { [C in ChannelName]: (request: RequestOf<C>) => Promise<Envelope<ResponseOf<C>>> };

export interface NeurowardBridge extends ChannelMethods {
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void;
}

/** Electron IPC channel names are prefixed so that nothing else can collide with them. */
export const ELECTRON_INVOKE_PREFIX = 'neuroward:';
export const ELECTRON_EVENT_CHANNEL = 'neuroward:event';

/** WebSocket messages of the headless host. */
export interface WsRequest {
  id: number;
  channel: string;
  payload: unknown;
}
export type WsReply = ({ id: number } & Envelope<unknown>) | { event: EventName; payload: unknown };
export const WS_PATH = '/ipc';
