/**
 * The day list of one practitioner, room or device (src/main/crm/): its appointments with the day's
 * flow (arrived → in the room → done; no-show; cancel) and its free times of the chosen length; a free
 * time opens the booking dialog, which holds the time for the receptionist while she picks the
 * patient, then books it. Times are shown on the resource's own clock (its time zone). Roles that
 * write the schedule ('schedule:write') also add resources and their opening hours.
 */
import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import type { AppointmentStatus, AppointmentView, FreeSlot, PatientSummary, RequestOf, ScheduleResource } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Badge, Dialog, ErrorAlert, FormActions, SelectField, TextField, useAction } from '../../components/ui.js';
import { usePermission } from '../../stores/session.js';

const HOUR = 3_600_000;
/** A day on a clock at most 14 h from UTC lies within this range around the UTC day. */
const ZONE_MARGIN = 14 * HOUR;
const LENGTHS = ['15', '30', '45', '60'];
const DAYS = [
  ['MO', 'Mon'],
  ['TU', 'Tue'],
  ['WE', 'Wed'],
  ['TH', 'Thu'],
  ['FR', 'Fri'],
  ['SA', 'Sat'],
  ['SU', 'Sun'],
] as const;
/** The day's flow: what each status can go to from this list (the host enforces the full lifecycle). */
type SettableStatus = RequestOf<'schedule.setStatus'>['status'];
const FLOW: Partial<Record<AppointmentStatus, { status: SettableStatus; label: string }[]>> = {
  booked: [
    { status: 'arrived', label: 'Arrived' },
    { status: 'noshow', label: 'No-show' },
    { status: 'cancelled', label: 'Cancel' },
  ],
  arrived: [{ status: 'checked-in', label: 'In room' }],
  'checked-in': [{ status: 'fulfilled', label: 'Done' }],
};
const STATUS_LABEL: Record<AppointmentStatus, string> = {
  proposed: 'proposed',
  pending: 'pending',
  booked: 'booked',
  arrived: 'arrived',
  'checked-in': 'in room',
  fulfilled: 'done',
  cancelled: 'cancelled',
  noshow: 'no-show',
  'entered-in-error': 'entered in error',
  waitlist: 'waitlist',
};

const dayIn = (iso: string | number, timeZone: string) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(iso));
const timeIn = (iso: string, timeZone: string) => new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
const dayRange = (day: string) => {
  const midnight = Date.parse(`${day}T00:00:00Z`);
  return { from: new Date(midnight - ZONE_MARGIN).toISOString(), to: new Date(midnight + 24 * HOUR + ZONE_MARGIN).toISOString() };
};
const shiftDay = (day: string, by: number) => new Date(Date.parse(`${day}T12:00:00Z`) + by * 24 * HOUR).toISOString().slice(0, 10);

export function ScheduleArea() {
  const canWrite = usePermission('schedule:write');
  const [resources, setResources] = useState<ScheduleResource[] | null>(null);
  const [resourceId, setResourceId] = useState('');
  const [day, setDay] = useState(() => new Date().toISOString().slice(0, 10));
  const [length, setLength] = useState('30');
  const [appointments, setAppointments] = useState<AppointmentView[]>([]);
  const [slots, setSlots] = useState<FreeSlot[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const [dialog, setDialog] = useState<{ kind: 'book'; slot: FreeSlot } | { kind: 'resource' } | { kind: 'hours' } | null>(null);
  const resource = resources?.find((r) => r.id === resourceId) ?? null;

  const loadResources = useCallback(async (select?: string) => {
    try {
      const { resources: list } = await call('schedule.resources', {});
      setResources(list);
      setResourceId((current) => select ?? (list.some((r) => r.id === current) ? current : (list[0]?.id ?? '')));
    } catch (e) {
      setError(toApiError(e));
    }
  }, []);

  const loadDay = useCallback(async () => {
    if (!resource) return;
    const range = dayRange(day);
    try {
      const [list, free] = await Promise.all([
        call('schedule.appointments', { ...range, resourceId: resource.id }),
        call('schedule.findSlots', { resources: [[resource.id]], durationMinutes: Number(length), ...range, limit: 500 }),
      ]);
      setAppointments(list.appointments.filter((a) => a.start && dayIn(a.start, resource.timeZone) === day));
      setSlots(free.slots.filter((s) => dayIn(s.start, resource.timeZone) === day));
      setError(null);
    } catch (e) {
      setError(toApiError(e));
    }
  }, [resource, day, length]);

  useEffect(() => {
    void loadResources();
  }, [loadResources]);
  useEffect(() => {
    void loadDay();
  }, [loadDay]);

  const options = useMemo(() => (resources ?? []).map((r) => ({ value: r.id, label: `${r.name} (${r.kind === 'practitioner' ? (r.role ?? 'practitioner') : r.kind})` })), [resources]);

  return (
    <section className="schedule" data-testid="area-schedule" aria-label="Schedule">
      <div className="toolbar schedule__toolbar">
        {options.length ? <SelectField label="Practitioner, room or device" value={resourceId} onChange={setResourceId} options={options} /> : null}
        <TextField label="Day" type="date" value={day} onChange={(v) => v && setDay(v)} />
        <div className="schedule__step">
          <button type="button" className="btn btn--small" onClick={() => setDay((d) => shiftDay(d, -1))} aria-label="Previous day">
            ←
          </button>
          <button type="button" className="btn btn--small" onClick={() => setDay((d) => shiftDay(d, 1))} aria-label="Next day">
            →
          </button>
        </div>
        <SelectField label="Length (min)" value={length} onChange={setLength} options={LENGTHS.map((l) => ({ value: l, label: l }))} />
        {canWrite ? (
          <div className="schedule__admin">
            <button type="button" className="btn btn--small" onClick={() => setDialog({ kind: 'resource' })}>
              New resource…
            </button>
            {resource ? (
              <button type="button" className="btn btn--small" onClick={() => setDialog({ kind: 'hours' })}>
                Opening hours…
              </button>
            ) : null}
          </div>
        ) : null}
      </div>
      <ErrorAlert error={error} />
      {resources && !resources.length ? <p className="muted">No practitioner, room or device can be booked yet{canWrite ? ': add one with “New resource…”.' : '.'}</p> : null}
      {resource ? (
        <div className="schedule__columns">
          <section className="panel" aria-label="Appointments" data-testid="schedule-appointments" data-count={appointments.length}>
            <h2 className="subhead">
              {resource.name} · {day}
            </h2>
            <p className="muted small">Times on the clock of {resource.timeZone}.</p>
            {!resource.availability.length ? <p className="muted small">No opening hours yet.</p> : null}
            {appointments.length ? (
              <ul className="appointments">
                {appointments.map((a) => (
                  <AppointmentRow key={a.id} appointment={a} timeZone={resource.timeZone} canWrite={canWrite} onChanged={() => void loadDay()} />
                ))}
              </ul>
            ) : (
              <p className="muted small empty-row">No appointments this day.</p>
            )}
          </section>
          <section className="panel" aria-label="Free times" data-testid="schedule-slots" data-count={slots.length}>
            <h2 className="subhead">Free times ({length} min)</h2>
            {slots.length ? (
              <div className="free-slots">
                {slots.map((s) => (
                  <button key={s.start} type="button" className="free-slot" data-testid="free-slot" data-start={s.start} disabled={!canWrite} onClick={() => setDialog({ kind: 'book', slot: s })}>
                    {timeIn(s.start, resource.timeZone)}
                  </button>
                ))}
              </div>
            ) : (
              <p className="muted small empty-row">No free time of {length} minutes this day.</p>
            )}
          </section>
        </div>
      ) : null}
      <Dialog title="Book an appointment" open={dialog?.kind === 'book'} onClose={() => setDialog(null)} testId="book-dialog">
        {dialog?.kind === 'book' && resource ? (
          <BookForm
            slot={dialog.slot}
            resource={resource}
            onDone={(booked) => {
              setDialog(null);
              if (booked) void loadDay();
            }}
          />
        ) : null}
      </Dialog>
      <Dialog title="New practitioner, room or device" open={dialog?.kind === 'resource'} onClose={() => setDialog(null)} testId="resource-dialog">
        {dialog?.kind === 'resource' ? (
          <ResourceForm
            onDone={(created) => {
              setDialog(null);
              if (created) void loadResources(created.id);
            }}
          />
        ) : null}
      </Dialog>
      <Dialog title={`Opening hours of ${resource?.name ?? ''}`} open={dialog?.kind === 'hours'} onClose={() => setDialog(null)} testId="hours-dialog">
        {dialog?.kind === 'hours' && resource ? (
          <HoursForm
            resource={resource}
            day={day}
            onDone={(changed) => {
              setDialog(null);
              if (changed) void loadResources(resource.id);
            }}
          />
        ) : null}
      </Dialog>
    </section>
  );
}

function AppointmentRow({ appointment: a, timeZone, canWrite, onChanged }: { appointment: AppointmentView; timeZone: string; canWrite: boolean; onChanged: () => void }) {
  const { run, busy, error } = useAction(async (status: SettableStatus) => {
    await call('schedule.setStatus', { appointmentId: a.id, version: a.version, status });
    onChanged();
  });
  const ended = a.status === 'cancelled' || a.status === 'entered-in-error' || a.status === 'noshow';
  return (
    <li className={`appointment${ended ? ' appointment--ended' : ''}`} data-testid="appointment-row" data-id={a.id} data-status={a.status}>
      <span className="appointment__time mono">
        {timeIn(a.start!, timeZone)}–{timeIn(a.end!, timeZone)}
      </span>
      <span className="appointment__who">
        <strong>{a.patientName ?? 'Restricted record'}</strong> <span className="mono small">{a.mrn}</span>
        <span className="muted small"> · {a.service}</span>
      </span>
      <Badge tone={a.status === 'fulfilled' ? 'success' : ended ? 'neutral' : 'accent'}>{STATUS_LABEL[a.status]}</Badge>
      {a.overbookedReason ? <Badge tone="warning" title={a.overbookedReason}>overbooked</Badge> : null}
      {canWrite ? (
        <span className="appointment__actions">
          {(FLOW[a.status] ?? []).map((next) => (
            <button key={next.status} type="button" className="btn btn--small" disabled={busy} onClick={() => void run(next.status)}>
              {next.label}
            </button>
          ))}
        </span>
      ) : null}
      {error ? <ErrorAlert error={error} /> : null}
    </li>
  );
}

/** Pick the patient (the time is held meanwhile), say what for, book. */
function BookForm({ slot, resource, onDone }: { slot: FreeSlot; resource: ScheduleResource; onDone: (booked: boolean) => void }) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<PatientSummary[] | null>(null);
  const [picked, setPicked] = useState<PatientSummary | null>(null);
  const [hold, setHold] = useState<{ holdId: string; expiresAt: string } | null>(null);
  const [service, setService] = useState('Follow-up MRI');
  const [note, setNote] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      call('patients.list', { query: query.trim() || undefined, limit: 20 })
        .then((r) => live && setResults(r.patients))
        .catch((e: unknown) => live && setError(toApiError(e)));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [query]);

  const pick = async (p: PatientSummary) => {
    setPicked(p);
    setError(null);
    try {
      setHold(await call('schedule.hold', { patientId: p.id, start: slot.start, end: slot.end, resourceIds: slot.resourceIds }));
    } catch (e) {
      setHold(null);
      setError(toApiError(e));
    }
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!picked) return;
    setBusy(true);
    setError(null);
    try {
      await call('schedule.book', { patientId: picked.id, service: service.trim(), ...(note.trim() ? { note: note.trim() } : {}), start: slot.start, end: slot.end, resourceIds: slot.resourceIds, ...(hold ? { holdId: hold.holdId } : {}) });
      onDone(true);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  const fieldErrors = error?.fieldErrors() ?? {};
  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate data-testid="book-form">
      <p>
        <strong>
          {timeIn(slot.start, resource.timeZone)}–{timeIn(slot.end, resource.timeZone)}
        </strong>{' '}
        on {dayIn(slot.start, resource.timeZone)} with {resource.name}
      </p>
      <TextField label="Find the patient" value={query} onChange={setQuery} hint="Name or MRN." autoFocus />
      <div className="admit-results" role="listbox" aria-label="Patients" data-testid="book-results">
        {results === null ? <p className="muted small">Searching…</p> : null}
        {results && !results.length ? <p className="muted small">No patient found.</p> : null}
        {results?.map((p) => (
          <button type="button" key={p.id} role="option" aria-selected={picked?.id === p.id} className={`admit-result${picked?.id === p.id ? ' admit-result--picked' : ''}`} data-testid="book-patient" onClick={() => void pick(p)}>
            <span>{p.name ? `${p.name} · ${p.mrn}` : `Restricted record · ${p.mrn}`}</span>
            {p.synthetic ? <Badge tone="synthetic">SYNTHETIC</Badge> : null}
          </button>
        ))}
      </div>
      {hold ? (
        <p className="muted small" data-testid="book-held">
          Held for you until {timeIn(hold.expiresAt, resource.timeZone)}: nobody else can book this time meanwhile.
        </p>
      ) : null}
      <TextField label="What for" value={service} onChange={setService} error={fieldErrors.service} />
      <TextField label="Note (optional)" value={note} onChange={setNote} error={fieldErrors.note} />
      <ErrorAlert error={error} shownFields={['service', 'note']} />
      <FormActions busy={busy} blocked={!picked} confirm={picked ? `Book for ${picked.name ?? picked.mrn}` : 'Pick a patient'} onCancel={() => onDone(false)} />
    </form>
  );
}

function ResourceForm({ onDone }: { onDone: (created: ScheduleResource | null) => void }) {
  const [kind, setKind] = useState<'practitioner' | 'room' | 'device'>('practitioner');
  const [name, setName] = useState('');
  const [role, setRole] = useState('');
  const [timeZone, setTimeZone] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
  const [slotMinutes, setSlotMinutes] = useState('15');
  const [bufferMinutes, setBufferMinutes] = useState('0');
  const { run, busy, error } = useAction(async () => {
    onDone(
      await call('schedule.createResource', {
        kind,
        name: name.trim(),
        ...(kind === 'practitioner' && role.trim() ? { role: role.trim() } : {}),
        timeZone: timeZone.trim(),
        slotMinutes: Number(slotMinutes),
        bufferMinutes: Number(bufferMinutes),
      }),
    );
  });
  const fieldErrors = error?.fieldErrors() ?? {};
  return (
    <form
      className="form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void run();
      }}
    >
      <SelectField
        label="Kind"
        value={kind}
        onChange={(v) => setKind(v as typeof kind)}
        options={[
          { value: 'practitioner', label: 'Practitioner' },
          { value: 'room', label: 'Room' },
          { value: 'device', label: 'Device (e.g. MRI scanner)' },
        ]}
      />
      <TextField label="Name" value={name} onChange={setName} error={fieldErrors.name} autoFocus />
      {kind === 'practitioner' ? <TextField label="Role" value={role} onChange={setRole} hint="e.g. Neuroradiologist" /> : null}
      <TextField label="Time zone" value={timeZone} onChange={setTimeZone} hint="IANA name: the opening hours are on this clock." error={fieldErrors.timeZone} />
      <SelectField label="Slot grid (min)" value={slotMinutes} onChange={setSlotMinutes} options={['5', '10', '15', '20', '30', '60'].map((v) => ({ value: v, label: v }))} />
      <SelectField label="Buffer between appointments (min)" value={bufferMinutes} onChange={setBufferMinutes} options={['0', '5', '10', '15', '30'].map((v) => ({ value: v, label: v }))} />
      <ErrorAlert error={error} shownFields={['name', 'timeZone']} />
      <FormActions busy={busy} confirm="Create" onCancel={() => onDone(null)} />
    </form>
  );
}

function HoursForm({ resource, day, onDone }: { resource: ScheduleResource; day: string; onDone: (changed: boolean) => void }) {
  const [days, setDays] = useState<string[]>(['MO', 'TU', 'WE', 'TH', 'FR']);
  const [startTime, setStartTime] = useState('09:00');
  const [endTime, setEndTime] = useState('17:00');
  const [validFrom, setValidFrom] = useState(day);
  const { run, busy, error } = useAction(async () => {
    await call('schedule.addAvailability', { resourceId: resource.id, rrule: `FREQ=WEEKLY;BYDAY=${days.join(',')}`, startTime, endTime, validFrom });
    onDone(true);
  });
  return (
    <form
      className="form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void run();
      }}
    >
      {resource.availability.length ? (
        <ul className="muted small">
          {resource.availability.map((t) => (
            <li key={t.id}>
              {t.rrule} {t.startTime}–{t.endTime} from {t.validFrom}
              {t.validUntil ? ` to ${t.validUntil}` : ''}
            </li>
          ))}
        </ul>
      ) : null}
      <fieldset className="weekdays">
        <legend>Every week on</legend>
        {DAYS.map(([code, label]) => (
          <label key={code} className="weekday">
            <input type="checkbox" checked={days.includes(code)} onChange={(e) => setDays((d) => (e.target.checked ? [...d, code] : d.filter((x) => x !== code)))} /> {label}
          </label>
        ))}
      </fieldset>
      <TextField label="Opens" type="time" value={startTime} onChange={setStartTime} />
      <TextField label="Closes" type="time" value={endTime} onChange={setEndTime} />
      <TextField label="From" type="date" value={validFrom} onChange={setValidFrom} hint={`Times on ${resource.name}'s clock (${resource.timeZone}).`} />
      <ErrorAlert error={error} />
      <FormActions busy={busy} blocked={!days.length} confirm="Add hours" onCancel={() => onDone(false)} />
    </form>
  );
}
