/**
 * One bed on the board. Memoised and subscribed to its own bed only: an update for another bed
 * does not re-render it. Physiological state (NEWS2 band, alarm priority: solid colours) and
 * technical state (no data, device fault, impossible value: dashed blue-grey, values greyed out) are
 * drawn differently so that "the patient is unwell" never looks like "the monitor is not measuring".
 */
import { memo, useEffect, useRef } from 'react';
import type { BedView } from '../../../shared/ipc.js';
import { href } from '../../stores/route.js';
import { readBedAlarm, useWard } from '../../stores/ward.js';
import { drawSparklines } from './sparklines.js';
import { Spo2ScaleBadge } from './Spo2Scale.js';
import {
  RISK_LABEL,
  acvpuScore,
  bandScore,
  bedLabel,
  formatNumber,
  occupantLabel,
  scoreBand,
  spo2BandScore,
  technicalLabel,
  type BandScore,
  type ChartVital,
} from './vitals-display.js';

export const TILE_MIN_WIDTH = 218;
/** Fits head, patient line, two rows of values, the sparklines and the status line (checked by the ward e2e at 1280×800). */
export const TILE_HEIGHT = 206;
const PAD_X = 10;
const SPARK_HEIGHT = 58;

interface Props {
  bedKey: string;
  top: number;
  left: number;
  width: number;
}

export const BedTile = memo(function BedTile({ bedKey, top, left, width }: Props) {
  const bed = useWard((s) => s.beds[bedKey]);
  const alarm = readBedAlarm(useWard((s) => s.bedAlarm[bedKey]));
  if (!bed) return null;
  const band = scoreBand(bed.news2);
  const technical = bed.technical.map(technicalLabel);
  const noData = technical.some((t) => t.kind === 'no-data');
  const classes = ['bed-tile', `bed-tile--risk-${band}`];
  if (alarm) classes.push(`bed-tile--alarm-${alarm.priority}`);
  if (alarm?.unacknowledged) classes.push('bed-tile--unacked');
  if (technical.length) classes.push('bed-tile--technical');
  if (noData) classes.push('bed-tile--no-data');
  const label = [
    `Bed ${bedLabel(bed)}`,
    occupantLabel(bed),
    bed.news2 ? `NEWS2 ${bed.news2.aggregate}${bed.news2.complete ? '' : ' or more'}, ${RISK_LABEL[band]}` : 'no NEWS2 score',
    bed.spo2Scale === 2 ? 'SpO2 scale 2' : null,
    alarm ? `${alarm.priority} priority alarm${alarm.unacknowledged ? ', not acknowledged' : ''}` : null,
    ...technical.map((t) => t.detail),
  ]
    .filter(Boolean)
    .join('; ');

  return (
    <a
      className={classes.join(' ')}
      href={href(`/ward/${encodeURIComponent(bed.key)}`)}
      data-testid="bed-tile"
      data-bed={bed.key}
      data-news2-risk={bed.news2?.risk ?? 'none'}
      data-news2={bed.news2?.aggregate ?? ''}
      data-alarm={alarm?.priority ?? 'none'}
      data-spo2-scale={bed.spo2Scale}
      data-patient-id={bed.admission?.patientId}
      data-technical={bed.technical.join(' ') || undefined}
      aria-label={label}
      style={{ transform: `translate(${left}px, ${top}px)`, width, height: TILE_HEIGHT }}
    >
      <span className="bed-tile__flash" aria-hidden="true" />
      <div className="bed-tile__head">
        <span className="bed-tile__bed">
          <span className="bed-tile__ward">{bed.ward}</span> {bed.bed}
        </span>
        <Score news2={bed.news2} band={band} />
      </div>
      <div className="bed-tile__patient">
        <span className={`bed-tile__patient-ref${bed.admission ? ' bed-tile__patient-ref--admitted' : ''}`} data-testid="bed-tile-patient" title={occupantLabel(bed)}>
          {occupantLabel(bed)}
        </span>
        <Spo2ScaleBadge bed={bed} />
      </div>
      <Values latest={bed.latest} dim={noData} spo2Scale={bed.spo2Scale} />
      <Sparklines trend={bed.trend} dim={noData} width={width - 2 * PAD_X - 2} />
      <div className="bed-tile__status">
        {technical.length ? (
          technical.map((t) => (
            <span key={t.code} className={`tech-flag tech-flag--${t.kind}`} title={t.detail}>
              {t.label}
            </span>
          ))
        ) : alarm ? (
          <span className={`phys-flag phys-flag--${alarm.priority}`}>
            {alarm.unacknowledged ? `${alarm.priority} alarm` : `${alarm.priority} · acknowledged`}
          </span>
        ) : bed.news2 ? (
          <span className="muted">{band === 'zero' ? 'NEWS2 0' : `${RISK_LABEL[band]} risk`}</span>
        ) : (
          <span className="muted">No score</span>
        )}
      </div>
    </a>
  );
});

function Score({ news2, band }: { news2: BedView['news2']; band: string }) {
  return (
    <span className={`news2 news2--${band}`} title={news2 ? `NEWS2 ${news2.aggregate}: ${news2.response}` : 'No NEWS2 score yet'}>
      <span className="news2__label">NEWS2</span>
      <span className="news2__value">
        {news2 ? news2.aggregate : '–'}
        {news2 && !news2.complete ? <span className="news2__incomplete" title="Incomplete: not every parameter measured">+</span> : null}
      </span>
    </span>
  );
}

function Values({ latest, dim, spo2Scale }: { latest: BedView['latest']; dim: boolean; spo2Scale: BedView['spo2Scale'] }) {
  const v = latest;
  const cls = (vital: ChartVital | null, value: number | null | undefined, score?: BandScore | null) => {
    const s = score !== undefined ? score : vital ? bandScore(vital, value) : null;
    return `vital__value${dim ? ' vital__value--dim' : ''}${s ? ` vital__value--s${s}` : ''}`;
  };
  return (
    <div className="bed-tile__vitals">
      <div className="bed-tile__vrow">
        <span className="vital">
          <span className="vital__name">HR</span>
          <span className={cls('hr', v?.hr)}>{formatNumber(v?.hr)}</span>
        </span>
        <span className="vital">
          <span className="vital__name">SpO₂</span>
          <span className={cls(null, null, spo2BandScore(v?.spo2, spo2Scale, v?.o2))}>{formatNumber(v?.spo2)}</span>
          {v?.o2 ? (
            <span className="o2-marker" title="On supplemental oxygen">
              O₂
            </span>
          ) : null}
        </span>
        <span className="vital">
          <span className="vital__name">RR</span>
          <span className={cls('rr', v?.rr)}>{formatNumber(v?.rr)}</span>
        </span>
      </div>
      <div className="bed-tile__vrow">
        <span className="vital">
          <span className="vital__name">BP</span>
          <span className={cls('sbp', v?.sbp)}>
            {formatNumber(v?.sbp)}/{formatNumber(v?.dbp)}
          </span>
        </span>
        <span className="vital">
          <span className="vital__name">T</span>
          <span className={cls('tempC', v?.tempC)}>{formatNumber(v?.tempC, 1)}</span>
        </span>
        <span className="vital">
          <span className="vital__name">ACVPU</span>
          <span className={cls(null, null, acvpuScore(v?.acvpu ?? null))}>{v?.acvpu ?? '—'}</span>
        </span>
      </div>
    </div>
  );
}

function Sparklines({ trend, dim, width }: { trend: BedView['trend']; dim: boolean; width: number }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (ref.current) drawSparklines(ref.current, trend, dim, width, SPARK_HEIGHT);
  }, [trend, dim, width]);
  return <canvas ref={ref} className="bed-tile__spark" style={{ width, height: SPARK_HEIGHT }} aria-hidden="true" />;
}
