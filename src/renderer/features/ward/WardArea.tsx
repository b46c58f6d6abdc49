/**
 * The nurse's ward board: a tile per bed (latest vitals, NEWS2 band, an hour of trend, technical
 * state), the alarm list with acknowledge / pause, the audible alarm, and the monitoring link. A
 * bed opens in place of the board (#/ward/<bed key>) while the alarm list stays in view.
 */
import { useEffect, useRef } from 'react';
import { Alert, formatDateTime } from '../../components/ui.js';
import { useNow } from '../../shell/hooks.js';
import { useRoute } from '../../stores/route.js';
import { usePermission } from '../../stores/session.js';
import { fetchBoard, setBedSort, startWard, useWard, type BedSort } from '../../stores/ward.js';
import { AlarmList } from './AlarmList.js';
import { AlarmSound } from './AlarmSound.js';
import { ALARM_COUNT_LEGEND, alarmCounts } from './alarm-counts.js';
import { technicalLabel } from './vitals-display.js';
import { BedBoard } from './BedBoard.js';
import { BedDetail } from './BedDetail.js';
import { useFrameTimes } from './frame-times.js';

export function WardArea() {
  const segments = useRoute((s) => s.segments);
  const bedKey = segments[0] === 'ward' && segments[1] ? segments[1] : null;
  const canAct = usePermission('alarms:acknowledge');
  const status = useWard((s) => s.status);
  const error = useWard((s) => s.error);
  const linkUp = useWard((s) => s.link?.up ?? true);

  const root = useRef<HTMLDivElement>(null);

  useEffect(() => startWard(), []);
  useFrameTimes();
  // For tests and diagnostics: how many updates arrived, written without re-rendering the board.
  useEffect(
    () =>
      useWard.subscribe((s) => {
        if (root.current) root.current.dataset.updates = String(s.updates);
      }),
    [],
  );

  return (
    <div className={`ward${linkUp ? '' : ' ward--link-down'}`} data-testid="ward-board" data-status={status} ref={root}>
      <LinkBanner />
      <WardToolbar />
      {error && status !== 'ready' ? (
        <Alert tone="error">
          Could not load the ward board: {error}{' '}
          <button type="button" className="btn btn--small" onClick={() => void fetchBoard()}>
            Try again
          </button>
        </Alert>
      ) : null}
      <div className="ward__body">
        <section className="ward__main" aria-label={bedKey ? 'Bed' : 'Beds'}>
          {bedKey ? <BedDetail bedKey={bedKey} /> : <BoardOrEmpty />}
        </section>
        <aside className="ward__alarms" aria-label="Alarms">
          <AlarmList canAct={canAct} />
        </aside>
      </div>
    </div>
  );
}

function BoardOrEmpty() {
  const status = useWard((s) => s.status);
  const count = useWard((s) => s.order.length);
  if (status === 'ready' && count === 0) {
    return (
      <div className="ward__empty">
        <h2>No beds reporting yet</h2>
        <p className="muted">Beds appear as soon as their bedside monitors publish readings to the ward broker.</p>
      </div>
    );
  }
  if (status !== 'ready' && count === 0) return <p className="muted ward__empty">{status === 'error' ? 'The board is not available.' : 'Loading the ward…'}</p>;
  return <BedBoard />;
}

function LinkBanner() {
  const link = useWard((s) => s.link);
  if (!link || link.up) return null;
  return (
    <div className="link-banner" data-testid="link-banner" role="alert">
      <strong>Monitoring lost</strong>
      <span>
        No readings from the bedside monitors{link.since ? ` since ${formatDateTime(link.since, true)}` : ''} — the board below is not live. Check
        patients at the bedside.
      </span>
      <span className="link-banner__broker mono small">{link.broker}</span>
    </div>
  );
}

/**
 * Whether data arrives, apart from whether the broker link is up: a connected broker with every bed
 * silent is not "live" monitoring.
 */
function DataStatus({ beds }: { beds: number }) {
  const silent = useWard((s) => {
    let n = 0;
    for (const key of s.order) {
      const bed = s.beds[key];
      // Silent: its monitor stopped (no-data), or never sent anything (an admitted bed without a monitor).
      if (!bed || bed.latest === null || bed.technical.some((t) => technicalLabel(t).kind === 'no-data')) n += 1;
    }
    return n;
  });
  if (!beds) return null;
  const reporting = beds - silent;
  const tone = silent === 0 ? 'ok' : reporting === 0 ? 'none' : 'partial';
  return (
    <span className={`data-status data-status--${tone}`} data-testid="data-status" title="Beds whose monitor has sent readings and not gone silent (no-data)">
      {reporting === beds ? `All ${beds} beds reporting` : `${reporting} of ${beds} beds reporting · ${silent} no data`}
    </span>
  );
}

function WardToolbar() {
  const beds = useWard((s) => s.order.length);
  const alarms = useWard((s) => s.alarms);
  const now = useNow(1000);
  const counts = alarmCounts(alarms, now);
  const link = useWard((s) => s.link);
  const counters = useWard((s) => s.counters);
  const sort = useWard((s) => s.sort);
  const rejected = counters ? Object.values(counters.rejected).reduce((a, b) => a + b, 0) : 0;
  const rejectedDetail = counters
    ? Object.entries(counters.rejected)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')
    : '';
  return (
    <div className="ward__toolbar">
      <h1 className="ward__title">Ward monitor</h1>
      <span className="ward__stat">
        {beds} bed{beds === 1 ? '' : 's'}
      </span>
      {counts.unacknowledged ? (
        <span className={`ward__stat${counts.highUnacknowledged > counts.pausedUnacknowledged ? ' ward__stat--high' : ''}`} title={ALARM_COUNT_LEGEND} data-testid="ward-alarm-count">
          {counts.unacknowledged} unacknowledged ({counts.highUnacknowledged} high){counts.pausedUnacknowledged ? ` · ${counts.pausedUnacknowledged} paused` : ''}
        </span>
      ) : null}
      <span
        className={`link-status link-status--${link ? (link.up ? 'up' : 'down') : 'unknown'}`}
        data-testid="link-status"
        data-broker={link?.broker ?? ''}
        title={
          link
            ? `Broker ${link.broker}${link.since ? ` · since ${formatDateTime(link.since, true)}` : ''}${counters ? ` · ${counters.accepted} readings accepted, ${rejected} rejected${rejectedDetail ? ` (${rejectedDetail})` : ''}` : ''}`
            : ''
        }
      >
        <span className="link-status__dot" aria-hidden="true" />
        {link ? (link.up ? 'Broker connected' : 'Broker connection lost') : 'Connecting…'}
      </span>
      <DataStatus beds={beds} />
      <div className="ward__spacer" />
      <AlarmSound />
      <div className="ward__sort">
        <label htmlFor="ward-sort" className="visually-hidden">
          Order of beds
        </label>
        <select id="ward-sort" value={sort} onChange={(e) => setBedSort(e.target.value === 'news2' ? 'news2' : ('bed' satisfies BedSort))}>
          <option value="bed">By bed</option>
          <option value="news2">By NEWS2</option>
        </select>
      </div>
    </div>
  );
}
