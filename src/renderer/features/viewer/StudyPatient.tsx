/**
 * The open study's patient line and notices: whose study it is (or a flag when it belongs to no patient,
 * with the identity its files carry and, for radiologists, a way to link it now), how it came to that
 * patient when it was an override, and the warnings of its import (e.g. no diffusion contrast).
 */
import { useState } from 'react';
import type { Study } from '../../../shared/ipc.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Alert, Badge, ErrorAlert } from '../../components/ui.js';
import { href } from '../../stores/route.js';
import { usePermission } from '../../stores/session.js';
import { linkStudyPatient } from '../../stores/viewer.js';
import { decisionReady, decisionRequest, DicomIdentity, PatientDecision, type PatientDecisionState } from './PatientDecision.js';

export function StudyNotices({ study }: { study: Study }) {
  if (!study.warnings.length) return null;
  return (
    <Alert tone="warning" testId="study-warnings">
      {study.warnings.map((w) => (
        <p key={w}>{w}</p>
      ))}
    </Alert>
  );
}

export function StudyPatient({ study }: { study: Study }) {
  const canLink = usePermission('imaging:write');
  const canCreate = usePermission('patients:create-from-study');
  const [linking, setLinking] = useState(false);
  const [decision, setDecision] = useState<PatientDecisionState>({ choice: null, reason: '' });
  const [reasonAsked, setReasonAsked] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  if (study.patient && study.patientId) {
    const link = study.patientLink;
    return (
      <p className="study-patient" data-testid="study-patient">
        Patient:{' '}
        <a href={href(`/patients/${study.patientId}`)}>
          {study.patient.name} <span className="mono small">(MRN {study.patient.mrn})</span>
        </a>
        {link?.decision === 'override' ? (
          <>
            {' '}
            <Badge tone="warning" title={`Linked by ${link.by} despite different ${link.differences.join(', ')}: ${link.reason ?? ''}`}>
              Linked despite differences
            </Badge>
          </>
        ) : null}
        {link?.decision === 'created' ? <span className="muted small"> · registered from this study&apos;s DICOM data</span> : null}
      </p>
    );
  }

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const { unlinked: _none, ...patient } = decisionRequest(decision, study.dicomPatient, reasonAsked);
      await linkStudyPatient({ studyId: study.id, ...patient });
      setLinking(false);
    } catch (e) {
      const apiError = toApiError(e);
      setError(apiError);
      if (apiError.code === 'conflict' && /override/.test(apiError.message)) setReasonAsked(true);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="study-patient study-patient--none" data-testid="study-patient">
      <Alert tone="warning" testId="no-patient-notice">
        <strong>This study belongs to no patient.</strong>{' '}
        {study.sourceKind === 'nifti' ? 'It was imported from NIfTI, which names nobody.' : null}
        {study.dicomPatient ? <DicomIdentity identity={study.dicomPatient} /> : null}
      </Alert>
      {canLink && !linking ? (
        <button type="button" className="btn btn--small" onClick={() => setLinking(true)}>
          Link to a patient…
        </button>
      ) : null}
      {linking ? (
        <div className="study-patient__link">
          <PatientDecision
            identity={study.dicomPatient}
            match={null}
            source={study.sourceKind}
            allowUnlinked={false}
            canCreate={canCreate}
            state={decision}
            onChange={setDecision}
            reasonAsked={reasonAsked}
          />
          <ErrorAlert error={error} />
          <div className="form__actions">
            <button type="button" className="btn btn--primary btn--small" disabled={busy || !decisionReady(decision, study.dicomPatient, reasonAsked) || decision.choice?.kind === 'unlinked'} onClick={() => void submit()}>
              {busy ? 'Linking…' : 'Link'}
            </button>
            <button type="button" className="btn btn--small btn--ghost" onClick={() => setLinking(false)}>
              Cancel
            </button>
          </div>
        </div>
      ) : null}
    </div>
  );
}
