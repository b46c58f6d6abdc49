import { useState, type FormEvent } from 'react';
import type { SessionInfo } from '../../../shared/ipc.js';
import { sexSchema } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { Alert, Checkbox, ErrorAlert, SelectField, TextField, useAction } from '../../components/ui.js';
import { hasPermission } from '../../stores/session.js';
import { href, navigate } from '../../stores/route.js';
import { SEX_LABELS } from './labels.js';

const SEX_OPTIONS = [{ value: '', label: 'Choose…' }, ...sexSchema.options.map((s) => ({ value: s, label: SEX_LABELS[s] }))];
const FIELDS = ['givenName', 'familyName', 'birthDate', 'sex', 'mrn', 'restricted'];

export function NewPatientForm({ session }: { session: SessionInfo }) {
  const [givenName, setGivenName] = useState('');
  const [familyName, setFamilyName] = useState('');
  const [birthDate, setBirthDate] = useState('');
  const [sex, setSex] = useState('');
  const [mrn, setMrn] = useState('');
  const [restricted, setRestricted] = useState(false);
  const [local, setLocal] = useState<Record<string, string>>({});

  const { run, busy, error } = useAction(async () => {
    const parsedSex = sexSchema.parse(sex);
    const created = await call('patients.create', {
      givenName,
      familyName,
      birthDate,
      sex: parsedSex,
      ...(mrn.trim() ? { mrn: mrn.trim() } : {}),
      restricted,
    });
    navigate(`/patients/${created.id}`);
  });

  if (!hasPermission(session, 'patients:write')) {
    return (
      <section className="page">
        <Alert tone="error">Your role cannot register patients.</Alert>
      </section>
    );
  }

  const server = error?.fieldErrors() ?? {};
  const err = (field: string) => local[field] ?? server[field];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!givenName.trim()) problems.givenName = 'Required.';
    if (!familyName.trim()) problems.familyName = 'Required.';
    if (!birthDate) problems.birthDate = 'Required (YYYY-MM-DD).';
    if (!sex) problems.sex = 'Choose one; use “Unknown” if it is not known.';
    setLocal(problems);
    if (Object.keys(problems).length === 0) void run();
  };

  return (
    <section className="page page--narrow" data-testid="new-patient" aria-labelledby="new-patient-title">
      <a className="back-link" href={href('/patients')}>
        ← Patients
      </a>
      <h1 id="new-patient-title">New patient</h1>
      <form onSubmit={submit} className="form" noValidate>
        <div className="grid-2">
          <TextField label="Given name" value={givenName} onChange={setGivenName} error={err('givenName')} autoFocus maxLength={120} />
          <TextField label="Family name" value={familyName} onChange={setFamilyName} error={err('familyName')} maxLength={120} />
          <TextField label="Birth date" type="date" value={birthDate} onChange={setBirthDate} error={err('birthDate')} />
          <SelectField label="Sex" value={sex} onChange={setSex} options={SEX_OPTIONS} error={err('sex')} />
          <TextField
            label="MRN"
            value={mrn}
            onChange={setMrn}
            error={err('mrn')}
            maxLength={32}
            hint="Optional. Leave empty to have a medical record number assigned."
          />
        </div>
        <Checkbox
          label="Mark as restricted"
          checked={restricted}
          onChange={setRestricted}
          hint="Restricted records (e.g. VIP, staff, protected persons) open only under break-glass access."
        />
        <ErrorAlert error={error} shownFields={FIELDS} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create patient'}
          </button>
          <a className="btn btn--ghost" href={href('/patients')}>
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}
