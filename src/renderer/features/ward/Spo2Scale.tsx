/**
 * NEWS2 SpO2 scale of the patient in a bed. RCP 2017: scale 1 for everyone; scale 2 only for patients
 * with hypercapnic respiratory failure (target SpO2 88–92 %), a decision of a competent clinical
 * decision maker, recorded. The host keeps it per patient (it follows them to another bed) and audits
 * every change with its reason; only a role with 'vitals:configure' (physicians) may change it.
 */
import { useId, useState, type FormEvent } from 'react';
import type { BedView, Spo2Scale } from '../../../shared/ipc.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Dialog, ErrorAlert, TextField, formatDateTime } from '../../components/ui.js';
import { usePermission } from '../../stores/session.js';
import { setSpo2Scale } from '../../stores/ward.js';
import { bedKeyLabel, occupantLabel } from './vitals-display.js';

const SCALE_TEXT: Record<Spo2Scale, { title: string; detail: string }> = {
  1: { title: 'Scale 1', detail: 'The default for every patient.' },
  2: { title: 'Scale 2', detail: 'Only for hypercapnic respiratory failure (target SpO₂ 88–92 %): SpO₂ 88–92 % on air scores 0.' },
};

/** "Set by …, when: why", for the badge's title and the bed view. */
export function spo2ScaleSetByText(bed: Pick<BedView, 'spo2Scale' | 'spo2ScaleSetBy'>): string {
  if (bed.spo2Scale !== 2) return 'NEWS2 SpO₂ scale 1 (default)';
  const s = bed.spo2ScaleSetBy;
  return s ? `NEWS2 SpO₂ scale 2, set by ${s.by} on ${formatDateTime(s.at)}: ${s.reason}` : 'NEWS2 SpO₂ scale 2';
}

/** The tile's small marker; nothing on scale 1. */
export function Spo2ScaleBadge({ bed }: { bed: Pick<BedView, 'spo2Scale' | 'spo2ScaleSetBy'> }) {
  if (bed.spo2Scale !== 2) return null;
  return (
    <span className="spo2-scale-badge" data-testid="spo2-scale-badge" title={spo2ScaleSetByText(bed)}>
      Scale 2
    </span>
  );
}

/** The bed view's line: the current scale for everyone, and the change for those allowed to make it. */
export function Spo2ScalePanel({ bed }: { bed: BedView }) {
  const canConfigure = usePermission('vitals:configure');
  const [open, setOpen] = useState(false);
  const set = bed.spo2ScaleSetBy;
  return (
    <section className={`spo2-scale spo2-scale--${bed.spo2Scale}`} data-testid="spo2-scale" data-scale={bed.spo2Scale} aria-label="NEWS2 SpO₂ scale">
      <div className="spo2-scale__current">
        <span className="spo2-scale__label">SpO₂ scale</span>
        <strong className="spo2-scale__value" data-testid="spo2-scale-value">
          {SCALE_TEXT[bed.spo2Scale].title}
        </strong>
        <span className="spo2-scale__detail">
          {bed.spo2Scale === 2 ? (
            set ? (
              <>
                Hypercapnic respiratory failure — set by {set.by} on {formatDateTime(set.at)}: <q>{set.reason}</q>
              </>
            ) : (
              'Hypercapnic respiratory failure.'
            )
          ) : (
            'Default (NEWS2 scale 1).'
          )}
        </span>
      </div>
      {canConfigure ? (
        <div className="spo2-scale__action">
          <button
            type="button"
            className="btn btn--small"
            onClick={() => setOpen(true)}
            disabled={!bed.patientRef}
            title={bed.patientRef ? undefined : 'No patient is known in this bed: the scale is set for a patient.'}
          >
            Change SpO₂ scale…
          </button>
          {!bed.patientRef ? <span className="muted small">No patient known in this bed.</span> : null}
        </div>
      ) : null}
      <Dialog title="NEWS2 SpO₂ scale" open={open} onClose={() => setOpen(false)} testId="spo2-scale-dialog">
        {open ? <Spo2ScaleForm key={`${bed.key}:${bed.patientRef ?? ''}`} bed={bed} onDone={() => setOpen(false)} /> : null}
      </Dialog>
    </section>
  );
}

function Spo2ScaleForm({ bed, onDone }: { bed: BedView; onDone: () => void }) {
  const name = useId();
  const [scale, setScale] = useState<Spo2Scale>(bed.spo2Scale === 2 ? 1 : 2);
  const [reason, setReason] = useState('');
  const [localReason, setLocalReason] = useState<string | undefined>();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const patient = occupantLabel(bed);

  const review = (e: FormEvent) => {
    e.preventDefault();
    if (reason.trim().length < 3) {
      setLocalReason('say why in a few words');
      return;
    }
    setLocalReason(undefined);
    setError(null);
    setConfirming(true);
  };

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await setSpo2Scale(bed.key, scale, reason.trim());
      onDone();
    } catch (err) {
      setError(toApiError(err));
      setConfirming(false);
    } finally {
      setBusy(false);
    }
  };

  const fields = error?.fieldErrors() ?? {};
  if (confirming) {
    return (
      <div className="form" data-testid="spo2-scale-confirm">
        <p className="spo2-scale__confirm">
          Score <strong>{patient}</strong> (bed {bedKeyLabel(bed.key)}) on <strong>SpO₂ {SCALE_TEXT[scale].title.toLowerCase()}</strong>
          {scale === bed.spo2Scale ? ' (unchanged; the reason is recorded again)' : ''}?
        </p>
        <p className="muted small">
          {SCALE_TEXT[scale].detail} The setting follows the patient to any bed and is recorded in the audit trail with your name and reason: “
          {reason.trim()}”.
        </p>
        <ErrorAlert error={error} />
        <div className="form__actions">
          <button type="button" className="btn btn--primary" onClick={() => void confirm()} disabled={busy}>
            Confirm scale {scale}
          </button>
          <button type="button" className="btn btn--ghost" onClick={() => setConfirming(false)} disabled={busy}>
            Back
          </button>
        </div>
      </div>
    );
  }

  return (
    <form className="form" onSubmit={review} noValidate>
      <p className="muted small">
        {patient} in bed {bedKeyLabel(bed.key)}, now on {SCALE_TEXT[bed.spo2Scale].title.toLowerCase()}.
      </p>
      <fieldset className="fieldset spo2-scale__choices">
        <legend>Scale</legend>
        {([1, 2] as const).map((s) => (
          <div key={s} className="spo2-scale__choice">
            <input type="radio" id={`${name}-${s}`} name={name} checked={scale === s} onChange={() => setScale(s)} />
            <label htmlFor={`${name}-${s}`}>
              <span className="spo2-scale__choice-title">
                {SCALE_TEXT[s].title}
                {s === bed.spo2Scale ? <span className="muted"> (current)</span> : null}
              </span>
              <span className="muted small">{SCALE_TEXT[s].detail}</span>
            </label>
          </div>
        ))}
      </fieldset>
      <TextField
        label="Reason"
        value={reason}
        onChange={setReason}
        error={localReason ?? fields.reason}
        hint="Your clinical decision, e.g. the documented diagnosis. Recorded in the audit trail with your name."
        maxLength={300}
        autoFocus
        required
      />
      <ErrorAlert error={error} shownFields={['reason']} />
      <div className="form__actions">
        <button type="submit" className="btn btn--primary">
          Review
        </button>
        <button type="button" className="btn btn--ghost" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
