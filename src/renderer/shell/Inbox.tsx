/**
 * The role's in-app inbox in the top bar (e.g. a physician's notice of a confirmed suspected lesion):
 * the unread count, and a list that opens the patient. Read once on sign-in and again on each
 * `notifications.changed` push.
 */
import { useEffect, useState } from 'react';
import type { Notification } from '../../shared/ipc.js';
import { call, subscribe } from '../api/client.js';
import { errorMessage } from '../api/errors.js';
import { Dialog, formatDateTime } from '../components/ui.js';
import { href } from '../stores/route.js';

export function Inbox() {
  const [notifications, setNotifications] = useState<Notification[]>([]);
  const [unread, setUnread] = useState(0);
  const [open, setOpen] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const load = () =>
    call('notifications.list', {}).then(
      (inbox) => {
        setNotifications(inbox.notifications);
        setUnread(inbox.unread);
        setProblem(null);
      },
      (error: unknown) => setProblem(errorMessage(error)),
    );
  useEffect(() => {
    void load();
    return subscribe('notifications.changed', () => void load());
  }, []);
  const markRead = async (n: Notification) => {
    if (n.readAt) return;
    try {
      await call('notifications.markRead', { id: n.id });
      await load();
    } catch (error) {
      setProblem(errorMessage(error));
    }
  };
  return (
    <>
      <button type="button" className={`btn btn--small${unread ? ' btn--primary' : ''}`} data-testid="inbox-button" onClick={() => setOpen(true)} aria-label={`Inbox, ${unread} unread`}>
        Inbox{unread ? ` (${unread})` : ''}
      </button>
      <Dialog title="Inbox" open={open} onClose={() => setOpen(false)} testId="inbox">
        {problem ? <p role="alert">{problem}</p> : null}
        {notifications.length === 0 ? <p className="muted">Nothing for your role.</p> : null}
        <ul className="inbox">
          {notifications.map((n) => (
            <li key={n.id} className={`inbox__item${n.readAt ? '' : ' inbox__item--unread'}`} data-testid="inbox-item" data-kind={n.kind}>
              <strong>{n.title}</strong>
              <span className="small muted">{formatDateTime(n.createdAt)}</span>
              <p className="small">{n.body}</p>
              <div className="inbox__actions">
                {n.patientId ? (
                  <a className="btn btn--small" href={href(`/patients/${n.patientId}`)} onClick={() => void markRead(n).then(() => setOpen(false))}>
                    Open the patient
                  </a>
                ) : null}
                {!n.readAt ? (
                  <button type="button" className="btn btn--small btn--ghost" onClick={() => void markRead(n)}>
                    Mark as read
                  </button>
                ) : (
                  <span className="small muted">Read {formatDateTime(n.readAt)}</span>
                )}
              </div>
            </li>
          ))}
        </ul>
      </Dialog>
    </>
  );
}
