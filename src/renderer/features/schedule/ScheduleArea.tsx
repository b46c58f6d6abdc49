import { EmptyState } from '../../components/ui.js';

/** Patient scheduling: filled by the scheduling module. */
export function ScheduleArea() {
  return (
    <EmptyState title="Schedule" testId="area-schedule">
      <p>Schedule — appointments and scanner slots will appear here. Arrives with the scheduling module.</p>
      <p className="muted">Day and week views of clinic lists and MRI slots, with booking for roles that may write.</p>
    </EmptyState>
  );
}
