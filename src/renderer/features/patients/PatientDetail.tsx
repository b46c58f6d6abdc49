import { useEffect, useState, type FormEvent } from 'react';
import { sexSchema, type Patient, type SessionInfo } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Alert, Badge, ErrorAlert, SelectField, TextField, formatDateTime, useAction } from '../../components/ui.js';
import { hasPermission } from '../../stores/session.js';
import { href } from '../../stores/route.js';
import { BreakGlassDialog } from './BreakGlassDialog.js';
import { SEX_LABELS } from './labels.js';
import { PatientWard } from './PatientWard.js';
import { PatientStudies } from './PatientStudies.js';

export function PatientDetail({ session, id }: { session: SessionInfo; id: string }) {
  const [patient, setPatient] = useState<Patient | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [breakGlassOpen, setBreakGlassOpen] = useState(false);
  const grant = session.breakGlass?.until ?? null;

  useEffect(() => {
    let cancelled = false;
    setError(null);
    call('patients.get', { id })
      .then((p) => {
        if (!cancelled) setPatient(p);
      })
      .catch((e: unknown) => {
        if (cancelled) return;
        setPatient(null);
        setError(toApiError(e));
      });
    return () => {
      cancelled = true;
    };
  }, [id, grant]);

  const back = (
    <a className="back-link" href={href('/patients')}>
      ← Patients
    </a>
  );

  if (error) {
    const canBreakGlass = error.code === 'forbidden' && hasPermission(session, 'breakglass:invoke') && !session.breakGlass;
    return (
      <section className="page" data-testid="patient-detail">
        {back}
        <h1>{error.code === 'not-found' ? 'Patient not found' : error.code === 'forbidden' ? 'Restricted record' : 'Cannot open this record'}</h1>
        <Alert tone="error">{error.message}</Alert>
        {canBreakGlass ? (
          <div className="form__actions">
            <button type="button" className="btn btn--danger-outline" onClick={() => setBreakGlassOpen(true)}>
              Break glass
            </button>
          </div>
        ) : null}
        <BreakGlassDialog open={breakGlassOpen} mrn={null} onClose={() => setBreakGlassOpen(false)} onGranted={() => setBreakGlassOpen(false)} />
      </section>
    );
  }

  if (!patient) {
    return (
      <section className="page" data-testid="patient-detail" aria-busy="true">
        {back}
        <p className="muted" role="status">
          Opening record…
        </p>
      </section>
    );
  }

  return (
    <section className="page" data-testid="patient-detail" aria-labelledby="patient-title">
      {back}
      <header className="page-header">
        <h1 id="patient-title">
          {patient.familyName.toUpperCase()}, {patient.givenName}
        </h1>
        <div className="flags">
          {patient.synthetic ? <Badge tone="synthetic">SYNTHETIC</Badge> : null}
          {patient.restricted ? <Badge tone="danger">RESTRICTED</Badge> : null}
          {patient.restricted && session.breakGlass ? <Badge tone="warning">Opened under break glass</Badge> : null}
        </div>
      </header>
      <dl className="facts">
        <div>
          <dt>MRN</dt>
          <dd className="mono">{patient.mrn}</dd>
        </div>
        <div>
          <dt>Birth date</dt>
          <dd>{patient.birthDate}</dd>
        </div>
        <div>
          <dt>Sex</dt>
          <dd>{SEX_LABELS[patient.sex]}</dd>
        </div>
        <div>
          <dt>Record version</dt>
          <dd>{patient.version}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatDateTime(patient.createdAt)}</dd>
        </div>
        <div>
          <dt>Last updated</dt>
          <dd>{formatDateTime(patient.updatedAt)}</dd>
        </div>
      </dl>
      {hasPermission(session, 'patients:write') ? <EditDemographics key={`${patient.id}:${patient.version}`} patient={patient} onSaved={setPatient} /> : null}
      {hasPermission(session, 'vitals:read') ? <PatientWard key={`${patient.id}:${grant ?? ''}`} patientId={patient.id} /> : null}
      <PatientStudies session={session} patientId={patient.id} />
      <p className="muted small">Imaging, vitals and appointments for this patient appear here as their modules arrive.</p>
    </section>
  );
}

const SEX_OPTIONS = sexSchema.options.map((s) => ({ value: s, label: SEX_LABELS[s] }));

/** Edits name, birth date and sex; the version shown is sent, so an edit made meanwhile is refused, not overwritten. */
function EditDemographics({ patient, onSaved }: { patient: Patient; onSaved: (p: Patient) => void }) {
  const [open, setOpen] = useState(false);
  const [givenName, setGivenName] = useState(patient.givenName);
  const [familyName, setFamilyName] = useState(patient.familyName);
  const [birthDate, setBirthDate] = useState(patient.birthDate);
  const [sex, setSex] = useState<string>(patient.sex);
  const save = useAction(async () => {
    onSaved(await call('patients.update', { id: patient.id, version: patient.version, givenName, familyName, birthDate, sex: sexSchema.parse(sex) }));
  });
  if (!open) {
    return (
      <p>
        <button type="button" className="btn btn--small" onClick={() => setOpen(true)}>
          Edit demographics
        </button>
      </p>
    );
  }
  const server = save.error?.fieldErrors() ?? {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save.run();
  };
  return (
    <form className="form panel" onSubmit={submit} data-testid="edit-demographics" aria-label="Edit demographics">
      <div className="grid-2">
        <TextField label="Given name" value={givenName} onChange={setGivenName} error={server.givenName} maxLength={120} />
        <TextField label="Family name" value={familyName} onChange={setFamilyName} error={server.familyName} maxLength={120} />
        <TextField label="Birth date" type="date" value={birthDate} onChange={setBirthDate} error={server.birthDate} />
        <SelectField label="Sex" value={sex} onChange={setSex} options={SEX_OPTIONS} error={server.sex} />
      </div>
      <ErrorAlert error={save.error} shownFields={['givenName', 'familyName', 'birthDate', 'sex']} />
      <div className="form__actions">
        <button type="submit" className="btn btn--primary" disabled={save.busy}>
          {save.busy ? 'Saving…' : 'Save changes'}
        </button>
        <button type="button" className="btn btn--ghost" onClick={() => setOpen(false)} disabled={save.busy}>
          Cancel
        </button>
      </div>
    </form>
  );
}
