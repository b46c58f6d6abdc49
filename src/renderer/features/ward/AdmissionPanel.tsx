/**
 * The bed view's patient line: who is admitted to the bed (name and MRN; a restricted record shows its
 * MRN only without break-glass), since when and recorded by whom, and for nurses and physicians
 * ('adt:write') the ADT actions: Admit (search a patient, confirm), Transfer (pick a free bed, confirm),
 * Discharge (confirm), each with an optional note. The host audits each action and queues the FHIR
 * Encounter; from the admission on, the bed's readings are the patient's.
 */
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import type { AdmissionView, BedView, PatientSummary } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Badge, Dialog, ErrorAlert, FormActions, SelectField, TextField, formatDateTime } from '../../components/ui.js';
import { href } from '../../stores/route.js';
import { usePermission } from '../../stores/session.js';
import { admitPatient, dischargePatient, transferPatient, useWard } from '../../stores/ward.js';
import { bedKeyLabel, patientLabel } from './vitals-display.js';

type Action = 'admit' | 'transfer' | 'discharge';
const BED_KEY = /^[A-Za-z0-9_-]{1,32}\/[A-Za-z0-9_-]{1,32}$/;

export function AdmissionPanel({ bed }: { bed: BedView }) {
  const canWrite = usePermission('adt:write');
  const [action, setAction] = useState<Action | null>(null);
  const a = bed.admission;
  const close = () => setAction(null);
  return (
    <section className="admission" data-testid="admission-panel" data-admitted={a ? 'true' : 'false'} aria-label="Patient in this bed">
      <div className="admission__current">
        <span className="admission__label">Patient</span>
        {a ? (
          <>
            <strong className="admission__name" data-testid="admission-patient">
              {a.name ?? 'Restricted record'}
            </strong>
            <span className="mono">{a.mrn}</span>
            {a.synthetic ? <Badge tone="synthetic">SYNTHETIC</Badge> : null}
            {a.restricted ? <Badge tone="danger">RESTRICTED</Badge> : null}
            <span className="muted small">
              in this bed since {formatDateTime(a.since)} (recorded by {a.by})
            </span>
            <a className="admission__record" href={href(`/patients/${a.patientId}`)}>
              Open record
            </a>
          </>
        ) : (
          <span className="muted">
            No patient admitted to this bed{bed.patientRef ? `; the monitor names ${patientLabel(bed.patientRef)}` : ''}.
          </span>
        )}
      </div>
      {canWrite ? (
        <div className="admission__actions">
          {a ? (
            <>
              <button type="button" className="btn btn--small" onClick={() => setAction('transfer')}>
                Transfer…
              </button>
              <button type="button" className="btn btn--small btn--danger-outline" onClick={() => setAction('discharge')}>
                Discharge…
              </button>
            </>
          ) : (
            <button type="button" className="btn btn--small btn--primary" onClick={() => setAction('admit')}>
              Admit a patient…
            </button>
          )}
        </div>
      ) : null}
      <Dialog title={`Admit a patient to bed ${bedKeyLabel(bed.key)}`} open={action === 'admit'} onClose={close} testId="admit-dialog">
        {action === 'admit' ? <AdmitForm bedKey={bed.key} onDone={close} /> : null}
      </Dialog>
      <Dialog title="Transfer to another bed" open={action === 'transfer' && a !== null} onClose={close} testId="transfer-dialog">
        {action === 'transfer' && a ? <TransferForm admission={a} fromBed={bed.key} onDone={close} /> : null}
      </Dialog>
      <Dialog title="Discharge" open={action === 'discharge' && a !== null} onClose={close} testId="discharge-dialog">
        {action === 'discharge' && a ? <DischargeForm admission={a} bedKey={bed.key} onDone={close} /> : null}
      </Dialog>
    </section>
  );
}

type Occupant = NonNullable<BedView['admission']>;

function who(a: Pick<Occupant, 'name' | 'mrn'>): string {
  return a.name ? `${a.name} (MRN ${a.mrn})` : `the restricted record MRN ${a.mrn}`;
}

function NoteField({ value, onChange, error, hint }: { value: string; onChange: (v: string) => void; error?: string | undefined; hint: string }) {
  return <TextField label="Note (optional)" value={value} onChange={onChange} error={error} hint={hint} maxLength={300} />;
}

/** Search (name or MRN), pick, note, confirm. Patients already in a bed are shown there and cannot be picked. */
function AdmitForm({ bedKey, onDone }: { bedKey: string; onDone: () => void }) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<PatientSummary[] | null>(null);
  const [inBed, setInBed] = useState<Map<string, string>>(new Map());
  const [picked, setPicked] = useState<PatientSummary | null>(null);
  const [note, setNote] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    call('adt.current', {})
      .then((r) => setInBed(new Map(r.admissions.map((x) => [x.patientId, x.bedKey]))))
      .catch(() => undefined);
  }, []);

  useEffect(() => {
    let cancelled = false;
    const q = query.trim();
    const timer = setTimeout(() => {
      call('patients.list', { ...(q ? { query: q } : {}), limit: 20 })
        .then((r) => {
          if (!cancelled) setResults(r.patients);
        })
        .catch((e: unknown) => {
          if (!cancelled) setError(toApiError(e));
        });
    }, 200);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [query]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!picked) return;
    if (!confirming) {
      setConfirming(true);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await admitPatient(picked.id, bedKey, note);
      onDone();
    } catch (err) {
      setError(toApiError(err));
      setConfirming(false);
    } finally {
      setBusy(false);
    }
  };

  const label = (p: PatientSummary) => (p.name ? `${p.name} · ${p.mrn}` : `Restricted record · ${p.mrn}`);

  if (confirming && picked) {
    return (
      <form className="form" onSubmit={(e) => void submit(e)} data-testid="admit-confirm">
        <p>
          Admit <strong>{label(picked)}</strong> to bed <strong>{bedKeyLabel(bedKey)}</strong> now?
        </p>
        <p className="muted small">
          From now on this bed's readings are this patient's record: the board shows them, NEWS2 uses their SpO₂ scale, and a monitor naming someone else
          raises a technical alarm. Recorded in the audit trail with your name{note.trim() ? ` and the note “${note.trim()}”` : ''}.
        </p>
        <ErrorAlert error={error} />
        <FormActions busy={busy} confirm="Confirm admission" onCancel={() => setConfirming(false)} />
      </form>
    );
  }

  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      <TextField label="Find the patient" value={query} onChange={setQuery} hint="Name or MRN. A restricted record is found by its MRN." autoFocus />
      <div className="admit-results" role="listbox" aria-label="Patients" data-testid="admit-results">
        {results === null ? <p className="muted small">Searching…</p> : null}
        {results && !results.length ? <p className="muted small">No patient found.</p> : null}
        {results?.map((p) => {
          const bedOf = inBed.get(p.id);
          return (
            <button
              type="button"
              key={p.id}
              role="option"
              aria-selected={picked?.id === p.id}
              className={`admit-result${picked?.id === p.id ? ' admit-result--picked' : ''}`}
              data-testid="admit-result"
              data-mrn={p.mrn}
              disabled={bedOf !== undefined}
              onClick={() => setPicked(p)}
            >
              <span>{label(p)}</span>
              {p.synthetic ? <Badge tone="synthetic">SYNTHETIC</Badge> : null}
              {bedOf ? <span className="muted small">in bed {bedKeyLabel(bedOf)}</span> : null}
            </button>
          );
        })}
      </div>
      <NoteField value={note} onChange={setNote} error={error?.fieldErrors().reason} hint="e.g. from the emergency department, post-operative observation." />
      <ErrorAlert error={error} shownFields={['reason']} />
      <FormActions busy={busy || !picked} confirm={picked ? `Admit ${picked.name ?? picked.mrn}…` : 'Pick a patient'} onCancel={onDone} testId="admit-review" />
    </form>
  );
}

/** A free bed of the board (no patient admitted), or another bed typed as <ward>/<bed>. */
function TransferForm({ admission, fromBed, onDone }: { admission: Occupant; fromBed: string; onDone: () => void }) {
  const beds = useWard((s) => s.beds);
  const order = useWard((s) => s.order);
  const free = useMemo(() => order.filter((k) => k !== fromBed && beds[k] && !beds[k]?.admission), [order, beds, fromBed]);
  const [choice, setChoice] = useState(free[0] ?? '');
  const [other, setOther] = useState('');
  const [note, setNote] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [localError, setLocalError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const target = choice === '' ? other.trim() : choice;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!BED_KEY.test(target)) {
      setLocalError('a bed as <ward>/<bed>, e.g. 4A/7');
      return;
    }
    setLocalError(undefined);
    if (!confirming) {
      setConfirming(true);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await transferPatient(admission.patientId, admission.admissionId, target, note);
      onDone();
    } catch (err) {
      setError(toApiError(err));
      setConfirming(false);
    } finally {
      setBusy(false);
    }
  };

  if (confirming) {
    return (
      <form className="form" onSubmit={(e) => void submit(e)} data-testid="transfer-confirm">
        <p>
          Move <strong>{who(admission)}</strong> from bed <strong>{bedKeyLabel(fromBed)}</strong> to bed <strong>{bedKeyLabel(target)}</strong> now?
        </p>
        <p className="muted small">From now on the readings of bed {bedKeyLabel(target)} are this patient's, and those of bed {bedKeyLabel(fromBed)} no longer.</p>
        <ErrorAlert error={error} />
        <FormActions busy={busy} confirm="Confirm transfer" onCancel={() => setConfirming(false)} />
      </form>
    );
  }

  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      <p className="muted small">
        {who(admission)}, now in bed {bedKeyLabel(fromBed)}.
      </p>
      <SelectField
        label="To bed"
        value={choice}
        onChange={setChoice}
        options={[...free.map((k) => ({ value: k, label: `${bedKeyLabel(k)} (free)` })), { value: '', label: 'Another bed…' }]}
      />
      {choice === '' ? <TextField label="Bed" value={other} onChange={setOther} error={localError} hint="As <ward>/<bed>, e.g. 4A/7." /> : null}
      <NoteField value={note} onChange={setNote} error={error?.fieldErrors().reason} hint="e.g. to a side room for isolation." />
      <ErrorAlert error={error} shownFields={['reason']} />
      <FormActions busy={busy} confirm="Review transfer" onCancel={onDone} />
    </form>
  );
}

function DischargeForm({ admission, bedKey, onDone }: { admission: Occupant; bedKey: string; onDone: () => void }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const done: AdmissionView = await dischargePatient(admission.patientId, admission.admissionId, note);
      if (done.dischargedAt) onDone();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="form" onSubmit={(e) => void submit(e)} data-testid="discharge-confirm">
      <p>
        Discharge <strong>{who(admission)}</strong> from bed <strong>{bedKeyLabel(bedKey)}</strong> now?
      </p>
      <p className="muted small">From now on this bed's readings belong to nobody until the next admission; the patient's record keeps everything up to now.</p>
      <NoteField value={note} onChange={setNote} error={error?.fieldErrors().reason} hint="e.g. home, transferred to another hospital." />
      <ErrorAlert error={error} shownFields={['reason']} />
      <FormActions busy={busy} confirm="Confirm discharge" onCancel={onDone} />
    </form>
  );
}
