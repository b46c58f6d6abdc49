/**
 * The bedside monitor's message, version 1, published to `ward/<ward>/bed/<bed>/vitals` (QoS 1).
 * JSON, UTF-8, at most 4 KiB. Every vital is optional (a monitor sends what it measures); a value
 * outside what a human body can show is rejected as a technical problem, never stored.
 *
 * {
 *   "v": 1,                        schema version
 *   "deviceId": "mon-4A-07",       the monitor; (deviceId, seq) identifies a reading, duplicates are dropped
 *   "seq": 18231,                  increases by one per reading from this device
 *   "patient": "Patient/<uuid>",   optional FHIR reference (or "mrn:<MRN>") of the patient in the bed
 *   "ts": "2026-11-21T05:00:00.000Z",
 *   "hr": 88,                      heart rate, /min
 *   "spo2": 96,                    %, pulse oximetry
 *   "rr": 18,                      respiration rate, /min
 *   "tempC": 37.2,                 °C
 *   "sbp": 124, "dbp": 78,         mmHg
 *   "acvpu": "A",                  A alert, C new confusion, V voice, P pain, U unresponsive
 *   "o2": false,                   on supplemental oxygen
 *   "fault": "leads-off"           optional device-reported fault (technical alarm)
 * }
 */
import { z } from 'zod';

export const VITALS_TOPIC = /^ward\/([A-Za-z0-9_-]{1,32})\/bed\/([A-Za-z0-9_-]{1,32})\/vitals$/;
export const VITALS_SUBSCRIPTION = 'ward/+/bed/+/vitals';
export const MAX_PAYLOAD_BYTES = 4096;

/** Physically possible ranges: outside them the value is a sensor or device fault, not a patient state. */
export const PLAUSIBLE = {
  hr: [0, 350],
  spo2: [0, 100],
  rr: [0, 120],
  tempC: [20, 45],
  sbp: [0, 350],
  dbp: [0, 250],
} as const;

const vital = (name: keyof typeof PLAUSIBLE) =>
  z
    .number()
    .refine(Number.isFinite, 'not a number')
    .refine((v) => v >= PLAUSIBLE[name][0] && v <= PLAUSIBLE[name][1], `${name} outside ${PLAUSIBLE[name][0]}–${PLAUSIBLE[name][1]}: physically impossible`)
    .optional();

export const vitalsPayloadSchema = z
  .strictObject({
    v: z.literal(1),
    deviceId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/),
    seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    patient: z.string().regex(/^(Patient\/[0-9a-f-]{36}|mrn:[A-Za-z0-9-]{1,32})$/).optional(),
    ts: z.iso.datetime({ offset: true }),
    hr: vital('hr'),
    spo2: vital('spo2'),
    rr: vital('rr'),
    tempC: vital('tempC'),
    sbp: vital('sbp'),
    dbp: vital('dbp'),
    acvpu: z.enum(['A', 'C', 'V', 'P', 'U']).optional(),
    o2: z.boolean().optional(),
    fault: z.string().min(1).max(64).optional(),
  })
  .refine((p) => p.sbp === undefined || p.dbp === undefined || p.dbp < p.sbp, { message: 'diastolic must be below systolic', path: ['dbp'] });

export type VitalsPayload = z.infer<typeof vitalsPayloadSchema>;
