/**
 * Audible alarm signals in the manner of IEC 60601-1-8 (generated with WebAudio, no audio files):
 *
 *  - high priority: a burst of 10 pulses (3 + 2, pause, 3 + 2), repeating, higher pitch;
 *  - medium priority: a burst of 3 pulses, repeating, lower pitch and slower;
 *  - low priority: silent here (visual only).
 *
 * Pulses carry a fundamental and four harmonics (the standard asks for at least four within 15 dB)
 * so they are easy to localise, with short attack/release ramps so they do not click.
 *
 * One sounder per window. `setWanted` says which signal the alarm list calls for; it sounds only
 * while the AudioContext runs — browsers keep it suspended until a user gesture, which `unlock`
 * (called from a click or key press) provides. There is deliberately no mute: the only way to
 * silence is to acknowledge or pause an alarm through the audited channels.
 */
export type Tone = 'high' | 'medium' | 'none';
export type AudioState = 'running' | 'suspended' | 'unavailable';

export interface SoundSnapshot {
  audio: AudioState;
  /** What is sounding right now (none while the context is suspended). */
  playing: Tone;
  wanted: Tone;
}

interface Pattern {
  /** Pulse start offsets within a burst, seconds. */
  pulses: readonly number[];
  /** Pulse duration, seconds. */
  pulse: number;
  /** Burst start to next burst start, seconds. */
  period: number;
  frequency: number;
  gain: number;
}

// Pulse duration td = 150 ms, spacing x = 100 ms; 3–4 and 8–9 spaced 2x + td; 5–6 spaced 600 ms.
const HIGH: Pattern = {
  pulses: [0, 0.25, 0.5, 1.0, 1.25, 2.0, 2.25, 2.5, 3.0, 3.25],
  pulse: 0.15,
  period: 6.5,
  frequency: 880,
  gain: 0.3,
};
// Pulse duration 200 ms, spacing 200 ms.
const MEDIUM: Pattern = {
  pulses: [0, 0.4, 0.8],
  pulse: 0.2,
  period: 6.0,
  frequency: 523.25,
  gain: 0.22,
};
const PATTERNS: Record<Exclude<Tone, 'none'>, Pattern> = { high: HIGH, medium: MEDIUM };

type Ctor = typeof AudioContext;

function audioContextClass(): Ctor | null {
  const ctor: unknown = Reflect.get(window, 'AudioContext') ?? Reflect.get(window, 'webkitAudioContext');
  return typeof ctor === 'function' ? (ctor as Ctor) : null;
}

export class AlarmSounder {
  private ctx: AudioContext | null = null;
  private failed = false;
  private wave: PeriodicWave | null = null;
  private master: GainNode | null = null;
  private wanted: Tone = 'none';
  private current: Tone = 'none';
  private sources: OscillatorNode[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private snapshot: SoundSnapshot = { audio: 'suspended', playing: 'none', wanted: 'none' };
  private readonly listeners = new Set<() => void>();

  /** Creates the AudioContext (suspended until a gesture under the autoplay policy). */
  private context(): AudioContext | null {
    if (this.ctx) return this.ctx;
    if (this.failed) return null;
    const Ctor = audioContextClass();
    if (!Ctor) return null;
    try {
      const ctx = new Ctor();
      ctx.addEventListener('statechange', () => this.refresh());
      const harmonics = [0, 1, 0.6, 0.45, 0.35, 0.28];
      this.wave = ctx.createPeriodicWave(new Float32Array(harmonics.length), Float32Array.from(harmonics));
      this.master = ctx.createGain();
      this.master.gain.value = 1;
      this.master.connect(ctx.destination);
      this.ctx = ctx;
      return ctx;
    } catch {
      this.failed = true;
      return null;
    }
  }

  /** Tries to start audio; call from a user gesture. */
  unlock(): void {
    const ctx = this.context();
    if (ctx && ctx.state !== 'running') {
      ctx.resume().then(
        () => this.refresh(),
        () => this.refresh(),
      );
    }
    this.refresh();
  }

  setWanted(tone: Tone): void {
    this.context();
    if (tone === this.wanted) return;
    this.wanted = tone;
    this.refresh();
  }

  get state(): SoundSnapshot {
    return this.snapshot;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): SoundSnapshot => this.snapshot;

  /** Brings what sounds in line with what is wanted and whether audio may play. */
  private refresh(): void {
    const ctx = this.ctx;
    const audio: AudioState = ctx ? (ctx.state === 'running' ? 'running' : 'suspended') : this.failed || !audioContextClass() ? 'unavailable' : 'suspended';
    const target: Tone = audio === 'running' ? this.wanted : 'none';
    if (target !== this.current) {
      this.stopSources();
      this.current = target;
      if (target !== 'none') this.loop(target);
    }
    const next: SoundSnapshot = { audio, playing: this.current, wanted: this.wanted };
    const s = this.snapshot;
    if (s.audio !== next.audio || s.playing !== next.playing || s.wanted !== next.wanted) {
      this.snapshot = next;
      for (const l of this.listeners) l();
    }
  }

  private loop(tone: Exclude<Tone, 'none'>): void {
    const ctx = this.ctx;
    if (!ctx || this.current !== tone) return;
    const pattern = PATTERNS[tone];
    this.scheduleBurst(ctx, pattern, ctx.currentTime + 0.03);
    this.timer = setTimeout(() => {
      this.timer = null;
      // Drop finished sources before the next burst.
      this.sources = [];
      this.loop(tone);
    }, pattern.period * 1000);
  }

  private scheduleBurst(ctx: AudioContext, p: Pattern, start: number): void {
    if (!this.wave || !this.master) return;
    for (const offset of p.pulses) {
      const t0 = start + offset;
      const t1 = t0 + p.pulse;
      const osc = ctx.createOscillator();
      osc.setPeriodicWave(this.wave);
      osc.frequency.value = p.frequency;
      const env = ctx.createGain();
      env.gain.setValueAtTime(0, t0);
      env.gain.linearRampToValueAtTime(p.gain, t0 + 0.015);
      env.gain.setValueAtTime(p.gain, t1 - 0.02);
      env.gain.linearRampToValueAtTime(0, t1);
      osc.connect(env).connect(this.master);
      osc.start(t0);
      osc.stop(t1 + 0.01);
      osc.addEventListener('ended', () => env.disconnect());
      this.sources.push(osc);
    }
  }

  private stopSources(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const s of this.sources) {
      try {
        s.stop();
        s.disconnect();
      } catch {
        // Already stopped.
      }
    }
    this.sources = [];
  }
}

/** The window's sounder. */
export const alarmSounder = new AlarmSounder();

/** Which signal the alarms call for: unacknowledged, unpaused alarms of high, else medium priority. */
export function wantedTone(alarms: readonly { priority: string; acknowledged: unknown; pausedUntil: string | null }[], now: number): Tone {
  let tone: Tone = 'none';
  for (const a of alarms) {
    if (a.acknowledged) continue;
    if (a.pausedUntil && Date.parse(a.pausedUntil) > now) continue;
    if (a.priority === 'high') return 'high';
    if (a.priority === 'medium') tone = 'medium';
  }
  return tone;
}
