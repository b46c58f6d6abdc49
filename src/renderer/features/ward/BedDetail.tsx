/**
 * One bed: the last hour from `ward.bedHistory` as charts per vital (NEWS2 bands shaded), the
 * latest values, the NEWS2 response the score asks for, technical conditions, and the alarm log of
 * the last 24 h (BedAlarmLog). The history is read once when the bed opens (the read is audited) and
 * then extended with the live readings the board already receives; "Reload" reads it again.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { BedView, ResponseOf } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { errorMessage } from '../../api/errors.js';
import { Alert } from '../../components/ui.js';
import { useNow } from '../../shell/hooks.js';
import { href } from '../../stores/route.js';
import { useWard } from '../../stores/ward.js';
import type { ChartSpec } from './chart.js';
import { VitalsChart } from './VitalsChart.js';
import { BedAlarmLog } from './BedAlarmLog.js';
import { Spo2ScalePanel } from './Spo2Scale.js';
import { AdmissionPanel } from './AdmissionPanel.js';
import {
  RISK_LABEL,
  bandRanges,
  bedLabel,
  formatAge,
  formatNumber,
  occupantLabel,
  scoreBand,
  spo2BandRanges,
  technicalLabel,
  type BandScore,
} from './vitals-display.js';

type Reading = ResponseOf<'ward.bedHistory'>['readings'][number];
const HOUR = 3_600_000;
const CHART_HEIGHT = 118;
const NEWS2_BANDS: [number, number, BandScore][] = [
  [0.5, 4.5, 1],
  [4.5, 6.5, 2],
  [6.5, 20, 3],
];

export function BedDetail({ bedKey }: { bedKey: string }) {
  const bed = useWard((s) => s.beds[bedKey]);
  const status = useWard((s) => s.status);
  const [readings, setReadings] = useState<Reading[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const now = useNow(5_000);

  const load = useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      const r = await call('ward.bedHistory', { bedKey, minutes: 60 });
      setReadings([...r.readings].sort((a, b) => a.ts.localeCompare(b.ts)));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  }, [bedKey]);

  useEffect(() => {
    setReadings([]);
    void load();
  }, [load]);

  // Extend with live readings.
  const latest = bed?.latest ?? null;
  const news2 = bed?.news2?.aggregate ?? null;
  useEffect(() => {
    if (!latest) return;
    setReadings((prev) => {
      const last = prev[prev.length - 1];
      if (last && last.ts >= latest.ts) return prev;
      const cutoff = new Date(Date.parse(latest.ts) - HOUR).toISOString();
      const kept = prev.length && prev[0] && prev[0].ts < cutoff ? prev.filter((r) => r.ts >= cutoff) : prev;
      return [...kept, { ...latest, news2 }];
    });
  }, [latest, news2]);

  if (!bed) {
    return (
      <section className="bed-view" data-testid="bed-view">
        <a className="back-link" href={href('/ward')}>
          ← Board
        </a>
        {status === 'ready' ? <p>Bed {bedKey} is not on the board.</p> : <p className="muted">Loading…</p>}
      </section>
    );
  }

  return (
    <section className="bed-view" data-testid="bed-view" data-bed={bed.key} aria-labelledby="bed-view-title">
      <div className="bed-view__head">
        <a className="back-link" href={href('/ward')}>
          ← Board
        </a>
        <h1 id="bed-view-title" className="bed-view__title">
          Bed {bedLabel(bed)} <span className="muted bed-view__patient">{occupantLabel(bed)}</span>
        </h1>
        <button type="button" className="btn btn--small btn--ghost" onClick={() => void load()} disabled={loading}>
          Reload
        </button>
      </div>
      <AdmissionPanel bed={bed} />
      <BedSummary bed={bed} now={now} />
      <Spo2ScalePanel bed={bed} />
      {error ? <Alert tone="error">Could not read the history: {error}</Alert> : null}
      <Charts readings={readings} now={now} loading={loading} spo2Scale={bed.spo2Scale} onOxygen={bed.latest?.o2 === true} />
      <BedAlarmLog bedKey={bed.key} patientRef={bed.patientRef} />
    </section>
  );
}

function BedSummary({ bed, now }: { bed: BedView; now: number }) {
  const band = scoreBand(bed.news2);
  const v = bed.latest;
  const age = v ? now - Date.parse(v.ts) : null;
  return (
    <div className="bed-summary">
      <div className={`bed-summary__score news2--${band}`}>
        <span className="bed-summary__score-label">NEWS2</span>
        <span className="bed-summary__score-value">{bed.news2 ? bed.news2.aggregate : '–'}</span>
        <span className="bed-summary__score-risk">{RISK_LABEL[band]}</span>
      </div>
      <div className="bed-summary__text">
        {bed.news2 ? (
          <p className="bed-summary__response">
            {bed.news2.response}
            {!bed.news2.complete ? <span className="muted"> (incomplete: not every parameter measured — the true score may be higher)</span> : null}
          </p>
        ) : (
          <p className="muted">No NEWS2 score yet.</p>
        )}
        <dl className="bed-summary__vitals">
          <div>
            <dt>HR</dt>
            <dd>{formatNumber(v?.hr)} /min</dd>
          </div>
          <div>
            <dt>SpO₂</dt>
            <dd>
              {formatNumber(v?.spo2)} % {v?.o2 ? <span className="o2-marker">O₂</span> : v?.o2 === false ? <span className="muted small">air</span> : null}
            </dd>
          </div>
          <div>
            <dt>RR</dt>
            <dd>{formatNumber(v?.rr)} /min</dd>
          </div>
          <div>
            <dt>BP</dt>
            <dd>
              {formatNumber(v?.sbp)}/{formatNumber(v?.dbp)} mmHg
            </dd>
          </div>
          <div>
            <dt>Temp</dt>
            <dd>{formatNumber(v?.tempC, 1)} °C</dd>
          </div>
          <div>
            <dt>ACVPU</dt>
            <dd>{v?.acvpu ?? '—'}</dd>
          </div>
        </dl>
        <p className="muted small">
          {age !== null ? `Last reading ${formatAge(age)} ago` : 'No reading yet'}
          {bed.technical.length ? ' · ' : ''}
          {bed.technical.map((t) => {
            const l = technicalLabel(t);
            return (
              <span key={t} className={`tech-flag tech-flag--${l.kind}`}>
                {l.detail}
              </span>
            );
          })}
        </p>
      </div>
    </div>
  );
}

function Charts({ readings, now, loading, spo2Scale, onOxygen }: { readings: Reading[]; now: number; loading: boolean; spo2Scale: BedView['spo2Scale']; onOxygen: boolean }) {
  const to = now;
  const from = now - HOUR;
  const specs = useMemo(() => {
    const pts = (pick: (r: Reading) => number | null | undefined): [number, number][] => {
      const out: [number, number][] = [];
      for (const r of readings) {
        const v = pick(r);
        if (v !== null && v !== undefined && Number.isFinite(v)) out.push([Date.parse(r.ts), v]);
      }
      return out;
    };
    const list: { title: string; unit: string; spec: ChartSpec }[] = [
      { title: 'Heart rate', unit: '/min', spec: { series: [{ points: pts((r) => r.hr), colour: '#4cc38a', label: 'HR' }], range: [20, 180], bands: bandRanges('hr'), from, to } },
      {
        title: 'SpO₂',
        unit: `% (NEWS2 scale ${spo2Scale})`,
        spec: { series: [{ points: pts((r) => r.spo2), colour: '#5ad1e6', label: 'SpO₂' }], range: [80, 100], bands: spo2BandRanges(spo2Scale, onOxygen), from, to },
      },
      { title: 'Respiration rate', unit: '/min', spec: { series: [{ points: pts((r) => r.rr), colour: '#e6d35a', label: 'RR' }], range: [0, 40], bands: bandRanges('rr'), from, to } },
      {
        title: 'Blood pressure',
        unit: 'mmHg (systolic, diastolic)',
        spec: {
          series: [
            { points: pts((r) => r.sbp), colour: '#e9a0a0', label: 'SBP' },
            { points: pts((r) => r.dbp), colour: '#a07070', label: 'DBP' },
          ],
          range: [40, 240],
          bands: bandRanges('sbp'),
          from,
          to,
        },
      },
      { title: 'Temperature', unit: '°C', spec: { series: [{ points: pts((r) => r.tempC), colour: '#c5a6f0', label: 'T' }], range: [33, 41], bands: bandRanges('tempC'), from, to, digits: 1 } },
      { title: 'NEWS2', unit: 'aggregate score', spec: { series: [{ points: pts((r) => r.news2), colour: '#e6e9ee', label: 'NEWS2' }], range: [0, 16], bands: NEWS2_BANDS, from, to, steps: true } },
    ];
    return list;
  }, [readings, from, to, spo2Scale, onOxygen]);

  return (
    <div className="bed-charts" aria-busy={loading} data-readings={readings.length}>
      {specs.map((c) => (
        <figure key={c.title} className="bed-chart">
          <figcaption>
            {c.title} <span className="muted small">{c.unit}</span>
          </figcaption>
          <VitalsChart height={CHART_HEIGHT} spec={c.spec} label={`${c.title}, last hour`} />
        </figure>
      ))}
      {!loading && !readings.length ? <p className="muted">No readings in the last hour.</p> : null}
    </div>
  );
}

