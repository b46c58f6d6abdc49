/** The overlay's key: a colour bar with min/max and units, or the colour-FA direction key. */
import { useEffect, useRef } from 'react';
import { colormapLut } from './colormaps.js';
import type { OverlayDef } from './overlays.js';
import type { LoadedVolume } from './volumes.js';

function formatValue(v: number, digits: number): string {
  return v.toFixed(digits);
}

export function Legend({ overlay, volume }: { overlay: OverlayDef; volume: LoadedVolume | null }) {
  const barRef = useRef<HTMLCanvasElement>(null);
  const style = overlay.style;

  useEffect(() => {
    const canvas = barRef.current;
    if (!canvas || style.kind !== 'scalar') return;
    const lut = colormapLut(style.colormap);
    canvas.width = 256;
    canvas.height = 1;
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    const image = ctx.createImageData(256, 1);
    for (let n = 0; n < 256; n++) {
      image.data[n * 4] = lut[n * 3]!;
      image.data[n * 4 + 1] = lut[n * 3 + 1]!;
      image.data[n * 4 + 2] = lut[n * 3 + 2]!;
      image.data[n * 4 + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
  }, [style]);

  if (overlay.legend.kind === 'rgb') {
    return (
      <figure className="legend" data-testid="overlay-legend" aria-label={`${overlay.label} legend`} title={overlay.description}>
        <figcaption className="legend__title">{overlay.label}</figcaption>
        <ul className="legend__rgb">
          {overlay.legend.channels.map((c) => (
            <li key={c.colour} title={c.title}>
              <span className={`legend__swatch legend__swatch--${c.colour}`} aria-hidden="true" />
              {c.label}
            </li>
          ))}
        </ul>
        <span className="legend__note muted">{overlay.legend.note}</span>
      </figure>
    );
  }

  if (overlay.legend.kind === 'categories') {
    return (
      <figure className="legend" data-testid="overlay-legend" aria-label={`${overlay.label} legend`} title={overlay.description}>
        <figcaption className="legend__title">{overlay.label}</figcaption>
        <ul className="legend__categories">
          {overlay.legend.items.map((item) => (
            <li key={item.label}>
              <svg className="legend__dot" viewBox="0 0 10 10" aria-hidden="true">
                <rect width="10" height="10" fill={item.colour} />
              </svg>
              {item.label}
            </li>
          ))}
        </ul>
        <span className="legend__note muted">{overlay.legend.note}</span>
      </figure>
    );
  }

  const legend = overlay.legend;
  const [lo, hi] = volume && style.kind === 'scalar' ? style.range(volume) : [0, 1];
  const k = volume ? legend.displayScale(volume) : 1;
  const min = formatValue(lo * k, legend.digits);
  const max = formatValue(hi * k, legend.digits);
  return (
    <figure className="legend" data-testid="overlay-legend" aria-label={`${overlay.label} legend: ${min} to ${max} ${legend.units}`}>
      <figcaption className="legend__title" title={overlay.description}>
        {overlay.label}
      </figcaption>
      <div className="legend__scale">
        <span className="legend__min" data-testid="legend-min">
          {min}
        </span>
        <canvas ref={barRef} className="legend__bar" aria-hidden="true" />
        <span className="legend__max" data-testid="legend-max">
          {max}
        </span>
        <span className="legend__units">{legend.units}</span>
      </div>
    </figure>
  );
}
