/**
 * Whose study is this? The confirmation step of an import (and of linking a study stored without a
 * patient later): the identity the DICOM files carry, how it matches the local records (computed by the
 * host at scan time), and the radiologist's explicit choice: a record, a new patient registered from
 * the DICOM data (editable), or no patient. A choice that disagrees with the files needs a reason; the
 * host checks all of it again (src/main/imaging/patient-match.ts) and says so when the reason is missing.
 */
import { useId, useState, type FormEvent } from 'react';
import type { DicomPatientView, PatientAgreementView, PatientMatchView, PatientSummary, RequestOf } from '../../../shared/ipc.js';
import { sexSchema } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Alert, Badge, ErrorAlert, SelectField, TextAreaField, TextField } from '../../components/ui.js';
import { SEX_LABELS } from '../patients/labels.js';

export type PatientChoice =
  | { kind: 'patient'; patient: PatientSummary; agreement: PatientAgreementView | null; knownDifferent: boolean }
  | { kind: 'create'; givenName: string; familyName: string; birthDate: string; sex: string; mrn: string }
  | { kind: 'unlinked' };

export interface PatientDecisionState {
  choice: PatientChoice | null;
  reason: string;
}

type DecisionRequest = Pick<RequestOf<'imaging.import'>, 'patientId' | 'createPatient' | 'unlinked' | 'override'>;

const BLOCKING = ['mrn', 'familyName', 'givenName', 'birthDate'] as const;
const FIELD_LABELS: Record<keyof PatientAgreementView, string> = { mrn: 'MRN', familyName: 'family name', givenName: 'given name', birthDate: 'birth date', sex: 'sex' };
const SEX_OPTIONS = [{ value: '', label: 'Choose…' }, ...sexSchema.options.map((s) => ({ value: s, label: SEX_LABELS[s] }))];
const MRN = /^[A-Za-z0-9-]{1,32}$/;

/** As the host compares names: letters and digits only, no accents or case. */
function normalise(name: string | null | undefined): string {
  return (name ?? '')
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');
}

function titleCase(name: string | null): string {
  if (!name) return '';
  return name === name.toUpperCase() || name === name.toLowerCase() ? name.toLowerCase().replace(/(^|[\s'-])\p{L}/gu, (c) => c.toUpperCase()) : name;
}

export function dicomName(identity: DicomPatientView): string {
  return [identity.givenName, identity.familyName].filter(Boolean).join(' ') || identity.name || 'No name';
}

function differs(agreement: PatientAgreementView | null): boolean {
  return agreement ? BLOCKING.some((f) => agreement[f] === 'different') : false;
}

/** Whether the choice disagrees with the files as far as the page can tell (the host decides). */
function choiceDiffers(choice: PatientChoice, identity: DicomPatientView | null): boolean {
  if (!identity) return false;
  if (choice.kind === 'patient') return choice.knownDifferent || differs(choice.agreement);
  if (choice.kind === 'create') {
    const family = [normalise(identity.familyName), normalise(choice.familyName)];
    const given = [normalise(identity.givenName?.split(/\s+/)[0]), normalise(choice.givenName.split(/\s+/)[0])];
    return (
      (family[0] !== '' && family[1] !== '' && family[0] !== family[1]) ||
      (given[0] !== '' && given[1] !== '' && given[0] !== given[1]) ||
      (identity.birthDate !== null && choice.birthDate !== '' && identity.birthDate !== choice.birthDate)
    );
  }
  return false;
}

/** Complete enough to send (the host validates again). */
export function decisionReady(state: PatientDecisionState, identity: DicomPatientView | null, reasonAsked: boolean): boolean {
  const { choice } = state;
  if (!choice) return false;
  if (choice.kind === 'create' && (!choice.givenName.trim() || !choice.familyName.trim() || !choice.birthDate || !choice.sex)) return false;
  const needsReason = choice.kind !== 'unlinked' && (reasonAsked || choiceDiffers(choice, identity));
  return !needsReason || state.reason.trim().length >= 10;
}

export function decisionRequest(state: PatientDecisionState, identity: DicomPatientView | null, reasonAsked: boolean): DecisionRequest {
  const { choice } = state;
  if (!choice || choice.kind === 'unlinked') return { unlinked: true };
  const reason = state.reason.trim();
  const override = reason && (reasonAsked || choiceDiffers(choice, identity)) ? { override: reason } : {};
  if (choice.kind === 'patient') return { patientId: choice.patient.id, ...override };
  const sex = sexSchema.parse(choice.sex);
  return {
    createPatient: { givenName: choice.givenName.trim(), familyName: choice.familyName.trim(), birthDate: choice.birthDate, sex, ...(choice.mrn.trim() ? { mrn: choice.mrn.trim() } : {}) },
    ...override,
  };
}

/** The first choice offered: the exact match, "no patient" when the files name nobody, else none (the radiologist chooses). */
export function initialDecision(match: PatientMatchView | null, identity: DicomPatientView | null, allowUnlinked: boolean): PatientDecisionState {
  if (match?.kind === 'exact' && match.patient) return { choice: { kind: 'patient', patient: match.patient, agreement: match.agreement, knownDifferent: false }, reason: '' };
  if (!identity && match && allowUnlinked) return { choice: { kind: 'unlinked' }, reason: '' };
  return { choice: null, reason: '' };
}

function patientLabel(p: PatientSummary): string {
  return p.name ? `${p.name} (MRN ${p.mrn})` : `restricted record (MRN ${p.mrn})`;
}

function Agreement({ agreement, patient, identity }: { agreement: PatientAgreementView | null; patient: PatientSummary; identity: DicomPatientView | null }) {
  if (!agreement) return patient.restricted ? <span className="decision__facts muted small">Details withheld: restricted record (break-glass to compare).</span> : null;
  const facts = (Object.keys(FIELD_LABELS) as (keyof PatientAgreementView)[]).filter((f) => agreement[f] !== 'missing');
  return (
    <span className="decision__facts small">
      {facts.map((f) => (
        <span key={f} className={`decision__fact decision__fact--${agreement[f]}`}>
          {agreement[f] === 'same' ? '✓' : '✗'} {FIELD_LABELS[f]}
          {agreement[f] === 'different' && f === 'birthDate' && identity?.birthDate ? ` (files ${identity.birthDate}, record ${patient.birthDate ?? '?'})` : ''}
          {agreement[f] === 'different' && f === 'mrn' && identity?.id ? ` (files ${identity.id})` : ''}
        </span>
      ))}
    </span>
  );
}

/** The identity in the files, as one line. */
export function DicomIdentity({ identity }: { identity: DicomPatientView | null }) {
  if (!identity) return <p className="decision__dicom muted small" data-testid="dicom-identity">The files name no patient.</p>;
  return (
    <p className="decision__dicom" data-testid="dicom-identity">
      <span className="muted small">In the files: </span>
      <strong>{dicomName(identity)}</strong>
      {identity.id ? <span className="mono small"> · Patient ID {identity.id}</span> : null}
      <span className="small"> · {identity.birthDate ? `born ${identity.birthDate}` : 'no birth date'}</span>
      {identity.sex ? <span className="small"> · {SEX_LABELS[identity.sex]}</span> : null}
    </p>
  );
}

export function PatientDecision({
  identity,
  match,
  source,
  allowUnlinked,
  canCreate,
  state,
  onChange,
  reasonAsked,
}: {
  identity: DicomPatientView | null;
  /** The host's match (scan time); null where none was computed (NIfTI, linking later). */
  match: PatientMatchView | null;
  source: 'dicom' | 'nifti';
  allowUnlinked: boolean;
  canCreate: boolean;
  state: PatientDecisionState;
  onChange: (state: PatientDecisionState) => void;
  /** The host refused the last try for want of a reason. */
  reasonAsked: boolean;
}) {
  const name = useId();
  const [searching, setSearching] = useState(false);
  const { choice } = state;
  const set = (next: PatientChoice | null) => onChange({ ...state, choice: next });
  // The MRN match (a conflict differs even when its details are withheld), then the candidates, whose MRN is
  // not the Patient ID in the files: a difference too, when the files have one.
  const offered = [
    ...(match?.patient ? [{ patient: match.patient, agreement: match.agreement, knownDifferent: match.kind === 'conflict' || differs(match.agreement) }] : []),
    ...(match?.candidates.map((c) => ({ ...c, knownDifferent: Boolean(identity?.id) || differs(c.agreement) })) ?? []),
  ];
  const isChosen = (id: string) => choice?.kind === 'patient' && choice.patient.id === id;
  const searchedChoice = choice?.kind === 'patient' && !offered.some((o) => o.patient.id === choice.patient.id) ? choice : null;
  const needsReason = choice !== null && choice.kind !== 'unlinked' && (reasonAsked || choiceDiffers(choice, identity));

  const createFromFiles = (): PatientChoice => ({
    kind: 'create',
    givenName: titleCase(identity?.givenName ?? null),
    familyName: titleCase(identity?.familyName ?? null),
    birthDate: identity?.birthDate ?? '',
    sex: identity?.sex ?? '',
    mrn: identity?.id && MRN.test(identity.id) ? identity.id : '',
  });

  return (
    <fieldset className="decision" data-testid="patient-decision">
      <legend>Patient</legend>
      {source === 'nifti' ? <p className="muted small">A NIfTI file carries no patient identity: choose the patient it belongs to, or import it without one.</p> : <DicomIdentity identity={identity} />}
      {match && source === 'dicom' ? (
        <Alert tone={match.kind === 'exact' ? 'success' : match.kind === 'conflict' ? 'warning' : 'info'} testId="patient-match">
          <span data-kind={match.kind}>{match.message}</span>
        </Alert>
      ) : null}
      <div className="decision__options" role="radiogroup" aria-label="Whose study this is">
        {offered.map((o) => {
          const id = `${name}-${o.patient.id}`;
          return (
            <div key={o.patient.id} className="decision__option">
              <input
                type="radio"
                id={id}
                name={name}
                checked={isChosen(o.patient.id)}
                onChange={() => {
                  setSearching(false);
                  set({ kind: 'patient', patient: o.patient, agreement: o.agreement, knownDifferent: o.knownDifferent });
                }}
              />
              <label htmlFor={id}>
                Link to {patientLabel(o.patient)}
                {o.patient.birthDate ? <span className="muted small"> · born {o.patient.birthDate}</span> : null}
                {o.patient.restricted ? (
                  <>
                    {' '}
                    <Badge tone="danger">Restricted</Badge>
                  </>
                ) : null}
                <Agreement agreement={o.agreement} patient={o.patient} identity={identity} />
              </label>
            </div>
          );
        })}
        <div className="decision__option">
          <input
            type="radio"
            id={`${name}-search`}
            name={name}
            checked={searching || searchedChoice !== null}
            onChange={() => {
              setSearching(true);
              set(null);
            }}
          />
          <label htmlFor={`${name}-search`}>{offered.length ? 'Another record…' : 'Link to a record…'}</label>
        </div>
        {searching || searchedChoice ? (
          <PatientSearch
            chosen={searchedChoice?.patient ?? null}
            onChoose={(patient) => set({ kind: 'patient', patient, agreement: null, knownDifferent: Boolean(identity?.id) && identity?.id !== patient.mrn })}
          />
        ) : null}
        {canCreate && identity && match?.kind !== 'exact' && match?.kind !== 'conflict' ? (
          <div className="decision__option">
            <input
              type="radio"
              id={`${name}-create`}
              name={name}
              checked={choice?.kind === 'create'}
              onChange={() => {
                setSearching(false);
                set(createFromFiles());
              }}
            />
            <label htmlFor={`${name}-create`}>Register a new patient from the DICOM data</label>
          </div>
        ) : null}
        {choice?.kind === 'create' ? <NewPatientFields value={choice} onChange={(next) => set(next)} /> : null}
        {allowUnlinked ? (
          <div className="decision__option">
            <input
              type="radio"
              id={`${name}-none`}
              name={name}
              checked={choice?.kind === 'unlinked'}
              onChange={() => {
                setSearching(false);
                set({ kind: 'unlinked' });
              }}
            />
            <label htmlFor={`${name}-none`}>
              Import without a patient <span className="muted small">(flagged until linked)</span>
            </label>
          </div>
        ) : null}
      </div>
      {needsReason ? (
        <TextAreaField
          label="Reason to link despite the differences"
          value={state.reason}
          onChange={(reason) => onChange({ ...state, reason })}
          hint="Recorded in the audit trail with the study (at least 10 characters)."
          rows={2}
          maxLength={500}
        />
      ) : null}
    </fieldset>
  );
}

function NewPatientFields({ value, onChange }: { value: Extract<PatientChoice, { kind: 'create' }>; onChange: (v: Extract<PatientChoice, { kind: 'create' }>) => void }) {
  const set = (field: 'givenName' | 'familyName' | 'birthDate' | 'sex' | 'mrn') => (v: string) => onChange({ ...value, [field]: v });
  return (
    <div className="decision__create grid-2" data-testid="new-patient-from-dicom">
      <TextField label="Given name" value={value.givenName} onChange={set('givenName')} maxLength={120} error={value.givenName.trim() ? undefined : 'required'} />
      <TextField label="Family name" value={value.familyName} onChange={set('familyName')} maxLength={120} error={value.familyName.trim() ? undefined : 'required'} />
      <TextField label="Birth date" type="date" value={value.birthDate} onChange={set('birthDate')} error={value.birthDate ? undefined : 'not in the files: enter it'} />
      <SelectField label="Sex" value={value.sex} onChange={set('sex')} options={SEX_OPTIONS} />
      <TextField label="MRN" value={value.mrn} onChange={set('mrn')} maxLength={32} hint="From the Patient ID in the files; empty: one is assigned." />
    </div>
  );
}

function PatientSearch({ chosen, onChoose }: { chosen: PatientSummary | null; onChoose: (p: PatientSummary) => void }) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<PatientSummary[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const search = async (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setResults((await call('patients.list', { query: query.trim(), limit: 20 })).patients);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="decision__search" data-testid="patient-search">
      <div className="decision__search-bar">
        <TextField
          label="Find a patient"
          value={query}
          onChange={setQuery}
          placeholder="Name or MRN"
          onKeyDown={(e) => {
            if (e.key === 'Enter') void search(e);
          }}
        />
        <button type="button" className="btn btn--small" onClick={() => void search()} disabled={busy || !query.trim()}>
          {busy ? 'Searching…' : 'Search'}
        </button>
      </div>
      <ErrorAlert error={error} />
      {results ? (
        <ul className="decision__results">
          {results.map((p) => (
            <li key={p.id}>
              <button type="button" className="btn btn--small btn--ghost" aria-pressed={chosen?.id === p.id} onClick={() => onChoose(p)}>
                {patientLabel(p)}
                {p.birthDate ? ` · born ${p.birthDate}` : ''}
              </button>
            </li>
          ))}
          {!results.length ? <li className="muted small">No record matches “{query}”.</li> : null}
        </ul>
      ) : null}
      {chosen ? <p className="small">Chosen: {patientLabel(chosen)}</p> : null}
    </div>
  );
}
