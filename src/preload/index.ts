/**
 * The sandboxed preload: exposes `window.neuroward` (one method per channel of the contract, plus `on`)
 * and nothing else. The page never sees ipcRenderer, IpcRendererEvent objects or any Electron/Node API.
 *
 * Bundled by scripts/build.mjs to dist/preload/index.cjs: a single CommonJS file whose only require is
 * 'electron', as a sandboxed preload must be.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { ELECTRON_EVENT_CHANNEL, ELECTRON_INVOKE_PREFIX, type ChannelMethods, type NeurowardBridge } from '../shared/bridge.js';
import { CHANNEL_NAMES, EVENT_NAMES, type EventName, type EventPayload } from '../shared/ipc.js';

type Listener = (payload: unknown) => void;

const eventNames: ReadonlySet<string> = new Set<string>(EVENT_NAMES);
const listeners = new Map<EventName, Set<Listener>>();

function isEventName(value: unknown): value is EventName {
  return typeof value === 'string' && eventNames.has(value);
}

// One subscription to the event channel; the page's listeners get the payload only.
ipcRenderer.on(ELECTRON_EVENT_CHANNEL, (_event: IpcRendererEvent, message: unknown) => {
  if (typeof message !== 'object' || message === null) return;
  const { event, payload } = message as { event?: unknown; payload?: unknown };
  if (!isEventName(event)) return;
  for (const listener of [...(listeners.get(event) ?? [])]) {
    try {
      listener(payload);
    } catch (error) {
      console.error(`neuroward: a listener for ${event} threw`, error);
    }
  }
});

const methods: Record<string, (request: unknown) => Promise<unknown>> = {};
for (const name of CHANNEL_NAMES) {
  const channel = `${ELECTRON_INVOKE_PREFIX}${name}`;
  // Exactly one argument crosses: whatever else the page passes is dropped.
  methods[name] = (request: unknown) => ipcRenderer.invoke(channel, request);
}

const bridge: NeurowardBridge = {
  ...(methods as ChannelMethods),
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void {
    if (!isEventName(event)) throw new TypeError(`neuroward.on: unknown event ${String(event)}`);
    if (typeof listener !== 'function') throw new TypeError('neuroward.on: listener must be a function');
    const wrapped: Listener = (payload) => listener(payload as EventPayload<E>);
    let set = listeners.get(event);
    if (!set) {
      set = new Set();
      listeners.set(event, set);
    }
    set.add(wrapped);
    return () => {
      listeners.get(event)?.delete(wrapped);
    };
  },
};

contextBridge.exposeInMainWorld('neuroward', bridge);
