/** Small building blocks shared by every screen. */
import {
  useCallback,
  useEffect,
  useId,
  useRef,
  useState,
  type ReactNode,
  type InputHTMLAttributes,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from 'react';
import { toApiError, type ApiError } from '../api/errors.js';

interface FieldFrameProps {
  label: string;
  error?: string | undefined;
  hint?: ReactNode;
  className?: string | undefined;
}

/** The attributes that tie a control to its label, hint and error. */
interface FieldControlProps {
  id: string;
  'aria-invalid': true | undefined;
  'aria-describedby': string | undefined;
}

/** Label, hint and error around one control; the error replaces the hint while it shows (they often say the same thing). */
function FieldFrame({ label, error, hint, className, children }: FieldFrameProps & { children: (control: FieldControlProps) => ReactNode }) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const control: FieldControlProps = { id, 'aria-invalid': error ? true : undefined, 'aria-describedby': error ? errorId : hint ? hintId : undefined };
  return (
    <div className={`field${error ? ' field--invalid' : ''}${className ? ` ${className}` : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children(control)}
      {hint && !error ? (
        <p className="field__hint" id={hintId}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field__error" id={errorId}>
          {sentence(error)}
        </p>
      ) : null}
    </div>
  );
}

type ValueProps = FieldFrameProps & { value: string; onChange: (value: string) => void };
type InputProps = Omit<InputHTMLAttributes<HTMLInputElement>, 'id' | 'onChange' | 'value' | 'className'> & ValueProps;
type TextAreaProps = Omit<TextareaHTMLAttributes<HTMLTextAreaElement>, 'id' | 'onChange' | 'value' | 'className'> & ValueProps;
type SelectProps = Omit<SelectHTMLAttributes<HTMLSelectElement>, 'id' | 'onChange' | 'value' | 'className'> &
  Omit<ValueProps, 'hint'> & { options: readonly { value: string; label: string }[] };

export function TextField({ label, value, onChange, error, hint, className, ...rest }: InputProps) {
  return (
    <FieldFrame label={label} error={error} hint={hint} className={className}>
      {(control) => <input {...control} value={value} onChange={(e) => onChange(e.target.value)} {...rest} />}
    </FieldFrame>
  );
}

export function TextAreaField({ label, value, onChange, error, hint, className, ...rest }: TextAreaProps) {
  return (
    <FieldFrame label={label} error={error} hint={hint} className={className}>
      {(control) => <textarea {...control} value={value} onChange={(e) => onChange(e.target.value)} {...rest} />}
    </FieldFrame>
  );
}

export function SelectField({ label, value, onChange, options, error, className, ...rest }: SelectProps) {
  return (
    <FieldFrame label={label} error={error} className={className}>
      {(control) => (
        <select {...control} value={value} onChange={(e) => onChange(e.target.value)} {...rest}>
          {options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    </FieldFrame>
  );
}

export function Checkbox({ label, checked, onChange, hint }: { label: string; checked: boolean; onChange: (v: boolean) => void; hint?: ReactNode }) {
  const id = useId();
  return (
    <div className="field field--checkbox">
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <label htmlFor={id}>{label}</label>
      {hint ? <p className="field__hint">{hint}</p> : null}
    </div>
  );
}

export function Alert({ tone = 'error', children, testId }: { tone?: 'error' | 'warning' | 'info' | 'success'; children: ReactNode; testId?: string }) {
  return (
    <div className={`alert alert--${tone}`} role={tone === 'error' ? 'alert' : 'status'} data-testid={testId}>
      {children}
    </div>
  );
}

/** A host reason such as "locked after inactivity" as a sentence: "Locked after inactivity." */
export function asSentence(text: string): string {
  const t = sentence(text.trim());
  return t && !/[.!?…]$/.test(t) ? `${t}.` : t;
}

/** Capitalises a field message from the host ("at least 10 characters" → "At least 10 characters"). */
export function sentence(message: string): string {
  return message ? message.charAt(0).toUpperCase() + message.slice(1) : message;
}

/**
 * Shows an error's message and any field problems that no field on the form shows. When every
 * problem is already shown next to its field, a short pointer replaces the host's long summary.
 */
export function ErrorAlert({ error, shownFields = [] }: { error: ApiError | null; shownFields?: string[] }) {
  if (!error) return null;
  const extra = error.issues.filter((i) => !shownFields.includes(i.path));
  const allShown = error.code === 'bad-request' && error.issues.length > 0 && extra.length === 0;
  return (
    <Alert tone="error">
      <span>{allShown ? 'Some fields need attention — see the messages under them.' : error.message}</span>
      {extra.length && !allShown ? (
        <ul className="alert__issues">
          {extra.map((i) => (
            <li key={`${i.path}:${i.message}`}>{i.path ? `${i.path}: ${i.message}` : sentence(i.message)}</li>
          ))}
        </ul>
      ) : null}
    </Alert>
  );
}

export function Badge({ tone = 'neutral', children, title }: { tone?: 'neutral' | 'accent' | 'warning' | 'danger' | 'success' | 'synthetic'; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge--${tone}`} title={title}>
      {children}
    </span>
  );
}

export function EmptyState({ title, children, testId }: { title: string; children: ReactNode; testId?: string }) {
  return (
    <section className="empty-state" data-testid={testId} aria-labelledby={`${testId ?? 'empty'}-title`}>
      <h2 id={`${testId ?? 'empty'}-title`}>{title}</h2>
      <div className="empty-state__body">{children}</div>
    </section>
  );
}

/** A modal built on <dialog>: focus is trapped and Escape closes it. */
export function Dialog({ title, open, onClose, children, testId }: { title: string; open: boolean; onClose: () => void; children: ReactNode; testId?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (open && !el.open) el.showModal();
    if (!open && el.open) el.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      data-testid={testId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      {open ? (
        <>
          <h2 id={titleId} className="dialog__title">
            {title}
          </h2>
          {children}
        </>
      ) : null}
    </dialog>
  );
}

/** A form's submit and Cancel buttons; both off while `busy`, the submit also while `blocked` (e.g. nothing picked yet). */
export function FormActions({ busy, blocked = false, confirm, onCancel, testId }: { busy: boolean; blocked?: boolean; confirm: string; onCancel: () => void; testId?: string }) {
  return (
    <div className="form__actions">
      <button type="submit" className="btn btn--primary" disabled={busy || blocked} data-testid={testId}>
        {confirm}
      </button>
      <button type="button" className="btn btn--ghost" onClick={onCancel} disabled={busy}>
        Cancel
      </button>
    </div>
  );
}

/** Runs an async action, tracking busy state and the ApiError it failed with. */
export function useAction<A extends unknown[], R>(action: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const actionRef = useRef(action);
  actionRef.current = action;
  const run = useCallback(async (...args: A): Promise<R | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await actionRef.current(...args);
    } catch (e) {
      if (mounted.current) setError(toApiError(e));
      return undefined;
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  return { run, busy, error, setError };
}

export function formatDateTime(iso: string | null | undefined, withSeconds = false): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' } : {}),
  });
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: '2-digit' });
}

/** Full-page centred panel used by the pre-sign-in screens. */
export function Gate({ title, children, testId, wide }: { title: string; children: ReactNode; testId: string; wide?: boolean }) {
  return (
    <main className="gate" data-testid={testId}>
      <div className={`gate__panel${wide ? ' gate__panel--wide' : ''}`}>
        <p className="gate__brand" aria-hidden="true">
          NeuroWard
        </p>
        <h1 className="gate__title">{title}</h1>
        {children}
      </div>
    </main>
  );
}
