/**
 * The ward part of a patient's record (for the ward: 'vitals:read'): the current bed, the vitals of the
 * last hours across beds (`patients.vitals`: the readings stored under this patient, i.e. from their
 * admissions, and a monitor that named them), the alarm log (`alarms.log` by patient) and the stays in
 * beds (`adt.history`). Each read is audited by the host; a restricted record needs break-glass first.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { ResponseOf } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { errorMessage } from '../../api/errors.js';
import { Alert, formatDateTime } from '../../components/ui.js';
import { href } from '../../stores/route.js';
import { alarmConditionLabel, alarmEventLabel } from '../ward/BedAlarmLog.js';
import type { ChartSpec } from '../ward/chart.js';
import { VitalsChart } from '../ward/VitalsChart.js';
import { bandRanges, bedKeyLabel } from '../ward/vitals-display.js';

type Minute = ResponseOf<'patients.vitals'>['minutes'][number];
type Admissions = ResponseOf<'adt.history'>;
type AlarmEvent = ResponseOf<'alarms.log'>['events'][number];

const HOUR = 3_600_000;
const HOURS = [1, 6, 24, 72] as const;
const CHART_HEIGHT = 110;
const ALARM_HOURS = 72;

export function PatientWard({ patientId }: { patientId: string }) {
  const [hours, setHours] = useState<(typeof HOURS)[number]>(6);
  const [vitals, setVitals] = useState<ResponseOf<'patients.vitals'> | null>(null);
  const [admissions, setAdmissions] = useState<Admissions | null>(null);
  const [alarms, setAlarms] = useState<AlarmEvent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [loadedAt, setLoadedAt] = useState(() => Date.now());

  const load = useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      const [v, a, l] = await Promise.all([call('patients.vitals', { patientId, hours }), call('adt.history', { patientId }), call('alarms.log', { patientId, hours: ALARM_HOURS })]);
      setVitals(v);
      setAdmissions(a);
      setAlarms([...l.events].reverse());
      setLoadedAt(Date.now());
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  }, [patientId, hours]);

  useEffect(() => {
    void load();
  }, [load]);

  const current = admissions?.current ?? null;
  return (
    <section className="patient-ward" data-testid="patient-ward" aria-busy={loading} aria-labelledby="patient-ward-title">
      <div className="patient-ward__head">
        <h2 id="patient-ward-title">Ward</h2>
        <button type="button" className="btn btn--small btn--ghost" onClick={() => void load()} disabled={loading}>
          Reload
        </button>
      </div>
      {error ? <Alert tone="error">Could not read the ward data: {error}</Alert> : null}
      <p className="patient-ward__bed" data-testid="patient-current-bed" data-bed={current?.bedKey ?? ''}>
        {admissions === null ? (
          <span className="muted">…</span>
        ) : current ? (
          <>
            In bed{' '}
            <a href={href(`/ward/${encodeURIComponent(current.bedKey)}`)}>
              <strong>{bedKeyLabel(current.bedKey)}</strong>
            </a>{' '}
            <span className="muted small">
              since {formatDateTime(current.admittedAt)} (recorded by {current.admittedBy}
              {current.reason ? `: ${current.reason}` : ''})
            </span>
          </>
        ) : (
          <span className="muted">Not in a bed now.</span>
        )}
      </p>

      <div className="patient-ward__subhead">
        <h3>Vitals</h3>
        <div className="segmented" role="group" aria-label="Period">
          {HOURS.map((h) => (
            <button key={h} type="button" className={`btn btn--small${h === hours ? ' btn--primary' : ' btn--ghost'}`} aria-pressed={h === hours} onClick={() => setHours(h)}>
              {h} h
            </button>
          ))}
        </div>
      </div>
      {vitals ? <Trend minutes={vitals.minutes} from={Date.parse(vitals.since)} to={loadedAt} hours={hours} /> : null}
      {vitals?.truncated ? <p className="muted small">Only the newest readings are shown.</p> : null}

      <h3>Alarm log <span className="muted small">last {ALARM_HOURS} h, newest first</span></h3>
      <PatientAlarms events={alarms} />

      <h3>Stays in beds</h3>
      <StayTable admissions={admissions} />
    </section>
  );
}

function Trend({ minutes, from, to, hours }: { minutes: Minute[]; from: number; to: number; hours: number }) {
  const beds = useMemo(() => [...new Set(minutes.map((m) => m.bedKey))], [minutes]);
  const conflicts = minutes.reduce((n, m) => n + m.conflicts, 0);
  const specs = useMemo(() => {
    const tickMs = hours <= 1 ? 600_000 : hours <= 6 ? HOUR : hours <= 24 ? 4 * HOUR : 12 * HOUR;
    const pts = (pick: (m: Minute) => number | null): [number, number][] => {
      const out: [number, number][] = [];
      for (const m of minutes) {
        const v = pick(m);
        if (v !== null && Number.isFinite(v)) out.push([Date.parse(m.ts), v]);
      }
      return out;
    };
    const base = { from, to, tickMs };
    const list: { title: string; unit: string; spec: ChartSpec }[] = [
      { title: 'Heart rate', unit: '/min', spec: { ...base, series: [{ points: pts((m) => m.hr), colour: '#4cc38a', label: 'HR' }], range: [20, 180], bands: bandRanges('hr') } },
      // No band shading: the bands depend on the patient's SpO₂ scale, which the NEWS2 chart below applies.
      { title: 'SpO₂', unit: '%', spec: { ...base, series: [{ points: pts((m) => m.spo2), colour: '#5ad1e6', label: 'SpO₂' }], range: [80, 100], bands: [] } },
      { title: 'Respiration rate', unit: '/min', spec: { ...base, series: [{ points: pts((m) => m.rr), colour: '#e6d35a', label: 'RR' }], range: [0, 40], bands: bandRanges('rr') } },
      {
        title: 'Blood pressure',
        unit: 'mmHg',
        spec: {
          ...base,
          series: [
            { points: pts((m) => m.sbp), colour: '#e9a0a0', label: 'SBP' },
            { points: pts((m) => m.dbp), colour: '#a07070', label: 'DBP' },
          ],
          range: [40, 240],
          bands: bandRanges('sbp'),
        },
      },
      { title: 'Temperature', unit: '°C', spec: { ...base, series: [{ points: pts((m) => m.tempC), colour: '#c5a6f0', label: 'T' }], range: [33, 41], bands: bandRanges('tempC'), digits: 1 } },
      {
        title: 'NEWS2',
        unit: 'on the patient’s SpO₂ scale',
        spec: {
          ...base,
          series: [{ points: pts((m) => m.news2), colour: '#e6e9ee', label: 'NEWS2' }],
          range: [0, 16],
          bands: [
            [0.5, 4.5, 1],
            [4.5, 6.5, 2],
            [6.5, 20, 3],
          ],
          steps: true,
        },
      },
    ];
    return list;
  }, [minutes, from, to, hours]);
  if (!minutes.length) return <p className="muted" data-testid="patient-vitals" data-minutes="0">No readings for this patient in the last {hours} h.</p>;
  return (
    <div className="patient-vitals" data-testid="patient-vitals" data-minutes={minutes.length}>
      <p className="muted small">
        One point per minute (its latest reading), from bed{beds.length > 1 ? 's' : ''} {beds.map(bedKeyLabel).join(', ')}.
        {conflicts ? ` ${conflicts} reading${conflicts === 1 ? '' : 's'} came from a monitor that named another patient (kept under this admission, see the alarm log).` : ''}
      </p>
      <div className="bed-charts">
        {specs.map((c) => (
          <figure key={c.title} className="bed-chart">
            <figcaption>
              {c.title} <span className="muted small">{c.unit}</span>
            </figcaption>
            <VitalsChart height={CHART_HEIGHT} spec={c.spec} label={`${c.title}, last ${hours} h`} />
          </figure>
        ))}
      </div>
    </div>
  );
}


function PatientAlarms({ events }: { events: AlarmEvent[] | null }) {
  if (events === null) return <p className="muted small">…</p>;
  if (!events.length) return <p className="muted small" data-testid="patient-alarm-log" data-events="0">No alarm events.</p>;
  return (
    <div className="table-scroll" data-testid="patient-alarm-log" data-events={events.length}>
      <table className="table table--dense">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Bed</th>
            <th scope="col">Event</th>
            <th scope="col">Alarm</th>
            <th scope="col">By, reason</th>
            <th scope="col">NEWS2</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} data-testid="patient-alarm-row" data-event={e.event} title={e.message}>
              <td>{formatDateTime(e.at, true)}</td>
              <td>{bedKeyLabel(e.bedKey)}</td>
              <td>{alarmEventLabel(e)}</td>
              <td>
                <span className={`prio prio--${e.priority}`}>{e.priority}</span> {e.kind === 'technical' ? <span className="kind-tag">technical</span> : null} {alarmConditionLabel(e.condition)}
              </td>
              <td className="detail">{e.by ? `${e.by}: ${e.reason ?? ''}` : '—'}</td>
              <td>{e.news2 ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const END_LABEL = { transfer: 'transferred', discharge: 'discharged' } as const;

function StayTable({ admissions }: { admissions: Admissions | null }) {
  if (admissions === null) return <p className="muted small">…</p>;
  if (!admissions.admissions.length) return <p className="muted small" data-testid="patient-stays" data-stays="0">Never admitted to a bed here.</p>;
  return (
    <div className="table-scroll" data-testid="patient-stays" data-stays={admissions.admissions.length}>
      <table className="table table--dense">
        <thead>
          <tr>
            <th scope="col">Bed</th>
            <th scope="col">From</th>
            <th scope="col">Until</th>
            <th scope="col">Recorded by</th>
            <th scope="col">Notes</th>
          </tr>
        </thead>
        <tbody>
          {admissions.admissions.map((a) => (
            <tr key={a.id} data-testid="patient-stay" data-bed={a.bedKey} data-open={a.dischargedAt === null}>
              <td>{bedKeyLabel(a.bedKey)}</td>
              <td>{formatDateTime(a.admittedAt)}</td>
              <td>{a.dischargedAt ? `${formatDateTime(a.dischargedAt)} (${a.endKind ? END_LABEL[a.endKind] : 'ended'})` : <strong>now</strong>}</td>
              <td>
                {a.admittedBy}
                {a.dischargedBy ? ` · ${a.dischargedBy}` : ''}
              </td>
              <td className="detail">{[a.reason, a.endReason].filter(Boolean).join(' · ') || '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
