import { EmptyState } from '../../components/ui.js';

/** Ward vitals monitoring: filled by the ward module. */
export function WardArea() {
  return (
    <EmptyState title="Ward monitor" testId="area-ward">
      <p>Ward monitor — live vitals and alarms for each bed will appear here. Arrives with the ward monitoring module.</p>
      <p className="muted">Heart rate, SpO₂, blood pressure and alarm acknowledgement per bed.</p>
    </EmptyState>
  );
}
