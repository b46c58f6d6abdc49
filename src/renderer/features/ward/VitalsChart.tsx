/** One vital's chart canvas, as wide as its box (re-drawn when the box resizes): the bed view and the patient record. */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { drawChart, type ChartSpec } from './chart.js';

export function VitalsChart({ spec, label, height }: { spec: ChartSpec; label: string; height: number }) {
  const box = useRef<HTMLDivElement>(null);
  const ref = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setWidth(el.clientWidth);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => {
    if (ref.current && width > 0) drawChart(ref.current, width, height, spec);
  }, [spec, width, height]);
  return (
    <div className="bed-chart__plot" ref={box}>
      <canvas ref={ref} className="bed-chart__canvas" style={{ width: width || undefined, height }} role="img" aria-label={label} />
    </div>
  );
}
