import type { Patient } from '../../../shared/ipc.js';

export const SEX_LABELS: Record<Patient['sex'], string> = {
  female: 'Female',
  male: 'Male',
  other: 'Other',
  unknown: 'Unknown',
};
